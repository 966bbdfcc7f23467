"""Small copies of the feature-probing poster's eight datasets in their public layouts (data_cards/), random pixels.

`write_probe_trees(root, per_class)` writes each under root/<name>/ as its download unpacks: class folders (BrainMR,
SARS-CoV-2 CT, BUSI with masks beside the images), BreaKHis' SOB/<subtype>/<patient>/<mag>X tree, HiCervix' CSVs +
split folders, DeepDRiD's regular-fundus CSV + Images/<patient>/, ISIC 2019's one-hot ground truth + metadata CSVs,
and PneumoniaMNIST's .npz under medmnist/. Returns {name: number of images the loader should see}.
"""

import numpy as np
import pandas as pd
from PIL import Image

RNG = np.random.default_rng(0)


def _image(path, mode="RGB", size=24):
    """A random image at `path` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(RNG.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


def brain_mr(root, k):
    for split in ("Training", "Testing"):
        for cls in ("glioma", "meningioma", "notumor", "pituitary"):
            for i in range(k):
                _image(root / split / cls / f"Tr-{cls[:2]}_{i:04d}.jpg", "L")
    return 4 * k


def sars_cov_2_ct(root, k):
    for cls in ("COVID", "non-COVID"):
        for i in range(k):
            _image(root / cls / f"{cls} ({i + 1}).png")
    return 2 * k


def breast_us(root, k):
    for cls in ("benign", "malignant", "normal"):
        for i in range(k):
            _image(root / "Dataset_BUSI_with_GT" / cls / f"{cls} ({i + 1}).png", "L")
            _image(root / "Dataset_BUSI_with_GT" / cls / f"{cls} ({i + 1})_mask.png", "L")
        _image(root / "Dataset_BUSI_with_GT" / cls / f"{cls} (1)_mask_1.png", "L")
    return 3 * k


def breakhis(root, k):
    base, n = root / "BreaKHis_v1" / "histology_slides" / "breast", 0
    for c, (cls, subtype, code) in enumerate((("benign", "adenosis", "A"), ("malignant", "ductal_carcinoma", "DC"))):
        for patient in (f"14-2254{c}AB", f"14-9133{c}"):
            folder = base / cls / "SOB" / subtype / f"SOB_{cls[0].upper()}_{code}_{patient}"
            for mag in (40, 400):
                for i in range(max(1, k // 2)):
                    _image(folder / f"{mag}X" / f"SOB_{cls[0].upper()}_{code}-{patient}-{mag}-{i + 1:03d}.png")
                    n += 1
    return n


HICERVIX = [("NILM", "negative"), ("ASC-US", "ASC"), ("HSIL", "ASC"), ("AGC-NOS", "AGC"), ("Candida", "microbe"),
            ("Trichomonas", "microbe")]


def hicervix(root, k):
    for split in ("train", "val", "test"):
        rows = []
        for cls_id, (cls, level1) in enumerate(HICERVIX):
            for i in range(k):
                name = f"{split}_{cls_id}_{i}.jpg"
                _image(root / split / name)
                rows.append({"image_name": name, "class_name": cls, "class_id": cls_id, "level_1": level1,
                             "level_2": cls, "level_3": ""})
        pd.DataFrame(rows).to_csv(root / f"{split}.csv", index=False)
    return len(HICERVIX) * k


def deepdr(root, k):
    folder, rows = root / "regular_fundus_images" / "regular-fundus-training", []
    for patient in range(k):
        pid = 100 + patient
        for eye in ("l", "r"):
            for shot in (1, 2):
                image_id = f"{pid}_{eye}{shot}"
                _image(folder / "Images" / str(pid) / f"{image_id}.jpg")
                grade = (patient + (eye == "r")) % 5
                rows.append({"patient_id": pid, "image_id": image_id, "image_path": f"Images/{pid}/{image_id}.jpg",
                             "left_eye_DR_Level": grade if eye == "l" else None,
                             "right_eye_DR_Level": grade if eye == "r" else None, "patient_DR_Level": grade})
    pd.DataFrame(rows).to_csv(folder / "regular-fundus-training.csv", index=False)
    return 4 * k


def isic2019(root, k):
    classes, truth, meta = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"], [], []
    for c, cls in enumerate(classes[:8]):  # UNK has no training image, as in the release
        for i in range(k):
            image = f"ISIC_{c:02d}{i:05d}"
            _image(root / "ISIC_2019_Training_Input" / f"{image}.jpg")
            truth.append({"image": image, **{name: float(name == cls) for name in classes}})
            meta.append({"image": image, "age_approx": 50, "anatom_site_general": "torso",
                         "lesion_id": f"BCN_{c:02d}{i // 3:04d}" if i % 3 else None, "sex": "male"})
    pd.DataFrame(truth).to_csv(root / "ISIC_2019_Training_GroundTruth.csv", index=False)
    pd.DataFrame(meta).to_csv(root / "ISIC_2019_Training_Metadata.csv", index=False)
    return 8 * k


def pneumoniamnist(root, k):
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = RNG.integers(0, 255, (2 * k, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(2 * k) % 2).reshape(-1, 1).astype(np.uint8)
    (root.parent / "medmnist").mkdir(parents=True, exist_ok=True)
    np.savez(root.parent / "medmnist" / "pneumoniamnist.npz", **arrays)
    return 2 * k


WRITERS = {"brain-mr": brain_mr, "sars-cov-2-ct": sars_cov_2_ct, "pneumoniamnist": pneumoniamnist,
           "breast-us": breast_us, "breakhis": breakhis, "hicervix": hicervix, "deepdr": deepdr, "isic2019": isic2019}


def write_probe_trees(root, per_class=5):
    """All eight trees under root; {name: expected number of images (default split)}."""
    return {name: write(root / name, per_class) for name, write in WRITERS.items()}
