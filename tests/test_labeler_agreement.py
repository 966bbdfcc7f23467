"""The per-observation agreement table of the report labeler against Open-I MeSH."""

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.eval.labeler_agreement import (
    agreement_table,
    binarize,
    format_table,
    label_openi,
)
from medvl_core.text.observations import CHEXPERT_LABELS

IDX = {name: i for i, name in enumerate(CHEXPERT_LABELS)}


def test_binarize_uncertain_policy():
    pred = np.array([1.0, 0.0, -1.0, np.nan])
    assert binarize(pred).tolist() == [1, 0, 1, 0]
    assert binarize(pred, uncertain=0.0).tolist() == [1, 0, 0, 0]


def test_agreement_table_counts_and_metrics():
    ref = np.zeros((6, 14))
    pred = np.full((6, 14), np.nan)
    j = IDX["Cardiomegaly"]
    ref[:3, j] = 1
    pred[:, j] = [1, 1, 0, -1, np.nan, 0]  # tp=2, fn=1, uncertain fp=1, tn=2
    table = agreement_table(pred, ref)
    row = table.loc["Cardiomegaly"]
    assert (row.support, row.mesh_pos, row.labeler_pos, row.tp) == (6, 3, 3, 2)
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 3)
    assert row.f1 == pytest.approx(2 / 3) and row.accuracy == pytest.approx(4 / 6)
    assert row.kappa == pytest.approx((4 / 6 - 0.5) / 0.5)
    strict = agreement_table(pred, ref, uncertain=0.0).loc["Cardiomegaly"]
    assert strict.labeler_pos == 2 and strict.precision == 1.0
    assert list(table.index) == list(CHEXPERT_LABELS)
    assert np.isnan(table.loc["Fracture", "precision"]) and table.loc["Fracture", "accuracy"] == 1.0
    assert "| Cardiomegaly | 6 | 3 | 3 | 2 | 0.667 |" in format_table(table)


def test_agreement_table_skips_nan_reference_and_checks_shapes():
    ref = np.zeros((2, 14))
    ref[1] = np.nan
    table = agreement_table(np.zeros((2, 14)), ref)
    assert (table.support == 1).all()
    with pytest.raises(ParameterError):
        agreement_table(np.zeros((2, 14)), np.zeros((3, 14)))


def test_label_openi_and_agreement_on_built_records():
    records = [
        {"findings": "The heart is enlarged. Small right pleural effusion.", "impression": "Cardiomegaly.",
         "mesh_major": ["Cardiomegaly/mild", "Pleural Effusion/right/small"]},
        {"findings": "Lungs are clear. No pneumothorax.", "impression": "No acute disease.", "mesh_major": ["normal"]},
        {"findings": "", "impression": "Left lower lobe pneumonia.", "mesh_major": ["Pneumonia/lower lobe/left"]},
        {"findings": "", "impression": "", "mesh_major": ["normal"]},  # no text: left out
        {"findings": "Stable chest.", "impression": "", "mesh_major": ["No Indexing"]},  # unindexed: left out
    ]
    pred, ref, counts = label_openi(records)
    table = agreement_table(pred, ref, uncertain=1.0)
    assert counts == {"reports": 5, "used": 3, "no_text": 1, "unindexed": 1}
    for name in ("Cardiomegaly", "Pleural Effusion", "Pneumonia", "No Finding"):
        assert table.loc[name, "f1"] == 1.0 and table.loc[name, "kappa"] == pytest.approx(1.0)
