"""Zhong et al.'s four variants, perturbed training pairs and the discrimination test (Table IV) on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medvl_core.errors import ParameterError
from medvl_core.losses import LossWeights
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.models.multiscale import ImageEmbedder, TextEmbedder
from medvl_core.studies.perturbed_report_discrimination.arms import (
    VARIANTS,
    PerturbedPairs,
    fit_variant,
    loss_history,
    train_variants,
    variant_weights,
)
from medvl_core.studies.perturbed_report_discrimination.discrimination import (
    discrimination_accuracy,
    discrimination_scores,
    discrimination_table,
    original_credit,
    table_iv,
)
from medvl_core.studies.perturbed_report_discrimination.evidence import claim_evidence
from medvl_core.studies.perturbed_report_discrimination.prepare import (
    PixelImages,
    ReportSplit,
    cached_perturbations,
    dataset_options,
    first_words,
    held_out_by_count,
    prepare_perturbed_study,
)
from medvl_core.studies.perturbed_report_discrimination.seeds import seed_metrics, seed_results, seed_summary
from medvl_core.studies.perturbed_report_discrimination.tables import (
    average_accuracy,
    classification_arrays,
    classification_table,
    nli_table,
    study_metrics,
    table_i,
    table_ii,
)
from medvl_core.text.perturb import PERTURBATIONS
from medvl_core.train import TrainConfig

WORLD = dict(n_studies=40, n_test_images=20, image_size=32, report_source="template")


@pytest.fixture(scope="module")
def towers():
    return build_image_encoder("tiny:cnn-32", image_size=32), build_text_encoder("tiny:text-32")


@pytest.fixture(scope="module")
def cached_study(towers, tmp_path_factory):
    return prepare_perturbed_study(*towers, root=tmp_path_factory.mktemp("w"), cached=True, **WORLD)


def test_variants_map_to_loss_weights():
    weights = {v: variant_weights(v, alpha=0.2, beta=0.3) for v in VARIANTS}
    assert weights == {"ConVIRT": LossWeights(0.0, 0.0), "GLoRIA": LossWeights(0.2, 0.0),
                       "ours w/o local": LossWeights(0.0, 0.3), "ours": LossWeights(0.2, 0.3)}
    with pytest.raises(ParameterError, match="ConVIRT"):
        variant_weights("CLIP")


def toy_split():
    texts = ["a small left effusion", "the heart is large"]
    perturbed = [{"reverse": "effusion left small a", "antonym_adjs": "a large right effusion", "shuffle_all": None},
                 {"reverse": "large is heart the", "antonym_adjs": None, "shuffle_all": None}]
    return ReportSplit(torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4), texts, perturbed,
                          np.zeros((2, 0)), [])


def test_pairs_draw_available_perturbations_per_epoch_and_mask_the_rest(towers):
    pairs = PerturbedPairs(toy_split(), lambda texts: {"n": len(texts), "texts": texts}, n_perturbations=2, seed=3)
    versions, valid = pairs.versions(0)
    assert sorted(versions) == ["a large right effusion", "effusion left small a"] and valid == [True, True]
    versions, valid = pairs.versions(1)
    assert versions == ["large is heart the", "the heart is large"] and valid == [True, False]
    one = PerturbedPairs(toy_split(), None, n_perturbations=1, seed=3)
    drawn = {one.versions(0)[0][0] for one.epoch in range(12)}
    assert len(drawn) == 2  # K < available kinds: both kinds are drawn across epochs
    pairs.set_epoch(5)
    assert pairs.versions(0) == pairs.versions(0)
    batch = pairs.collate([pairs[0], pairs[1]])
    assert batch["images"].shape == (2, 3, 4) and batch["n"] == 6
    assert batch["texts"][:2] == toy_split().texts and batch["perturbation_mask"].tolist() == [[True, True], [True, False]]
    assert batch["texts"][4:] == pairs.versions(1)[0]


def test_pairs_with_all_nine_use_every_available_kind_and_mask_the_dropped_ones():
    pairs = PerturbedPairs(toy_split(), lambda texts: {"texts": texts}, seed=0)  # default K = 9, the paper's
    assert pairs.k == 9
    versions, valid = pairs.versions(0)
    assert versions[:2] == ["effusion left small a", "a large right effusion"] and valid == [True, True] + [False] * 7
    assert versions[2:] == ["a small left effusion"] * 7  # placeholders, masked out of the loss
    assert toy_split().dropped()["shuffle_all"] == 2 and toy_split().dropped()["antonym_adjs"] == 1
    with pytest.raises(ParameterError, match="between 0 and 9"):
        PerturbedPairs(toy_split(), None, n_perturbations=10)


def test_discrimination_accuracy_counts_wins_ties_and_chance():
    scores = pd.DataFrame({
        "image": [0, 0, 0, 1, 1, 2, 2],
        "kind": ["original", "reverse", "antonym_adjs", "original", "reverse", "original", "reverse"],
        "cosine": [0.9, 0.5, 0.95, 0.4, 0.4, 0.7, 0.1],
    })
    table = discrimination_accuracy(scores).set_index("kind")
    assert table.loc["reverse", "accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert table.loc["antonym_adjs", "accuracy"] == 0 and table.loc["antonym_adjs", "n_images"] == 1
    overall = table.loc["overall (all candidates)"]
    assert overall["accuracy"] == pytest.approx((0 + 0.5 + 1) / 3)
    assert overall["chance"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3) and overall["n_images"] == 3
    assert list(table.index) == ["reverse", "antonym_adjs", "overall (all candidates)"]


def test_tied_candidates_share_the_credit_fairly():
    scores = pd.DataFrame({"image": [0, 0, 0, 1, 1], "kind": ["original", "reverse", "antonym_adjs", "original", "reverse"],
                           "cosine": [0.5, 0.5, 0.5, 0.2, 0.3]})
    credit = original_credit(scores)
    assert credit.loc[0] == pytest.approx(1 / 3) and credit.loc[1] == 0  # a 3-way tie is chance (1/3), not a loss


def test_study_splits_are_perturbed_and_cached(cached_study):
    train = cached_study.train
    assert train.images.ndim == 3 and train.images.shape[0] == len(train.texts) == len(train.perturbed)
    assert all(set(p) == set(PERTURBATIONS) for p in train.perturbed)
    assert all(v is None or v != t for t, p in zip(train.texts, train.perturbed) for v in p.values())
    assert cached_study.classify_test.images.shape[0] == 20
    again = cached_perturbations(train.texts)
    assert again == train.perturbed


def test_four_variants_train_and_are_evaluated(cached_study):
    config = TrainConfig(epochs=1, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    fits = train_variants(cached_study, config, embed_dim=16, text_dim=32, text_layers=1, max_length=48, image_dim=16)
    assert list(fits) == list(VARIANTS)
    history = loss_history(fits)
    last = history[history["epoch"] == 1].pivot(index="variant", columns="term", values="value")
    assert (last.loc["ConVIRT", ["local", "perturbation"]] == 0).all()
    assert last.loc["GLoRIA", "local"] > 0 and last.loc["GLoRIA", "perturbation"] == 0
    assert last.loc["ours w/o local", "perturbation"] > 0 and last.loc["ours w/o local", "local"] == 0
    assert (last.loc["ours", ["local", "perturbation"]] > 0).all()
    table = discrimination_table(fits, cached_study.test)
    assert list(table.columns) == [*VARIANTS, "chance", "n_images"]
    table4 = table_iv(fits, cached_study.test, n_boot=100)
    assert list(table4.index) == list(VARIANTS)
    assert ((table4["ci_low"] <= table4["accuracy"]) & (table4["accuracy"] <= table4["ci_high"])).all()
    metrics = study_metrics(table4, per_kind=table)
    assert {"discrimination_accuracy_ours_ci_low", "discrimination_reverse_convirt", "discrimination_chance"} <= set(metrics)
    assert table.loc["overall (all candidates)", "n_images"] == len(cached_study.test.texts)
    assert ((table[list(VARIANTS)] >= 0) & (table[list(VARIANTS)] <= 1)).all().all()
    model = fits["ours"][0]
    text = TextEmbedder(model)(["no effusion", "large heart"])
    image = ImageEmbedder(model)(cached_study.test.images[:3])
    assert text.shape == (2, 16) and image.shape == (3, 16) and text.requires_grad


def test_perturbation_term_is_learned(cached_study):
    config = TrainConfig(epochs=12, global_batch_size=8, lr=3e-3, progress=False, device="cpu")
    _, result = fit_variant(cached_study, "ours w/o local", config, beta=1.0, n_perturbations=3, embed_dim=16,
                               text_dim=32, text_layers=1, max_length=48, image_dim=16)
    losses = result.history_frame()["train_perturbation"]
    assert losses.iloc[0] > 1.0 and losses.iloc[-3:].mean() < 0.6 * losses.iloc[0]  # chance: log(4) = 1.39


def test_trainable_towers_on_pixels(towers, tmp_path):
    study = prepare_perturbed_study(*towers, root=tmp_path / "w", cached=False, max_train=16, max_test=6, **WORLD)
    assert isinstance(study.train.images, PixelImages) and study.train.images[0].shape == (3, 32, 32)
    config = TrainConfig(epochs=1, global_batch_size=8, lr=1e-3, progress=False, device="cpu")
    before = [p.detach().clone() for p in study.image_tower.parameters()]
    model, result = fit_variant(study, "ours", config, embed_dim=16, max_length=48)
    assert result.steps == 2 and np.isfinite(result.history[-1]["train_loss"])
    tower = model.image_backbone.tower
    assert tower is not study.image_tower and any(not torch.equal(a, b) for a, b in zip(before, tower.parameters()))
    table = discrimination_accuracy(discrimination_scores(model, study.test))
    assert table["n_images"].iloc[-1] == len(study.test.texts) > 0
    X, Y = classification_arrays(study.classify_test, ["Consolidation", "Pleural Effusion"])
    assert X.shape == (20, 3, 32, 32) and Y.shape == (20, 2) and set(np.unique(Y[~np.isnan(Y)])) <= {0.0, 1.0}
    assert ImageEmbedder(model)(X[:2]).shape == (2, 16)
    with pytest.raises(ParameterError, match="not in this dataset"):
        classification_arrays(study.classify_test, ["Tumour"])


def test_token_ids_match_direct_tokenisation_and_reuse_rows(towers):
    from medvl_core.losses import word_index
    from medvl_core.models.multiscale import TokenIds

    tokenizer = towers[1].tokenizer
    ids = TokenIds(tokenizer, 32)
    texts = ["small left effusion.", "no pneumothorax", "small left effusion."]
    direct = word_index(tokenizer, texts, 32)
    cached = ids(texts)
    assert torch.equal(cached["text_input"], direct["input_ids"]) and torch.equal(cached["word_ids"], direct["word_ids"])
    assert torch.equal(cached["attention_mask"], direct["attention_mask"]) and len(ids.rows) == 2


def test_frozen_token_features_run_the_tower_once_per_text(towers, data_root):
    from medvl_core.models.multiscale import FrozenTokenFeatures

    tower = towers[1]
    calls = []
    forward = tower.forward_tokens
    tower.forward_tokens = lambda ids, mask: (calls.append(len(ids)), forward(ids, mask))[1]
    try:
        features = FrozenTokenFeatures(tower, 32)
        batch = features(["small left effusion.", "no pneumothorax"])
        again = features(["no pneumothorax", "small left effusion."])
        assert calls == [2]  # both texts in one pass; the second call reads them back
        fresh = FrozenTokenFeatures(tower, 32)  # a new process, in effect: the same texts come from the disk cache
        from_disk = fresh(["small left effusion.", "no pneumothorax"])
        assert calls == [2] and len(list((data_root / "cache" / "features").glob("*.pt"))) == 1
        FrozenTokenFeatures(tower, 16)(["no pneumothorax"])  # another token limit is another cache entry
        assert calls == [2, 1]
    finally:
        del tower.forward_tokens
    for key in batch:
        assert torch.equal(from_disk[key], batch[key])
    tokens = tower.tokenize(["no pneumothorax"])
    with torch.no_grad():
        direct = tower.forward_tokens(tokens["input_ids"], tokens["attention_mask"])[0]
    n = int(again["attention_mask"][0].sum())
    assert torch.allclose(again["text_input"][0, :n], direct[:n], atol=2e-3)  # float16 storage
    assert batch["text_input"].shape[:2] == batch["word_ids"].shape and copy_is_shared(features)


def copy_is_shared(features):
    import copy

    return copy.deepcopy(features) is features


def test_local_loss_moves_the_global_embeddings(towers):
    """The demo's adapters feed both the global and the local projections, so L_local trains the global path too."""
    from medvl_core.losses import local_contrastive_loss
    from medvl_core.models.multiscale import build_multiscale

    torch.manual_seed(0)
    model = build_multiscale(*towers, embed_dim=16, cached=True, text_dim=32, text_layers=0, max_length=32, image_dim=16)
    batch = model.tokenize(["small left effusion", "no pneumothorax", "large heart"])
    out = model(torch.randn(3, 4, towers[0].grid_dim), **batch)
    local_contrastive_loss(out.regions, out.words, out.word_mask).backward()
    assert model.text_backbone.input.weight.grad.abs().sum() > 0
    assert model.image_backbone.adapter[0].weight.grad.abs().sum() > 0
    assert model.text_global.weight.grad is None and model.image_global.weight.grad is None


def test_multiscale_model_outputs_and_word_order_sensitivity(towers):
    from medvl_core.errors import ParameterError as Err
    from medvl_core.models.multiscale import build_multiscale

    torch.manual_seed(0)
    model = build_multiscale(*towers, embed_dim=16, cached=True, text_dim=32, max_length=32, image_dim=16).eval()
    grids = torch.randn(2, 4, towers[0].grid_dim)
    batch = model.tokenize(["small left effusion", "effusion left small"])
    out = model(grids, **batch)
    assert out.image.shape == (2, 16) and out.regions.shape == (2, 4, 16) and out.text.shape == (2, 16)
    assert out.words.shape == (2, 3, 16) and out.word_mask.all()
    assert torch.allclose(out.text.norm(dim=-1), torch.ones(2)) and torch.allclose(out.regions.norm(dim=-1), torch.ones(2, 4))
    assert not torch.allclose(out.text[0], out.text[1], atol=1e-4)  # same words, other order -> other embedding
    assert not any(name.startswith("text_inputs") for name, _ in model.named_parameters())  # the tower stays frozen
    with pytest.raises(Err, match="cached grid"):
        model.encode_images(torch.randn(2, 4, 7))


def test_cached_perturbations_same_order_when_computed_and_when_read(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVL_DATA", str(tmp_path))
    texts = ["There is a small left pleural effusion and mild cardiomegaly.", "The lungs are clear."]
    first = cached_perturbations(texts, seed=0)  # computed
    again = cached_perturbations(texts, seed=0)  # read from the cache
    assert [list(d) for d in first] == [list(d) for d in again] and first == again


def test_table_ii_has_average_and_constant_guess_references():
    frame = pd.DataFrame({"label": ["Consolidation", "Pleural Effusion"], "accuracy": [0.8, 0.6], "auroc": [0.7, 0.9]})
    Y = np.array([[0, 1], [0, 0], [1, np.nan], [0, 1]], dtype=np.float32)
    table = classification_table({"ours": frame}, Y, ["Consolidation", "Pleural Effusion"])
    assert table.loc["ours", "Average accuracy"] == pytest.approx(0.7)
    assert table.loc["all-negative", "Consolidation accuracy"] == pytest.approx(0.75)
    assert table.loc["all-positive", "Pleural Effusion accuracy"] == pytest.approx(2 / 3)  # NaN left out
    metrics = study_metrics(pd.DataFrame({"accuracy": [0.5], "ci_low": [0.4], "ci_high": [0.6], "chance": [0.1]},
                                            index=["ours"]), classification=table)
    assert metrics["average_accuracy_all_negative"] == pytest.approx((0.75 + 1 / 3) / 2, abs=1e-4)
    assert metrics["consolidation_accuracy_ours"] == 0.8


def per_item_seeds():
    """Two seeds of per-item results on one test set: Table IV credit (5 images, a tie), Table II correctness (4 images,
    2 labels, one label not stated), and NLI fine-tune results (6 pairs)."""
    def seed(shift):
        credit = {"ours": [1, 1, 0.5, 1, 0], "ours w/o local": [1, 0, 0.5, 1, 0], "GLoRIA": [0, 0, 1 / 3, 1, 0],
                  "ConVIRT": [0, 0, 0, 1, 0]}
        correct = {v: np.array([[1, 1], [0, 1], [1, np.nan], [shift, i % 2]], dtype=float) for i, v in enumerate(VARIANTS)}
        return {v: {"table_iv": np.roll(np.array(credit[v], dtype=float), shift), "table_ii": correct[v]} for v in VARIANTS}

    nli = {v: {"y_true": np.array([0, 1, 2, 0, 1, 2]), "y_pred": np.array([0, 1, 2, 0, 1, i % 3]), "accuracy": 0.0,
               "per_label": {}, "n_test": 6} for i, v in enumerate(VARIANTS)}
    for result in nli.values():
        result["accuracy"] = float(np.mean(result["y_pred"] == result["y_true"]))
    return {0: seed(0), 1: seed(1)}, nli


def test_claim_evidence_is_built_from_per_item_results_and_equals_the_recorded_metrics():
    from medvl_core.compare import check_evidence
    from medvl_core.eval.claims import judge
    from medvl_core.papers import paper_claims

    by_seed, nli = per_item_seeds()
    evidence = claim_evidence(by_seed, nli)
    stems = ("convirt", "gloria", "ours_wo_local", "ours")
    assert set(evidence) == {f"claim_{t}_{s}" for t in ("discrimination_accuracy", "average_accuracy", "nli_accuracy")
                             for s in stems}
    table_iv_ours = evidence["claim_discrimination_accuracy_ours"]
    assert (table_iv_ours.n_seeds, table_iv_ours.n_items) == (2, 5) and table_iv_ours.point() == pytest.approx(0.7)
    table_ii_ours = evidence["claim_average_accuracy_ours"]  # labels 2/4 and 3/3 (one not stated); then 3/4 and 3/3
    assert (table_ii_ours.n_seeds, table_ii_ours.n_items) == (2, 4)
    assert table_ii_ours.point() == pytest.approx(np.mean([(2 / 4 + 1) / 2, (3 / 4 + 1) / 2]))
    assert evidence["claim_nli_accuracy_ours_wo_local"].n_seeds == 1 and evidence["claim_nli_accuracy_ours_wo_local"].point() == 1.0
    assert evidence["claim_nli_accuracy_ours"].point() == pytest.approx(5 / 6)
    metrics = {**seed_metrics(seed_summary(by_seed)), **study_metrics(
        pd.DataFrame({"accuracy": [0.5], "ci_low": [0.4], "ci_high": [0.6], "chance": [0.1]}, index=["ours"]),
        nli_table(nli))}
    assert set(evidence) <= set(metrics)
    check_evidence(evidence, metrics)  # each point equals the metric the notebook records under its key
    claims = paper_claims("perturbed_report_discrimination")
    used = {k for c in claims if c.testable for k in (c.a, c.b)}
    assert used <= set(evidence)
    judged = {j.claim.id: j for j in judge(claims, evidence, n_resamples=200)}
    assert judged["intro_mednli"].verdict == "not testable here" and judged["intro_radnli"].seeds == 1
    assert judged["results_table_iv_vs_convirt"].diff == pytest.approx(0.7 - 0.2) and judged["conclusion_local_details"].seeds == 2


def test_seed_summary_and_metrics_average_the_per_item_results():
    by_seed, _ = per_item_seeds()
    summary = seed_summary(by_seed)
    assert summary.loc["GLoRIA", "table_iv mean"] == pytest.approx((1 + 1 / 3) / 5)
    assert average_accuracy(np.array([[1, np.nan], [0, 1]])) == pytest.approx((0.5 + 1) / 2)
    metrics = seed_metrics(summary)
    assert metrics["claims_table_iv_mean_ours"] == round(metrics["claim_discrimination_accuracy_ours"], 4) == 0.7
    assert metrics["claims_table_ii_mean_ours"] == round(metrics["claim_average_accuracy_ours"], 4)


def test_seed_results_keep_per_item_results_that_reproduce_tables_ii_and_iv(cached_study):
    from medvl_core.eval.finetune import image_classifier_scores, label_table

    config = TrainConfig(epochs=1, global_batch_size=16, lr=1e-3, progress=False, device="cpu")
    fits = train_variants(cached_study, config, embed_dim=16, text_dim=32, max_length=48, image_dim=16)
    labels = ["Consolidation", "Pleural Effusion"]
    finetune = TrainConfig(epochs=1, global_batch_size=8, lr=1e-3, progress=False, device="cpu")
    table4 = table_iv(fits, cached_study.test, n_boot=20)
    table2 = table_ii(fits, cached_study, labels, finetune)
    by_seed = seed_results(cached_study, config, finetune, labels, [0], fits)
    from medvl_core.studies.perturbed_report_discrimination import table_ii_results

    reused = seed_results(cached_study, config, finetune, labels, [0], fits,
                          table2=table_ii_results(fits, cached_study, labels, finetune))
    for variant in fits:  # the main run's Table II fine-tunes, passed in, give the same per-item results
        assert np.array_equal(reused[0][variant]["table_ii"], by_seed[0][variant]["table_ii"], equal_nan=True)
    X_train, Y_train = classification_arrays(cached_study.train, labels)
    X_test, Y_test = classification_arrays(cached_study.classify_test, labels)
    for variant, result in by_seed[0].items():
        assert result["table_iv"].shape == (len(cached_study.test.texts),)
        assert result["table_iv"].mean() == pytest.approx(table4.loc[variant, "accuracy"])
        assert result["table_ii"].shape == Y_test.shape
        assert average_accuracy(result["table_ii"]) == pytest.approx(table2.loc[variant, "Average accuracy"])
    direct = label_table(Y_test, image_classifier_scores(ImageEmbedder(fits["ours"][0]), X_train, Y_train, X_test, labels,
                                                         finetune), labels)
    direct_row = classification_table({"ours": direct}).loc["ours"]  # the same scores (thresholds aside: table_ii's
    for label in labels:                                              # are chosen on validation)
        assert direct_row[f"{label} AUROC"] == pytest.approx(table2.loc["ours", f"{label} AUROC"])


def test_table_i_matches_the_paper_where_deterministic():
    table = table_i(seed=0)
    assert len(table) == 10 and table.loc["Original Text", "identical"]
    assert table.loc["Reverse Sentence", "identical"] and table.loc["Replace Adjectives with Antonyms", "identical"]
    words = sorted(table.loc["Original Text", "ours"].split())
    assert all(sorted(text.split()) == words for text in table["ours"].iloc[1:-1])  # shuffles keep the words


def test_antonym_audit_counts_clinically_wrong_antonyms():
    from medvl_core.text.pos import antonym_audit

    tagged = [[("The", "DET"), ("study", "NOUN"), ("is", "AUX"), ("unremarkable", "ADJ")],
              [("Normal", "ADJ"), ("heart", "NOUN")], [("Mild", "ADJ"), ("edema", "NOUN")]]
    summary, rows = antonym_audit(tagged)
    verdict = {r["adjective"]: (r["WordNet antonym"], r["clinically wrong"]) for r in rows}
    assert verdict["unremarkable"] == ("extraordinary", True) and verdict["normal"] == ("abnormal", False)
    assert verdict["mild"][1] and summary["clinically_wrong_tokens"] == 2
    assert summary["texts_with_clinically_wrong_antonym"] == 2 and summary["n_texts"] == 3


def test_held_out_by_count_is_exact_and_keeps_reports_on_one_side():
    records = [{"id": f"i{i}", "uid": f"r{i // 3}"} for i in range(30)]  # 10 reports with 3 images each
    train, held = held_out_by_count(records, 7, seed=0)
    assert len(held) == 7 and not {records[i]["uid"] for i in train} & {records[i]["uid"] for i in held}
    assert len(train) == 30 - 9  # the report cut at the boundary is dropped from training
    with pytest.raises(ParameterError, match="only 30"):
        held_out_by_count(records, 31)


def test_first_words_cuts_before_perturbing():
    assert first_words("a b c d", 2) == "a b" and first_words("a  b", None) == "a  b"
    assert dataset_options("synth-cxr", {"n_studies": 5})["root"].name.startswith("synth-cxr-")
    assert dataset_options("open-i", [["views", "all"]]) == {"views": "all"} == dataset_options("open-i", {"views": "all"})
