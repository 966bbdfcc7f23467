"""SynthCXR report text: the source label rows and Open-I reports, the attributes a report states (side,
severity, lobe, devices), template reports composed from stated labels, and the MIMIC-style report file."""

from __future__ import annotations

import functools
import importlib.util
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import CHEXPERT_LABELS
from ..errors import MedvlError
from .synth_cxr_scene import Finding

PATHOLOGIES = CHEXPERT_LABELS[1:-1]  # the 12 findings that block "No Finding" (not Support Devices)
SUBPULMONIC_SENTENCE = "Subpulmonic {side} pleural effusion with apparent elevation of the hemidiaphragm."
SIDED = {  # observation -> sides drawn when the text does not state one
    "Lung Opacity": ("left", "right", "bilateral"), "Lung Lesion": ("left", "right"), "Edema": ("bilateral",),
    "Consolidation": ("left", "right"), "Pneumonia": ("left", "right"), "Atelectasis": ("left", "right", "bilateral"),
    "Pneumothorax": ("left", "right"), "Pleural Effusion": ("left", "right", "bilateral"),
    "Pleural Other": ("left", "right", "bilateral"), "Fracture": ("left", "right"),
}


# ------------------------------------------------------------------ source label tables and reports

@functools.lru_cache(maxsize=1)
def chexpert_label_table() -> pd.DataFrame:
    """Frontal rows of the real CheXpert train label table shipped by torchxrayvision (223,414 rows in all)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise MedvlError("package 'torchxrayvision' is not installed; run `pip install torchxrayvision` (or `make install`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "chexpert_train.csv.gz"
    if not path.is_file():
        raise MedvlError(f"{path} is missing; reinstall torchxrayvision (`pip install --force-reinstall torchxrayvision`)")
    table = pd.read_csv(path)
    return table[table["Frontal/Lateral"] == "Frontal"].reset_index(drop=True)


@functools.lru_cache(maxsize=1)
def openi_pool() -> tuple[dict, ...]:
    """Bundled Open-I reports that have findings or impression text."""
    from ..data.openi import bundled_openi_reports

    return tuple(r for r in bundled_openi_reports() if (r["findings"] or r["impression"]).strip())


@functools.lru_cache(maxsize=1)
def normal_sentences() -> tuple[tuple[str, ...], np.ndarray]:
    """Sentences of the bundled Open-I reports (Findings and Impression) that are normal on their own (the labeler
    says "No Finding": no positive or uncertain observation, nor other abnormal wording), one entry per occurrence,
    so a sentence written in many reports is drawn as often; second value: (K, 14) which observations each one
    mentions (any value the labeler gives)."""
    from ..text.labeler import label_reports
    from ..text.sentences import split_sentences

    occurrences = [s for r in openi_pool() for s in split_sentences(f"{r['findings']} {r['impression']}")]
    distinct = list(dict.fromkeys(occurrences))
    labels = label_reports(distinct)
    normal = (labels[:, 0] == 1) & ~np.isin(labels[:, 1:], (1.0, -1.0)).any(axis=1)
    kept = {s: ~np.isnan(row) for s, row, ok in zip(distinct, labels, normal, strict=True) if ok}
    chosen = tuple(s for s in occurrences if s in kept)
    return chosen, np.stack([kept[s] for s in chosen])


def with_normal_sentences(src: dict, count: int, rng, tries: int = 50) -> dict:
    """A copy of an Open-I record whose Findings gain `count` normal sentences (`normal_sentences`) at random
    places: never one the report already has, nor one mentioning an observation the report states positive or
    uncertain (no "No pleural effusion." beside an effusion), nor one that changes any positive or uncertain
    label of the whole report (`text.labeler`): the stated findings, and so the drawn image, stay the same."""
    from ..text.labeler import label_report
    from ..text.sentences import split_sentences

    if count <= 0:
        return dict(src)
    pool, mentions = normal_sentences()
    findings = split_sentences(src["findings"])
    have = {s.lower() for s in findings + split_sentences(src["impression"])}
    labels = label_report(f"{src['findings']} {src['impression']}")
    stated = np.isin(labels, (1.0, -1.0))
    mentioned = stated.copy()
    mentioned[0] = False  # "No Finding" is what a normal sentence says
    for _ in range(count):
        for _ in range(tries):
            k = int(rng.integers(0, len(pool)))
            if pool[k].lower() in have or (mentions[k] & mentioned).any():
                continue
            at = int(rng.integers(0, len(findings) + 1))
            trial = findings[:at] + [pool[k]] + findings[at:]
            if (np.isin(label_report(f"{' '.join(trial)} {src['impression']}"), (1.0, -1.0)) == stated).all():
                findings = trial
                have.add(pool[k].lower())
                break
    return {**src, "findings": " ".join(findings)}


SIDE_RE = re.compile(r"\b(bilateral(?:ly)?|both|bibasilar|bibasal|biapical|left|right)\b")
SEVERITY_WORDS = {
    1: ("small", "minimal", "trace", "tiny", "mild", "mildly", "minor", "slight", "slightly", "subtle"),
    2: ("moderate", "moderately"),
    3: ("large", "severe", "severely", "marked", "markedly", "massive", "extensive", "multiple", "several", "numerous"),
}
SEVERITY_RE = re.compile(r"\b(" + "|".join(w for ws in SEVERITY_WORDS.values() for w in ws) + r")\b")
SEVERITY_OF = {w: level for level, ws in SEVERITY_WORDS.items() for w in ws}
LOBE_RE = re.compile(r"\b(upper|middle|lower)\s+lobe|\b(lingula\w*|bas(?:e|es|al|ilar)|retrocardiac|apical|apex|apices)\b")
LOBE_OF = {"upper": "upper", "middle": "middle", "lower": "lower", "apical": "upper", "apex": "upper", "apices": "upper"}
LOBED = ("Consolidation", "Pneumonia")
DEVICE_RES = {
    "ett": r"endotracheal|\bet tube|tracheostomy", "ng": r"nasogastric|\bng tube|\bog tube|enteric|feeding tube",
    "pacer": r"pacemaker|pacer|\baicd\b|defibrillator|\bicd\b", "sternotomy": r"sternotomy|sternal wire",
    "chest_tube": r"chest tube|pleural drain|pigtail", "ecg": r"monitoring lead|\becg\b|\bekg\b|leads overl",
    "cvc": r"catheter|\bpicc\b|central line|venous line|\bport\b|\bline\b",
}


def _nearest(pattern: re.Pattern, text: str, start: int, end: int, window: int = 40) -> list[str]:
    """Matches of `pattern` within `window` characters of text[start:end], nearest first."""
    found = [(min(abs(m.start() - start), abs(m.end() - end)), m.group(0)) for m in pattern.finditer(text)
             if m.end() >= start - window and m.start() <= end + window]
    return [word for _, word in sorted(found)]


def parse_attributes(text: str) -> dict[str, dict]:
    """Severity (1-3), side (left/right/bilateral) and devices stated for each positive/uncertain observation."""
    from ..text.labeler import mentions
    from ..text.sentences import split_sentences

    sentences = [s.lower() for s in split_sentences(text or "")]
    out: dict[str, dict] = {}
    for m in mentions(text or ""):
        if m.status not in (1.0, -1.0) or m.observation == "No Finding":
            continue
        sentence, entry = sentences[m.sentence], out.setdefault(m.observation, {})
        sides = _nearest(SIDE_RE, sentence, m.start, m.end)
        if sides and "side" not in entry:
            both = {"left", "right"} <= set(sides[:3]) or sides[0] not in ("left", "right")
            entry["side"] = "bilateral" if both else sides[0]
        levels = _nearest(SEVERITY_RE, sentence, m.start, m.end, 25)
        if levels and "severity" not in entry:
            entry["severity"] = SEVERITY_OF[levels[0]]
        if m.observation == "Lung Lesion" and "mass" in m.phrase.lower():
            entry["variant"] = "mass"
        lobes = _nearest(LOBE_RE, sentence, m.start, m.end)
        if m.observation in LOBED and lobes and "variant" not in entry:
            entry["variant"] = LOBE_OF.get(lobes[0].split()[0], "lower")
        if m.observation == "Support Devices":
            kinds = set(entry.get("devices", ())) | {k for k, p in DEVICE_RES.items() if re.search(p, sentence)}
            entry["devices"] = sorted(kinds)
    return out


# ------------------------------------------------------------------ template reports

SIDE_TEXT = {"left": "left", "right": "right", "bilateral": "bilateral"}
SIZE_TEXT = {1: "small", 2: "moderate", 3: "large"}
GRADE_TEXT = {1: "mild", 2: "moderate", 3: "severe"}
DEVICE_TEXT = {"ett": "endotracheal tube", "cvc": "central venous catheter", "ng": "nasogastric tube",
               "ecg": "cardiac monitoring leads", "pacer": "left-sided pacemaker", "sternotomy": "median sternotomy wires",
               "chest_tube": "chest tube"}
NEGATIVE_TEXT = {
    "Enlarged Cardiomediastinum": "The mediastinum is not widened.", "Cardiomegaly": "Heart size is normal.",
    "Lung Opacity": "No focal opacity.", "Lung Lesion": "No pulmonary nodules or masses.",
    "Edema": "No pulmonary edema.", "Consolidation": "No focal consolidation.", "Pneumonia": "No evidence of pneumonia.",
    "Atelectasis": "No atelectasis.", "Pneumothorax": "No pneumothorax.", "Pleural Effusion": "No pleural effusion.",
    "Pleural Other": "No pleural thickening.", "Fracture": "No displaced rib fractures.",
    "Support Devices": "No lines or tubes are present.",
}
INDICATIONS = ("Cough.", "Shortness of breath.", "Fever.", "Chest pain.", "Evaluate for pneumonia.",
               "Preoperative evaluation.", "Line placement.", "Follow-up.", "Hypoxia.", "Trauma.")


def _phrase(label: str, f: Finding) -> str:
    """A positive noun phrase for a drawn finding ("small left pleural effusion")."""
    side = SIDE_TEXT.get(f.side, "")
    if label == "Pleural Effusion" and f.variant == "subpulmonic":
        return f"{SIZE_TEXT[f.severity]} subpulmonic {side} pleural effusion with apparent elevation of the hemidiaphragm"
    if label == "Pleural Effusion":
        return f"{SIZE_TEXT[f.severity]} {side} pleural effusion{'s' if f.side == 'bilateral' else ''}"
    if label == "Pneumothorax":
        return f"{SIZE_TEXT[f.severity]} {side} pneumothorax"
    if label == "Cardiomegaly":
        return f"{GRADE_TEXT[f.severity]} cardiomegaly"
    if label == "Enlarged Cardiomediastinum":
        return f"{GRADE_TEXT[f.severity]} widening of the mediastinum"
    if label == "Edema":
        return f"{GRADE_TEXT[f.severity]} pulmonary edema"
    if label == "Atelectasis":
        return "bibasilar atelectasis" if f.side == "bilateral" else f"linear atelectasis at the {side} base"
    if label == "Lung Lesion":
        if f.variant == "mass":
            return f"{side} lung mass"
        return f"{'multiple' if f.severity > 1 else 'a small'} {side} lung nodule{'s' if f.severity > 1 else ''}"
    if label == "Fracture":
        return f"{'multiple ' if f.severity > 1 else ''}{side} rib fracture{'s' if f.severity > 1 else ''}"
    if label == "Pleural Other":
        return f"{side} pleural thickening"
    if label == "Support Devices":
        names = [DEVICE_TEXT[k] for k in f.variant.split(",") if k in DEVICE_TEXT]
        return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    if label in LOBED:
        if f.side == "bilateral":
            return f"bilateral {f.variant} lobe pneumonia" if label == "Pneumonia" else f"consolidation in both {f.variant} lobes"
        return f"{side} {f.variant} lobe pneumonia" if label == "Pneumonia" else f"focal consolidation in the {side} {f.variant} lobe"
    return "patchy opacities in " + ("both lungs" if f.side == "bilateral" else f"the {side} lung")


def _sentence(label: str, value: float, f: Finding | None, rng) -> str:
    """The report sentence for one stated label (1 positive, 0 negative, -1 uncertain)."""
    if value == 0:
        return NEGATIVE_TEXT[label]
    text = " ".join(_phrase(label, f).split())
    if label == "Support Devices" and value == 1:
        return f"{text[0].upper()}{text[1:]} in place."
    if value == -1:
        form = ("Possible {}.", "{} cannot be excluded.", "Findings may represent {}.")[int(rng.integers(0, 3))]
        text = form.format(text)
        return f"{text[0].upper()}{text[1:]}"
    return f"{text[0].upper()}{text[1:]}."


def compose_report(stated: np.ndarray, findings: dict[str, Finding], rng) -> tuple[str, str]:
    """(findings, impression) text for stated labels (CHEXPERT_LABELS order) and the drawn findings."""
    order = ["Support Devices", *PATHOLOGIES]
    body, summary = [], []
    for label in order:
        value = stated[CHEXPERT_LABELS.index(label)]
        if np.isnan(value):
            continue
        f = findings.get(label) or _default_finding(label, rng)
        body.append(_sentence(label, value, f, rng))
        if value != 0 and label != "Support Devices":
            summary.append(body[-1])
    if not body:
        body.append("The lungs are clear.")
    impression = " ".join(summary) if summary else "No acute cardiopulmonary process."
    return " ".join(body), impression


def _default_finding(label: str, rng) -> Finding:
    """A finding to phrase when the label is stated uncertain but not drawn."""
    side = SIDED.get(label, ("",))[int(rng.integers(0, len(SIDED.get(label, ("",)))))]
    variant = {"Support Devices": "ett", "Consolidation": "lower", "Pneumonia": "lower"}.get(label, "")
    return Finding(1, side, variant)


def subpulmonic_sentence(f: Finding) -> str:
    """The sentence that states a subpulmonic effusion in an Open-I report that did not."""
    return " ".join(SUBPULMONIC_SENTENCE.format(side=SIDE_TEXT.get(f.side, "")).split())


def report_text(findings: str, impression: str, indication: str, view: str) -> str:
    """A MIMIC-style free-text report with FINDINGS and IMPRESSION sections."""
    exam = "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)"
    parts = [" " * 33 + "FINAL REPORT", f" EXAMINATION:  {exam}", "", f" INDICATION:  {indication or '___'}", "",
             " COMPARISON:  None.", ""]
    for header, body in (("FINDINGS", findings), ("IMPRESSION", impression)):
        if body and body.strip():
            parts += [f" {header}:", "", textwrap.fill(body.strip(), 76, initial_indent=" ", subsequent_indent=" "), ""]
    return "\n".join(parts)
