"""`papers/vlm_feature_probing/params/full.yaml` end to end at toy size, offline: the poster's eight datasets as small
trees in their public layouts (tests/vlm_test_trees.py) and tiny local checkpoints of the encoder families."""

import pytest

from medvl_core.cli.run import execute, load_params_file
from medvl_core.papers import get_paper
from medvl_core.runs import read_metrics
from tests.cxr_test_trees import tiny_open_clip
from tests.test_probe_encoders import tiny_llava
from tests.vlm_test_trees import write_probe_trees

pytestmark = pytest.mark.notebook


def test_full_yaml_is_the_poster_protocol():
    full = load_params_file(get_paper("vlm_feature_probing").params_file("full"))
    assert len(full["encoders"]) == 16 and full["datasets"] == ["brain-mr", "sars-cov-2-ct", "pneumoniamnist",
                                                                "breast-us", "breakhis", "hicervix", "deepdr", "isic2019"]
    assert full["umap_n_neighbors"] == [3, 5, 10, 15, 25, 50, 100, 200, 500, 1000]
    assert full["umap_min_dist"] == [0.1, 0.25, 0.5, 0.75, 1.0] and full["umap_datasets"] == full["datasets"]
    assert full["image_size"] is None and not full["train_medical_vlm"] and full["control"] == ""


@pytest.mark.slow
@pytest.mark.xdist_group("own")
def test_full_yaml_at_toy_size(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_probe_trees(data, per_class=6)
    monkeypatch.setenv("MEDVL_DATA", str(data))
    full = load_params_file(get_paper("vlm_feature_probing").params_file("full"))
    toy = {"encoders": [f"open_clip:local-dir:{tiny_open_clip(tmp_path / 'clip')}", f"llava:{tiny_llava(tmp_path / 'llava')}"],
           "umap_datasets": ["breast-us"], "umap_n_neighbors": [3, 5], "umap_min_dist": [0.1, 1.0], "device": "cpu"}
    assert set(toy) <= set(full)  # only the weights (local tiny checkpoints), the UMAP subset and the device change
    out = tmp_path / "run"
    assert execute("vlm_feature_probing", {**full, **toy}, out, progress=False) == 0
    metrics = read_metrics(out)
    assert metrics["n_datasets"] == 8 and metrics["n_models"] == 2
    for slug in ("brainmr", "sarscov2ct", "pneumoniamnist", "breastus", "breakhis", "hicervix", "deepdr", "isic2019"):
        assert 0.0 <= metrics[f"svc_accuracy_encoder_{slug}"] <= 1.0
        assert 0.0 <= metrics[f"svc_test_macro_f1_encoder_{slug}"] <= 1.0
    assert "probe_model_medical" not in metrics and list((out / "figures").glob("umap_breast-us_*.png"))
