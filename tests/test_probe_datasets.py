"""The poster's eight datasets: each public layout written small (tests/vlm_test_trees.py) and read back, with the
class lists, group ids and recorded factors the probing notebook uses; missing trees name their data card."""

import pytest

from medvl_core.data import DATASETS, open_dataset
from medvl_core.data.probe_sets import REAL, open_probe_dataset
from medvl_core.errors import DataFormatError
from tests.vlm_test_trees import write_probe_trees


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe-data")
    return root, write_probe_trees(root, per_class=5)


def test_every_dataset_is_registered_and_reads_its_layout(trees, monkeypatch):
    root, expected = trees
    monkeypatch.setenv("MEDVL_DATA", str(root))
    assert set(REAL) <= set(DATASETS)
    for name in REAL:
        data = open_probe_dataset(name)
        assert len(data) == expected[name], name
        item = data[0]
        assert item["image"].size[0] > 0 and item["class_name"] == data.classes[item["class_index"]], name
        assert data.description == f"real data: {name}"


def test_class_lists_groups_and_factors(trees, monkeypatch):
    root, _ = trees
    monkeypatch.setenv("MEDVL_DATA", str(root))
    brain = open_dataset("brain-mr")
    assert brain.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    busi = open_dataset("breast-us")
    assert not any("_mask" in p for p in busi.column("path")) and busi.classes == ["benign", "malignant", "normal"]
    hist = open_dataset("breakhis")
    assert hist.group == "patient" and set(hist.column("magnification")) == {"40X", "400X"}
    assert set(hist.column("subtype")) == {"A", "DC"} and len(set(hist.column("patient"))) == 4
    assert len(open_dataset("breakhis", magnification="40X")) == len(hist) // 2
    cervix = open_dataset("hicervix")
    assert len(cervix.classes) == 6 and {"negative", "microbe"} <= set(cervix.column("level_1"))
    assert len(open_dataset("hicervix", split="all")) == 3 * len(cervix)
    fundus = open_dataset("deepdr")
    assert fundus.classes == [f"grade{g}" for g in range(5)] and fundus.group == "patient"
    assert set(fundus.column("eye")) == {"left", "right"}
    isic = open_dataset("isic2019")
    assert len(isic.classes) == 9 and "UNK" in isic.classes and "UNK" not in set(isic.column("class_name"))
    lesions = isic.column("lesion")
    assert all(lesions) and len(set(lesions)) < len(lesions)  # shared lesion ids group images; the rest stand alone
    pneumonia = open_probe_dataset("pneumoniamnist")
    assert len(pneumonia.classes) == 2 and pneumonia.confounders == []


def test_missing_tree_names_the_card(tmp_path):
    with pytest.raises(DataFormatError, match="data_cards/isic2019.md"):
        open_dataset("isic2019", root=tmp_path)
    with pytest.raises(DataFormatError, match="data_cards/brain-mr.md"):
        open_dataset("brain-mr", root=tmp_path)
    with pytest.raises(DataFormatError, match="data_cards/deepdr.md"):
        open_dataset("deepdr", root=tmp_path)
