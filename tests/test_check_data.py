"""Bad items found before training: `data.check` on a MIMIC-CXR-JPG tree with a truncated and a missing JPG, an
empty and a section-less report; the `bad_items` policies; `medvl check-data`."""

import numpy as np
import pytest
from test_cxr_loaders import make_mimic

from medvl_core import cli
from medvl_core.data import open_dataset
from medvl_core.data.check import check_dataset, screen
from medvl_core.errors import DataFormatError, ParameterError


def break_tree(root):
    """d1: truncated JPG; d3: missing JPG; d4's study: empty report; d5's study: report without its sections."""
    jpg = root / "files/p10/p10000032/s50414267/d1.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    (root / "files/p10/p10000033/s50000001/d3.jpg").unlink()
    (root / "files/p11/p11000001/s51000001.txt").write_text("   \n")
    (root / "files/p10/p10000032/s50000002.txt").write_text("FINAL REPORT\n EXAMINATION: chest\n")
    return root


@pytest.fixture()
def broken(tmp_path):
    return break_tree(make_mimic(tmp_path / "mimic"))


def test_every_kind_of_bad_item_is_found_once(broken):
    ds = open_dataset("mimic-cxr", broken, split="all", views="all")
    bad = check_dataset(ds, workers=2, progress=False)
    found = {(row.id, row.problem) for row in bad.itertuples()}
    assert found == {("d1", "unreadable image"), ("d3", "missing file"), ("d4", "empty report"),
                     ("d5", "no findings/impression section")}
    assert "truncated" in bad.set_index("id").loc["d1", "detail"].lower()
    assert bad.set_index("id").loc["d4", "file"].endswith("s51000001.txt")


def test_error_policy_lists_all_bad_items_before_training(broken):
    ds = open_dataset("mimic-cxr", broken, split="all", views="all")
    with pytest.raises(DataFormatError) as info:
        screen(ds, "error")
    message = str(info.value)
    assert "3 bad items found before training" in message and "bad_items='skip'" in message
    assert all(name in message for name in ("d1.jpg", "d3.jpg", "s51000001.txt"))
    assert "s50000002.txt" not in message  # section-less: listed by check-data, read as its last paragraph


def test_skip_policy_drops_and_counts(broken):
    ds = open_dataset("mimic-cxr", broken, split="all", views="all")
    with pytest.warns(UserWarning, match="skipped 3 bad items of 5"):
        kept, indices = screen(ds, "skip")
    assert [r["id"] for r in kept.records] == ["d2", "d5"] and indices == [1, 4]
    assert kept[0]["text"] and np.asarray(kept[0]["image"]).shape == (12, 16)
    with pytest.raises(ParameterError, match="bad_items='ignore' is not a policy"):
        screen(ds, "ignore")


def test_a_clean_tree_passes_untouched(tmp_path):
    ds = open_dataset("mimic-cxr", make_mimic(tmp_path / "m"), split="all", views="all")
    assert check_dataset(ds, progress=False).empty
    assert screen(ds)[0] is ds


def test_check_data_command_prints_the_table_and_exits_1(broken, tmp_path, capsys):
    assert cli.main(["check-data", "mimic-cxr", "--root", str(broken), "--split", "all", "--views", "all"]) == 1
    out = capsys.readouterr().out
    assert "4 bad items of 5" in out and "1 empty report" in out and "1 missing file" in out and "1 no findings" in out
    clean = make_mimic(tmp_path / "clean")
    assert cli.main(["check-data", "mimic-cxr", "--root", str(clean), "--split", "all"]) == 0
    assert "no bad items" in capsys.readouterr().out


def test_subset_keeps_loader_and_extra_attributes(tmp_path):
    from test_cxr_loaders import make_vindr

    ds = open_dataset("vindr-cxr", make_vindr(tmp_path))
    part = ds.subset([1])
    assert [r["id"] for r in part.records] == [ds.records[1]["id"]] and part.vindr_label_names == ds.vindr_label_names
    assert np.asarray(part[0]["image"]).shape == np.asarray(ds[1]["image"]).shape and part.name == "vindr-cxr"
