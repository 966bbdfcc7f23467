"""Perturbation loss (image vs its report and the report's perturbations) and the combined objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medvl_core.errors import ParameterError
from medvl_core.losses import LossWeights, MultiScaleObjective, clip_loss, perturbation_logits, perturbation_loss
from medvl_core.models.multiscale import MultiScaleOutput


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def test_perturbation_loss_matches_a_per_image_cross_entropy_over_available_candidates():
    image, original, perturbed = unit(3, 8), unit(3, 8, seed=1), unit(3, 4, 8, seed=2)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    total = 0.0
    for b in range(3):
        candidates = [original[b]] + [perturbed[b, k] for k in range(4) if mask[b, k]]
        logits = [float(image[b] @ c) / 0.07 for c in candidates]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert perturbation_loss(image, original, perturbed, mask).item() == pytest.approx(total / 3, rel=1e-9)
    logits = perturbation_logits(image, original, perturbed, mask)
    assert logits.shape == (3, 5) and torch.isinf(logits[2, 1:]).all() and torch.isfinite(logits[:, 0]).all()


def test_perturbation_loss_is_low_when_the_original_is_closest_and_high_otherwise():
    image = unit(4, 8)
    far = F.normalize(-image.unsqueeze(1).repeat(1, 3, 1) + 0.1 * unit(4, 3, 8, seed=3), dim=-1)
    assert perturbation_loss(image, image, far).item() < 1e-6
    assert perturbation_loss(image, far[:, 0], torch.cat([image.unsqueeze(1), far[:, 1:]], 1)).item() > 10


def test_perturbation_loss_rejects_bad_shapes_and_temperature():
    image = unit(2, 8)
    with pytest.raises(ParameterError, match="perturbed"):
        perturbation_loss(image, image, unit(2, 8))
    with pytest.raises(ParameterError, match="mask"):
        perturbation_loss(image, image, unit(2, 3, 8), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ParameterError, match="temperature"):
        perturbation_loss(image, image, unit(2, 3, 8), temperature=0)
    with pytest.raises(ParameterError, match=">= 0"):
        LossWeights(local=-0.1)


class FixedOutputs(torch.nn.Module):
    """A stand-in model returning fixed MultiScaleOutputs (B=4 images, K=2 perturbations each)."""

    def __init__(self):
        super().__init__()
        self.out = MultiScaleOutput(unit(4, 8), unit(4, 5, 8, seed=1), unit(4 + 8, 8, seed=2),
                                    unit(12, 3, 8, seed=3), torch.ones(12, 3, dtype=torch.bool))

    def forward(self, images, text_input, attention_mask, word_ids):
        return self.out


def test_objective_adds_weighted_terms_and_skips_zero_weights():
    model = FixedOutputs()
    batch = {"images": None, "text_input": None, "attention_mask": None, "word_ids": torch.zeros(12, 3, dtype=torch.long),
             "perturbation_mask": torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]], dtype=torch.bool)}
    out = model.out
    convirt = MultiScaleObjective(LossWeights())(model, batch)
    assert convirt["loss"].item() == pytest.approx(clip_loss(out.image, out.text[:4], 1 / 0.07).item(), rel=1e-9)
    assert convirt["local"].item() == 0 and convirt["perturbation"].item() == 0
    ours = MultiScaleObjective(LossWeights(local=0.1, perturbation=0.1))(model, batch)
    pert = perturbation_loss(out.image, out.text[:4], out.text[4:].reshape(4, 2, 8), batch["perturbation_mask"])
    assert ours["perturbation"].item() == pytest.approx(pert.item(), rel=1e-9)
    assert ours["local"].item() > 0
    expected = ours["global"] + 0.1 * ours["local"] + 0.1 * ours["perturbation"]
    assert ours["loss"].item() == pytest.approx(expected.item(), rel=1e-9)
