"""Agreement of the rule-based report labeler with Open-I's MeSH major terms (per CheXpert observation).

Open-I indexers list what a report states as MeSH "major" terms ("Cardiomegaly/mild",
"Pulmonary Atelectasis/base/left", "normal"). ``medvl_core.data.openi_mesh`` maps
them to the 14 observations (1 = a mapped term is present, 0 = absent: MeSH has no negatives), and
``agreement_table`` compares labeler output with that reference per observation.
Run ``python -m medvl_core.eval.labeler_agreement`` to label the 3,955 bundled reports and print it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..data.openi import bundled_openi_reports
from ..data.openi_mesh import mesh_labels
from ..errors import ParameterError
from ..text.labeler import label_reports
from ..text.observations import CHEXPERT_LABELS
from .metrics import cohen_kappa, confusion_counts, f1, precision, rate, recall


def binarize(pred: np.ndarray, uncertain: float = 1.0) -> np.ndarray:
    """Labeler values -> 0/1: positive 1, uncertain `uncertain`, negative and unmentioned 0."""
    pred = np.asarray(pred, dtype=np.float64)
    return np.where(pred == 1, 1.0, np.where(pred == -1, float(uncertain), 0.0))


def _row(p: np.ndarray, r: np.ndarray) -> dict:
    """Counts and agreement metrics for one observation (p, r are 0/1 vectors)."""
    both = np.isin(p, (0, 1)) & np.isin(r, (0, 1))  # a value other than 0 / 1 (uncertain=0.5) counts in no cell
    c = confusion_counts(r[both], p[both] == 1)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {"support": len(p), "mesh_pos": tp + fn, "labeler_pos": tp + fp, "tp": tp, "precision": precision(tp, fp),
            "recall": recall(tp, fn), "f1": f1(tp, fp, fn), "accuracy": rate(tp + tn, len(p)),
            "kappa": cohen_kappa(tp, fp, fn, tn) if len(p) else float("nan")}


def agreement_table(pred, ref, uncertain: float = 1.0, labels: Sequence[str] = CHEXPERT_LABELS) -> pd.DataFrame:
    """Per-observation agreement of labeler output `pred` (N,14: 1/0/-1/NaN) with a 0/1 reference `ref`.

    Rows where `ref` is NaN are left out of that observation; uncertain predictions count as `uncertain`.
    Columns: support, mesh_pos, labeler_pos, tp, precision, recall, f1, accuracy, kappa.
    """
    pred, ref = np.atleast_2d(np.asarray(pred, dtype=np.float64)), np.atleast_2d(np.asarray(ref, dtype=np.float64))
    if pred.shape != ref.shape or pred.shape[1] != len(labels):
        raise ParameterError(f"pred {pred.shape} and ref {ref.shape} must both be (N, {len(labels)})")
    binary = binarize(pred, uncertain)
    rows = {}
    for j, name in enumerate(labels):
        keep = ~np.isnan(ref[:, j])
        rows[name] = _row(binary[keep, j], ref[keep, j])
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "observation"
    return table


def openi_texts(reports: Iterable[dict]) -> list[str]:
    """Findings and impression of each Open-I report record, joined by a blank line."""
    return ["\n\n".join(s for s in (r.get("findings") or "", r.get("impression") or "") if s.strip()) for r in reports]


def label_openi(reports: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, dict]:
    """(labeler output, MeSH reference, counts) for the Open-I records that have text and MeSH indexing."""
    texts = openi_texts(reports)
    ref = mesh_labels([r.get("mesh_major") or [] for r in reports])
    used = np.array([bool(t.strip()) for t in texts]) & ~np.isnan(ref[:, 0])
    pred = label_reports([t for t, u in zip(texts, used, strict=True) if u])
    counts = {"reports": len(reports), "used": int(used.sum()), "no_text": sum(not t.strip() for t in texts),
              "unindexed": int(np.isnan(ref[:, 0]).sum())}
    return pred, ref[used], counts


def _cell(value) -> str:
    """A table cell: floats to 3 decimals, NaN as '-'."""
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def format_table(table: pd.DataFrame) -> str:
    """The agreement table as a Markdown table (3 decimals) with a macro-average row."""
    macro = table[["precision", "recall", "f1", "accuracy", "kappa"]].mean()
    rows = [[name, *map(_cell, row)] for name, row in zip(table.index, table.itertuples(index=False), strict=True)]
    rows.append(["macro average", *("" if c not in macro else _cell(float(macro[c])) for c in table.columns)])
    header = [table.index.name or "", *table.columns]
    lines = [header, [":--", *("--:" for _ in table.columns)], *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main(argv: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Print per-observation agreement of the labeler with MeSH on the bundled Open-I reports."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--uncertain", choices=("positive", "negative", "both"), default="both",
                        help="count the labeler's uncertain (-1) as positive, as negative, or show both (default)")
    args = parser.parse_args(argv)
    pred, ref, counts = label_openi(bundled_openi_reports())
    print(f"Open-I reports: {counts['reports']}; used: {counts['used']} (left out: {counts['no_text']} without "
          f"findings/impression, {counts['unindexed']} 'No Indexing'); text = FINDINGS + IMPRESSION; reference = MeSH major")
    policies = ("positive", "negative") if args.uncertain == "both" else (args.uncertain,)
    tables = {}
    for policy in policies:
        tables[policy] = agreement_table(pred, ref, uncertain=1.0 if policy == "positive" else 0.0)
        print(f"\nuncertain (-1) counted as {policy}:\n{format_table(tables[policy])}")
    return tables


if __name__ == "__main__":
    main()
