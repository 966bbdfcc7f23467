"""Zhong et al.'s four variants, perturbed training pairs and the discrimination test (Table IV) on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medvl_core.errors import ParameterError
from medvl_core.losses import LossWeights
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.models.multiscale import ImageEmbedder, TextEmbedder
from medvl_core.studies import perturbed_report_discrimination as ps
from medvl_core.train import TrainConfig

WORLD = dict(n_studies=40, n_test_images=20, image_size=32, report_source="template")


@pytest.fixture(scope="module")
def towers():
    return build_image_encoder("tiny:cnn-32", image_size=32), build_text_encoder("tiny:text-32")


@pytest.fixture(scope="module")
def cached_study(towers, tmp_path_factory):
    return ps.prepare_perturbed_study(*towers, root=tmp_path_factory.mktemp("w"), cached=True, **WORLD)


def test_variants_map_to_loss_weights():
    weights = {v: ps.variant_weights(v, alpha=0.2, beta=0.3) for v in ps.VARIANTS}
    assert weights == {"ConVIRT": LossWeights(0.0, 0.0), "GLoRIA": LossWeights(0.2, 0.0),
                       "ours w/o local": LossWeights(0.0, 0.3), "ours": LossWeights(0.2, 0.3)}
    with pytest.raises(ParameterError, match="ConVIRT"):
        ps.variant_weights("CLIP")


def toy_split():
    texts = ["a small left effusion", "the heart is large"]
    perturbed = [{"reverse": "effusion left small a", "antonym_adjs": "a large right effusion", "shuffle_all": None},
                 {"reverse": "large is heart the", "antonym_adjs": None, "shuffle_all": None}]
    return ps.ReportSplit(torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4), texts, perturbed,
                          np.zeros((2, 0)), [])


def test_pairs_draw_available_perturbations_per_epoch_and_mask_the_rest(towers):
    pairs = ps.PerturbedPairs(toy_split(), lambda texts: {"n": len(texts), "texts": texts}, n_perturbations=2, seed=3)
    versions, valid = pairs.versions(0)
    assert sorted(versions) == ["a large right effusion", "effusion left small a"] and valid == [True, True]
    versions, valid = pairs.versions(1)
    assert versions == ["large is heart the", "the heart is large"] and valid == [True, False]
    drawn = {tuple(pairs.versions(0)[0]) for pairs.epoch in range(12)}
    assert len(drawn) == 2  # both orders of the two kinds occur across epochs
    pairs.set_epoch(5)
    assert pairs.versions(0) == pairs.versions(0)
    batch = pairs.collate([pairs[0], pairs[1]])
    assert batch["images"].shape == (2, 3, 4) and batch["n"] == 6
    assert batch["texts"][:2] == toy_split().texts and batch["perturbation_mask"].tolist() == [[True, True], [True, False]]
    assert batch["texts"][4:] == pairs.versions(1)[0]


def test_discrimination_accuracy_counts_wins_ties_and_chance():
    scores = pd.DataFrame({
        "image": [0, 0, 0, 1, 1, 2, 2],
        "kind": ["original", "reverse", "antonym_adjs", "original", "reverse", "original", "reverse"],
        "cosine": [0.9, 0.5, 0.95, 0.4, 0.4, 0.7, 0.1],
    })
    table = ps.discrimination_accuracy(scores).set_index("kind")
    assert table.loc["reverse", "accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert table.loc["antonym_adjs", "accuracy"] == 0 and table.loc["antonym_adjs", "n_images"] == 1
    overall = table.loc["overall (all candidates)"]
    assert overall["accuracy"] == pytest.approx((0 + 0.5 + 1) / 3)
    assert overall["chance"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3) and overall["n_images"] == 3
    assert list(table.index) == ["reverse", "antonym_adjs", "overall (all candidates)"]


def test_study_splits_are_perturbed_and_cached(cached_study):
    train = cached_study.train
    assert train.images.ndim == 3 and train.images.shape[0] == len(train.texts) == len(train.perturbed)
    assert all(set(p) == set(ps.PERTURBATIONS) for p in train.perturbed)
    assert all(v is None or v != t for t, p in zip(train.texts, train.perturbed) for v in p.values())
    assert cached_study.classify_test.images.shape[0] == 20
    again = ps.cached_perturbations(train.texts)
    assert again == train.perturbed


def test_four_variants_train_and_are_evaluated(cached_study):
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, progress=False, device="cpu")
    fits = ps.train_variants(cached_study, config, embed_dim=16, text_dim=32, text_layers=1, max_length=48)
    assert list(fits) == list(ps.VARIANTS)
    history = ps.loss_history(fits)
    last = history[history["epoch"] == 1].pivot(index="variant", columns="term", values="value")
    assert (last.loc["ConVIRT", ["local", "perturbation"]] == 0).all()
    assert last.loc["GLoRIA", "local"] > 0 and last.loc["GLoRIA", "perturbation"] == 0
    assert last.loc["ours w/o local", "perturbation"] > 0 and last.loc["ours w/o local", "local"] == 0
    assert (last.loc["ours", ["local", "perturbation"]] > 0).all()
    table = ps.discrimination_table(fits, cached_study.test)
    assert list(table.columns) == [*ps.VARIANTS, "chance", "n_images"]
    assert table.loc["overall (all candidates)", "n_images"] == len(cached_study.test.texts)
    assert ((table[list(ps.VARIANTS)] >= 0) & (table[list(ps.VARIANTS)] <= 1)).all().all()
    model = fits["ours"][0]
    text = TextEmbedder(model)(["no effusion", "large heart"])
    image = ImageEmbedder(model)(cached_study.test.images[:3])
    assert text.shape == (2, 16) and image.shape == (3, 16) and text.requires_grad


def test_perturbation_term_is_learned(cached_study):
    config = TrainConfig(epochs=12, batch_size=8, lr=3e-3, progress=False, device="cpu")
    _, result = ps.fit_variant(cached_study, "ours w/o local", config, beta=1.0, n_perturbations=3, embed_dim=16,
                               text_dim=32, text_layers=1, max_length=48)
    losses = result.history_frame()["train_perturbation"]
    assert losses.iloc[0] > 1.0 and losses.iloc[-3:].mean() < 0.6 * losses.iloc[0]  # chance: log(4) = 1.39


def test_trainable_towers_on_pixels(towers, tmp_path):
    study = ps.prepare_perturbed_study(*towers, root=tmp_path / "w", cached=False, max_train=16, max_test=6, **WORLD)
    assert isinstance(study.train.images, ps.PixelImages) and study.train.images[0].shape == (3, 32, 32)
    config = TrainConfig(epochs=1, batch_size=8, lr=1e-3, progress=False, device="cpu")
    before = [p.detach().clone() for p in study.image_tower.parameters()]
    model, result = ps.fit_variant(study, "ours", config, embed_dim=16, max_length=48)
    assert result.steps == 2 and np.isfinite(result.history[-1]["train_loss"])
    tower = model.image_backbone.tower
    assert tower is not study.image_tower and any(not torch.equal(a, b) for a, b in zip(before, tower.parameters()))
    table = ps.discrimination_accuracy(ps.discrimination_scores(model, study.test))
    assert table["n_images"].iloc[-1] == len(study.test.texts) > 0
    X, Y = ps.classification_arrays(study.classify_test, ["Consolidation", "Pleural Effusion"])
    assert X.shape == (20, 3, 32, 32) and Y.shape == (20, 2) and set(np.unique(Y[~np.isnan(Y)])) <= {0.0, 1.0}
    assert ImageEmbedder(model)(X[:2]).shape == (2, 16)
    with pytest.raises(ParameterError, match="not in this dataset"):
        ps.classification_arrays(study.classify_test, ["Tumour"])


def test_token_cache_matches_direct_tokenisation_and_reuses_rows(towers):
    from medvl_core.losses import word_index

    tokenizer = towers[1].tokenizer
    calls = []

    def tokenize(texts):
        calls.append(list(texts))
        return word_index(tokenizer, texts, 32)

    cache = ps.TokenCache(tokenize, tokenizer.pad_token_id)
    texts = ["small left effusion.", "no pneumothorax", "small left effusion."]
    direct = word_index(tokenizer, texts, 32)
    cached = cache(texts)
    assert all(torch.equal(cached[key], direct[key]) for key in ("input_ids", "attention_mask", "word_ids"))
    cache(["no pneumothorax"])
    assert calls == [["small left effusion.", "no pneumothorax"]]  # each distinct text tokenised once


def test_multiscale_model_outputs_and_word_order_sensitivity(towers):
    from medvl_core.errors import ParameterError as Err
    from medvl_core.models.multiscale import build_multiscale

    torch.manual_seed(0)
    model = build_multiscale(*towers, embed_dim=16, cached=True, text_dim=32, max_length=32).eval()
    grids = torch.randn(2, 4, towers[0].grid_dim)
    batch = model.tokenize(["small left effusion", "effusion left small"])
    out = model(grids, **batch)
    assert out.image.shape == (2, 16) and out.regions.shape == (2, 4, 16) and out.text.shape == (2, 16)
    assert out.words.shape == (2, 3, 16) and out.word_mask.all()
    assert torch.allclose(out.text.norm(dim=-1), torch.ones(2)) and torch.allclose(out.regions.norm(dim=-1), torch.ones(2, 4))
    assert not torch.allclose(out.text[0], out.text[1], atol=1e-4)  # same words, other order -> other embedding
    assert not any(p.requires_grad for p in model.text_backbone.embeddings.parameters())
    with pytest.raises(Err, match="cached grid"):
        model.encode_images(torch.randn(2, 4, 7))


def test_cached_perturbations_same_order_when_computed_and_when_read(tmp_path, monkeypatch):
    from medvl_core.studies.perturbed_report_discrimination import cached_perturbations

    monkeypatch.setenv("MEDVL_DATA", str(tmp_path))
    texts = ["There is a small left pleural effusion and mild cardiomegaly.", "The lungs are clear."]
    first = cached_perturbations(texts, seed=0)  # computed
    again = cached_perturbations(texts, seed=0)  # read from the cache
    assert [list(d) for d in first] == [list(d) for d in again] and first == again
