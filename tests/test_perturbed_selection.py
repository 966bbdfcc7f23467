"""Selection on validation only in the perturbed report discrimination study: Table II's accuracy thresholds are
chosen on validation data and refuse the test split; the local loss's tau is the paper's unless overridden."""

import numpy as np
import pytest

from medvl_core.data.splits import tag_split
from medvl_core.errors import ParameterError
from medvl_core.studies.perturbed_report_discrimination import accuracy_thresholds, local_gamma3
from medvl_core.studies.perturbed_report_discrimination.tables import correct_at_threshold


def test_accuracy_thresholds_refuse_test_split_data():
    Y = tag_split(np.array([[0.0], [1.0], [1.0]]), "test")
    with pytest.raises(ParameterError, match="test-split"):
        accuracy_thresholds(Y, np.array([[0.1], [0.8], [0.9]]), 1)


def test_accuracy_thresholds_maximise_validation_accuracy():
    Y = np.array([[0, 1], [0, np.nan], [1, 0], [1, 1], [0, 0]], dtype=float)
    P = np.array([[0.1, 0.9], [0.2, 0.5], [0.7, 0.2], [0.8, 0.6], [0.3, 0.3]])
    t = accuracy_thresholds(tag_split(Y, "val"), P, 2)
    assert 0.3 < t[0] < 0.7 and 0.3 < t[1] < 0.6
    correct = correct_at_threshold(Y, P, t)
    assert np.nanmean(correct[:, 0]) == 1.0 and np.isnan(correct[1, 1])


def test_accuracy_thresholds_without_validation_data_fall_back_to_half():
    assert accuracy_thresholds(None, None, 2).tolist() == [0.5, 0.5]


def test_local_gamma3_is_the_papers_tau_unless_overridden():
    assert local_gamma3(None, 0.07) == pytest.approx(1 / 0.07)
    assert local_gamma3(0.1, 0.07) == pytest.approx(10.0)
    with pytest.raises(ParameterError):
        local_gamma3(0.0, 0.07)
