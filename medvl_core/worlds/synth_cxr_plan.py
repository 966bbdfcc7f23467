"""SynthCXR planning: the generation knobs (`WorldParams`) and, drawn from one random stream in a fixed order, the
studies (ids, split, report, stated labels, drawn findings, site, view, image seed) and the CheXpert-style test set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.labels import CHEXPERT_LABELS
from ..errors import MedvlError
from .synth_cxr_findings import DEVICES
from .synth_cxr_reports import (
    INDICATIONS,
    LOBED,
    PATHOLOGIES,
    SIDED,
    chexpert_label_table,
    compose_report,
    openi_pool,
    parse_attributes,
    subpulmonic_sentence,
    with_normal_sentences,
)
from .synth_cxr_scene import LOBES, Finding

UNCERTAIN_DRAWN = 0.5  # probability that an uncertain (-1) mention is drawn (at severity 1)
RARE_LABEL = "Pneumothorax"  # label of the default ("drain") rare stratum
RARE_STRATA = {"drain": ("Pneumothorax", "drain"), "subpulmonic": ("Pleural Effusion", "subpulmonic")}  # kind -> (label, variant)
SEVERITY_P = (0.5, 0.35, 0.15)


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
    n_valid_images: int = 234  # images of the CheXpert-style validation set (CheXpert valid: 234 images)
    test_abnormal_fraction: float = -1.0  # share of CheXpert-style valid/test rows with a stated pathology; < 0: as sampled
    subpulmonic_raise: float = 1.0  # scale of the "subpulmonic" form's hemidiaphragm raise (1: 0.03 + 0.03 x severity)
    extra_normal_sentences: float = 0.0  # mean (Poisson) number of real Open-I normal sentences added to each report

    @property
    def rare_label(self) -> str:
        """The CheXpert label whose positives the rare stratum belongs to."""
        return RARE_STRATA[self.rare_stratum][0]

    def check(self) -> WorldParams:
        """Validate ranges and names; returns self."""
        _require(self.n_studies >= 1 and self.n_test_images >= 0 and self.n_valid_images >= 0,
                 "n_studies must be >= 1, n_test_images and n_valid_images >= 0")
        _require(16 <= self.image_size <= 1024, f"image_size={self.image_size} must be in 16..1024")
        _require(self.report_source in ("openi", "template"), f"report_source={self.report_source!r}: use 'openi' or 'template'")
        _require(self.site_label in PATHOLOGIES + ("Support Devices",), f"site_label={self.site_label!r}: use a CheXpert observation other than 'No Finding'")
        _require(2 <= self.n_sites <= 4, f"n_sites={self.n_sites} must be 2, 3 or 4")
        for name in ("site_marker_strength", "rare_stratum_fraction", "label_noise"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{name}={getattr(self, name)} must be in [0, 1]")
        _require(self.rare_stratum in RARE_STRATA, f"rare_stratum={self.rare_stratum!r}: use one of {list(RARE_STRATA)}")
        _require(self.test_abnormal_fraction <= 1.0, f"test_abnormal_fraction={self.test_abnormal_fraction} must be <= 1")
        _require(0.0 < self.subpulmonic_raise <= 2.0, f"subpulmonic_raise={self.subpulmonic_raise} must be in (0, 2]")
        _require(self.rare_stratum_test_fraction <= 1.0, f"rare_stratum_test_fraction={self.rare_stratum_test_fraction} must be <= 1")
        _require(0.0 <= self.extra_normal_sentences <= 10.0,
                 f"extra_normal_sentences={self.extra_normal_sentences} must be in [0, 10]")
        return self


def _require(ok: bool, message: str) -> None:
    """Raise a MedvlError naming the bad knob unless `ok`."""
    if not ok:
        raise MedvlError(f"synth-cxr: {message}")


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


def source_rows(p: WorldParams, rng) -> tuple[list[dict], pd.DataFrame]:
    """Report records for the studies (Open-I or template) and CheXpert rows for the test set."""
    table = chexpert_label_table()
    total = p.n_test_images + (p.n_studies if p.report_source == "template" else 0)
    picks = rng.choice(len(table), size=total, replace=total > len(table))
    test_rows = table.iloc[picks[: p.n_test_images]]
    if p.test_abnormal_fraction >= 0:
        test_rows = chexpert_rows(table, p.n_test_images, p.test_abnormal_fraction, rng)
    if p.report_source == "template":
        rows = table.iloc[picks[p.n_test_images:]]
        labels, views = rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32), rows["AP/PA"].to_numpy()
        return [{"uid": f"chexpert-row-{i}", "labels": labels[k], "view": views[k]} for k, i in enumerate(rows.index)], test_rows
    pool = openi_pool()
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-p.n_studies // len(pool)))])[: p.n_studies]
    if p.extra_normal_sentences > 0:  # a stream of its own: the rest of the world is drawn as without it
        extra = np.random.default_rng([p.seed, 11])
        return [with_normal_sentences(pool[i], int(extra.poisson(p.extra_normal_sentences)), extra) for i in order], test_rows
    return [dict(pool[i]) for i in order], test_rows


def chexpert_rows(table: pd.DataFrame, n: int, abnormal_fraction: float, rng) -> pd.DataFrame:
    """`n` CheXpert label rows; with `abnormal_fraction` >= 0, that share states a pathology (1) and the rest
    state none (neither 1 nor -1), so the drawn images are abnormal at exactly that share."""
    if abnormal_fraction < 0:
        return table.iloc[rng.choice(len(table), size=n, replace=n > len(table))]
    values = table[list(PATHOLOGIES)].to_numpy(dtype=np.float32)
    abnormal, normal = np.flatnonzero((values == 1).any(axis=1)), np.flatnonzero(~np.isin(values, (1, -1)).any(axis=1))
    n_abnormal = int(round(abnormal_fraction * n))
    picks = np.concatenate([rng.choice(abnormal, size=n_abnormal, replace=False),
                            rng.choice(normal, size=n - n_abnormal, replace=False)])
    return table.iloc[rng.permutation(picks)]


def valid_rows(p: WorldParams) -> pd.DataFrame:
    """CheXpert rows of the CheXpert-style validation set, from their own random stream (the rest of the
    world does not depend on its size)."""
    return chexpert_rows(chexpert_label_table(), p.n_valid_images, p.test_abnormal_fraction,
                         np.random.default_rng([p.seed, 5]))


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


def study_plan(p: WorldParams, sources: list[dict], rng) -> pd.DataFrame:
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
            body = f"{subpulmonic_sentence(findings['Pleural Effusion'])} {body}".strip()
    else:
        findings, rare = _findings_for(stated, {}, rng, p)
        body, impression = compose_report(stated, findings, rng)
        view = src["view"] if src["view"] in ("AP", "PA") else _view(findings, rng)
    indication = src.get("indication") or INDICATIONS[int(rng.integers(0, len(INDICATIONS)))]
    return {"view": view, "site": _site(p.site_label in findings, rng, p), "rare_stratum": int(rare),
            "image_seed": int(rng.integers(0, 2**62)), "source_id": src["uid"], "findings_text": body,
            "impression_text": impression, "indication": indication, "stated": stated, "findings": findings}


def chexpert_test_plan(p: WorldParams, table_rows: pd.DataFrame, rng, split: str = "test") -> pd.DataFrame:
    """The CheXpert-style test (or valid) set: binary labels equal to what is drawn (uncertain resolved by a coin)."""
    rows = []
    first_patient = 70001 if split == "test" else 64541  # CheXpert's valid patients are 64541-64740
    labels = table_rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32)
    meta = table_rows[["AP/PA", "Sex", "Age"]].to_numpy()
    for k, (source, (projection, sex, age), index) in enumerate(zip(labels, meta, table_rows.index, strict=True)):
        fraction = p.rare_stratum_test_fraction if p.rare_stratum_test_fraction >= 0 else None
        findings, rare = _findings_for(source, {}, rng, p, fraction)
        view = projection if projection in ("AP", "PA") else _view(findings, rng)
        rows.append({"path": f"{split}/patient{first_patient + k}/study1/view1_frontal.jpg", "view": view,
                     "site": _site(p.site_label in findings, rng, p), "rare_stratum": int(rare),
                     "habitus": float(rng.uniform(-1, 1)), "image_seed": int(rng.integers(0, 2**62)),
                     "source_id": f"chexpert-row-{int(index)}", "stated": present_vector(findings),
                     "findings": findings, "sex": sex, "age": int(age), "split": split})
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


TEST_COLUMNS = ["path", "view", "site", "rare_stratum", "habitus", "image_seed", "source_id", "stated", "findings", "sex", "age",
                "split"]


def present_vector(findings: dict) -> np.ndarray:
    """14-vector of what is drawn (No Finding = none of the 12 pathologies drawn)."""
    present = np.array([float(label in findings) for label in CHEXPERT_LABELS], dtype=np.float32)
    present[0] = float(not any(label in findings for label in PATHOLOGIES))
    return present


def add_noise(stated: np.ndarray, rate: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Flip stated 1/0 labels with probability `rate`; returns (noisy labels, flipped mask)."""
    flip = np.isin(stated, (0.0, 1.0)) & (rng.random(stated.shape) < rate)
    return np.where(flip, 1.0 - stated, stated).astype(np.float32), flip
