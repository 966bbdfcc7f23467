"""Selection on validation data only: test-split labels are tagged at the loader, and the shared selection
functions (thresholds, the training monitor) refuse them."""

from __future__ import annotations

import numpy as np
import pytest

from medvl_core.data import open_dataset
from medvl_core.data.splits import split_of, tag_split
from medvl_core.errors import ParameterError
from medvl_core.eval.metrics.thresholds import choose_thresholds
from medvl_core.eval.selection import require_validation
from medvl_core.train.config import TrainConfig
from medvl_core.worlds.synth_cxr import generate_synth_cxr


def test_tag_survives_slicing_and_reductions_give_plain_numbers():
    Y = tag_split(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "test")
    assert split_of(Y[:, 1]) == "test" and split_of(Y == 1) == "test"
    assert type(Y.mean()) is np.float64 and float(Y[:, 0].sum()) == 2.0
    assert split_of(np.asarray(Y)) is None  # a deliberate conversion drops it


def test_loader_tags_the_test_split_only(tmp_path):
    root = generate_synth_cxr(tmp_path / "w", n_studies=24, n_test_images=6, n_valid_images=6, image_size=32,
                              report_source="template", workers=1)
    test = open_dataset("synth-cxr", root, split="test", test_set="chexpert", images=False)
    val = open_dataset("synth-cxr", root, split="val", test_set="chexpert", images=False)
    assert split_of(test.label_matrix()) == "test" and split_of(val.label_matrix()) is None
    assert split_of(test.subset([0, 1]).label_matrix()) == "test"


def test_choose_thresholds_refuses_test_labels():
    Y, P = np.array([[1.0], [0.0], [1.0], [0.0]]), np.array([[0.9], [0.2], [0.6], [0.4]])
    assert choose_thresholds(Y, P).shape == (1,)
    with pytest.raises(ParameterError, match="choose_thresholds received test-split data"):
        choose_thresholds(tag_split(Y, "test"), P)


def test_require_validation_refuses_a_split_named_test():
    require_validation(np.zeros(3), what="x", split="val")
    with pytest.raises(ParameterError, match="validation split only"):
        require_validation(np.zeros(3), what="x", split="test")


def test_training_monitor_cannot_watch_test_metrics():
    with pytest.raises(ParameterError, match="monitor"):
        TrainConfig(monitor="test_auroc")


def test_unscorable_validation_labels_fail_before_training_naming_labels_counts_and_fix():
    from medvl_core.errors import MedvlError
    from medvl_core.eval.report_study import Split, check_selection_labels
    from medvl_core.eval.selection import label_counts

    nan = np.nan
    Y = np.array([[1.0, nan, 0.0, nan], [nan, nan, 0.0, 1.0], [1.0, nan, 0.0, nan], [nan, 1.0, 0.0, nan]])
    names = ["Atelectasis", "Cardiomegaly", "Edema", "Lung Opacity"]
    assert label_counts(Y, names)["Atelectasis"] == (2, 0, 2) and label_counts(Y, names)["Edema"] == (0, 4, 0)
    with pytest.raises(MedvlError) as error:  # the selection labels (the competition three here) have no both-class column
        check_selection_labels(Split(None, Y), names, "mimic-cxr/val")
    message = str(error.value)
    assert "mimic-cxr/val" in message and "Lung Opacity" not in message
    for expected in ("Atelectasis: 2 positive, 0 negative, 2 blank", "Cardiomegaly: 1 positive, 0 negative, 3 blank",
                     "Edema: 0 positive, 4 negative, 0 blank", "cannot be computed", "validation_dataset: chexpert"):
        assert expected in message
    Y[1, 0] = 0.0  # Atelectasis now has a stated negative: the AUROC is defined on it, the other two are named
    with pytest.warns(UserWarning, match=r"2 of 3 monitored labels .*Cardiomegaly: 1 positive, 0 negative"):
        check_selection_labels(Split(None, Y), names, "mimic-cxr/val")
