"""Caption quality proxies for the MEEMS captioner: word-set / finding-set IoU (Jaccard) and corpus BLEU."""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError
from ...eval.deltableu import delta_bleu
from ...text.vocab import word_tokens

IOU_MODES = ("words", "findings")


def _word_set(text: str) -> set[str]:
    """Distinct word tokens of a caption (punctuation dropped)."""
    return {t for t in word_tokens(text) if t[0].isalnum()}


def _finding_set(text: str) -> set[str]:
    """CheXpert observations the rule-based labeler finds positive or uncertain in a caption."""
    from ...text.labeler import label_report
    from ...text.observations import CHEXPERT_LABELS

    labels = label_report(text)
    return {name for name, value in zip(CHEXPERT_LABELS, labels) if value in (1.0, -1.0)}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|, 1.0 when both are empty."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def caption_iou(hypothesis: str, reference: str, mode: str = "words") -> float:
    """IoU of a generated and a reference caption: of their word sets, or of their labelled findings."""
    if mode not in IOU_MODES:
        raise ParameterError(f"mode={mode!r}; use one of {IOU_MODES}")
    to_set = _word_set if mode == "words" else _finding_set
    return jaccard(to_set(hypothesis), to_set(reference))


def mean_caption_iou(hypotheses, references, mode: str = "words") -> float:
    """Mean caption IoU over paired hypotheses and references."""
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references) or not hypotheses:
        raise ParameterError(f"{len(hypotheses)} hypotheses for {len(references)} references; pass equal, non-empty lists")
    return float(np.mean([caption_iou(h, r, mode) for h, r in zip(hypotheses, references)]))


def caption_bleu(hypotheses, references) -> float:
    """Corpus BLEU-4 (0-100, sacreBLEU settings, one reference per caption) via `delta_bleu` with unit weights."""
    return delta_bleu(list(hypotheses), [[r] for r in references]).score
