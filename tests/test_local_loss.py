"""GLoRIA-style local attentive loss: word pooling from word ids, attention, pair scores, learning on toy data."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from medvl_core import assets
from medvl_core.errors import ParameterError
from medvl_core.losses import local_contrastive_loss, local_similarity, pool_words, word_index


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(assets.minilm_dir()))


def unit(*shape, seed=0):
    """Random L2-normalised float64 vectors."""
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def test_word_index_groups_sub_words_and_skips_specials_and_punctuation(tokenizer):
    text = "Mild cardiomegaly, no pneumothorax."
    batch = word_index(tokenizer, [text, "Normal."])
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    words = batch["word_ids"][0].tolist()
    assert batch["word_ids"].shape == batch["input_ids"].shape
    assert max(words) == 3  # mild, cardiomegaly, no, pneumothorax: 4 words, no "," or "."
    for token, word in zip(tokens, words):
        if token in ("[CLS]", "[SEP]", "[PAD]", ",", "."):
            assert word == -1
    rebuilt = {}
    for token, word in zip(tokens, words):
        if word >= 0:
            rebuilt[word] = rebuilt.get(word, "") + token.removeprefix("##")
    assert [rebuilt[i] for i in range(4)] == ["mild", "cardiomegaly", "no", "pneumothorax"]
    assert max(batch["word_ids"][1].tolist()) == 0  # "Normal." -> one word; the rest padding


def test_word_index_needs_a_fast_tokenizer():
    with pytest.raises(ParameterError, match="fast"):
        word_index(object(), ["text"])


def test_pool_words_is_the_mean_of_each_words_tokens():
    tokens = torch.arange(5 * 2, dtype=torch.float64).reshape(1, 5, 2)
    word_ids = torch.tensor([[-1, 0, 0, 1, -1]])
    words, mask = pool_words(tokens, word_ids)
    assert words.shape == (1, 2, 2) and mask.tolist() == [[True, True]]
    assert torch.allclose(words[0, 0], tokens[0, 1:3].mean(0)) and torch.allclose(words[0, 1], tokens[0, 3])
    padded, padded_mask = pool_words(torch.cat([tokens, tokens]), torch.tensor([[-1, 0, 0, 1, -1], [0, -1, -1, -1, -1]]))
    assert padded_mask.tolist() == [[True, True], [True, False]] and torch.all(padded[1, 1] == 0)


def test_pair_scores_match_an_explicit_context_computation():
    regions, words = unit(2, 4, 8), unit(3, 5, 8, seed=1)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    scores = local_similarity(regions, words, mask, gamma1=4.0, gamma2=5.0)
    assert scores.shape == (2, 3)
    for i in range(2):
        for t in range(3):
            cosines = []
            for w in range(int(mask[t].sum())):
                a = torch.softmax(4.0 * (regions[i] @ words[t, w]), dim=0)
                context = (a[:, None] * regions[i]).sum(0)
                cosines.append(float(F.cosine_similarity(context, words[t, w], dim=0)))
            expected = math.log(sum(math.exp(5.0 * c) for c in cosines)) / 5.0
            assert scores[i, t].item() == pytest.approx(expected, rel=1e-9)


def test_local_loss_is_symmetric_cross_entropy_of_scaled_scores():
    regions, words = unit(4, 6, 8), unit(4, 5, 8, seed=1)
    mask = torch.ones(4, 5, dtype=torch.bool)
    logits = 10.0 * local_similarity(regions, words, mask)
    targets = torch.arange(4)
    expected = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    assert local_contrastive_loss(regions, words, mask).item() == pytest.approx(expected.item(), rel=1e-9)
    with pytest.raises(ParameterError, match="matched pairs"):
        local_contrastive_loss(regions, words[:3], mask[:3])
    with pytest.raises(ParameterError, match="regions"):
        local_contrastive_loss(regions[0], words, mask)


def test_matched_pairs_score_higher_after_a_few_steps_on_toy_data():
    torch.manual_seed(0)
    n, n_regions, n_words, dim = 8, 6, 4, 16
    concepts = torch.randn(n, n_words, dim)  # each pair shares word concepts hidden among noisy regions
    regions_in = torch.cat([concepts + 0.3 * torch.randn(n, n_words, dim), torch.randn(n, n_regions - n_words, dim)], 1)
    words_in = concepts + 0.3 * torch.randn(n, n_words, dim)
    image_head, text_head = torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
    with torch.no_grad():  # start from heads that scramble the shared space
        image_head.weight.copy_(torch.randn(dim, dim))
    mask = torch.ones(n, n_words, dtype=torch.bool)
    optimizer = torch.optim.Adam([*image_head.parameters(), *text_head.parameters()], lr=0.05)

    def margin():
        with torch.no_grad():
            scores = local_similarity(image_head(regions_in), text_head(words_in), mask)
        off = scores.masked_fill(torch.eye(n, dtype=torch.bool), float("nan"))
        return (scores.diagonal().mean() - off.nanmean()).item()

    before = margin()
    for _ in range(30):
        loss = local_contrastive_loss(image_head(regions_in), text_head(words_in), mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert margin() > before + 0.1
    with torch.no_grad():
        scores = local_similarity(image_head(regions_in), text_head(words_in), mask)
    assert (scores.argmax(1) == torch.arange(n)).float().mean() >= 0.9
