"""Rule-based report labeler: positive / negative / uncertain / unmentioned, scope, No Finding rule."""

import math

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.text.labeler import CHEXPERT_LABELS, label_report, label_reports, mentions
from medvl_core.text.observations import CHEXPERT_LABELS as SOURCE


def labels(text: str) -> dict[str, float]:
    """Mentioned observations of `text` -> value (NaN ones left out)."""
    return {k: float(v) for k, v in zip(CHEXPERT_LABELS, label_report(text), strict=True) if not math.isnan(v)}


def test_label_space_single_source():
    from medvl_core.data.labels import CHEXPERT_LABELS as DATA

    assert CHEXPERT_LABELS is SOURCE is DATA and len(SOURCE) == 14 and SOURCE[0] == "No Finding"


@pytest.mark.parametrize(
    ("text", "label", "value"),
    [
        ("Mild cardiomegaly.", "Cardiomegaly", 1.0),
        ("The heart is enlarged.", "Cardiomegaly", 1.0),
        ("Heart size is normal.", "Cardiomegaly", 0.0),
        ("Normal heart size.", "Cardiomegaly", 0.0),
        ("The heart is not enlarged.", "Cardiomegaly", 0.0),
        ("Heart size at the upper limits of normal.", "Cardiomegaly", 0.0),
        ("Borderline cardiomegaly.", "Cardiomegaly", -1.0),
        ("Small left pleural effusion.", "Pleural Effusion", 1.0),
        ("Blunting of the right costophrenic angle.", "Pleural Effusion", 1.0),
        ("The costophrenic angles are sharp.", "Pleural Effusion", 0.0),
        ("No pneumothorax.", "Pneumothorax", 0.0),
        ("Pneumothorax is not seen.", "Pneumothorax", 0.0),
        ("The previously seen effusion has resolved.", "Pleural Effusion", 0.0),
        ("Cannot exclude pneumonia.", "Pneumonia", -1.0),
        ("Pneumonia cannot be excluded.", "Pneumonia", -1.0),
        ("Findings may represent atelectasis.", "Atelectasis", -1.0),
        ("Left basilar opacity, likely atelectasis.", "Atelectasis", -1.0),
        ("Atelectasis versus pneumonia.", "Pneumonia", -1.0),
        ("Pneumonia?", "Pneumonia", -1.0),
        ("Left lower lobe consolidation.", "Consolidation", 1.0),
        ("Patchy airspace opacities in both bases.", "Lung Opacity", 1.0),
        ("Interstitial edema and vascular congestion.", "Edema", 1.0),
        ("A 1 cm nodule in the right upper lobe.", "Lung Lesion", 1.0),
        ("Widened mediastinum.", "Enlarged Cardiomediastinum", 1.0),
        ("Normal cardiomediastinal silhouette.", "Enlarged Cardiomediastinum", 0.0),
        ("Apical pleural thickening.", "Pleural Other", 1.0),
        ("Old healed left rib fractures.", "Fracture", 1.0),
        ("No acute fracture.", "Fracture", 0.0),
        ("Right PICC line tip in the SVC.", "Support Devices", 1.0),
        ("Median sternotomy wires are intact.", "Support Devices", 1.0),
        ("No change in the small right pleural effusion.", "Pleural Effusion", 1.0),
    ],
)
def test_single_statements(text, label, value):
    assert labels(text).get(label) == value


def test_unmentioned_is_nan():
    out = label_report("Mild cardiomegaly.")
    assert out.shape == (14,) and out.dtype == np.float32
    assert math.isnan(out[CHEXPERT_LABELS.index("Pneumothorax")])


def test_negation_scope_ends_at_but():
    out = labels("No effusion but there is a small left pneumothorax.")
    assert out["Pleural Effusion"] == 0.0 and out["Pneumothorax"] == 1.0


def test_negation_covers_a_list():
    out = labels("Lungs are clear without focal consolidation, pleural effusion, or pneumothorax.")
    assert out["Consolidation"] == out["Pleural Effusion"] == out["Pneumothorax"] == 0.0
    assert out["No Finding"] == 1.0


def test_negation_does_not_leak_into_the_next_clause_or_sentence():
    out = labels("There is no pneumothorax and there is a right pleural effusion. Cardiomegaly.")
    assert out["Pneumothorax"] == 0.0 and out["Pleural Effusion"] == 1.0 and out["Cardiomegaly"] == 1.0
    assert labels("Cardiomegaly without pulmonary edema.") == {"No Finding": 0.0, "Cardiomegaly": 1.0, "Edema": 0.0}


def test_laterality_and_size_words_do_not_matter():
    variants = ["Small left pleural effusion.", "Right-sided pleural effusion.", "Large bilateral pleural effusions.",
                "Effusion at the left base."]
    assert all(labels(t)["Pleural Effusion"] == 1.0 for t in variants)
    assert labels("No right pneumothorax.") == labels("No left pneumothorax.")


def test_aggregation_positive_beats_uncertain_beats_negative():
    assert labels("No effusion on the left. Small right effusion.")["Pleural Effusion"] == 1.0
    assert labels("No pneumonia. Possible pneumonia in the right base.")["Pneumonia"] == -1.0


def test_no_finding_rule():
    assert labels("The lungs are clear. Heart size is normal. No acute cardiopulmonary abnormality.")["No Finding"] == 1.0
    assert labels("Endotracheal tube 4 cm above the carina. Lungs are clear.")["No Finding"] == 1.0  # devices ignored
    assert labels("Possible small left effusion.")["No Finding"] == 0.0  # uncertain blocks
    assert labels("Calcified granuloma in the right upper lobe. Lungs otherwise clear.")["No Finding"] == 0.0
    assert labels("Degenerative changes of the thoracic spine.")["No Finding"] == 0.0
    assert labels("No emphysema.")["No Finding"] == 1.0  # a negated other finding does not block


def test_granuloma_is_not_a_lung_lesion():
    assert "Lung Lesion" not in labels("Calcified granuloma in the left lower lobe.")


def test_enlarged_cardiomediastinal_silhouette():
    out = labels("The cardiomediastinal silhouette is enlarged.")
    assert out["Enlarged Cardiomediastinum"] == 1.0 and out["Cardiomegaly"] == -1.0


def test_empty_and_invalid_reports():
    assert np.isnan(label_report("")).all() and np.isnan(label_report(None)).all()
    with pytest.raises(ParameterError):
        label_report(42)


def test_label_reports_batch_shape():
    out = label_reports(["No effusion.", "", "Cardiomegaly."])
    assert out.shape == (3, 14) and np.isnan(out[1]).all()
    assert label_reports([]).shape == (0, 14)


def test_mentions_report_phrase_cue_and_status():
    found = mentions("Heart size is normal. No pleural effusion but there may be a small pneumothorax.")
    by = {m.observation: m for m in found}
    assert by["Cardiomegaly"].sentence == 0 and by["Cardiomegaly"].status == 0.0
    assert by["Pleural Effusion"].sentence == 1 and by["Pleural Effusion"].cue == "no"
    assert by["Pleural Effusion"].phrase == "effusion"
    assert by["Pneumothorax"].status == -1.0 and by["Pneumothorax"].cue == "may"


def test_speed_thousands_of_reports_in_seconds():
    import time

    reports = ["The heart is normal in size. No focal consolidation, effusion or pneumothorax. Mild degenerative "
               "changes of the spine. Possible left basilar atelectasis versus scarring."] * 1000
    start = time.perf_counter()
    label_reports(reports)
    assert time.perf_counter() - start < 5
