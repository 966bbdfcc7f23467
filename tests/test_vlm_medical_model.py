"""vlm_feature_probing's medical model (a CNN trained on SynthCXR pixels against reports), cached by its settings,
and the factor silhouettes / subtype probes the notebook shows."""

import numpy as np
import pytest
import torch
from PIL import Image

from medvl_core.config import seed_everything
from medvl_core.data.base import RecordDataset
from medvl_core.models.dual_encoder import load_dual_encoder
from medvl_core.models.encoders import build_image_encoder
from medvl_core.studies import vlm_feature_probing as study
from medvl_core.studies.vlm_feature_probing import medical_vlm

TINY = dict(image_encoder="tiny:cnn-32", text_encoder="tiny:text-32", image_size=32, epochs=2, global_batch_size=16,
            embed_dim=32)
WORLD = dict(n_studies=60, n_test_images=20, n_valid_images=80, image_size=32, report_source="template")


def test_medical_model_is_trained_on_pixels_and_cached_by_settings(data_root, monkeypatch):
    path = study.train_medical_vlm(seed=0, world=WORLD, **TINY)
    assert path == medical_vlm.model_dir(0, WORLD, **TINY) and path.is_relative_to(data_root / "cache")
    model = load_dual_encoder(path)
    seed_everything(0)
    initial = build_image_encoder("tiny:cnn-32", image_size=32).state_dict()
    trained = model.visual.state_dict()
    changed = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert any("body.0.weight" in k for k in changed)  # the first conv layer moved: trained end to end on pixels
    monkeypatch.setattr(medical_vlm, "fit_pixel_model", lambda *a, **k: pytest.fail("retrained a cached model"))
    assert study.train_medical_vlm(seed=0, world=WORLD, **TINY) == path  # reused
    assert medical_vlm.model_dir(1, WORLD, **TINY) != path and medical_vlm.model_dir(0, WORLD, **{**TINY, "epochs": 3}) != path
    assert "trained on SynthCXR pixels" in study.medical_vlm_label() and "tiny:cnn" in study.medical_vlm_label()


def test_pixel_report_pairs_follow_the_epoch():
    class Pixels:
        def __init__(self):
            self.epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"image": torch.full((3, 4, 4), float(self.epoch * 10 + i))}

    pairs = medical_vlm.PixelReportPairs(Pixels(), lambda epoch: torch.arange(3.0)[:, None] + 100 * epoch)
    pairs.set_epoch(2)
    item = pairs[1]
    assert set(item) == {"images", "text_features"} and item["images"][0, 0, 0] == 21 and item["text_features"][0] == 201


def test_factor_silhouettes_say_which_factor_the_features_follow():
    rng = np.random.default_rng(0)
    plane = np.array(["axial", "coronal", "sagittal"])[np.arange(90) % 3]
    lesion = np.array(["a", "b"])[rng.integers(0, 2, 90)]
    x = rng.normal(size=(90, 6)) + 6 * np.eye(6)[np.arange(90) % 3]  # clusters by plane only
    data = {"mr": RecordDataset([{"plane": p, "class_name": c} for p, c in zip(plane, lesion)])}
    frame = study.factor_silhouettes({("enc", "mr"): (x, lesion)}, data, {"mr": ["plane", "class_name"]})
    score = frame.set_index("factor")["silhouette"]
    assert score["plane"] > 0.5 and abs(score["class_name"]) < 0.1 and list(frame["levels"]) == [3, 2]


def test_pixel_features_are_flat_grey_pixels():
    images = [Image.new("RGB", (48, 48), (v, v, v)) for v in (0, 255)]
    x = study.pixel_features(RecordDataset([{"image": im} for im in images]), size=8)
    assert x.shape == (2, 64) and x[0].max() == 0 and x[1].min() == pytest.approx(1.0)


def test_subtypes_are_probed_within_each_class_and_give_evidence():
    rng = np.random.default_rng(1)
    subtypes = {"benign": ["b0", "b1"], "malignant": ["m0", "m1"]}
    cls = np.array(["benign", "malignant"])[np.arange(120) % 2]
    sub = np.array([subtypes[c][(i // 2) % 2] for i, c in enumerate(cls)])
    codes = {s: k for k, s in enumerate(["b0", "b1", "m0", "m1"])}
    x = rng.normal(size=(120, 4)) + 5 * np.eye(4)[[codes[s] for s in sub]]
    data = {"histology": RecordDataset([{"subtype": s} for s in sub])}
    data["histology"].confounders = []
    frame = study.subclass_results({("med", "histology"): (x, cls)}, data)
    assert list(frame["parent"]) == ["benign", "malignant"] and (frame["lift over chance"] > 0.3).all()
    results = study.probe_results({("med", "histology"): (x, cls)}, progress=False)
    ev = study.claim_evidence({("med", "histology"): (x, cls)}, data, {"medical": "med"}, results, None, frame)
    assert ev["majority_subtype"].point() == pytest.approx(0.5, abs=0.05)
    assert ev["oof_subtype_accuracy_medical"].point() > 0.9
    assert ev["oof_subtype_accuracy_medical"].n_items == sum(len(f.cv_true) for f in study.fitted_probes(frame).values())
