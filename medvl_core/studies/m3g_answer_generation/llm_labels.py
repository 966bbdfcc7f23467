"""The M3G paper's label pipeline (Fig. 1 B): one disease label per case from its discussion, asked of an LLM.

The prompt lives in papers/m3g_answer_generation/prompts.yaml (`label_extraction`; ours, the paper does not print
it). `llm_labels(client, cases)` returns one label per case ('' when the answers name none), lower-cased so that
"Psoriasis" and "psoriasis" are one training label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .prompts import load_prompts

NO_LABEL = {"", "none", "unknown", "n/a", "no label"}
_LABEL_LINE = re.compile(r"label\s*:\s*(.*)", re.IGNORECASE)


def label_prompt() -> dict:
    """The label-extraction entry of the prompts file (system, content, source, model, embedding_model)."""
    return load_prompts()["label_extraction"]


def label_request(responses: Sequence[str]) -> tuple[str, str]:
    """(system, user text) asking for the label of one case's answers."""
    prompt = label_prompt()
    lines = "\n".join(f"{i}. {' '.join(str(r).split())}" for i, r in enumerate(responses, 1))
    return prompt["system"], prompt["content"].replace("{responses}", lines)


def parse_label(reply: str) -> str:
    """The label in a reply: the text after the last "Label:" (else the first line), cleaned; '' for none."""
    found = _LABEL_LINE.findall(reply or "")
    text = found[-1] if found else next((line for line in (reply or "").splitlines() if line.strip()), "")
    label = " ".join(text.strip().strip("*[]\"'").split()).rstrip(".").strip().lower()
    return "" if label in NO_LABEL else label


def llm_labels(client, cases: Sequence[Sequence[str]]) -> list[str]:
    """One label per case (its list of answers) from `client.complete_many`; cases without answers get ''.

    Cases with identical answers share one request (also when they would be in flight at the same time)."""
    requests = [label_request(case) if any(str(r).strip() for r in case) else None for case in cases]
    distinct = list(dict.fromkeys(r for r in requests if r is not None))  # identical discussions: one call
    replies = dict(zip(distinct, client.complete_many(distinct)))
    return [parse_label(replies[r].text) if r is not None else "" for r in requests]
