"""Report section extraction: MIMIC-CXR style headers, multi-line bodies, fallbacks."""

from medvl_core.text.sections import extract_sections, findings_impression, last_paragraph

MIMIC_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows. The
 cardiomediastinal silhouette is normal.

 IMPRESSION:

 No acute cardiopulmonary process.
"""


def test_mimic_headers_and_multiline_bodies():
    sections = extract_sections(MIMIC_REPORT)
    assert list(sections) == ["examination", "indication", "technique", "comparison", "findings", "impression"]
    assert sections["findings"].startswith("There is no focal consolidation")
    assert "nipple shadows. The cardiomediastinal silhouette is normal." in sections["findings"]
    assert sections["impression"] == "No acute cardiopulmonary process."
    assert sections["comparison"] == "None."


def test_findings_impression_joined():
    text = findings_impression(MIMIC_REPORT)
    assert text.startswith("There is no focal consolidation")
    assert text.endswith("cardiomediastinal silhouette is normal. No acute cardiopulmonary process.")


def test_case_insensitive_and_inline_headers():
    sections = extract_sections("History: cough.\nFindings: Lungs clear. IMPRESSION: Normal chest.")
    assert sections == {"history": "cough.", "findings": "Lungs clear.", "impression": "Normal chest."}


def test_mixed_case_body_labels_are_not_headers():
    sections = extract_sections("FINDINGS:\nHeart: normal size.\nLungs: clear.\n")
    assert sections == {"findings": "Heart: normal size. Lungs: clear."}


def test_only_impression_or_only_findings():
    assert findings_impression("INDICATION: fever\n\nIMPRESSION: Right lower lobe pneumonia.") == "Right lower lobe pneumonia."
    assert findings_impression("FINDINGS: Small left effusion.\n") == "Small left effusion."


def test_repeated_header_is_joined():
    sections = extract_sections("IMPRESSION: One.\n\nADDENDUM: see below\n\nIMPRESSION: Two.")
    assert sections["impression"] == "One. Two."


def test_conclusion_counts_as_impression():
    assert findings_impression("COMPARISON: none\n\nCONCLUSION: Stable cardiomegaly.") == "Stable cardiomegaly."


def test_fallback_last_paragraph():
    report = "WET READ: ___ 3:12 PM\n\nINDICATION: cough\n\nPA and lateral views.\n\nLungs are clear.\nNo effusion.\n"
    assert findings_impression(report) == "Lungs are clear. No effusion."


def test_fallback_skips_trailing_context_sections():
    assert last_paragraph("Mild cardiomegaly.\n\nCOMPARISON: ___") == "Mild cardiomegaly."


def test_empty_and_blank_reports():
    assert findings_impression("") == ""
    assert findings_impression(None) == ""
    assert findings_impression("   \n\n ") == ""
    assert extract_sections("") == {}


def test_empty_findings_with_impression():
    assert findings_impression("FINDINGS:\n\nIMPRESSION: Normal.") == "Normal."
