"""Show-Attend-Tell captioner: attention, teacher forcing, beam search, word vectors, captioning loss."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from medvl_core.errors import AssetNotFoundError, DataFormatError, ParameterError
from medvl_core.losses import captioning_loss, doubly_stochastic_penalty
from medvl_core.models.captioner import (
    ShowAttendTell,
    SoftAttention,
    beam_search,
    caption_ids,
    caption_text,
    flatten_grid,
    word_vectors,
)
from medvl_core.text.vocab import build_vocabulary

START, END = 1, 2  # token ids of the hand-built decoder below; 0 is padding, 3.. are words


class TableState:
    """Decoder state = the previous token of each hypothesis."""

    def __init__(self, last):
        self.last = torch.as_tensor(last)

    def select(self, rows):
        return TableState(self.last[rows])


def table_step(table: torch.Tensor):
    """A hand-built Markov decoder: log P(next | previous) read from `table` (V x V of probabilities)."""

    def step(words, state):
        log_probs = torch.log(table[words].clamp_min(1e-12))
        return log_probs, TableState(words), torch.full((len(words), 4), 0.25)

    return step


def exhaustive_best(table: torch.Tensor, max_length: int) -> tuple[list[int], float]:
    """The highest-probability sequence ending in END within max_length tokens, by enumeration."""
    best, best_score = None, -math.inf
    vocab = range(table.shape[0])
    for length in range(1, max_length + 1):
        for body in itertools.product(vocab, repeat=length - 1):
            seq = [*body, END]
            if END in body:
                continue
            prev, score = START, 0.0
            for token in seq:
                score += math.log(max(float(table[prev, token]), 1e-12))
                prev = token
            if score > best_score:
                best, best_score = seq, score
    return best, best_score


def garden_path_table() -> torch.Tensor:
    """Greedy picks word 3 (0.6) whose continuations are poor; word 4 (0.4) then END (1.0) is best."""
    table = torch.zeros(6, 6)
    table[START] = torch.tensor([0.0, 0.0, 0.0, 0.6, 0.4, 0.0])
    table[3] = torch.tensor([0.0, 0.0, 0.6, 0.0, 0.0, 0.4])  # END 0.6 or word 5
    table[5] = torch.tensor([0.0, 0.0, 0.3, 0.35, 0.35, 0.0])
    table[4] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    table[END] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    table[0] = table[END]
    return table


def test_beam_search_returns_the_best_sequence_of_a_hand_built_decoder():
    table = garden_path_table()
    beam = beam_search(table_step(table), TableState([START]), START, END, beam_size=3, max_length=4)
    best, score = exhaustive_best(table, 4)
    assert beam.tokens == best == [4, END]
    assert beam.finished and beam.score == pytest.approx(score) == pytest.approx(math.log(0.4))
    greedy = beam_search(table_step(table), TableState([START]), START, END, beam_size=1, max_length=4)
    assert greedy.tokens == [3, END] and greedy.score == pytest.approx(math.log(0.6 * 0.6))


def test_beam_search_matches_enumeration_on_random_decoders():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        table = torch.softmax(torch.randn(5, 5, generator=gen) * 2, dim=1)
        beam = beam_search(table_step(table), TableState([START]), START, END, beam_size=125, max_length=3)
        best, score = exhaustive_best(table, 3)
        assert beam.tokens == best and beam.score == pytest.approx(score, abs=1e-5)


def test_beam_search_stops_at_max_length_and_attention_per_token():
    table = torch.zeros(5, 5)
    table[:, 3] = 1.0  # the greedy path never ends (a wider beam would prefer any finished hypothesis)
    beam = beam_search(table_step(table), TableState([START]), START, END, beam_size=1, max_length=6)
    assert beam.tokens == [3] * 6 and not beam.finished
    assert beam.alphas.shape == (6, 4)
    with pytest.raises(ParameterError, match="beam_size"):
        beam_search(table_step(table), TableState([START]), START, END, beam_size=0)


def test_finished_hypotheses_are_not_extended():
    table = garden_path_table()
    beam = beam_search(table_step(table), TableState([START]), START, END, beam_size=3, max_length=10)
    assert beam.tokens.count(END) == 1 and beam.tokens[-1] == END


def test_attention_weights_sum_to_one_and_context_is_their_mix():
    torch.manual_seed(0)
    attention = SoftAttention(feature_dim=8, hidden_dim=6, attention_dim=5)
    cells, hidden = torch.randn(3, 7, 8), torch.randn(3, 6)
    context, alpha = attention(cells, hidden)
    assert alpha.shape == (3, 7) and context.shape == (3, 8)
    assert torch.allclose(alpha.sum(1), torch.ones(3), atol=1e-6) and (alpha >= 0).all()
    assert torch.allclose(context, torch.einsum("bp,bpd->bd", alpha, cells), atol=1e-6)


def small_captioner(vocab_size=12, feature_dim=16, **kwargs):
    torch.manual_seed(0)
    return ShowAttendTell(vocab_size, feature_dim, embed_dim=8, attention_dim=8, hidden_dim=16, dropout=0.0, **kwargs)


def test_teacher_forcing_shapes_and_per_word_attention_maps():
    model = small_captioner()
    grid, captions = torch.randn(2, 16, 3, 3), torch.randint(3, 12, (2, 7))
    logits, alphas, hidden = model(grid, captions)
    assert logits.shape == (2, 6, 12) and alphas.shape == (2, 6, 9) and hidden.shape == (2, 6, 16)
    assert torch.allclose(alphas.sum(-1), torch.ones(2, 6), atol=1e-5)
    assert flatten_grid(grid).shape == (2, 9, 16)
    with pytest.raises(ParameterError, match="feature grid"):
        flatten_grid(torch.randn(16))


def test_captioner_learns_to_caption_two_kinds_of_image():
    vocab = build_vocabulary(["left effusion .", "heart normal ."], min_count=1)
    texts = ["left effusion .", "heart normal ."] * 8
    ids = caption_ids(vocab, texts, max_words=4)
    grid = torch.zeros(16, 8, 2, 2)
    grid[::2, 0], grid[1::2, 1] = 3.0, 3.0  # the two image kinds differ in one channel
    model = small_captioner(len(vocab), 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(80):
        logits, alphas, _ = model(grid, ids)
        loss = captioning_loss(logits, ids[:, 1:], alphas)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    start, end = vocab.stoi["<start>"], vocab.stoi["<end>"]
    tokens, hidden = model.greedy(grid[:2], start, end, max_length=6)
    assert [caption_text(vocab, row) for row in tokens] == ["left effusion .", "heart normal ."]
    assert hidden.shape == (2, 16)
    beam = model.beam_search(grid[1], start, end, beam_size=3, max_length=6)
    assert caption_text(vocab, beam.tokens) == "heart normal ." and beam.finished
    assert beam.alphas.shape == (len(beam.tokens), 4)
    np.testing.assert_allclose(beam.alphas.sum(1), 1.0, atol=1e-5)


def test_caption_ids_pad_and_truncate():
    vocab = build_vocabulary(["a b c d"], min_count=1)
    ids = caption_ids(vocab, ["a b c d", "b"], max_words=3)
    assert ids.shape == (2, 5)
    assert caption_text(vocab, ids[0, 1:]) == "a b c" and ids[0, -1] == vocab.stoi["<end>"]
    assert ids[1].tolist()[3:] == [0, 0]


def test_captioning_loss_ignores_padding_and_penalises_unattended_cells():
    targets = torch.tensor([[5, 6, 0, 0]])
    logits = torch.randn(1, 4, 8)
    alphas = torch.full((1, 4, 2), 0.5)
    out = captioning_loss(logits, targets, alphas, alpha_c=1.0)
    expected_ce = torch.nn.functional.cross_entropy(logits[0, :2], targets[0, :2])
    assert torch.isclose(out["cross_entropy"], expected_ce)
    # two real steps x 0.5 per cell -> every cell attended exactly once in total -> no penalty
    assert float(out["attention_reg"]) == pytest.approx(0.0)
    skewed = torch.tensor([[[1.0, 0.0]] * 4])
    assert float(doubly_stochastic_penalty(skewed, targets != 0)) == pytest.approx(((1 - 2) ** 2 + 1) / 2)
    with pytest.raises(ParameterError, match="targets"):
        captioning_loss(logits, targets[:, :3], alphas)


def test_word2vec_binary_vectors_and_errors(tmp_path):
    vocab = build_vocabulary(["effusion heart effusion"], min_count=1)
    path = tmp_path / "vectors.bin"
    rows = [("effusion", [1.0, 2.0, 3.0]), ("Heart", [4.0, 5.0, 6.0]), ("other", [0.0, 0.0, 1.0])]
    with open(path, "wb") as fh:
        fh.write(b"3 3\n")
        for word, vector in rows:
            fh.write(word.encode() + b" " + np.asarray(vector, dtype="<f4").tobytes() + b"\n")
    vectors, coverage = word_vectors(vocab, str(path))
    assert vectors.shape == (len(vocab), 3) and coverage == pytest.approx(2 / len(vocab))
    assert vectors[vocab.stoi["heart"]].tolist() == [4.0, 5.0, 6.0]
    assert vectors[vocab.stoi["<pad>"]].abs().sum() == 0
    model = ShowAttendTell(len(vocab), 4, embed_dim=3, word_vectors=vectors)
    assert torch.equal(model.embedding.weight.data[vocab.stoi["effusion"]], torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ParameterError, match="embed_dim"):
        ShowAttendTell(len(vocab), 4, embed_dim=8, word_vectors=vectors)
    with pytest.raises(AssetNotFoundError, match="BioWordVec"):
        word_vectors(vocab, str(tmp_path / "missing.bin"))
    (tmp_path / "bad.bin").write_bytes(b"not a header\n")
    with pytest.raises(DataFormatError, match="word2vec"):
        word_vectors(vocab, str(tmp_path / "bad.bin"))
