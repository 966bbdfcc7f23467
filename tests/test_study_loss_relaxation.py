"""The contrastive ablation recipe end to end on a tiny SynthCXR world with tiny towers (both profiles)."""

import numpy as np
import pytest

from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.studies import loss_relaxation as cs
from medvl_core.train import TrainConfig

LABELS = ["Cardiomegaly", "Pleural Effusion", "Lung Opacity"]
WORLD = dict(n_studies=60, n_test_images=30, image_size=32, report_source="template")


@pytest.fixture(scope="module")
def towers():
    return build_image_encoder("tiny:cnn-32", image_size=32), build_text_encoder("tiny:text-32")


def test_variants_cover_table6():
    names = [(v.name, v.sentences_per_report, v.relax) for v in cs.ablation_variants(2, 0.4, 5.0)]
    assert names == [("baseline", None, None), ("+ sentence sampling", 2, None),
                     ("+ loss relaxation", None, (0.4, 5.0)), ("+ both", 2, (0.4, 5.0))]


@pytest.mark.parametrize("trainable", ["projections", "last"])
def test_ablation_runs_and_tables(tmp_path, towers, trainable):
    study = cs.prepare_study(*towers, labels=LABELS, root=tmp_path / "w", cache=trainable == "projections",
                             progress=False, **WORLD)
    assert study.test.labels.shape == (30, 3) and study.train.owners and len(study.train.owners) == len(study.train.dataset)
    config = TrainConfig(epochs=2, batch_size=16, lr=1e-3, progress=False, device="cpu")
    variants = cs.ablation_variants(2)[::3]
    result = cs.run_ablation(study, variants, [0, 1], config, embed_dim=16, trainable=trainable, progress=False)
    assert result.variants == ["baseline", "+ both"] and set(result.models) == {"baseline", "+ both"}
    probs = result.test_probs["+ both"][1]
    assert probs.shape == (30, 3) and np.all((probs > 0) & (probs < 1))
    assert np.allclose(result.ensemble("+ both"), (result.test_probs["+ both"][0] + probs) / 2)
    table = cs.ablation_table(result, study.test.labels)
    assert list(table["variant"]) == ["untrained (random projections)", "baseline", "+ both"]
    per_label = cs.per_label_table(result, study.test.labels)
    assert list(per_label.columns) == ["baseline", "+ both"] and per_label.index[-1] == "macro"
    ops = cs.operating_point_table(result, study.validate.labels, study.test.labels, "+ both", n_resamples=50)
    assert (ops["low"] <= ops["point"]).all() and (ops["point"] <= ops["high"]).all()
    sig = cs.significance_table(result, study.test.labels, n_resamples=50)
    assert list(sig["variant"]) == ["+ both"] and 0 < sig["p_value"].iloc[0] <= 1
    align = cs.alignment_table(result)
    assert align.shape == (2, 3)


def test_profile_mismatch_is_reported(tmp_path, towers):
    study = cs.prepare_study(*towers, labels=LABELS, root=tmp_path / "w", cache=True, progress=False, **WORLD)
    with pytest.raises(Exception, match="cache=False"):
        cs.fit_variant(study, cs.Variant("baseline"), 0, TrainConfig(epochs=1, progress=False), trainable="all")


def test_best_variant_picks_highest_ensemble_auroc():
    Y = np.array([[0.0], [1.0], [0.0], [1.0]])
    result = cs.AblationResult(["x"], test_probs={"a": {0: np.array([[0.9], [0.1], [0.8], [0.2]])},
                                                  "b": {0: np.array([[0.1], [0.9], [0.2], [0.8]])}})
    assert result.best_variant(Y) == "b"
