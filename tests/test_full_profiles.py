"""`papers/<id>/params/full.yaml` run end to end at toy size, offline, on trees in the real datasets' layouts.

loss_relaxation: MIMIC-CXR-JPG (files/, reports, metadata/split/CheXpert CSVs) and CheXpert (valid.csv +
test_labels.csv with their image folders), written by the SynthCXR generator and rearranged as the official
downloads are, plus Open-i, PadChest and VinDr-CXR trees (tests/cxr_test_trees.py) for the paper's other test
sets; the text tower is a tiny BERT saved with `save_pretrained` (the format `hf:bert-base-uncased` loads) and the
image tower a 2-layer open_clip ViT saved in the hub layout `open_clip:hf-hub:` repositories ship
(open_clip_config.json + safetensors), loaded by `open_clip:local-dir:` through the same open_clip factory.
"""

import json
import shutil

import pandas as pd
import pytest

from medvl_core import cli
from medvl_core.papers import get_paper
from medvl_core.runs import read_metrics

pytestmark = pytest.mark.notebook


def tiny_bert(folder):
    """A 1-layer, 32-wide BERT with a word-level vocabulary, saved as a local hub checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ("no pleural effusion pneumothorax heart size normal lungs clear cardiomegaly opacity edema "
             "consolidation atelectasis there is are of the and with mild small left right lung support devices "
             "fracture pneumonia lesion enlarged cardiomediastinum other finding . ,").split()
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words)]))
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_max_length=64)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def official_trees(root):
    """$MEDVL_DATA/mimic-cxr (MIMIC-CXR-JPG layout) and $MEDVL_DATA/chexpert (CheXpert-v1.0-small layout)."""
    from medvl_core.worlds.synth_cxr import CHEXPERT_TEST_DIR, generate_synth_cxr

    world = generate_synth_cxr(root / "world", n_studies=48, n_test_images=40, image_size=32, report_source="template")
    shutil.move(str(world), root / "mimic-cxr")
    chexpert = root / "chexpert" / "CheXpert-v1.0-small"
    shutil.move(str(root / "mimic-cxr" / CHEXPERT_TEST_DIR), chexpert)
    table = pd.read_csv(chexpert / "test_labels.csv")
    valid = table.assign(Path=table["Path"].str.replace("test/", "valid/", n=1))  # CheXpert's valid.csv form
    shutil.copytree(chexpert / "test", chexpert / "valid")
    valid.to_csv(chexpert / "valid.csv", index=False)
    return root


def test_loss_relaxation_full_yaml_at_toy_size(tmp_path, monkeypatch):
    from cxr_test_trees import tiny_open_clip, write_paper_test_sets

    data = write_paper_test_sets(official_trees(tmp_path / "data"))
    monkeypatch.setenv("MEDVL_DATA", str(data))
    full = cli.load_params_file(get_paper("loss_relaxation").params_file("full"))
    toy = {"image_encoder": f"open_clip:local-dir:{tiny_open_clip(tmp_path / 'clip')}",
           "text_encoder": f"hf:{tiny_bert(tmp_path / 'bert')}", "image_size": 32,
           "seeds": [0], "epochs": 1, "batch_size": 8, "warmup_steps": 1, "sweep_thresholds": [0.5],
           "n_bootstrap": 20, "n_reports": 20, "device": "cpu", "save_model": False}
    assert set(toy) - {"save_model"} <= set(full)  # only sizes, devices and the two towers change
    out = tmp_path / "run"
    assert cli.execute("loss_relaxation", {**full, **toy}, out, progress=False) == 0
    metrics = read_metrics(out)
    assert metrics["n_seeds"] == 1 and metrics["n_test_images"] == 40
    for framework in ("clip", "slip", "uniclip"):  # all three frameworks of full.yaml trained on pixels
        for column in ("avgtotal", "openi_avg5", "openi_avgtotal", "padchest_avgtotal", "vindr_avgtotal"):
            assert 0.0 <= metrics[f"t1_{framework}_w_{column}"] <= 1.0, column
    assert {"t3_openi_avg5", "t3_padchest_avgtotal", "t3_vindr_avgtotal"} <= set(metrics)
    params = json.loads(json.dumps(__import__("yaml").safe_load((out / "params.yaml").read_text())))
    assert params["validation_dataset"] == "chexpert" and params["train_views"] == "all" and params["embed_dim"] == 768
