"""Figures shared by the notebooks (matplotlib/seaborn, modest dpi)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def image_grid(images, titles=(), ncols: int = 6, size: float = 1.8):
    """Images (PIL or arrays) in a grid with optional titles."""
    plt = _plt()
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images, list(titles) + [""] * len(images)):
        ax.imshow(np.asarray(img), cmap="gray")
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def heatmap_overlay(image, heat, title: str = "", alpha: float = 0.45):
    """An image with a (coarse) heat map upsampled and overlaid, e.g. CNN activation or attention."""
    from PIL import Image

    plt = _plt()
    img = np.asarray(image.convert("L") if hasattr(image, "convert") else image, dtype=np.float32)
    heat = np.asarray(heat, dtype=np.float32)
    heat = (heat - heat.min()) / max(float(heat.max() - heat.min()), 1e-12)
    up = np.asarray(Image.fromarray((heat * 255).astype(np.uint8)).resize(img.shape[::-1][:2], Image.BILINEAR))
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
    axes[0].imshow(img, cmap="gray")
    axes[1].imshow(img, cmap="gray")
    axes[1].imshow(up, cmap="inferno", alpha=alpha)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def histogram(values, title: str = "", xlabel: str = "", bins: int = 50, vline: float | None = None):
    """A histogram with an optional vertical threshold line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(np.asarray(values), bins=bins, color="steelblue")
    if vline is not None:
        ax.axvline(vline, color="crimson", linestyle="--")
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    fig.tight_layout()
    return fig


def curves(x, ys: dict, title: str = "", xlabel: str = "", ylabel: str = ""):
    """Several named curves over the same x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, y in ys.items():
        ax.plot(x, y, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_curves(Y, P, label_names, title: str = "", max_labels: int = 14):
    """Per-label ROC curves of multi-label probabilities (NaN labels skipped), AUROC in the legend."""
    from .eval.metrics import auroc, roc_curve_points

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for j, name in enumerate(list(label_names)[:max_labels]):
        y = np.asarray(Y)[:, j]
        if np.unique(y[~np.isnan(y)]).size < 2:
            continue
        fpr, tpr, _ = roc_curve_points(y, np.asarray(P)[:, j])
        ax.plot(fpr, tpr, lw=1, label=f"{name} ({auroc(y, np.asarray(P)[:, j]):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return fig


def umap_grid_figure(
    embeddings: dict,
    colour_by: dict,
    title: str = "",
    colour: str | None = None,
    panel: float = 1.8,
    max_categories: int = 30,
    fontsize: float = 10,
):
    """UMAP grid: rows n_neighbors, columns min_dist (both named on every panel edge), points coloured by
    `colour_by[colour]` (default: first key), one legend for the grid; text >= 9 pt at notebook width.

    Up to `max_categories` distinct labels get distinct categorical colours; over 20 distinct numbers a colour bar.
    """
    plt = _plt()
    name = colour or next(iter(colour_by))
    rows = sorted({k for k, _ in embeddings})
    cols = sorted({d for _, d in embeddings})
    legend_width = 2.2 if len(set(map(str, colour_by[name]))) <= 15 else 4.0
    width, height = panel * len(cols) + 0.7 + legend_width, panel * len(rows) + 1.0
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(width, height), squeeze=False)
    colours, handles = _point_colours(np.asarray(colour_by[name]), max_categories)
    for (i, k), (j, d) in ((r, c) for r in enumerate(rows) for c in enumerate(cols)):
        ax = axes[i, j]
        ax.set_xticks([]), ax.set_yticks([])
        if (k, d) in embeddings:
            xy = np.asarray(embeddings[(k, d)])
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=6, linewidths=0, rasterized=True)
        if i == 0:
            ax.set_title(f"min_dist = {d:g}", fontsize=fontsize)
        if j == 0:
            ax.set_ylabel(f"n_neighbors = {k}", fontsize=fontsize)
    right = 1 - legend_width / width  # margins in inches, whatever the grid's size
    fig.subplots_adjust(left=0.45 / width, right=right, bottom=0.1 / height, top=1 - 0.75 / height,
                        wspace=0.06, hspace=0.06)
    _grid_legend(fig, handles, name, right, fontsize)
    heading = f"{title}\ncolour: {name}; rows n_neighbors, columns min_dist (UMAP, cosine)"
    fig.suptitle(heading, fontsize=fontsize + 1, y=1 - 0.06 / height, va="top")
    return fig


def _point_colours(values, max_categories: int):
    """RGBA per point and legend handles: categorical palette, or viridis + a ScalarMappable for many numbers."""
    import matplotlib as mpl

    keys = [str(v) for v in values]
    uniques = sorted(set(keys), key=_natural_key)
    if len(uniques) > min(max_categories, 20) and np.issubdtype(values.dtype, np.number):  # many numbers: a scale
        norm = mpl.colors.Normalize(np.nanmin(values), np.nanmax(values))
        return mpl.cm.viridis(norm(values)), mpl.cm.ScalarMappable(norm, "viridis")
    lut = dict(zip(uniques, _distinct_colours(len(uniques))))
    handles = [
        mpl.lines.Line2D([], [], ls="", marker="o", ms=6, color=lut[u], label=u) for u in uniques[:max_categories]
    ]
    return np.array([lut[k] for k in keys]), handles


def _distinct_colours(n: int) -> list:
    """n distinct RGBA colours: tab10, tab20, then tab20 + tab20b + tab20c (up to 60; cycles beyond)."""
    import matplotlib as mpl

    names = ["tab10"] if n <= 10 else ["tab20"] if n <= 20 else ["tab20", "tab20b", "tab20c"]
    palette = [c for name in names for c in mpl.colormaps[name].colors]
    return [(*palette[i % len(palette)], 1.0) for i in range(n)]


def _natural_key(text: str):
    """Sort numbers numerically and strings alphabetically ("2" < "10")."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _grid_legend(fig, handles, name: str, right: float, fontsize: float = 10) -> None:
    """One legend (or colour bar) for the whole grid, right of the panels (two columns past 15 entries)."""
    if isinstance(handles, list):
        fig.legend(
            handles=handles,
            title=name,
            loc="center left",
            bbox_to_anchor=(right + 0.01, 0.5),
            fontsize=fontsize,
            title_fontsize=fontsize,
            ncols=1 if len(handles) <= 15 else 2,
            frameon=False,
            handletextpad=0.2,
            columnspacing=0.6,
        )
    else:
        bar = fig.colorbar(handles, cax=fig.add_axes((right + 0.03, 0.3, 0.02, 0.4)))
        bar.set_label(name, fontsize=fontsize)
        bar.ax.tick_params(labelsize=fontsize - 1)


def paper_gap_figure(pairs, title: str, synthetic: bool = True):
    """Dumbbell: the paper's value and ours for each table's headline cell, on a 0-100 axis.

    `pairs` is `compare.headline_pairs(...)` (table, quantity, paper, ours, unit); fractions are shown x100
    so percent, fraction and 0-100 scores (dBLEU) share one axis; other units are left out.
    """
    import seaborn as sns

    plt = _plt()
    shown = pairs[pairs["unit"].isin(["percent", "fraction", "score"])].copy()
    factor = np.where(shown["unit"] == "fraction", 100.0, 1.0)
    shown["paper"], shown["ours"] = shown["paper"] * factor, shown["ours"] * factor
    labels = [f"{t}: {q}" for t, q in zip(shown["table"], shown["quantity"])]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * max(len(shown), 2) + 1.4))
    colours = sns.color_palette("colorblind", 2)
    y = np.arange(len(shown))
    ax.hlines(y, shown["paper"], shown["ours"], color="0.7", linewidth=2, zorder=1)
    ax.scatter(shown["paper"], y, color=colours[0], s=60, label="paper", zorder=2)
    ax.scatter(shown["ours"], y, color=colours[1], s=60, marker="D",
               label="this run (synthetic demo)" if synthetic else "this run", zorder=2)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("value on a 0-100 scale (percent; fractions x100; dBLEU as printed)", fontsize=9)
    ax.set_title(title + ("\n(synthetic demo: not clinical performance)" if synthetic else ""), fontsize=10, loc="left")
    ax.legend(fontsize=9, loc="lower right")
    ax.tick_params(axis="x", labelsize=9)
    fig.tight_layout()
    return fig


def text_panels(panels: dict, title: str = "", width: int = 48, size: float = 3.6):
    """Side-by-side boxes of wrapped text (e.g. a report, its sentences, a sampled subset); list values are bulleted."""
    import textwrap

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False)
    for ax, (heading, body) in zip(axes[0], panels.items()):
        items = body if isinstance(body, list | tuple) else [body]
        lines = [textwrap.fill(("• " if len(items) > 1 else "") + str(item), width, subsequent_indent="  ")
                 for item in items]
        ax.text(0.02, 0.98, "\n".join(lines), va="top", ha="left", fontsize=9, family="sans-serif",
                transform=ax.transAxes)
        ax.set_title(textwrap.fill(heading, 40), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def labelled_pca_figure(frame, pairs=(), title: str = "", caption: str = ""):
    """Points (label, pc1, pc2) named at their place, with lines joining the given (label, label) pairs."""
    import seaborn as sns

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    where = {r.label: (r.pc1, r.pc2) for r in frame.itertuples()}
    colours = sns.color_palette("colorblind", 2)
    for k, (a, b) in enumerate(pairs):
        ax.plot(*zip(where[a], where[b]), color=colours[1], alpha=0.5, linewidth=1,
                label="look-alike pair" if k == 0 else None)
    ax.scatter(frame["pc1"], frame["pc2"], color=colours[0], s=30, zorder=2)
    for r in frame.itertuples():
        ax.annotate(r.label, (r.pc1, r.pc2), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("PC 1", fontsize=10)
    ax.set_ylabel("PC 2", fontsize=10)
    ax.set_title(title, fontsize=10, loc="left")
    if pairs:
        ax.legend(fontsize=9, loc="best")
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=9)
    ax.tick_params(labelsize=9)
    fig.tight_layout(rect=(0, 0.04 if caption else 0, 1, 1))
    return fig


def grouped_pca_figure(frame, group: str = "kind", title: str = "", caption: str = ""):
    """Points (pc1, pc2) coloured by a categorical column, e.g. image vs label-text embeddings."""
    import seaborn as sns

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    kinds = list(dict.fromkeys(frame[group]))
    for colour, kind, marker in zip(sns.color_palette("colorblind", len(kinds)), kinds, "o^sDv"):
        part = frame[frame[group] == kind]
        ax.scatter(part["pc1"], part["pc2"], color=colour, s=40 if len(part) < 100 else 12, marker=marker,
                   alpha=0.8, label=f"{kind} ({len(part)})")
    ax.set_xlabel("PC 1", fontsize=10)
    ax.set_ylabel("PC 2", fontsize=10)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=9, loc="best")
    ax.tick_params(labelsize=9)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 if caption else 0, 1, 1))
    return fig


def ablation_bars(panels: dict, references: dict, ylabel: str = "", title: str = ""):
    """One bar panel per source ({panel: {row: {column: value}}}), each with its own dashed reference lines
    ({panel: {name: value}}), e.g. a paper's ablation beside ours with a trivial baseline in each."""
    import seaborn as sns

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], panels.items()):
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        colours = sns.color_palette("colorblind", len(columns) + 2)
        width = 0.8 / max(len(columns), 1)
        for j, column in enumerate(columns):
            values = [rows[r].get(column, np.nan) for r in rows]
            ax.bar(np.arange(len(rows)) + (j - (len(columns) - 1) / 2) * width, values, width, color=colours[j],
                   label=column)
        for k, (ref, value) in enumerate((references.get(name) or {}).items()):
            ax.axhline(value, color=colours[len(columns) + k], linestyle="--", linewidth=1.5, label=f"{ref}: {value:.2f}")
        top = np.nanmax([v for row in rows.values() for v in row.values()] + list((references.get(name) or {}).values()))
        ax.set_ylim(0, top * 1.45)  # room for the legend above the bars
        ax.set_xticks(np.arange(len(rows)), [textwrap_label(r) for r in rows], fontsize=9)
        ax.set_ylabel(ylabel, fontsize=10)
        ax.set_title(name, fontsize=10, loc="left")
        ax.tick_params(axis="y", labelsize=9)
        ax.legend(fontsize=9, loc="upper left", ncols=2)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def textwrap_label(text: str, width: int = 18) -> str:
    """A tick label wrapped to `width` characters per line."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def exercise_figure(results, x: str, y, title: str = "", hue: str | None = None, references: dict | None = None,
                    ylabel: str = ""):
    """A sweep's results table (CSV path or DataFrame) as one line per metric in `y` (or per `hue` value) over `x`,
    with dashed horizontal reference lines ({name: value}, e.g. chance); `ylabel` defaults to the one metric's name."""
    import textwrap

    import seaborn as sns

    frame = _results_frame(results)
    ys = [y] if isinstance(y, str) else list(y)
    _require_columns(frame, [x, *ys] + ([hue] if hue else []))
    series = _exercise_series(frame, x, ys, hue)
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in frame[x])
    ticks = list(dict.fromkeys(sorted(frame[x], key=lambda v: _natural_key(str(v)))))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = sns.color_palette("colorblind", len(series) + len(references or {}))
    for k, (label, part) in enumerate(series.items()):
        xs = part[x].to_numpy(dtype=float) if numeric else [ticks.index(v) for v in part[x]]
        ax.plot(xs, part["_y"], marker="osD^v<>p"[k % 8], color=colours[k], linewidth=1.8, markersize=7, label=label)
    for k, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=colours[len(series) + k], linestyle="--", linewidth=1.4, label=f"{name}: {value:g}")
    if numeric:
        ax.set_xticks(sorted(set(float(v) for v in frame[x])))
    else:
        ax.set_xticks(range(len(ticks)), [textwrap_label(t, 14) for t in ticks])
    ax.set_xlabel(x, fontsize=10)
    ax.set_ylabel(ylabel or (ys[0] if len(ys) == 1 else "value"), fontsize=10)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=9, loc="best")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10, loc="left")
    fig.tight_layout()
    return fig


def _results_frame(results):
    """A results table from a CSV path or a DataFrame (copied)."""
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results.copy()
    from pathlib import Path

    from .errors import MedvlError

    if not Path(results).is_file():
        raise MedvlError(f"exercise_figure: no results table at {results}; run the sweep with `medvl batch`")
    return pd.read_csv(results)


def _require_columns(frame, names) -> None:
    """Raise naming the missing columns and those the table has."""
    from .errors import MedvlError

    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise MedvlError(f"exercise_figure: results table has no column(s) {missing}; it has {list(frame.columns)}")


def _exercise_series(frame, x: str, ys: list, hue: str | None) -> dict:
    """{legend label: rows (x, _y) sorted by x} for each metric, split by hue value when given; NaN rows dropped."""
    out = {}
    groups = [(None, frame)] if hue is None else [(v, frame[frame[hue] == v]) for v in dict.fromkeys(frame[hue])]
    for metric in ys:
        for value, part in groups:
            rows = part.assign(_y=part[metric].astype(float)).dropna(subset=["_y"])
            rows = rows.iloc[sorted(range(len(rows)), key=lambda i: _natural_key(str(rows[x].iloc[i])))]
            label = metric if hue is None else (f"{hue} = {value}" if len(ys) == 1 else f"{metric}, {hue} = {value}")
            out[label] = rows
    return out

