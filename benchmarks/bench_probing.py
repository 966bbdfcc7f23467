"""Feature extraction + probing cost (peers: a plain torch forward loop, sklearn ``cross_val_score``, plain umap-learn).

1. Extraction: ``medvl_core.models.run_models.extract_features`` (``bundled:efficientnet_lite0`` at 96 px, the
   probing notebook's default) over the eight default synth-modalities datasets (160 images each), first with an
   empty feature cache, then again (cache hit). Peer: the same encoder and preprocessing in a plain
   ``torch.no_grad`` batch loop without our cache. The three are interleaved dataset by dataset so that load
   drift on a shared machine hits all alike. The feature cache lives in a temp data root.
2. Linear probe: ``medvl_core.eval.probing.linear_probe`` (standardise, LinearSVC C=100/N, 20 % test, 5-fold CV)
   at 500 / 2k / 8k samples. Peer: sklearn's plain ``cross_val_score(make_pipeline(StandardScaler(), LinearSVC))``,
   5 folds, on the same features: first the eight datasets' extracted features (160 x 1,280 each, the notebook's
   workload), then Gaussian class clusters (8 classes, 256 dims, ReLU'd, fixed seed) at the larger sizes, which a
   default world does not have (LinearSVC on 1,280-dim clusters of 2k+ rows takes minutes per fit on 2 cores).
3. UMAP: ``medvl_core.eval.umap_grid.umap_embeddings`` (cosine) over a 1 x 2 grid (n_neighbors 15; min_dist
   0.1, 0.5) at the same sizes. Peer: plain ``umap.UMAP(metric="cosine").fit_transform`` once per grid point.
   umap-learn's numba compilation (exact and approximate k-NN paths) is paid once, before timing.
Ratio last: peer time / ours for each part (> 1 = we are faster). Not part of ``make test``.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from unittest import mock

import numpy as np

SPEC, IMAGE_SIZE, BATCH = "bundled:efficientnet_lite0", 96, 64
DATASETS = ("xray", "ct", "mr", "ultrasound", "histology", "cytology", "fundus", "dermoscopy")
SIZES = (500, 2_000, 8_000)
DIM, CLASSES = 256, 8
GRID = {"n_neighbors": [15], "min_dist": [0.1, 0.5]}


def timed(fn, *args, **kw):
    """(result, seconds) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def open_datasets() -> dict:
    """The eight default synth-modalities datasets (all splits), generated under the data root if absent."""
    from medvl_core.data.probe_sets import open_probe_dataset

    return {name: open_probe_dataset(name) for name in DATASETS}


def ours_extract(data):
    """Cached extraction of one dataset (the probing notebook's call per model and dataset)."""
    from medvl_core.models.run_models import extract_features

    return extract_features(SPEC, data, batch_size=BATCH, device="cpu", image_size=IMAGE_SIZE, progress=False)


def peer_extract(data):
    """The same encoder and preprocessing in a plain batch loop: no cache, no fingerprints."""
    import torch

    from medvl_core.models.run_models import probe_encoder

    encoder = probe_encoder(SPEC, device="cpu", image_size=IMAGE_SIZE).eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(data), BATCH):
            items = [data[i] for i in range(start, min(start + BATCH, len(data)))]
            chunks.append(encoder(torch.stack([encoder.preprocess(item["image"]) for item in items])))
    return torch.cat(chunks)


def bench_extraction() -> tuple[dict, dict, dict]:
    """Plain-loop, cold-cache and cache-hit extraction times, interleaved dataset by dataset (load drifts)."""
    datasets = open_datasets()
    n = sum(len(d) for d in datasets.values())
    t = {"peer": 0.0, "cold": 0.0, "warm": 0.0}
    features = {}
    # an empty data root for the feature cache; the datasets above are already open where they are
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"MEDVL_DATA": tmp}):
        peer_extract(datasets[DATASETS[0]])  # warm-up: weights read once from disk, kernels chosen
        for name, data in datasets.items():
            plain, dt = timed(peer_extract, data)
            t["peer"] += dt
            features[name], dt = timed(ours_extract, data)
            t["cold"] += dt
            warm, dt = timed(ours_extract, data)
            t["warm"] += dt
            assert np.allclose(features[name].numpy(), plain.numpy(), atol=1e-4), name
            assert np.array_equal(features[name].numpy(), warm.numpy()), name
    print(f"extraction {SPEC} @ {IMAGE_SIZE} px, {n:,d} synth-modalities images (8 datasets), batch {BATCH}:")
    print(f"  ours, empty cache {t['cold']:6.2f} s = {n / t['cold']:8,.0f} images/s")
    print(f"  ours, cache hit   {t['warm']:6.2f} s = {n / t['warm']:8,.0f} images/s")
    print(f"  plain torch loop  {t['peer']:6.2f} s = {n / t['peer']:8,.0f} images/s (peer)")
    return {"first extraction": t["peer"] / t["cold"], "cache hit": t["peer"] / t["warm"]}, features, datasets


def clusters(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n feature vectors in DIM dims around CLASSES random centres (ReLU'd, like CNN features), balanced labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (CLASSES, DIM))
    y = np.arange(n) % CLASSES
    x = np.maximum(centres[y] * 0.3 + rng.normal(0.0, 1.0, (n, DIM)), 0.0)
    return x.astype(np.float32), y


def peer_probe(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sklearn's plain 5-fold CV accuracy of the same StandardScaler + LinearSVC(C=100/N) pipeline."""
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    model = make_pipeline(StandardScaler(), LinearSVC(C=100.0 / len(x), max_iter=20000, random_state=0))
    return cross_val_score(model, x.astype(np.float64), y, cv=5)


def peer_umap(x: np.ndarray) -> list:
    """Plain umap-learn, one cosine fit per grid point."""
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [umap.UMAP(n_neighbors=k, min_dist=d, metric="cosine", random_state=0, n_jobs=1).fit_transform(x)
                for k in GRID["n_neighbors"] for d in GRID["min_dist"]]


def bench_probe_and_umap() -> dict:
    """Linear-probe and UMAP-grid times per size, ours and peers."""
    from medvl_core.eval.probing import linear_probe
    from medvl_core.eval.umap_grid import clear_cache, umap_embeddings

    for rows in (64, 4200):  # numba compilation, once per process, of the exact (< 4096 rows) and approximate k-NN
        warm_up = clusters(rows, seed=1)[0][:, :8].copy()
        umap_embeddings(warm_up, GRID, progress=False)
        peer_umap(warm_up)
    ratios = {}
    for n in SIZES:
        x, y = clusters(n, seed=n)
        result, t_probe = timed(linear_probe, x, y)
        scores, t_cv = timed(peer_probe, x, y)
        clear_cache()
        maps, t_umap = timed(umap_embeddings, x, GRID, progress=False)
        _, t_umap_peer = timed(peer_umap, x)
        assert len(maps) == len(GRID["min_dist"]) and all(m.shape == (n, 2) for m in maps.values())
        print(f"n={n:>6,d}  linear_probe {t_probe:6.2f} s (CV acc {result.cv_accuracy[0]:.3f}; 6 fits)  "
              f"sklearn cross_val_score {t_cv:6.2f} s (acc {scores.mean():.3f}; 5 fits)  "
              f"UMAP grid x{len(maps)}: ours {t_umap:6.2f} s  plain umap-learn {t_umap_peer:6.2f} s")
        ratios[n] = (t_cv / t_probe, t_umap_peer / t_umap)
    return ratios


def bench_real_probes(features: dict, datasets: dict) -> float:
    """linear_probe vs cross_val_score on each dataset's extracted features; peer/ours over all eight."""
    from medvl_core.eval.probing import linear_probe

    t_ours = t_peer = 0.0
    for name in DATASETS:
        x, y = features[name].numpy(), np.asarray(datasets[name].column("class_index"), dtype=int)
        t_ours += timed(linear_probe, x, y)[1]
        t_peer += timed(peer_probe, x, y)[1]
    n = sum(len(d) for d in datasets.values())
    print(f"linear probe on the extracted features, 8 datasets x 160 x {features[DATASETS[0]].shape[1]}: "
          f"ours {t_ours:.2f} s, sklearn cross_val_score {t_peer:.2f} s ({n:,d} images)")
    return t_peer / t_ours


def main() -> None:
    extraction, features, datasets = bench_extraction()
    real = bench_real_probes(features, datasets)
    probing = bench_probe_and_umap()
    big = SIZES[-1]
    print(f"probing ratios peer/ours (> 1 = we are faster): extraction plain loop / ours first "
          f"{extraction['first extraction']:.2f}, / ours cache hit {extraction['cache hit']:.0f}; "
          f"LinearSVC protocol cross_val_score / linear_probe: extracted features {real:.2f}, clusters at {big:,d} "
          f"{probing[big][0]:.2f}; UMAP plain / ours at {big:,d} {probing[big][1]:.2f}")


if __name__ == "__main__":
    main()
