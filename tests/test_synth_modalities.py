"""synth-modalities: determinism, layout, class structure per dataset, confounder strengths, loader items, knobs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medvl_core.data import open_dataset
from medvl_core.errors import MedvlError
from medvl_core.worlds import synth_modalities as M
from medvl_core.worlds.synth_modalities_draw import Scene
from medvl_core.worlds.synth_modalities_render import RENDERERS

TINY = {"n_images": 12, "image_size": 32}
CLEAN = {"n_images": 96, "image_size": 48, "confounder_strength": 0.0}  # class signal without correlated confounders


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory):
    """A world whose confounders are independent of the classes."""
    return M.generate_synth_modalities(tmp_path_factory.mktemp("sm") / "clean", **CLEAN)


def _hashes(root):
    """sha256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _images(root, name):
    """(float images in [0, 1], class names) of every image of one dataset."""
    ds = open_dataset("synth-modalities", root=root, split="all", dataset=name, **CLEAN)
    x = np.stack([np.asarray(ds[i]["image"], dtype=np.float32) / 255 for i in range(len(ds))])
    return x, np.array([r["class_name"] for r in ds.records])


def _auc(stat, cls, positive, negative):
    """AUROC of `stat` for positive vs negative class."""
    keep = np.isin(cls, [positive, negative])
    return roc_auc_score(cls[keep] == positive, stat[keep])


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = M.generate_synth_modalities(tmp_path / "a", **TINY)
    b = M.generate_synth_modalities(tmp_path / "b", **TINY)
    ha = _hashes(a)
    images = sum(M.ModalityParams(**TINY).size(name) for name in M.NAMES)
    assert ha == _hashes(b) and len(ha) == images + 8 + 1  # images, a metadata.csv each, world.json
    assert _hashes(M.generate_synth_modalities(tmp_path / "c", **TINY, seed=1)) != ha
    world = json.loads((a / "world.json").read_text())
    assert world["format_version"] == M.FORMAT_VERSION and world["params"]["n_images"] == 12
    assert set(world["datasets"]) == set(M.SYNTH_MODALITIES) and not list(tmp_path.glob(".*partial*"))


POSTER_CLASSES = {"xray": 2, "ct": 2, "mr": 4, "ultrasound": 3, "histology": 2, "cytology": 29, "fundus": 5,
                  "dermoscopy": 9}  # the class counts of the poster's datasets


def test_layout_metadata_and_group_disjoint_splits(clean_root):
    params = M.ModalityParams(**CLEAN)
    for name, spec in M.SYNTH_MODALITIES.items():
        assert list(spec.classes) == sorted(spec.classes) and len(spec.classes) == POSTER_CLASSES[name]
        meta = M.read_metadata(clean_root, name)
        n = params.size(name)
        assert list(meta.columns) == M.metadata_columns(name) and len(meta) == n >= 12 * len(spec.classes)
        assert all((clean_root / name / p).is_file() for p in meta["path"])
        sizes = meta.groupby("class").size()
        assert len(sizes) == len(spec.classes) and sizes.max() - sizes.min() <= 1
        assert meta.groupby(spec.group)["split"].nunique().max() == 1  # no patient/slide in two splits
        assert meta.groupby(spec.group)["class"].nunique().max() == 1
        assert set(meta.groupby("split")["class"].nunique()) == {len(spec.classes)}


def test_each_dataset_has_visual_class_structure(clean_root):
    x, c = _images(clean_root, "xray")
    n = x.shape[1]
    lungs = np.zeros((n, n), bool)
    lungs[n // 4:int(0.7 * n), int(0.12 * n):int(0.38 * n)] = lungs[n // 4:int(0.7 * n), int(0.62 * n):int(0.88 * n)] = True
    assert _auc(x[:, lungs].mean(1) - x.mean((1, 2)), c, "pneumonia", "normal") > 0.8  # opacities brighten the lungs
    x, c = _images(clean_root, "ct")
    body = np.array([np.median(v[v > 0.15]) for v in x])[:, None, None]
    assert _auc(-(x < 0.5 * body).mean((1, 2)), c, "covid", "non_covid") > 0.8  # ground glass: less black aerated lung
    x, c = _images(clean_root, "mr")
    bright = (x > 1.7 * np.array([np.median(v[v > 0.15]) for v in x])[:, None, None]).mean((1, 2))
    for tumour in ("glioma", "meningioma", "pituitary"):
        assert _auc(bright, c, tumour, "no_tumor") > 0.8  # enhancing mass brighter than brain and CSF
    x, c = _images(clean_root, "ultrasound")
    centre = x[:, int(0.45 * n):int(0.7 * n), n // 4:3 * n // 4]
    dark = -np.array([np.convolve(v.mean(0), np.ones(6) / 6, "valid").min() for v in centre])
    assert _auc(dark, c, "benign", "normal") > 0.8 and _auc(dark, c, "malignant", "normal") > 0.8  # hypoechoic mass
    x, c = _images(clean_root, "histology")
    assert _auc((x[..., 0] < 0.45).mean((1, 2)), c, "malignant", "benign") > 0.85  # nuclear crowding
    x, c = _images(clean_root, "cytology")
    nuclear = (x.mean(-1) < 0.45).mean((1, 2))
    assert _auc(nuclear, c, "hsil", "nilm") > 0.9 and _auc(nuclear, c, "lsil", "nilm") > 0.7  # N:C ratio
    assert _auc(nuclear, c, "scc", "asc_us") > 0.8  # severity order within the ASC group
    x, c = _images(clean_root, "fundus")
    exudate = ((x[..., 0] > 0.8) & (x[..., 1] > 0.65) & (x[..., 2] < 0.45)).mean((1, 2))
    red_dots = ((x[..., 0] < 0.4) & (x[..., 0] > 0.15) & (x[..., 1] < 0.06)).mean((1, 2))
    assert _auc(exudate, c, "dr3_severe", "dr0_none") > 0.9 and _auc(red_dots, c, "dr1_mild", "dr0_none") > 0.8
    assert _auc(red_dots, c, "dr2_moderate", "dr1_mild") > 0.7  # more haemorrhages with the grade
    x, c = _images(clean_root, "dermoscopy")
    centre = x[:, n // 5:4 * n // 5, n // 5:4 * n // 5].mean(-1)  # away from vignette corners and rulers
    assert _auc((centre < 0.3).mean((1, 2)), c, "mel", "nv") > 0.8  # black blotches
    assert _auc(np.percentile(centre.reshape(len(x), -1), 10, 1), c, "bkl", "nv") > 0.9  # light tan lesion


def test_cytology_is_hierarchical(clean_root):
    meta = M.read_metadata(clean_root, "cytology")
    spec = M.SYNTH_MODALITIES["cytology"]
    assert set(meta["level1"]) == {"negative", "asc", "agc", "microbe"}
    assert (meta["level1"] == [spec.parent(c) for c in meta["class"]]).all()
    assert meta.groupby("class")["level1"].nunique().max() == 1 and (meta["class"].isin(spec.classes)).all()
    assert sum(spec.parent(c) == "microbe" for c in spec.classes) == 7


def _estimated_strength(meta, spec, conf):
    """(P(value = the class's level) - 1/L) / (1 - 1/L): the mixing weight behind the draws."""
    target = np.asarray(conf.levels)[np.asarray(conf.by_class)][[spec.classes.index(k) for k in meta["class"]]]
    match = float((meta[conf.name].to_numpy() == target).mean())
    return (match - 1 / len(conf.levels)) / (1 - 1 / len(conf.levels))


def test_confounders_follow_class_at_the_configured_strength():
    params = M.ModalityParams(n_images=480, confounder_strength=0.3, strengths={"mr.plane": 0.8, "fundus.camera": 1.0})
    for name, spec in M.SYNTH_MODALITIES.items():
        meta = M.plan_dataset(name, params)
        for conf in spec.confounders:
            if conf.by_class is None:  # independent: roughly uniform whatever the class
                shares = meta.groupby("class")[conf.name].value_counts(normalize=True)
                assert (shares - 1 / len(conf.levels)).abs().max() < 0.05, (name, conf.name)
                continue
            wanted = params.strength(name, conf.name)
            tol = 0.1 if conf.per_group else 0.05
            assert abs(_estimated_strength(meta, spec, conf) - wanted) < tol, (name, conf.name, wanted)
    assert M.ModalityParams().confounder_strength == 0.0  # default: every factor independent of the class
    zero = M.plan_dataset("ultrasound", M.ModalityParams(n_images=480))
    spec = M.SYNTH_MODALITIES["ultrasound"]
    assert abs(_estimated_strength(zero, spec, spec.confounders[0])) < 0.05


def test_confounders_are_drawn(clean_root):
    def scene(name, cls, **conf):
        spec = M.SYNTH_MODALITIES[name]
        values = {c.name: c.levels[0] for c in spec.confounders} | conf
        return RENDERERS[name](Scene(cls, values, (0.0, 0.0, 0.0), 7, 64)).astype(np.float32)

    words = [scene("ultrasound", "normal", word=w, calipers="no")[:10, :40].mean() for w in ("BREAST", "AXILLA", "none")]
    assert min(words[:2]) > words[2] + 20  # burned-in words in the top-left corner
    assert scene("ultrasound", "benign", calipers="yes").max() > scene("ultrasound", "benign", calipers="no").max() - 1
    assert np.abs(scene("ultrasound", "benign", calipers="yes") - scene("ultrasound", "benign", calipers="no")).sum() > 0
    ruler = scene("dermoscopy", "nv", ruler="yes", vignette="no") - scene("dermoscopy", "nv", ruler="no", vignette="no")
    assert ruler.min() < -100 and 0 < (ruler != 0).mean() < 0.1  # dark ruler ticks along one edge only
    planes = [scene("mr", "no_tumor", plane=p, weighting="T1") for p in ("axial", "coronal", "sagittal")]
    assert all(np.abs(a - b).mean() > 5 for a, b in [(planes[0], planes[1]), (planes[1], planes[2]), (planes[0], planes[2])])


def test_loader_items_carry_confounders(clean_root):
    for name, spec in M.SYNTH_MODALITIES.items():
        ds = open_dataset("synth-modalities", root=clean_root, split="train", dataset=name, **CLEAN)
        item = ds[0]
        assert ds.confounders == [spec.group] + [c.name for c in spec.confounders]
        assert set(ds.confounders) <= set(item) and item["split"] == "train" and item["id"].startswith(f"{name}-")
        assert item["image"].mode == spec.mode and item["image"].size == (48, 48)
        assert item["class_name"] == spec.classes[item["class_index"]] and ds.classes == list(spec.classes)
    sizes = [len(open_dataset("synth-modalities", root=clean_root, split=s, dataset="fundus")) for s in ("train", "val", "test")]
    everything = open_dataset("synth-modalities", root=clean_root, split="all", dataset="fundus", mode="L")
    assert sum(sizes) == len(everything) == 96 and len({r["id"] for r in everything.records}) == 96  # 5 x 12 < 96
    assert everything[5]["image"].mode == "L"


def test_knob_mismatch_and_bad_names_raise(clean_root, tmp_path):
    with pytest.raises(MedvlError, match="n_images: stored 96 vs requested 50"):
        open_dataset("synth-modalities", root=clean_root, dataset="ct", n_images=50)
    with pytest.raises(MedvlError, match="did you mean 'fundus'"):
        open_dataset("synth-modalities", root=clean_root, dataset="fundos")
    with pytest.raises(MedvlError, match="unknown knob"):
        M.generate_synth_modalities(tmp_path / "x", n_image=10)
    with pytest.raises(MedvlError, match="not a class-correlated confounder"):
        M.generate_synth_modalities(tmp_path / "x", strengths={"mr.weighting": 0.5})
    with pytest.raises(MedvlError, match="unknown split"):
        open_dataset("synth-modalities", root=clean_root, split="dev")
    assert not (tmp_path / "x").exists()


def test_worlds_with_other_knobs_get_their_own_folder_under_the_data_root(data_root):
    from medvl_core.worlds.common import knob_folder

    small = {"n_images": 12, "image_size": 32, "min_per_class": 3}
    ds = open_dataset("synth-modalities", dataset="mr", split="test", **small)
    other = open_dataset("synth-modalities", dataset="mr", split="test", **small, confounder_strength=0.9)
    assert len(ds) == len(other) == 4  # no "generated with different knobs": each knob set has its folder
    folders = sorted(p.name for p in data_root.glob("synth-modalities*") if (p / "world.json").is_file())
    assert len(folders) == 2 and all(name.startswith("synth-modalities-") for name in folders)
    assert knob_folder("synth-modalities", {}) == data_root / "synth-modalities"  # the default knobs' folder
    again = open_dataset("synth-modalities", dataset="mr", split="test", **small)  # reused, not regenerated
    assert again.records[0]["path"] == ds.records[0]["path"] != other.records[0]["path"]


def test_probe_dataset_entries(data_root, tmp_path):
    import numpy as np
    from PIL import Image

    from medvl_core.data.probe_sets import open_probe_dataset
    from medvl_core.errors import ParameterError

    synth = open_probe_dataset("ultrasound")
    assert synth.confounders and synth.description.startswith("synthetic stand-in for")
    folder = tmp_path / "imgs"
    for cls in ("benign", "malignant"):
        (folder / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(folder / cls / "a.png")
    real = open_probe_dataset(f"image-folder:{folder}")
    assert real.confounders == [] and real.classes == ["benign", "malignant"] and len(real) == 2
    with pytest.raises(ParameterError, match="image-folder:PATH"):
        open_probe_dataset("bogus:thing")


def test_histology_subtypes_are_nested_per_slide_and_drawn(clean_root):
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import LinearSVC

    meta = M.read_metadata(clean_root, "histology")
    spec = M.SYNTH_MODALITIES["histology"]
    assert all(s in spec.subtypes[c] for c, s in zip(meta["class"], meta["subtype"]))  # nested in the class
    assert meta.groupby("slide")["subtype"].nunique().max() == 1 and meta["subtype"].nunique() == 8  # one per slide
    x, cls = _images(clean_root, "histology")
    sub = np.asarray(meta.set_index("id").loc[[r["id"] for r in open_dataset(
        "synth-modalities", root=clean_root, split="all", dataset="histology", **CLEAN).records], "subtype"])
    grey = x.mean(-1)
    stats = np.column_stack([(grey < t).mean((1, 2)) for t in (0.3, 0.45, 0.6)] + [(grey > 0.85).mean((1, 2)),
                            np.abs(np.diff(grey, axis=1)).mean((1, 2)), np.abs(np.diff(grey, axis=2)).mean((1, 2))])
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
    for parent in ("benign", "malignant"):  # the subtype is drawn: decodable from pixel statistics within each class
        keep = cls == parent
        score = cross_val_score(LinearSVC(C=1.0), stats[keep], sub[keep], cv=3).mean()
        assert score > 0.25 + 0.2
