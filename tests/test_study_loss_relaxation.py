"""The contrastive ablation recipe end to end on a tiny SynthCXR world with tiny towers (both profiles)."""

import numpy as np
import pytest
import torch

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
    assert [v.framework for v in cs.ablation_variants(framework="uniclip")] == ["uniclip"] * 4


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


def test_slip_and_uniclip_arms_train_on_cached_views(tmp_path, towers):
    study = cs.prepare_study(*towers, labels=LABELS, root=tmp_path / "w", progress=False, views=2, **WORLD)
    assert study.train.view_features.shape == (len(study.train.dataset), 2, 32)
    assert study.train.view_params.shape == (len(study.train.dataset), 2, 5)
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, progress=False, device="cpu")
    variants = cs.ablation_variants(2, framework="slip")[3:] + cs.ablation_variants(2, framework="uniclip")[3:]
    assert [v.name for v in variants] == ["SLIP: + both", "UniCLIP: + both"]
    result = cs.run_ablation(study, variants, [0], config, embed_dim=16, progress=False)
    assert result.models["SLIP: + both"].ssl_head is not None
    assert result.models["UniCLIP: + both"].domain_similarity is not None
    assert result.test_probs["UniCLIP: + both"][0].shape == (30, 3)
    no_views = cs.prepare_study(*towers, labels=LABELS, root=tmp_path / "w", progress=False, **WORLD)
    with pytest.raises(cs.MedvlError, match="views=2"):
        cs.run_ablation(no_views, variants[:1], [0], config, embed_dim=16, progress=False)


def test_sampled_sentences_are_joined_and_encoded_not_averaged(towers):
    from medvl_core.data.pairs import ImageTextPairs, epoch_text
    from medvl_core.models.cache import EpochTextFeatures

    reports = ["Heart is enlarged. No effusion. Lungs clear. Small nodule.", "Normal chest.", "A. B. C. D. E."]
    texts = EpochTextFeatures(towers[1], reports, 2, seed=0, epochs=3, progress=False)
    assert texts(1).shape == (3, 32) and texts.n_distinct <= 3 * 3
    torch.testing.assert_close(texts(4), texts(1))  # draws repeat every `epochs` epochs
    second = [epoch_text(r, 2, 0, 1, i) for i, r in enumerate(reports)]
    assert all(len(t.split(". ")) <= 2 for t in second) and second[1] == "Normal chest."
    tokens = towers[1].tokenize(second)
    with torch.no_grad():
        encoded = towers[1].eval()(tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(texts(1), encoded, atol=1e-5, rtol=1e-4)

    from PIL import Image

    class Reports:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"id": i, "image": Image.new("RGB", (32, 32)), "text": reports[i]}

    pairs = ImageTextPairs(Reports(), towers[0].preprocess, sentences_per_report=2, seed=0)
    pairs.set_epoch(1)
    assert [pairs.text_for(i) for i in range(3)] == second  # the GPU path draws the same sentences
