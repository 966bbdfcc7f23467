"""MEEMS heads (embedder, MLP classifier, baseline) and the caption IoU / BLEU proxies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medvl_core.errors import ParameterError
from medvl_core.studies.meems.caption_quality import caption_bleu, caption_iou, jaccard, mean_caption_iou
from medvl_core.studies.meems.networks import (
    PAPER_SIZES,
    ImageOnlyClassifier,
    MeemsClassifier,
    MeemsEmbedder,
    MlpClassifier,
)


def test_embedder_and_classifier_shapes_at_paper_sizes():
    embedder = MeemsEmbedder(image_dim=2048, caption_dim=512, **{k: PAPER_SIZES[k] for k in ("embed_hidden", "embed_dim")})
    linears = [m for m in embedder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2560, 1000), (1000, 200)]
    out = embedder(torch.randn(4, 2048), torch.randn(4, 512))
    assert out.shape == (4, 200)
    classifier = MlpClassifier(200, PAPER_SIZES["classifier_hidden"], 14)
    assert [(m.in_features, m.out_features) for m in classifier.modules() if isinstance(m, nn.Linear)] == [(200, 50), (50, 14)]
    assert classifier(out).shape == (4, 14)


def test_meems_classifier_uses_the_caption_state_and_baseline_ignores_it():
    torch.manual_seed(0)
    meems = MeemsClassifier(8, 6, n_outputs=2, embed_hidden=16, embed_dim=10, classifier_hidden=5, dropout=0.0).eval()
    image, hidden = torch.randn(3, 8), torch.randn(3, 6)
    assert meems(image, hidden).shape == (3, 2) and meems.embed(image, hidden).shape == (3, 10)
    assert not torch.allclose(meems(image, hidden), meems(image, hidden + 1.0))
    baseline = MeemsClassifier(8, 0, n_outputs=14, embed_hidden=16, embed_dim=10, classifier_hidden=5).eval()
    assert baseline(image).shape == (3, 14)
    with pytest.raises(ParameterError, match="caption_dim"):
        meems(image)
    with pytest.raises(ParameterError, match="expected image_dim"):
        meems(torch.randn(3, 7), hidden)
    with pytest.raises(ParameterError, match="at least one"):
        MeemsEmbedder(0, 0)


def test_image_only_baseline_wraps_an_image_tower():
    from medvl_core.models.encoders import build_image_encoder

    encoder = build_image_encoder("tiny:cnn-32", image_size=64)
    model = ImageOnlyClassifier(encoder, n_outputs=3)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)
    assert model.preprocess is encoder.preprocess


def test_caption_iou_of_word_sets():
    assert jaccard(set(), set()) == 1.0
    assert caption_iou("No pleural effusion.", "no effusion") == pytest.approx(2 / 3)
    assert caption_iou("heart is normal", "HEART IS NORMAL .") == 1.0
    assert caption_iou("left effusion", "clear lungs") == 0.0
    assert mean_caption_iou(["a b", "c"], ["a b", "d"]) == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="hypotheses"):
        mean_caption_iou(["a"], [])
    with pytest.raises(ParameterError, match="mode"):
        caption_iou("a", "b", mode="chars")


def test_caption_iou_of_labelled_findings():
    same = caption_iou("Small left pleural effusion.", "There is a large effusion on the right.", mode="findings")
    assert same == 1.0  # different words, same finding
    assert caption_iou("Cardiomegaly. Small effusion.", "Cardiomegaly.", mode="findings") == pytest.approx(0.5)


def test_caption_bleu_is_sacrebleu_corpus_bleu():
    import sacrebleu

    hyps, refs = ["the heart is normal in size", "no pleural effusion"], ["the heart is normal", "no effusion is seen"]
    assert caption_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert caption_bleu(["the lungs are clear"], ["the lungs are clear"]) == pytest.approx(100.0)
