"""Prepared copies (`medvl prepare`): draft-mode decoding, chunked writing and resume, the loaders reading a copy,
stale and foreign copies refused, bad items, the command line."""

import json
import os

import numpy as np
import pytest
from cxr_test_trees import radiograph, write_mimic_jpg
from PIL import Image

from medvl_core.cli import main
from medvl_core.data import open_dataset, prepare, prepared
from medvl_core.data.check import screen
from medvl_core.data.images import load_image, square_uint8
from medvl_core.errors import DataFormatError, MedvlError


@pytest.fixture()
def data(tmp_path, monkeypatch):
    """$MEDVL_DATA holding a 12-image MIMIC-CXR-JPG tree (300 x 240 px) under mimic-cxr/."""
    monkeypatch.setenv("MEDVL_DATA", str(tmp_path / "data"))
    write_mimic_jpg(tmp_path / "data" / "mimic-cxr")
    return tmp_path / "data"


def counting_decoder(monkeypatch, fail_at=None):
    """Count calls of `prepare.decode_one`; raise KeyboardInterrupt (a kill) at call number `fail_at`."""
    calls, real = [], prepare.decode_one

    def decode(path, size):
        calls.append(path)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt("killed")
        return real(path, size)

    monkeypatch.setattr(prepare, "decode_one", decode)
    return calls


def test_draft_decode_gives_the_same_size_and_close_pixels(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(radiograph((1200, 1000), 1)).save(path, quality=95)
    drafted, full = load_image(path, draft_side=128), load_image(path)
    assert full.size == (1000, 1200) and min(drafted.size) >= 128 and drafted.size[0] <= 500  # decoded at 1/4 or less
    small, reference = square_uint8(drafted, 128), square_uint8(full, 128)
    assert small.shape == reference.shape == (128, 128) and small.dtype == np.uint8
    assert np.abs(small.astype(int) - reference).mean() < 2.0
    assert load_image(path, draft_side=600).size == full.size  # not far smaller: decoded at full size


def test_square_crop_matches_resize_and_centre_crop():
    from torchvision import transforms as T

    image = Image.fromarray(radiograph((90, 60), 2))
    ours = square_uint8(image, 30)
    theirs = np.asarray(T.Compose([T.Resize(30, T.InterpolationMode.BICUBIC), T.CenterCrop(30)])(image))
    assert ours.shape == (30, 30) and np.abs(ours.astype(int) - theirs).max() <= 1


def test_prepare_writes_a_copy_the_loader_reads(data, capsys, monkeypatch):
    folder = prepare.prepare_dataset("mimic-cxr", size=64, workers=2, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder == data / "prepared" / "mimic-cxr-64"
    assert (manifest["dataset"], manifest["size"], manifest["n_images"], manifest["n_bad"]) == ("mimic-cxr", 64, 12, 0)
    assert manifest["source"]["files"] == 12 and manifest["source"]["bytes"] > 0 and manifest["code"]["medvl"]
    images = np.load(folder / "images.npy", mmap_mode="r")
    assert isinstance(images, np.memmap) and images.shape == (12, 64, 64) and images.dtype == np.uint8

    raw = open_dataset("mimic-cxr", split="train", views="all", prepared="off")
    assert capsys.readouterr().out == ""
    ready = open_dataset("mimic-cxr", split="train", views="all")
    assert capsys.readouterr().out.strip() == f"mimic-cxr: reading the prepared copy {folder} (64 px, 12 images)"
    assert ready.prepared is not None and len(ready) == len(raw) == 4
    for index in range(len(raw)):
        item, expected = ready[index], square_uint8(raw[index]["image"], 64)
        assert item["image"].size == (64, 64) and item["text"] == raw[index]["text"]
        assert np.abs(np.asarray(item["image"], dtype=int) - expected).mean() < 2.0
    monkeypatch.setattr("medvl_core.data.check.load_image", lambda *a, **k: pytest.fail("decoded a source image"))
    assert screen(ready, "error")[1] == [0, 1, 2, 3]  # the screen takes image problems from the copy


def test_a_killed_prepare_resumes_with_its_finished_chunks(data, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_SIZE", 4)
    counting_decoder(monkeypatch, fail_at=9)  # killed in the third chunk of three
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare_dataset("mimic-cxr", size=48, workers=1, progress=False)
    folder = data / "prepared" / "mimic-cxr-48"
    assert sorted(p.name for p in (folder / "chunks").iterdir()) == ["00000.json", "00001.json"]
    assert not (folder / "manifest.json").exists()
    open_dataset("mimic-cxr", views="all")  # an incomplete copy is not read: no error, raw images
    calls = counting_decoder(monkeypatch)
    prepare.prepare_dataset("mimic-cxr", size=48, workers=1, progress=False)
    assert len(calls) == 4  # only the unfinished chunk
    resumed = np.array(np.load(folder / "images.npy"))
    calls.clear()
    prepare.prepare_dataset("mimic-cxr", size=48, workers=1, progress=False, force=True)
    assert len(calls) == 12 and np.array_equal(np.load(folder / "images.npy"), resumed)


def test_stale_copy_is_refused_and_force_rebuilds(data, monkeypatch):
    folder = prepare.prepare_dataset("mimic-cxr", size=32, workers=1, progress=False)
    changed = next((data / "mimic-cxr" / "files").rglob("*.jpg"))
    Image.fromarray(radiograph((300, 240), 7)).save(changed, quality=90)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    with pytest.raises(MedvlError, match=r"stale.*medvl prepare mimic-cxr --root .* --size 32 --force"):
        open_dataset("mimic-cxr", views="all")
    calls = counting_decoder(monkeypatch)
    assert main(["prepare", "mimic-cxr", "--size", "32", "--force", "--quiet", "--workers", "1"]) == 0
    assert len(calls) == 12
    assert open_dataset("mimic-cxr", views="all").prepared.folder == folder


def test_foreign_copy_and_missing_views_are_refused(data):
    folder = prepare.prepare_dataset("mimic-cxr", size=32, views="frontal", workers=1, progress=False)
    with pytest.raises(MedvlError, match=r"lacks 2 of the 4 items.*--views all --size 32 --force"):
        open_dataset("mimic-cxr", views="all")
    assert len(open_dataset("mimic-cxr").prepared) == 6  # frontal only: every item is in the copy
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "dataset": "chexpert"}))
    with pytest.raises(MedvlError, match=r"not a prepared copy of mimic-cxr.*--size 32 --force"):
        open_dataset("mimic-cxr")


def test_unreadable_images_follow_the_bad_items_policy(data):
    broken = next((data / "mimic-cxr" / "files").rglob("000pa.jpg"))
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match=r"(?s)1 unreadable images while preparing.*000pa.jpg.*--bad-items skip"):
        prepare.prepare_dataset("mimic-cxr", size=32, workers=1, progress=False)
    with pytest.warns(UserWarning, match="1 of 12 images are unreadable"):
        prepare.prepare_dataset("mimic-cxr", size=32, workers=1, progress=False, bad_items="skip")
    dataset = open_dataset("mimic-cxr", views="all")
    with pytest.raises(DataFormatError, match="unreadable image"):
        screen(dataset, "error")
    with pytest.warns(UserWarning, match="skipped 1 bad items"):
        kept, indices = screen(dataset, "skip")
    assert len(kept) == 3 and "000pa" not in kept.column("id")


def test_without_a_copy_a_large_dataset_gets_the_decode_estimate(data, capsys, monkeypatch):
    monkeypatch.setattr(prepared, "ESTIMATE_MIN_ITEMS", 4)
    open_dataset("mimic-cxr", views="all")
    line = capsys.readouterr().out.strip()
    assert line.startswith("mimic-cxr: no prepared copy; decoding its 4 full-size images takes about")
    assert "`medvl prepare mimic-cxr`" in line and "measured on 3" in line
    with pytest.raises(MedvlError, match="no prepared copy of mimic-cxr .* at 64 px"):
        open_dataset("mimic-cxr", prepared=64)


def test_dicom_sources_go_through_the_voi_lut_path(tmp_path, monkeypatch):
    from cxr_test_trees import write_vindr

    monkeypatch.setenv("MEDVL_DATA", str(tmp_path))
    write_vindr(tmp_path / "vindr-cxr", n_images=4)  # its test split only: the missing train split is skipped
    prepare.prepare_dataset("vindr-cxr", size=16, workers=1, progress=False)
    raw, ready = (open_dataset("vindr-cxr", split="test", prepared=p) for p in ("off", 16))
    for index in range(4):
        assert np.array_equal(np.asarray(ready[index]["image"]), square_uint8(raw[index]["image"], 16))
