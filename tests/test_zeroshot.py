"""Prompt-pair zero-shot classification and alignment on a hand-built fake dual encoder."""

import numpy as np
import pytest
import torch

from medvl_core.errors import ParameterError
from medvl_core.eval.zeroshot import (
    ZeroShotClassifier,
    alignment,
    prompt_pairs,
    report_alignment,
    sentence_alignment,
)

LABELS = ["Cardiomegaly", "Edema", "Pleural Effusion"]


class FakeDualEncoder(torch.nn.Module):
    """Text 'x' -> +e_k, 'no x' -> -e_k for label k; images are already embeddings."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.0))  # gives the model a device
        self.logit_scale = torch.tensor(10.0)
        self.text_calls = 0
        self.image_calls = 0
        self.modes = []

    def encode_text(self, texts):
        self.text_calls += 1
        rows = []
        for text in texts:
            negated = text.startswith("no ")
            k = [label.lower() for label in LABELS].index(text.removeprefix("no "))
            rows.append(torch.eye(len(LABELS))[k] * (-1 if negated else 1))
        return torch.stack(rows)

    def encode_images(self, batch):
        self.image_calls += 1
        self.modes.append((self.training, torch.is_grad_enabled()))
        return torch.nn.functional.normalize(batch, dim=-1)


def test_prompt_pairs_lowercase_by_default():
    pos, neg = prompt_pairs(["Lung Opacity"])
    assert pos == ["lung opacity"] and neg == ["no lung opacity"]
    pos, neg = prompt_pairs(["Edema"], positive="findings of {label}", negative="no {label}", lower=False)
    assert pos == ["findings of Edema"] and neg == ["no Edema"]
    with pytest.raises(ParameterError, match="negative"):
        prompt_pairs(["Edema"], negative="normal")


def test_probabilities_follow_the_obvious_label():
    model = FakeDualEncoder()
    clf = ZeroShotClassifier(model, LABELS)
    images = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    probs = clf.probabilities(images)
    assert probs.shape == (5, 3)
    assert probs[0, 0] > 0.99 and probs[1, 1] < 0.01 and probs[2, 2] > 0.99
    assert probs[0, 1] == 0.5 and probs[3] == pytest.approx([0.5, 0.5, 0.5])
    cos = np.sqrt(1 / 3)
    assert probs[4, 0] == pytest.approx(np.exp(10 * cos) / (np.exp(10 * cos) + np.exp(-10 * cos)))


def test_prompt_embeddings_computed_once_and_batches_under_no_grad():
    model = FakeDualEncoder()
    model.train()
    clf = ZeroShotClassifier(model, LABELS)
    batches = [torch.randn(5, 3) for _ in range(4)]
    probs = clf.predict_dataset(iter(batches))
    clf.predict_dataset([{"image": b} for b in batches])
    clf.probabilities(torch.randn(2, 3))
    assert model.text_calls == 1 and model.image_calls == 8
    assert probs.shape == (20, 3)
    np.testing.assert_allclose(probs, clf.probabilities(torch.cat(batches)), atol=1e-6)
    assert set(model.modes) == {(False, False)} and model.training


def test_errors_name_the_parameter():
    clf = ZeroShotClassifier(FakeDualEncoder(), LABELS)
    with pytest.raises(ParameterError, match="image_embeddings"):
        clf.probabilities(torch.zeros(2, 5))
    with pytest.raises(ParameterError, match="labels"):
        ZeroShotClassifier(FakeDualEncoder(), [])


def test_alignment_measures():
    img = np.array([[1.0, 0.0], [0.0, 2.0]])
    txt = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert alignment(img, txt) == pytest.approx((1 + np.sqrt(0.5)) / 2)
    assert report_alignment(torch.tensor(img), torch.tensor(txt)) == pytest.approx(alignment(img, txt))
    sentences = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert sentence_alignment(img, sentences, [0, 1, 1]) == pytest.approx((1 + 1 - 1) / 3)
    with pytest.raises(ParameterError, match="owner_index"):
        sentence_alignment(img, sentences, [0, 2, 1])
