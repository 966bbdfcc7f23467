"""SynthCXR: determinism, MIMIC layout read by the loaders, per-finding image signatures, knobs, atomicity."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from medvl_core.data import open_dataset
from medvl_core.data.labels import CHEXPERT_LABELS
from medvl_core.errors import MedvlError
from medvl_core.worlds import synth_cxr as S
from medvl_core.worlds.synth_cxr_render import render_cxr, render_findings
from medvl_core.worlds.synth_cxr_reports import compose_report, parse_attributes
from medvl_core.worlds.synth_cxr_scene import Finding, Nuisance, Scene

TINY = {"n_studies": 24, "n_test_images": 6, "image_size": 48, "report_source": "template", "n_valid_images": 5, "workers": 1}


def _hashes(root):
    """sha256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _stated(truth, ids):
    """Stated labels (CHEXPERT order) of the truth rows with these dicom ids."""
    rows = truth.set_index("dicom_id").loc[ids]
    return rows[[f"{label}.stated" for label in CHEXPERT_LABELS]].to_numpy(dtype=np.float32)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = S.generate_synth_cxr(tmp_path / "a", **TINY)
    b = S.generate_synth_cxr(tmp_path / "b", **TINY)
    ha, hb = _hashes(a), _hashes(b)
    assert len(ha) == 2 * 24 + 6 + 5 + 7 and ha == hb  # studies (image + report), test and valid images, 7 tables
    c = S.generate_synth_cxr(tmp_path / "c", **{**TINY, "seed": 1})
    assert _hashes(c) != ha


def test_openi_world_is_read_by_mimic_loader_with_truth_labels(tmp_path):
    root = S.generate_synth_cxr(tmp_path / "w", n_studies=30, n_test_images=5, image_size=64, workers=1)
    truth = S.read_truth(root)
    ds = open_dataset("mimic-cxr", root, split="all", uncertain="ignore")
    assert len(ds) == 30 and ds[0]["image"].size == (64, 64) and ds[0]["text"]
    expected = _stated(truth, [r["id"] for r in ds.records])
    np.testing.assert_array_equal(ds.label_matrix(), np.where(expected == -1, np.nan, expected))
    drawn = truth.set_index("dicom_id").loc[[r["id"] for r in ds.records], list(CHEXPERT_LABELS)].to_numpy()
    assert (drawn[:, 1:][expected[:, 1:] == 1] == 1).all()  # every stated positive is drawn
    assert {r["view"] for r in ds.records} <= {"PA", "AP"}
    sizes = {s: len(open_dataset("synth-cxr", root, split=s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 30 and min(sizes.values()) >= 1


def test_chexpert_style_test_set(tmp_path):
    root = S.generate_synth_cxr(tmp_path / "w", **TINY)
    test = open_dataset("synth-cxr", root, split="test", test_set="chexpert")
    truth = S.read_truth(root)
    rows = truth[truth["part"] == S.CHEXPERT_TEST_DIR]
    assert len(test) == 6 and test[0]["image"].size == (48, 48)
    np.testing.assert_array_equal(test.label_matrix(), rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32))


SIGNATURES = {  # observation -> (region on the stated/left side as x0, x1, y0, y1 in anatomy, expected sign)
    "Enlarged Cardiomediastinum": ((0.13, 0.2, -0.55, -0.15), +1),
    "Cardiomegaly": ((0.56, 0.62, 0.16, 0.3), +1),
    "Lung Opacity": ((0.1, 0.8, -0.8, 0.6), +1),
    "Lung Lesion": ((0.1, 0.8, -0.8, 0.6), +1),
    "Edema": ((0.15, 0.4, -0.2, 0.2), +1),
    "Consolidation": ((0.1, 0.8, -0.8, 0.6), +1),
    "Pneumonia": ((0.1, 0.8, -0.8, 0.6), +1),
    "Atelectasis": ((0.25, 0.75, 0.1, 0.45), +1),
    "Pneumothorax": ((0.6, 0.74, -0.5, -0.1), -1),
    "Pleural Effusion": ((0.35, 0.7, 0.3, 0.55), +1),
    "Pleural Other": ((0.65, 0.78, -0.3, 0.3), +1),
    "Fracture": ((0.4, 0.8, -0.7, 0.5), 0),
    "Support Devices": ((-1.0, 1.0, -1.0, 1.0), +1),
}


@pytest.mark.parametrize("label", list(SIGNATURES))
def test_each_observation_changes_its_region(label):
    nuisance, size = Nuisance(), 96
    scene = Scene(size, nuisance)
    (x0, x1, y0, y1), sign = SIGNATURES[label]
    region = (scene.x >= x0) & (scene.x <= x1) & (scene.y >= y0) & (scene.y <= y1)
    mirror = (-scene.x >= x0) & (-scene.x <= x1) & (scene.y >= y0) & (scene.y <= y1)
    base = render_findings({}, nuisance, seed=5, size=size)
    diff = render_findings({label: Finding(2, "left")}, nuisance, seed=5, size=size) - base
    assert np.abs(diff[region]).max() > 0.05, f"{label} leaves its region unchanged"
    if sign:
        assert sign * diff[region].mean() > 0.002, f"{label} does not {'brighten' if sign > 0 else 'darken'} its region"
    if label not in ("Enlarged Cardiomediastinum", "Cardiomegaly", "Edema", "Support Devices"):
        assert np.abs(diff[mirror]).max() < 0.01, f"{label} on the left changed the right side"
    same = render_cxr({}, nuisance, seed=5, size=size)
    assert np.array_equal(same, render_cxr({}, nuisance, seed=5, size=size))


def test_knobs_are_recorded_and_act(tmp_path):
    knobs = {"site_marker_strength": 1.0, "site_label": "Support Devices", "rare_stratum_fraction": 1.0,
             "label_noise": 0.3, "seed": 3}
    root = S.generate_synth_cxr(tmp_path / "w", **{**TINY, "n_studies": 60}, **knobs)
    world = json.loads((root / S.WORLD_FILE).read_text())
    assert world["format_version"] == S.FORMAT_VERSION
    assert all(world["params"][k] == v for k, v in knobs.items())
    truth = S.read_truth(root)
    assert (truth["site"] == truth["Support Devices"]).all()
    ptx = truth["Pneumothorax"] == 1
    assert ptx.any() and (truth.loc[ptx, "rare_stratum"] == 1).all() and (truth.loc[~ptx, "rare_stratum"] == 0).all()
    ds = open_dataset("mimic-cxr", root, split="all", uncertain="ones", images=False, text=False)
    csv = ds.label_matrix()
    stated = _stated(truth, [r["id"] for r in ds.records])
    flipped = np.zeros_like(csv, dtype=bool)
    rows = truth.set_index("dicom_id").loc[[r["id"] for r in ds.records], "flipped_labels"]
    for i, names in enumerate(rows):
        for name in filter(None, names.split("|")):
            flipped[i, CHEXPERT_LABELS.index(name)] = True
    assert flipped.sum() > 0 and np.array_equal(csv[flipped], 1 - stated[flipped])
    assert np.array_equal(np.nan_to_num(csv[~flipped], nan=9), np.nan_to_num(np.where(stated == -1, 1, stated)[~flipped], nan=9))


def test_interrupted_generation_leaves_no_half_world(tmp_path, monkeypatch):
    calls = []

    def failing(job):
        calls.append(job)
        if len(calls) > 3:
            raise RuntimeError("power cut")
        return real(job)

    real = S._render_job
    monkeypatch.setattr(S, "_render_job", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        S.generate_synth_cxr(tmp_path / "w", **TINY)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(S, "_render_job", real)
    assert (S.generate_synth_cxr(tmp_path / "w", **TINY) / S.WORLD_FILE).is_file()


def test_existing_world_reused_and_mismatch_is_a_clear_error(tmp_path):
    root = S.generate_synth_cxr(tmp_path / "w", **TINY)
    before = _hashes(root)
    assert S.generate_synth_cxr(root, **TINY) == root and _hashes(root) == before
    with pytest.raises(MedvlError, match=r"seed: stored 0 vs requested 7.*another root= or delete"):
        S.generate_synth_cxr(root, **{**TINY, "seed": 7})
    with pytest.raises(MedvlError, match="label_noise"):
        open_dataset("synth-cxr", root, label_noise=0.2)
    assert len(open_dataset("synth-cxr", root, split="all", images=False)) == 24  # knobs left out: taken from disk
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(MedvlError, match="not a SynthCXR world"):
        S.generate_synth_cxr(tmp_path / "other", **TINY)
    with pytest.raises(MedvlError, match="unknown option"):
        open_dataset("synth-cxr", root, n_studys=3)
    with pytest.raises(MedvlError, match="report_source"):
        S.generate_synth_cxr(tmp_path / "bad", report_source="gpt")


def test_open_dataset_generates_default_place_on_first_use(data_root):
    knobs = {k: v for k, v in TINY.items() if k != "workers"}
    ds = open_dataset("synth-cxr", split="train", **knobs)
    assert len(ds) > 0 and (data_root / "synth-cxr" / S.WORLD_FILE).is_file()
    assert ds[0]["image"].mode == "L"


def test_parse_attributes_reads_side_severity_and_devices():
    text = ("Small left pleural effusion. No pneumothorax. Moderate cardiomegaly. Bibasilar atelectasis. "
            "Right upper lobe mass. Endotracheal tube and left chest tube in place.")
    attrs = parse_attributes(text)
    assert attrs["Pleural Effusion"] == {"side": "left", "severity": 1}
    assert attrs["Cardiomegaly"]["severity"] == 2 and attrs["Atelectasis"]["side"] == "bilateral"
    assert attrs["Lung Lesion"]["side"] == "right" and attrs["Lung Lesion"]["variant"] == "mass"
    assert set(attrs["Support Devices"]["devices"]) == {"ett", "chest_tube"}
    assert "Pneumothorax" not in attrs


def test_template_reports_say_what_is_stated():
    from medvl_core.text.labeler import label_report

    rng = np.random.default_rng(0)
    stated = np.full(14, np.nan, dtype=np.float32)
    stated[[CHEXPERT_LABELS.index(n) for n in ("Pleural Effusion", "Pneumothorax", "Cardiomegaly", "Edema")]] = [1, 0, -1, 1]
    findings = {"Pleural Effusion": Finding(1, "left"), "Edema": Finding(2, "bilateral")}
    body, impression = compose_report(stated, findings, rng)
    assert "small left pleural effusion" in body.lower() and "no pneumothorax" in body.lower()
    got = label_report(f"{body} {impression}")
    np.testing.assert_array_equal(got[1:], stated[1:])


def test_outdated_default_world_is_regenerated_but_a_user_root_is_not(data_root):
    import json

    from medvl_core.data import open_dataset
    from medvl_core.errors import MedvlError
    from medvl_core.worlds.synth_cxr import FORMAT_VERSION, WORLD_FILE

    tiny = dict(n_studies=8, n_test_images=2, image_size=32, report_source="template")
    default_root = data_root / "synth-cxr"
    open_dataset("synth-cxr", **tiny)
    world = json.loads((default_root / WORLD_FILE).read_text())
    (default_root / WORLD_FILE).write_text(json.dumps({**world, "format_version": FORMAT_VERSION - 1}))
    assert len(open_dataset("synth-cxr", **tiny)) > 0
    assert json.loads((default_root / WORLD_FILE).read_text())["format_version"] == FORMAT_VERSION
    other = data_root / "mine"
    open_dataset("synth-cxr", root=other, **tiny)
    (other / WORLD_FILE).write_text(json.dumps({**world, "format_version": FORMAT_VERSION - 1}))
    with pytest.raises(MedvlError, match="format version"):
        open_dataset("synth-cxr", root=other, **tiny)


def test_subpulmonic_rare_stratum_knob(tmp_path):
    from medvl_core.worlds.synth_cxr import read_truth, read_world

    knobs = {"n_studies": 40, "n_test_images": 30, "image_size": 32, "report_source": "template",
             "rare_stratum": "subpulmonic", "rare_stratum_fraction": 0.0, "rare_stratum_test_fraction": 1.0}
    root = S.generate_synth_cxr(tmp_path / "w", **knobs)
    truth = read_truth(root)
    assert read_world(root)["constants"]["rare_stratum_label"] == "Pleural Effusion"
    effusion = truth["Pleural Effusion"] == 1
    test = truth["part"] != "mimic"
    assert (truth.loc[test & effusion, "rare_stratum"] == 1).all() and (truth.loc[~test, "rare_stratum"] == 0).all()
    assert (truth.loc[~effusion, "rare_stratum"] == 0).all() and (test & effusion).any()


def test_subpulmonic_effusion_renders_a_raised_hemidiaphragm_without_a_meniscus():
    from medvl_core.worlds.synth_cxr_render import render_findings
    from medvl_core.worlds.synth_cxr_scene import Finding, Nuisance

    plain = render_findings({}, Nuisance(), 3, 64)
    meniscus = render_findings({"Pleural Effusion": Finding(2, "left")}, Nuisance(), 3, 64)
    sub = render_findings({"Pleural Effusion": Finding(2, "left", "subpulmonic")}, Nuisance(), 3, 64)
    assert not np.allclose(sub, plain) and not np.allclose(sub, meniscus)
    right = slice(0, 32)  # image left = patient right: untouched by a left-sided effusion
    np.testing.assert_allclose(sub[:, right], plain[:, right], atol=1e-6)


def test_subpulmonic_report_sentence_and_bad_kind(tmp_path):
    from medvl_core.errors import MedvlError
    from medvl_core.worlds.synth_cxr_reports import _phrase
    from medvl_core.worlds.synth_cxr_scene import Finding

    assert "subpulmonic left pleural effusion" in _phrase("Pleural Effusion", Finding(1, "left", "subpulmonic"))
    with pytest.raises(MedvlError, match="rare_stratum"):
        S.generate_synth_cxr(tmp_path / "x", n_studies=5, rare_stratum="nope")


def test_chexpert_style_valid_set_and_abnormal_share(tmp_path):
    knobs = {**TINY, "n_test_images": 40, "n_valid_images": 30, "test_abnormal_fraction": 0.7}
    root = S.generate_synth_cxr(tmp_path / "w", **knobs)
    valid = open_dataset("synth-cxr", root, split="val", test_set="chexpert")
    test = open_dataset("synth-cxr", root, split="test", test_set="chexpert")
    truth = S.read_truth(root)
    rows = truth[truth["part"] == "chexpert-valid"]
    assert len(valid) == 30 and set(rows["split"]) == {"validate"}
    np.testing.assert_array_equal(valid.label_matrix(), rows[list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32))
    assert 1 - valid.label_matrix()[:, 0].mean() == pytest.approx(0.7) and 1 - test.label_matrix()[:, 0].mean() == pytest.approx(0.7)
    assert not {r["id"] for r in valid.records} & {r["id"] for r in test.records}


def test_valid_set_size_leaves_the_rest_of_the_world_unchanged(tmp_path):
    small = S.read_truth(S.generate_synth_cxr(tmp_path / "a", **TINY))
    large = S.read_truth(S.generate_synth_cxr(tmp_path / "b", **{**TINY, "n_valid_images": 12}))
    rest = [frame[frame["part"] != "chexpert-valid"].reset_index(drop=True) for frame in (small, large)]
    pd.testing.assert_frame_equal(*rest)
    assert (large["part"] == "chexpert-valid").sum() == 12


def test_extra_normal_sentences_lengthen_reports_without_touching_stated_findings():
    from medvl_core.text.labeler import label_report
    from medvl_core.text.sentences import split_sentences
    from medvl_core.worlds.synth_cxr_plan import WorldParams, source_rows
    from medvl_core.worlds.synth_cxr_reports import with_normal_sentences

    src = {"uid": "x", "findings": "Small left pleural effusion. Heart size is normal.", "impression": "Effusion."}
    longer = with_normal_sentences(src, 3, np.random.default_rng(0))
    added = [s for s in split_sentences(longer["findings"]) if s not in split_sentences(src["findings"])]
    assert len(added) == 3 and longer["impression"] == src["impression"]
    effusion = CHEXPERT_LABELS.index("Pleural Effusion")
    assert all(np.isnan(label_report(s)[effusion]) for s in added)  # no "no effusion" beside an effusion
    before, after = (label_report(f"{r['findings']} {r['impression']}") for r in (src, longer))
    np.testing.assert_array_equal(np.isin(before, (1, -1)), np.isin(after, (1, -1)))
    p = WorldParams(n_studies=30, n_test_images=0, extra_normal_sentences=2.0).check()
    plain, _ = source_rows(WorldParams(n_studies=30, n_test_images=0), np.random.default_rng(1))
    extra, _ = source_rows(p, np.random.default_rng(1))
    assert [r["uid"] for r in plain] == [r["uid"] for r in extra]  # the same reports, only longer
    gained = [len(split_sentences(b["findings"])) - len(split_sentences(a["findings"])) for a, b in zip(plain, extra)]
    assert min(gained) >= 0 and np.mean(gained) > 1
    with pytest.raises(MedvlError, match="extra_normal_sentences"):
        WorldParams(extra_normal_sentences=-1).check()


def test_subpulmonic_raise_scales_the_raised_hemidiaphragm():
    from medvl_core.worlds.synth_cxr_plan import WorldParams
    from medvl_core.worlds.synth_cxr_render import _elevation

    effusion = Finding(2, "left", "subpulmonic")
    assert _elevation(None, effusion) == {1.0: pytest.approx(0.09)}  # default: the raise as before the knob
    assert _elevation(None, effusion, 0.5) == {1.0: pytest.approx(0.045)}
    base = render_findings({}, Nuisance(), 3, 64)
    full, half = (np.abs(render_findings({"Pleural Effusion": effusion}, Nuisance(), 3, 64, s) - base).sum() for s in (1.0, 0.5))
    assert 0 < half < full
    with pytest.raises(MedvlError, match="subpulmonic_raise"):
        WorldParams(subpulmonic_raise=0.0).check()
