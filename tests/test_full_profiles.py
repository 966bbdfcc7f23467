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

import pytest

from medvl_core.cli import main
from medvl_core.cli.run import execute, load_params_file
from medvl_core.papers import get_paper
from medvl_core.runs import read_metrics

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("own")]  # each toy run on a worker of its own


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

    world = generate_synth_cxr(root / "world", n_studies=48, n_test_images=40, n_valid_images=40, image_size=32,
                               report_source="template")
    shutil.move(str(world), root / "mimic-cxr")
    chexpert = root / "chexpert" / "CheXpert-v1.0-small"  # its valid.csv + valid/ and test_labels.csv + test/
    shutil.move(str(root / "mimic-cxr" / CHEXPERT_TEST_DIR), chexpert)
    return root


def test_loss_relaxation_full_yaml_at_toy_size(tmp_path, monkeypatch):
    from cxr_test_trees import tiny_open_clip, write_paper_test_sets

    data = write_paper_test_sets(official_trees(tmp_path / "data"))
    monkeypatch.setenv("MEDVL_DATA", str(data))
    assert main(["prepare", "mimic-cxr", "--size", "32", "--quiet", "--workers", "2"]) == 0  # the training reads it
    full = load_params_file(get_paper("loss_relaxation").params_file("full"))
    toy = {"image_encoder": f"open_clip:local-dir:{tiny_open_clip(tmp_path / 'clip')}",
           "text_encoder": f"hf:{tiny_bert(tmp_path / 'bert')}", "image_size": 32,
           "seeds": [0], "epochs": 1, "global_batch_size": 8, "warmup_steps": 1, "sweep_thresholds": [0.5],
           "sweep_sentences": [1, 3],
           "n_bootstrap": 20, "n_reports": 20, "device": "cpu", "save_model": False}
    assert set(toy) - {"save_model"} <= set(full)  # only sizes, devices and the two towers change
    out = tmp_path / "run"
    assert execute("loss_relaxation", {**full, **toy}, out, progress=False) == 0
    assert f"mimic-cxr: reading the prepared copy {data / 'prepared' / 'mimic-cxr-32'}" in (
        out / "loss_relaxation.ipynb").read_text()
    metrics = read_metrics(out)
    assert metrics["n_seeds"] == 1 and metrics["n_test_images"] == 40
    for framework in ("clip", "slip", "uniclip"):  # all three frameworks of full.yaml trained on pixels
        for column in ("avgtotal", "openi_avg5", "openi_avgtotal", "padchest_avgtotal", "vindr_avgtotal"):
            assert 0.0 <= metrics[f"t1_{framework}_w_{column}"] <= 1.0, column
    assert {"t3_openi_avg5", "t3_padchest_avgtotal", "t3_vindr_avgtotal"} <= set(metrics)
    params = json.loads(json.dumps(__import__("yaml").safe_load((out / "params.yaml").read_text())))
    assert params["validation_dataset"] == "chexpert" and params["train_views"] == "all" and params["embed_dim"] == 768


def tiny_word2vec(path, dim=8, seed=0):
    """A word2vec binary file (BioWordVec's format: '<count> <dim>' header, then 'word ' + float32 vector) of report words."""
    import numpy as np

    words = ("no pleural effusion pneumothorax heart size normal lungs clear cardiomegaly opacity edema consolidation "
             "atelectasis small left right lung mild moderate").split()
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        fh.write(f"{len(words)} {dim}\n".encode())
        for word in words:
            fh.write(word.encode() + b" " + rng.normal(size=dim).astype("<f4").tobytes() + b"\n")
    return path


def test_meems_full_yaml_at_toy_size(tmp_path, monkeypatch):
    data = official_trees(tmp_path / "data")
    monkeypatch.setenv("MEDVL_DATA", str(data))
    full = load_params_file(get_paper("meems").params_file("full"))
    assert (full["caption_train_images"], full["embedding_train_images"], full["validate_images"],
            full["test_images"]) == (103864, 206888, 2813, 4896)
    assert (full["embed_hidden"], full["meems_dim"], full["classifier_hidden"], full["hidden_dim"]) == (1000, 200, 50, 512)
    assert (full["head_epochs"], full["baseline_epochs_binary"], full["baseline_epochs_multilabel"]) == (50, 20, 9)
    toy = {"image_encoder": "torchvision:resnet50@random", "baseline": "torchvision:resnet18@random",
           "word_vectors": str(tiny_word2vec(tmp_path / "BioWordVec.bin")), "caption_train_images": 16,
           "embedding_train_images": 0, "validate_images": 0, "test_images": 0, "pretrain_epochs": 1,
           "caption_epochs": 1, "head_epochs": 1, "baseline_epochs_binary": 1, "baseline_epochs_multilabel": 1,
           "iou_sample": 4, "global_batch_size": 8, "max_words": 12, "attention_dim": 8, "hidden_dim": 16,
           "embed_hidden": 16, "meems_dim": 8, "classifier_hidden": 4, "device": "cpu"}
    assert set(toy) <= set(full)  # only sizes, epochs, devices and the local weights / vectors change
    out = tmp_path / "run"
    assert execute("meems", {**full, **toy}, out, progress=False) == 0
    metrics = read_metrics(out)
    assert metrics["grid_channels"] == 2048 and metrics["claim_seeds_n"] == 1
    assert metrics["caption_epochs_run"] == 1 and metrics["caption_n_images"] >= 1
    for model in ("meems", "baseline"):  # a toy test split of a few images may hold one class only (AUC null)
        assert metrics[f"binary_auc_{model}"] is None or 0.0 <= metrics[f"binary_auc_{model}"] <= 1.0
        assert 0.0 <= metrics[f"binary_f1_argmax_{model}"] <= 1.0
    assert "rare_stratum_auc_meems" not in metrics  # real MIMIC-CXR has no known stratum


def test_meems_full_yaml_names_a_missing_word_vectors_file(tmp_path):
    from medvl_core.errors import AssetNotFoundError
    from medvl_core.models.captioner import word_vectors
    from medvl_core.text.vocab import build_vocabulary

    with pytest.raises(AssetNotFoundError, match="word_vectors"):
        word_vectors(build_vocabulary(["no effusion"], 1), str(tmp_path / "missing.bin"))


def timm_hub_cache(cache, model_name="resnet50.a1_in1k"):
    """A Hugging Face hub cache holding timm/<model_name> (config.json + model.safetensors, random weights), the
    layout `timm:<model_name>` loads from when the hub is unreachable."""
    import timm
    from safetensors.torch import save_file

    name, tag = model_name.split(".", 1)
    snapshot = cache / f"models--timm--{model_name}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (cache / f"models--timm--{model_name}" / "refs").mkdir()
    (cache / f"models--timm--{model_name}" / "refs" / "main").write_text("0" * 40)
    model = timm.create_model(name, pretrained=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, snapshot / "model.safetensors")
    (snapshot / "config.json").write_text(json.dumps({"architecture": name, "num_classes": 1000,
                                                      "pretrained_cfg": {"tag": tag}}))
    return cache


def test_m3g_full_yaml_at_toy_size(tmp_path, monkeypatch):
    """full.yaml on a DermaVQA tree in its official layout: the LLM labels and EmbeddingV3 label embeddings through
    the openai SDK (fake loopback server), Table 5's trained ResNet50 (hub-cache layout, offline), the dry run."""
    from llm_fake_server import FakeMessagesServer
    from test_llm_openai import label_responder
    from test_m3g_clip import _write_dermavqa

    data = tmp_path / "data"
    _write_dermavqa(data / "dermavqa", test=True)
    monkeypatch.setenv("MEDVL_DATA", str(data))
    monkeypatch.setenv("HF_HUB_CACHE", str(timm_hub_cache(tmp_path / "hub")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    full = load_params_file(get_paper("m3g_answer_generation").params_file("full"))
    assert (full["label_source"], full["label_model"], full["text_encoder"]) == (
        "llm", "gpt-4-turbo", "openai:text-embedding-3-large")
    assert (full["image_encoder"], full["train_image_tower"], full["embed_dim"], full["global_batch_size"]) == (
        "timm:resnet50.a1_in1k", True, 256, 256)
    toy = {"image_size": 32, "embed_dim": 8, "global_batch_sizes": [4, 8], "global_batch_size": 8, "epochs": 1, "seeds": [0, 1],
           "pca_components": 2, "claude_max_cases": 2, "claude_run": False, "device": "cpu"}
    assert full["claude_run"] is True and set(toy) <= set(full)  # sizes, epochs, device; Claude's dry run (no paid call)
    out = tmp_path / "run"
    with FakeMessagesServer(responder=label_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        assert execute("m3g_answer_generation", {**full, **toy}, out, progress=False) == 0
    chats = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert len(chats) == 3  # the toy discussions repeat: 3 distinct label requests over the three splits, once each
    assert [r["path"] for r in server.requests].count("/v1/embeddings") == 1
    assert {r["body"]["model"] for r in server.requests} == {"gpt-4-turbo", "text-embedding-3-large"}
    metrics = read_metrics(out)
    assert metrics["n_conditions"] == 3 and metrics["best_batch_size"] in (4, 8)
    table2 = [key for key in metrics if key.startswith("dbleu_batch_")]
    assert table2 and all(0.0 <= metrics[key] <= 100.0 for key in table2)
    assert "dbleu_claude_img_2_calls" not in metrics and metrics["claude_arm"] == "dry run"  # no Table 1 scores
    notebook = (out / "m3g_answer_generation.ipynb").read_text()
    assert "sk-openai-test" not in notebook
    assert "training labels: 3 (from gpt-4-turbo)" in notebook
