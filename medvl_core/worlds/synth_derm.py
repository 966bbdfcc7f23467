"""SynthDerm (`synth-derm`): a deterministic synthetic dermatology VQA world in the MEDIQA-M3G 2024 layout.

One call writes, under `root` (read unchanged by the `dermavqa` loader):

- `train.json`, `valid_ht.json`, `test_ht.json`: encounters (lay English query, image ids, responses;
  valid/test responses carry `completeness` and `contains_freq_ans`); zh/es fields are empty strings
- `images_{train,valid,test}/IMG_{encounter_id}_{n:05d}.jpg`: 1-3 RGB photos per encounter
- `df_userinfo.csv`: author_id, validation_level, rank_level of every asker and responder
- `truth.csv`: per encounter the true condition, site, skin tone, self-diagnosis and answer statistics
- `world.json`: format version, knobs and counts (written last; its presence = complete)

Each case shows one of 30 conditions (`synth_derm_conditions`) drawn by `synth_derm_render`; responders
name the true condition with a probability that grows with their validation and rank levels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import dataset_dir
from ..data.dermavqa import dermavqa
from ..errors import MedvlError
from ..io import atomic_write_text
from .common import default_workers, ensure_world, run_jobs
from .synth_derm_conditions import CONDITIONS, Condition
from .synth_derm_render import SKIN_TONES, render_derm, sample_nuisance
from .synth_derm_text import (
    DEFAULT_RESPONSE_MIX,
    annotate,
    compose_query,
    compose_response,
    draw_context,
    responder_accuracy,
)

FORMAT_VERSION = 2  # 2: DermaVQA-like response mix (mix_* knobs), lower-case starts, 3-11 responses
NAME = "synth-derm"
SPLIT_FILES = {"train": "train.json", "valid": "valid_ht.json", "test": "test_ht.json"}  # official names (the loader's 'val')
TRUTH_FILE, USERINFO_FILE = "truth.csv", "df_userinfo.csv"
TONE_P = (0.12, 0.25, 0.28, 0.18, 0.11, 0.06)
IMAGES_P = (0.35, 0.4, 0.25)
VALIDATION_LEVELS = (("", 0.45), ("md_validated", 0.2), ("md1_validated", 0.12), ("realid_validated", 0.1),
                     ("md2_validated", 0.08), ("md3_validated", 0.03), ("md4_validated", 0.02))
RANK_LEVELS = (("level_0", 0.3), ("level_1", 0.18), ("level_2", 0.1), ("level_3", 0.14), ("level_4", 0.12),
               ("level_5", 0.06), ("level_6", 0.05), ("level_7", 0.02), ("level_8", 0.01), ("unk", 0.02))


@dataclass(frozen=True)
class WorldParams:
    """Generation knobs (all recorded in world.json; a world is reused only with the same knobs)."""

    n_train: int = 300  # encounters per split
    n_valid: int = 60
    n_test: int = 100
    image_size: int = 128  # pixels (square RGB)
    seed: int = 0
    n_conditions: int = 30  # the first N of the 30 conditions
    max_images: int = 3  # images per encounter: 1..max_images
    imbalance: float = 0.5  # Zipf exponent of condition frequencies (0 = uniform)
    p_self_diagnosis: float = 0.35  # probability that the asker names a condition
    p_wrong_self_diagnosis: float = 0.6  # ... and that the named condition is wrong (a confuser)
    p_vague_query: float = 0.4  # probability that the query does not describe the lesions ("a rash")
    responder_accuracy: float = 0.9  # scales every responder's probability of naming the true condition
    min_responses: int = 3  # responses per encounter (train); valid/test get 2 more at both ends (DermaVQA: 7.0 per
    max_responses: int = 11  # train case, 9.3 per test case: 5,871 / 842 and 926 / 100 responses)
    mix_bare: float = DEFAULT_RESPONSE_MIX[0]  # share of bare condition names ("eczema."; synth_derm_text has the sources)
    mix_short: float = DEFAULT_RESPONSE_MIX[1]  # short sentences naming one condition ("Looks like X.")
    mix_discussion: float = DEFAULT_RESPONSE_MIX[2]  # longer discussions: name, advice and a general sentence
    mix_differential: float = DEFAULT_RESPONSE_MIX[3]  # "X or Y."
    mix_negation: float = DEFAULT_RESPONSE_MIX[4]  # "not [condition]" answers (the self-diagnosis or a look-alike)
    mix_no_diagnosis: float = DEFAULT_RESPONSE_MIX[5]  # advice or a general remark without a diagnosis
    p_lowercase: float = 0.3  # answers starting in lower case (DermaVQA test: 29.5 %; the scorer lowercases only answers)
    p_variant: float = 0.3  # a named condition qualified ("chronic X", "X with infection"; ours: DermaVQA's answers name
    # subtypes and stages, e.g. "Psoriasis Vulgaris", "asteatotic eczema"; 270 label phrases recur in its training answers)
    n_responders: int = 300  # size of the responder pool
    nuisance: float = 1.0  # strength of lighting / blur / rotation / zoom / noise (0 = none)

    def check(self) -> WorldParams:
        """Validate ranges; returns self."""
        _require(min(self.n_train, self.n_valid, self.n_test) >= 0 and self.n_train + self.n_valid + self.n_test >= 1,
                 "n_train/n_valid/n_test must be >= 0 with at least one encounter")
        _require(32 <= self.image_size <= 1024, f"image_size={self.image_size} must be in 32..1024")
        _require(2 <= self.n_conditions <= len(CONDITIONS), f"n_conditions={self.n_conditions} must be in 2..{len(CONDITIONS)}")
        _require(1 <= self.max_images <= 3, f"max_images={self.max_images} must be 1, 2 or 3")
        _require(1 <= self.min_responses <= self.max_responses <= 30, "need 1 <= min_responses <= max_responses <= 30")
        _require(self.n_responders >= self.max_responses + 2, "n_responders must be >= max_responses + 2")
        _require(min(self.response_mix()) >= 0 and sum(self.response_mix()) > 0,
                 "the mix_* shares must be >= 0 with a positive sum")
        for name in ("p_self_diagnosis", "p_wrong_self_diagnosis", "p_vague_query", "responder_accuracy", "nuisance",
                     "p_lowercase", "p_variant"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{name}={getattr(self, name)} must be in [0, 1]")
        _require(0.0 <= self.imbalance <= 3.0, f"imbalance={self.imbalance} must be in [0, 3]")
        return self

    def response_mix(self) -> tuple[float, ...]:
        """The shares of synth_derm_text.RESPONSE_KINDS."""
        return (self.mix_bare, self.mix_short, self.mix_discussion, self.mix_differential, self.mix_negation,
                self.mix_no_diagnosis)


def _require(ok: bool, message: str) -> None:
    """Raise a MedvlError naming the bad knob unless `ok`."""
    if not ok:
        raise MedvlError(f"synth-derm: {message}")


# ------------------------------------------------------------------ authors

def _authors(p: WorldParams, n_askers: int, rng: np.random.Generator) -> pd.DataFrame:
    """The userinfo table: responders U00000.. (varied levels), then askers (mostly unvalidated, low rank)."""
    def draw(table, n):
        names, probs = zip(*table)
        return rng.choice(names, size=n, p=np.asarray(probs) / sum(probs))

    asker_levels = (("", 0.85), ("realid_validated", 0.15))
    asker_ranks = (("level_0", 0.7), ("level_1", 0.2), ("unk", 0.1))
    n = p.n_responders + n_askers
    return pd.DataFrame({
        "author_id": [f"U{i:05d}" for i in range(n)],
        "validation_level": np.concatenate([draw(VALIDATION_LEVELS, p.n_responders), draw(asker_levels, n_askers)]),
        "rank_level": np.concatenate([draw(RANK_LEVELS, p.n_responders), draw(asker_ranks, n_askers)]),
    })


# ------------------------------------------------------------------ planning

def _conditions(p: WorldParams, rng: np.random.Generator) -> np.ndarray:
    """Condition index per encounter (Zipf-weighted; train starts with one of each so every condition is seen)."""
    k, n = p.n_conditions, p.n_train + p.n_valid + p.n_test
    weights = 1.0 / np.arange(1, k + 1) ** p.imbalance
    drawn = rng.choice(rng.permutation(k), size=n, p=weights / weights.sum())
    first = min(k, p.n_train)
    drawn[:first] = rng.permutation(k)[:first]
    return drawn


def _split_names(p: WorldParams) -> list[str]:
    """Split of each encounter, in encounter-id order."""
    return ["train"] * p.n_train + ["valid"] * p.n_valid + ["test"] * p.n_test


def _encounter(index: int, split: str, cond: Condition, users: pd.DataFrame, p: WorldParams) -> dict:
    """One encounter: JSON object, truth row and image jobs."""
    rng = np.random.default_rng([p.seed, 17, index])
    eid = f"ENC{index + 1:05d}"
    ctx = draw_context(cond, rng, p.p_self_diagnosis, p.p_wrong_self_diagnosis, p.p_vague_query)
    title, content = compose_query(cond, ctx, rng)
    tone = int(rng.choice(len(SKIN_TONES), p=TONE_P))
    n_images = int(rng.choice(np.arange(1, p.max_images + 1), p=_normalised(IMAGES_P[: p.max_images])))
    image_ids = [f"IMG_{eid}_{k + 1:05d}.jpg" for k in range(n_images)]
    jobs = [(f"images_{split}/{image_id}", CONDITIONS.index(cond), ctx.site, tone,
             sample_nuisance(np.random.default_rng([p.seed, 19, index, k]), p.nuisance, closeup=k > 0),
             [p.seed, 23, index, k], p.image_size) for k, image_id in enumerate(image_ids)]
    responses, stats = _responses(cond, ctx, split, users, p, rng)
    enc = {"encounter_id": eid, "author_id": users["author_id"].iloc[p.n_responders + index], "image_ids": image_ids,
           "query_title_zh": "", "query_content_zh": "", "query_title_en": title, "query_content_en": content,
           "query_title_es": "", "query_content_es": "", "responses": responses}
    truth = {"encounter_id": eid, "split": split, "condition": cond.name, "site": ctx.site, "skin_tone": tone,
             "n_images": n_images, "age": ctx.age, "duration_days": ctx.days, "itch": int(ctx.itch),
             "asks_treatment": int(ctx.asks_treatment), "vague_query": int(ctx.vague), "self_diagnosis": ctx.self_dx,
             "self_diagnosis_correct": "" if not ctx.self_dx else int(ctx.self_dx == cond.name), **stats}
    return {"encounter": enc, "truth": truth, "jobs": jobs}


def _normalised(probs) -> np.ndarray:
    """Probabilities rescaled to sum to 1."""
    probs = np.asarray(probs, dtype=float)
    return probs / probs.sum()


def _responses(cond: Condition, ctx, split: str, users: pd.DataFrame, p: WorldParams, rng) -> tuple[list[dict], dict]:
    """The case's responses (annotated in valid/test) and their statistics for truth.csv."""
    extra = 0 if split == "train" else 2
    count = int(rng.integers(p.min_responses + extra, p.max_responses + extra + 1))
    who = rng.choice(p.n_responders, size=min(count, p.n_responders), replace=False)
    drafts = []
    for author in who:
        level, rank = users["validation_level"].iloc[author], users["rank_level"].iloc[author]
        right = bool(rng.random() < responder_accuracy(level, rank, p.responder_accuracy))
        drafts.append(compose_response(cond, ctx, right, rng, p.response_mix(), p.p_lowercase, p.p_variant))
    kinds, texts, mentions = (list(column) for column in zip(*drafts))
    completeness, freq, frequent = annotate(kinds, mentions, ctx.asks_treatment)
    out = []
    for k, author in enumerate(who):
        resp = {"author_id": users["author_id"].iloc[author], "content_zh": "", "content_en": texts[k], "content_es": ""}
        if split != "train":
            resp.update(completeness=completeness[k], contains_freq_ans=freq[k])
        out.append(resp)
    naming = sum(cond.name in names for names in mentions)
    stats = {"n_responses": len(out), "n_responses_naming_truth": int(naming), "frequent_answer": frequent}
    return out, stats


# ------------------------------------------------------------------ writing

def _render_job(job: tuple) -> None:
    """Render and save one image (runs in a worker process)."""
    from PIL import Image

    path, cond_index, site, tone, nuisance, seed, size = job
    pixels = render_derm(CONDITIONS[cond_index], site, tone, nuisance, seed, size)
    Image.fromarray(pixels, mode="RGB").save(path, format="JPEG", quality=92)


def _write_json(path: Path, obj) -> None:
    """JSON as the official files are written: keys in insertion order, UTF-8, indented."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _build(tmp: Path, p: WorldParams, workers: int) -> dict:
    """Write a whole world into the empty folder `tmp`; returns world.json's content."""
    rng = np.random.default_rng([p.seed, 13])
    splits = _split_names(p)
    users = _authors(p, len(splits), rng)
    conds = _conditions(p, rng)
    cases = [_encounter(i, s, CONDITIONS[c], users, p) for i, (s, c) in enumerate(zip(splits, conds))]
    for split, name in SPLIT_FILES.items():
        (tmp / f"images_{split}").mkdir()
        _write_json(tmp / name, [c["encounter"] for c in cases if c["truth"]["split"] == split])
    users.to_csv(tmp / USERINFO_FILE, index=False)
    pd.DataFrame([c["truth"] for c in cases]).to_csv(tmp / TRUTH_FILE, index=False)
    jobs = [(str(tmp / job[0]), *job[1:]) for c in cases for job in c["jobs"]]
    run_jobs(_render_job, jobs, workers)
    counts = {"encounters": len(cases), "images": len(jobs), "authors": len(users),
              "responses": sum(len(c["encounter"]["responses"]) for c in cases),
              **{f"split_{s}": splits.count(s) for s in SPLIT_FILES}}
    return {"name": NAME, "generator": __name__, "params": asdict(p), "counts": counts, "files": SPLIT_FILES,
            "conditions": [{"name": c.name, "aliases": list(c.aliases)} for c in CONDITIONS[: p.n_conditions]],
            "languages": {"en": "generated", "zh": "empty strings (not translated)", "es": "empty strings (not translated)"}}


# ------------------------------------------------------------------ public API

def generate_synth_derm(root, workers: int | None = None, **knobs) -> Path:
    """Generate (or reuse) the SynthDerm world at `root` with `knobs` (see WorldParams); returns `root`.

    The world is built in a temp folder beside `root` and renamed into place; an existing complete world
    is reused if its knobs match, else a MedvlError says to pass another root or delete it. `workers`
    (processes; default: CPU count, at most 4) does not change the files.
    """
    _check_knobs(knobs)
    params = WorldParams(**knobs).check()
    return _ensure(Path(root).expanduser(), params, asdict(params), workers)


def _check_knobs(knobs: dict) -> None:
    """Raise for names that are not WorldParams knobs."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise MedvlError(f"synth-derm: unknown knob(s) {unknown}; knobs: {list(KNOBS)}")


def _ensure(root: Path, params: WorldParams, wanted: dict, workers: int | None) -> Path:
    """Reuse or atomically build the world at `root`."""
    return ensure_world(root, lambda tmp: _build(tmp, params, workers or default_workers()), wanted, "SynthDerm",
                        FORMAT_VERSION, cache_root=dataset_dir(NAME))


def read_truth(root) -> pd.DataFrame:
    """The ground-truth table (truth.csv) of the SynthDerm world at `root`."""
    path = Path(root) / TRUTH_FILE
    if not path.is_file():
        raise MedvlError(f"no SynthDerm truth table at {path}; generate the world first (generate_synth_derm)")
    return pd.read_csv(path, keep_default_na=False)


KNOBS = tuple(WorldParams.__dataclass_fields__)
LOADER_OPTIONS = ("lang", "images", "userinfo", "mode", "transform")


def synth_derm(root: Path, split: str = "train", workers: int | None = None, **options):
    """The `dermavqa` dataset over a SynthDerm world at `root`, generating it first if absent.

    Generator knobs among `options` (see WorldParams) are used when generating and checked against an
    existing world (knobs left out are taken from it); the rest go to the loader (`lang`, `images`,
    `userinfo`, `mode`, `transform`).
    """
    knobs = {k: options.pop(k) for k in list(options) if k in KNOBS}
    unknown = sorted(set(options) - set(LOADER_OPTIONS))
    if unknown:
        raise MedvlError(f"synth-derm: unknown option(s) {unknown}; generator knobs: {list(KNOBS)}; "
                         f"loader options: {list(LOADER_OPTIONS)}")
    params = WorldParams(**knobs).check()
    root = _ensure(Path(root).expanduser(), params, {k: asdict(params)[k] for k in knobs}, workers)
    return dermavqa(root, split, **options)
