"""Fine-tuning evaluations: the pair classifier and the multi-label image classifier learn toy rules, copy the
caller's model, mask NaN labels and report the documented shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medvl_core.data.nli import NLI_LABELS, NLIPair
from medvl_core.errors import ParameterError
from medvl_core.eval.finetune import (
    finetune_text_classifier,
    image_classifier_scores,
    label_table,
    masked_bce,
)
from medvl_core.train import TrainConfig

WORDS = [f"w{i}" for i in range(8)]
LABELS = ["Consolidation", "Pleural Effusion"]


class BagOfWords(nn.Module):
    """Differentiable toy text tower: sum of word embeddings over a fixed vocabulary."""

    def __init__(self, dim=16):
        super().__init__()
        self.vocab = {w: i for i, w in enumerate(WORDS + ["not"])}
        self.embedding = nn.EmbeddingBag(len(self.vocab), dim, mode="sum")
        torch.nn.init.normal_(self.embedding.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, texts):
        ids = [torch.tensor([self.vocab[w] for w in t.split()]) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return self.embedding(torch.cat(ids), offsets)


def toy_pairs(n, seed):
    """Rule: same word -> entailment, "not" + same word -> contradiction, another word -> neutral."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(n):
        i, j = rng.choice(len(WORDS), size=2, replace=False)
        premise, label = WORDS[i], NLI_LABELS[k % 3]
        hypothesis = {"entailment": premise, "contradiction": f"not {premise}", "neutral": WORDS[j]}[label]
        pairs.append(NLIPair(premise, hypothesis, label))
    return pairs


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def text_config(**kw):
    return TrainConfig(**{"epochs": 4, "global_batch_size": 16, "lr": 1e-2, "progress": False, "device": "cpu", **kw})


def test_text_classifier_learns_a_separable_rule_and_leaves_the_model_alone():
    model = BagOfWords()
    before = state(model)
    result = finetune_text_classifier(model, toy_pairs(240, 0), toy_pairs(60, 1), text_config())
    assert result["accuracy"] > 0.9
    assert result["n_test"] == 60
    assert set(result["per_label"]) == set(NLI_LABELS)
    assert np.array(result["confusion"]).shape == (3, 3)
    assert np.array(result["confusion"]).sum() == 60
    assert len(result["history"]) == 4
    assert len(result["y_pred"]) == 60 and np.mean(result["y_pred"] == result["y_true"]) == result["accuracy"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_text_classifier_is_deterministic():
    runs = [finetune_text_classifier(BagOfWords(), toy_pairs(30, 0), toy_pairs(15, 1), text_config(epochs=2))
            for _ in range(2)]
    assert runs[0]["confusion"] == runs[1]["confusion"]
    assert runs[0]["history"][-1]["train_loss"] == runs[1]["history"][-1]["train_loss"]


def test_text_classifier_rejects_unknown_labels_and_empty_sets():
    bad = [NLIPair("w0", "w1", "maybe")]
    with pytest.raises(ParameterError, match="'maybe'"):
        finetune_text_classifier(BagOfWords(), bad, toy_pairs(3, 0), text_config())
    with pytest.raises(ParameterError, match="test is empty"):
        finetune_text_classifier(BagOfWords(), toy_pairs(3, 0), [], text_config())


def toy_images(n, seed, nan_fraction=0.0):
    """Features x in R^6; label 0 = x0 > 0, label 1 = x1 > 0; some labels not stated (NaN)."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    y[gen.random(y.shape) < nan_fraction] = np.nan
    return torch.from_numpy(x), y


def image_tower():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU())


def test_image_classifier_learns_labels_with_nan_masked_out():
    tower = image_tower().eval()
    before = state(tower)
    x_train, y_train = toy_images(400, 0, nan_fraction=0.3)
    x_test, y_test = toy_images(100, 1, nan_fraction=0.2)
    scores = image_classifier_scores(tower, x_train, y_train, x_test, LABELS, text_config(epochs=10, global_batch_size=32))
    table = label_table(y_test, scores, LABELS)
    assert list(table.columns) == ["label", "accuracy", "auroc", "positives", "n_test"]
    assert list(table["label"]) == LABELS
    assert (table["accuracy"] > 0.9).all() and (table["auroc"] > 0.95).all()
    assert list(table["n_test"]) == [int((~np.isnan(y_test[:, j])).sum()) for j in range(2)]
    assert list(table["positives"]) == [int(np.nansum(y_test[:, j])) for j in range(2)]
    assert all(torch.equal(before[k], v) for k, v in tower.state_dict().items())
    assert not tower.training


def test_masked_bce_ignores_nan_targets():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], requires_grad=True)
    targets = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])
    expected = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets[:, 0])
    loss = masked_bce(logits, targets)
    assert torch.isclose(loss, expected)
    loss.backward()
    assert torch.all(logits.grad[:, 1] == 0) and torch.all(logits.grad[:, 0] != 0)
    none = masked_bce(logits, torch.full((2, 2), float("nan")))
    assert none.item() == 0.0 and none.requires_grad


def test_label_table_counts_only_stated_entries():
    y = np.array([[1, np.nan], [0, np.nan], [1, np.nan]], dtype=np.float32)
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [0.4, 0.3]], dtype=np.float32)
    table = label_table(y, scores, ["a", "b"])
    assert table.loc[0, "accuracy"] == pytest.approx(2 / 3)
    assert table.loc[0, "auroc"] == 1.0
    assert (table.loc[0, "positives"], table.loc[0, "n_test"]) == (2, 3)
    assert table.loc[1, "n_test"] == 0 and np.isnan(table.loc[1, "accuracy"]) and np.isnan(table.loc[1, "auroc"])


def test_image_classifier_checks_label_shapes_and_values():
    x, y = toy_images(10, 0)
    with pytest.raises(ParameterError, match=r"Y_train has shape \(10, 2\), expected \(10, 3\)"):
        image_classifier_scores(image_tower(), x, y, x, LABELS + ["Edema"], text_config())
    y_uncertain = y.copy()
    y_uncertain[0, 0] = -1
    with pytest.raises(ParameterError, match="uncertain"):
        image_classifier_scores(image_tower(), x, y_uncertain, x, LABELS, text_config())
