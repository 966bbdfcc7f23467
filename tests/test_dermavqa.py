"""dermavqa loader (MEDIQA-M3G 2024 layout) on a hand-built fixture; submission writer/reader."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
from PIL import Image

from medvl_core.data import open_dataset
from medvl_core.data.dermavqa import read_submission, reference_weight, write_submission
from medvl_core.errors import DataFormatError, MedvlError, ParameterError


def _encounter(eid, n_images, responses):
    """One encounter in the official key order (zh, en, es query fields)."""
    return {"encounter_id": eid, "author_id": "U09999", "image_ids": [f"IMG_{eid}_{k:05d}.jpg" for k in range(1, n_images + 1)],
            "query_title_zh": f"标题 {eid}", "query_content_zh": "内容", "query_title_en": f"Rash {eid}",
            "query_content_en": "Red itchy patches for two weeks.", "query_title_es": f"Erupción {eid}",
            "query_content_es": "Manchas rojas.", "responses": responses}


def _response(author, text, completeness=None, freq=None):
    """One response; completeness/contains_freq_ans only when given (valid/test)."""
    out = {"author_id": author, "content_zh": f"zh {text}", "content_en": text, "content_es": f"es {text}"}
    if completeness is not None:
        out.update(completeness=completeness, contains_freq_ans=freq)
    return out


USERINFO = "author_id,validation_level,rank_level\nU00001,md_validated,level_5\nU00002,,unk\nU00003,realid_validated,level_4\nU00004,md1_validated,level_3\n"


def _write_split(root, split, name, encounters):
    """The JSON file and its images_{split}/ folder (one small colour image per image id)."""
    (root / name).write_text(json.dumps(encounters, ensure_ascii=False, indent=1), encoding="utf-8")
    folder = root / f"images_{split}"
    folder.mkdir(exist_ok=True)
    for k, enc in enumerate(encounters):
        for j, image_id in enumerate(enc["image_ids"]):
            Image.new("RGB", (20, 16), (40 * k, 30 * j, 200)).save(folder / image_id)


@pytest.fixture
def root(tmp_path):
    """Two train encounters (no annotations) and two valid encounters (annotated, official valid_ht.json name)."""
    root = tmp_path / "dermavqa"
    root.mkdir()
    _write_split(root, "train", "train.json", [
        _encounter("ENC00001", 2, [_response("U00001", "Psoriasis"), _response("U00002", "Typical psoriasis.")]),
        _encounter("ENC00002", 1, [_response("U00003", "Eczema.")]),
    ])
    _write_split(root, "valid", "valid_ht.json", [
        _encounter("ENC00010", 1, [_response("U00001", "It is tinea.", 1.0, 1.0), _response("U00002", "Not sure.", 0.5, 0.0),
                                   _response("U00003", "Tinea, use terbinafine.", 0.0, 1.0)]),
        _encounter("ENC00011", 3, [_response("U00004", "Vitiligo.", 1.0, 0.0)]),
    ])
    (root / "df_userinfo.csv").write_text(USERINFO, encoding="utf-8")
    return root


def test_train_items(root):
    ds = open_dataset("dermavqa", root, split="train")
    assert len(ds) == 2 and ds.split == "train"
    item = ds[0]
    assert item["id"] == "ENC00001" and item["author_id"] == "U09999"
    assert item["image_ids"] == ["IMG_ENC00001_00001.jpg", "IMG_ENC00001_00002.jpg"]
    assert [im.mode for im in item["image"]] == ["RGB", "RGB"] and item["image"][1].size == (20, 16)
    assert item["text"] == "Rash ENC00001\nRed itchy patches for two weeks."
    assert item["references"] == ["Psoriasis", "Typical psoriasis."]
    assert item["reference_weights"] == [1.0, 1.0]  # train: no completeness / contains_freq_ans
    assert item["responses"][0]["author_id"] == "U00001"
    assert len(ds[1]["image"]) == 1


def test_valid_weights_follow_the_competition_rule(root):
    ds = open_dataset("dermavqa", root, split="val")
    # md + level_5 + freq 1 + complete 1 -> 1.0; blank + unk + 0 + 0.5 -> 0.6; realid + level_4 + freq 1 -> 0.8
    assert ds[0]["reference_weights"] == [1.0, 0.6, 0.8]
    assert ds[1]["reference_weights"] == [0.8]  # md1 + level_3 + freq 0 + complete 1
    assert len(ds[1]["image"]) == 3


def test_weights_are_one_without_userinfo(root):
    assert open_dataset("dermavqa", root, split="val", userinfo=False)[0]["reference_weights"] == [1.0] * 3
    (root / "df_userinfo.csv").unlink()
    assert open_dataset("dermavqa", root, split="val").records[0]["reference_weights"] == [1.0] * 3


def test_language_option(root):
    item = open_dataset("dermavqa", root, split="val", lang="es", images=False)[0]
    assert item["text"] == "Erupción ENC00010\nManchas rojas." and item["references"][0] == "es It is tinea."
    assert "image" not in item
    assert open_dataset("dermavqa", root, lang="zh")[0]["text"].startswith("标题")
    with pytest.raises(MedvlError, match="lang"):
        open_dataset("dermavqa", root, lang="fr")


def test_val_split_and_json_option(root):
    ds = open_dataset("dermavqa", root, split="val")  # the official valid_ht.json and images_valid/
    assert len(ds) == 2 and ds.split == "val" and ds.source.name == "valid_ht.json"
    (root / "other.json").write_text((root / "valid_ht.json").read_text(encoding="utf-8"), encoding="utf-8")
    ds = open_dataset("dermavqa", root, split="val", json="other.json")
    assert ds.source.name == "other.json" and ds[0]["id"] == "ENC00010" and len(ds[0]["image"]) == 1
    with pytest.raises(MedvlError, match="dermavqa: unknown split 'valid' .*'val'"):
        open_dataset("dermavqa", root, split="valid")


def test_transform_applies_to_each_image(root):
    ds = open_dataset("dermavqa", root, split="train", transform=lambda im: np.asarray(im).shape)
    assert ds[0]["image"] == [(16, 20, 3), (16, 20, 3)]


def test_missing_file_names_the_tried_paths(root):
    with pytest.raises(DataFormatError, match=r"test\.json.*test_ht\.json"):
        open_dataset("dermavqa", root, split="test")
    with pytest.raises(DataFormatError, match="nope.json"):
        open_dataset("dermavqa", root, json="nope.json")


@pytest.mark.parametrize("breakage, pattern", [
    (lambda encs: encs[1].pop("image_ids"), r"train\.json.*ENC00002.*'image_ids'"),
    (lambda encs: encs[0].pop("query_title_en"), r"train\.json.*ENC00001.*'query_title_en'"),
    (lambda encs: encs[0]["responses"][1].pop("content_en"), r"train\.json.*response 1.*'content_en'"),
    (lambda encs: encs[0]["responses"][0].pop("author_id"), r"response 0.*'author_id'"),
])
def test_missing_key_names_file_and_key(root, breakage, pattern):
    encs = json.loads((root / "train.json").read_text(encoding="utf-8"))
    breakage(encs)
    (root / "train.json").write_text(json.dumps(encs), encoding="utf-8")
    with pytest.raises(DataFormatError, match=pattern):
        open_dataset("dermavqa", root)


def test_malformed_files(root):
    (root / "train.json").write_text("[{", encoding="utf-8")
    with pytest.raises(DataFormatError, match="train.json"):
        open_dataset("dermavqa", root)
    (root / "train.json").write_text('{"encounter_id": 1}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected a JSON list"):
        open_dataset("dermavqa", root)


def test_userinfo_errors(root):
    (root / "df_userinfo.csv").write_text("author_id,rank_level\nU00001,level_5\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"df_userinfo\.csv.*'validation_level'"):
        open_dataset("dermavqa", root, split="val")
    (root / "df_userinfo.csv").write_text("author_id,validation_level,rank_level\nU00001,md_validated,level_5\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="U00002.*df_userinfo.csv"):
        open_dataset("dermavqa", root, split="val")
    (root / "df_userinfo.csv").write_text(USERINFO.replace("unk", "level_x"), encoding="utf-8")
    with pytest.raises(DataFormatError, match="valid_ht.json.*ENC00010.*rank_level"):
        open_dataset("dermavqa", root, split="val")


def test_missing_images(root):
    (root / "images_valid" / "IMG_ENC00011_00002.jpg").unlink()
    ds = open_dataset("dermavqa", root, split="val")
    with pytest.raises(DataFormatError, match="IMG_ENC00011_00002.jpg"):
        ds[1]
    for f in (root / "images_train").iterdir():
        f.unlink()
    (root / "images_train").rmdir()
    with pytest.raises(DataFormatError, match="images_train"):
        open_dataset("dermavqa", root)
    assert len(open_dataset("dermavqa", root, images=False)) == 2


def test_submission_round_trip_in_reference_order(root, tmp_path):
    ds = open_dataset("dermavqa", root, split="val", images=False)
    path = write_submission(tmp_path / "out" / "prediction.json",
                            {"ENC00011": "It is vitiligo.", "ENC00010": ["It is tinea.", "unscored"]}, order=ds)
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert [r["encounter_id"] for r in rows] == ["ENC00010", "ENC00011"]
    assert rows[0] == {"encounter_id": "ENC00010", "responses": [{"content_en": "It is tinea."}, {"content_en": "unscored"}]}
    assert list(read_submission(path).items()) == [("ENC00010", "It is tinea."), ("ENC00011", "It is vitiligo.")]
    assert [p.name for p in path.parent.iterdir()] == ["prediction.json"]  # no temp file left
    by_file = write_submission(tmp_path / "b.json", [("ENC00011", "b"), ("ENC00010", "a")], order=root / "valid_ht.json")
    assert list(read_submission(by_file)) == ["ENC00010", "ENC00011"]


def test_submission_errors(root, tmp_path):
    ds = open_dataset("dermavqa", root, split="val", images=False)
    with pytest.raises(ParameterError, match="missing.*ENC00011"):
        write_submission(tmp_path / "p.json", {"ENC00010": "x"}, order=ds)
    with pytest.raises(ParameterError, match="unknown.*ENC99999"):
        write_submission(tmp_path / "p.json", {"ENC00010": "x", "ENC00011": "y", "ENC99999": "z"}, order=ds)
    with pytest.raises(ParameterError, match="string"):
        write_submission(tmp_path / "p.json", {"ENC00010": 3})
    assert not (tmp_path / "p.json").exists()
    (tmp_path / "bad.json").write_text('[{"encounter_id": "ENC00010", "responses": []}]', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.json.*ENC00010.*content_en"):
        read_submission(tmp_path / "bad.json")


# ------------------------------------------------------------- reference_weight (the competition's weights)


def test_reference_weight_table():
    for md, rank, freq, complete in product([0, 1], [0, 1], [0, 1], [0, 1]):
        w = reference_weight("md_validated" if md else "realid_validated", "level_5" if rank else "level_3",
                             freq, 1 if complete else 0.5)
        assert w == round(0.6 + 0.1 * (md + rank + freq + complete), 1)
    assert reference_weight("md1_validated", "level_8", 1.0, 1.0) == 1.0
    assert reference_weight("realid_validated", "unk", 0, 0) == 0.6
    assert reference_weight("realid_validated", "level_4", 0, 0) == 0.7


@pytest.mark.parametrize(("args", "name"), [
    ((None, "level_4", 1, 1), "validation_level"),
    (("md_validated", "4", 1, 1), "rank_level"),
    (("md_validated", "level_x", 1, 1), "rank_level"),
    (("md_validated", "level_4", 2, 1), "contains_freq_ans"),
    (("md_validated", "level_4", 1, 0.7), "completeness"),
    (("md_validated", "level_4", 1, "1"), "completeness"),
])
def test_reference_weight_rejects_bad_inputs(args, name):
    with pytest.raises(ParameterError, match=name):
        reference_weight(*args)
