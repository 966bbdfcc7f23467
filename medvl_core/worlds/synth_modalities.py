"""`synth-modalities`: eight deterministic synthetic datasets standing in for Takeda et al.'s eight, with confounders.

Each dataset (see `SYNTH_MODALITIES`) has the class count of the real set it stands for (HiCervix-like cytology:
29 classes under 4 level-1 groups, column `level1`; DeepDR-like fundus: 5 grades; ISIC2019-like dermoscopy: 9
categories), drawn with visual class structure (renderers in `synth_modalities_render`), and records per image the confounders the paper found: anatomical plane or slice
level, burned-in words, annotation marks (calipers, rulers), acquisition site/scanner/camera/lab, and the
patient or slide group (a per-group brightness or stain shift). For a class-correlated confounder, a share
`strength` of each class's images (or groups) takes the class's level and the rest are spread evenly over all
levels (knobs `confounder_strength`, per-confounder `strengths`): P(class's level) = s + (1 - s) / L, and for
balanced classes with as many levels as classes, Cramér's V = s. The default strength is 0: every confounder is
independent of the class, so a confounder that a probe reads off the features is a finding about the encoder,
not a re-measurement of the class. Independent confounders are spread evenly.

Layout under root (default `$MEDVL_DATA/synth-modalities`), read by the `image-folder` loader:
`<dataset>/<split>/<class>/<id>.png` (split train/val/test, patient- or slide-disjoint),
`<dataset>/metadata.csv` (id, split, class, path, group, confounder columns) and `world.json` (written last).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..data.folders import image_folder
from ..data.splits import SPLITS, canonical_split
from ..errors import DataFormatError, MedvlError
from .common import ensure_world, knob_folder, read_world
from .synth_modalities_draw import Scene
from .synth_modalities_microscopy import CYTOLOGY_CLASSES, CYTOLOGY_LEVEL1, HISTOLOGY_SUBTYPES
from .synth_modalities_photo import DERMOSCOPY_CLASSES, FUNDUS_CLASSES
from .synth_modalities_render import RENDERERS

FORMAT_VERSION = 3  # bump whenever generated files change (also when synth_cxr_render changes)
TITLE = "synth-modalities"
SPLIT_SHARE = 0.2  # share of each class's groups in val and in test (at least one group each)
METADATA_FILE = "metadata.csv"


@dataclass(frozen=True)
class Confounder:
    """A per-image nuisance: its levels; `by_class` = level index of each class when class-correlated."""

    name: str
    levels: tuple[str, ...]
    by_class: tuple[int, ...] | None = None  # None = independent of the class
    per_group: bool = False  # one value per patient/slide group (else per image)
    what: str = ""


@dataclass(frozen=True)
class Modality:
    """One synthetic dataset: what it draws, the real dataset it stands for, classes (sorted) and confounders."""

    name: str
    modality: str
    stands_for: str
    classes: tuple[str, ...]
    mode: str  # "L" or "RGB", as the files are stored
    group: str  # "patient" or "slide"
    confounders: tuple[Confounder, ...]
    card: str  # data card of the real dataset
    level1: dict | None = None  # fine class -> level-1 (parent) class, for hierarchical label sets
    subtypes: dict | None = None  # class -> its subtypes (column `subtype`, one per patient/slide group)

    def parent(self, cls: str) -> str:
        """The level-1 class of `cls` (the class itself when the label set is flat)."""
        return (self.level1 or {}).get(cls, cls)


def _alternate(classes, n_levels: int) -> tuple[int, ...]:
    """Level index of each class for a class-correlated confounder: classes cycle through the levels."""
    return tuple(i % n_levels for i in range(len(classes)))


SYNTH_MODALITIES: dict[str, Modality] = {m.name: m for m in (
    Modality("xray", "chest X-ray (SynthCXR renderer): pneumonia = lobar + patchy opacities", "PneumoniaMNIST",
             ("normal", "pneumonia"), "L", "patient", (
                 Confounder("view", ("PA", "AP"), (0, 1), what="projection: AP films have a magnified heart, "
                            "scapulae over the lungs, more tilt and noise"),
                 Confounder("site", ("site0", "site1"), per_group=True, what="burned-in site marker: boxed 'R' "
                            "top-left vs 'PORT' top-right"),
             ), "pneumoniamnist.md"),
    Modality("ct", "axial chest CT slice: COVID-19 = peripheral ground-glass opacities", "SARS-CoV-2 CT-scan dataset",
             ("covid", "non_covid"), "L", "patient", (
                 Confounder("slice_level", ("lower", "upper", "middle"), (0, 1), what="slice position: upper = small "
                            "lungs, middle = large lungs + heart, lower = liver dome + heart"),
                 Confounder("kernel", ("smooth", "sharp"), per_group=True, what="reconstruction kernel: noise texture"),
             ), "sars-cov-2-ct.md"),
    Modality("mr", "brain MR slice: tumour type by shape and site", "BrainMR (brain tumour MRI)",
             ("glioma", "meningioma", "no_tumor", "pituitary"), "L", "patient", (
                 Confounder("plane", ("axial", "coronal", "sagittal"), (0, 1, 0, 2), what="anatomical plane: head "
                            "outline, ventricles, brainstem/cerebellum"),
                 Confounder("weighting", ("T1", "T2"), what="sequence: CSF dark (T1) or bright (T2), scalp contrast"),
             ), "brain-mr.md"),
    Modality("ultrasound", "breast ultrasound: benign = oval, malignant = spiculated with shadowing", "BreastUS (BUSI)",
             ("benign", "malignant", "normal"), "L", "patient", (
                 Confounder("word", ("BREAST", "AXILLA", "none"), (0, 1, 2), what="burned-in body-marker word, "
                            "top-left"),
                 Confounder("calipers", ("yes", "no"), (0, 0, 1), what="annotation: two '+' calipers and a dotted "
                            "line across the lesion (or a random span)"),
             ), "breast-us.md"),
    Modality("histology", "H&E tissue: malignant = crowded, enlarged, pleomorphic nuclei", "BreakHis",
             ("benign", "malignant"), "RGB", "slide", (
                 Confounder("lab", ("A", "B"), (0, 1), per_group=True, what="staining protocol: A purple "
                            "(haematoxylin-heavy), B pink (eosin-heavy)"),
                 Confounder("magnification", ("40X", "100X", "200X", "400X"), what="objective: nucleus size and "
                            "count per field"),
             ), "breakhis.md", subtypes=HISTOLOGY_SUBTYPES),
    Modality("cytology", "Pap smear cells: 29 HiCervix-like classes under 4 level-1 groups (negative, ASC, AGC, "
             "microbe): N:C ratio, halo, crowding, glandular shape, organisms", "HiCervix", CYTOLOGY_CLASSES, "RGB",
             "slide", (
                 Confounder("scanner", ("A", "B"), _alternate(CYTOLOGY_CLASSES, 2), per_group=True,
                            what="slide scanner: B softer and warmer (yellow) white balance"),
                 Confounder("inflammation", ("no", "yes"), what="scattered small inflammatory cells"),
             ), "hicervix.md", CYTOLOGY_LEVEL1),
    Modality("fundus", "colour fundus, DR grades 0-4: microaneurysms, haemorrhages, exudates, new vessels",
             "DeepDR (DeepDRiD)", FUNDUS_CLASSES, "RGB", "patient", (
                 Confounder("camera", ("A", "B"), _alternate(FUNDUS_CLASSES, 2), per_group=True, what="fundus camera: "
                            "B has a blue-green cast and a wider field clipped top/bottom with a notch"),
                 Confounder("eye", ("left", "right"), what="laterality: optic disc on the image left or right"),
             ), "deepdr.md"),
    Modality("dermoscopy", "dermoscopic lesion, ISIC 2019's 9 categories: size, border, colour, vessels, blotches",
             "ISIC2019", DERMOSCOPY_CLASSES, "RGB", "patient", (
                 Confounder("ruler", ("no", "yes"), _alternate(DERMOSCOPY_CLASSES, 2), what="annotation: a millimetre "
                            "ruler along the bottom or left edge"),
                 Confounder("vignette", ("no", "yes"), what="dark dermatoscope corners (circular field)"),
             ), "isic2019.md"),
)}
NAMES = tuple(SYNTH_MODALITIES)


@dataclass(frozen=True)
class ModalityParams:
    """Generation knobs (all recorded in world.json; a world is reused only with the same knobs)."""

    seed: int = 0
    n_images: int = 160  # per dataset (at least min_per_class per class), classes balanced
    min_per_class: int = 12  # images per class at least (HiCervix's 29 classes need more than n_images)
    image_size: int = 64  # pixels (square)
    confounder_strength: float = 0.0  # default association with the class (0: independent) of every class-correlated confounder
    strengths: dict = field(default_factory=dict)  # "dataset.confounder" -> strength, overriding the default
    group_size: int = 8  # images per patient/slide group (about)

    def check(self) -> ModalityParams:
        """Validate ranges and confounder names; returns self."""
        _require(12 <= self.n_images <= 100_000, f"n_images={self.n_images} must be in 12..100000")
        _require(1 <= self.min_per_class <= 10_000, f"min_per_class={self.min_per_class} must be in 1..10000")
        _require(32 <= self.image_size <= 512, f"image_size={self.image_size} must be in 32..512")
        _require(self.group_size >= 1, f"group_size={self.group_size} must be >= 1")
        correlated = {f"{m.name}.{c.name}" for m in SYNTH_MODALITIES.values() for c in m.confounders if c.by_class}
        for key, value in {"confounder_strength": self.confounder_strength, **self.strengths}.items():
            _require(key == "confounder_strength" or key in correlated,
                     f"strengths key {key!r} is not a class-correlated confounder; use one of {sorted(correlated)}")
            _require(0.0 <= value <= 1.0, f"{key}={value} must be in [0, 1]")
        return self

    def strength(self, dataset: str, confounder: str) -> float:
        """Strength of one class-correlated confounder."""
        return float(self.strengths.get(f"{dataset}.{confounder}", self.confounder_strength))

    def size(self, dataset: str) -> int:
        """Images in one dataset: n_images, raised to min_per_class per class."""
        return max(self.n_images, self.min_per_class * len(SYNTH_MODALITIES[dataset].classes))


def _require(ok: bool, message: str) -> None:
    """Raise a MedvlError naming the bad knob unless `ok`."""
    if not ok:
        raise MedvlError(f"{TITLE}: {message}")


# ------------------------------------------------------------------ planning

def plan_dataset(name: str, params: ModalityParams | None = None) -> pd.DataFrame:
    """Per-image plan of one dataset: id, split, class, path, group, confounders (+ class_index, seed, tone)."""
    spec, p = SYNTH_MODALITIES[name], (params or ModalityParams()).check()
    rng = np.random.default_rng([p.seed, NAMES.index(name)])
    n = p.size(name)
    cls = np.sort(np.arange(n) % len(spec.classes))
    group, split = _groups(cls, p.group_size, rng)
    order = rng.permutation(n)  # ids carry no class order
    cls, group, split = cls[order], group[order], split[order]
    ids = [f"{name}-{i:04d}" for i in range(n)]
    frame = pd.DataFrame({"id": ids, "split": split, "class": np.asarray(spec.classes)[cls]})
    if spec.level1:
        frame["level1"] = [spec.parent(c) for c in frame["class"]]
    frame["path"] = [f"{s}/{c}/{i}.png" for s, c, i in zip(frame["split"], frame["class"], ids)]
    frame[spec.group] = [f"{spec.group[0].upper()}{g:03d}" for g in group]
    if spec.subtypes:
        frame["subtype"] = _subtypes(spec, cls, group, np.random.default_rng([p.seed, NAMES.index(name), 7]))
    for conf in spec.confounders:
        frame[conf.name] = _draw(conf, cls, group, p.strength(name, conf.name) if conf.by_class else 0.0, rng)
    tone = rng.standard_normal((group.max() + 1, 3))[group]
    frame["class_index"], frame["seed"] = cls, rng.integers(0, 2**31 - 1, n)
    frame["tone"] = [tuple(float(v) for v in t) for t in tone]
    return frame


def _subtypes(spec: Modality, cls: np.ndarray, group: np.ndarray, rng) -> np.ndarray:
    """One subtype per patient/slide group, cycling through its class's subtypes in a random order (balanced)."""
    names = np.empty(group.max() + 1, object)
    for c in np.unique(cls):
        groups = rng.permutation(np.unique(group[cls == c]))
        options = spec.subtypes[spec.classes[c]]
        names[groups] = np.asarray(options, object)[(np.arange(len(groups)) + rng.integers(len(options))) % len(options)]
    return names[group]


def _groups(cls: np.ndarray, group_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Patient/slide groups nested in classes (class-sorted `cls`), and a group-disjoint split per image."""
    group, split, offset = np.zeros(len(cls), int), np.empty(len(cls), object), 0
    for c in np.unique(cls):
        rows = np.flatnonzero(cls == c)
        g = int(min(len(rows), max(3, round(len(rows) / group_size))))
        local = np.arange(len(rows)) * g // len(rows)
        n_held = max(1, round(SPLIT_SHARE * g))
        names = np.array(["test"] * n_held + ["val"] * n_held + ["train"] * (g - 2 * n_held), object)
        group[rows], split[rows] = offset + local, names[rng.permutation(g)][local]
        offset += g
    return group, split


def _draw(conf: Confounder, cls: np.ndarray, group: np.ndarray, strength: float, rng) -> np.ndarray:
    """Confounder levels per image: in each class, round(strength x units) units take the class's level and the
    rest are spread evenly over all levels (units = images, or groups when `per_group`)."""
    unit = group if conf.per_group else np.arange(len(cls))
    unit_class = np.zeros(unit.max() + 1, int)
    unit_class[unit] = cls
    draws, n_levels = np.zeros(len(unit_class), int), len(conf.levels)
    for c in np.unique(unit_class):
        units = rng.permutation(np.flatnonzero(unit_class == c))
        follow = int(round(strength * len(units))) if conf.by_class is not None else 0
        draws[units[:follow]] = conf.by_class[c] if follow else 0
        rest = len(units) - follow
        draws[units[follow:]] = (np.arange(rest) + rng.integers(n_levels)) % n_levels
    return np.asarray(conf.levels, dtype=object)[draws[unit]]


# ------------------------------------------------------------------ generation

def _build(tmp: Path, p: ModalityParams) -> dict:
    """Render every dataset into `tmp`; return the world description (world.json)."""
    datasets = {}
    for name, spec in SYNTH_MODALITIES.items():
        frame = plan_dataset(name, p)
        for row in frame.to_dict("records"):
            conf = {c.name: row[c.name] for c in spec.confounders} | ({"subtype": row["subtype"]} if spec.subtypes else {})
            pixels = RENDERERS[name](Scene(row["class"], conf, row["tone"], int(row["seed"]), p.image_size))
            path = tmp / name / row["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, format="PNG")
        frame[metadata_columns(name)].to_csv(tmp / name / METADATA_FILE, index=False)
        datasets[name] = _describe(spec, frame, p)
    return {"name": TITLE, "generator": __name__, "params": asdict(p), "datasets": datasets}


def _describe(spec: Modality, frame: pd.DataFrame, p: ModalityParams) -> dict:
    """world.json entry of one dataset: what it stands for, classes, confounders and counts."""
    confounders = {c.name: {"levels": list(c.levels), "what": c.what, "per_group": c.per_group,
                            "by_class": dict(zip(spec.classes, (c.levels[i] for i in c.by_class))) if c.by_class else None,
                            "strength": p.strength(spec.name, c.name) if c.by_class else None}
                   for c in spec.confounders}
    return {"modality": spec.modality, "stands_for": spec.stands_for, "classes": list(spec.classes), "mode": spec.mode,
            "group": spec.group, "level1": spec.level1, "subtypes": spec.subtypes, "confounders": confounders, "n_groups": int(frame[spec.group].nunique()),
            "counts": {s: int((frame["split"] == s).sum()) for s in SPLITS}}


def metadata_columns(name: str) -> list[str]:
    """Columns of `<dataset>/metadata.csv`."""
    spec = SYNTH_MODALITIES[name]
    level1 = ["level1"] if spec.level1 else []
    subtype = ["subtype"] if spec.subtypes else []
    return ["id", "split", "class", *level1, *subtype, "path", spec.group, *(c.name for c in spec.confounders)]


def generate_synth_modalities(root=None, **knobs) -> Path:
    """Generate (or reuse) the eight datasets at `root` (default: the data root's synth-modalities); returns root.

    Knobs (see `ModalityParams`): seed, n_images (per dataset), image_size, confounder_strength, strengths
    ({"mr.plane": 0.9, ...}), group_size. An existing world is reused if the knobs given match it.
    """
    unknown = sorted(set(knobs) - set(ModalityParams.__dataclass_fields__))
    _require(not unknown, f"unknown knob(s) {unknown}; knobs: {list(ModalityParams.__dataclass_fields__)}")
    knobs = {k: ({str(a): float(b) for a, b in v.items()} if k == "strengths" else v) for k, v in knobs.items()}
    params = ModalityParams(**knobs).check()
    wanted = {k: asdict(params)[k] for k in knobs}
    defaults = asdict(ModalityParams())
    # under the data root, other knobs than the defaults get a folder of their own beside the default world
    cache = knob_folder(TITLE, {k: v for k, v in wanted.items() if v != defaults[k]})
    root = Path(root).expanduser() if root is not None else cache
    return ensure_world(root, lambda tmp: _build(tmp, params), wanted, TITLE, FORMAT_VERSION, cache)


def read_metadata(root, dataset: str) -> pd.DataFrame:
    """`<dataset>/metadata.csv` of the world at `root` (all columns as strings)."""
    path = Path(root) / _check_name(dataset) / METADATA_FILE
    if not path.is_file():
        raise DataFormatError(f"no {METADATA_FILE} at {path}; generate the world first (generate_synth_modalities)")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _check_name(dataset: str) -> str:
    """`dataset` if it is one of the eight, else a MedvlError with a suggestion."""
    if dataset not in SYNTH_MODALITIES:
        close = difflib.get_close_matches(str(dataset), NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MedvlError(f"{TITLE}: unknown dataset {dataset!r}{hint}; choose one of: {', '.join(NAMES)}")
    return dataset


# ------------------------------------------------------------------ loader

def synth_modalities(root: Path, split: str = "train", dataset: str = "xray", mode: str | None = None,
                     transform=None, **knobs):
    """The `image-folder` dataset of one synthetic modality (split train/val/test or 'all'), generated if absent.

    Items: id, image (PIL, `mode` default L or RGB as stored), class_index, class_name, path, split, the group
    (patient/slide) and each confounder; `dataset.confounders` lists those keys. `knobs` go to the generator.
    """
    spec = SYNTH_MODALITIES[_check_name(dataset)]
    split = canonical_split(split, (*SPLITS, "all"), TITLE)
    at_default_place = Path(root).expanduser() == knob_folder(TITLE, {})  # the registry's default: knobs pick the folder
    root = generate_synth_modalities(None if at_default_place else root, **knobs)
    splits = SPLITS if split == "all" else (split,)
    parts = [image_folder(root / dataset, s, mode=mode or spec.mode, transform=transform) for s in splits]
    if any(part.classes != list(spec.classes) for part in parts):
        raise DataFormatError(f"{root / dataset} has class folders {[p.classes for p in parts]}, expected "
                              f"{list(spec.classes)} in every split; delete the folder to regenerate it")
    data = parts[0]
    data.records = _join(root, dataset, [r for part in parts for r in part.records])
    data.name, data.dataset, data.modality = TITLE, dataset, spec
    data.confounders = [spec.group, *(c.name for c in spec.confounders)]
    return data


def _join(root: Path, dataset: str, records: list[dict]) -> list[dict]:
    """Give each image-folder record its metadata id, split, group and confounder values."""
    meta = read_metadata(root, dataset).set_index("id")
    keys = [c for c in meta.columns if c not in ("class", "path")]
    missing = [r["path"] for r in records if Path(r["path"]).stem not in meta.index]
    if missing:
        raise DataFormatError(f"{root / dataset / METADATA_FILE} has no row for {missing[0]}; delete the folder to regenerate it")
    rows = meta.loc[[Path(r["path"]).stem for r in records], keys].to_dict("records")
    return [{**r, "id": Path(r["path"]).stem, **row} for r, row in zip(records, rows)]


__all__ = ["SYNTH_MODALITIES", "ModalityParams", "generate_synth_modalities", "plan_dataset", "read_metadata",
           "read_world", "synth_modalities"]
