"""The WangLab MEDIQA-M3G 2024 Claude pipeline (Xie et al., arXiv 2404.14567): differential from images, then one diagnosis.

The paper's submission made two consecutive Claude 3 Opus calls: the first sends the case's images with a
system prompt asking for a differential diagnosis, the second reduces that differential to the single most
likely diagnosis, written out without abbreviations. Its post-competition experiments compare four scenarios
(Table 1). The paper's exact prompts and scenario wording were not available to us; the prompts below are our
own, and the scenarios are defined as:

- "img 1-call":    one call with the images and an instruction asking directly for the single diagnosis;
- "img 2-calls":   differential from the images, then a text-only call reducing it to one diagnosis;
- "img-then-text": differential from the images, then a text-only call given the patient's query and the differential;
- "img+text":      the images and the patient's query in the first call (differential), then the reduction.

Every final answer is the diagnosis name put into ANSWER_TEMPLATE ("It is <diagnosis>."), a short sentence in
the style of the dataset's reference responses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ParameterError
from .client import ClaudeClient, LLMReply, LLMRequest, api_key_available

SCENARIOS = ("img 1-call", "img 2-calls", "img-then-text", "img+text")
ANSWER_TEMPLATE = "It is {diagnosis}."

DIFFERENTIAL_SYSTEM = (
    "You are a board-certified dermatologist reviewing a teledermatology case. Examine the attached photographs "
    "of the patient's skin and give a differential diagnosis: a numbered list of the most plausible conditions, "
    "most likely first, each with a one-line reason based on what is visible.")
REDUCE_SYSTEM = (
    "You are a board-certified dermatologist. You are given a differential diagnosis for a skin condition. "
    "Reply with the single most likely diagnosis only: its full name, without abbreviations, without any "
    "explanation, list, hedging or punctuation.")
QUERY_REDUCE_SYSTEM = (
    "You are a board-certified dermatologist answering a patient's question. You are given the patient's "
    "question and a differential diagnosis made from photographs of their skin. Using both, reply with the "
    "single most likely diagnosis only: its full name, without abbreviations, without any explanation, list, "
    "hedging or punctuation.")
SINGLE_CALL_SYSTEM = (
    "You are a board-certified dermatologist reviewing a teledermatology case. Examine the attached photographs "
    "of the patient's skin and reply with the single most likely diagnosis only: its full name, without "
    "abbreviations, without any explanation, list, hedging or punctuation.")

IMAGES_INSTRUCTION = "The photographs of the skin condition are attached."
QUERY_INSTRUCTION = "Patient's question:\n{query}\n\nThe photographs of the skin condition are attached."
REDUCE_TEXT = "Differential diagnosis:\n{differential}"
QUERY_REDUCE_TEXT = "Patient's question:\n{query}\n\nDifferential diagnosis from the photographs:\n{differential}"

_PREFIX = re.compile(r"^(?:(?:the\s+)?(?:single\s+)?(?:most\s+likely\s+)?diagnosis\s*(?:is)?\s*[:\-]?\s*|it\s+is\s+)",
                     re.IGNORECASE)


@dataclass
class M3GCase:
    """One M3G encounter: id, its images (bytes or file paths) and the patient's query text."""

    id: str
    images: list = field(default_factory=list)
    query: str = ""


@dataclass(frozen=True)
class M3GTrace:
    """A case's final answer with the replies of each call (first call first)."""

    case_id: str
    answer: str
    replies: tuple[LLMReply, ...]


def case_from_item(item: Mapping) -> M3GCase:
    """An M3GCase from a dermavqa / synth-derm item (`id`, `image_paths`, `text`)."""
    missing = [key for key in ("id", "image_paths", "text") if key not in item]
    if missing:
        raise ParameterError(f"case_from_item: item has no {missing[0]!r}; expected a dermavqa-style item "
                             "with id, image_paths and text")
    return M3GCase(id=str(item["id"]), images=[os.fspath(p) for p in item["image_paths"]], query=str(item["text"]))


def diagnosis_name(reply: str) -> str:
    """The diagnosis in a reply: first non-empty line without markdown, list marks, 'It is' prefix or end period."""
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    name = lines[0] if lines else ""
    name = re.sub(r"^(?:\d+[.)]\s*|[-*#>]+\s*)", "", name).strip(" *_`\"'")
    name = _PREFIX.sub("", name).strip(" *_`\"'")
    return name.rstrip(" .;:!").strip()


def answer_sentence(reply: str) -> str:
    """The final answer text for a reply: ANSWER_TEMPLATE filled with its diagnosis name."""
    name = diagnosis_name(reply)
    return ANSWER_TEMPLATE.format(diagnosis=name) if name else ""


def first_requests(cases: Sequence[M3GCase], scenario: str) -> list[LLMRequest]:
    """The first call of each case under `scenario`."""
    if scenario == "img 1-call":
        return [LLMRequest(SINGLE_CALL_SYSTEM, IMAGES_INSTRUCTION, tuple(c.images)) for c in cases]
    if scenario == "img+text":
        return [LLMRequest(DIFFERENTIAL_SYSTEM, QUERY_INSTRUCTION.format(query=c.query.strip()), tuple(c.images))
                for c in cases]
    return [LLMRequest(DIFFERENTIAL_SYSTEM, IMAGES_INSTRUCTION, tuple(c.images)) for c in cases]


def second_requests(cases: Sequence[M3GCase], differentials: Sequence[str], scenario: str) -> list[LLMRequest]:
    """The text-only second call of each case, given its first reply (the differential)."""
    if scenario == "img-then-text":
        return [LLMRequest(QUERY_REDUCE_SYSTEM, QUERY_REDUCE_TEXT.format(query=c.query.strip(), differential=d))
                for c, d in zip(cases, differentials, strict=True)]
    return [LLMRequest(REDUCE_SYSTEM, REDUCE_TEXT.format(differential=d)) for d in differentials]


def run_scenario(client: ClaudeClient, cases: Sequence[M3GCase], scenario: str) -> list[M3GTrace]:
    """Run `scenario` on `cases` (all first calls, then all second calls); one trace per case, in order."""
    _check_cases(cases, scenario)
    first = client.complete_many(first_requests(cases, scenario))
    if scenario == "img 1-call":
        return [M3GTrace(c.id, answer_sentence(r.text), (r,)) for c, r in zip(cases, first, strict=True)]
    second = client.complete_many(second_requests(cases, [r.text for r in first], scenario))
    return [M3GTrace(c.id, answer_sentence(r2.text), (r1, r2)) for c, r1, r2 in zip(cases, first, second, strict=True)]


def answer_cases(client: ClaudeClient, cases: Sequence[M3GCase], scenario: str) -> list[str]:
    """The final answer ("It is <diagnosis>.") of each case under `scenario`, in order."""
    return [trace.answer for trace in run_scenario(client, cases, scenario)]


def _check_cases(cases: Sequence[M3GCase], scenario: str) -> None:
    """Raise ParameterError for an unknown scenario or a case without images (or without a needed query)."""
    if scenario not in SCENARIOS:
        raise ParameterError(f"scenario={scenario!r} is not one of {list(SCENARIOS)}")
    for case in cases:
        if not case.images:
            raise ParameterError(f"M3G case {case.id!r} has no images; every scenario sends the case's images")
        if scenario in ("img-then-text", "img+text") and not case.query.strip():
            raise ParameterError(f"M3G case {case.id!r} has an empty query; scenario {scenario!r} sends the query")


__all__ = ["ANSWER_TEMPLATE", "DIFFERENTIAL_SYSTEM", "QUERY_REDUCE_SYSTEM", "REDUCE_SYSTEM", "SCENARIOS",
           "SINGLE_CALL_SYSTEM", "M3GCase", "M3GTrace", "answer_cases", "answer_sentence", "api_key_available",
           "case_from_item", "diagnosis_name", "run_scenario"]
