"""Probe table layout (models x datasets, "mean ± std") and confounder decodability."""

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.eval.probing import confounder_probe
from medvl_core.studies.vlm_feature_probing.probes import probe_results
from medvl_core.studies.vlm_feature_probing.tables import probe_table


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
    assert list(table.index) == ["good", "random"]
    assert list(table.columns) == [("A", "Accuracy"), ("A", "F-score"), ("B", "Accuracy"), ("B", "F-score")]
    assert table.loc["good", ("A", "Accuracy")] == "100.0 ± 0.0 | 100.0"  # CV mean ± std | held-out test, in %
    assert probe_table(probe_results(features, progress=False)).equals(table)
    assert probe_table(features, digits=0, test=False).loc["good", ("B", "F-score")] == "100 ± 0"


def test_group_split_keeps_groups_apart_and_is_reported_beside():
    """A patient-level shortcut: the random split rewards memorising patients, the group split does not."""
    from medvl_core.eval.probing import _folds, _holdout

    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(40), 5)
    y = patients % 2
    x = rng.normal(size=(len(y), 16)) + 3 * rng.normal(size=(40, 16))[patients]  # patient identity, no class signal
    rest, test = _holdout(y, 0.2, 0, patients)
    assert not set(patients[rest]) & set(patients[test]) and 0.15 < len(test) / len(y) < 0.25
    for train, val in _folds(y[rest], 5, 0, patients[rest]):
        assert not set(patients[rest][train]) & set(patients[rest][val])
    long = probe_results({("m", "d"): (x, y)}, progress=False, groups={"d": patients})
    assert list(long["split"]) == ["random", "group"] and set(long["n_samples"]) == {200}
    assert probe_table(long, split="group").shape == (1, 2)


def test_subclass_results_within_parents():
    from medvl_core.data.base import RecordDataset
    from medvl_core.studies.vlm_feature_probing.probes import subclass_results

    rng = np.random.default_rng(0)
    fine = np.array(["candida", "trichomonas", "nilm", "atrophy"])[np.arange(160) % 4]
    parent = np.where(np.isin(fine, ["candida", "trichomonas"]), "microbe", "negative")
    x = rng.normal(size=(160, 6))
    x[:, 0] += 4 * (fine == "candida")  # microbes separable, negatives not
    data = RecordDataset([{"id": i, "level1": p} for i, p in enumerate(parent)])
    frame = subclass_results({("m", "d"): (x, fine)}, {"d": data}).set_index("parent")
    assert frame.loc["microbe", "lift over chance"] > 0.3 > abs(frame.loc["negative", "lift over chance"])


def test_metrics_keys_use_the_poster_columns(features):
    from medvl_core.studies.vlm_feature_probing.poster import poster_column, slug
    from medvl_core.studies.vlm_feature_probing.tables import per_dataset_metrics

    assert poster_column("cytology") == poster_column("hicervix") == "HiCervix" and slug("brain-mr:/data/x") == "brainmr"
    long = probe_results({("good", "mr"): features[("good", "A")]}, progress=False)
    metrics = per_dataset_metrics(long, {"encoder": "good"})
    assert metrics["svc_accuracy_encoder_brainmr"] == 1.0 and metrics["svc_test_macro_f1_encoder_brainmr"] == 1.0


def test_confounder_probe_decodable_vs_random():
    rng = np.random.default_rng(0)
    n = 150
    plane = np.array(["axial", "coronal", "sagittal"])[np.arange(n) % 3]
    x = rng.normal(size=(n, 10))
    x[:, 0] += 5 * (plane == "coronal")
    x[:, 1] += 5 * (plane == "sagittal")  # the plane is written into the features
    _, encoded = confounder_probe(x, plane)
    assert encoded["cv_accuracy_mean"] > 0.9 and encoded["n_classes"] == 3
    _, shuffled = confounder_probe(x, rng.permutation(plane), seed=0)
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
    _, out = confounder_probe(x, marks)
    assert out["n_dropped"] == 2 and out["n_samples"] == 58
    result, row = confounder_probe(x, marks)  # the ProbeResult behind the row: CV items of the kept 58
    assert row == out and len(result.cv_index) == out["n_train"] and set(result.cv_true) == {"mark", "none"}
    with pytest.raises(ParameterError, match="one per image"):
        confounder_probe(x, marks[:10])


def test_confounder_results_rows_and_empty_frame():
    import numpy as np

    from medvl_core.data.base import RecordDataset
    from medvl_core.studies.vlm_feature_probing.probes import CONFOUNDER_COLUMNS, confounder_results

    rng = np.random.default_rng(0)
    site = np.repeat(["a", "b"], 30)
    x = rng.normal(size=(60, 4)) + (site == "b")[:, None] * 4.0
    data = RecordDataset([{"id": i, "site": s} for i, s in enumerate(site)])
    data.confounders = ["site"]
    frame = confounder_results({("m", "d"): (x, site)}, {"d": data})
    assert list(frame["confounder"]) == ["site"] and frame["lift over chance"].iloc[0] > 0.3
    data.confounders = []
    assert list(confounder_results({("m", "d"): (x, site)}, {"d": data}).columns) == CONFOUNDER_COLUMNS
