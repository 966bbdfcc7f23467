"""deltaBLEU: multi-reference corpus BLEU with per-reference weights, as scored in MEDIQA-M3G 2024.

Two modes:
- ``weighted``: the weights always apply; lowercasing (if asked) applies to both sides and the final
  score follows sacreBLEU 2.x (``smooth_method="exp"``, no effective order, score 0 when nothing
  matches), so with all weights 1 the score equals ``sacrebleu.corpus_bleu``.
- ``official``: the MEDIQA-M3G scorer (``evaluation/nlg/scoring_multilingresp.py`` calling
  ``sacrebleu_deltableu.corpus_bleu_t``, a modified sacreBLEU 1.4.1): weights apply only when
  Chinese is among the submission's ``languages`` (the content_<lang> keys it holds; they must be
  passed with weights, there is no default); ``lowercase=True`` (its setting, the default here)
  lowercases the hypothesis only; effective order on; no zero-match shortcut. To score a
  submission file as the scorer does (languages read from it, pairing by position), use
  ``medvl_core.studies.m3g_answer_generation.official_scorer.score_submission``.

Inputs: ``references[i]`` is case i's list of reference strings (any number per case);
``weights[i]`` the floats aligned with it (None: all 1). Each matched hypothesis n-gram is clipped
by its largest count in any reference and credited with the largest weight among the references
containing it; the case's n-gram totals are scaled by its largest weight; sums are corpus-level;
the reference length is the closest one (ties -> shorter). ``lowercase`` and ``effective_order``
default (None) to the mode's setting; ``tokenize`` names a sacreBLEU tokenizer ('zh' for Chinese).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from numbers import Real

from medvl_core.errors import ParameterError

MODES = ("weighted", "official")
_LOG_FLOOR = -9999999999  # sacreBLEU's my_log(0)


@dataclass(frozen=True)
class DeltaBleuResult:
    """Corpus deltaBLEU and its statistics (score 0-100, like sacreBLEU)."""

    score: float
    bp: float
    ratio: float
    hyp_len: int
    ref_len: int
    precisions: tuple[float, ...]
    counts: tuple[float, ...]
    totals: tuple[float, ...]

    def __str__(self) -> str:
        """sacreBLEU-style one-line summary."""
        prec = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"dBLEU = {self.score:.2f} {prec} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
                f"hyp_len = {self.hyp_len:d} ref_len = {self.ref_len:d})")


def delta_bleu(hypotheses, references, weights=None, mode: str = "weighted", lowercase: bool | None = None,
               tokenize: str = "13a", max_order: int = 4, languages=None,
               effective_order: bool | None = None) -> DeltaBleuResult:
    """Corpus deltaBLEU of one hypothesis per case against that case's weighted references."""
    _check_mode(mode)
    hyps = _check_hypotheses(hypotheses)
    refs = _check_references(references, len(hyps))
    wts = _check_weights(weights, refs)
    _check_max_order(max_order)
    langs = _check_languages(languages)
    official = mode == "official"
    if official and wts is not None and not _scores_chinese(langs):
        wts = None
    lower_hyp, lower_ref = _lowercasing(official, lowercase)
    hyps = [h.lower() for h in hyps] if lower_hyp else hyps
    refs = [[r.lower() for r in case] for case in refs] if lower_ref else refs
    texts = _Texts(_tokenizer(tokenize), max_order, _repeated(hyps, refs))
    stats = _corpus_stats(hyps, refs, wts, texts, max_order)
    eff = official if effective_order is None else bool(effective_order)
    return bleu_from_stats(*stats, effective_order=eff, zero_shortcut=not official)


# ---------------------------------------------------------------- statistics


class _Texts:
    """Tokens and hypothesis n-gram counts, cached for texts that repeat (the rest are freed at once)."""

    def __init__(self, tokenizer, max_order: int, repeated: set):
        """Keep the tokenizer, the order, the texts worth caching and empty caches."""
        self.tokenizer, self.max_order, self.repeated = tokenizer, max_order, repeated
        self._tokens, self._grams = {}, {}

    def tokens(self, text: str) -> list[str]:
        """The text's tokens (sacreBLEU preprocessing: rstrip, then the tokenizer)."""
        hit = self._tokens.get(text)
        if hit is None:
            hit = self.tokenizer(text.rstrip()).split()
            if text in self.repeated:
                self._tokens[text] = hit
        return hit

    def hypothesis(self, text: str) -> tuple[int, Counter]:
        """(token count, counts of all 1..max_order-grams keyed by token tuples) of a hypothesis."""
        hit = self._grams.get(text)
        if hit is None:
            tokens = self.tokens(text)
            hit = len(tokens), Counter(_all_ngrams(tokens, self.max_order))
            if text in self.repeated:
                self._grams[text] = hit
        return hit


def _repeated(hyps: list[str], refs: list) -> set:
    """Texts that occur more than once (the only ones worth caching)."""
    seen = Counter(hyps)
    seen.update(chain.from_iterable(refs))
    return {text for text, count in seen.items() if count > 1}


def _all_ngrams(tokens: list[str], max_order: int):
    """Iterator over all n-grams (tuples) of order 1..max_order, built in C."""
    shifted = [tokens[i:] for i in range(max_order)]
    return chain.from_iterable(zip(*shifted[:n]) for n in range(1, max_order + 1))


def _shared_counts(h_grams: Counter, tokens: list[str], max_order: int) -> Counter:
    """Counts in a reference of the n-grams that also occur in the hypothesis (others are never stored)."""
    return Counter(filter(h_grams.__contains__, _all_ngrams(tokens, max_order)))


def _corpus_stats(hyps, refs, wts, texts, max_order):
    """Summed (correct, total, hyp_len, ref_len) over all cases."""
    correct, total = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, case_refs, ws in zip(hyps, refs, wts or [None] * len(hyps)):
        h_len, h_grams = texts.hypothesis(hyp)
        ref_tokens = [texts.tokens(r) for r in case_refs]
        hyp_len += h_len
        ref_len += _closest_length(h_len, [len(t) for t in ref_tokens])
        shared = [_shared_counts(h_grams, t, max_order) for t in ref_tokens] if h_len else []
        scale = _add_matches(h_grams, shared, ws, correct)
        for n in range(min(max_order, h_len)):
            total[n] += scale * (h_len - n)
    return correct, total, hyp_len, ref_len


def _closest_length(hyp_len: int, ref_lens: list[int]) -> int:
    """Reference length closest to the hypothesis length, ties to the shorter."""
    if len(ref_lens) == 1:
        return ref_lens[0]
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


def _add_matches(h_grams: Counter, shared: list[Counter], ws, correct: list) -> float:
    """Add the case's credited matches to `correct`; return the denominator scale (largest weight)."""
    if ws is None or min(ws) == max(ws):
        scale = 1 if ws is None else ws[0]
        for gram, count in _max_counts(shared).items():
            correct[len(gram) - 1] += scale * min(h_grams[gram], count)
        return scale
    best_count, best_w = {}, {}
    for counts, w in zip(shared, ws):
        for gram, count in counts.items():
            if count > best_count.get(gram, 0):
                best_count[gram] = count
            if w > best_w.get(gram, -math.inf):
                best_w[gram] = w
    for gram, count in best_count.items():
        correct[len(gram) - 1] += best_w[gram] * min(h_grams[gram], count)
    return max(ws)


def _max_counts(shared: list[Counter]) -> dict:
    """Per shared n-gram, its largest count in any reference (the clipping ceiling)."""
    if len(shared) == 1:
        return shared[0]
    best = {}
    for counts in shared:
        for gram, count in counts.items():
            if count > best.get(gram, 0):
                best[gram] = count
    return best


def bleu_from_stats(correct, total, hyp_len, ref_len, effective_order: bool = True,
                    zero_shortcut: bool = False) -> DeltaBleuResult:
    """BLEU from sufficient statistics (matched and total n-grams per order, lengths) with exp smoothing; the
    defaults are the official scorer's (sacreBLEU 1.4.1: effective order, no zero shortcut)."""
    correct = [c if c > 0 else 0 for c in correct]
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    precisions = [0.0] * len(correct)
    score = 0.0
    if any(correct) or not zero_shortcut:
        order = _precisions(correct, total, precisions, effective_order)
        score = bp * math.exp(sum(math.log(p) if p > 0 else _LOG_FLOOR for p in precisions[:order]) / order)
    return DeltaBleuResult(score=score, bp=bp, ratio=hyp_len / ref_len if ref_len else 0.0, hyp_len=hyp_len,
                           ref_len=ref_len, precisions=tuple(precisions), counts=tuple(correct),
                           totals=tuple(total))


def _precisions(correct, total, precisions: list, effective_order: bool) -> int:
    """Fill n-gram precisions (exp smoothing for zero matches); return the order to average over."""
    smooth, order = 1.0, len(correct)
    for n, (c, t) in enumerate(zip(correct, total)):
        if t == 0:
            break
        if effective_order:
            order = n + 1
        if c == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * t)
        else:
            precisions[n] = 100.0 * c / t
    return order


# ---------------------------------------------------------------- options


def _lowercasing(official: bool, lowercase) -> tuple[bool, bool]:
    """(lowercase hypotheses, lowercase references); official mode lowercases the hypothesis only."""
    if lowercase is None:
        lowercase = official
    if not isinstance(lowercase, bool):
        raise ParameterError(f"lowercase must be True, False or None (mode default), got {lowercase!r}")
    return lowercase, lowercase and not official


def _check_languages(languages) -> tuple[str, ...] | None:
    """Language codes as a tuple (a single code allowed), or None when not given."""
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = (languages,)
    if not _is_list(languages) or not all(isinstance(x, str) for x in languages):
        raise ParameterError(f"languages must be a list of language codes such as ['en', 'zh'], got {languages!r}")
    return tuple(languages)


def _scores_chinese(languages: tuple[str, ...] | None) -> bool:
    """True when 'zh' is among the submission's languages (the official scorer's weighting switch)."""
    if languages is None:
        raise ParameterError("mode='official' with weights needs languages=: the content_<lang> keys the submission "
                             "holds (e.g. ['en'] or ['en', 'zh']), because the official scorer applies the reference "
                             "weights only when 'zh' is among them; studies.m3g_answer_generation.official_scorer has "
                             "submission_languages(rows), which reads them, and score_submission(file, references), "
                             "which scores a file as the scorer does")
    return "zh" in languages


def _tokenizer(name: str):
    """sacreBLEU's tokenizer of that name (13a by default)."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    if name == "13a":
        return Tokenizer13a()
    if name not in BLEU.TOKENIZERS:
        raise ParameterError(f"tokenize={name!r} is unknown; use one of {sorted(BLEU.TOKENIZERS)}")
    return BLEU(tokenize=name).tokenizer


# ---------------------------------------------------------------- validation


def _is_list(x) -> bool:
    """True for a list-like (list, tuple, array, Series), not a string or a mapping."""
    return not isinstance(x, str | bytes | Mapping) and hasattr(x, "__len__") and hasattr(x, "__iter__")


def _check_mode(mode) -> None:
    """Reject an unknown mode."""
    if mode not in MODES:
        raise ParameterError(f"mode={mode!r} is unknown; use 'weighted' or 'official'")


def _check_max_order(max_order) -> None:
    """Reject a non-positive or non-integer n-gram order."""
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ParameterError(f"max_order must be a positive integer (4 for BLEU), got {max_order!r}")


def _check_hypotheses(hypotheses) -> list[str]:
    """Hypotheses as a non-empty list of strings."""
    if not _is_list(hypotheses):
        raise ParameterError("hypotheses must be a list of strings (one per case), "
                             f"got {type(hypotheses).__name__}")
    if not hypotheses:
        raise ParameterError("hypotheses is empty; pass at least one case")
    for i, hyp in enumerate(hypotheses):
        if not isinstance(hyp, str):
            raise ParameterError(f"hypotheses[{i}] must be a string, got {type(hyp).__name__}; use '' for no answer")
    return list(hypotheses)


def _check_references(references, n_cases: int) -> list:
    """References as one non-empty list of strings per case."""
    if not _is_list(references):
        raise ParameterError(f"references must be a list with one list of reference strings per case, "
                             f"got {type(references).__name__}")
    if len(references) != n_cases:
        raise ParameterError(f"references has {len(references)} cases but hypotheses has {n_cases}; "
                             "pass one list of reference strings per hypothesis")
    for i, case in enumerate(references):
        if not _is_list(case) or not len(case):
            raise ParameterError(f"references[{i}] must be a non-empty list of reference strings, got {case!r:.60}; "
                                 "wrap a single reference as [text]")
        for j, ref in enumerate(case):
            if not isinstance(ref, str):
                raise ParameterError(f"references[{i}][{j}] must be a string, got {type(ref).__name__}")
    return list(references)


def _check_weights(weights, refs) -> list | None:
    """Weights as one list of finite floats per case, aligned with its references, largest > 0."""
    if weights is None:
        return None
    if not _is_list(weights) or len(weights) != len(refs):
        raise ParameterError(f"weights must be a list with one list of floats per case ({len(refs)} cases), "
                             "aligned with references; or None for all 1")
    checked = []
    for i, (ws, case) in enumerate(zip(weights, refs)):
        if not _is_list(ws) or len(ws) != len(case):
            raise ParameterError(f"weights[{i}] must be a list of {len(case)} floats, one per reference of case {i}")
        if not all(isinstance(w, Real) and math.isfinite(w) for w in ws):
            raise ParameterError(f"weights[{i}] must hold finite numbers, got {list(ws)!r}")
        if max(ws) <= 0:
            raise ParameterError(f"weights[{i}] needs at least one reference weight > 0, got {list(ws)!r}")
        checked.append([float(w) for w in ws])
    return checked
