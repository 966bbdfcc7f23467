"""The WangLab MEDIQA-M3G 2024 Claude pipeline (Xie et al., arXiv 2404.14567) with the paper's own prompts (Appendix A).

Four scenarios of Table 1 (their prompts: `prompts`):

- "img 1-call" (A.1):    the images; the reply describes them and ends with "Answer: <disease>";
- "img 2-calls" (A.2):   a differential from the images, then a call reducing it to the most likely diagnosis;
- "img-then-text" (A.3): the same first call, then a call given the differential and the query;
- "img+text" (A.4):      the query ("Additional information: ...") then the images, then the reduction.

A reply becomes the diagnosis by the last call's `parse` rule (see `parse_answer`), and the diagnosis the answer
"It is <diagnosis>." (Sec. 4.3). `dry_run` shows the requests and the cost of a run without calling the API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ...errors import ParameterError
from ...llm.base import LLMReply
from ...llm.claude_models import check_model
from ...llm.client import API_KEY_ENV, ClaudeClient, LLMRequest, api_key_available
from .derm_labels import ANSWER_TEMPLATE
from .prompts import PARSE_RULES, PromptCall, scenario

_ANSWER = re.compile(r"\banswer[\s*_`]*[:：][\s*_`]*(?P<name>[^\n]*)", re.IGNORECASE)
_PREFIX = re.compile(r"^(?:(?:the\s+)?(?:single\s+)?(?:most\s+likely\s+)?diagnosis\s*(?:is)?\s*[:\-]?\s*|it\s+is\s+)",
                     re.IGNORECASE)


# ------------------------------------------------------------------ cases, requests, answers

@dataclass
class M3GCase:
    """One M3G encounter: id, its images (bytes or file paths) and the patient's query text."""

    id: str
    images: list = field(default_factory=list)
    query: str = ""


@dataclass(frozen=True)
class M3GTrace:
    """A case's final answer with the replies of each call (first call first) and how the answer was parsed."""

    case_id: str
    answer: str
    replies: tuple[LLMReply, ...]
    parsed_by: str = "name"


def case_from_item(item: Mapping) -> M3GCase:
    """An M3GCase from a dermavqa / synth-derm item (`id`, `image_paths`, `text`)."""
    missing = [key for key in ("id", "image_paths", "text") if key not in item]
    if missing:
        raise ParameterError(f"case_from_item: item has no {missing[0]!r}; expected a dermavqa-style item "
                             "with id, image_paths and text")
    return M3GCase(id=str(item["id"]), images=[os.fspath(p) for p in item["image_paths"]], query=str(item["text"]))


def build_request(call: PromptCall, case: M3GCase, differential: str = "") -> LLMRequest:
    """The request of `call` for `case`: its system prompt, its text filled in, its images in the paper's order."""
    text = call.template.format(query=case.query.strip(), differential=differential)
    return LLMRequest(call.system, text, tuple(case.images) if call.sends_images else (), call.text_first)


def first_requests(cases: Sequence[M3GCase], scenario_name: str) -> list[LLMRequest]:
    """The first call of each case under the scenario."""
    call = scenario(scenario_name).calls[0]
    return [build_request(call, case) for case in cases]


def second_requests(cases: Sequence[M3GCase], differentials: Sequence[str], scenario_name: str) -> list[LLMRequest]:
    """The second call of each case, given its first reply (the differential)."""
    call = scenario(scenario_name).calls[1]
    return [build_request(call, case, d) for case, d in zip(cases, differentials, strict=True)]


def diagnosis_name(reply: str) -> str:
    """The diagnosis in a reply: first non-empty line without markdown, list marks, 'It is' prefix or end period."""
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    return _clean(lines[0] if lines else "")


def _clean(name: str) -> str:
    """A name without markdown, list marks, square brackets, 'It is'/'Diagnosis:' prefix or end punctuation."""
    name = re.sub(r"^(?:\d+[.)]\s*|[-*#>]+\s*)", "", name.strip()).strip(" *_`\"'")
    name = _PREFIX.sub("", name).strip(" *_`\"'")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1].strip()
    return name.rstrip(" .;:!").strip()


def parse_answer(reply: str, rule: str) -> tuple[str, str]:
    """(diagnosis, how): 'answer_line' takes the text after the last "Answer:" (any case/spacing/markdown), falling
    back to the last non-empty line; 'name' takes the first non-empty line."""
    if rule == "name":
        return diagnosis_name(reply), "name"
    if rule != "answer_line":
        raise ParameterError(f"parse rule {rule!r} is not one of {list(PARSE_RULES)}")
    found = [m.group("name") for m in _ANSWER.finditer(reply) if _clean(m.group("name"))]
    if found:
        return _clean(found[-1]), "answer line"
    lines = [line for line in reply.splitlines() if line.strip()]
    return (_clean(lines[-1]) if lines else ""), "fallback: no 'Answer:' line, last line used"


def answer_sentence(diagnosis: str) -> str:
    """The final answer: ANSWER_TEMPLATE ("It is {diagnosis}.") filled in ('' for no diagnosis)."""
    return ANSWER_TEMPLATE.format(diagnosis=diagnosis) if diagnosis else ""


def diagnosis_of(answer: str) -> str:
    """The diagnosis inside an answer made by `answer_sentence` ('' stays ''; other text is returned unchanged)."""
    head, tail = ANSWER_TEMPLATE.split("{diagnosis}")
    if answer.startswith(head) and answer.endswith(tail) and len(answer) >= len(head) + len(tail):
        return answer[len(head): len(answer) - len(tail)]
    return answer


def run_scenario(client: ClaudeClient, cases: Sequence[M3GCase], scenario_name: str) -> list[M3GTrace]:
    """Run the scenario on `cases` (all first calls, then all second calls); one trace per case, in order."""
    check_cases(cases, scenario_name)
    plan = scenario(scenario_name)
    replies = [client.complete_many(first_requests(cases, scenario_name))]
    if len(plan.calls) == 2:
        replies.append(client.complete_many(second_requests(cases, [r.text for r in replies[0]], scenario_name)))
    traces = []
    for case, case_replies in zip(cases, zip(*replies, strict=True), strict=True):
        name, how = parse_answer(case_replies[-1].text, plan.parse)
        traces.append(M3GTrace(case.id, answer_sentence(name), tuple(case_replies), how))
    return traces


def answer_cases(client: ClaudeClient, cases: Sequence[M3GCase], scenario_name: str) -> list[str]:
    """The final answer ("It is <diagnosis>.") of each case under the scenario, in order."""
    return [trace.answer for trace in run_scenario(client, cases, scenario_name)]


def check_cases(cases: Sequence[M3GCase], scenario_name: str) -> None:
    """Raise ParameterError for an unknown scenario or a case without images (or without a needed query)."""
    plan = scenario(scenario_name)
    for case in cases:
        if not case.images:
            raise ParameterError(f"M3G case {case.id!r} has no images; every scenario sends the case's images")
        if plan.needs_query and not case.query.strip():
            raise ParameterError(f"M3G case {case.id!r} has an empty query; scenario {scenario_name!r} sends the query")

def check_claude_run(claude_run, model: str) -> None:
    """Before any work: a real Claude run is asked for only by `claude_run=True`, and needs a served model and a key."""
    if not isinstance(claude_run, bool):
        raise ParameterError(f"claude_run={claude_run!r}; use True (call the Anthropic API, paid) or False (dry run)")
    if not claude_run:
        return
    check_model(model)
    if not api_key_available():
        raise ParameterError(f"claude_run=True calls the Anthropic API and needs {API_KEY_ENV} in the environment; "
                             "export it, or keep claude_run=False for the dry run (requests, tokens, cost)")
