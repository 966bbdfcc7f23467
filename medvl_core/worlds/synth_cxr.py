"""SynthCXR (`synth-cxr`): a deterministic synthetic chest X-ray world written in the MIMIC-CXR-JPG layout.

Every image is rendered (see `synth_cxr_render`) from the findings its report states, so methods have
real signal to learn and a known ground truth. One call writes, under `root`:

- `files/p1x/p{subject}/s{study}/{dicom_id}.jpg` and `files/p1x/p{subject}/s{study}.txt` (FINDINGS/IMPRESSION)
- `mimic-cxr-2.0.0-{metadata,chexpert,split}.csv` (read unchanged by the `mimic-cxr` loader)
- `chexpert-test/test_labels.csv` + `chexpert-test/test/patient*/study1/view1_frontal.jpg`: a held-out,
  CheXpert-style binary-labelled test set (no reports) for zero-shot evaluation (`chexpert` loader), and
  `chexpert-test/valid.csv` + `valid/...`: its validation set (CheXpert valid's 234 images by default), for
  model selection as the papers select on CheXpert valid
- `synth_truth.csv`: per image the rendered findings, severity, side, site, rare-stratum and noise flags
- `world.json`: format version and every generation parameter (written last; its presence = complete)

Reports come from the 3,955 real Open-I reports bundled in torchxrayvision (labelled by
`text.labeler`, severity/side parsed from the text) or are composed from templates over label
combinations sampled from the real CheXpert label table torchxrayvision ships. Knobs: `site_marker_strength`
(burned-in site markers correlated with `site_label`), `rare_stratum` + `rare_stratum_fraction` (which
rare stratum and how often: "drain" = Pneumothorax drawn treated, chest drain + small rim, the default;
"subpulmonic" = Pleural Effusion drawn subpulmonic, an elevated hemidiaphragm without a meniscus,
reported in its own words; `subpulmonic_raise` scales its raise), `rare_stratum_test_fraction` (its share in the held-out test set),
`label_noise` (flips stated 1/0 labels in the label CSV), size.

This module builds, reuses and opens the world; the knobs and the drawn plan are in `synth_cxr_plan`, the
report texts in `synth_cxr_reports`, the tables and report files in `synth_cxr_write`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import dataset_dir
from ..data.cxr import chexpert, mimic_cxr
from ..data.labels import CHEXPERT_LABELS
from ..errors import MedvlError
from . import common
from .synth_cxr_plan import (
    UNCERTAIN_DRAWN,
    WorldParams,
    add_noise,
    chexpert_test_plan,
    source_rows,
    study_plan,
    valid_rows,
)
from .synth_cxr_render import render_cxr
from .synth_cxr_scene import sample_nuisance
from .synth_cxr_write import CHEXPERT_TEST_DIR, mimic_paths, truth_frame, write_tables, write_test_table

FORMAT_VERSION = 3  # bump whenever generated files change, so stale worlds are not reused
TRUTH_FILE, WORLD_FILE = "synth_truth.csv", common.WORLD_FILE
TITLE = "SynthCXR"
SPLITS = (("train", 0.8), ("validate", 0.1), ("test", 0.1))  # the split CSV's values (the loader's 'val' is validate)


# ------------------------------------------------------------------ building

def _render_job(job: tuple) -> None:
    """Render and save one image (runs in a worker process)."""
    path, findings, view, site, habitus, seed, size, subpulmonic_raise = job
    from PIL import Image

    nuisance = sample_nuisance(np.random.default_rng([seed, 7]), view=view, site=site, habitus=habitus)
    pixels = render_cxr(findings, nuisance, seed, size, subpulmonic_raise=subpulmonic_raise)
    Image.fromarray(pixels, mode="L").save(path, format="JPEG", quality=95)


def _build(tmp: Path, p: WorldParams, workers: int) -> dict:
    """Write a whole world into the empty folder `tmp`; returns world.json's content."""
    rng = np.random.default_rng([p.seed, 3])
    sources, test_rows = source_rows(p, rng)
    studies = study_plan(p, sources, rng)
    tests = chexpert_test_plan(p, test_rows, rng)
    noisy, flipped = add_noise(np.stack(studies["stated"]), p.label_noise, rng)
    valids = chexpert_test_plan(p, valid_rows(p), np.random.default_rng([p.seed, 6]), split="valid")
    write_tables(tmp, studies, noisy, p.image_size)
    write_test_table(tmp, tests)
    write_test_table(tmp, valids, "valid.csv")
    truth_frame(studies, tests, flipped, valids).to_csv(tmp / TRUTH_FILE, index=False)
    jobs = [(str(tmp / mimic_paths(r.subject_id, r.study_id, r.dicom_id)[0]), r.findings, r.view, r.site, r.habitus,
             r.image_seed, p.image_size, p.subpulmonic_raise) for r in studies.itertuples()]
    jobs += [(str(tmp / CHEXPERT_TEST_DIR / r.path), r.findings, r.view, r.site, r.habitus, r.image_seed, p.image_size, p.subpulmonic_raise)
             for r in pd.concat([tests, valids]).itertuples()]
    for job in jobs:
        Path(job[0]).parent.mkdir(parents=True, exist_ok=True)
    common.run_jobs(_render_job, jobs, workers)
    counts = {"images": len(jobs), "studies": len(studies), "subjects": int(studies["subject_id"].nunique()),
              "chexpert_test_images": len(tests), "chexpert_valid_images": len(valids), **{f"split_{s}": int((studies["split"] == s).sum()) for s, _ in SPLITS}}
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
                       n_valid_images: int = 234, test_abnormal_fraction: float = -1.0,
                       extra_normal_sentences: float = 0.0, subpulmonic_raise: float = 1.0,
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
    1/0 labels in mimic-cxr-2.0.0-chexpert.csv; synth_truth.csv keeps the clean values); n_valid_images (the
    CheXpert-style valid set, drawn from its own random stream); test_abnormal_fraction (share of that valid
    and test set with a pathology; < 0 = as the CheXpert rows fall, about 0.87); extra_normal_sentences (mean,
    Poisson, of real Open-I normal sentences added to each Open-I report's Findings: longer reports with more
    repeated normal sentences, as MIMIC-CXR's, about seven sentences a report, against Open-I's 5.7); subpulmonic_raise (scale of the subpulmonic form's
    hemidiaphragm raise: 1 = 0.03 + 0.03 x severity, about atelectasis's; 0.5 stays within a normal hemidiaphragm's
    height range, the form missed on frontal films).
    `workers` (processes; default: CPU count, at most 4) does not change the files.
    The world is built in a temp folder beside `root` and renamed into place; an existing complete
    world is reused if its knobs match, else a MedvlError says to pass another root or delete it.
    """
    params = WorldParams(n_studies, n_test_images, image_size, seed, report_source, float(site_marker_strength),
                         site_label, n_sites, float(rare_stratum_fraction), float(label_noise), rare_stratum,
                         float(rare_stratum_test_fraction), n_valid_images, float(test_abnormal_fraction),
                         extra_normal_sentences=float(extra_normal_sentences),
                         subpulmonic_raise=float(subpulmonic_raise)).check()
    return _ensure(Path(root).expanduser(), params, _checked_knobs(params), workers)


LATER_KNOBS = {"extra_normal_sentences": 0.0, "subpulmonic_raise": 1.0}  # knobs newer than worlds on disk: checked only when set off default


def _checked_knobs(params: WorldParams) -> dict:
    """The knobs an existing world must match: all, except a later knob left at its default (older worlds lack it)."""
    return {k: v for k, v in asdict(params).items() if not (k in LATER_KNOBS and v == LATER_KNOBS[k])}


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
    split="test" (or "val") serves the CheXpert-style held-out test (or valid) set through the `chexpert` loader.
    """
    knobs = {k: options.pop(k) for k in list(options) if k in KNOBS}
    unknown = sorted(set(options) - set(LOADER_OPTIONS))
    if unknown:
        raise MedvlError(f"synth-cxr: unknown option(s) {unknown}; generator knobs: {list(KNOBS)}; "
                         f"loader options: {list(LOADER_OPTIONS)}")
    if test_set not in ("mimic", "chexpert"):
        raise MedvlError(f"synth-cxr: test_set={test_set!r}; use 'mimic' (the MIMIC-layout test split) or 'chexpert'")
    params = WorldParams(**knobs).check()
    _ensure(Path(root).expanduser(), params, {k: v for k, v in _checked_knobs(params).items() if k in knobs}, workers)
    if test_set == "chexpert" and split in ("val", "valid", "validate", "test"):  # no reports: text options do not apply
        kept = {k: v for k, v in options.items() if k in ("views", "uncertain", "images", "mode", "transform")}
        return chexpert(Path(root).expanduser() / CHEXPERT_TEST_DIR, "test" if split == "test" else "val", **kept)
    return mimic_cxr(Path(root).expanduser(), split, **options)
