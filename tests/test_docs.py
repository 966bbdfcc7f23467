"""The docs hold no time of their own (measured times live in benchmarks/timings.md) and no internal work notes."""

import json
import re
from pathlib import Path

import pytest

from benchmarks import timings

REPO = Path(__file__).resolve().parent.parent
READMES = sorted([REPO / "README.md", REPO / "benchmarks" / "README.md", *REPO.glob("papers/*/README.md"),
                  *REPO.glob("data_cards/*.md"), *REPO.glob("docs/*.md")])
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}
TIMING = re.compile(r"\b(\d+(?:\.\d+)?) ?(min) (\d+) ?(s)\b|\b(\d+(?:\.\d+)?) ?(" + "|".join(UNITS) + r")\b")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # commands, parameter values, log-line formats: not timings
# Durations that are not measurements: budgets (targets, docs/architecture.md) and the age after which a killed
# world generation's leftover folder is removed (worlds.common.remove_stale_partials).
NOT_MEASURED = re.compile(r"budget|after 6 h\b")
NOTES = re.compile(r"\b[Ii]ssues? ?#?\d+\b|\b[Tt]he issue\b|(?<![\w&/#\"'])#\d{1,3}\b(?![\w-])|\bthis session\b"
                   r"|\blead's\b|\bDESIGN\b")


def seconds_of(match: re.Match) -> float:
    """The duration a TIMING match names, in seconds."""
    if match.group(1):
        return float(match.group(1)) * 60 + float(match.group(3))
    return float(match.group(5)) * UNITS[match.group(6)]


def recorded_seconds() -> set[float]:
    """Every wall and CPU value of benchmarks/timings.md (moved rows keep the numbers exactly as quoted)."""
    return {float(r[c]) for r in timings.read_rows() for c in ("wall s", "CPU s") if r[c]}


def quoted_timings(text: str) -> list[str]:
    """Times quoted in prose (code spans and blocks left out) that are neither budgets nor in timings.md."""
    prose, recorded, found = CODE.sub(" ", text), recorded_seconds(), []
    for match in TIMING.finditer(prose):
        context = prose[max(0, match.start() - 20): match.end() + 20]
        if not NOT_MEASURED.search(context) and seconds_of(match) not in recorded:
            found.append(match.group(0))
    return found


@pytest.mark.parametrize("path", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_readmes_quote_no_timing_of_their_own(path):
    assert not quoted_timings(path.read_text(encoding="utf-8")), "point to benchmarks/timings.md instead"


def test_the_timing_check_sees_quoted_times():
    assert quoted_timings("warm 202 s, cold 5 min 57 s, about 3 minutes, 6.5 h") == [
        "202 s", "5 min 57 s", "3 minutes", "6.5 h"]
    assert not quoted_timings("50 epochs, `time: 240`, `41.2 s/epoch`, the 180 s budget, rows of timings.md")
    assert not quoted_timings("```\nETA 30 min 54 s\n```")


def user_facing_texts():
    """(name, text) of every README and doc, notebook markdown cell, medvl_core and benchmarks source, paper yaml."""
    for path in READMES:
        yield path.relative_to(REPO), path.read_text(encoding="utf-8")
    for path in sorted(REPO.glob("notebooks/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        yield path.relative_to(REPO), "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for pattern in ("medvl_core/**/*.py", "benchmarks/*.py", "papers/*/*.yaml", "papers/*/params/*.yaml"):
        for path in sorted(REPO.glob(pattern)):
            yield path.relative_to(REPO), path.read_text(encoding="utf-8")


def test_no_internal_work_notes_in_user_facing_text():
    found = [f"{name}: {line.strip()[:120]}" for name, text in user_facing_texts() for line in text.splitlines()
             if NOTES.search(line)]
    assert not found, "internal notes (issue numbers, a DESIGN document outside the repo, ...):\n" + "\n".join(found)


def test_the_notes_check_sees_work_notes_but_not_headings_or_colours():
    hits = ["see issue 18", "Issue #13's machine", "(#17)", "the issue asks for both", "DESIGN.md"]
    assert all(NOTES.search(text) for text in hits)
    assert not any(NOTES.search(text) for text in ("# Heading", "## 3. Results", 'color="#1b9e77"', '"#000"',
                                                   "poster #IF250081", "an issue of the journal"))
