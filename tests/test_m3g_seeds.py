"""M3G over several training seeds (mean and SD tables, Sec. 6's instability, evidence per seed), the metric
claims' answer sets, selection on validation only and case subsets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_m3g_evidence import CONFIG, NAMES, toy_data

from medvl_core.errors import ParameterError
from medvl_core.studies.m3g_answer_generation import (
    claim_evidence,
    dbleu_metrics,
    instability_table,
    label_disagreement,
    mean_sd_view,
    mean_table,
    metric_check_answers,
    metric_check_table,
    sd_table,
    seed_answer_sets,
    seed_per_case,
    seed_runs,
    table2_setting,
    table3_settings,
)
from medvl_core.studies.m3g_answer_generation.metric_checks import LONG_DISCUSSION, wrong_query_cases
from medvl_core.studies.m3g_answer_generation.prepare import take
from medvl_core.studies.m3g_answer_generation.scores import POSTPROCESSING, best_row, score

SETTINGS = table3_settings(3, 4)[1:]  # without the augmented competition row (the toy fits have no augmentation)


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def runs(data):
    return seed_runs(data, [0, 1], CONFIG, batch_sizes=(8, 16), batch_size=16, table2_knn=table2_setting(3, 4),
                     settings=SETTINGS, best_knn=SETTINGS[2], splits=("test",), embed_dim=8,
                     post=POSTPROCESSING["It is [label]. + query matching"])


def test_tables_over_seeds_are_means_and_sds_of_the_seed_rows(runs):
    tables = [r.table2 for r in runs]
    per_seed = np.array([t.set_index("setting").loc["batch 16", "dBLEU"] for t in tables])
    mean, sd = mean_table(tables).set_index("setting"), sd_table(tables).set_index("setting")
    assert mean.loc["batch 16", "dBLEU"] == pytest.approx(round(per_seed.mean(), 2))
    assert sd.loc["batch 16", "dBLEU"] == pytest.approx(round(per_seed.std(ddof=1), 2), abs=0.006)
    view = mean_sd_view(tables, "test")
    assert list(view["setting"]) == ["batch 8", "batch 16"] and " ± " in view.iloc[1, 1] and "2 seeds" in view.columns[1]
    assert dbleu_metrics(mean_table(tables), "test", {"batch 16": "dbleu_batch_16"})["dbleu_batch_16"] == \
        mean.loc["batch 16", "dBLEU"]
    assert [r.seed for r in runs] == [0, 1] and all(r.batch_size == 16 for r in runs)
    with pytest.raises(ParameterError, match="distinct"):
        seed_runs(None, [0, 0], CONFIG)


def test_label_disagreement_counts_seed_pairs_per_case():
    per_case = label_disagreement([["a", "b", "c"], ["a", "b", "x"], ["a", "y", "x"]])
    assert per_case.tolist() == pytest.approx([0.0, 2 / 3, 2 / 3])
    table = instability_table([["a", "b"], ["a", "c"]], truth=["a", "b"])
    assert table.iloc[0].to_dict() == {"seeds": 2, "cases": 2, "label differs between two seeds (mean over seed pairs)": 0.5,
                                       "cases with any disagreement": 0.5, "label = truth (mean over seeds)": 0.75}
    with pytest.raises(ParameterError, match="two seeds"):
        label_disagreement([["a"]])


def test_evidence_over_seeds_records_the_seed_means(data, runs):
    sets = seed_answer_sets(data, "test", runs, table2_knn=table2_setting(3, 4), settings=SETTINGS,
                            post=POSTPROCESSING["It is [label]. + query matching"])
    assert all(len(v) == 2 for v in sets.values())
    per_case = seed_per_case(runs, data, "test", SETTINGS[2])
    assert per_case["knn_neighbour_disagreement"].shape == (2, data.split("test").n_cases)
    assert per_case["knn_label_change_seeds"].shape == (data.split("test").n_cases,)
    evidence = claim_evidence(data, "test", sets, per_case=per_case)
    assert evidence["dbleu_batch_16"].n_seeds == 2 and evidence["knn_label_change_seeds"].n_seeds == 1
    recorded = dbleu_metrics(mean_table([r.table2 for r in runs]), "test", {"batch 16": "dbleu_batch_16"})
    assert evidence["dbleu_batch_16"].point() == pytest.approx(recorded["dbleu_batch_16"], abs=0.006)


def test_metric_claims_answer_sets(data):
    target = data.split("test")
    idx, named, unnamed = wrong_query_cases(data, "test")
    assert idx.tolist() == [3, 9, 15, 21]  # queries (i % 3 == 0) name NAMES[3i mod 4], the label is NAMES[i mod 4]
    assert all(s != target.labels[i] for i, s in zip(idx, named)) and all(w not in target.references[i][0]
                                                                          for i, w in zip(idx, unnamed))
    sets = metric_check_answers(data, "test", target.labels)
    assert sets["dbleu_long_it_is"][0][0] == f"It is {target.labels[0]}. {LONG_DISCUSSION}"
    assert sets["dbleu_wrong_query_match"][1].tolist() == idx.tolist()
    table = metric_check_table(data, "test", target.labels).set_index("metric key")
    assert table.loc["dbleu_short_it_is", "dBLEU"] > table.loc["dbleu_long_it_is", "dBLEU"]  # short answers win
    assert table.loc["dbleu_wrong_query_match", "cases"] == len(idx)
    evidence = claim_evidence(data, "test", {k: v for k, (v, _) in sets.items()},
                              cases={k: i for k, (_, i) in sets.items() if i is not None})
    assert evidence["dbleu_wrong_query_match"].n_items == len(idx)
    assert evidence["dbleu_wrong_query_match"].point() == table.loc["dbleu_wrong_query_match", "dBLEU"]


def test_take_keeps_each_cases_images_and_best_row_refuses_the_test_split(data):
    target = data.split("test")
    part = take(target, [5, 2])
    assert part.ids == [target.ids[5], target.ids[2]] and part.labels == [target.labels[5], target.labels[2]]
    assert part.owner.tolist() == [0, 0, 1, 1]
    assert np.array_equal(part.image_features[2].numpy(), target.image_features[4].numpy())  # case 2's first image
    assert score(["It is x."] * 2, part)["hyp_len"] == 8
    table = pd.DataFrame([{"setting": "a", "split": "val", "dBLEU": 1.0}, {"setting": "b", "split": "val", "dBLEU": 2.0},
                          {"setting": "a", "split": "test", "dBLEU": 3.0}])
    assert best_row(table, "val") == "b"
    with pytest.raises(ParameterError, match="validation split only"):
        best_row(table, "test")
    assert NAMES[0] in data.label_names


def test_seed_accuracy_is_the_mean_over_seeds_and_none_without_truth(runs):
    from medvl_core.eval.metrics import accuracy
    from medvl_core.studies.m3g_answer_generation import seed_accuracy

    truth = runs[0].clip_labels["test"]  # seed 0's labels as the "truth": its accuracy is 1
    expected = (1.0 + accuracy(runs[1].clip_labels["test"], truth)) / 2
    assert seed_accuracy(runs, "test", truth) == pytest.approx(expected)
    assert seed_accuracy(runs, "test", None) is None
