"""open-i: NLM XML reports (folder or .tgz), the Kaggle CSV form, the MeSH mapping, and the bundled archive."""

import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medvl_core.data import open_dataset
from medvl_core.data.labels import CHEXPERT_LABELS
from medvl_core.data.openi import bundled_openi_reports, read_openi_xml
from medvl_core.data.openi_mesh import mesh_labels, mesh_term_labels, mesh_to_labels
from medvl_core.errors import DataFormatError

CARDIO = CHEXPERT_LABELS.index("Cardiomegaly")
EFFUSION = CHEXPERT_LABELS.index("Pleural Effusion")
NOFIND = CHEXPERT_LABELS.index("No Finding")


def positives(vector) -> set[str]:
    """Names where a 14-vector is 1."""
    return {CHEXPERT_LABELS[i] for i in np.flatnonzero(np.asarray(vector) == 1)}


XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation>
   <uId id="{uid}"/>
   <MedlineCitation><Article><Abstract>
      <AbstractText Label="COMPARISON">None.</AbstractText>
      <AbstractText Label="INDICATION">Chest pain</AbstractText>
      {findings}
      <AbstractText Label="IMPRESSION">{impression}</AbstractText>
   </Abstract></Article></MedlineCitation>
   <MeSH>{mesh}</MeSH>
   {images}
</eCitation>
"""
# Real image ids of the collection, so the bundled view table knows CXR2_IM-0652-1001 is PA.
REPORTS = [
    ("CXR2", '<AbstractText Label="FINDINGS">Borderline   heart\n size.</AbstractText>', "Mild cardiomegaly.",
     "<major>Cardiomegaly/borderline</major><automatic>cardiomegaly</automatic>", ["CXR2_IM-0652-1001", "CXR2_IM-0652-2001"]),
    ("CXR1", '<AbstractText Label="FINDINGS"/>', "Normal chest.", "<major>normal</major>",
     ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]),
    ("CXR10", "", "Blunted left angle.", "<major>Costophrenic Angle/left/blunted</major>", ["CXR10_IM-0002-1001"]),
]


def xml_text(uid, findings, impression, mesh, images):
    parents = "".join(f'<parentImage id="{i}"><caption>PA and lateral</caption></parentImage>' for i in images)
    return XML.format(uid=uid, findings=findings, impression=impression, mesh=mesh, images=parents)


@pytest.fixture()
def xml_root(tmp_path):
    folder = tmp_path / "ecgen-radiology"
    folder.mkdir()
    for report in REPORTS:
        (folder / f"{report[0][3:]}.xml").write_text(xml_text(*report))
    for ids in (r[4] for r in REPORTS):
        for index, image_id in enumerate(ids):
            (tmp_path / "NLMCXR_png").mkdir(exist_ok=True)
            Image.new("L", (10, 8), 50 + index).save(tmp_path / "NLMCXR_png" / f"{image_id}.png")
    return tmp_path


def test_read_xml_folder_and_tgz_agree(xml_root):
    from_folder = read_openi_xml(xml_root / "ecgen-radiology")
    archive = xml_root / "reports.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(xml_root / "ecgen-radiology", arcname="ecgen-radiology")
    assert read_openi_xml(archive) == from_folder
    assert [r["uid"] for r in from_folder] == ["CXR1", "CXR2", "CXR10"]  # numeric order
    cxr2 = from_folder[1]
    assert cxr2["findings"] == "Borderline heart size." and cxr2["impression"] == "Mild cardiomegaly."
    assert cxr2["indication"] == "Chest pain" and cxr2["comparison"] == "None."
    assert cxr2["mesh_major"] == ["Cardiomegaly/borderline"] and cxr2["mesh_automatic"] == ["cardiomegaly"]
    assert cxr2["image_ids"] == ["CXR2_IM-0652-1001", "CXR2_IM-0652-2001"]
    assert from_folder[0]["findings"] == "" and from_folder[2]["findings"] == ""


def test_xml_dataset_reports_images_and_labels(xml_root):
    ds = open_dataset("open-i", xml_root, split="all", views="all")
    assert [r["id"] for r in ds.records] == ["CXR1", "CXR2", "CXR10"]
    item = ds[1]
    assert item["text"] == "Borderline heart size. Mild cardiomegaly."
    assert item["image_id"] == "CXR2_IM-0652-1001" and item["image"].size == (10, 8)
    labels = ds.label_matrix()
    assert labels[0, NOFIND] == 1 and labels[1, CARDIO] == 1 and labels[2, EFFUSION] == 1 and labels[2, NOFIND] == 0
    frontal = open_dataset("open-i", xml_root, split="all")  # default: frontal views known from the bundled table
    assert [r["image_id"] for r in frontal.records] == ["CXR2_IM-0652-1001"]
    per_image = open_dataset("open-i", xml_root, split="all", views="all", unit="image")
    assert len(per_image) == 5 and per_image.records[0]["uid"] == "CXR1"


def test_xml_text_only_and_tgz_at_root(xml_root, tmp_path):
    with tarfile.open(tmp_path / "NLMCXR_reports.tgz", "w:gz") as tar:
        tar.add(xml_root / "ecgen-radiology", arcname="ecgen-radiology")
    only_tgz = tmp_path / "only"
    only_tgz.mkdir()
    (tmp_path / "NLMCXR_reports.tgz").rename(only_tgz / "NLMCXR_reports.tgz")
    ds = open_dataset("open-i", only_tgz, split="all", images=False)
    assert len(ds) == 3 and "image" not in ds[0] and ds[0]["text"] == "Normal chest."
    assert open_dataset("open-i", only_tgz, split="all", images=False, sections=("impression",))[1]["text"] == "Mild cardiomegaly."


def test_kaggle_csv_form(tmp_path):
    pd.DataFrame([
        {"uid": 1, "MeSH": "normal", "Problems": "normal", "image": "Xray Chest PA and Lateral",
         "indication": "Positive TB test", "comparison": "None.", "findings": "The heart is normal.",
         "impression": "Normal chest x-XXXX."},
        {"uid": 2, "MeSH": "Cardiomegaly/borderline;Pulmonary Artery/enlarged", "Problems": "Cardiomegaly",
         "image": "", "indication": "", "comparison": "", "findings": "", "impression": "Borderline cardiomegaly."},
    ]).to_csv(tmp_path / "indiana_reports.csv", index=False)
    pd.DataFrame([
        {"uid": 1, "filename": "1_IM-0001-4001.dcm.png", "projection": "Frontal"},
        {"uid": 1, "filename": "1_IM-0001-3001.dcm.png", "projection": "Lateral"},
        {"uid": 2, "filename": "2_IM-0652-1001.dcm.png", "projection": "Frontal"},
    ]).to_csv(tmp_path / "indiana_projections.csv", index=False)
    folder = tmp_path / "images" / "images_normalized"
    folder.mkdir(parents=True)
    for name in ("1_IM-0001-4001.dcm.png", "1_IM-0001-3001.dcm.png", "2_IM-0652-1001.dcm.png"):
        Image.new("RGB", (6, 6), (90, 90, 90)).save(folder / name)
    ds = open_dataset("open-i", tmp_path, split="all")
    assert [r["image_id"] for r in ds.records] == ["CXR1_IM-0001-4001", "CXR2_IM-0652-1001"]
    item = ds[0]
    assert item["id"] == "CXR1" and item["view"] == "FRONTAL" and item["image"].mode == "L"
    assert item["text"] == "The heart is normal. Normal chest x-XXXX." and item["indication"] == "Positive TB test"
    assert ds[1]["text"] == "Borderline cardiomegaly." and ds[1]["labels"][CARDIO] == 1
    assert len(open_dataset("open-i", tmp_path, split="all", views="lateral", unit="image")) == 1
    pd.read_csv(tmp_path / "indiana_projections.csv").drop(columns=["projection"]).to_csv(
        tmp_path / "indiana_projections.csv", index=False)
    with pytest.raises(DataFormatError, match=r"indiana_projections\.csv.*'projection'"):
        open_dataset("open-i", tmp_path, split="all")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataFormatError, match="indiana_reports.csv"):
        open_dataset("open-i", tmp_path)
    bad = tmp_path / "ecgen-radiology"
    bad.mkdir()
    (bad / "1.xml").write_text("<eCitation><uId id='CXR1'/>")
    with pytest.raises(DataFormatError, match="1.xml"):
        open_dataset("open-i", tmp_path, images=False)
    (bad / "1.xml").write_text(xml_text(*REPORTS[0]))
    with pytest.raises(DataFormatError, match="CXR2_IM-0652-1001.png"):
        open_dataset("open-i", tmp_path, split="all", views="all")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("Cardiomegaly/mild", ("Cardiomegaly",)),
        ("Cardiac Shadow/enlarged/severe", ("Cardiomegaly",)),
        ("Cardiac Shadow/borderline", ()),
        ("Pulmonary Atelectasis/base/left", ("Atelectasis",)),
        ("Pleural Effusion/bilateral/small", ("Pleural Effusion",)),
        ("Costophrenic Angle/right/blunted", ("Pleural Effusion",)),
        ("Opacity/lung/base/left", ("Lung Opacity",)),
        ("Density/lung/upper lobe/right/round", ("Lung Opacity", "Lung Lesion")),
        ("Nodule/lung/lingula", ("Lung Lesion",)),
        ("Mass/breast/large", ()),
        ("Cicatrix/lung/apex/bilateral", ("Lung Opacity",)),
        ("Cicatrix/pleura/right", ("Pleural Other",)),
        ("Thickening/pleura/apex", ("Pleural Other",)),
        ("Mediastinum/prominent", ("Enlarged Cardiomediastinum",)),
        ("Pulmonary Congestion", ("Edema",)),
        ("Hydropneumothorax/right", ("Pneumothorax", "Pleural Effusion")),
        ("Fractures, Bone/ribs/left/healed", ("Fracture",)),
        ("Catheters, Indwelling/right", ("Support Devices",)),
        ("Surgical Instruments/mediastinum", ("Support Devices",)),
        ("Pulmonary Fibrosis/base/bilateral", ("Lung Opacity",)),
        ("Heart Failure", ("Edema",)),
        ("Volume Loss/lung/left", ("Atelectasis",)),
        ("Calcified Granuloma/lung/base/right", ()),
        ("Thoracic Vertebrae/degenerative", ()),
        ("normal", ("No Finding",)),
    ],
)
def test_mesh_term_mapping(term, expected):
    assert mesh_term_labels(term) == expected


def test_mesh_to_labels_report_level():
    assert positives(mesh_to_labels(["normal"])) == {"No Finding"}
    assert positives(mesh_to_labels(["Catheters, Indwelling/left"])) == {"No Finding", "Support Devices"}
    assert positives(mesh_to_labels(["Cardiomegaly/mild", "Pleural Effusion/left"])) == {"Cardiomegaly", "Pleural Effusion"}
    # an unmapped abnormality is not normal: No Finding stays 0
    assert positives(mesh_to_labels(["Calcified Granuloma/lung"])) == set()
    assert np.isnan(mesh_to_labels(["No Indexing"])).all() and np.isnan(mesh_to_labels([])).all()


def test_mesh_labels_matrix():
    lists = [["normal"], ["No Indexing"], ["Calcified Granuloma/lung"], ["Catheters, Indwelling/right"]]
    labels = mesh_labels(lists)
    assert labels.shape == (4, 14) and labels.dtype == np.float32
    assert np.array_equal(labels, np.stack([mesh_to_labels(m) for m in lists]), equal_nan=True)
    assert mesh_labels([]).shape == (0, 14)


def test_bundled_archive_counts():
    reports = bundled_openi_reports()
    assert len(reports) == 3955
    assert sum(bool(r["findings"]) for r in reports) == 3425
    assert sum(bool(r["impression"]) for r in reports) == 3921
    assert sum(len(r["image_ids"]) for r in reports) == 7470
    reports[0]["mesh_major"].append("mutated")
    assert "mutated" not in bundled_openi_reports()[0]["mesh_major"]  # callers get copies


def test_bundled_text_only_dataset_splits():
    sizes = [len(open_dataset("open-i", "/nonexistent", split=s, images=False, reports="bundled"))
             for s in ("train", "val", "test")]
    assert sum(sizes) == 3955 and sizes[0] > 3000
