"""M3G Table 5 recipe (MONAI augmentations, trained or frozen tower, projection checks), Tables 1-4 helpers, Fig. S2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_m3g_clip import _write_dermavqa

from medvl_core.data.monai_augment import AUGMENTATIONS, MonaiAugment, view_seed
from medvl_core.errors import ParameterError
from medvl_core.studies.m3g_answer_generation.claude import answer_sentence, diagnosis_of
from medvl_core.studies.m3g_answer_generation.claude_arm import (
    TABLE1_POSTPROCESSING,
    claude_dry_run,
    claude_postprocessing_table,
    claude_rows,
)
from medvl_core.studies.m3g_answer_generation.clip import ViewFeaturePairs, fit_label_clip, make_augment, tower_features
from medvl_core.studies.m3g_answer_generation.embedding_maps import closeness, label_pca, modality_pca, similar_pairs
from medvl_core.studies.m3g_answer_generation.knn import KnnSetting, predict_labels, table2_setting, table3_settings
from medvl_core.studies.m3g_answer_generation.prepare import prepare_m3g
from medvl_core.studies.m3g_answer_generation.scores import knn_metric_keys, length_metrics, post_metric_keys, score
from medvl_core.studies.m3g_answer_generation.tables import knn_table, next_best_team, table4_panels
from medvl_core.train import TrainConfig

CONFIG = TrainConfig(epochs=2, lr=1e-2, weight_decay=0.001, device="cpu", progress=False)


def _image(seed=0, size=(40, 32)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny DermaVQA-layout world (3 labels, coloured images) prepared with tiny towers."""
    import os

    root = tmp_path_factory.mktemp("m3g")
    old = os.environ.get("MEDVL_DATA")
    os.environ["MEDVL_DATA"] = str(root)
    _write_dermavqa(root / "dermavqa")
    for k, path in enumerate(sorted((root / "dermavqa").glob("images_*/*.jpg"))):  # texture: views must differ
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        noise = np.random.default_rng(k).integers(-60, 60, size=pixels.shape)
        Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)).save(path)
    data = prepare_m3g("dermavqa", root=root / "dermavqa", splits=("train", "val"), image_encoder="tiny:cnn",
                       text_encoder="tiny:text", image_size=32)
    yield data
    if old is None:
        os.environ.pop("MEDVL_DATA", None)
    else:
        os.environ["MEDVL_DATA"] = old


# ------------------------------------------------------------------ MONAI augmentation

def test_monai_augment_is_seeded_and_keeps_rgb_images():
    augment = MonaiAugment()
    image = _image()
    first, again, other = augment(image, 3), augment(image, 3), augment(image, 4)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert first.mode == "RGB" and first.size == (26, 26)  # RandSpatialCrop: 80 % of the shorter side, square
    assert not all(np.array_equal(np.asarray(augment(image, s)), np.asarray(other)) for s in range(5, 9))
    assert augment.names == AUGMENTATIONS and "RandFlip" in repr(augment)
    flip = MonaiAugment(["RandFlip"], {"RandFlip": {"prob": 1.0}})
    assert np.array_equal(np.asarray(flip(image, 0)), np.asarray(image)[:, ::-1])
    view, params = augment.with_params(image)
    assert view.size == (26, 26) and params.shape == (1,) and 0 <= float(params[0]) < 1
    assert view_seed(0, 1, 2) == view_seed(0, 1, 2) != view_seed(0, 2, 2)
    assert make_augment([]) is None
    with pytest.raises(ParameterError, match="augmentations"):
        MonaiAugment(["RandBlur"])
    with pytest.raises(ParameterError, match="roi_scale"):
        MonaiAugment(["RandSpatialCrop"], {"RandSpatialCrop": {"roi_scale": 1.5}})(image, 0)


def test_view_feature_pairs_draw_one_cached_view_per_epoch():
    views = torch.arange(3 * 4 * 2, dtype=torch.float32).view(3, 4, 2)
    pairs = ViewFeaturePairs(views, torch.zeros(3, 5), seed=1)
    seen = set()
    for epoch in range(12):
        pairs.set_epoch(epoch)
        item = pairs[1]
        assert item["text_features"].shape == (5,)
        seen.add(pairs.view_of(1))
        assert torch.equal(item["image_features"], views[1, pairs.view_of(1)])
    assert len(seen) > 1  # epochs see different views


# ------------------------------------------------------------------ recipe

def test_frozen_tower_with_cached_views_and_augmentation_at_inference(toy):
    augment = MonaiAugment()
    fit = fit_label_clip(toy, 8, CONFIG, embed_dim=8, augment=augment, aug_views=2)
    assert fit.augment is augment and not fit.trained_tower
    plain = tower_features(fit, toy, "val")
    assert plain is toy.split("val").image_features  # frozen: the cached features
    augmented = tower_features(fit, toy, "val", augmented=True)
    assert augmented.shape == plain.shape and not torch.allclose(augmented, plain)
    assert torch.equal(augmented, tower_features(fit, toy, "val", augmented=True))  # seeded, cached
    labels = predict_labels(fit, toy, "val", KnnSetting("image", 2, k=1, augment=True))
    assert len(labels) == toy.split("val").n_cases and set(labels) <= set(toy.label_names)
    with pytest.raises(ParameterError, match="augmentation at inference"):
        predict_labels(None, toy, "val", KnnSetting("image", augment=True))
    with pytest.raises(ParameterError, match="aug_views"):
        fit_label_clip(toy, 8, CONFIG, embed_dim=8, augment=augment, aug_views=0)
    with pytest.raises(ParameterError, match="projection_layers"):
        fit_label_clip(toy, 8, CONFIG, embed_dim=8, projection_layers=2)


def test_trained_tower_changes_the_tower_and_leaves_the_shared_one_alone(toy):
    before = {k: v.clone() for k, v in toy.image_encoder.state_dict().items()}
    fit = fit_label_clip(toy, 8, CONFIG, embed_dim=8, train_tower=True, augment=MonaiAugment())
    assert fit.trained_tower and fit.model.visual is not toy.image_encoder
    assert all(torch.equal(before[k], v) for k, v in toy.image_encoder.state_dict().items())
    trained = fit.model.visual.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before if before[k].is_floating_point())
    assert not any(p.requires_grad for p in fit.model.text.parameters())
    features = tower_features(fit, toy, "val")
    assert features.shape == toy.split("val").image_features.shape
    assert not torch.allclose(features, toy.split("val").image_features)
    assert tower_features(fit, toy, "val") is features  # encoded once per (split, augmented)
    table = knn_table(toy, fit, table3_settings(k=1, pca=2), splits=("val",), postprocess=(True, True))
    assert list(table["setting"]) == [s.name for s in table3_settings(k=1, pca=2)]
    assert table["setting"].iloc[0].endswith("augmented at inference")


# ------------------------------------------------------------------ table helpers

def test_table_settings_and_metric_keys():
    settings = table3_settings(k=5, pca=16)
    assert [(s.gallery, s.pca, s.augment) for s in settings] == [
        ("image", 16, True), ("text", None, False), ("text", 16, False), ("image", None, False), ("image", 16, False)]
    assert table2_setting(5, 16) == settings[4]
    assert list(knn_metric_keys(settings).values()) == ["dbleu_image_image_pca_aug", "dbleu_image_text",
                                                        "dbleu_image_text_pca", "dbleu_image_image",
                                                        "dbleu_image_image_pca"]
    assert post_metric_keys("claude_")["It is [label]."] == "dbleu_claude_post_it_is"
    assert post_metric_keys()["query matching"] == "dbleu_post_query_match"
    table = pd.DataFrame([{"setting": "batch 256", "split": "test", "dBLEU": 8.4, "BP": 0.966, "ratio": 0.966,
                           "hyp_len": 461, "ref_len": 477}])
    assert length_metrics(table, "test", {"batch 256": "dbleu_batch_256"}) == {
        "bp_batch_256": 0.966, "ratio_batch_256": 0.966, "hyp_len_batch_256": 461, "ref_len_batch_256": 477}
    assert isinstance(length_metrics(table.astype({"hyp_len": float}), "test", {"batch 256": "dbleu_batch_256"})["hyp_len_batch_256"], int)
    assert length_metrics(pd.DataFrame(), "test", {"x": "dbleu_x"}) == {}


def test_claude_row_of_table4_recovers_the_diagnoses(toy):
    assert diagnosis_of(answer_sentence("hand eczema")) == "hand eczema" and diagnosis_of("") == ""
    assert diagnosis_of("psoriasis") == "psoriasis"
    valid = toy.split("val")
    answers = {"img 2-calls": [answer_sentence(label) for label in valid.labels]}
    table = claude_postprocessing_table(toy, "val", answers)
    assert list(table["setting"]) == ["label only", "It is [label].", "query matching",
                                      "It is [label]. + query matching"]
    assert table.set_index("setting").loc["It is [label].", "dBLEU"] > table.set_index("setting").loc["label only", "dBLEU"]
    assert claude_postprocessing_table(toy, "val", {}).empty
    assert len(claude_postprocessing_table(toy, "val", {"img 2-calls": answers["img 2-calls"][:2]}, max_cases=2)) == 4


def test_table1_scores_a_fixed_claude_answer_with_both_postprocessing_steps(toy):
    """Table 1 as the paper scored it (its Table 4 "Both" column repeats Table 1's 10.415): template + query matching."""
    valid = toy.split("val")
    fixed = {"img 2-calls": ["It is vitiligo."] * valid.n_cases}  # what run_scenario returns for a reply "vitiligo"
    assert valid.queries[0].endswith("Is this psoriasis?")  # the one query that names a dictionary disease
    row = claude_rows(fixed, valid, toy.dictionary)[0]
    both = ["It is psoriasis."] + ["It is vitiligo."] * (valid.n_cases - 1)
    assert TABLE1_POSTPROCESSING == "It is [label]. + query matching" and row["postprocessing"] == TABLE1_POSTPROCESSING
    assert row["dBLEU"] == score(both, valid)["dBLEU"] != score(fixed["img 2-calls"], valid)["dBLEU"]
    template_only = claude_rows(fixed, valid, toy.dictionary, post="It is [label].")[0]
    assert template_only["dBLEU"] == score(fixed["img 2-calls"], valid)["dBLEU"]


def test_dry_run_prints_only_the_chosen_requests_but_prices_all(toy, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    plan = claude_dry_run(toy, "val", "claude-3-opus-20240229", show=["img 2-calls"])
    assert list(plan.requests) == ["img 2-calls"] and len(plan.requests["img 2-calls"]) == 2
    assert len(plan.table()) == 5  # four scenarios and the total
    with pytest.raises(ParameterError, match="claude_shown_requests"):
        claude_dry_run(toy, "val", "claude-3-opus-20240229", show=["img 3-calls"])
    hot = claude_dry_run(toy, "val", "claude-3-opus-20240229", show=["img 2-calls"], temperature=0.7, max_tokens=64)
    assert {(body["temperature"], body["max_tokens"]) for body in hot.requests["img 2-calls"]} == {(0.7, 64)}


def test_label_pca_closeness_and_look_alike_pairs():
    frame = pd.DataFrame({"label": ["a", "b", "c", "d"], "pc1": [0.0, 0.1, 5.0, 5.2], "pc2": [0.0, 0.0, 0.0, 0.0]})
    close = closeness(frame, [("a", "b"), ("c", "d")])
    assert close["n_pairs"] == 2 and close["similar"] == pytest.approx(0.15) and close["ratio"] < 0.1
    assert np.isnan(closeness(frame, [])["ratio"])
    pairs = similar_pairs(["psoriasis", "atopic dermatitis", "vitiligo", "unknown"])
    assert pairs == [("atopic dermatitis", "psoriasis")]


def test_fig_s2_and_modality_separation(toy):
    frame = label_pca(toy)
    assert list(frame["label"]) == toy.label_names and {"pc1", "pc2"} <= set(frame.columns)
    fit = fit_label_clip(toy, 8, CONFIG, embed_dim=8)
    points, stats = modality_pca(fit, toy)
    assert set(points["kind"]) == {"image", "label text"}
    assert (points["kind"] == "label text").sum() == len(toy.label_names)
    assert -1 <= stats["silhouette_pca"] <= 1 and stats["centroid_distance_over_spread"] > 0


def test_table4_panels_from_metrics():
    metrics = {"dbleu_post_query_match": 3.0, "dbleu_post_it_is": 5.0, "dbleu_post_it_is_query_match": 9.0,
               "dbleu_constant_label": 1.0}
    panels, trivial = table4_panels(metrics, "synth-derm")
    paper, ours = panels.values()
    assert paper["CLIP Solution (batch 256)"] == {"Word Matching": 3.334, "Sentence Structure": 5.092, "Both": 10.119}
    assert ours == {"CLIP batch 256": {"Word Matching": 3.0, "Sentence Structure": 5.0, "Both": 9.0}}
    assert list(trivial.values()) == [{"next-best team": 3.827}, {"constant label": 1.0}]
    assert next_best_team() == 3.827  # Sec. 4, read from published.yaml
