"""Open-I MeSH major terms -> the 14 CheXpert observations (the one mapping medvl uses).

Open-I indexers list what a report states as MeSH "major" terms ("Cardiomegaly/mild",
"Pulmonary Atelectasis/base/left", "normal"). A report's row is 1 where a mapped term is present and
0 elsewhere (MeSH has no negatives); No Finding is 1 when every term is "normal" or a support device;
a report indexed "No Indexing" (or with no terms) is all NaN. The `open-i` loader's `labels` and the
labeler-agreement reference (data_cards/report-labeler.md) both come from here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from .labels import CHEXPERT_LABELS

_INDEX = {name: i for i, name in enumerate(CHEXPERT_LABELS)}
UNINDEXED = "no indexing"  # Open-I's marker for a report that got no MeSH terms

# MeSH heading (before the first "/", lower-case) -> observation, for every qualifier.
MESH_HEADINGS = {
    "normal": "No Finding",
    "cardiomegaly": "Cardiomegaly",
    "opacity": "Lung Opacity",
    "density": "Lung Opacity",
    "infiltrate": "Lung Opacity",
    "airspace disease": "Lung Opacity",
    "pulmonary fibrosis": "Lung Opacity",
    "lung diseases, interstitial": "Lung Opacity",
    "nodule": "Lung Lesion",
    "mass": "Lung Lesion",
    "lung neoplasms": "Lung Lesion",
    "pulmonary edema": "Edema",
    "edema": "Edema",
    "pulmonary congestion": "Edema",
    "heart failure": "Edema",
    "consolidation": "Consolidation",
    "pneumonia": "Pneumonia",
    "pulmonary atelectasis": "Atelectasis",
    "atelectasis": "Atelectasis",
    "volume loss": "Atelectasis",
    "pneumothorax": "Pneumothorax",
    "hydropneumothorax": ("Pneumothorax", "Pleural Effusion"),
    "hemopneumothorax": ("Pneumothorax", "Pleural Effusion"),
    "pleural effusion": "Pleural Effusion",
    "hemothorax": "Pleural Effusion",
    "fractures, bone": "Fracture",
    "rib fractures": "Fracture",
    "catheters, indwelling": "Support Devices",
    "implanted medical device": "Support Devices",
    "medical device": "Support Devices",
    "tube, inserted": "Support Devices",
    "surgical instruments": "Support Devices",
    "stents": "Support Devices",
    "sutures": "Support Devices",
    "pacemaker, artificial": "Support Devices",
}
# (heading, qualifier that must be present or "", qualifier that must be absent or "", observation).
MESH_QUALIFIED = (
    ("cardiac shadow", "enlarged", "", "Cardiomegaly"),
    ("heart", "enlarged", "", "Cardiomegaly"),
    ("heart ventricles", "enlarged", "", "Cardiomegaly"),
    ("heart atria", "enlarged", "", "Cardiomegaly"),
    ("mediastinum", "enlarged", "", "Enlarged Cardiomediastinum"),
    ("mediastinum", "prominent", "", "Enlarged Cardiomediastinum"),
    ("mediastinum", "widened", "", "Enlarged Cardiomediastinum"),
    ("costophrenic angle", "blunted", "", "Pleural Effusion"),
    ("thickening", "pleura", "", "Pleural Other"),
    ("cicatrix", "pleura", "", "Pleural Other"),
    ("pleura", "", "", "Pleural Other"),
    ("cicatrix", "", "pleura", "Lung Opacity"),
    ("markings", "interstitial", "", "Lung Opacity"),
    ("lung", "interstitial", "", "Lung Opacity"),
    ("thickening", "interstitial", "", "Lung Opacity"),
    ("opacity", "round", "", "Lung Lesion"),  # Open-I indexes a "nodular opacity/density" as Opacity|Density/round
    ("density", "round", "", "Lung Lesion"),
)
_NOT_LUNG = {"breast"}  # "Mass/breast/large" is not a Lung Lesion
_NORMAL_TERMS = (("No Finding",), ("Support Devices",))  # terms that leave No Finding at 1


def _split_term(term: str) -> tuple[str, list[str]]:
    """'Pulmonary Atelectasis/base/left' -> ('pulmonary atelectasis', ['base', 'left'])."""
    parts = [" ".join(p.split()).lower() for p in str(term).split("/")]
    return parts[0], [p for p in parts[1:] if p]


@functools.lru_cache(maxsize=4096)
def mesh_term_labels(term: str) -> tuple[str, ...]:
    """Observations one MeSH major term stands for (empty when it maps to none)."""
    head, quals = _split_term(term)
    found = MESH_HEADINGS.get(head, ())
    found = [found] if isinstance(found, str) else list(found)
    if head == "mass" and _NOT_LUNG & set(quals):
        found = []
    for heading, needed, banned, label in MESH_QUALIFIED:
        if head == heading and (not needed or needed in quals) and not (banned and banned in quals):
            found.append(label)
    return tuple(dict.fromkeys(found))


def mesh_to_labels(mesh_terms: Iterable[str]) -> np.ndarray:
    """(14,) float32: 1 where a mapped term is present, else 0; No Finding as above; unindexed -> all NaN."""
    terms = [t for t in mesh_terms if t and str(t).strip()]
    if not terms or any(_split_term(t)[0] == UNINDEXED for t in terms):
        return np.full(len(CHEXPERT_LABELS), np.nan, dtype=np.float32)
    out = np.zeros(len(CHEXPERT_LABELS), dtype=np.float32)
    mapped = [mesh_term_labels(str(term)) for term in terms]
    out[[_INDEX[label] for labels in mapped for label in labels]] = 1.0
    out[_INDEX["No Finding"]] = float(all(labels in _NORMAL_TERMS for labels in mapped))
    return out


def mesh_labels(mesh_major_lists: Iterable[Iterable[str]]) -> np.ndarray:
    """(N, 14) float32 label matrix, one `mesh_to_labels` row per report's MeSH major terms."""
    rows = [mesh_to_labels(terms) for terms in mesh_major_lists]
    return np.stack(rows) if rows else np.zeros((0, len(CHEXPERT_LABELS)), dtype=np.float32)
