"""Smoke tests of the five paper notebooks, asserting on the metrics.json their default run records.

Each notebook is executed at most once per session: when nbval collected it (`make test` runs
`pytest notebooks tests --nbval-lax`), nbval's execution has already written
$MEDVL_RUNS/interactive/<paper>/metrics.json; otherwise it is executed here with papermill (`medvl run`).
Besides the behaviour each test asserts, every recorded metric must match the value the committed
notebook recorded, within tests/metric_tolerances.yaml (training numbers move a little between CPUs).
"""

import os
from pathlib import Path

import pytest
from metric_check import load_tolerances, metric_differences

from medvl_core.cli.run import execute
from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS
from medvl_core.runs import read_metrics

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="session")
def metrics_of(request, tmp_path_factory):
    """paper id -> metrics of its default run (from nbval's execution, or a papermill run made here)."""
    cache = {}

    def get(paper_id):
        if paper_id not in cache:
            ran_by_nbval = any(str(getattr(item, "fspath", "")).endswith(f"{paper_id}.ipynb")
                               for item in request.session.items)
            if ran_by_nbval:
                run_dir = Path(os.environ["MEDVL_RUNS"]) / "interactive" / paper_id
                assert (run_dir / "metrics.json").is_file(), f"nbval's execution of {paper_id} recorded no metrics"
            else:
                run_dir = tmp_path_factory.mktemp("runs") / paper_id
                assert execute(paper_id, {}, run_dir, progress=False) == 0
                assert (run_dir / f"{paper_id}.ipynb").is_file() and (run_dir / "params.yaml").is_file()
            cache[paper_id] = read_metrics(run_dir)
        return cache[paper_id]

    return get


def with_its_notebook(paper_id: str):
    """Under xdist: run on the worker that executes the paper's notebook, after it (see the root conftest.py)."""
    return pytest.mark.xdist_group(f"nb-{paper_id}")


@pytest.mark.parametrize("paper_id", [pytest.param(p, marks=with_its_notebook(p)) for p in PAPERS])
def test_metrics_match_the_committed_notebook(metrics_of, paper_id):
    committed = recorded_metrics(PAPERS[paper_id].notebook)
    assert not metric_differences(metrics_of(paper_id), committed, load_tolerances()[paper_id])


def test_a_claude_run_with_the_retired_model_stops_before_any_call(tmp_path, monkeypatch, capfd):
    """`-p claude_run true` with the paper's retired model: one error naming -p claude_model, no request, exit 1."""
    from llm_fake_server import FakeMessagesServer

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeMessagesServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        assert execute("m3g_answer_generation", {"claude_run": True}, tmp_path / "run", progress=False) == 1
    assert server.requests == [] and server.count_requests == []
    assert "-p claude_model" in capfd.readouterr().err


@with_its_notebook("loss_relaxation")
def test_loss_relaxation(metrics_of):
    m = metrics_of("loss_relaxation")
    assert 0.0 < m["near_duplicate_pair_fraction"] < 0.5
    assert abs(m["zero_shot_macro_auroc_untrained"] - 0.5) < 0.08
    trained = [m[f"zero_shot_macro_auroc_{arm}"] for arm in ("baseline", "sampling", "relaxation", "both")]
    assert min(trained) > m["zero_shot_macro_auroc_untrained"] + 0.03
    assert m["n_seeds"] == 3 and m["n_test_images"] == 500
    for framework in ("clip", "uniclip"):  # Tables 1 and 6 filled for both frameworks the demo trains
        assert m[f"t1_{framework}_w_avg5"] > m["zero_shot_macro_auroc_untrained"] and 0.5 < m[f"t6_{framework}_both_avg5"] <= 1.0
    assert m["t3_best_single"] in ("+ both", "UniCLIP: + both") and m["t7_n1"] > m["t7_n2"] > m["t7_n3"] >= 1.0


@with_its_notebook("perturbed_report_discrimination")
def test_perturbed_report_discrimination(metrics_of):
    m = metrics_of("perturbed_report_discrimination")
    assert m["n_reports"] == 400 and m["n_perturbations"] == 9  # the paper's K: all nine kinds as negatives
    assert 0.0 < m["adjective_antonym_coverage"] < 1.0 and m["antonym_clinically_wrong_tokens"] > 0
    assert m["nouns_per_report"] > m["verbs_per_report"] > 0 and m["table1_identical_rows"] >= 3
    chance = m["discrimination_chance"]
    for baseline in ("convirt", "gloria"):  # a frozen pretrained text tower does not prefer scrambled reports
        assert m[f"discrimination_accuracy_{baseline}_ci_high"] >= chance
    for trained in ("ours", "ours_wo_local"):  # the perturbation loss teaches word order and antonyms
        assert m[f"discrimination_accuracy_{trained}"] > m["discrimination_accuracy_convirt"] + 0.05
    for variant in ("convirt", "gloria", "ours_wo_local", "ours"):
        assert 0.0 < m[f"nli_accuracy_{variant}"] <= 1.0 and 0.0 < m[f"average_accuracy_{variant}"] <= 1.0
    assert m["claim_seeds_n"] >= 3


@with_its_notebook("meems")
def test_meems(metrics_of):
    m = metrics_of("meems")
    assert m["grid_channels"] == 1280 and m["grid_cells"] == 49
    assert 500 < m["openi_vocab_size"] < 5000 and 10 < m["captioner_vocab_size"] < m["openi_vocab_size"]
    assert 0.0 < m["unk_rate"] < 0.05 and m["median_caption_tokens"] > 10
    for model in ("meems", "baseline"):
        assert 0.6 < m[f"binary_auc_{model}"] <= 1.0 and 0.6 < m[f"multilabel_auc_{model}"] <= 1.0
        assert 0.0 <= m[f"rare_stratum_auc_low_{model}"] <= m[f"rare_stratum_auc_{model}"] <= m[f"rare_stratum_auc_high_{model}"]
    assert m["rare_stratum_n_positive"] >= 20 and m["caption_epochs_run"] >= 1 and m["claim_seeds_n"] >= 3
    assert m["binary_auc_all_positive"] == 0.5 and 0.0 < m["binary_f1_argmax_all_positive"] < 1.0
    assert m["caption_distinct_caption_fraction"] > 0.2  # captions vary with the findings
    assert 0.1 < m["caption_iou_words"] < 1.0 and 0.0 < m["caption_bleu"] < 100.0


@with_its_notebook("m3g_answer_generation")
def test_m3g_answer_generation(metrics_of):
    m = metrics_of("m3g_answer_generation")
    chance = 1 / m["n_conditions"]
    assert m["knn_top1_accuracy"] > 5 * chance
    assert m["knn_top1_accuracy"] > m["knn_top1_accuracy_random_init"]
    assert m["dbleu_it_is_true_condition"] > m["dbleu_clip_best"] > m["dbleu_constant_label"]


@with_its_notebook("vlm_feature_probing")
def test_vlm_feature_probing(metrics_of):
    m = metrics_of("vlm_feature_probing")
    assert m["n_datasets"] == 8 and m["n_models"] == 3 and m["confounder_association"] == 0.0
    assert (m["n_classes_hicervix"], m["n_classes_deepdr"], m["n_classes_isic2019"]) == (29, 5, 9)  # the poster's counts
    assert m["mean_cv_accuracy_random"] < m["mean_cv_accuracy_encoder"] <= 1.0  # ImageNet features beat random ones
    for tag in ("medical", "encoder"):  # the small CNN trained on SynthCXR pixels beside the non-medical encoder
        assert 0.0 < m[f"mean_cv_accuracy_{tag}"] <= 1.0 and 0.0 <= m[f"svc_test_accuracy_{tag}_hicervix"] <= 1.0
    assert m["confounder_lift_encoder"] > 0.05  # factors independent of the class are still encoded
    assert "real_panel_svc_accuracy_pretrained" not in m
