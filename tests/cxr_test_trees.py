"""Toy Open-i, PadChest and VinDr-CXR trees in their official layouts, for the loss relaxation paper's test sets.

Open-i: NLM XML reports (ecgen-radiology/) of the first bundled real reports + PNG images (NLMCXR_png/) under
their real image ids, so the bundled view tables mark them frontal. PadChest: the 160K label CSV (with
MethodLabel) + 16-bit PNGs in numbered folders. VinDr-CXR: annotations/image_labels_test.csv (one row per
radiologist) + test/*.dicom.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from PIL import Image

from medvl_core.data.openi import bundled_image_views, bundled_openi_reports
from medvl_core.data.padchest import PADCHEST_CSV

OPENI_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="{uid}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="FINDINGS">{findings}</AbstractText><AbstractText Label="IMPRESSION">{impression}</AbstractText>
</Abstract></Article></MedlineCitation><MeSH><major>normal</major></MeSH>{images}</eCitation>
"""


def write_open_i(root, n_reports=30):
    """`root/ecgen-radiology/*.xml` for the first `n_reports` bundled reports with a frontal image + their PNGs."""
    views = bundled_image_views()
    (root / "ecgen-radiology").mkdir(parents=True)
    (root / "NLMCXR_png").mkdir()
    frontal = [r for r in bundled_openi_reports() if any(views.get(i) in ("PA", "AP") for i in r["image_ids"])]
    rng = np.random.default_rng(0)
    for report in _with_competition_positives(frontal, n_reports):
        images = "".join(f'<parentImage id="{i}"><caption>x</caption></parentImage>' for i in report["image_ids"])
        (root / "ecgen-radiology" / f"{report['uid'][3:]}.xml").write_text(OPENI_XML.format(
            uid=report["uid"], findings=escape(report["findings"]), impression=escape(report["impression"]), images=images))
        for image_id in report["image_ids"]:
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(root / "NLMCXR_png" / f"{image_id}.png")
    return root


def _with_competition_positives(reports, n):
    """`n` reports, the first ones chosen so that each of CheXpert's five competition labels has 3 positives."""
    from medvl_core.data.labels import CHEXPERT_LABELS
    from medvl_core.data.openi import report_text
    from medvl_core.text.labeler import label_reports

    labels = label_reports([report_text(r) for r in reports])
    picked = []
    for name in ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"):
        picked += [i for i in np.flatnonzero(labels[:, CHEXPERT_LABELS.index(name)] == 1) if i not in picked][:3]
    picked += [i for i in range(len(reports)) if i not in picked][: n - len(picked)]
    return [reports[i] for i in sorted(picked)]


def write_padchest(root, n_images=130, seed=0):
    """A PadChest label CSV (physician rows + 3 RNN-labelled ones) and 16-bit PNGs: 'cardiomegaly' and 'nodule'
    have more than 100 positives among the physician rows, 'pacemaker' 5, other Table 9 terms none."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images + 3):
        terms = ["cardiomegaly"] * (i < 110) + ["nodule"] * (i % 6 != 0) + ["pacemaker"] * (i < 5) or ["normal"]
        rows.append({"ImageID": f"im{i:04d}.png", "ImageDir": i % 2, "PatientID": f"p{i}", "Projection": "PA",
                     "MethodLabel": "Physician" if i < n_images else "RNN_model", "Labels": str(terms)})
        folder = root / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 4000, (32, 32)).astype(np.uint16)).save(folder / rows[-1]["ImageID"])
    pd.DataFrame(rows).to_csv(root / PADCHEST_CSV, index=False)
    return root


def write_dicom(path, pixels, photometric="MONOCHROME2"):
    """A minimal 12-bit DICOM file (MONOCHROME2 unless `photometric`)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


VINDR_COLUMNS = ["Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture",
                 "Consolidation", "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity",
                 "Lung cavity", "Lung cyst", "Mediastinal shift", "Nodule/Mass", "Pleural effusion",
                 "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD",
                 "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding"]  # the 28 of the test CSV


def write_vindr(root, n_images=30, seed=0):
    """VinDr-CXR's test labels (two readers per image; any-positive): 'Cardiomegaly' 25 positives, 'ILD' 3."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        positive = {"Cardiomegaly": i < 25, "ILD": i < 3, "Nodule/Mass": i % 2 == 0}
        for reader in ("R1", "R2"):
            rows.append({"image_id": f"v{i:03d}", "rad_id": reader,
                         **{c: int(positive.get(c, False) and reader == "R1") for c in VINDR_COLUMNS}})
        write_dicom(root / "test" / f"v{i:03d}.dicom", rng.integers(0, 4000, (32, 32)))
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "annotations" / "image_labels_test.csv", index=False)
    return root


def write_paper_test_sets(data_root):
    """$MEDVL_DATA/open-i, /padchest and /vindr-cxr."""
    write_open_i(data_root / "open-i")
    write_padchest(data_root / "padchest")
    write_vindr(data_root / "vindr-cxr")
    return data_root


def tiny_open_clip(folder, image_size=32):
    """A 2-layer ViT CLIP (patch 16, width 64) saved in open_clip's hub layout: open_clip_config.json (model_cfg +
    preprocess_cfg, OpenAI normalisation) + open_clip_model.safetensors, as `open_clip:hf-hub:` repos ship."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    model_cfg = {"embed_dim": 32, "vision_cfg": {"image_size": image_size, "layers": 2, "width": 64, "head_width": 32,
                                                  "patch_size": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    preprocess_cfg = {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    torch.manual_seed(0)
    model = open_clip.CLIP(**model_cfg)
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


MIMIC_REPORT = "FINAL REPORT\n\n FINDINGS:\n Heart size is normal. Lungs are clear.\n\n IMPRESSION:\n No acute process.\n"


def radiograph(shape, seed):
    """A smooth grayscale array (bright mediastinum, darker lungs, a rib-like ripple) of `shape` (height, width)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    body = 170 - 90 * np.exp(-(((x - 0.3) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    body -= 90 * np.exp(-(((x - 0.7) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    ripple = 12 * np.sin(2 * np.pi * (y * 9 + seed * 0.37))
    return np.clip(body + ripple + 40 * x * (seed % 3), 0, 255).astype(np.uint8)


def write_mimic_jpg(root, n_studies=6, shape=(300, 240), quality=90):
    """A MIMIC-CXR-JPG tree: two images per study (PA + LATERAL) of `shape`, reports, metadata / split / CheXpert
    CSVs (studies cycle through train, validate, test); the first study's labels say Cardiomegaly 1, Edema -1."""
    from medvl_core.data.labels import CHEXPERT_LABELS

    meta, splits, labels = [], [], []
    for study in range(n_studies):
        subject, study_id = 10000000 + study, 50000000 + study
        folder = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study_id}"
        folder.mkdir(parents=True)
        for view in ("PA", "LATERAL"):
            dicom = f"{study:03d}{view.lower()}"
            Image.fromarray(radiograph(shape, study * 2 + (view == "PA"))).save(folder / f"{dicom}.jpg", quality=quality)
            meta.append({"dicom_id": dicom, "subject_id": subject, "study_id": study_id, "ViewPosition": view})
            splits.append({"dicom_id": dicom, "study_id": study_id, "subject_id": subject,
                           "split": ("train", "validate", "test")[study % 3]})
        (folder.parent / f"s{study_id}.txt").write_text(MIMIC_REPORT)
        row = {name: ("" if study else {"Cardiomegaly": 1, "Edema": -1}.get(name, "")) for name in CHEXPERT_LABELS}
        labels.append({"subject_id": subject, "study_id": study_id, **row})
    pd.DataFrame(meta).to_csv(root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    pd.DataFrame(splits).to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    pd.DataFrame(labels).to_csv(root / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    return root
