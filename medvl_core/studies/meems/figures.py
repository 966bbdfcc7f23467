"""MEEMS figures in the paper's roles (Figs. 1, 3-8): readable at notebook width (>= 9 pt), one colour per series."""

from __future__ import annotations

import textwrap

import numpy as np

FONT = 9


def _plt():
    """matplotlib.pyplot with the Agg-safe import deferred (the package import stays light)."""
    import matplotlib.pyplot as plt

    return plt


def palette(n: int) -> list:
    """`n` distinct colours: tab10 up to 10, tab20 up to 20, then a sampled hsv wheel."""
    plt = _plt()
    if n <= 10:
        return [plt.cm.tab10(i) for i in range(n)]
    if n <= 20:
        return [plt.cm.tab20(i) for i in range(n)]
    return [plt.cm.hsv(i / n) for i in range(n)]


def label_histogram(counts: dict, title: str):
    """Fig. 1: positives per label (horizontal bars with the count printed)."""
    plt = _plt()
    names, values = list(counts), [int(v) for v in counts.values()]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.barh(names[::-1], values[::-1], color=palette(len(names))[::-1])
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v}", va="center", fontsize=FONT)
    ax.set_xlabel("images with the label positive", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.set_title(title, fontsize=FONT + 1, loc="left")
    fig.tight_layout()
    return fig


def caption_training_figure(history, title: str):
    """Fig. 3: train / validation loss per epoch (left), caption IoU per epoch on the training and validation samples (right)."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = history.index
    left.plot(epochs, history["train_loss"], "o-", color="tab:blue", label="training loss")
    left.plot(epochs, history["val_loss"], "s-", color="tab:orange", label="validation loss")
    left.set_ylabel("cross-entropy + attention reg.", fontsize=FONT)
    if "train_sample_caption_iou" in history:
        right.plot(epochs, history["train_sample_caption_iou"], "o-", color="tab:blue", label="training sample")
    right.plot(epochs, history["val_caption_iou"], "s-", color="tab:orange", label="validation sample")
    right.set_ylabel("mean caption IoU (word sets)", fontsize=FONT)
    for ax in (left, right):
        ax.set_xlabel("epoch", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.legend(fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def attention_figure(image, maps, words, generated: str, reference: str, title: str, width: int = 100):
    """Fig. 4: attention over the image for each of the first words, the generated and ground-truth captions wrapped below."""
    from PIL import Image

    plt = _plt()
    n = len(words)
    ncols = min(5, max(n, 1))
    nrows = -(-n // ncols)
    text = (textwrap.fill("Generated: " + generated, width) + "\n\n" + textwrap.fill("Ground truth: " + reference, width))
    text_lines = text.count("\n") + 1
    fig = plt.figure(figsize=(9, 2.0 * nrows + 0.18 * text_lines + 0.6))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[2.0] * nrows + [0.18 * text_lines + 0.2])
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    for k, (word, heat) in enumerate(zip(words, maps)):
        ax = fig.add_subplot(grid[k // ncols, k % ncols])
        up = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32)).resize(gray.shape[::-1], Image.BILINEAR))
        ax.imshow(gray, cmap="gray")
        ax.imshow(up, cmap="terrain", alpha=0.5)
        ax.set_title(f"{k + 1}. {word}", fontsize=FONT)
        ax.axis("off")
    ax = fig.add_subplot(grid[nrows, :])
    ax.axis("off")
    ax.text(0, 1, text, va="top", ha="left", fontsize=FONT, family="sans-serif")
    fig.suptitle(title, fontsize=FONT + 1)
    return fig


def robust_limits(values: np.ndarray, q: float = 1.0, margin: float = 0.08) -> tuple[float, float]:
    """Axis limits from the q-th and (100-q)-th percentiles plus a margin, so a few outliers do not squash the cloud."""
    low, high = np.percentile(values, [q, 100 - q])
    pad = margin * max(high - low, 1e-9)
    return float(low - pad), float(high + pad)


def primary_label(labels: np.ndarray, names, prevalence: np.ndarray) -> np.ndarray:
    """One label per image for colouring: its rarest positive label (training prevalence), else "No Finding"."""
    labels = np.asarray(labels)
    order = np.argsort(prevalence)
    out = []
    for row in labels:
        positive = [j for j in order if row[j] == 1 and names[j] != "No Finding"]
        out.append(names[positive[0]] if positive else "No Finding")
    return np.array(out)


def pca_figure(points2: np.ndarray, points3: np.ndarray, colour: np.ndarray, names, title: str):
    """Fig. 5: PCA 2-D and 3-D (two camera angles) coloured by label, robust axis limits, PC axes labelled."""
    plt = _plt()
    fig = plt.figure(figsize=(13, 4.4))
    colours = dict(zip(names, palette(len(names))))
    present = [n for n in names if (colour == n).any()]
    ax = fig.add_subplot(1, 3, 1)
    for name in present:
        mask = colour == name
        ax.scatter(*points2[mask].T, s=8, color=colours[name], label=f"{name} ({int(mask.sum())})")
    ax.set_xlim(robust_limits(points2[:, 0]))
    ax.set_ylim(robust_limits(points2[:, 1]))
    ax.set_xlabel("PC 1", fontsize=FONT)
    ax.set_ylabel("PC 2", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    for k, angle in enumerate((30, 120)):
        ax3 = fig.add_subplot(1, 3, 2 + k, projection="3d")
        for name in present:
            mask = colour == name
            ax3.scatter(*points3[mask].T, s=6, color=colours[name], depthshade=False)
        for axis, setter in enumerate((ax3.set_xlim, ax3.set_ylim, ax3.set_zlim)):
            setter(robust_limits(points3[:, axis]))
        ax3.set_xlabel("PC 1", fontsize=FONT)
        ax3.set_ylabel("PC 2", fontsize=FONT)
        ax3.set_zlabel("PC 3", fontsize=FONT)
        ax3.view_init(elev=20, azim=angle)
        ax3.tick_params(labelsize=FONT)
        ax3.set_title(f"3-D, azimuth {angle}°", fontsize=FONT)
    fig.legend(*ax.get_legend_handles_labels(), loc="center right", fontsize=FONT, bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title, fontsize=FONT + 1)
    fig.subplots_adjust(left=0.05, right=0.8, wspace=0.25)
    return fig


def pca_per_class_figure(points2: np.ndarray, labels: np.ndarray, names, title: str, ncols: int = 5):
    """Fig. 5 (supplement): one PCA panel per label, its positives coloured over all images in grey."""
    plt = _plt()
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(13, 2.6 * nrows), sharex=True, sharey=True)
    xlim, ylim = robust_limits(points2[:, 0]), robust_limits(points2[:, 1])
    for j, (ax, name, colour) in enumerate(zip(axes.ravel(), names, palette(len(names)))):
        positive = np.asarray(labels)[:, j] == 1
        ax.scatter(*points2[~positive].T, s=4, color="0.85")
        ax.scatter(*points2[positive].T, s=7, color=colour)
        ax.set_title(f"{name} ({int(positive.sum())})", fontsize=FONT)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.tick_params(labelsize=FONT)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("PC 2", fontsize=FONT)
    for ax in axes[-1]:
        ax.set_xlabel("PC 1", fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def roc_pair(Yb: dict, Pb: dict, names, title: str):
    """Figs. 6-7: ROC per column of the binarised label matrix plus the micro average (dashed), one panel per model."""
    from ...eval.metrics import auroc, roc_curve_points

    plt = _plt()
    models = list(Pb)
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 5.6), squeeze=False)
    colours = palette(len(names))
    for ax, model in zip(axes[0], models):
        Y, P = Yb[model], Pb[model]
        for j, (name, colour) in enumerate(zip(names, colours)):
            if np.nansum(Y[:, j]) == 0 or np.nansum(1 - Y[:, j]) == 0:
                continue
            fpr, tpr, _ = roc_curve_points(Y[:, j], P[:, j])
            ax.plot(fpr, tpr, color=colour, lw=1.3, label=f"{name} {auroc(Y[:, j], P[:, j]):.2f}")
        fpr, tpr, _ = roc_curve_points(Y.ravel(), P.ravel())
        ax.plot(fpr, tpr, "--", color="deeppink", lw=2, label=f"micro average {auroc(Y.ravel(), P.ravel()):.2f}")
        ax.plot([0, 1], [0, 1], ":", color="0.5")
        ax.set_xlabel("false positive rate", fontsize=FONT)
        ax.set_ylabel("true positive rate", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.set_title(model, fontsize=FONT + 1)
        ax.legend(fontsize=FONT, loc="lower right", title="AUC", title_fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def confusion_pair(matrices: dict, names, title: str):
    """Figs. 6 and 8: row-normalised confusion matrices with counts, one panel per model."""
    plt = _plt()
    n = len(names)
    size = 4.0 if n <= 3 else 7.0
    fig, axes = plt.subplots(1, len(matrices), figsize=(size * len(matrices) + 0.5, size), squeeze=False)
    small = FONT
    for ax, (model, matrix) in zip(axes[0], matrices.items()):
        m = np.asarray(matrix)
        rates = np.divide(m, m.sum(1, keepdims=True), out=np.zeros(m.shape), where=m.sum(1, keepdims=True) > 0)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                if m[i, j] or n <= 3:
                    label = f"{rates[i, j]:.2f}\n({m[i, j]})" if n <= 3 else f"{m[i, j]}"
                    ax.text(j, i, label, ha="center", va="center", fontsize=small,
                            color="white" if rates[i, j] > 0.5 else "black")
        ticks = np.arange(n)
        ax.set_xticks(ticks, names, rotation=90 if n > 3 else 0, fontsize=small)
        ax.set_yticks(ticks, names, fontsize=small)
        ax.set_xlabel("predicted (argmax)", fontsize=FONT)
        ax.set_ylabel("true", fontsize=FONT)
        ax.set_title(f"{model}: colour = row fraction, text = count" if n > 3 else model, fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1)
    fig.tight_layout()
    return fig
