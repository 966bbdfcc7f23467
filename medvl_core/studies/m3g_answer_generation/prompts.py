"""The M3G paper's prompts (Appendix A, Xie et al., arXiv 2404.14567), loaded and checked from prompts.yaml.

The prompts, the content layout of every call and the answer parsing of the four scenarios of Table 1 are quoted
data in papers/m3g_answer_generation/prompts.yaml (each with the Appendix section it comes from), as is the
label-extraction prompt of the CLIP solution; this module only loads and checks them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from ...config import papers_dir
from ...errors import DataFormatError, ParameterError

SCENARIOS = ("img 1-call", "img 2-calls", "img-then-text", "img+text")
PARSE_RULES = ("answer_line", "name")
IMAGES = "images"


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
