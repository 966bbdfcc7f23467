"""Split free-text radiology reports (MIMIC-CXR / Open-I style) into their headed sections."""

from __future__ import annotations

import re

KNOWN_HEADERS = (
    "findings", "impression", "indication", "comparison", "history", "technique", "examination", "exam",
    "clinical history", "clinical information", "reason for exam", "reason for examination", "procedure",
    "conclusion", "conclusions", "recommendation", "recommendations", "recommendation(s)", "notification",
    "findings and impression", "impression and findings", "final report", "wet read", "addendum", "type of exam",
)
IMPRESSION_ALIASES = ("impression", "conclusion", "conclusions")
COMBINED_ALIASES = ("findings and impression", "impression and findings")
# Sections that never hold the radiologist's reading; skipped by the last-paragraph fallback.
CONTEXT_HEADERS = {
    "indication", "comparison", "history", "technique", "examination", "exam", "clinical history",
    "clinical information", "reason for exam", "reason for examination", "procedure", "type of exam",
    "notification", "recommendation", "recommendations", "recommendation(s)", "wet read", "final report",
}

_HEADER = re.compile(r"^[ \t]*(?P<name>[A-Za-z][A-Za-z /&()-]{1,40}?)[ \t]*:", re.MULTILINE)
_INLINE = re.compile(r"(?<=[.\s])(?P<name>" + "|".join(re.escape(h.upper()) for h in sorted(KNOWN_HEADERS, key=len, reverse=True)) + r")[ \t]*:")


def _norm(name: str) -> str:
    """Lower-case a header name and collapse its whitespace."""
    return " ".join(name.lower().split())


def _is_header(name: str) -> bool:
    """A known header (any case) or an ALL-CAPS label of at least three letters."""
    key = _norm(name)
    letters = re.sub(r"[^A-Za-z]", "", name)
    return key in KNOWN_HEADERS or (len(letters) >= 3 and name.strip().isupper())


def _header_spans(report: str) -> list[tuple[int, int, str]]:
    """(start, end, key) of every section header, in text order."""
    spans = [(m.start("name"), m.end(), _norm(m["name"])) for m in _HEADER.finditer(report) if _is_header(m["name"])]
    spans += [(m.start("name"), m.end(), _norm(m["name"])) for m in _INLINE.finditer(report)]
    spans.sort()
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def _clean(body: str) -> str:
    """Collapse line wraps and runs of whitespace into single spaces."""
    return " ".join(body.split())


def extract_sections(report: str) -> dict[str, str]:
    """Map lower-case header ("findings", "impression", ...) -> body text; repeated headers are joined."""
    report = report or ""
    spans = _header_spans(report)
    sections: dict[str, str] = {}
    for i, (_, end, key) in enumerate(spans):
        stop = spans[i + 1][0] if i + 1 < len(spans) else len(report)
        body = _clean(report[end:stop])
        if key in sections and body:
            sections[key] = f"{sections[key]} {body}".strip()
        else:
            sections.setdefault(key, body)
    return sections


def last_paragraph(report: str) -> str:
    """The last blank-line-separated paragraph that is not a context section (indication, comparison...)."""
    for para in reversed(re.split(r"\n[ \t]*\n", report or "")):
        match = _HEADER.match(para.strip())
        if match and _norm(match["name"]) in CONTEXT_HEADERS:
            continue
        if _clean(para):
            return _clean(para[match.end():] if match and _is_header(match["name"]) else para)
    return ""


_MAIN_HEADS = ("findings", *COMBINED_ALIASES, *IMPRESSION_ALIASES)


def has_findings_or_impression(report: str) -> bool:
    """True if the report has a Findings, Impression (or alias) header."""
    return any(k in extract_sections(report) for k in _MAIN_HEADS)


def findings_impression(report: str) -> str:
    """Findings and Impression joined; the last paragraph when neither header exists; "" for empty text."""
    sections = extract_sections(report)
    parts = [sections.get("findings", "")]
    parts += [sections[k] for k in COMBINED_ALIASES if k in sections]
    parts += [sections[k] for k in IMPRESSION_ALIASES if k in sections]
    if not any(k in sections for k in _MAIN_HEADS):
        return last_paragraph(report)
    return " ".join(p for p in parts if p)
