"""The contrastive ablation recipe end to end on a tiny SynthCXR world with tiny towers (both profiles)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from medvl_core.errors import MedvlError
from medvl_core.eval.contrastive_fit import COMPETITION, Variant, ablation_variants, fit_variant
from medvl_core.eval.metrics import macro_auroc
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.studies.loss_relaxation import prepare as lr_prepare
from medvl_core.studies.loss_relaxation.arms import AblationResult, run_ablation, sentences_sweep, threshold_sweep
from medvl_core.studies.loss_relaxation.claims import sweep_reading, verdicts
from medvl_core.studies.loss_relaxation.figures import sampled_example, training_curves
from medvl_core.studies.loss_relaxation.prepare import paper_test_labels, prepare_study, zero_shot_set
from medvl_core.studies.loss_relaxation.tables import (
    ablation_table,
    ensemble_ci_table,
    label_sharing,
    paper_metrics,
    zero_shot_set_metrics,
    zero_shot_set_table,
)
from medvl_core.train import TrainConfig

LABELS = ["Cardiomegaly", "Pleural Effusion", "Lung Opacity"]
WORLD = dict(n_studies=60, n_test_images=30, image_size=32, report_source="template")


@pytest.fixture(scope="module")
def towers():
    return build_image_encoder("tiny:cnn-32", image_size=32), build_text_encoder("tiny:text-32")


def test_variants_cover_table6():
    names = [(v.name, v.sentences_per_report, v.relax) for v in ablation_variants(2, 0.4, 5.0)]
    assert names == [("baseline", None, None), ("+ sentence sampling", 2, None),
                     ("+ loss relaxation", None, (0.4, 5.0)), ("+ both", 2, (0.4, 5.0))]
    assert [v.framework for v in ablation_variants(framework="uniclip")] == ["uniclip"] * 4


@pytest.mark.parametrize("trainable", ["projections", "last"])
def test_ablation_runs_and_tables(tmp_path, towers, trainable):
    study = prepare_study(*towers, labels=LABELS, root=tmp_path / "w", cache=trainable == "projections",
                             progress=False, **WORLD)
    assert study.test.labels.shape == (30, 3) and study.train.owners and len(study.train.owners) == len(study.train.dataset)
    config = TrainConfig(epochs=2, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    variants = ablation_variants(2)[::3]
    result = run_ablation(study, variants, [0, 1], config, embed_dim=16, trainable=trainable, progress=False)
    assert result.variants == ["baseline", "+ both"] and set(result.models) == {"baseline", "+ both"}
    probs = result.test_probs["+ both"][1]
    assert probs.shape == (30, 3) and np.all((probs > 0) & (probs < 1))
    assert np.allclose(result.ensemble("+ both"), (result.test_probs["+ both"][0] + probs) / 2)
    table = ablation_table(result, study.test.labels)
    assert list(table["variant"]) == ["untrained (random projections)", "baseline", "+ both"]
    alignment = result.alignment["+ both"][1]
    assert set(alignment) == {"sentence", "report"} and all(-1.0 <= v <= 1.0 for v in alignment.values())
    claims = verdicts(result, study.test.labels, n_resamples=50, frameworks=("clip",))
    assert list(claims["framework"]) == ["CLIP"] and claims["p (paired bootstrap)"].between(0, 1).all()
    assert set(claims["this run"]) <= {"supported", "contradicted", "not shown (p >= 0.05)"}


def test_profile_mismatch_is_reported(tmp_path, towers):
    study = prepare_study(*towers, labels=LABELS, root=tmp_path / "w", cache=True, progress=False, **WORLD)
    with pytest.raises(Exception, match="cache=False"):
        fit_variant(study, Variant("baseline"), 0, TrainConfig(epochs=1, progress=False), trainable="all")


def test_best_variant_is_chosen_on_validation_never_on_test():
    Y_val = np.array([[0.0], [1.0], [0.0], [1.0]])
    good, bad = np.array([[0.1], [0.9], [0.2], [0.8]]), np.array([[0.9], [0.1], [0.8], [0.2]])
    result = AblationResult(["x"], val_probs={"a": {0: bad}, "b": {0: good}},
                            test_probs={"a": {0: good}, "b": {0: bad}})  # the test set would pick "a"
    assert result.best_variant(Y_val) == "b"


def test_slip_and_uniclip_arms_train_on_cached_views(tmp_path, towers):
    study = prepare_study(*towers, labels=LABELS, root=tmp_path / "w", progress=False, cached_views=2, **WORLD)
    assert study.train.view_features.shape == (len(study.train.dataset), 2, 32)
    assert study.train.view_params.shape == (len(study.train.dataset), 2, 5)
    config = TrainConfig(epochs=1, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    variants = ablation_variants(2, framework="slip")[3:] + ablation_variants(2, framework="uniclip")[3:]
    assert [v.name for v in variants] == ["SLIP: + both", "UniCLIP: + both"]
    result = run_ablation(study, variants, [0], config, embed_dim=16, progress=False)
    assert result.models["SLIP: + both"].ssl_head is not None
    assert result.models["UniCLIP: + both"].domain_similarity is not None
    assert result.test_probs["UniCLIP: + both"][0].shape == (30, 3)
    no_views = prepare_study(*towers, labels=LABELS, root=tmp_path / "w", progress=False, **WORLD)
    with pytest.raises(MedvlError, match="cached_views=2"):
        run_ablation(no_views, variants[:1], [0], config, embed_dim=16, progress=False)


def test_sampled_sentences_are_joined_and_encoded_not_averaged(towers):
    from medvl_core.data.pairs import ImageTextPairs, epoch_text
    from medvl_core.models.cache import EpochTextFeatures

    reports = ["Heart is enlarged. No effusion. Lungs clear. Small nodule.", "Normal chest.", "A. B. C. D. E."]
    texts = EpochTextFeatures(towers[1], reports, 2, seed=0, epochs=3, progress=False)
    assert texts(1).shape == (3, 32) and len(texts.features) <= 3 * 3
    torch.testing.assert_close(texts(4), texts(1))  # draws repeat every `epochs` epochs
    second = [epoch_text(r, 2, 0, 1, i) for i, r in enumerate(reports)]
    assert all(len(t.split(". ")) <= 2 for t in second) and second[1] == "Normal chest."
    tokens = towers[1].tokenize(second)
    with torch.no_grad():
        encoded = towers[1].eval()(tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(texts(1), encoded, atol=1e-5, rtol=1e-4)

    from PIL import Image

    class Reports:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"id": i, "image": Image.new("RGB", (32, 32)), "text": reports[i]}

    pairs = ImageTextPairs(Reports(), towers[0].preprocess, sentences_per_report=2, seed=0)
    pairs.set_epoch(1)
    assert [pairs.text_for(i) for i in range(3)] == second  # the GPU path draws the same sentences


def test_paper_tables_as_metrics_select_on_validation(tmp_path, towers):
    labels = COMPETITION + ["Lung Opacity"]
    study = prepare_study(*towers, labels=labels, root=tmp_path / "w", progress=False, **WORLD)
    config = TrainConfig(epochs=2, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    result = run_ablation(study, ablation_variants(2), [0, 1], config, embed_dim=16, progress=False)
    history = result.history["+ both"][0]
    assert {"train_loss", "val_auroc_5", "val_auroc"} <= set(history.columns) and len(history) == 2
    m = paper_metrics(result, study, frameworks=("clip",))
    assert m["t3_best_single"] == m["t4_best_ensemble"] == "+ both"  # the only "w/ ours" arm
    assert {"t6_clip_none_avg5", "t6_clip_both_pleural_effusion", "t1_clip_w_avgtotal", "t2_clip_ensemble_wo_mcc",
            "t5_clip_w_report", "t4_f1", "t3_chexpert5_auc"} <= set(m)
    five = [study.label_names.index(c) for c in COMPETITION]
    per_seed = [macro_auroc(study.validate.labels[:, five], p[:, five]) for p in result.val_probs["baseline"].values()]
    assert m["t6_clip_none_avg5"] == pytest.approx(np.mean(per_seed), abs=1e-4)
    assert all(-1.0 <= m[k] <= 1.0 or np.isnan(m[k]) for k in m if k.startswith(("t1_", "t2_", "t6_")))
    assert 0.0 <= m["t1_clip_w_avgtotal"] <= 1.0 and 0.0 <= m["t2_clip_single_w_f1"] <= 1.0
    curves = training_curves(result, ["baseline", "+ both"])
    assert list(curves["variant"].unique()) == ["baseline", "+ both"] and len(curves) == 4
    sweep = threshold_sweep(study, [0.3, 0.7], config, embed_dim=16)
    assert list(sweep["t"]) == [0.3, 0.7] and sweep["validation Avg. 5 AUC"].between(0, 1).all()
    by_n = sentences_sweep(study, [1, 2], config, embed_dim=16)
    assert list(by_n["n"]) == [1, 2] and by_n["validation Avg. 5 AUC"].between(0, 1).all()
    same = threshold_sweep(study, [0.5], config, embed_dim=16, sentences_per_report=2)  # n=2, t=0.5 again
    assert same["validation Avg. 5 AUC"].iloc[0] == pytest.approx(by_n["validation Avg. 5 AUC"].iloc[1], abs=1e-9)
    table4 = ensemble_ci_table(result, study, "+ both", n_resamples=50, frameworks=("clip",))
    assert list(table4.index) == ["mean AUC", "Mean F1", "Mean MCC"] and table4.loc["mean AUC", "low"] <= table4.loc["mean AUC", "point"]


def test_label_sharing_counts_reports_per_label_combination():
    nan = np.nan
    labels = np.array([[1, 1, 0], [1, 1, 1], [1, nan, -1], [0, 0, 1]])
    shared = label_sharing(labels, max_n=3)
    # n=1: label0 in 3 reports, label1 in 2, label2 in 2 -> 7/3; n=2: (0,1) x2, (0,2) x1, (1,2) x1 -> 4/3; n=3: 1
    assert shared[1] == pytest.approx(7 / 3) and shared[2] == pytest.approx(4 / 3) and shared[3] == 1.0


def test_sampled_example_on_a_real_report():
    example = sampled_example({"findings": "Heart size normal. Lungs are clear. No effusion.", "impression": "No acute disease."})
    assert example["sentences"][-1] == "No acute disease." and len(example["sentences"]) == 4
    drawn = list(example.values())[2]
    assert len([s for s in example["sentences"] if s in drawn]) == 3


# ------------------------------------------------------------------ the paper's other zero-shot test sets

@pytest.fixture(scope="module")
def paper_sets_root(tmp_path_factory):
    from cxr_test_trees import write_paper_test_sets

    return write_paper_test_sets(tmp_path_factory.mktemp("paper_sets"))


def test_padchest_set_keeps_physician_rows_and_labels_over_100(paper_sets_root, monkeypatch):
    monkeypatch.setenv("MEDVL_DATA", str(paper_sets_root))
    zs = zero_shot_set("padchest")
    assert len(zs.split.labels) == 130  # the 3 RNN-labelled rows are not the paper's test set
    assert zs.label_names == ["cardiomegaly", "nodule"] and zs.positives == {"cardiomegaly": 110, "nodule": 108}
    assert zs.dropped["pacemaker"] == 5 and zs.dropped["Air trapping"] == 0 and len(zs.dropped) == 59
    assert zs.paper_n == 15091


def test_vindr_set_counts_any_reader_positive_and_keeps_over_20(paper_sets_root, monkeypatch):
    monkeypatch.setenv("MEDVL_DATA", str(paper_sets_root))
    zs = zero_shot_set("vindr-cxr")
    assert zs.split.labels.shape == (30, 1) and zs.positives == {"cardiomegaly": 25}
    assert zs.dropped["ILD"] == 3 and zs.dropped["nodule/mass"] == 15  # 15 positives: not more than 20


def test_open_i_set_is_frontal_reports_labelled_by_text(paper_sets_root, monkeypatch):
    from medvl_core.text.labeler import label_reports

    monkeypatch.setenv("MEDVL_DATA", str(paper_sets_root))
    zs = zero_shot_set("open-i")
    texts = [r["text"] for r in zs.split.dataset.records]
    assert 0 < len(texts) <= 30 and all(len(t) >= 10 for t in texts)
    assert all(r["view"] in ("PA", "AP") for r in zs.split.dataset.records)
    assert set(zs.prompt_names) <= {n.lower() for n in label_reports.__globals__["CHEXPERT_LABELS"]}
    assert "Enlarged cardiomeastinum" in {**zs.positives, **zs.dropped}  # Table 9's spelling, kept as printed
    assert {"atelectasis", "cardiomegaly", "consolidation", "edema", "pleural effusion"} <= set(zs.prompt_names)


def test_unknown_set_and_set_without_passing_labels_are_clear_errors(paper_sets_root, monkeypatch):
    from medvl_core.errors import MedvlError

    monkeypatch.setenv("MEDVL_DATA", str(paper_sets_root))
    with pytest.raises(MedvlError, match="zero_shot_sets: 'chexpert-plus' is not one of"):
        zero_shot_set("chexpert-plus")
    spec = {**paper_test_labels("vindr-cxr"), "min_positives": 1000}
    monkeypatch.setattr(lr_prepare, "paper_test_labels", lambda name: spec)
    with pytest.raises(MedvlError, match="no label of vindr-cxr passes"):
        zero_shot_set("vindr-cxr")


def test_ablation_scores_the_zero_shot_sets(tmp_path, towers, paper_sets_root, monkeypatch):
    monkeypatch.setenv("MEDVL_DATA", str(paper_sets_root))
    study = prepare_study(*towers, labels=LABELS, root=tmp_path / "w", progress=False,
                             zero_shot_sets=["padchest", "vindr-cxr"], **WORLD)
    config = TrainConfig(epochs=1, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    result = run_ablation(study, ablation_variants(2)[:1], [0, 1], config, embed_dim=16, progress=False)
    assert result.set_probs["padchest"]["baseline"][1].shape == (130, 2)
    assert result.set_probs["vindr-cxr"]["baseline"][0].shape == (30, 1)
    metrics = zero_shot_set_metrics(result, study, "baseline", "t1_clip_wo")
    assert set(metrics) == {"t1_clip_wo_padchest_avgtotal", "t1_clip_wo_vindr_avgtotal"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    table = zero_shot_set_table(study)
    assert list(table["labels kept"]) == [2, 1] and list(table["paper images"]) == [15091, 3000]


def test_sweep_reading_compares_the_best_point_with_the_paper_choice_and_seed_spread():
    sweep = __import__("pandas").DataFrame({"n": [1, 2, 3], "validation Avg. 5 AUC": [0.90, 0.93, 0.92]})
    text = sweep_reading(sweep, "n", 3, seed_sd=0.02)
    assert text == ("Best n here: 2 (0.930) vs the paper's n = 3 (0.920): beats the paper's choice by 0.010, within "
                    "the seed SD of that arm (0.020).")
    assert "more than" in sweep_reading(sweep, "n", 1, seed_sd=0.02)
    assert sweep_reading(sweep, "n", 2, seed_sd=0.02).endswith("agrees with the paper's choice.")
    assert "was not swept" in sweep_reading(sweep, "n", 5, seed_sd=0.02)


def test_bad_items_fail_before_training_or_are_skipped_and_counted(tmp_path, towers):
    from medvl_core.data import open_dataset
    from medvl_core.errors import DataFormatError

    root = tmp_path / "w"
    prepare_study(*towers, labels=LABELS, root=root, progress=False, **WORLD)  # generates the world
    first = open_dataset("synth-cxr", root, split="train", **{k: v for k, v in WORLD.items()}).records[0]["path"]
    Path(first).write_bytes(b"not an image")
    with pytest.raises(DataFormatError, match=r"1 bad items found before training:\n  unreadable image: .*"):
        prepare_study(*towers, labels=LABELS, root=root, progress=False, **WORLD)
    with pytest.warns(UserWarning, match="skipped 1 bad items"):
        study = prepare_study(*towers, labels=LABELS, root=root, progress=False, bad_items="skip", **WORLD)
    assert study.skipped["synth-cxr/train"] == 1 and sum(study.skipped.values()) == 1
    assert len(study.train.texts) == len(study.train.dataset) == len(study.train.labels)
