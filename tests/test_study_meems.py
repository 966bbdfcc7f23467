"""MEEMS study: caption targets, evaluation tables, rare stratum, and a tiny end-to-end run on a generated world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medvl_core.errors import ParameterError
from medvl_core.eval.metrics import argmax_onehot, auroc
from medvl_core.studies.meems.captions import (
    attention_words,
    caption_diversity,
    caption_example_text,
    caption_scores,
    distinct_label_examples,
    fit_captioner,
    rare_words,
    word_rates,
)
from medvl_core.studies.meems.data import MeemsData, MeemsSplit, first_sentences, prepare_meems_data, world_root
from medvl_core.studies.meems.evidence import claim_evidence, evidence_metrics, evidence_table
from medvl_core.studies.meems.heads import embeddings, fit_finetuned_baseline, fit_head_seeds, fit_heads, head_inputs
from medvl_core.studies.meems.paper_metrics import binarised, paper_auc, paper_scores, reference_scores
from medvl_core.studies.meems.pixels import predict_pixels
from medvl_core.studies.meems.projection import pca
from medvl_core.studies.meems.tables import (
    auc_table,
    fnr_fpr_table,
    minority_summary,
    paper_table,
    rare_stratum_table,
    stratum_gaps,
    summary_metrics,
    thresholds_by_model,
    training_summary,
)
from medvl_core.studies.meems.tasks import task_targets
from medvl_core.train import TrainConfig


def test_first_sentences_keeps_whole_sentences_within_the_word_budget():
    report = "Heart size is normal. XXXX lungs are clear. No effusion or pneumothorax is seen today."
    assert first_sentences(report, 8, punctuation=True) == "heart size is normal ."
    assert first_sentences(report, 10, punctuation=True) == "heart size is normal . lungs are clear ."
    assert first_sentences(report, 3) == "heart size is"  # the first sentence is cut, never dropped
    assert first_sentences("", 5) == ""


def test_first_sentences_drops_punctuation_as_the_paper_does():
    report = "No acute cardiopulmonary process. Lungs clear; no effusion, no pneumothorax."
    assert first_sentences(report, 40) == "no acute cardiopulmonary process lungs clear no effusion no pneumothorax"
    assert first_sentences(report, 7) == "no acute cardiopulmonary process"  # budget counts words only


def test_world_root_is_stable_and_distinct_per_knobs(data_root):
    a = world_root({"n_studies": 10, "rare_stratum_fraction": 0.5})
    assert a == world_root({"rare_stratum_fraction": 0.5, "n_studies": 10})
    assert a != world_root({"n_studies": 11, "rare_stratum_fraction": 0.5})
    assert a.parent == data_root and a.name.startswith("synth-cxr-")


def test_task_targets():
    labels = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(task_targets(labels, "binary"), [[0], [1]])
    assert task_targets(labels, "multilabel") is labels
    with pytest.raises(ParameterError, match="task"):
        task_targets(labels, "multiclass")


def test_auc_table_macro_micro_and_minority_flags():
    Y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], dtype=float)
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.3], [0.1, 0.2]])
    table = auc_table(Y, {"A": good, "B": 1 - good}, ["x", "y"], train_prevalence=[0.5, 0.01])
    assert table.loc["x", "A"] == 1.0 and table.loc["y", "A"] == 1.0 and table.loc["x", "B"] == 0.0
    assert table.loc["macro", "A"] == 1.0
    assert table.loc["micro", "A"] == pytest.approx(auroc(Y.ravel(), good.ravel()))
    assert list(table["n positive"].iloc[:2]) == [2, 1] and list(table["minority"].iloc[:2]) == [False, True]
    summary = minority_summary(table, ["A", "B"])
    assert summary.loc["minority classes (1)", "A"] == 1.0 and summary.loc["other classes (1)", "B"] == 0.0


def test_rare_stratum_table_scores_each_group_against_all_negatives():
    names = ["No Finding", "Pneumothorax"]
    y = np.zeros((6, 2))
    y[:3, 1] = 1  # positives 0, 1 (common) and 2 (rare)
    rare = np.array([False, False, True, False, False, False])
    p = np.zeros((6, 2))
    p[:, 1] = [0.9, 0.8, 0.1, 0.3, 0.2, 0.4]  # the rare positive scores below every negative
    table = rare_stratum_table(y, {"M": p}, rare, names, "Pneumothorax", n_resamples=200)
    assert table.loc["common stratum", "AUC M"] == 1.0 and table.loc["rare stratum", "AUC M"] == 0.0
    assert table.loc["all positives", "AUC M"] == pytest.approx(6 / 9)
    assert table.loc["rare stratum", "n positive"] == 1 and table.loc["rare stratum", "n negative"] == 3
    assert table.loc["all positives", "low M"] <= 6 / 9 <= table.loc["all positives", "high M"]
    assert rare_stratum_table(y, {"M": p}, None, names).empty


def test_stratum_gaps_are_paired_differences_with_cis():
    names = ["No Finding", "Pleural Effusion"]
    rng = np.random.default_rng(0)
    y = np.zeros((200, 2))
    y[:80, 1] = 1
    rare = np.zeros(200, dtype=bool)
    rare[:30] = True  # positives 0-29 rare, 30-79 common
    base = np.where(y[:, 1] == 1, 1.0, 0.0) + rng.normal(0, 0.5, 200)
    base[:30] = rng.normal(0, 0.5, 30)  # the baseline cannot tell the rare form from a negative
    meems = base.copy()
    meems[:30] += 1.0  # MEEMS recovers it
    probs = {"MEEMS": np.c_[np.zeros(200), meems], "baseline": np.c_[np.zeros(200), base]}
    gaps = stratum_gaps(y, probs, rare, names, "Pleural Effusion", n_resamples=300)
    table = rare_stratum_table(y, probs, rare, names, "Pleural Effusion", n_resamples=50)
    drop = table.loc["common stratum", "AUC baseline"] - table.loc["rare stratum", "AUC baseline"]
    assert gaps.loc["baseline: common - rare stratum", "difference"] == pytest.approx(drop)
    assert gaps.loc["baseline: common - rare stratum", "low"] > 0.2
    row = gaps.loc["rare stratum: MEEMS - baseline"]
    assert row["low"] > 0 and row["low"] <= row["difference"] <= row["high"]
    assert stratum_gaps(y, probs, None, names).empty


def test_rare_words_and_their_rates_per_group():
    captions = ["small subpulmonic left pleural effusion", "small left pleural effusion", "lungs clear", "subpulmonic effusion"]
    rare = np.array([True, False, False, True])
    assert rare_words(captions, rare) == ["subpulmonic"]
    rates = word_rates(["subpulmonic effusion", "effusion", "clear", "clear"], {"rare": rare, "other": ~rare},
                       ["subpulmonic"])
    assert rates.loc["rare", "captions with the words"] == 1 and rates.loc["rare", "share"] == 0.5
    assert rates.loc["other", "share"] == 0.0 and rates.loc["other", "n images"] == 2


def test_selection_functions_refuse_test_split_labels():
    from medvl_core.data.splits import tag_split

    data = tiny_data()
    config = TrainConfig(epochs=1, global_batch_size=16, lr=0.01, optimizer="adam", device="cpu", progress=False)
    captioner, _ = fit_captioner(data, config, embed_dim=8, attention_dim=8, hidden_dim=16, n_sample=4)
    inputs = head_inputs(data, captioner, 5)
    heads = fit_heads(data, inputs, config, {"embed_hidden": 16, "embed_dim": 8, "classifier_hidden": 4}, tasks=("binary",))
    assert set(thresholds_by_model(heads, data, "binary")) == {"MEEMS", "baseline"}
    tagged = MeemsData(data.train, MeemsSplit("val", data.validate.paths, data.validate.grids,
                                              tag_split(data.validate.labels, "test"), data.validate.captions),
                       data.reports_test, data.test, data.vocab, data.label_names, data.max_words)
    named = MeemsData(data.train, data.test, data.reports_test, data.test, data.vocab, data.label_names, data.max_words)
    for bad in (tagged, named):
        with pytest.raises(ParameterError, match="test-split"):
            thresholds_by_model(heads, bad, "binary")
        with pytest.raises(ParameterError, match="test-split"):
            fit_captioner(bad, config, embed_dim=8, attention_dim=8, hidden_dim=16, n_sample=4)
        with pytest.raises(ParameterError, match="test-split"):
            fit_heads(bad, inputs, config, {"embed_hidden": 16, "embed_dim": 8, "classifier_hidden": 4}, tasks=("binary",))
        with pytest.raises(ParameterError, match="test-split"):
            fit_finetuned_baseline(bad, "tiny:cnn-32", "binary", config)


def test_paper_auc_averages_the_binarised_columns_and_flattens_for_micro():
    y = np.array([[1.0], [1.0], [0.0], [0.0], [1.0]])
    p = np.array([[0.9], [0.4], [0.6], [0.1], [0.8]])
    Yb, Pb = binarised(y, p, "binary")
    np.testing.assert_array_equal(Yb[:, 0], 1 - y[:, 0])
    scores = paper_auc(Yb, Pb)
    assert scores["auc"] == pytest.approx(auroc(y[:, 0], p[:, 0]))  # both columns of a softmax pair agree
    assert scores["auc_micro"] == pytest.approx(auroc(Yb.ravel(), Pb.ravel()))


def test_argmax_f1_and_trivial_references():
    y = np.array([[1.0], [1.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.2], [0.7], [0.6]])
    scores = paper_scores(y, p, "binary", thresholds=np.array([0.1]))
    assert scores["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp 2, fp 1, fn 1 at argmax
    assert scores["f1_threshold"] == pytest.approx(2 * 3 / (2 * 3 + 1))  # everything positive at 0.1
    refs = reference_scores(y, "binary")
    assert refs["all positive"]["f1"] == pytest.approx(2 * 0.75 / 1.75) and refs["all positive"]["auc"] == 0.5
    rates = fnr_fpr_table(y, {"M": p})
    assert rates.loc["M", "FNR (argmax)"] == pytest.approx(1 / 3) and rates.loc["M", "FPR (argmax)"] == 1.0
    assert rates.loc["all positive (reference)", "FNR (argmax)"] == 0.0
    Y = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]], dtype=float)
    P = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_array_equal(argmax_onehot(P), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert paper_scores(Y, P, "multilabel")["f1"] == pytest.approx(np.mean([1.0, 2 / 3, 1.0]))


def test_caption_diversity_and_distinct_examples():
    d = caption_diversity(["a b", "a b", "c"])
    assert d["distinct_caption_fraction"] == pytest.approx(2 / 3) and d["vocabulary_used"] == 3
    labels = np.array([[1, 0], [1, 0], [0, 1], [1, 1]])
    assert distinct_label_examples(labels, 6) == [0, 2, 3]


def test_pca_projects_to_n_components():
    x = np.random.default_rng(0).normal(size=(30, 6))
    assert pca(x, 3).shape == (30, 3)
    with pytest.raises(ParameterError, match="n_components"):
        pca(x, 7)


def test_the_package_holds_every_name_the_notebook_calls():
    import json
    import re
    from pathlib import Path

    from medvl_core.studies import meems as study

    cells = json.loads((Path(__file__).parents[1] / "notebooks" / "meems.ipynb").read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    called = set(re.findall(r"\bstudy\.(\w+)", code))
    assert called and not called - set(study.__all__)
    assert all(hasattr(study, name) for name in study.__all__)


def tiny_data(n: int = 48, seed: int = 0) -> MeemsData:
    """Grids whose channel 0 (left cells) marks a finding that the captions also name."""
    from medvl_core.text.vocab import build_vocabulary

    rng = np.random.default_rng(seed)

    def split(name, count):
        finding = rng.random(count) < 0.5
        grids = torch.from_numpy(rng.normal(0, 0.3, size=(count, 8, 2, 2)).astype(np.float32))
        grids[finding, 0, :, 0] += 2.0
        labels = np.zeros((count, 3), dtype=np.float32)
        labels[:, 0], labels[:, 1], labels[:, 2] = ~finding, finding, rng.random(count) < 0.3
        captions = ["left effusion ." if f else "lungs clear ." for f in finding]
        return MeemsSplit(name, [""] * count, grids, labels, captions, rng.random(count) < 0.2)

    train, val, test = split("train", n), split("val", 24), split("test", 24)
    return MeemsData(train, val, test, test, build_vocabulary(train.captions, 1), ["No Finding", "Effusion", "Other"], 4)


def test_tiny_end_to_end_training_with_the_shared_engine():
    data = tiny_data()
    config = TrainConfig(epochs=10, global_batch_size=16, lr=0.01, optimizer="adam", schedule="plateau",
                         early_stopping_patience=3, keep_best=True, device="cpu", progress=False)
    captioner, fit = fit_captioner(data, config, embed_dim=8, attention_dim=8, hidden_dim=16, n_sample=8)
    assert {"val_loss", "val_caption_iou", "val_bleu"} <= set(fit.history[0])
    assert fit.history[-1]["val_loss"] < fit.history[0]["val_loss"]
    scores = caption_scores(captioner, data.reports_test, data.vocab, data.max_words)
    assert scores["caption_iou_words"] > 0.8 and scores["caption_n_images"] == 24
    inputs = head_inputs(data, captioner, 5)
    assert inputs.hidden["test"].shape == (24, 16) and inputs.features["train"].shape == (48, 8)
    heads = fit_heads(data, inputs, config, {"embed_hidden": 16, "embed_dim": 8, "classifier_hidden": 4}, dropout=0.0)
    assert heads.probs[("binary", "MEEMS", "test")].shape == (24, 1)
    assert heads.probs[("multilabel", "baseline", "test")].shape == (24, 3)
    tables = training_summary(heads)
    assert len(tables) == 4 and (tables["epochs run"] <= 10).all()
    y = task_targets(data.test.labels, "binary")
    assert auc_table(y, heads.test_probs("binary"), ["Finding"]).loc["Finding", "MEEMS"] > 0.9
    summary = summary_metrics(heads, data)
    assert {"binary_auc_meems", "multilabel_auc_micro_baseline", "binary_fnr_argmax_meems"} <= set(summary)
    assert "rare_stratum_auc_meems" not in summary  # tiny data: no rare label
    assert {"val_distinct_captions", "train_sample_caption_iou"} <= set(fit.history[-1])
    table = paper_table(heads, data, "binary")
    assert {"MEEMS", "baseline", "all positive (reference)"} <= set(table.index)
    per_seed = fit_head_seeds(data, inputs, config, [1, 2], {"embed_hidden": 16, "embed_dim": 8,
                                                                "classifier_hidden": 4}, dropout=0.0)
    assert [seed for seed, _ in per_seed] == [1, 2]
    evidence = claim_evidence([(0, heads), *per_seed], data, inputs)
    assert {"seeds_binary_auc_meems", "seeds_multilabel_f1_argmax_baseline", "seeds_no_finding_silhouette_pca3_meems",
            "seeds_auc_gain_min_task"} <= set(evidence)
    assert all(ev.n_seeds == 3 for ev in evidence.values())
    assert evidence["seeds_binary_auc_meems"].n_items == 24 and evidence["seeds_label_partition_silhouette_meems"].n_items == 48
    assert evidence["seeds_binary_auc_meems"].per_seed[0].point() == pytest.approx(summary["binary_auc_meems"], abs=5e-5)
    recorded = evidence_metrics(evidence)
    assert recorded["seeds_binary_fnr_argmax_meems"] == evidence["seeds_binary_fnr_argmax_meems"].point()
    assert list(evidence_table(evidence, [0, 1, 2]).columns[-2:]) == ["mean", "SD"]
    words, maps = attention_words(captioner, data.test.grids[0], data.vocab, 10, 3, 5)
    assert 1 <= len(words) <= 5 and maps.shape == (len(words), 2, 2)
    np.testing.assert_allclose(maps.reshape(len(words), -1).sum(1), 1.0, atol=1e-5)
    assert embeddings(heads.models[("binary", "MEEMS")], inputs, "test", True).shape == (24, 8)


def test_prepare_meems_data_on_a_generated_world(data_root):
    from medvl_core.models.encoders import build_image_encoder

    world = {"n_studies": 30, "n_test_images": 12, "image_size": 32, "rare_stratum_fraction": 1.0}
    encoder = build_image_encoder("tiny:cnn-32", image_size=32)
    data = prepare_meems_data(encoder, world=world, max_words=12, vocab_min_count=1, progress=False)
    assert data.rare_label == "Pneumothorax"  # the default (drain) stratum
    assert data.train.grids.shape[1:] == (32, 1, 1) and len(data.train.captions) == len(data.train.paths)
    assert all(len(c.split()) <= 12 for c in data.train.captions) and len(data.vocab) > 4
    assert len(data.test.paths) == 12 and data.test.captions is None
    assert data.test.rare.dtype == bool and data.test.labels.shape == (12, 14)
    ptx = data.test.labels[:, data.label_names.index("Pneumothorax")] == 1
    assert (data.test.rare == ptx).all()  # rare_stratum_fraction=1: every drawn pneumothorax is treated
    assert not np.isnan(data.train.labels).any()


def test_subset_and_the_fine_tuned_pixel_baseline(data_root):
    from medvl_core.models.encoders import build_image_encoder
    from medvl_core.studies.meems.networks import ImageOnlyClassifier

    world = {"n_studies": 30, "n_test_images": 12, "image_size": 32}
    encoder = build_image_encoder("tiny:cnn-32", image_size=32)
    data = prepare_meems_data(encoder, world=world, max_words=12, vocab_min_count=1, max_images=10, progress=False)
    assert len(data.train.paths) == 10 and len(data.test.paths) == 10 and len(data.train.captions) == 10
    config = TrainConfig(epochs=2, global_batch_size=5, lr=1e-3, optimizer="adam", device="cpu", progress=False)
    model, fit = fit_finetuned_baseline(data, "tiny:cnn-32", "binary", config)
    assert isinstance(model, ImageOnlyClassifier) and {"val_loss", "val_auroc"} <= set(fit.history[-1])
    probs = predict_pixels(model, data.test.paths, "binary", batch_size=4)
    assert probs.shape == (10, 1) and ((probs >= 0) & (probs <= 1)).all()
    assert any(p.requires_grad for p in model.encoder.parameters())  # the CNN itself is trained


def test_grid_cache_is_reused_and_matches_the_encoder(data_root):
    from medvl_core.config import cache_dir
    from medvl_core.data import open_dataset
    from medvl_core.models.cache import image_tower_grids
    from medvl_core.models.encoders import build_image_encoder

    world = {"n_studies": 12, "n_test_images": 0, "image_size": 32}
    dataset = open_dataset("synth-cxr", root=world_root(world), split="train", text=False, **world)
    encoder = build_image_encoder("tiny:cnn-32", image_size=64)
    grids = image_tower_grids(encoder, dataset, progress=False)
    files = sorted(cache_dir("features").glob("*.pt"))
    again = image_tower_grids(encoder, dataset, progress=False)
    assert sorted(cache_dir("features").glob("*.pt")) == files and len(files) == 1
    assert grids.dtype == torch.float32 and grids.shape == (len(dataset), 32, 2, 2) and torch.equal(grids, again)
    with torch.no_grad():
        direct = encoder.forward_grid(encoder.preprocess(dataset[0]["image"]).unsqueeze(0))[0]
    torch.testing.assert_close(grids[0], direct, atol=2e-2, rtol=1e-2)  # float16 storage


def test_caption_example_text_wraps_without_cutting():
    frame = pd.DataFrame([{"image": 3, "reference": "no pleural effusion . " * 10, "generated (beam)": "the lungs are clear .",
                           "labels": "No Finding"}])
    text = caption_example_text(frame, width=40)
    assert text.startswith("image 3 (No Finding)") and all(len(line) <= 40 for line in text.splitlines())
    assert text.replace("\n", " ").count("effusion") == 10 and "the lungs are clear ." in text


def test_bad_items_fail_before_training_or_are_skipped_and_counted(data_root):
    from medvl_core.data import open_dataset
    from medvl_core.errors import DataFormatError
    from medvl_core.models.encoders import build_image_encoder
    from medvl_core.worlds.synth_cxr import generate_synth_cxr

    root = generate_synth_cxr(data_root / "mimic", n_studies=30, n_test_images=4, image_size=32,
                              report_source="template")
    train = open_dataset("mimic-cxr", root=root, split="train")
    truncated, emptied = train.records[0]["path"], train.records[1]["report_path"]
    with open(truncated, "r+b") as fh:
        fh.truncate(40)
    open(emptied, "w").close()
    encoder = build_image_encoder("tiny:cnn-32", image_size=32)
    with pytest.raises(DataFormatError, match="2 bad items found before training") as error:
        prepare_meems_data(encoder, "mimic-cxr", root=root, max_words=12, vocab_min_count=1, progress=False)
    assert truncated in str(error.value) and emptied in str(error.value) and "bad_items='skip'" in str(error.value)
    with pytest.warns(UserWarning, match="skipped 2 bad items"):
        data = prepare_meems_data(encoder, "mimic-cxr", root=root, max_words=12, vocab_min_count=1,
                                    progress=False, bad_items="skip")
    assert data.skipped == {"train": 2} and len(data.train.paths) == len(train.records) - 2
    assert truncated not in data.train.paths and len(data.train.captions) == len(data.train.paths)


def test_published_results_line_is_read_from_published_yaml():
    from medvl_core.studies.meems import published_results

    assert published_results("table_1") == "baseline AUC 0.76, F1 0.815; MEEMS AUC 0.79, micro 0.89, F1 0.817"
    assert published_results("table_2") == "baseline AUC 0.82, F1 0.364; MEEMS AUC 0.85, F1 0.378"


def test_stratum_word_use_counts_the_rare_words_per_group_and_is_none_without_a_stratum():
    from types import SimpleNamespace

    import numpy as np

    from medvl_core.studies.meems import stratum_word_use

    train = SimpleNamespace(captions=["subpulmonic effusion", "left effusion", "clear lungs"],
                            rare=np.array([True, False, False]))
    labels = np.array([[1.0], [1.0], [0.0], [0.0]])
    test = SimpleNamespace(labels=labels, rare=np.array([True, False, False, False]))
    data = SimpleNamespace(rare_label="Pleural Effusion", label_names=["Pleural Effusion"], train=train, test=test)
    words, table = stratum_word_use(data, ["subpulmonic effusion", "effusion", "subpulmonic", "clear"])
    assert words == ["subpulmonic"]
    assert table["captions with the words"].tolist() == [1, 0, 1] and table["n images"].tolist() == [1, 1, 2]
    assert stratum_word_use(SimpleNamespace(rare_label=None, train=train, test=test), []) is None
