"""Probe table layout (models x datasets, "mean ± std") and confounder decodability."""

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.eval.probing import confounder_probe
from medvl_core.studies.vlm_feature_probing import probe_results, probe_table


def _blobs(n=100, dim=8, sep=6.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.normal(size=(n, dim)) + sep * np.eye(dim)[y], y


@pytest.fixture(scope="module")
def features():
    sep, noise = _blobs(), _blobs(sep=0.0, seed=1)
    return {("good", "A"): sep, ("good", "B"): sep, ("random", "A"): noise, ("random", "B"): noise}


def test_probe_results_long_form(features):
    long = probe_results(features, progress=False)
    assert list(long[["model", "dataset"]].itertuples(index=False, name=None)) == list(features)
    row = long.iloc[0]
    assert (row.n_samples, row.n_train, row.n_test, row.n_classes) == (100, 80, 20, 2)
    assert row.C == pytest.approx(100 / 80) and row.chance_accuracy == 0.5
    assert row.cv_accuracy_mean == 1.0 and row.test_accuracy == 1.0 and row.cv_macro_f1_mean == 1.0
    assert long.set_index("model").loc["random", "cv_accuracy_mean"].max() < 0.8


def test_probe_table_layout(features):
    table = probe_table(features)
    assert list(table.index) == ["good", "random"] and list(table.columns) == ["A", "B"]
    assert table.loc["good", "A"] == "1.000 ± 0.000"
    assert probe_table(probe_results(features, progress=False)).equals(table)
    f1 = probe_table(features, metric="macro_f1", digits=2)
    assert f1.loc["good", "B"] == "1.00 ± 0.00"


def test_confounder_probe_decodable_vs_random():
    rng = np.random.default_rng(0)
    n = 150
    plane = np.array(["axial", "coronal", "sagittal"])[np.arange(n) % 3]
    x = rng.normal(size=(n, 10))
    x[:, 0] += 5 * (plane == "coronal")
    x[:, 1] += 5 * (plane == "sagittal")  # the plane is written into the features
    encoded = confounder_probe(x, plane)
    assert encoded["cv_accuracy_mean"] > 0.9 and encoded["n_classes"] == 3
    shuffled = confounder_probe(x, rng.permutation(plane), seed=0)
    assert abs(shuffled["cv_accuracy_mean"] - shuffled["chance_accuracy"]) < 0.15


def test_confounder_probe_drops_missing_and_rare_values():
    x, y = _blobs(n=60)
    values = np.where(y == 1, "BREAST", None).astype(object)
    values[:2] = "AXILLA"  # too rare: dropped
    values[1::2] = [v if i % 5 else np.nan for i, v in enumerate(values[1::2])]
    with pytest.raises(ParameterError, match=">= 2 values"):
        confounder_probe(x, values)
    marks = np.array(["mark", "none"])[y]
    marks[:2] = "arrow"
    out = confounder_probe(x, marks)
    assert out["n_dropped"] == 2 and out["n_samples"] == 58
    with pytest.raises(ParameterError, match="one per image"):
        confounder_probe(x, marks[:10])


def test_confounder_results_rows_and_empty_frame():
    import numpy as np

    from medvl_core.data.base import RecordDataset
    from medvl_core.studies.vlm_feature_probing import CONFOUNDER_COLUMNS, confounder_results

    rng = np.random.default_rng(0)
    site = np.repeat(["a", "b"], 30)
    x = rng.normal(size=(60, 4)) + (site == "b")[:, None] * 4.0
    data = RecordDataset([{"id": i, "site": s} for i, s in enumerate(site)])
    data.confounders = ["site"]
    frame = confounder_results({("m", "d"): (x, site)}, {"d": data})
    assert list(frame["confounder"]) == ["site"] and frame["lift over chance"].iloc[0] > 0.3
    data.confounders = []
    assert list(confounder_results({("m", "d"): (x, site)}, {"d": data}).columns) == CONFOUNDER_COLUMNS
