"""Relaxed similarity, cosine statistics, vocabulary, kNN and the linear-probe protocol."""

import numpy as np
import pytest
import torch

from medvl_core.eval.knn import cosine_topk
from medvl_core.eval.probing import ProbeResult, linear_probe, make_probe, svc_c
from medvl_core.eval.similarity import near_duplicate_fraction, off_diagonal, pairwise_cosine
from medvl_core.losses.relaxed import relax_positive, relaxed_similarity
from medvl_core.text.vocab import build_vocabulary, word_tokens


def test_relaxed_similarity_follows_eq3_on_diagonal_only():
    sim = torch.tensor([[0.8, 0.3, -0.2], [0.1, 0.25, 0.9], [0.4, 0.6, -0.3]])
    out = relaxed_similarity(sim, threshold=0.5, alpha=10.0)
    expected_diag = torch.tensor([1 / (1 + np.exp(-10 * 0.3)), 0.25 / 1.0, -0.3])
    assert torch.allclose(out.diagonal(), expected_diag.float(), atol=1e-6)
    off = ~torch.eye(3, dtype=torch.bool)
    assert torch.equal(out[off], sim[off])


def test_relax_positive_is_continuous_at_threshold_and_monotone():
    s = torch.linspace(-1, 1, 2001)
    r = relax_positive(s, 0.5, 10.0)
    assert torch.all(r[1:] >= r[:-1])
    assert relax_positive(torch.tensor(0.5), 0.5, 10.0).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="square"):
        relaxed_similarity(torch.zeros(2, 3))


def test_relaxed_similarity_has_gradients():
    sim = torch.rand(4, 4, requires_grad=True)
    relaxed_similarity(sim).sum().backward()
    assert sim.grad is not None and torch.all(torch.isfinite(sim.grad))


def test_cosine_statistics():
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    sim = pairwise_cosine(emb)
    assert np.allclose(np.diag(sim), 1.0) and sim[0, 1] == pytest.approx(1.0) and sim[0, 2] == pytest.approx(0.0)
    assert len(off_diagonal(sim)) == 6
    assert near_duplicate_fraction(sim, 0.9) == pytest.approx(2 / 6)


def test_vocabulary_counts_specials_and_roundtrip():
    texts = ["No pleural effusion.", "Small left pleural effusion.", "Heart size XXXX normal."]
    assert word_tokens(texts[2]) == ["heart", "size", "normal", "."]
    vocab = build_vocabulary(texts, min_count=2)
    assert vocab.itos[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert vocab.itos[4:] == [".", "effusion", "pleural"]
    ids = vocab.encode("pleural mass.")
    assert ids[0] == vocab.stoi["<start>"] and ids[2] == vocab.stoi["<unk>"] and ids[-1] == vocab.stoi["<end>"]
    assert vocab.decode(ids) == "pleural ."


def test_knn_retrieval():
    gallery = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    idx, sims = cosine_topk([[1.0, 0.05]], gallery, k=2)
    assert list(idx[0]) == [0, 1] and sims[0, 0] >= sims[0, 1]


def test_probe_protocol_c_split_and_train_only_scaling():
    assert svc_c(200) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(size=(120, 5)) + y[:, None] * 3.0
    result = linear_probe(x, y, seed=0)
    assert (result.n_train, result.n_test) == (96, 24)
    assert result.cv_accuracy[0] > 0.9 and result.test_accuracy > 0.9
    # the CV's out-of-fold predictions are kept: its fold accuracies come back exactly
    assert len(result.cv_index) == len(result.cv_predicted) == 96 and sorted(set(result.cv_fold)) == [0, 1, 2, 3, 4]
    assert np.array_equal(result.cv_true, y[result.cv_index])
    fold_accuracy = [result.cv_correct()[result.cv_fold == k].mean() for k in range(5)]
    assert (np.mean(fold_accuracy), np.std(fold_accuracy)) == pytest.approx(result.cv_accuracy, abs=1e-12)
    assert len(ProbeResult((1.0, 0.0), (1.0, 0.0), 1.0, 1.0, 8, 2).cv_correct()) == 0  # older constructors still work
    model = make_probe(10).fit(x[:10] + 100.0, np.array([0, 1] * 5))
    assert model[0].mean_ == pytest.approx((x[:10] + 100.0).mean(axis=0))
    assert model[1].C == pytest.approx(10.0)


def test_record_dataset_columns_and_first_per_class():
    from medvl_core.data.base import RecordDataset

    data = RecordDataset([{"id": i, "class_name": c} for i, c in enumerate("abbac")])
    assert data.first_index_per() == [0, 1, 4]
    assert data.column("id") == [0, 1, 2, 3, 4]


def test_relax_positive_continuous_at_zero_and_threshold():
    eps = 1e-6
    for t in (0.3, 0.5):
        for point in (0.0, t):
            left = relax_positive(torch.tensor(point - eps, dtype=torch.float64), t, 10.0)
            right = relax_positive(torch.tensor(point + eps, dtype=torch.float64), t, 10.0)
            assert abs(float(left - right)) < 1e-4
    assert relax_positive(torch.tensor(0.25), 0.5, 10.0).item() == pytest.approx(0.25)
