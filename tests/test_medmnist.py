"""MedMNIST loader on fake .npz files in the official format: multi-class, multi-label, sizes, splits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from medvl_core.data import open_dataset
from medvl_core.data.medmnist import MEDMNIST_CLASSES
from medvl_core.errors import DataFormatError, ParameterError

SPLIT_SIZES = {"train": 7, "val": 3, "test": 4}


def _write(path, n_labels=1, shape=(28, 28), n_classes=2, drop=(), seed=0):
    """A MedMNIST-format .npz: {split}_images uint8 (N, *shape), {split}_labels (N, n_labels)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SPLIT_SIZES.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        high = 2 if n_labels > 1 else n_classes
        arrays[f"{split}_labels"] = rng.integers(0, high, (n, n_labels)).astype(np.uint8)
    for key in drop:
        del arrays[key]
    np.savez_compressed(path, **arrays)
    return arrays


def test_multiclass_grayscale_items(tmp_path):
    arrays = _write(tmp_path / "pneumoniamnist.npz")
    ds = open_dataset("medmnist", root=tmp_path, split="train")
    assert len(ds) == 7 and ds.classes == ["normal", "pneumonia"] and not ds.multi_label
    item = ds[2]
    assert item["image"].mode == "L" and item["image"].size == (28, 28)
    assert np.array_equal(np.asarray(item["image"]), arrays["train_images"][2])
    assert item["label"] == item["class_index"] == int(arrays["train_labels"][2, 0])
    assert item["class_name"] == ds.classes[item["label"]]
    assert item["id"] == "pneumoniamnist-train-000002"


def test_val_split(tmp_path):
    arrays = _write(tmp_path / "pneumoniamnist.npz")
    ds = open_dataset("medmnist", root=tmp_path, split="val")
    assert len(ds) == 3 and np.array_equal(np.asarray(ds[1]["image"]), arrays["val_images"][1])
    with pytest.raises(ParameterError, match="medmnist: unknown split 'validate' .*'val'"):
        open_dataset("medmnist", root=tmp_path, split="validate")


def test_rgb_sized_file_and_class_names(tmp_path):
    _write(tmp_path / "dermamnist_64.npz", shape=(64, 64, 3), n_classes=7)
    ds = open_dataset("medmnist", root=tmp_path, split="test", flag="dermamnist", size=64)
    item = ds[0]
    assert item["image"].mode == "RGB" and item["image"].size == (64, 64)
    assert ds.classes == list(MEDMNIST_CLASSES["dermamnist"]) and item["class_name"] in ds.classes
    assert ds[0]["image"].size == open_dataset("medmnist", root=tmp_path / "dermamnist_64.npz", split="test")[0]["image"].size
    for flag in ("pneumoniamnist", "breastmnist", "dermamnist", "bloodmnist", "pathmnist", "octmnist", "organamnist"):
        assert len(MEDMNIST_CLASSES[flag]) >= 2


def test_multilabel_chestmnist(tmp_path):
    arrays = _write(tmp_path / "chestmnist.npz", n_labels=14)
    ds = open_dataset("medmnist", root=tmp_path, split="train", flag="chestmnist")
    assert ds.multi_label and ds.label_names[0] == "atelectasis" and len(ds.label_names) == 14
    item = ds[3]
    assert "label" not in item and item["labels"].dtype == np.float32
    assert np.array_equal(item["labels"], arrays["train_labels"][3].astype(np.float32))
    assert ds.label_matrix().shape == (7, 14)


def test_unknown_flag_gets_generic_names(tmp_path):
    _write(tmp_path / "mymnist.npz", n_classes=3)
    ds = open_dataset("medmnist", root=tmp_path, flag="mymnist")
    assert ds.classes == ["class_0", "class_1", "class_2"][: len(ds.classes)] and ds[0]["class_name"].startswith("class_")


def test_missing_file_says_how_to_get_it(tmp_path):
    _write(tmp_path / "pneumoniamnist_128.npz")
    with pytest.raises(DataFormatError) as err:
        open_dataset("medmnist", root=tmp_path)
    message = str(err.value)
    assert "pneumoniamnist.npz" in message and "pip install medmnist" in message and "not bundled" in message
    assert "pneumoniamnist_128.npz" in message  # points at the size that is there


def test_missing_array_names_file_and_array(tmp_path):
    _write(tmp_path / "breastmnist.npz", drop=("test_labels",))
    open_dataset("medmnist", root=tmp_path, flag="breastmnist", split="train")  # other splits still load
    with pytest.raises(DataFormatError, match=r"breastmnist\.npz has no array 'test_labels'"):
        open_dataset("medmnist", root=tmp_path, flag="breastmnist", split="test")


def test_bad_inputs_raise_clear_errors(tmp_path):
    _write(tmp_path / "pneumoniamnist.npz")
    with pytest.raises(ParameterError, match="unknown split"):
        open_dataset("medmnist", root=tmp_path, split="holdout")
    with pytest.raises(DataFormatError, match="size=32"):
        open_dataset("medmnist", root=tmp_path, size=32)
    (tmp_path / "octmnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="octmnist.npz"):
        open_dataset("medmnist", root=tmp_path, flag="octmnist")
    _write(tmp_path / "organmnist3d.npz", shape=(28, 28, 28))
    with pytest.raises(DataFormatError, match="3D volume"):
        open_dataset("medmnist", root=tmp_path, flag="organmnist3d")
