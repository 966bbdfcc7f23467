"""UMAP grid: clipping to the dataset size, seeded determinism, keys in grid order, grid figure layout."""

import numpy as np
import pytest

from medvl_core.eval.umap_grid import PAPER_GRID, clear_cache, clip_grid, umap_embeddings


def _blobs(n=60, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.normal(size=(n, dim)) + 4 * np.eye(dim)[y], y


def test_paper_grid():
    assert PAPER_GRID["n_neighbors"] == [3, 5, 10, 15, 25, 50, 100, 200, 500, 1000]
    assert PAPER_GRID["min_dist"] == [0.1, 0.25, 0.5, 0.75, 1.0]


def test_clip_grid_drops_neighbourhoods_not_smaller_than_n():
    assert clip_grid(60)["n_neighbors"] == [3, 5, 10, 15, 25, 50]
    assert clip_grid(50)["n_neighbors"] == [3, 5, 10, 15, 25]
    assert clip_grid(5000) == PAPER_GRID
    assert clip_grid(3)["n_neighbors"] == [2]  # keeps one value
    assert clip_grid(60, {"n_neighbors": [100], "min_dist": [0.5]}) == {"n_neighbors": [59], "min_dist": [0.5]}


def test_umap_deterministic_and_keyed_by_grid():
    x, _ = _blobs()
    grid = {"n_neighbors": [5, 100], "min_dist": [0.1, 0.5]}  # 100 >= 60 points: clipped away
    first = umap_embeddings(x, grid, seed=0, progress=False)
    assert list(first) == [(5, 0.1), (5, 0.5)]
    assert all(v.shape == (60, 2) and np.isfinite(v).all() for v in first.values())
    clear_cache()
    again = umap_embeddings(x, grid, seed=0, progress=False)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert umap_embeddings(x, grid, seed=0, progress=False)[(5, 0.1)] is again[(5, 0.1)]  # memoised


def test_umap_grid_figure_axes_and_legend():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from medvl_core.viz import umap_grid_figure

    rng = np.random.default_rng(0)
    emb = {(k, d): rng.normal(size=(30, 2)) for k in (3, 5, 10) for d in (0.1, 0.5)}
    colour_by = {"class": np.arange(30) % 3, "plane": np.array(["axial", "coronal"] * 15)}
    fig = umap_grid_figure(emb, colour_by, title="demo")
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "min_dist = 0.1"
    assert fig.axes[0].get_ylabel() == "n_neighbors = 3" and fig.axes[2].get_ylabel() == "n_neighbors = 5"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["0", "1", "2"] and len(fig.legends) == 1
    texts = [fig.axes[0].title, fig.axes[0].yaxis.label, *fig.legends[0].get_texts(), fig._suptitle]
    assert min(t.get_fontsize() for t in texts) >= 9  # readable at notebook width
    assert "n_neighbors" in fig._suptitle.get_text() and "min_dist" in fig._suptitle.get_text()
    many = umap_grid_figure(emb, {"fine class": np.array([f"c{i}" for i in range(29)] + ["c0"])})
    colours = {tuple(h.get_color()) for h in many.legends[0].legend_handles}
    assert len(colours) == 29  # one distinct colour per class, even for HiCervix's 29
    fig2 = umap_grid_figure(emb, colour_by, colour="plane")
    assert [t.get_text() for t in fig2.legends[0].get_texts()] == ["axial", "coronal"]
    fig3 = umap_grid_figure(emb, {"age": rng.uniform(20, 80, 30)})
    assert len(fig3.axes) == 7  # six panels + a colour bar
    plt.close("all")
