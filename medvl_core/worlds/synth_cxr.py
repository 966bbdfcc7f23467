"""SynthCXR (`synth-cxr`): a deterministic synthetic chest X-ray world written in the MIMIC-CXR-JPG layout.

Every image is rendered (see `synth_cxr_render`) from the findings its report states, so methods have
real signal to learn and a known ground truth. One call writes, under `root`:

- `files/p1x/p{subject}/s{study}/{dicom_id}.jpg` and `files/p1x/p{subject}/s{study}.txt` (FINDINGS/IMPRESSION)
- `mimic-cxr-2.0.0-{metadata,chexpert,split}.csv` (read unchanged by the `mimic-cxr` loader)
- `chexpert-test/test_labels.csv` + `chexpert-test/test/patient*/study1/view1_frontal.jpg`: a held-out,
  CheXpert-style binary-labelled test set (no reports) for zero-shot evaluation (`chexpert` loader)
- `synth_truth.csv`: per image the rendered findings, severity, side, site, rare-stratum and noise flags
- `world.json`: format version and every generation parameter (written last; its presence = complete)

Reports come from the 3,955 real Open-I reports bundled in torchxrayvision (labelled by
`text.labeler`, severity/side parsed from the text) or are composed from templates over label
combinations sampled from the real CheXpert label table torchxrayvision ships. Knobs: `site_marker_strength`
(burned-in site markers correlated with `site_label`), `rare_stratum` + `rare_stratum_fraction` (which
rare stratum and how often: "drain" = Pneumothorax drawn treated, chest drain + small rim, the default;
"subpulmonic" = Pleural Effusion drawn subpulmonic, an elevated hemidiaphragm without a meniscus,
reported in its own words), `rare_stratum_test_fraction` (its share in the held-out test set),
`label_noise` (flips stated 1/0 labels in the label CSV), size.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import dataset_dir
from ..data.cxr import chexpert, mimic_cxr
from ..data.labels import CHEXPERT_LABELS
from ..errors import MedvlError
from . import common
from .synth_cxr_render import DEVICES, LOBES, Finding, render_cxr, sample_nuisance

FORMAT_VERSION = 2  # bump whenever generated files change, so stale worlds are not reused
PREFIX = "mimic-cxr-2.0.0"
CHEXPERT_TEST_DIR = "chexpert-test"
TRUTH_FILE, WORLD_FILE = "synth_truth.csv", common.WORLD_FILE
TITLE = "SynthCXR"
SPLITS = (("train", 0.8), ("validate", 0.1), ("test", 0.1))
PATHOLOGIES = CHEXPERT_LABELS[1:-1]  # the 12 findings that block "No Finding" (not Support Devices)
UNCERTAIN_DRAWN = 0.5  # probability that an uncertain (-1) mention is drawn (at severity 1)
RARE_LABEL = "Pneumothorax"  # label of the default ("drain") rare stratum
RARE_STRATA = {"drain": ("Pneumothorax", "drain"), "subpulmonic": ("Pleural Effusion", "subpulmonic")}  # kind -> (label, variant)
SUBPULMONIC_SENTENCE = "Subpulmonic {side} pleural effusion with apparent elevation of the hemidiaphragm."
SEVERITY_P = (0.5, 0.35, 0.15)
SIDED = {  # observation -> sides drawn when the text does not state one
    "Lung Opacity": ("left", "right", "bilateral"), "Lung Lesion": ("left", "right"), "Edema": ("bilateral",),
    "Consolidation": ("left", "right"), "Pneumonia": ("left", "right"), "Atelectasis": ("left", "right", "bilateral"),
    "Pneumothorax": ("left", "right"), "Pleural Effusion": ("left", "right", "bilateral"),
    "Pleural Other": ("left", "right", "bilateral"), "Fracture": ("left", "right"),
}


@dataclass(frozen=True)
class WorldParams:
    """Generation knobs (all recorded in world.json; a world is reused only with the same knobs)."""

    n_studies: int = 2500  # studies (one frontal image each) in the MIMIC-style part
    n_test_images: int = 500  # images of the CheXpert-style held-out test set
    image_size: int = 128  # pixels (square)
    seed: int = 0
    report_source: str = "openi"  # "openi" (real Open-I texts, labelled) | "template" (composed sentences)
    site_marker_strength: float = 0.0  # 0 = site independent of labels .. 1 = site decided by `site_label`
    site_label: str = "Pleural Effusion"  # the observation the site (and so its marker) correlates with
    n_sites: int = 2  # sites (marker styles); 2..4
    rare_stratum_fraction: float = 0.0  # fraction of drawn cases of the stratum's label in the rare stratum
    label_noise: float = 0.0  # probability of flipping each stated 1/0 label in the label CSV (truth kept)
    rare_stratum: str = "drain"  # "drain" (Pneumothorax + chest drain) | "subpulmonic" (Pleural Effusion, no meniscus)
    rare_stratum_test_fraction: float = -1.0  # its fraction in the CheXpert-style test set; < 0: rare_stratum_fraction

    @property
    def rare_label(self) -> str:
        """The CheXpert label whose positives the rare stratum belongs to."""
        return RARE_STRATA[self.rare_stratum][0]

    def check(self) -> WorldParams:
        """Validate ranges and names; returns self."""
        _require(self.n_studies >= 1 and self.n_test_images >= 0, "n_studies must be >= 1 and n_test_images >= 0")
        _require(16 <= self.image_size <= 1024, f"image_size={self.image_size} must be in 16..1024")
        _require(self.report_source in ("openi", "template"), f"report_source={self.report_source!r}: use 'openi' or 'template'")
        _require(self.site_label in PATHOLOGIES + ("Support Devices",), f"site_label={self.site_label!r}: use a CheXpert observation other than 'No Finding'")
        _require(2 <= self.n_sites <= 4, f"n_sites={self.n_sites} must be 2, 3 or 4")
        for name in ("site_marker_strength", "rare_stratum_fraction", "label_noise"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{name}={getattr(self, name)} must be in [0, 1]")
        _require(self.rare_stratum in RARE_STRATA, f"rare_stratum={self.rare_stratum!r}: use one of {list(RARE_STRATA)}")
        _require(self.rare_stratum_test_fraction <= 1.0, f"rare_stratum_test_fraction={self.rare_stratum_test_fraction} must be <= 1")
        return self


def _require(ok: bool, message: str) -> None:
    """Raise a MedvlError naming the bad knob unless `ok`."""
    if not ok:
        raise MedvlError(f"synth-cxr: {message}")


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
def _openi_pool() -> tuple[dict, ...]:
    """Bundled Open-I reports that have findings or impression text."""
    from ..data.openi import bundled_openi_reports

    return tuple(r for r in bundled_openi_reports() if (r["findings"] or r["impression"]).strip())


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


# ------------------------------------------------------------------ planning the world

def _draw_finding(label: str, stated_attr: dict, rng) -> Finding:
    """Severity/side from the text when stated, else drawn; device kinds for Support Devices."""
    severity = stated_attr.get("severity") or int(rng.choice([1, 2, 3], p=SEVERITY_P))
    sides = SIDED.get(label, ("",))
    side = stated_attr.get("side") if label in SIDED and label != "Edema" else None
    side = side or sides[int(rng.integers(0, len(sides)))]
    variant = stated_attr.get("variant", "")
    if label == "Support Devices":
        kinds = stated_attr.get("devices") or list(rng.choice(DEVICES[:5], size=severity, replace=False))
        variant, severity = ",".join(sorted(kinds)), min(len(kinds), 3)
    if label == "Lung Lesion" and not variant and severity == 3 and rng.random() < 0.5:
        variant = "mass"
    if label in LOBED and variant not in LOBES:
        lobes = LOBES if side == "right" else LOBES[:2]
        variant = lobes[int(rng.integers(0, len(lobes)))]
    return Finding(int(severity), side, variant)


def _findings_for(stated: np.ndarray, attrs: dict, rng, p: WorldParams,
                  fraction: float | None = None) -> tuple[dict[str, Finding], bool]:
    """Drawn findings for one image from its stated labels; second value: in the rare stratum.

    `fraction`: the rare stratum's share of the stratum label's drawn cases (default `rare_stratum_fraction`).
    """
    findings = {}
    for label in CHEXPERT_LABELS[1:]:
        value = stated[CHEXPERT_LABELS.index(label)]
        uncertain_drawn = value == -1 and rng.random() < UNCERTAIN_DRAWN
        if value == 1 or uncertain_drawn:
            attr = attrs.get(label, {}) if value == 1 else {**attrs.get(label, {}), "severity": 1}
            findings[label] = _draw_finding(label, attr, rng)
    fraction = p.rare_stratum_fraction if fraction is None else fraction
    label, variant = RARE_STRATA[p.rare_stratum]
    rare = label in findings and rng.random() < fraction
    if rare and variant == "drain":
        findings[label] = Finding(1, findings[label].side, "drain")
    elif rare:
        findings[label] = Finding(findings[label].severity, findings[label].side, variant)
    return findings, rare


def _site(present: bool, rng, p: WorldParams) -> int:
    """Acquisition site: with prob. `site_marker_strength` decided by the site label, else uniform."""
    if rng.random() < p.site_marker_strength:
        return 1 if present else 0
    return int(rng.integers(0, p.n_sites))


def _view(findings: dict, rng) -> str:
    """AP (portable) more likely for patients with devices or edema, as in hospital practice."""
    p_ap = 0.15 + 0.5 * ("Support Devices" in findings) + 0.2 * ("Edema" in findings)
    return "AP" if rng.random() < min(p_ap, 0.9) else "PA"


def _source_rows(p: WorldParams, rng) -> tuple[list[dict], pd.DataFrame]:
    """Report records for the studies (Open-I or template) and CheXpert rows for the test set."""
    table = chexpert_label_table()
    total = p.n_test_images + (p.n_studies if p.report_source == "template" else 0)
    picks = rng.choice(len(table), size=total, replace=total > len(table))
    test_rows = table.iloc[picks[: p.n_test_images]]
    if p.report_source == "template":
        rows = table.iloc[picks[p.n_test_images:]]
        labels, views = rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32), rows["AP/PA"].to_numpy()
        return [{"uid": f"chexpert-row-{i}", "labels": labels[k], "view": views[k]} for k, i in enumerate(rows.index)], test_rows
    pool = _openi_pool()
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-p.n_studies // len(pool)))])[: p.n_studies]
    return [dict(pool[i]) for i in order], test_rows


def _ids(n_subjects: int, n_studies: int, rng) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Unique MIMIC-like subject ids (1xxxxxxx), study ids (5xxxxxxx) and dicom ids (5 hex groups)."""
    step = max(2, 8_000_000 // max(n_subjects, 1))
    subjects = 10_000_000 + np.cumsum(rng.integers(1, step, n_subjects))
    studies = rng.permutation(50_000_000 + np.cumsum(rng.integers(1, max(2, 40_000_000 // n_studies), n_studies)))
    raw = rng.integers(0, 2**32, size=(n_studies, 5), dtype=np.uint64)
    dicoms = ["-".join(f"{int(v):08x}" for v in row) for row in raw]
    return subjects, studies, dicoms


def _split_subjects(n_subjects: int, rng) -> np.ndarray:
    """Split names per subject in exact 80/10/10 quotas (validate and test get >= 1 subject when n >= 3)."""
    n_val = n_test = max(1, round(0.1 * n_subjects)) if n_subjects >= 3 else 0
    names = np.array(["test"] * n_test + ["validate"] * n_val + ["train"] * (n_subjects - n_val - n_test))
    return names[rng.permutation(n_subjects)]


def _study_plan(p: WorldParams, sources: list[dict], rng) -> pd.DataFrame:
    """One row per study: ids, split, text, stated labels, drawn findings, site, view, seeds."""
    n = p.n_studies
    owner = np.repeat(np.arange(n), rng.choice([1, 2, 3], size=n, p=[0.7, 0.2, 0.1]))[:n]  # study -> subject
    n_subjects = int(owner[-1]) + 1
    subjects, studies, dicoms = _ids(n_subjects, n, rng)
    split_of, habitus = _split_subjects(n_subjects, rng), rng.uniform(-1, 1, n_subjects)
    stated = _stated_labels(p, sources)
    rows = []
    for i, src in enumerate(sources):
        row, s = _study_content(p, src, stated[i], rng), owner[i]
        row.update(subject_id=int(subjects[s]), study_id=int(studies[i]), dicom_id=dicoms[i], split=split_of[s],
                   habitus=float(habitus[s]))
        rows.append(row)
    return pd.DataFrame(rows)


def _openi_text(src: dict) -> str:
    """Findings and impression of an Open-I record as one text."""
    return f"{src['findings']} {src['impression']}".strip()


def _stated_labels(p: WorldParams, sources: list[dict]) -> np.ndarray:
    """(N, 14) stated labels: the labeler on Open-I texts, or the sampled CheXpert rows."""
    if p.report_source == "template":
        return np.stack([r["labels"] for r in sources])
    from ..text.labeler import label_reports

    return label_reports([_openi_text(r) for r in sources])


def _study_content(p: WorldParams, src: dict, stated: np.ndarray, rng) -> dict:
    """Drawn findings, report text, view, site and seed of one study."""
    if p.report_source == "openi":
        findings, rare = _findings_for(stated, parse_attributes(_openi_text(src)), rng, p)
        (body, impression), view = (src["findings"], src["impression"]), _view(findings, rng)
        if rare and p.rare_stratum == "subpulmonic":  # the real text does not describe the drawn form: say it first
            body = f"{_subpulmonic_sentence(findings['Pleural Effusion'])} {body}".strip()
    else:
        findings, rare = _findings_for(stated, {}, rng, p)
        body, impression = compose_report(stated, findings, rng)
        view = src["view"] if src["view"] in ("AP", "PA") else _view(findings, rng)
    indication = src.get("indication") or INDICATIONS[int(rng.integers(0, len(INDICATIONS)))]
    return {"view": view, "site": _site(p.site_label in findings, rng, p), "rare_stratum": int(rare),
            "image_seed": int(rng.integers(0, 2**62)), "source_id": src["uid"], "findings_text": body,
            "impression_text": impression, "indication": indication, "stated": stated, "findings": findings}


def _subpulmonic_sentence(f: Finding) -> str:
    """The sentence that states a subpulmonic effusion in an Open-I report that did not."""
    return " ".join(SUBPULMONIC_SENTENCE.format(side=SIDE_TEXT.get(f.side, "")).split())


def _test_plan(p: WorldParams, table_rows: pd.DataFrame, rng) -> pd.DataFrame:
    """The CheXpert-style test set: binary labels equal to what is drawn (uncertain resolved by a coin)."""
    rows = []
    labels = table_rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32)
    meta = table_rows[["AP/PA", "Sex", "Age"]].to_numpy()
    for k, (source, (projection, sex, age), index) in enumerate(zip(labels, meta, table_rows.index, strict=True)):
        fraction = p.rare_stratum_test_fraction if p.rare_stratum_test_fraction >= 0 else None
        findings, rare = _findings_for(source, {}, rng, p, fraction)
        view = projection if projection in ("AP", "PA") else _view(findings, rng)
        rows.append({"path": f"test/patient{70001 + k}/study1/view1_frontal.jpg", "view": view,
                     "site": _site(p.site_label in findings, rng, p), "rare_stratum": int(rare),
                     "habitus": float(rng.uniform(-1, 1)), "image_seed": int(rng.integers(0, 2**62)),
                     "source_id": f"chexpert-row-{int(index)}", "stated": _present_vector(findings),
                     "findings": findings, "sex": sex, "age": int(age)})
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


TEST_COLUMNS = ["path", "view", "site", "rare_stratum", "habitus", "image_seed", "source_id", "stated", "findings", "sex", "age"]


def _present_vector(findings: dict) -> np.ndarray:
    """14-vector of what is drawn (No Finding = none of the 12 pathologies drawn)."""
    present = np.array([float(label in findings) for label in CHEXPERT_LABELS], dtype=np.float32)
    present[0] = float(not any(label in findings for label in PATHOLOGIES))
    return present


def _add_noise(stated: np.ndarray, rate: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Flip stated 1/0 labels with probability `rate`; returns (noisy labels, flipped mask)."""
    flip = np.isin(stated, (0.0, 1.0)) & (rng.random(stated.shape) < rate)
    return np.where(flip, 1.0 - stated, stated).astype(np.float32), flip


# ------------------------------------------------------------------ writing

def _mimic_paths(subject_id: int, study_id: int, dicom_id: str) -> tuple[str, str]:
    """(image path, report path) relative to the world root, in the MIMIC-CXR-JPG layout."""
    sid = str(subject_id)
    folder = f"files/p{sid[:2]}/p{sid}"
    return f"{folder}/s{study_id}/{dicom_id}.jpg", f"{folder}/s{study_id}.txt"


def report_text(findings: str, impression: str, indication: str, view: str) -> str:
    """A MIMIC-style free-text report with FINDINGS and IMPRESSION sections."""
    exam = "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)"
    parts = [" " * 33 + "FINAL REPORT", f" EXAMINATION:  {exam}", "", f" INDICATION:  {indication or '___'}", "",
             " COMPARISON:  None.", ""]
    for header, body in (("FINDINGS", findings), ("IMPRESSION", impression)):
        if body and body.strip():
            parts += [f" {header}:", "", textwrap.fill(body.strip(), 76, initial_indent=" ", subsequent_indent=" "), ""]
    return "\n".join(parts)


def _label_frame(stated: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
    """A CheXpert-valued label table (blank = not stated) with the label columns in alphabetical order."""
    labels = pd.DataFrame(stated, columns=list(CHEXPERT_LABELS)).astype("float64")
    return pd.concat([keys.reset_index(drop=True), labels[sorted(CHEXPERT_LABELS)]], axis=1)


def _write_tables(tmp: Path, studies: pd.DataFrame, noisy: np.ndarray, size: int) -> None:
    """The MIMIC split, metadata and label CSVs and every report .txt."""
    keys = studies[["subject_id", "study_id"]]
    _label_frame(noisy, keys).to_csv(tmp / f"{PREFIX}-chexpert.csv", index=False)
    studies[["dicom_id", "study_id", "subject_id", "split"]].to_csv(tmp / f"{PREFIX}-split.csv", index=False)
    meta = pd.DataFrame({
        "dicom_id": studies["dicom_id"], "subject_id": studies["subject_id"], "study_id": studies["study_id"],
        "PerformedProcedureStepDescription": np.where(studies["view"] == "AP", "CHEST (PORTABLE AP)", "CHEST (PA AND LAT)"),
        "ViewPosition": studies["view"], "Rows": size, "Columns": size,
        "StudyDate": 21500101 + (studies["study_id"] % 28), "StudyTime": 100000.0 + (studies["study_id"] % 80000),
        "ProcedureCodeSequence_CodeMeaning": np.where(studies["view"] == "AP", "CHEST (PORTABLE AP)", "CHEST (PA AND LAT)"),
        "ViewCodeSequence_CodeMeaning": np.where(studies["view"] == "AP", "antero-posterior", "postero-anterior"),
        "PatientOrientationCodeSequence_CodeMeaning": "Erect",
    })
    meta.to_csv(tmp / f"{PREFIX}-metadata.csv", index=False)
    for row in studies.itertuples():
        _, report = _mimic_paths(row.subject_id, row.study_id, row.dicom_id)
        path = tmp / report
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report_text(row.findings_text, row.impression_text, row.indication, row.view), encoding="utf-8")


def _write_test_table(tmp: Path, tests: pd.DataFrame) -> None:
    """chexpert-test/test_labels.csv: Path, Sex, Age, Frontal/Lateral, AP/PA + 14 binary labels."""
    if tests.empty:
        return
    head = pd.DataFrame({"Path": tests["path"], "Sex": tests["sex"], "Age": tests["age"], "Frontal/Lateral": "Frontal",
                         "AP/PA": tests["view"]})
    labels = pd.DataFrame(np.stack(tests["stated"]), columns=list(CHEXPERT_LABELS)).astype("float64")
    (tmp / CHEXPERT_TEST_DIR).mkdir(parents=True, exist_ok=True)
    pd.concat([head, labels], axis=1).to_csv(tmp / CHEXPERT_TEST_DIR / "test_labels.csv", index=False)


def _truth_frame(studies: pd.DataFrame, tests: pd.DataFrame, flipped: np.ndarray) -> pd.DataFrame:
    """The ground-truth table: one row per image of both parts."""
    rows = []
    for part, frame in (("mimic", studies), (CHEXPERT_TEST_DIR, tests)):
        for i, row in enumerate(frame.itertuples()):
            image = _mimic_paths(row.subject_id, row.study_id, row.dicom_id)[0] if part == "mimic" else f"{CHEXPERT_TEST_DIR}/{row.path}"
            flips = [CHEXPERT_LABELS[j] for j in np.flatnonzero(flipped[i])] if part == "mimic" else []
            rows.append(_truth_row(part, image, row, flips))
    return pd.DataFrame(rows)


def _truth_row(part: str, image: str, row, flips: list[str]) -> dict:
    """One truth-table row: ids, nuisance-relevant facts, and per observation drawn/stated/severity/side."""
    record = {"part": part, "image": image, "dicom_id": getattr(row, "dicom_id", ""),
              "subject_id": getattr(row, "subject_id", ""), "study_id": getattr(row, "study_id", ""),
              "split": getattr(row, "split", "test"), "view": row.view, "site": row.site, "rare_stratum": row.rare_stratum,
              "image_seed": row.image_seed, "source_id": row.source_id, "n_flipped": len(flips),
              "flipped_labels": "|".join(flips)}
    present = _present_vector(row.findings)
    for j, label in enumerate(CHEXPERT_LABELS):
        f = row.findings.get(label)
        record[label] = int(present[j])
        record[f"{label}.stated"] = row.stated[j]
        record[f"{label}.severity"] = f.severity if f else 0
        record[f"{label}.side"] = f.side if f else ""
    record["devices"] = row.findings["Support Devices"].variant if "Support Devices" in row.findings else ""
    return record


def _render_job(job: tuple) -> None:
    """Render and save one image (runs in a worker process)."""
    path, findings, view, site, habitus, seed, size = job
    from PIL import Image

    nuisance = sample_nuisance(np.random.default_rng([seed, 7]), view=view, site=site, habitus=habitus)
    pixels = render_cxr(findings, nuisance, seed, size)
    Image.fromarray(pixels, mode="L").save(path, format="JPEG", quality=95)


def _build(tmp: Path, p: WorldParams, workers: int) -> dict:
    """Write a whole world into the empty folder `tmp`; returns world.json's content."""
    rng = np.random.default_rng([p.seed, 3])
    sources, test_rows = _source_rows(p, rng)
    studies = _study_plan(p, sources, rng)
    tests = _test_plan(p, test_rows, rng)
    noisy, flipped = _add_noise(np.stack(studies["stated"]), p.label_noise, rng)
    _write_tables(tmp, studies, noisy, p.image_size)
    _write_test_table(tmp, tests)
    _truth_frame(studies, tests, flipped).to_csv(tmp / TRUTH_FILE, index=False)
    jobs = [(str(tmp / _mimic_paths(r.subject_id, r.study_id, r.dicom_id)[0]), r.findings, r.view, r.site, r.habitus,
             r.image_seed, p.image_size) for r in studies.itertuples()]
    jobs += [(str(tmp / CHEXPERT_TEST_DIR / r.path), r.findings, r.view, r.site, r.habitus, r.image_seed, p.image_size)
             for r in tests.itertuples()]
    for job in jobs:
        Path(job[0]).parent.mkdir(parents=True, exist_ok=True)
    common.run_jobs(_render_job, jobs, workers)
    counts = {"images": len(jobs), "studies": len(studies), "subjects": int(studies["subject_id"].nunique()),
              "chexpert_test_images": len(tests), **{f"split_{s}": int((studies["split"] == s).sum()) for s, _ in SPLITS}}
    return {"name": "synth-cxr", "format_version": FORMAT_VERSION, "generator": __name__, "params": asdict(p),
            "constants": {"uncertain_drawn": UNCERTAIN_DRAWN, "rare_stratum_label": p.rare_label,
                          "splits": dict(SPLITS), "biased_site": 1},
            "counts": counts, "label_names": list(CHEXPERT_LABELS),
            "files": {"truth": TRUTH_FILE, "chexpert_test": f"{CHEXPERT_TEST_DIR}/test_labels.csv"}}


# ------------------------------------------------------------------ public API

def read_world(root) -> dict | None:
    """world.json of a complete SynthCXR world at `root`, or None if there is none."""
    return common.read_world(root, TITLE)


def read_truth(root) -> pd.DataFrame:
    """The ground-truth table (synth_truth.csv) of the world at `root`."""
    path = Path(root) / TRUTH_FILE
    if not path.is_file():
        raise MedvlError(f"no SynthCXR truth table at {path}; generate the world first (generate_synth_cxr)")
    return pd.read_csv(path, keep_default_na=False, na_values={f"{name}.stated": [""] for name in CHEXPERT_LABELS})


def generate_synth_cxr(root, n_studies: int = 2500, n_test_images: int = 500, image_size: int = 128, seed: int = 0,
                       report_source: str = "openi", site_marker_strength: float = 0.0,
                       site_label: str = "Pleural Effusion", n_sites: int = 2, rare_stratum_fraction: float = 0.0,
                       label_noise: float = 0.0, rare_stratum: str = "drain", rare_stratum_test_fraction: float = -1.0,
                       workers: int | None = None) -> Path:
    """Generate (or reuse) the SynthCXR world at `root`; returns `root`.

    Knobs: n_studies / n_test_images / image_size (size); seed; report_source "openi" (real Open-I
    texts labelled by the rule-based labeler) or "template" (sentences over CheXpert label rows);
    site_marker_strength in [0, 1] (site 1's burned-in marker goes with `site_label` present);
    n_sites (2-4 marker styles); rare_stratum ("drain": Pneumothorax cases drawn treated, chest drain,
    small rim; "subpulmonic": Pleural Effusion drawn under the lung, an elevated hemidiaphragm without a
    meniscus, its report saying "subpulmonic"); rare_stratum_fraction (share of that label's drawn cases;
    flagged `rare_stratum` in synth_truth.csv); rare_stratum_test_fraction (the share in the CheXpert-style
    test set; < 0 = the same); label_noise (flip rate of stated
    1/0 labels in mimic-cxr-2.0.0-chexpert.csv; synth_truth.csv keeps the clean values).
    `workers` (processes; default: CPU count, at most 4) does not change the files.
    The world is built in a temp folder beside `root` and renamed into place; an existing complete
    world is reused if its knobs match, else a MedvlError says to pass another root or delete it.
    """
    params = WorldParams(n_studies, n_test_images, image_size, seed, report_source, float(site_marker_strength),
                         site_label, n_sites, float(rare_stratum_fraction), float(label_noise), rare_stratum,
                         float(rare_stratum_test_fraction)).check()
    return _ensure(Path(root).expanduser(), params, asdict(params), workers)


def _ensure(root: Path, params: WorldParams, wanted: dict, workers: int | None) -> Path:
    """Reuse the world at `root` if it matches `wanted`, else generate it atomically (see `worlds.common`)."""
    def build(tmp: Path) -> dict:
        return _build(tmp, params, workers or common.default_workers())

    return common.ensure_world(root, build, wanted, TITLE, FORMAT_VERSION, cache_root=dataset_dir("synth-cxr"))


KNOBS = tuple(WorldParams.__dataclass_fields__)
LOADER_OPTIONS = ("views", "uncertain", "images", "text", "reports_root", "labeler", "mode", "transform")


def synth_cxr(root: Path, split: str = "train", test_set: str = "mimic", workers: int | None = None, **options):
    """The `mimic-cxr` dataset over a SynthCXR world at `root`, generating it first if absent.

    Generator knobs among `options` (see `generate_synth_cxr`) are used when generating and checked
    against an existing world (knobs left out are taken from it). Other options go to the loader
    (`views`, `uncertain`, `images`, `text`, `mode`, `transform`). `test_set="chexpert"` with
    split="test" serves the CheXpert-style held-out test set through the `chexpert` loader instead.
    """
    knobs = {k: options.pop(k) for k in list(options) if k in KNOBS}
    unknown = sorted(set(options) - set(LOADER_OPTIONS))
    if unknown:
        raise MedvlError(f"synth-cxr: unknown option(s) {unknown}; generator knobs: {list(KNOBS)}; "
                         f"loader options: {list(LOADER_OPTIONS)}")
    if test_set not in ("mimic", "chexpert"):
        raise MedvlError(f"synth-cxr: test_set={test_set!r}; use 'mimic' (the MIMIC-layout test split) or 'chexpert'")
    params = WorldParams(**knobs).check()
    _ensure(Path(root).expanduser(), params, {k: asdict(params)[k] for k in knobs}, workers)
    if test_set == "chexpert" and split == "test":  # no reports there: text/reports_root/labeler do not apply
        kept = {k: v for k, v in options.items() if k in ("views", "uncertain", "images", "mode", "transform")}
        return chexpert(Path(root).expanduser() / CHEXPERT_TEST_DIR, "test", **kept)
    return mimic_cxr(Path(root).expanduser(), split, **options)
