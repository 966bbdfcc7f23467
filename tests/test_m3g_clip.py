"""M3G CLIP-kNN: label extraction from responses, post-processing, case voting, label-CLIP training, deltaBLEU rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medvl_core.data.base import RecordDataset
from medvl_core.data.dermavqa import write_submission
from medvl_core.errors import ParameterError
from medvl_core.models.dual_encoder import DualEncoder
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.studies.m3g_answer_generation.claude_arm import (
    CLAUDE_METRICS,
    claude_arm,
    claude_dry_run,
    claude_table,
    sdk_token_counter,
)
from medvl_core.studies.m3g_answer_generation.clip import ClipFit, fit_label_clip
from medvl_core.studies.m3g_answer_generation.derm_labels import (
    answer_text,
    build_label_dictionary,
    extract_label,
    find_mentions,
    label_phrases,
    query_label,
)
from medvl_core.studies.m3g_answer_generation.knn import KnnSetting, case_vote, pca_reduce, predict_labels
from medvl_core.studies.m3g_answer_generation.official_scorer import score_submission
from medvl_core.studies.m3g_answer_generation.prepare import (
    M3GData,
    M3GSplit,
    label_extraction_table,
    prepare_m3g,
    truth_labels,
)
from medvl_core.studies.m3g_answer_generation.scores import (
    SCORE_COLUMNS,
    answers,
    control_rows,
    dbleu_by_setting,
    dbleu_metrics,
    score,
)
from medvl_core.studies.m3g_answer_generation.tables import batch_size_sweep, postprocessing_table, reference_table
from medvl_core.train import TrainConfig
from medvl_core.worlds.synth_derm_conditions import label_dictionary

DICT = label_dictionary()


# ------------------------------------------------------------------ label extraction

def test_aliases_map_to_canonical_names_longest_phrase_first():
    assert find_mentions("Looks like eczema, or maybe plaque psoriasis.", DICT) == ["atopic dermatitis", "psoriasis"]
    assert find_mentions("BCC. Basal cell carcinoma.", DICT) == ["basal cell carcinoma", "basal cell carcinoma"]
    assert find_mentions("Acnes and warts", DICT) == []  # whole words only


def test_negated_mentions_do_not_count():
    assert find_mentions("Not psoriasis, it is eczema.", DICT) == ["atopic dermatitis"]
    assert find_mentions("This is not ringworm. Looks like hives.", DICT) == ["urticaria"]
    assert find_mentions("No signs of scabies; rule out melanoma.", DICT) == []
    assert find_mentions("It isn't a mole but a wart.", DICT) == ["common wart"]


def test_extract_label_majority_over_first_mentions():
    responses = ["Not psoriasis, it is eczema.", "Eczema or psoriasis.", "Psoriasis.", "See a dermatologist."]
    assert extract_label(responses, DICT) == "atopic dermatitis"
    assert extract_label(["Shingles.", "Hives."], DICT) == "herpes zoster"  # tie -> earlier response
    assert extract_label(["Please see a doctor.", "Not scabies."], DICT) == ""
    with pytest.raises(ParameterError, match="list of response strings"):
        extract_label("Psoriasis.", DICT)
    with pytest.raises(ParameterError, match="dictionary is empty"):
        extract_label(["Psoriasis."], {})


def test_build_label_dictionary_keeps_short_phrases_seen_in_enough_cases():
    cases = [["Psoriasis.", "It is eczema."], ["Consider psoriasis; a biopsy would help.", "Not eczema."],
             ["Tinea corporis or psoriasis", "Please see a dermatologist in person."], ["Typical tinea corporis."]]
    assert label_phrases("Could be tinea corporis or an eczema.") == ["tinea corporis", "eczema"]
    built = build_label_dictionary(cases, min_cases=2)
    assert set(built) == {"psoriasis", "tinea corporis"}  # eczema is stated once and negated once
    assert extract_label(["Consider tinea corporis."], built) == "tinea corporis"
    with pytest.raises(ParameterError, match="min_cases"):
        build_label_dictionary(cases, min_cases=0)


# ------------------------------------------------------------------ post-processing

def test_answer_text_template_and_query_matching():
    query = "Is this ringworm? It is very itchy."
    assert answer_text("psoriasis") == "It is psoriasis."
    assert answer_text("psoriasis", template=False) == "psoriasis"
    assert answer_text("psoriasis", query, DICT, query_match=True) == "It is tinea corporis."
    assert answer_text("psoriasis", "A doctor said it is not ringworm.", DICT, query_match=True) == "It is psoriasis."
    assert query_label("Rash on the arm", DICT) == ""
    with pytest.raises(ParameterError, match="dictionary"):
        answer_text("psoriasis", query, None, query_match=True)
    with pytest.raises(ParameterError, match="empty label"):
        answer_text("")


# ------------------------------------------------------------------ kNN voting

def test_case_vote_pools_the_neighbours_of_all_images_of_a_case():
    gallery = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.2, 0.8]], dtype=float)
    labels = ["a", "a", "b", "b", "b"]
    # case 0: image 0 near "a" only; images 1-2 near "b": the pooled vote over 3 images is "b"
    queries = np.array([[1, 0.05], [0.05, 1], [0.1, 1], [1, 0.02]], dtype=float)
    owner = np.array([0, 0, 0, 1])
    assert case_vote(queries, owner, 3, gallery, labels, k=1, fallback="z") == ["b", "a", "z"]
    # k=2 ties within one image: "a" (sim ~1) vs "b" are 1 vote each -> the most similar neighbour wins
    tie_gallery = np.array([[1, 0], [0.6, 0.8]], dtype=float)
    assert case_vote(np.array([[1, 0.1]]), np.array([0]), 1, tie_gallery, ["a", "b"], k=2) == ["a"]


def test_pca_reduce_caps_components_by_rank():
    rng = np.random.default_rng(0)
    fit_on = rng.normal(size=(6, 10))
    a, b = pca_reduce(fit_on, rng.normal(size=(3, 10)), rng.normal(size=(4, 10)), n_components=32)
    assert a.shape == (3, 5) and b.shape == (4, 5)


# ------------------------------------------------------------------ toy label-CLIP

def _records(n_cases, labels, queries=None):
    return RecordDataset([{"id": f"C{i}", "text": (queries or [""] * n_cases)[i], "references": [f"It is {labels[i]}."],
                           "reference_weights": [1.0]} for i in range(n_cases)])


def _toy_data(seed=0):
    """6 separable labels; image features = label centre + noise in a random 32-d subspace of the tower dims."""
    torch.manual_seed(seed)
    image_tower, text_tower = build_image_encoder("tiny:cnn", image_size=32), build_text_encoder("tiny:text")
    rng = np.random.default_rng(seed)
    names = [f"disease {c}" for c in "abcdef"]
    centres = rng.normal(size=(6, image_tower.embed_dim)) * 3
    label_features = torch.tensor(rng.normal(size=(6, text_tower.embed_dim)), dtype=torch.float32)

    def split(name, n_cases):
        cls = np.arange(n_cases) % 6
        owner = np.repeat(np.arange(n_cases), 2)
        feats = centres[cls[owner]] + rng.normal(size=(len(owner), image_tower.embed_dim))
        labels = [names[c] for c in cls]
        return M3GSplit(name, _records(n_cases, labels), torch.tensor(feats, dtype=torch.float32), owner, labels)

    splits = {"train": split("train", 60), "test": split("test", 24)}
    return M3GData(splits, names, label_features, image_tower, text_tower, {n: n for n in names})


def _accuracy(pred, split):
    return float(np.mean([p == t for p, t in zip(pred, split.labels)]))


def test_label_clip_training_improves_image_text_top1():
    data = _toy_data()
    setting = KnnSetting("text", None, k=1)
    torch.manual_seed(0)
    untrained = ClipFit(DualEncoder(data.image_encoder, data.text_encoder, embed_dim=16).eval(), 32, 32, 120)
    before = _accuracy(predict_labels(untrained, data, "test", setting), data.split("test"))
    config = TrainConfig(epochs=10, lr=1e-2, device="cpu", progress=False)
    fit = fit_label_clip(data, global_batch_size=512, config=config, embed_dim=16)
    after = _accuracy(predict_labels(fit, data, "test", setting), data.split("test"))
    assert fit.effective_batch_size == 120 and fit.n_items == 120  # batch capped by the training images
    assert after >= 0.9 and after > before + 0.3
    image_knn = predict_labels(fit, data, "test", KnnSetting("image", pca=4, k=5))
    assert _accuracy(image_knn, data.split("test")) >= 0.9
    assert _accuracy(predict_labels(None, data, "test", KnnSetting("image")), data.split("test")) >= 0.9
    with pytest.raises(ParameterError, match="trained label-CLIP"):
        predict_labels(None, data, "test", KnnSetting("text"))
    with pytest.raises(ParameterError, match="gallery"):
        KnnSetting("report")


# ------------------------------------------------------------------ scores and tables

def test_score_columns_and_perfect_answers():
    data = _toy_data()
    test = data.split("test")
    perfect = score([f"It is {label}." for label in test.labels], test)
    assert tuple(perfect) == SCORE_COLUMNS and perfect["BP"] == 1.0 and perfect["hyp_len"] == perfect["ref_len"]
    assert perfect["dBLEU weighted"] == perfect["dBLEU unweighted"] == 100.0
    assert perfect["dBLEU"] < 90  # the headline is the official scorer: it lowercases the answer only, "it" != "It"
    assert score(["It is disease z."] * test.n_cases, test)["dBLEU"] < 60


def test_dbleu_metrics_record_the_official_score_with_labelled_extras():
    table = pd.DataFrame([{"setting": "batch 256", "split": "test", "dBLEU": 8.4, "dBLEU weighted": 9.1,
                           "dBLEU unweighted": 9.0},
                          {"setting": "batch 256", "split": "val", "dBLEU": 1.0, "dBLEU weighted": 2.0,
                           "dBLEU unweighted": 3.0}])
    assert dbleu_metrics(table, "test", {"batch 256": "dbleu_batch_256", "batch 512": "dbleu_batch_512"}) == {
        "dbleu_batch_256": 8.4, "dbleu_weighted_batch_256": 9.1, "dbleu_unweighted_batch_256": 9.0}
    assert dbleu_by_setting(table, "val") == {"batch 256": 1.0}
    assert dbleu_by_setting(table, "val", "dBLEU weighted") == {"batch 256": 2.0}
    with pytest.raises(ParameterError, match="dbleu_"):
        dbleu_metrics(table, "test", {"batch 256": "batch_256"})
    assert dbleu_metrics(pd.DataFrame(), "test", {"img 1-call": "dbleu_claude_img_1_call"}) == {}  # arm not run


def test_sdk_token_counter_only_when_asked_for(monkeypatch, data_root):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert sdk_token_counter("claude-opus-4-7", count_tokens=False) is None  # a key alone changes nothing
    assert sdk_token_counter("claude-3-opus-20240229", count_tokens=True) is None  # retired: the dry run estimates
    assert sdk_token_counter("claude-opus-4-7", count_tokens=True).model == "claude-opus-4-7"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ParameterError, match="claude_count_tokens=True .* ANTHROPIC_API_KEY"):
        sdk_token_counter("claude-opus-4-7", count_tokens=True)


def _write_dermavqa(root, test: bool = False):
    """A tiny DermaVQA-layout world: 3 labels with distinct image colours; valid (and test) responses annotated."""
    colours = {"psoriasis": (200, 40, 40), "vitiligo": (250, 250, 250), "melanoma": (20, 20, 20)}
    names = list(colours)
    splits = (("train", "train.json", 12), ("valid", "valid_ht.json", 6)) + ((("test", "test_ht.json", 6),) if test else ())
    for split, file, n in splits:
        (root / f"images_{split}").mkdir(parents=True)
        encounters = []
        for i in range(n):
            label = names[i % 3]
            ids = [f"IMG_{split}{i}_{k}.jpg" for k in range(1 + i % 2)]
            for image_id in ids:
                Image.new("RGB", (32, 32), colours[label]).save(root / f"images_{split}" / image_id)
            extra = {"completeness": 1.0, "contains_freq_ans": 1.0} if split != "train" else {}
            responses = [{"author_id": "U1", "content_en": f"It is {label}.", **extra},
                         {"author_id": "U2", "content_en": f"Typical {label}.", **extra}]
            encounters.append({"encounter_id": f"{split}{i}", "image_ids": ids, "query_title_en": "What is it?",
                               "query_content_en": "Is this psoriasis?" if i == 0 else "A rash.", "responses": responses})
        (root / file).write_text(json.dumps(encounters))


def test_pipeline_on_a_dermavqa_layout_builds_its_dictionary_and_tables(data_root):
    root = data_root / "dermavqa"
    _write_dermavqa(root)
    data = prepare_m3g("dermavqa", root=root, splits=("train", "val"), image_encoder="tiny:cnn",
                       text_encoder="tiny:text", image_size=32)
    assert data.label_names == ["melanoma", "psoriasis", "vitiligo"] and data.dictionary["vitiligo"] == "vitiligo"
    assert data.train.image_features.shape[0] == len(data.train.owner) == 18
    assert truth_labels(data.split("val")) is None
    table, fits = batch_size_sweep(data, (4, 128), TrainConfig(epochs=2, device="cpu", progress=False),
                                   splits=("val",), embed_dim=8)
    assert list(table["effective batch"]) == [4, 18] and set(fits) == {4, 128}
    assert set(SCORE_COLUMNS) <= set(table.columns)
    labels = {"val": predict_labels(fits[4], data, "val", KnnSetting("image", k=1))}
    post = postprocessing_table(data, labels)
    assert list(post["setting"]) == ["label only", "It is [label].", "query matching", "It is [label]. + query matching"]
    assert post["hyp_len"].iloc[1] == post["hyp_len"].iloc[0] + 3 * 6  # "It is" + "." add three tokens per case
    refs = reference_table(data, splits=("val",))
    oracle = refs[refs["setting"].str.startswith("oracle: It is [label of")]
    assert float(oracle["dBLEU weighted"].iloc[0]) == 100.0 > float(oracle["dBLEU"].iloc[0])
    valid = data.split("val")
    texts = answers(labels["val"], valid)
    written = write_submission(root / "prediction.json", dict(zip(valid.ids, texts)), order=valid.dataset)
    assert round(score_submission(written, valid.dataset).score("en"), 2) == score(texts, valid)["dBLEU"]
    truth = {"train": data.train.labels, "val": data.split("val").labels}  # extracted labels as stand-in truth
    assert list(label_extraction_table(data, truth).iloc[:, 1]) == [1.0, 1.0]
    rows = control_rows("control", labels, data, truth)
    assert [r["split"] for r in rows] == ["val"] and rows[0]["dBLEU"] == post["dBLEU"].iloc[1]
    assert rows[0]["label accuracy"] == round(float(np.mean(np.array(labels["val"]) == np.array(truth["val"]))), 3)


def test_claude_table_and_dry_run_on_a_dermavqa_layout(data_root, tmp_path, monkeypatch):
    from llm_fake_server import FakeMessagesServer

    from medvl_core.llm import ClaudeClient

    root = data_root / "dermavqa"
    _write_dermavqa(root)
    data = prepare_m3g("dermavqa", root=root, splits=("train", "val"), image_encoder="tiny:cnn",
                       text_encoder="tiny:text", image_size=32)
    plan = claude_dry_run(data, "val", "claude-opus-4-7", max_cases=2)
    assert (plan.n_cases, plan.first_case, plan.split) == (2, "valid0", "val")
    assert [row["calls"] for row in plan.table()] == [2, 4, 2, 4, 12]
    assert "IMG_valid0_0.jpg: " in str(plan) and "32 x 32 px" in str(plan)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeMessagesServer(responder=lambda body: "psoriasis") as server:
        client = ClaudeClient("claude-opus-4-7", tmp_path / "cache", base_url=server.base_url, progress=False)
        table1, claude_answers = claude_table(client, data, "val", max_cases=2)
    assert list(table1["setting"]) == list(CLAUDE_METRICS) and set(table1["model"]) == {"claude-opus-4-7"}
    assert list(table1["parse fallbacks"]) == [2, 0, 0, 0]  # "psoriasis" carries no "Answer:" line
    assert claude_answers["img 2-calls"] == ["It is psoriasis."] * 2
    metrics = dbleu_metrics(table1, "val", CLAUDE_METRICS)
    assert metrics["dbleu_claude_img_1_call"] == table1["dBLEU"].iloc[0]
    assert metrics["dbleu_weighted_claude_img_plus_text"] == table1["dBLEU weighted"].iloc[3]


def test_claude_arm_is_a_dry_run_unless_asked_and_fails_alone(data_root, monkeypatch):
    from llm_fake_server import FakeMessagesServer

    root = data_root / "dermavqa"
    _write_dermavqa(root)
    data = prepare_m3g("dermavqa", root=root, splits=("train", "val"), image_encoder="tiny:cnn",
                       text_encoder="tiny:text", image_size=32)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeMessagesServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        table, answers_, outcome, plan = claude_arm(data, "val", "claude-opus-4-7", False, max_cases=2)
        assert (len(table), answers_, outcome, plan.n_cases) == (0, {}, "dry run", 2)
        assert server.requests == [] and server.count_requests == []  # the exported key called nothing
        server.inject(400, times=50)  # every request refused: the arm fails, the caller goes on
        table, answers_, outcome, message = claude_arm(data, "val", "claude-opus-4-7", True, max_cases=2)
    assert (len(table), answers_, outcome) == (0, {}, "failed")
    assert message.startswith("The Claude arm failed, alone") and "400" in message


def test_bad_images_fail_before_training_or_their_cases_are_skipped(data_root):
    from medvl_core.errors import DataFormatError

    root = data_root / "dermavqa"
    _write_dermavqa(root)
    broken, missing = root / "images_train" / "IMG_train1_0.jpg", root / "images_valid" / "IMG_valid3_1.jpg"
    broken.write_bytes(broken.read_bytes()[:30])
    missing.unlink()
    options = {"root": root, "splits": ("train", "val"), "image_encoder": "tiny:cnn", "text_encoder": "tiny:text",
               "image_size": 32}
    with pytest.raises(DataFormatError, match="bad items found before training") as error:
        prepare_m3g("dermavqa", **options)
    assert str(broken) in str(error.value) and "bad_items='skip'" in str(error.value)
    with pytest.warns(UserWarning, match="skipped 1 bad items"):
        data = prepare_m3g("dermavqa", bad_items="skip", **options)
    assert data.skipped == {"train": 1, "val": 1}
    assert data.train.n_cases == 11 and "train1" not in data.train.ids and "valid3" not in data.split("val").ids
    assert len(data.train.owner) == len(data.train.image_features) == 18 - 2  # case train1 had two images
