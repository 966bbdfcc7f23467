"""SynthDerm: determinism, MEDIQA-M3G format read back by the dermavqa loader, distinct conditions, references."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from medvl_core.data import open_dataset
from medvl_core.data.dermavqa import read_submission, write_submission
from medvl_core.errors import MedvlError
from medvl_core.worlds import synth_derm as S
from medvl_core.worlds.synth_derm_conditions import BY_NAME, CONDITIONS, label_dictionary
from medvl_core.worlds.synth_derm_render import Nuisance, render_derm, sample_nuisance

TINY = {"n_train": 8, "n_valid": 3, "n_test": 3, "image_size": 48, "n_responders": 20}


def _hashes(root):
    """sha256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small world (120 encounters) shared by the read-back tests."""
    return S.generate_synth_derm(tmp_path_factory.mktemp("derm") / "w", n_train=80, n_valid=20, n_test=20,
                                 image_size=64, workers=1)


def test_same_seed_gives_byte_identical_files(tmp_path):
    knobs = {**TINY, "n_train": 36, "image_size": 32}  # >= 64 images, so workers=2 really uses a process pool
    a = S.generate_synth_derm(tmp_path / "a", workers=1, **knobs)
    b = S.generate_synth_derm(tmp_path / "b", workers=2, **knobs)
    ha = _hashes(a)
    assert ha == _hashes(b)
    assert sum(1 for k in ha if k.startswith("images_")) >= 64
    assert {"train.json", "valid_ht.json", "test_ht.json", "df_userinfo.csv", "truth.csv", "world.json"} <= set(ha)
    assert _hashes(S.generate_synth_derm(tmp_path / "c", workers=1, **{**knobs, "seed": 1})) != ha


def test_world_is_read_by_the_dermavqa_loader(world):
    sizes = {s: len(open_dataset("dermavqa", world, split=s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 80, "val": 20, "test": 20}
    item = open_dataset("dermavqa", world, split="test")[0]
    assert 1 <= len(item["image"]) <= 3 and item["image"][0].size == (64, 64) and item["image"][0].mode == "RGB"
    assert item["text"] and all(isinstance(r, str) and r for r in item["references"])
    assert all(0.6 <= w <= 1.0 for w in item["reference_weights"])
    same = open_dataset("synth-derm", world, split="test", images=False)[0]
    assert same["references"] == item["references"] and "image" not in same


def test_official_fields_and_annotations(world):
    users = pd.read_csv(world / "df_userinfo.csv", dtype=str, keep_default_na=False)
    assert list(users.columns) == ["author_id", "validation_level", "rank_level"]
    assert set(users["rank_level"]) <= {f"level_{i}" for i in range(9)} | {"unk"}
    assert {"md_validated", "realid_validated", ""} <= set(users["validation_level"])
    known = set(users["author_id"])
    for name, annotated in (("train.json", False), ("valid_ht.json", True), ("test_ht.json", True)):
        for enc in json.loads((world / name).read_text(encoding="utf-8")):
            assert enc["encounter_id"].startswith("ENC") and enc["author_id"] in known
            assert enc["query_title_zh"] == enc["query_content_es"] == ""  # zh/es are not translated
            assert all(i.startswith(f"IMG_{enc['encounter_id']}_") for i in enc["image_ids"])
            for resp in enc["responses"]:
                assert resp["author_id"] in known and resp["content_en"] and resp["content_zh"] == ""
                assert ("completeness" in resp) == annotated and ("contains_freq_ans" in resp) == annotated
                if annotated:
                    assert resp["completeness"] in (0.0, 0.5, 1.0) and resp["contains_freq_ans"] in (0.0, 1.0)
            if annotated:
                assert any(r["contains_freq_ans"] == 1.0 for r in enc["responses"]) or not any(
                    r["completeness"] > 0 for r in enc["responses"])


def test_references_mention_the_true_condition(world):
    truth = S.read_truth(world).set_index("encounter_id")
    names = label_dictionary()
    hits = []
    for split in ("train", "val", "test"):
        for rec in open_dataset("dermavqa", world, split=split, images=False).records:
            said = {canon for r in rec["references"] for alias, canon in names.items() if alias in r.lower()}
            hits.append(truth.loc[rec["id"], "condition"] in said)
    assert np.mean(hits) >= 0.85
    assert (truth["frequent_answer"] == truth["condition"]).mean() >= 0.7


def test_self_diagnoses_are_sometimes_wrong(world):
    truth = S.read_truth(world)
    stated = truth[truth["self_diagnosis"] != ""]
    assert 0.15 <= len(stated) / len(truth) <= 0.6
    wrong = stated[stated["self_diagnosis_correct"].astype(int) == 0]
    assert len(wrong) > 0 and (wrong["self_diagnosis"] != wrong["condition"]).all()
    assert set(truth["condition"]) <= set(BY_NAME) and truth["condition"].nunique() >= 25


def test_conditions_have_distinct_signatures_and_colours():
    assert len({c.signature() for c in CONDITIONS}) == len(CONDITIONS) == 30
    plain = Nuisance()

    def mean_colour(name):
        return render_derm(BY_NAME[name], "back", 1, plain, 0, 96).reshape(-1, 3).astype(float).mean(0)

    vitiligo, melanoma, cellulitis = mean_colour("vitiligo"), mean_colour("melanoma"), mean_colour("cellulitis")
    assert vitiligo.sum() > melanoma.sum() + 20  # depigmented vs dark lesion
    assert cellulitis[0] - cellulitis[1] > vitiligo[0] - vitiligo[1] + 20  # red vs white


def test_conditions_are_recognisable_from_simple_colour_features():
    """1-NN on tone-relative colour percentiles, 6 images per condition with full nuisance: well above chance."""
    feats, labels = [], []
    for i, cond in enumerate(CONDITIONS):
        for k in range(6):
            rng = np.random.default_rng([i, k])
            img = render_derm(cond, cond.sites[k % len(cond.sites)], 2, sample_nuisance(rng, closeup=k % 2 == 1), [i, k], 48)
            dev = img.reshape(-1, 3).astype(float) - np.median(img.reshape(-1, 3), 0)
            feats.append(np.percentile(dev, [1, 5, 25, 75, 95, 99], axis=0).ravel())
            labels.append(i)
    z = (np.array(feats) - np.mean(feats, 0)) / (np.std(feats, 0) + 1e-9)
    dist = ((z[:, None] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    assert (np.array(labels)[dist.argmin(1)] == np.array(labels)).mean() > 0.2  # chance = 1/30


def test_render_is_a_pure_function_of_its_arguments():
    cond = BY_NAME["psoriasis"]
    nu = sample_nuisance(np.random.default_rng(3))
    a, b = render_derm(cond, "arm", 3, nu, [1, 2], 40), render_derm(cond, "arm", 3, nu, [1, 2], 40)
    assert a.shape == (40, 40, 3) and a.dtype == np.uint8 and np.array_equal(a, b)


def test_default_root_knobs_and_errors(data_root):
    ds = open_dataset("synth-derm", split="val", images=False, **TINY)
    assert len(ds) == 3 and (data_root / "synth-derm" / "world.json").is_file()
    assert len(open_dataset("synth-derm", split="train")) == 8  # knobs left out: the stored world is reused
    with pytest.raises(MedvlError, match="different knobs.*n_train"):
        open_dataset("synth-derm", split="train", n_train=9)
    with pytest.raises(MedvlError, match="unknown option"):
        open_dataset("synth-derm", split="train", colour="red")
    with pytest.raises(MedvlError, match="image_size"):
        S.generate_synth_derm(data_root / "x", image_size=8)
    with pytest.raises(MedvlError, match="unknown knob"):
        S.generate_synth_derm(data_root / "x", size=8)


def test_submission_over_a_synthetic_split(world, tmp_path):
    ds = open_dataset("synth-derm", world, split="test", images=False)
    answers = {r["id"]: f"It is {S.read_truth(world).set_index('encounter_id').loc[r['id'], 'condition']}." for r in ds.records}
    path = write_submission(tmp_path / "prediction.json", dict(reversed(list(answers.items()))), order=ds)
    assert list(read_submission(path)) == [r["id"] for r in ds.records]
