"""`papers/perturbed_report_discrimination/params/full.yaml` end to end at toy size, offline.

Open-I in its NLM layout (ecgen-radiology/*.xml + NLMCXR_png/*.png, tests/cxr_test_trees.py), the text tower a
tiny BERT saved with `save_pretrained` (the format `hf:microsoft/BiomedVLP-CXR-BERT-specialized` loads, minus its
model code), the image tower ResNet-50 with random weights (timm's architecture, no download). Only sizes,
epochs, devices and the two towers' sources change; the protocol (findings only, every image, K = 9, SGD
0.0015/0.9/5e-4, alpha = beta = 0.1, tau = 0.07, a held-out count) is the file's.
"""

import pytest

from medvl_core.cli.run import execute, load_params_file
from medvl_core.papers import get_paper
from medvl_core.runs import read_metrics

pytestmark = pytest.mark.notebook


def test_full_yaml_states_the_paper_protocol():
    full = load_params_file(get_paper("perturbed_report_discrimination").params_file("full"))
    assert (full["dataset"], full["n_held_out"], dict(full["dataset_options"])["sections"]) == ("open-i", 469, ["findings"])
    assert full["text_encoder"] == "hf:microsoft/BiomedVLP-CXR-BERT-specialized" and full["image_encoder"] == "timm:resnet50"
    assert (full["optimizer"], full["lr"], full["momentum"], full["weight_decay"]) == ("sgd", 0.0015, 0.9, 0.0005)
    assert (full["global_batch_size"], full["epochs"], full["image_size"], full["cached"]) == (64, 150, 224, False)
    assert (full["alpha"], full["beta"], full["temperature"], full["n_perturbations"]) == (0.1, 0.1, 0.07, 9)


@pytest.mark.slow
@pytest.mark.xdist_group("own")
def test_full_yaml_at_toy_size_on_an_open_i_tree(tmp_path, monkeypatch):
    from cxr_test_trees import write_open_i
    from test_full_profiles import tiny_bert

    write_open_i(tmp_path / "data" / "open-i", n_reports=24)
    monkeypatch.setenv("MEDVL_DATA", str(tmp_path / "data"))
    full = load_params_file(get_paper("perturbed_report_discrimination").params_file("full"))
    toy = {"image_encoder": "timm:resnet50@random", "text_encoder": f"hf:{tiny_bert(tmp_path / 'bert')}",
           "image_size": 32, "n_held_out": 8, "max_length": 48, "epochs": 1, "global_batch_size": 8, "finetune_epochs": 1,
           "n_nli_pairs": 40, "n_reports": 20, "n_bootstrap": 20, "device": "cpu"}
    assert set(toy) <= set(full)  # only sizes, epochs, devices and the towers' sources change
    out = tmp_path / "run"
    assert execute("perturbed_report_discrimination", {**full, **toy}, out, progress=False) == 0
    metrics = read_metrics(out)
    assert metrics["n_discrimination_images"] == 8 and metrics["n_perturbations"] == 9
    assert metrics["claim_seeds_n"] == 1
    for variant in ("convirt", "gloria", "ours_wo_local", "ours"):
        assert 0.0 <= metrics[f"discrimination_accuracy_{variant}"] <= 1.0
    assert 0.0 < metrics["discrimination_chance"] <= 0.5
