"""Contrastive losses against direct per-row computations; relaxed positives; SimCLR; the training objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medvl_core.errors import ParameterError
from medvl_core.losses import ContrastiveObjective, clip_loss, relax_positive, relaxed_similarity, simclr_loss
from medvl_core.losses.uniclip import mp_nce_loss, uniclip_loss
from medvl_core.models.dual_encoder import build_dual_encoder
from medvl_core.models.uniclip import DomainSimilarity

DIAGONAL = [0.9, 0.6, 0.5, 0.3, 0.1, 0.0, -0.2, -0.7]  # covers s >= t, 0 <= s < t, s < 0 (t = 0.5)


def pairs_with_diagonal(cosines, dim=16, seed=0):
    """Unit vectors img_i, txt_i with cos(img_i, txt_i) = cosines[i] exactly (float64)."""
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(len(cosines), dim, generator=g, dtype=torch.float64), dim=-1)
    other = torch.randn(len(cosines), dim, generator=g, dtype=torch.float64)
    other = F.normalize(other - (other * img).sum(-1, keepdim=True) * img, dim=-1)
    c = torch.tensor(cosines, dtype=torch.float64)[:, None]
    return img, c * img + torch.sqrt(1 - c**2) * other


def infonce_by_rows(sim: np.ndarray, scale: float) -> float:
    """Mean of row-wise and column-wise cross-entropy with the diagonal as target, written as loops."""
    n = sim.shape[0]
    total = 0.0
    for matrix in (sim, sim.T):
        for i in range(n):
            logits = [scale * matrix[i, j] for j in range(n)]
            total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    return total / (2 * n)


def relax_by_hand(s: float, t: float, alpha: float) -> float:
    """Eq. (3) of Jang et al. for one positive similarity."""
    if s >= t:
        return 1.0 / (1.0 + math.exp(-alpha * (s - t)))
    if s >= 0:
        return s / (2 * t)
    return s


def test_clip_loss_matches_row_by_row_cross_entropy():
    img, txt = pairs_with_diagonal(DIAGONAL)
    sim = (img @ txt.T).numpy()
    for scale in (1.0, 14.3, 100.0):
        assert clip_loss(img, txt, scale).item() == pytest.approx(infonce_by_rows(sim, scale), rel=1e-9)


def test_clip_loss_normalises_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    loss = clip_loss(img, txt, 10.0)
    assert loss.item() == pytest.approx(clip_loss(3 * img, 0.5 * txt, 10.0).item(), rel=1e-6)
    assert loss.item() == pytest.approx(clip_loss(txt, img, 10.0).item(), rel=1e-6)


@pytest.mark.parametrize("t, alpha", [(0.5, 10.0), (0.3, 20.0)])
def test_relaxed_diagonal_changes_loss_exactly_as_by_hand(t, alpha):
    img, txt = pairs_with_diagonal(DIAGONAL)
    sim = (img @ txt.T).numpy()
    scale = 14.3
    relaxed = sim.copy()
    for i in range(len(DIAGONAL)):
        relaxed[i, i] = relax_by_hand(sim[i, i], t, alpha)
    expected = infonce_by_rows(relaxed, scale)
    got = clip_loss(img, txt, scale, relax=(t, alpha)).item()
    assert got == pytest.approx(expected, rel=1e-9)
    assert abs(got - clip_loss(img, txt, scale).item()) > 1e-4
    assert clip_loss(img, txt, scale, relax={"threshold": t, "alpha": alpha}).item() == pytest.approx(got, rel=1e-12)
    # off-diagonal entries untouched: relaxed matrix = by-hand matrix
    np.testing.assert_allclose(relaxed_similarity(img @ txt.T, t, alpha).numpy(), relaxed, atol=1e-12)


def test_gradients_finite_with_and_without_relaxation():
    img, txt = pairs_with_diagonal(DIAGONAL)
    for relax in (None, (0.5, 10.0), (0.3, 50.0)):
        a, b = img.clone().requires_grad_(), txt.clone().requires_grad_()
        log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
        clip_loss(a, b, log_scale.exp(), relax=relax).backward()
        for grad in (a.grad, b.grad, log_scale.grad):
            assert grad is not None and torch.isfinite(grad).all()


def test_bad_relax_and_shapes_are_clear():
    x = torch.randn(3, 4)
    with pytest.raises(ParameterError, match="threshold"):
        clip_loss(x, x, 1.0, relax={"t": 0.5})
    with pytest.raises(ParameterError, match="relax="):
        clip_loss(x, x, 1.0, relax="strong")
    with pytest.raises(ParameterError, match="matching"):
        clip_loss(x, torch.randn(2, 4), 1.0)


def test_simclr_matches_direct_computation():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    temperature = 0.2
    z = F.normalize(torch.cat([z1, z2]), dim=-1).numpy()
    n2, b = z.shape[0], z1.shape[0]
    total = 0.0
    for k in range(n2):
        positive = (k + b) % n2
        denom = sum(math.exp(z[k] @ z[j] / temperature) for j in range(n2) if j != k)
        total += -(z[k] @ z[positive] / temperature) + math.log(denom)
    assert simclr_loss(z1, z2, temperature).item() == pytest.approx(total / n2, rel=1e-5)
    assert simclr_loss(z2, z1, temperature).item() == pytest.approx(total / n2, rel=1e-5)
    a = z1.clone().requires_grad_()
    simclr_loss(a, z2, temperature).backward()
    assert torch.isfinite(a.grad).all()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=16, image_size=32, ssl_dim=8, ssl_hidden_dim=16)


def batch(model, views=False, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = model.tokenize([f"finding number {i}." for i in range(b)])
    out = {"images": torch.randn(b, 3, 32, 32, generator=g), **tokens}
    if views:
        out["views"] = torch.randn(2, b, 3, 32, 32, generator=g)
    return out


def test_clip_objective_equals_clip_loss_of_model_outputs(model):
    model.eval()
    data = batch(model)
    for relax in (None, {"threshold": 0.5, "alpha": 10.0}):
        out = ContrastiveObjective("clip", relax=relax)(model, data)
        img, txt, scale = model(data["images"], data["input_ids"], data["attention_mask"])
        assert set(out) == {"loss", "clip", "ssl"} and out["ssl"].item() == 0.0
        assert out["loss"].item() == pytest.approx(clip_loss(img, txt, scale, relax=relax).item(), rel=1e-6)


def test_slip_objective_adds_weighted_simclr_and_trains_the_head(model):
    model.train()
    model.zero_grad()
    data = batch(model, views=True)
    out = ContrastiveObjective("slip", ssl_weight=0.5, ssl_temperature=0.1)(model, data)
    assert out["ssl"].item() > 0
    assert out["loss"].item() == pytest.approx(out["clip"].item() + 0.5 * out["ssl"].item(), rel=1e-6)
    out["loss"].backward()
    head_grads = [p.grad for p in model.ssl_head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in head_grads)
    assert model.log_logit_scale.grad is not None
    model.zero_grad()
    model.eval()


def test_objective_errors_are_clear(model):
    with pytest.raises(ParameterError, match="clip, slip, uniclip"):
        ContrastiveObjective("unclip")
    with pytest.raises(ParameterError, match="domain_similarity"):
        ContrastiveObjective("uniclip")(model, batch(model, views=True))
    with pytest.raises(ParameterError, match="views"):
        ContrastiveObjective("slip")(model, batch(model))
    no_head = build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=16, image_size=32)
    with pytest.raises(ParameterError, match="ssl_dim"):
        ContrastiveObjective("slip")(no_head, batch(no_head, views=True))


# --- UniCLIP -------------------------------------------------------------------------------------


def test_mp_nce_contrasts_each_positive_with_negatives_only():
    logits = torch.tensor([[9.0, 1.0, 0.5, -1.0], [1.0, 9.0, 2.0, 0.0], [0.5, 2.0, 9.0, 3.0], [-1.0, 0.0, 3.0, 9.0]])
    positive = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.bool)

    def pair(a, p, negatives):
        return math.log(math.exp(logits[a, p]) + sum(math.exp(logits[a, n]) for n in negatives)) - logits[a, p].item()

    expected = (pair(0, 1, [2, 3]) + pair(1, 0, [2, 3]) + pair(2, 3, [0, 1]) + pair(3, 2, [0, 1])) / 4
    assert mp_nce_loss(logits, positive).item() == pytest.approx(expected, rel=1e-6)
    # two positives per anchor: each is contrasted with the negatives, not with the other positive
    positive3 = torch.zeros(3, 3, dtype=torch.bool)
    positive3[0, 1] = positive3[0, 2] = True
    l3 = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    only_anchor = mp_nce_loss(l3, positive3).item()
    assert only_anchor == pytest.approx((math.log(math.exp(2.0)) - 2.0 + math.log(math.exp(1.0)) - 1.0) / 2, abs=1e-6)


def test_domain_similarity_scales_and_offsets_each_domain_pair():
    sim = DomainSimilarity(init_temperature=0.5)
    with torch.no_grad():
        sim.offset.copy_(torch.tensor([0.1, 0.2, 0.3]))
    cos = torch.full((3, 3), 0.5)
    out = sim(cos, torch.tensor([0, 0, 1]))  # image, image, text
    assert out[0, 1].item() == pytest.approx((0.5 - 0.1) * 2) and out[0, 2].item() == pytest.approx((0.5 - 0.2) * 2)
    assert out[2, 2].item() == pytest.approx((0.5 - 0.3) * 2) and out[2, 0].item() == pytest.approx(out[0, 2].item())


def test_uniclip_loss_by_hand_with_relaxed_positives():
    g = torch.Generator().manual_seed(0)
    view, text = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
    sim = DomainSimilarity(init_temperature=1.0)  # scale 1, offset 0: logits are the (relaxed) cosines
    z = torch.nn.functional.normalize(torch.cat([view, text]), dim=-1)
    cos = z @ z.T
    for relax in (None, (0.5, 10.0)):
        pos = {0: [2], 1: [3], 2: [0], 3: [1]}  # sample 0 = rows 0 (view) and 2 (text), sample 1 = rows 1 and 3
        losses = []
        for a, ps in pos.items():
            negatives = [n for n in range(4) if n != a and n not in ps]
            for p in ps:
                s = relax_positive(cos[a, p], *relax).item() if relax else cos[a, p].item()
                losses.append(math.log(math.exp(s) + sum(math.exp(cos[a, n].item()) for n in negatives)) - s)
        assert uniclip_loss([view], text, sim, relax).item() == pytest.approx(sum(losses) / 4, rel=1e-5)


def test_uniclip_objective_trains_aug_embedding_and_similarity_on_cached_views():
    torch.manual_seed(0)
    model = build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=16, trainable="projections",
                               aug_params=5, domain_similarity=True).train()
    g = torch.Generator().manual_seed(1)
    data = {"image_features": torch.randn(6, 32, generator=g), "text_features": torch.randn(6, 32, generator=g),
            "view_features": torch.randn(6, 2, 32, generator=g), "view_params": torch.randn(6, 2, 5, generator=g)}
    objective = ContrastiveObjective("uniclip", relax=(0.5, 10.0))
    out = objective(model, data)
    out["loss"].backward()
    assert model.domain_similarity.log_scale.grad.abs().sum() > 0 and model.domain_similarity.offset.grad is not None
    assert all(p.grad is not None for p in model.aug_embedding.parameters())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        loss = objective(model, data)["loss"]
        loss.backward()
        optimizer.step()
    assert loss.item() < out["loss"].item() - 0.5
    no_params = model.project_image_features(data["image_features"])
    zeros = model.project_image_features(data["image_features"], torch.zeros(6, 5))
    torch.testing.assert_close(no_params, zeros)  # evaluation = the identity view
