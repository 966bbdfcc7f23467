"""The Claude arm before any call: the first case's requests as they would be sent, and the calls, input tokens
and cost that a split would take (`dry_run`), without calling the API."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataFormatError, MedvlError, ParameterError
from ...llm.claude_content import image_bytes, image_media_type
from ...llm.claude_models import PRICES_SOURCE, check_known_model, model_advice, model_price, retired_on
from ...llm.client import ClaudeClient, LLMRequest
from .claude import M3GCase, build_request, check_cases
from .prompts import SCENARIOS, scenario

DIFFERENTIAL_PLACEHOLDER = "<the reply of call 1 (the differential)>"
CHARS_PER_TOKEN = 3.5  # text token estimate (English prose; Anthropic's tokenizer is not available offline)
IMAGE_LONG_SIDE, IMAGE_MAX_TOKENS, PIXELS_PER_TOKEN = 1568, 1600, 750  # Anthropic vision docs: tokens = w*h/750
ASSUMED_OUTPUT_TOKENS = {"first": 400, "answer_line": 400, "name": 10}  # reply lengths assumed for the estimate


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
        check_cases(cases, name)
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
