"""The WangLab MEDIQA-M3G 2024 Claude pipeline (Xie et al., arXiv 2404.14567) with the paper's own prompts (Appendix A).

The prompts, the content layout of every call and the answer parsing of the four scenarios of Table 1 are quoted
data in papers/m3g_answer_generation/prompts.yaml (each with the Appendix section it comes from); this module
only loads and applies them:

- "img 1-call" (A.1):    the images; the reply describes them and ends with "Answer: <disease>";
- "img 2-calls" (A.2):   a differential from the images, then a call reducing it to the most likely diagnosis;
- "img-then-text" (A.3): the same first call, then a call given the differential and the query;
- "img+text" (A.4):      the query ("Additional information: ...") then the images, then the reduction.

A reply becomes the diagnosis by the last call's `parse` rule (see `parse_answer`), and the diagnosis the answer
"It is <diagnosis>." (Sec. 4.3). `dry_run` shows the first case's requests as they would be sent, with the calls,
input tokens and cost the chosen split would take, without calling the API.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import papers_dir
from ..errors import DataFormatError, MedvlError, ParameterError
from .client import (
    API_KEY_ENV,
    PRICES_SOURCE,
    ClaudeClient,
    LLMReply,
    LLMRequest,
    api_key_available,
    check_known_model,
    check_model,
    image_bytes,
    image_media_type,
    model_advice,
    model_price,
    retired_on,
)

SCENARIOS = ("img 1-call", "img 2-calls", "img-then-text", "img+text")
ANSWER_TEMPLATE = "It is {diagnosis}."  # Sec. 4.3: the answer sentence of both solutions
PARSE_RULES = ("answer_line", "name")
IMAGES = "images"
DIFFERENTIAL_PLACEHOLDER = "<the reply of call 1 (the differential)>"
CHARS_PER_TOKEN = 3.5  # text token estimate (English prose; Anthropic's tokenizer is not available offline)
IMAGE_LONG_SIDE, IMAGE_MAX_TOKENS, PIXELS_PER_TOKEN = 1568, 1600, 750  # Anthropic vision docs: tokens = w*h/750
ASSUMED_OUTPUT_TOKENS = {"first": 400, "answer_line": 400, "name": 10}  # reply lengths assumed for the estimate

_ANSWER = re.compile(r"\banswer[\s*_`]*[:：][\s*_`]*(?P<name>[^\n]*)", re.IGNORECASE)
_PREFIX = re.compile(r"^(?:(?:the\s+)?(?:single\s+)?(?:most\s+likely\s+)?diagnosis\s*(?:is)?\s*[:\-]?\s*|it\s+is\s+)",
                     re.IGNORECASE)


# ------------------------------------------------------------------ the paper's prompts (data)

@dataclass(frozen=True)
class PromptCall:
    """One API call of a scenario: system prompt, content layout (IMAGES or a text template), parse rule, source."""

    system: str
    content: tuple  # each part: IMAGES or ("text", template with {query} / {differential})
    source: str
    parse: str = ""  # on the last call: 'answer_line' or 'name'
    example: str = ""  # the paper's example output

    @property
    def sends_images(self) -> bool:
        return IMAGES in self.content

    @property
    def template(self) -> str:
        """The text template of the call ('' for an image-only call)."""
        return next((part[1] for part in self.content if part != IMAGES), "")

    @property
    def text_first(self) -> bool:
        """True when the text block precedes the images."""
        return bool(self.content) and self.content[0] != IMAGES and self.sends_images


@dataclass(frozen=True)
class Scenario:
    """A Table 1 scenario: its calls in order, the paper's row label and the Appendix section."""

    name: str
    paper_row: str
    source: str
    calls: tuple[PromptCall, ...]

    @property
    def parse(self) -> str:
        return self.calls[-1].parse

    @property
    def needs_query(self) -> bool:
        return any("{query}" in call.template for call in self.calls)


def prompts_file() -> Path:
    """papers/m3g_answer_generation/prompts.yaml."""
    return papers_dir() / "m3g_answer_generation" / "prompts.yaml"


@functools.lru_cache(maxsize=4)
def load_prompts(path: str | None = None) -> dict:
    """The prompts file: {'source', 'model', 'scenarios': {name: Scenario}} (checked)."""
    path = Path(path) if path else prompts_file()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataFormatError(f"cannot read the M3G prompts file {path}: {exc}; restore it from the repository") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), dict):
        raise DataFormatError(f"{path}: expected a mapping with 'scenarios'")
    scenarios = {name: _scenario(name, raw["scenarios"].get(name), path) for name in SCENARIOS}
    return {"source": raw.get("source", ""), "model": raw.get("model", ""), "scenarios": scenarios,
            "label_extraction": _label_extraction(raw.get("label_extraction"), path)}


def _label_extraction(entry, path: Path) -> dict:
    """The checked label-extraction prompt (system, content template with {responses}, source, models)."""
    keys = ("source", "model", "embedding_model", "system", "content")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k] for k in keys):
        raise DataFormatError(f"{path}: label_extraction needs {list(keys)} as non-empty strings")
    if "{responses}" not in entry["content"]:
        raise DataFormatError(f"{path}: label_extraction.content must contain {{responses}}")
    return {k: entry[k] for k in keys}


def _scenario(name: str, entry, path: Path) -> Scenario:
    """One checked scenario of the prompts file."""
    where = f"{path}: scenarios[{name!r}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("calls"), list) or not entry["calls"]:
        raise DataFormatError(f"{where} is missing or has no calls; expected one entry per scenario {list(SCENARIOS)}")
    calls = tuple(_call(call, f"{where}.calls[{i}]") for i, call in enumerate(entry["calls"]))
    if calls[-1].parse not in PARSE_RULES:
        raise DataFormatError(f"{where}: the last call needs parse: one of {list(PARSE_RULES)}")
    return Scenario(name, str(entry.get("paper_row", "")), str(entry.get("source", "")), calls)


def _call(entry, where: str) -> PromptCall:
    """One checked call: a verbatim system prompt with its source, and one images part and/or one text part."""
    if not isinstance(entry, dict) or not isinstance(entry.get("system"), str) or not entry.get("source"):
        raise DataFormatError(f"{where} needs 'system' (the prompt, verbatim) and 'source' (its Appendix section)")
    parts = tuple(IMAGES if part == IMAGES else ("text", _text_part(part, where)) for part in entry.get("content") or [])
    if not parts or sum(p == IMAGES for p in parts) > 1 or sum(p != IMAGES for p in parts) > 1:
        raise DataFormatError(f"{where}: content must list 'images' and/or one {{text: ...}}, at most once each")
    return PromptCall(entry["system"], parts, str(entry["source"]), str(entry.get("parse") or ""),
                      str(entry.get("example") or ""))


def _text_part(part, where: str) -> str:
    """The template of a {text: ...} content part."""
    if not isinstance(part, dict) or not isinstance(part.get("text"), str):
        raise DataFormatError(f"{where}: a content part is 'images' or {{text: TEMPLATE}}, got {part!r}")
    return part["text"]


def scenario(name: str) -> Scenario:
    """The scenario called `name` from the prompts file."""
    if name not in SCENARIOS:
        raise ParameterError(f"scenario={name!r} is not one of {list(SCENARIOS)}")
    return load_prompts()["scenarios"][name]


def paper_model() -> str:
    """The paper's model, as named in the prompts file."""
    return load_prompts()["model"]


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
    _check_cases(cases, scenario_name)
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


def _check_cases(cases: Sequence[M3GCase], scenario_name: str) -> None:
    """Raise ParameterError for an unknown scenario or a case without images (or without a needed query)."""
    plan = scenario(scenario_name)
    for case in cases:
        if not case.images:
            raise ParameterError(f"M3G case {case.id!r} has no images; every scenario sends the case's images")
        if plan.needs_query and not case.query.strip():
            raise ParameterError(f"M3G case {case.id!r} has an empty query; scenario {scenario_name!r} sends the query")


# ------------------------------------------------------------------ dry run

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


@dataclass(frozen=True)
class DryRun:
    """What a Claude run would send and cost, computed without calling the API."""

    model: str
    split: str
    n_cases: int
    first_case: str
    requests: dict  # scenario -> the first case's request bodies, images summarised
    rows: tuple  # one dict per scenario, then the total
    token_source: str
    price_per_mtok: tuple
    price_known: bool
    model_note: str = ""

    def table(self) -> list[dict]:
        """Per scenario and in total: calls, input tokens, assumed output tokens, cost (USD)."""
        return [{k: v for k, v in row.items() if not k.startswith("_")} for row in self.rows]

    def __str__(self) -> str:
        """The requests of the first case as JSON, then the table, the token source, the prices and any model note."""
        lines = [f"Dry run, no API call made: {self.model}, split {self.split!r}, {self.n_cases} cases.",
                 f"Requests of the first case ({self.first_case}) as they would be sent (images summarised):"]
        for name, bodies in self.requests.items():
            for k, body in enumerate(bodies, 1):
                lines += [f"--- {name}, call {k} of {len(bodies)}", json.dumps(body, indent=1, ensure_ascii=False)]
        lines += ["", _format_table(self.rows), f"input tokens: {self.token_source}",
                  f"output tokens: assumed {ASSUMED_OUTPUT_TOKENS['first']} per differential / 'Answer:' reply and "
                  f"{ASSUMED_OUTPUT_TOKENS['name']} per diagnosis name; cost at most: every reply at max_tokens",
                  _price_line(self.price_per_mtok, self.price_known)]
        return "\n".join(lines + ([self.model_note] if self.model_note else []))


def dry_run(cases: Sequence[M3GCase], model: str, scenarios: Sequence[str] | None = None, split: str = "",
            max_tokens: int = 1024, temperature: float | None = 0.0, counter: ClaudeClient | None = None) -> DryRun:
    """The first case's requests and the calls, input tokens and cost of running `scenarios` on `cases` with `model`.

    Input tokens are estimated offline (labelled so); with `counter` (a ClaudeClient) the first calls are counted
    by the SDK's token counting. A retired model is noted (a real run stops with that error); an unknown one raises.
    """
    check_known_model(model)
    names = tuple(scenarios or SCENARIOS)
    for name in names:
        _check_cases(cases, name)
    if not cases:
        raise ParameterError("dry run: no cases; the split is empty or max_cases removed them all")
    count, source = _token_counter(counter, build_request(scenario(names[0]).calls[0], cases[0]))
    rows, seen = [], set()
    for name in names:
        rows.append(_scenario_row(name, cases, count, seen, max_tokens, model))
    rows.append(_total_row(rows, model))
    price, known = model_price(model)
    body = functools.partial(_request_body, model=model, max_tokens=max_tokens, temperature=temperature)
    requests = {name: tuple(body(r) for r in _first_case_requests(cases[0], name)) for name in names}
    retired = retired_on(model)
    note = model_advice(model, f"was retired by Anthropic on {retired}, so a real run stops before any call") \
        if retired else ""
    return DryRun(model, split, len(cases), cases[0].id, requests, tuple(rows), source, price, known, note)


def _token_counter(counter: ClaudeClient | None, probe: LLMRequest):
    """(count(request) -> tokens, label): the SDK's count for first calls when it answers `probe`, else the estimate."""
    estimated = (f"estimated (text at {CHARS_PER_TOKEN} characters per token, images at width x height / "
                 f"{PIXELS_PER_TOKEN} after the API's resizing)")
    if counter is None:
        return estimate_tokens, estimated
    try:
        counter.count_tokens(probe)
    except MedvlError as exc:
        return estimate_tokens, f"{estimated}; the SDK's token counting was not reachable ({exc})"
    return counter.count_tokens, ("counted by the SDK's messages.count_tokens for the first calls; second calls "
                                  f"estimated (the differential assumed {ASSUMED_OUTPUT_TOKENS['first']} tokens)")


def _scenario_row(name: str, cases, count, seen: set, max_tokens: int, model: str) -> dict:
    """Calls, input tokens and costs of one scenario; first calls already made by another scenario are not counted."""
    plan = scenario(name)
    calls = input_tokens = output_tokens = output_max = 0
    for case in cases:
        first = build_request(plan.calls[0], case)
        key = _request_key(first)
        if key not in seen:
            seen.add(key)
            calls, input_tokens = calls + 1, input_tokens + count(first)
            output_tokens += ASSUMED_OUTPUT_TOKENS["first" if len(plan.calls) > 1 else plan.parse]
            output_max += max_tokens
        if len(plan.calls) > 1:
            second = build_request(plan.calls[1], case, "")
            calls, input_tokens = calls + 1, input_tokens + estimate_tokens(second) + ASSUMED_OUTPUT_TOKENS["first"]
            output_tokens, output_max = output_tokens + ASSUMED_OUTPUT_TOKENS[plan.parse], output_max + max_tokens
    return _cost_row(name, calls, input_tokens, output_tokens, output_max, model)


def _total_row(rows: list[dict], model: str) -> dict:
    """The sum of the scenario rows (shared first calls were counted once)."""
    sums = [sum(row[key] for row in rows) for key in ("calls", "input tokens", "output tokens (assumed)")]
    output_max = sum(row["_output max"] for row in rows)
    return _cost_row("total", *sums, output_max, model)


def _cost_row(name: str, calls: int, input_tokens: int, output_tokens: int, output_max: int, model: str) -> dict:
    """A table row with the cost at the assumed outputs and at max_tokens outputs."""
    (price_in, price_out), _ = model_price(model)
    return {"scenario": name, "calls": calls, "input tokens": input_tokens, "output tokens (assumed)": output_tokens,
            "cost USD": round((input_tokens * price_in + output_tokens * price_out) / 1e6, 4),
            "cost USD at most": round((input_tokens * price_in + output_max * price_out) / 1e6, 4),
            "_output max": output_max}


def _request_key(request: LLMRequest) -> tuple:
    """What makes two requests the same call (and the second one a cache hit)."""
    return request.system, request.text, tuple(map(_image_id, request.images)), request.text_first


def _image_id(image) -> str:
    """A path as text, or bytes by their length and head (enough to tell a case's images apart)."""
    return os.fspath(image) if isinstance(image, str | os.PathLike) else f"{len(image)}:{bytes(image[:64])!r}"


def _first_case_requests(case: M3GCase, name: str) -> list[LLMRequest]:
    """The requests of one case under a scenario, the second call showing where the differential goes."""
    calls = scenario(name).calls
    return [build_request(calls[0], case)] + [build_request(c, case, DIFFERENTIAL_PLACEHOLDER) for c in calls[1:]]


def _request_body(request: LLMRequest, model: str, max_tokens: int, temperature: float | None) -> dict:
    """The Messages API body of a request, each image replaced by a one-line summary."""
    images = [{"type": "image", "source": {"type": "base64", "media_type": _media_type(i),
                                           "data": f"<{describe_image(i)}>"}} for i in request.images]
    texts = [{"type": "text", "text": request.text}] if request.text else []
    body = {"model": model, "max_tokens": max_tokens, "system": request.system,
            "messages": [{"role": "user", "content": texts + images if request.text_first else images + texts}]}
    return {**body, "temperature": temperature} if temperature is not None else body


def _media_type(image) -> str:
    """The MIME type of an image (bytes or path)."""
    return image_media_type(image_bytes(image))


def describe_image(image) -> str:
    """'base64 of NAME: N bytes, W x H px, ~T tokens' (NAME: the file name, or 'image bytes')."""
    data = image_bytes(image)
    name = Path(image).name if isinstance(image, str | os.PathLike) else "image bytes"
    width, height = image_size(data)
    return f"base64 of {name}: {len(data):,} bytes, {width} x {height} px, ~{image_tokens(width, height)} tokens"


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from the image header."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"cannot read the size of an image ({len(data)} bytes): {exc}; check the case's "
                              "image files") from exc


def image_tokens(width: int, height: int) -> int:
    """Estimated input tokens of an image: long side scaled to at most 1568 px, w*h/750, at most ~1600."""
    scale = min(1.0, IMAGE_LONG_SIDE / max(width, height, 1))
    return min(IMAGE_MAX_TOKENS, math.ceil(width * scale * height * scale / PIXELS_PER_TOKEN))


def estimate_tokens(request: LLMRequest) -> int:
    """Estimated input tokens of a request: system and text by characters, images by size."""
    text = math.ceil((len(request.system) + len(request.text)) / CHARS_PER_TOKEN)
    return text + sum(image_tokens(*image_size(image_bytes(image))) for image in request.images)


def _format_table(rows) -> str:
    """The dry-run rows as aligned text."""
    keys = [k for k in rows[0] if not k.startswith("_")]
    cells = [keys] + [[str(row[k]) for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells)


def _price_line(price: tuple, known: bool) -> str:
    """The prices used, with their source (or the upper bound used for an unlisted model)."""
    label = "list price" if known else "not on file: priced at the highest listed price (an upper bound)"
    return f"price: ${price[0]:g} / ${price[1]:g} per million input / output tokens ({label}); {PRICES_SOURCE}"


__all__ = ["ANSWER_TEMPLATE", "SCENARIOS", "DryRun", "M3GCase", "M3GTrace", "PromptCall", "Scenario", "answer_cases", "answer_sentence",
           "api_key_available", "build_request", "case_from_item", "check_claude_run", "diagnosis_name", "dry_run", "load_prompts",
           "paper_model", "parse_answer", "run_scenario", "scenario"]
