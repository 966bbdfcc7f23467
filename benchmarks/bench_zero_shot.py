"""Zero-shot evaluation scaling vs scikit-learn (peer: ``sklearn.metrics.roc_auc_score`` per label).

Random unit image embeddings (D=128, 13 labels, fixed seed) go through
``medvl_core.eval.zeroshot.ZeroShotClassifier.predict_dataset`` (prompt embeddings once, batches of 1,024
"images" whose embedding is the batch itself; a tiny fake model supplies ``encode_text`` and ``logit_scale``)
and ``medvl_core.eval.metrics.macro_auroc`` at 1k, 10k and 100k images, best of 3 timings per size. Cost per
image must stay roughly constant (linear growth), printed as the 100k/1k and 100k/10k ratio of CPU time per
image, which other processes on a shared machine disturb less than wall time. Then
``bootstrap_ci(..., n_resamples=1000)`` at 100k x 13. Ratio last: sklearn's per-label macro AUROC time / ours
at 100k (> 1: we are faster). Not part of ``make test``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from medvl_core.eval.metrics import bootstrap_ci, macro_auroc
from medvl_core.eval.zeroshot import ZeroShotClassifier

D, L, BATCH = 128, 13, 1024
REPEATS = 3
LABELS = [f"finding {i}" for i in range(L)]


class FakeModel:
    """Dual-encoder stand-in: fixed random prompt embeddings; an image batch is its own embedding."""

    logit_scale = torch.tensor(100.0)

    def __init__(self, seed: int = 0):
        self._g = torch.Generator().manual_seed(seed)

    def encode_text(self, texts):
        return torch.nn.functional.normalize(torch.randn(len(texts), D, generator=self._g), dim=-1)

    def encode_images(self, batch):
        return batch


def data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, D, generator=g), dim=-1)
    y = np.random.default_rng(seed).random((n, L)) < 0.2
    return emb, y.astype(np.int64)


def evaluate(clf: ZeroShotClassifier, emb: torch.Tensor, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(probabilities, (wall s, CPU s), macro AUROC) of one batched prediction + metric pass."""
    t0, c0 = time.perf_counter(), time.process_time()
    probs = clf.predict_dataset(emb.split(BATCH))
    score = macro_auroc(y, probs)
    return probs, (time.perf_counter() - t0, time.process_time() - c0), score


def main() -> None:
    t0 = time.perf_counter()
    clf = ZeroShotClassifier(FakeModel(), LABELS)
    print(f"prompt embedding (once): {time.perf_counter() - t0:.4f} s")
    clf.predict_dataset(data(BATCH, seed=1)[0].split(BATCH))  # warm-up: first-call costs are not per image
    per_image = {}
    for n in (1_000, 10_000, 100_000):
        emb, y = data(n, seed=n)
        dt, cpu = min(evaluate(clf, emb, y)[1] for _ in range(REPEATS))  # best of REPEATS: the least disturbed run
        probs, _, score = evaluate(clf, emb, y)
        per_image[n] = cpu / n
        print(f"n={n:>7,d}  predict+macro AUROC {dt:7.3f} s  {n / dt:>11,.0f} images/s  "
              f"{1e6 * dt / n:6.2f} us/image ({1e6 * cpu / n:6.2f} CPU us/image)  macro AUROC {score:.4f}  "
              f"(best of {REPEATS})")
    for small in (1_000, 10_000):
        growth = per_image[100_000] / per_image[small]
        verdict = "linear or better" if growth < 1.5 else "SUPERLINEAR"
        print(f"CPU time per image 100k / {small // 1000}k: {growth:.2f} ({verdict}: total cost "
              f"x{100 * growth * 1000 / small:.0f} for x{100_000 // small} images)")

    t0 = time.perf_counter()
    ci = bootstrap_ci(y, probs, n_resamples=1000)
    print(f"bootstrap_ci 1000 resamples at 100k x {L}: {time.perf_counter() - t0:.2f} s  "
          f"(point {ci['point']:.4f}, 95% CI {ci['low']:.4f}-{ci['high']:.4f})")

    t0 = time.perf_counter()
    ours = macro_auroc(y, probs)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer = float(np.mean([roc_auc_score(y[:, j], probs[:, j]) for j in range(L)]))
    t_peer = time.perf_counter() - t0
    assert abs(ours - peer) < 1e-9, (ours, peer)
    print(f"macro AUROC at 100k x {L}: ours {t_ours:.4f} s  sklearn {t_peer:.4f} s")
    print(f"zero-shot ratio sklearn/ours (macro AUROC time at 100k, > 1 = we are faster): {t_peer / t_ours:.2f}")


if __name__ == "__main__":
    main()
