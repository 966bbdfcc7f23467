"""vlm_feature_probing's evidence for the claims engine: out-of-fold correctness of the probes the notebook ran
(nothing refitted), variance shares, keys."""

import numpy as np
import pandas as pd
import pytest

from medvl_core.data.base import RecordDataset
from medvl_core.eval.claims import Evidence
from medvl_core.studies import vlm_feature_probing as study
from medvl_core.studies.vlm_feature_probing import claim_evidence, explained_variance, fitted_probes

MR_CLASSES = ["glioma", "meningioma", "no_tumor", "pituitary"]


def _blobs(classes, n, dim=6, sep=4.0, seed=0):
    rng = np.random.default_rng(seed)
    index = np.arange(n) % len(classes)
    return rng.normal(size=(n, dim)) + sep * np.eye(dim)[index % dim], np.asarray(classes)[index]


def test_explained_variance_between_group_share():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert explained_variance(x, ["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert explained_variance(x, ["a", "b", "a", "b"]) == pytest.approx(0.0)
    assert explained_variance(3 * x, ["a", "a", "b", "b"]) == pytest.approx(1.0)  # cosine geometry: scale-free


@pytest.fixture(scope="module")
def run():
    """Two models on BrainMR-, BreastUS- and HiCervix-like stand-ins, with plane, word and calipers factors."""
    mr_x, mr_y = _blobs(MR_CLASSES, 120)
    plane = np.array(["axial", "coronal", "sagittal"])[np.arange(120) % 3]
    us_x, us_y = _blobs(["benign", "malignant", "normal"], 90, seed=1)
    word = np.array(["BREAST", "AXILLA", "none"])[(np.arange(90) // 3) % 3]
    us_x[:, 5] += 5.0 * (word == "BREAST") - 5.0 * (word == "AXILLA")
    fine = [f"m{i}" for i in range(4)] + [f"n{i}" for i in range(4)]
    cy_x, cy_y = _blobs(fine, 160, dim=8, seed=2)
    level1 = np.where(np.char.startswith(cy_y.astype(str), "m"), "microbe", "negative")
    data = {"mr": RecordDataset([{"plane": p} for p in plane]),
            "ultrasound": RecordDataset([{"word": w, "calipers": "yes" if i % 2 else "no"} for i, w in enumerate(word)]),
            "cytology": RecordDataset([{"level1": v} for v in level1])}
    data["mr"].confounders, data["ultrasound"].confounders, data["cytology"].confounders = ["plane"], ["word", "calipers"], []
    noise = np.random.default_rng(9)
    features = {}
    for name, (x, y) in {"mr": (mr_x, mr_y), "ultrasound": (us_x, us_y), "cytology": (cy_x, cy_y)}.items():
        features[("med", name)] = (x, y)
        features[("enc", name)] = (x + noise.normal(scale=2.0, size=x.shape), y)
    probes = (study.probe_results(features, progress=False), study.confounder_results(features, data),
              study.subclass_results(features, data))
    return features, data, probes


def test_probe_frames_keep_their_probe_results(run):
    features, data, (results, confounders, subclasses) = run
    fits = fitted_probes(results)
    assert list(fits) == [(m, d, "random") for m, d in features]
    fit = fits[("med", "mr", "random")]
    assert results.iloc[0]["cv_accuracy_mean"] == fit.cv_accuracy[0] and len(fit.cv_index) == results.iloc[0]["n_train"]
    assert set(fitted_probes(confounders)) == {(m, d, c) for m, d in features for c in data[d].confounders}
    assert set(fitted_probes(subclasses)) == {(m, "cytology", p) for m in ("med", "enc") for p in ("microbe", "negative")}
    assert fitted_probes(pd.DataFrame()) == {}  # a frame without probes


def test_claim_evidence_fits_nothing(run, monkeypatch):
    from sklearn.svm import LinearSVC

    monkeypatch.setattr(LinearSVC, "fit", lambda *a, **k: pytest.fail("claim_evidence fitted a probe"))
    features, data, probes = run
    assert len(claim_evidence(features, data, {"medical": "med", "encoder": "enc"}, *probes)) == 16


def test_claim_evidence_keys_and_values(run):
    features, data, (results, confounders, subclasses) = run
    ev = claim_evidence(features, data, {"medical": "med", "encoder": "enc"}, results, confounders, subclasses)
    assert set(ev) == {
        "oof_accuracy_medical", "oof_accuracy_encoder", "plane_r2_medical", "malignancy_r2_medical",
        "plane_r2_encoder", "malignancy_r2_encoder", "oof_tumour_presence_accuracy_medical", "majority_tumour_presence",
        "oof_malignancy_accuracy_medical", "majority_malignancy", "oof_word_accuracy_medical", "majority_word",
        "oof_calipers_accuracy_medical", "majority_calipers", "oof_microbe_subclass_accuracy_medical",
        "majority_microbe_subclass"}
    assert all(isinstance(e, Evidence) for e in ev.values())
    # the mean over datasets of each dataset's out-of-fold accuracy
    fits = fitted_probes(results)
    per_dataset = [fits[("med", n, "random")].cv_correct().mean() for n in data]
    assert ev["oof_accuracy_medical"].point() == pytest.approx(np.mean(per_dataset))
    assert ev["oof_accuracy_medical"].n_items == ev["oof_accuracy_encoder"].n_items == 96 + 72 + 128  # same items
    assert ev["oof_accuracy_medical"].point() > ev["oof_accuracy_encoder"].point()  # the noisier copy loses
    assert ev["majority_tumour_presence"].point() == 0.75 and ev["majority_malignancy"].point() == pytest.approx(2 / 3)
    assert ev["oof_tumour_presence_accuracy_medical"].n_items == 96 and ev["oof_malignancy_accuracy_medical"].n_items == 72
    assert ev["majority_word"].point() == pytest.approx(1 / 3, abs=0.02) and ev["majority_calipers"].point() == 0.5
    assert ev["oof_word_accuracy_medical"].point() > 0.6  # the word shifts one feature: decodable
    assert ev["oof_calipers_accuracy_medical"].point() < 0.75  # calipers drawn into nothing: about chance
    assert ev["oof_microbe_subclass_accuracy_medical"].n_items == 64 and ev["majority_microbe_subclass"].point() == 0.25
    # plane is independent of the features, malignancy follows the classes
    assert ev["plane_r2_medical"].point() < 0.1 < ev["malignancy_r2_medical"].point()
    assert ev["plane_r2_medical"].point() == pytest.approx(
        explained_variance(features[("med", "mr")][0], data["mr"].column("plane")))


def test_claim_evidence_leaves_out_what_the_run_lacks(run):
    features, data, (results, confounders, subclasses) = run
    encoder_only = {k: v for k, v in features.items() if k[0] == "enc"}
    ev = claim_evidence(encoder_only, data, {"encoder": "enc"}, study.probe_results(encoder_only, progress=False))
    assert set(ev) == {"oof_accuracy_encoder", "plane_r2_encoder", "malignancy_r2_encoder"}
    data_without_plane = {**data, "mr": RecordDataset(data["mr"].records)}
    data_without_plane["mr"].confounders = []
    assert "plane_r2_encoder" not in claim_evidence(features, data_without_plane, {"encoder": "enc"}, results)
    without_factors = claim_evidence(features, data, {"medical": "med"}, results)  # no confounder / subclass frames
    assert "oof_tumour_presence_accuracy_medical" in without_factors and "majority_word" not in without_factors
    assert "oof_microbe_subclass_accuracy_medical" not in without_factors
