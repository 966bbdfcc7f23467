"""mimic-cxr, chexpert, padchest, vindr-cxr loaders on tiny fixtures written in each real format."""

import gzip
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from cxr_test_trees import write_dicom
from PIL import Image

from medvl_core.data import open_dataset
from medvl_core.data.cxr_common import hash_split, normalize_views
from medvl_core.data.labels import CHEXPERT_LABELS
from medvl_core.data.padchest import parse_label_list
from medvl_core.errors import DataFormatError, MedvlError

CARDIO = CHEXPERT_LABELS.index("Cardiomegaly")
EFFUSION = CHEXPERT_LABELS.index("Pleural Effusion")
NOFIND = CHEXPERT_LABELS.index("No Finding")
DEVICES = CHEXPERT_LABELS.index("Support Devices")


def write_jpg(path, value=128, size=(16, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def write_csv(path, rows, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = pd.DataFrame(rows).to_csv(index=False)
    if gz:
        with gzip.open(f"{path}.gz", "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)


def label_row(**values):
    return {name: values.get(name.replace(" ", "_"), "") for name in CHEXPERT_LABELS}


# ------------------------------------------------------------------ mimic-cxr

REPORT = "FINAL REPORT\n INDICATION: cough\n\n FINDINGS:\n Enlarged heart.\n Small left\n effusion.\n\n IMPRESSION:\n Cardiomegaly.\n"
MIMIC_IMAGES = [  # dicom_id, subject, study, view, split
    ("d1", 10000032, 50414267, "PA", "train"),
    ("d2", 10000032, 50414267, "LATERAL", "train"),
    ("d3", 10000033, 50000001, "AP", "train"),
    ("d4", 11000001, 51000001, "PA", "test"),
    ("d5", 10000032, 50000002, "PA", "validate"),  # study without a label row
]


def make_mimic(root, reports_root=None):
    write_csv(root / "mimic-cxr-2.0.0-metadata.csv", [
        {"dicom_id": d, "subject_id": s, "study_id": t, "PerformedProcedureStepDescription": "CHEST", "ViewPosition": v,
         "Rows": 12, "Columns": 16} for d, s, t, v, _ in MIMIC_IMAGES], gz=True)
    write_csv(root / "mimic-cxr-2.0.0-split.csv",
              [{"dicom_id": d, "study_id": t, "subject_id": s, "split": sp} for d, s, t, _, sp in MIMIC_IMAGES])
    write_csv(root / "mimic-cxr-2.0.0-chexpert.csv", [
        {"subject_id": 10000032, "study_id": 50414267, **label_row(Cardiomegaly=1, Pleural_Effusion=-1)},
        {"subject_id": 10000033, "study_id": 50000001, **label_row(No_Finding=1, Cardiomegaly=0)},
        {"subject_id": 11000001, "study_id": 51000001, **label_row(Edema=-1)},
    ])
    reports = (reports_root or root) / "files"
    for d, s, t, _, _ in MIMIC_IMAGES:
        write_jpg(root / "files" / f"p{str(s)[:2]}" / f"p{s}" / f"s{t}" / f"{d}.jpg", value=len(d) * 40)
        report = reports / f"p{str(s)[:2]}" / f"p{s}" / f"s{t}.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(REPORT)
    return root


@pytest.fixture()
def mimic(tmp_path):
    return make_mimic(tmp_path / "mimic")


def test_mimic_join_views_and_text(mimic):
    ds = open_dataset("mimic-cxr", mimic)
    assert [r["id"] for r in ds.records] == ["d1", "d3"]  # lateral d2 filtered, other splits excluded
    item = ds[0]
    assert item["subject_id"] == 10000032 and item["study_id"] == 50414267 and item["view"] == "PA"
    assert item["text"] == "Enlarged heart. Small left effusion. Cardiomegaly."
    assert item["image"].mode == "L" and item["image"].size == (16, 12)
    assert item["labels"].dtype == np.float32 and item["labels"][CARDIO] == 1
    assert list(ds.label_names) == list(CHEXPERT_LABELS)
    assert len(open_dataset("mimic-cxr", mimic, views="all")) == 3


def test_mimic_uncertainty_policies(mimic):
    for policy, expected in (("zeros", 0.0), ("ones", 1.0)):
        ds = open_dataset("mimic-cxr", mimic, uncertain=policy, images=False, text=False)
        assert ds.records[0]["labels"][EFFUSION] == expected
    labels = open_dataset("mimic-cxr", mimic, images=False, text=False).label_matrix()
    assert math.isnan(labels[0, EFFUSION]) and math.isnan(labels[0, NOFIND])  # -1 ignored, blank = not stated
    with pytest.raises(MedvlError, match="uncertain="):
        open_dataset("mimic-cxr", mimic, uncertain="maybe")


def test_mimic_val_split_and_unlabelled_study(mimic):
    ds = open_dataset("mimic-cxr", mimic, split="val", images=False, text=False)  # the split CSV's "validate"
    assert [r["id"] for r in ds.records] == ["d5"]
    assert np.isnan(ds.label_matrix()).all()
    assert len(open_dataset("mimic-cxr", mimic, split="all", views="all", images=False, text=False)) == 5
    with pytest.raises(MedvlError, match="unknown split 'validate'"):
        open_dataset("mimic-cxr", mimic, split="validate")


def test_mimic_text_only_without_images(mimic):
    ds = open_dataset("mimic-cxr", mimic, images=False)
    item = ds[1]
    assert "image" not in item and item["text"].endswith("Cardiomegaly.")


def test_mimic_separate_reports_root(tmp_path):
    root = make_mimic(tmp_path / "jpg", reports_root=tmp_path / "reports" / "mimic-cxr-reports")
    with pytest.raises(DataFormatError, match="reports"):
        open_dataset("mimic-cxr", root)
    ds = open_dataset("mimic-cxr", root, reports_root=tmp_path / "reports")
    assert ds[0]["text"].startswith("Enlarged heart.")


def test_mimic_missing_column_names_file_and_column(mimic):
    meta = mimic / "mimic-cxr-2.0.0-metadata.csv.gz"
    frame = pd.read_csv(meta).drop(columns=["ViewPosition"])
    meta.unlink()
    frame.to_csv(mimic / "mimic-cxr-2.0.0-metadata.csv", index=False)
    with pytest.raises(DataFormatError, match=r"mimic-cxr-2\.0\.0-metadata\.csv.*'ViewPosition'"):
        open_dataset("mimic-cxr", mimic)


def test_mimic_missing_label_column_and_bad_value(mimic):
    path = mimic / "mimic-cxr-2.0.0-chexpert.csv"
    frame = pd.read_csv(path)
    frame.drop(columns=["Edema"]).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"chexpert\.csv.*'Edema'"):
        open_dataset("mimic-cxr", mimic)
    frame.assign(Edema="yes").to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"chexpert\.csv.*'Edema'.*'yes'"):
        open_dataset("mimic-cxr", mimic)


def test_mimic_missing_file_names_it(mimic):
    (mimic / "mimic-cxr-2.0.0-split.csv").unlink()
    with pytest.raises(DataFormatError, match=r"mimic-cxr-2\.0\.0-split\.csv"):
        open_dataset("mimic-cxr", mimic)


def test_mimic_missing_image_raises_on_access(mimic):
    ds = open_dataset("mimic-cxr", mimic, text=False)
    (mimic / ds.records[0]["path"]).unlink()
    with pytest.raises(DataFormatError, match="d1.jpg"):
        ds[0]


# ------------------------------------------------------------------ chexpert

def chexpert_rows(prefix):
    return [
        {"Path": f"{prefix}train/patient00001/study1/view1_frontal.jpg", "Sex": "Female", "Age": 68,
         "Frontal/Lateral": "Frontal", "AP/PA": "AP", **label_row(Cardiomegaly=-1, Support_Devices=1)},
        {"Path": f"{prefix}train/patient00001/study1/view2_lateral.jpg", "Sex": "Female", "Age": 68,
         "Frontal/Lateral": "Lateral", "AP/PA": "", **label_row(Cardiomegaly=-1, Support_Devices=1)},
        {"Path": f"{prefix}train/patient00002/study1/view1_frontal.jpg", "Sex": "Male", "Age": 87,
         "Frontal/Lateral": "Frontal", "AP/PA": "PA", **label_row(No_Finding=1)},
    ]


@pytest.mark.parametrize("prefix", ["CheXpert-v1.0-small/", "CheXpert-v1.0/"])
def test_chexpert_paths_resolve_from_parent_or_home(tmp_path, prefix):
    home = tmp_path / prefix.rstrip("/")
    write_csv(home / "train.csv", chexpert_rows(prefix))
    for row in chexpert_rows(prefix):
        write_jpg(tmp_path / row["Path"])
    for root in (tmp_path, home):
        ds = open_dataset("chexpert", root, uncertain="ones")
        assert [r["patient_id"] for r in ds.records] == ["patient00001", "patient00002"]
        item = ds[0]
        assert item["view"] == "AP" and item["sex"] == "Female" and item["age"] == 68
        assert item["labels"][CARDIO] == 1 and item["labels"][DEVICES] == 1 and item["image"].size == (16, 12)
    assert len(open_dataset("chexpert", tmp_path, views="all")) == 3
    assert [r["view"] for r in open_dataset("chexpert", tmp_path, views="PA").records] == ["PA"]
    assert [r["view"] for r in open_dataset("chexpert", tmp_path, views="lateral").records] == ["LATERAL"]


def test_chexpert_valid_and_test_path_form(tmp_path):
    write_csv(tmp_path / "valid.csv", chexpert_rows("CheXpert-v1.0-small/valid/")[:1])
    write_csv(tmp_path / "test_labels.csv",
              [{"Path": "test/patient64741/study1/view1_frontal.jpg", **label_row(Cardiomegaly=1, Edema=0)}])
    write_jpg(tmp_path / "test/patient64741/study1/view1_frontal.jpg")
    assert len(open_dataset("chexpert", tmp_path, split="val", images=False)) == 1
    item = open_dataset("chexpert", tmp_path, split="test")[0]
    assert item["view"] == "FRONTAL" and item["labels"][CARDIO] == 1 and item["image"] is not None


def test_chexpert_study_form_ground_truth(tmp_path):
    study = "CheXpert-v1.0/test/patient64741/study1"
    write_csv(tmp_path / "groundtruth.csv", [{"Study": study, "Atelectasis": 0, "Cardiomegaly": 1, "Consolidation": 0,
                                              "Edema": 0, "Pleural Effusion": 1}])
    write_jpg(tmp_path / "test/patient64741/study1/view2_lateral.jpg", value=10)
    write_jpg(tmp_path / "test/patient64741/study1/view1_frontal.jpg", value=200)
    ds = open_dataset("chexpert", tmp_path, split="test")
    labels = ds.label_matrix()[0]
    assert labels[CARDIO] == 1 and labels[EFFUSION] == 1 and np.isnan(labels[NOFIND])  # absent columns -> NaN
    assert ds[0]["path"].endswith("view1_frontal.jpg") and ds[0]["image"].getpixel((0, 0)) == 200


def test_chexpert_missing_column_and_file(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "Pneumonia"} for row in chexpert_rows("CheXpert-v1.0-small/")]
    write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataFormatError, match=r"train\.csv.*'Pneumonia'"):
        open_dataset("chexpert", tmp_path, images=False)
    write_csv(tmp_path / "train.csv", [{"Image": "x.jpg", **label_row()}])
    with pytest.raises(DataFormatError, match=r"train\.csv.*'Path'"):
        open_dataset("chexpert", tmp_path, images=False)
    with pytest.raises(DataFormatError, match=r"valid\.csv"):
        open_dataset("chexpert", tmp_path, split="val")


# ------------------------------------------------------------------ padchest

PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"


def write_png16(path, peak=4000):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.linspace(0, peak, 20 * 20).reshape(20, 20)).astype(np.uint16)).save(path)


def make_padchest(root):
    rows = [
        ("a.png", 0, "p1", "PA", "['normal']"),
        ("b.png", 0, "p2", "AP_horizontal", "['cardiomegaly', 'NSG tube', ' costophrenic angle blunting']"),
        ("c.png", 1, "p3", "L", "['pneumothorax']"),
        ("missing.png", 1, "p4", "PA", "['nodule']"),
        ("broken.png", 1, "p5", "PA", ""),
    ]
    write_csv(root / PADCHEST_CSV, [{"ImageID": i, "ImageDir": d, "StudyDate_DICOM": 20140915, "PatientID": p,
                                     "Projection": v, "Labels": lab, "Report": "cardiomegali ."} for i, d, p, v, lab in rows])
    for name, folder in (("a.png", 0), ("b.png", 0), ("c.png", 1)):
        write_png16(root / str(folder) / name)
    (root / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def test_padchest_mapping_views_and_16bit_images(tmp_path):
    root = make_padchest(tmp_path)
    ds = open_dataset("padchest", root, split="all", images=False)
    assert [r["id"] for r in ds.records] == ["a.png", "b.png", "missing.png", "broken.png"]
    a, b, _, broken = ds.label_matrix()
    assert a[NOFIND] == 1 and np.nansum(a) == 1
    assert b[CARDIO] == 1 and b[DEVICES] == 1 and b[EFFUSION] == 1 and b[NOFIND] == 0
    assert np.isnan(broken).all()  # blank Labels -> not stated
    assert ds.records[1]["view"] == "AP" and ds.records[1]["projection"] == "AP_horizontal"
    assert ds.records[1]["padchest_labels"] == ["cardiomegaly", "NSG tube", "costophrenic angle blunting"]
    assert len(open_dataset("padchest", root, split="all", views="all", images=False)) == 5


def test_padchest_skips_unreadable_with_one_counted_warning(tmp_path):
    root = make_padchest(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset("padchest", root, split="all", verify=True)
    messages = [str(w.message) for w in caught if "padchest" in str(w.message)]
    assert len(messages) == 1 and "skipped 2 of 4" in messages[0]
    assert [r["id"] for r in ds.records] == ["a.png", "b.png"]
    pixels = np.asarray(ds[0]["image"])
    assert pixels.min() == 0 and pixels.max() == 255 and (pixels == 255).mean() < 0.1  # 16-bit scaled, not clipped
    with pytest.warns(UserWarning, match="skipped 1 of 4"):
        assert len(open_dataset("padchest", root, split="all")) == 3  # without verify only the missing file goes
    with pytest.raises(DataFormatError, match="none of the 4 images"):
        open_dataset("padchest", tmp_path / "1", csv=root / PADCHEST_CSV, split="all")


def test_padchest_csv_option_and_errors(tmp_path):
    root = make_padchest(tmp_path)
    moved = tmp_path / "labels.csv"
    (root / PADCHEST_CSV).rename(moved)
    assert len(open_dataset("padchest", root, split="all", csv=moved, images=False)) == 4
    with pytest.raises(DataFormatError, match=PADCHEST_CSV):
        open_dataset("padchest", root, split="all", images=False)
    pd.read_csv(moved).drop(columns=["Projection"]).to_csv(moved, index=False)
    with pytest.raises(DataFormatError, match=r"labels\.csv.*'Projection'"):
        open_dataset("padchest", root, csv=moved)
    with pytest.raises(DataFormatError, match="'Labels' row 3"):
        parse_label_list("['a', ", moved, 3)


def test_hash_split_is_a_deterministic_partition():
    keys = pd.Series([f"p{i}" for i in range(300)])
    masks = [hash_split(keys, s) for s in ("train", "val", "test")]
    assert (sum(m.astype(int) for m in masks) == 1).all() and 200 < masks[0].sum() < 270
    assert (hash_split(keys, "train") == masks[0]).all()


def test_normalize_views():
    assert normalize_views("all") is None
    assert normalize_views(("PA", "AP")) == {"PA", "AP", "FRONTAL"}
    assert normalize_views("lateral") >= {"LATERAL", "LL"}


# ------------------------------------------------------------------ vindr-cxr

VINDR_COLUMNS = ["Aortic enlargement", "Cardiomegaly", "Nodule/Mass", "Pleural effusion", "Rib fracture",
                 "Tuberculosis", "No finding"]


def vindr_row(image_id, rad_id=None, **positive):
    row = {"image_id": image_id, **({"rad_id": rad_id} if rad_id else {})}
    row.update({c: int(c in positive.values()) for c in VINDR_COLUMNS})
    return row


def make_vindr(root, in_annotations=True):
    folder = root / "annotations" if in_annotations else root
    write_csv(folder / "image_labels_train.csv", [
        vindr_row("img_a", "R8", x="No finding"), vindr_row("img_a", "R9", x="Cardiomegaly"),
        vindr_row("img_a", "R10", x="No finding"), vindr_row("img_b", "R1", x="Nodule/Mass", y="Rib fracture"),
    ])
    write_csv(folder / "image_labels_test.csv", [vindr_row("img_t", x="Pleural effusion")])
    ramp = np.tile(np.linspace(0, 4000, 24), (20, 1))
    write_dicom(root / "train" / "img_a.dicom", ramp)
    write_dicom(root / "train" / "img_b.dicom", ramp, photometric="MONOCHROME1")
    write_dicom(root / "test" / "img_t.dicom", ramp)
    return root


@pytest.mark.parametrize("in_annotations", [True, False])
def test_vindr_any_positive_aggregation_and_mapping(tmp_path, in_annotations):
    ds = open_dataset("vindr-cxr", make_vindr(tmp_path, in_annotations))
    assert [r["id"] for r in ds.records] == ["img_a", "img_b"]
    a, b = ds.records
    assert a["n_readers"] == 3 and a["rad_ids"] == ["R8", "R9", "R10"]
    assert a["labels"][CARDIO] == 1 and a["labels"][NOFIND] == 1  # any-positive per column
    lesion, fracture = CHEXPERT_LABELS.index("Lung Lesion"), CHEXPERT_LABELS.index("Fracture")
    assert b["labels"][lesion] == 1 and b["labels"][fracture] == 1 and b["labels"][CARDIO] == 0
    assert np.isnan(a["labels"][DEVICES])  # no VinDr counterpart
    assert ds.vindr_label_names == VINDR_COLUMNS and b["vindr_labels"][VINDR_COLUMNS.index("Rib fracture")] == 1


def test_vindr_dicom_decoding_and_monochrome1(tmp_path):
    ds = open_dataset("vindr-cxr", make_vindr(tmp_path))
    normal, inverted = (np.asarray(ds[i]["image"]) for i in range(2))
    assert normal.shape == (20, 24) and normal[0, 0] == 0 and normal[0, -1] == 255
    assert inverted[0, 0] == 255 and inverted[0, -1] == 0  # MONOCHROME1: high values are dark
    test = open_dataset("vindr-cxr", tmp_path, split="test")
    assert test.records[0]["n_readers"] == 1 and test.records[0]["labels"][EFFUSION] == 1


def test_vindr_errors(tmp_path):
    make_vindr(tmp_path)
    with pytest.raises(MedvlError, match="unknown split"):
        open_dataset("vindr-cxr", tmp_path, split="val")
    path = tmp_path / "annotations" / "image_labels_train.csv"
    pd.read_csv(path).rename(columns={"image_id": "image"}).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"image_labels_train\.csv.*'image_id'"):
        open_dataset("vindr-cxr", tmp_path)
    path.unlink()
    with pytest.raises(DataFormatError, match=r"image_labels_train\.csv"):
        open_dataset("vindr-cxr", tmp_path)


def test_padchest_labelled_by_and_native_labels(tmp_path):
    from medvl_core.data.cxr import native_labels

    root = make_padchest(tmp_path)
    with pytest.raises(DataFormatError, match="needs the column 'MethodLabel'"):
        open_dataset("padchest", root, split="all", images=False, labelled_by="physician")
    table = pd.read_csv(root / PADCHEST_CSV).assign(MethodLabel=["Physician", "RNN_model", "Physician", "Physician",
                                                                 "RNN_model"])
    table.to_csv(root / PADCHEST_CSV, index=False)
    ds = open_dataset("padchest", root, split="all", images=False, labelled_by="physician")
    assert [r["id"] for r in ds.records] == ["a.png", "missing.png"]  # c.png is lateral
    assert native_labels(ds, ["Nodule", "normal", "goiter"]).tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(MedvlError, match="labelled_by='radiologist' matches no MethodLabel"):
        open_dataset("padchest", root, split="all", images=False, labelled_by="radiologist")


def test_vindr_native_labels_match_plural_columns_and_name_unknown_ones(tmp_path):
    from medvl_core.data.cxr import native_labels

    ds = open_dataset("vindr-cxr", make_vindr(tmp_path), images=False)
    assert native_labels(ds, ["cardiomegaly", "nodule/mass", "Tuberculosis"]).tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(DataFormatError, match="'ild'.*not in the label CSV"):
        native_labels(ds, ["ILD"])
