"""Rule-based chest X-ray report labeler: 14 CheXpert observations, negation- and uncertainty-aware.

Values follow the CheXpert/NegBio convention: 1.0 positive, 0.0 negative, -1.0 uncertain, NaN not
mentioned. Pure Python regular expressions (no parser): under a millisecond per report.
Agreement with Open-I MeSH is measured in ``medvl_core.eval.labeler_agreement`` (data_cards/report-labeler.md).

Conventions
- Text is split into sentences (``split_sentences``) and each sentence into clauses at ``;`` ``:``
  " - " and at "but / however / although / though / whereas / while / except / aside from / which /
  otherwise", and at "and" or "," when a new clause follows ("and there", ", the", ", likely"...).
  Commas inside lists do NOT end a clause: "no consolidation, effusion, or pneumothorax" negates all three.
- A mention is a phrase of an observation (``PHRASES``; laterality, size and location words are
  ignored). Its status, first rule that applies: (1) "cannot exclude / not excluded / cannot rule
  out / no new" anywhere in its clause -> uncertain (as CheXpert); (2) a negation cue before it in its
  clause ("no", "not", "without", "negative for", "free of", "clear (of)", "absence of", "resolved",
  "resolution", "removal of", "nor", "no longer") or after it ("is not seen", "are absent", "has
  resolved / cleared / been removed", "appears within normal limits") -> negative; (3) an uncertainty
  cue before it ("may", "might", "could", "possible/possibly", "probable", "likely" (as in CheXpert),
  "suggest...", "suspicious", "concern for", "worrisome", "question of", "versus", "consider",
  "borderline", "differential", "?", and hypotheticals: "if", "correlate for", "evaluate for",
  "to exclude", "recommend") or after it ("is suspected", "may represent", "versus", "?") ->
  uncertain; otherwise positive. Pseudo-negations ("no change", "no interval change", "not
  changed", "without change", "no increase") are not cues.
- Attribute statements: "heart size is normal", "normal heart size", "heart is not enlarged",
  "cardiac silhouette within normal limits", "heart size at the upper limits of normal / top normal"
  -> Cardiomegaly 0; "heart is enlarged" -> 1; "borderline / prominent" -> -1. The same for the
  mediastinum (Enlarged Cardiomediastinum; "prominent mediastinum / paratracheal fullness" -> -1).
  "Cardiomediastinal silhouette" statements set Enlarged Cardiomediastinum, and also Cardiomegaly
  (0 when normal, -1 when enlarged: which part is big is not said). "Sharp costophrenic angles" ->
  Pleural Effusion 0; blunting of the costophrenic angle -> Pleural Effusion 1.
- Aggregation over a report (CheXpert): positive beats uncertain beats negative.
- Decisions: granuloma / calcified granuloma is NOT a Lung Lesion (as in CheXpert; Open-I indexes
  it as its own MeSH term) but blocks No Finding; a "round / nodular / masslike opacity" is a Lung
  Lesion; scarring, fibrosis, interstitial and reticular markings are Lung Opacity (CheXpert);
  "pleural scarring / thickening / plaque / calcification" and fissural thickening are Pleural
  Other; "volume loss" and "collapse" are Atelectasis; a current "infection / infectious process"
  is Pneumonia (a prior or granulomatous one is not); "heart failure / CHF / vascular congestion"
  are Edema (CheXpert's CHF -> Cardiomegaly -1 rule is not applied); mediastinal adenopathy is
  Enlarged Cardiomediastinum; lines, tubes, catheters, pacemakers, sternotomy (wires), clips,
  stents, hardware, prostheses (not breast implants) are Support Devices, as are Open-I's
  de-identified "chest XXXX with tip in the SVC" / "XXXX-A-XXXX"; a healed fracture is a Fracture.
- No Finding = 1 when no observation other than Support Devices is positive or uncertain AND no
  other abnormality (``PHRASES[OTHER]``, after CheXpert's "no finding" blockers: emphysema,
  granuloma, hyperinflation, low lung volumes, scoliosis, degenerative change, hernia, elevated
  hemidiaphragm, tortuous aorta, calcification, ...) is positive or uncertain; else 0. A report
  with no sentences gives all NaN.
- "No acute cardiopulmonary abnormality"-type statements are recorded as No Finding mentions
  (for ``mentions``) and change nothing else: unmentioned observations stay NaN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .observations import CHEXPERT_LABELS
from .sentences import split_sentences

POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0
OTHER = "Other"  # abnormalities outside the 14 that still block No Finding
_INDEX = {name: i for i, name in enumerate(CHEXPERT_LABELS)}

# Observation -> mention phrases (regex, lower-case text). Status comes from the context cues.
PHRASES: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        r"widen\w* (?:of )?(?:the )?(?:superior |upper )?mediastin\w*",
        r"mediastinal (?:lymph ?)?adenopathy",
        r"mediastinal (?:widening|enlargement|prominence)",
        r"enlarged (?:cardio)?mediastin\w*",
    ),
    "Cardiomegaly": (
        r"cardiomegaly",
        r"enlarged (?:\w+ )?(?:heart|cardiac)",
        r"cardiac (?:enlargement|hypertrophy)",
        r"enlargement of (?:the )?(?:heart|cardiac)",
        r"(?:ventricular|atrial|chamber) enlargement",
        r"cardiomyopathy",
    ),
    "Lung Opacity": (
        r"opaci\w*",
        r"(?<!bone )(?<!soft tissue )(?<!breast )(?<!mineral )densit(?:y|ies)",
        r"infiltrat\w*",
        r"air[- ]?space (?:disease|process|opaci\w*)",
        r"interstitial (?:\w+ )?(?:markings?|opaci\w*|pattern|prominence|thickening|disease|changes?|infiltrat\w*"
        r"|process)",
        r"prominen\w* (?:\w+ )?interstiti\w*|interstitium",
        r"reticul\w*",
        r"ground[- ]glass",
        r"(?<!pleural )(?<!pleural-parenchymal )(?<!pleuroparenchymal )scar(?:s|ring|red)?",
        r"fibros[ie]s|fibrotic",
        r"peribronchial (?:thickening|cuffing)",
        r"haz(?:y|iness)",
    ),
    "Lung Lesion": (
        r"nodul(?:e|es|ar (?:opaci\w*|densit\w*))",
        r"mass(?:es)?|mass-?like",
        r"(?:round|rounded|circular|spherical) (?!calcifi)(?:\w+ )?(?:opaci\w*|densit\w*)",
        r"(?<!lytic )(?<!lucent )(?<!expansile )(?<!sclerotic )(?<!blastic )(?<!bone )(?<!bony )(?<!osseous )"
        r"(?<!skin )lesions?",
        r"tumou?rs?",
        r"neoplasms?",
        r"carcinoma",
        r"malignan\w*",
        r"lump",
    ),
    "Edema": (
        r"(?<!soft tissue )(?<!subcutaneous )oedema|(?<!soft tissue )(?<!subcutaneous )edema",
        r"chf",
        r"heart failure",
        r"(?:vascular|venous|pulmonary|interstitial) congestion",
        r"congestive",
        r"vascular (?:prominence|engorgement|redistribution|indistinctness)",
        r"cephalization",
        r"kerley",
        r"fluid overload",
    ),
    "Consolidation": (r"consolidat\w*",),
    "Pneumonia": (
        r"pneumoni\w*",
        r"bronchopneumonia",
        r"(?<!granulomatous )(?<!tuberculous )(?<!tuberculosis )(?<!prior )(?<!previous )(?<!old )(?<!remote )"
        r"infect\w*",  # a past infection is not a current pneumonia
        r"(?:inflammatory|infectious) process",
    ),
    "Atelectasis": (
        r"atelecta\w*",
        r"(?<!vertebral )(?<!compression )(?<!body )(?<!bodies )collapsed?",
        r"volume loss",
    ),
    "Pneumothorax": (r"(?:hydro|hemo)?pneumothora(?:x|ces)", r"pleural (?:air|gas)(?: collections?)?"),
    "Pleural Effusion": (
        r"(?<!pericardial )(?<!joint )effusions?",
        r"pleural fluid",
        r"(?:hydro|hemo)thorax",
        r"hydropneumothorax",
        r"blunt\w* (?:of )?(?:the )?(?:\w+ ){0,2}(?:costophrenic|cp) (?:angles?|sulc[iu]s|recess\w*|xxxx)",
        r"(?:costophrenic|cp) (?:angles?|sulc[iu]s|recess\w*|xxxx) (?:\w+ ){0,2}(?:is |are )?(?:\w+ly )?blunt\w*",
    ),
    "Pleural Other": (
        r"pleural (?:thickening|plaques?|calcifications?|scar\w*|fibrosis|reaction|abnormalit\w*)",
        r"fissural thickening|thicken\w* (?:of )?(?:the )?(?:\w+ )?fissures?|thickened (?:\w+ )?fissures?",
        r"pleural[- ]parenchymal|pleuroparenchymal",
        r"thickened pleura|pleura (?:is |are )?thickened",
        r"fibrothorax",
        r"apical (?:pleural )?cap(?:s|ping)?",
    ),
    "Fracture": (r"fractur\w*", r"fx"),
    "Support Devices": (
        r"tubes?",
        r"(?:central|venous|picc|port|midline|arterial|jugular|subclavian|dialysis|hickman|swan[- ]ganz) lines?",
        r"picc",
        r"catheters?",
        r"port[- ]?a[- ]?cath|portacath|mediport|(?:chest|power|infusion) port",
        r"pacemaker|pacer|pacing (?:leads?|wires?|device)",
        r"aicd|icd|defibrillator",
        r"sternotomy|sternal (?:wires?|sutures?)|cabg",
        r"(?:surgical|vascular|cholecystectomy|metallic) clips?|clips",
        r"staples|sutures?",
        r"hardware|(?:fixation|orthopedic|surgical|metallic) (?:plates?|screws?|rods?)|screws?",
        r"(?<!breast )(?:prosthes[ie]s|prosthetic)|arthroplast\w*",
        r"valve (?:replacement|prosthesis)|(?:mechanical|prosthetic) valve",
        r"stents?|coils?",
        r"(?<!no )devices?|drains?|electrodes?|wires?|leads?(?! to)|loop recorder|shunt",
        r"generator|(?:neuro)?stimulator|occluder",
        # Open-I de-identification also hides device names: "right chest XXXX with tip in the SVC", "XXXX-A-XXXX"
        r"(?:chest|ij|jugular|subclavian) xxxx|xxxx-a-xxxx",
        r"tips? (?:\w+ ){0,4}(?:svc|superior vena cava|cavoatrial|caval|right atri\w*|brachiocephalic)",
    ),
    OTHER: (
        r"emphysema\w*|copd|chronic obstructive|hyperinfla\w*|hyperexpan\w*|hyperaera\w*|overinfla\w*|hyperlucen\w*",
        r"(?:low|lower|decreased|reduced|diminished) (?:lung )?volumes?|hypoinflat\w*|hypoventilat\w*|poor inspiration",
        r"(?:lung )?volumes (?:are |remain )?(?:\w+ly )?(?:low|decreased|reduced|diminished)|crowding",
        r"endplate|spurring|spinal fusion|subluxation|dislocation|lumpectomy",
        r"granulom\w*|calcifi\w*|atheroscler\w*",
        r"\w*scolio\w*|curvature|kyphos\w*|kyphotic|degenerat\w*|spondylo\w*|osteophyt\w*",
        r"arthrit\w*|arthropath\w*|deformit\w*",
        r"hernia\w*|eventration|elevat\w*|flatten\w*",
        r"tortu\w*|ectatic|ectasia|aneurysm\w*|unfold\w*",
        r"prominen\w*|bronchiectasis|bronchitis|asthma|reactive airway|airways? disease|bronchospasm",
        r"cysts?|cystic|bullae|bullous|bulla|blebs?|cavit\w*",
        r"pneumoperitoneum|pneumomediastinum|subcutaneous (?:emphysema|air|gas)",
        r"cuffing|(?<!pleural )(?<!peribronchial )thickening|aspiration|contusion|osteopeni\w*|osteoporo\w*",
        r"metasta\w*|lytic|sclerotic|hematoma|hemorrhage|lymphadenopathy|adenopathy",
        r"mastectomy|lobectomy|pneumonectomy|resection|azygos lobe|pectus|foreign body|bullets?|shrapnel",
        r"hyperdistention|hiatal|obscur\w*|postoperative|post-operative|post surgical|chronic changes?",
    ),
}

# Attribute statements ("heart size is normal"): a regex whose named group says the status,
# unc* -> uncertain, neg* -> negative, otherwise "pos": the labels' positive values below, set by context cues.
_GAP = r"(?:(?!\b(?:but|however|although|though|while|whereas)\b)[^.;:,]){0,60}?"
_HEART = (r"(?:heart(?! failure)(?: size)?|cardiac (?:and mediastinal )?(?:silhouette|shadow|size|contours?|borders?)"
          r"|cardiopericardial silhouette)")
_MEDIA = r"(?:(?<!cardio)(?:mediastinum|mediastinal (?:and hilar )?(?:silhouettes?|contours?|size|width|shadow)))"
_CMS = r"(?:cardiomediastinal(?: (?:silhouettes?|contours?|size|shadow|width))?)"
_UNC_ATTR = r"(?P<unc>borderline|(?:\w+ly )?prominent|possibly enlarged|may be enlarged)"
_NEG_ATTR = (r"(?P<neg>not (?:\w+ )?(?:enlarged|widened|large|increased)"
             r"|(?:upper|high|top)(?:[- ]normal| (?:limits? )?(?:of )?normal)"
             r"|normal|within normal limits|unremarkable|small|negative)")
_ENLARGED = r"(?P<pos>widen\w*|enlarg\w*|large|increased)"


def _anchor_then_attribute(anchor: str) -> str:
    """Regex: `anchor`, a short gap inside the clause, then an uncertain / negative / positive attribute."""
    return rf"\b{anchor}\b{_GAP}\b(?:{_UNC_ATTR}|{_NEG_ATTR}|{_ENLARGED})\b"


_HEART_ONLY, _MEDIASTINUM_ONLY = ("Cardiomegaly",), ("Enlarged Cardiomediastinum",)
_BOTH = ("Enlarged Cardiomediastinum", "Cardiomegaly")  # "cardiomediastinal silhouette": which part is big is not said
ATTRIBUTE_RULES: tuple[tuple[tuple[str, ...], tuple[float, ...], str], ...] = (
    (_HEART_ONLY, (POSITIVE,), _anchor_then_attribute(_HEART)),
    (_MEDIASTINUM_ONLY, (POSITIVE,), _anchor_then_attribute(_MEDIA)),
    (_BOTH, (POSITIVE, UNCERTAIN), _anchor_then_attribute(_CMS)),
    (_HEART_ONLY, (POSITIVE,),
     r"\b(?:(?P<neg>normal(?:[- ]sized?)?|unremarkable)|(?P<unc>borderline(?: enlarged)?)) (?:\w+ )?(?:heart|cardiac)\b"),
    (_MEDIASTINUM_ONLY, (POSITIVE,), r"\b(?P<neg>normal|unremarkable) (?:heart and )?mediastin\w*"),
    (_MEDIASTINUM_ONLY, (POSITIVE,),
     r"\b(?P<unc>(?:\w+ly )?(?:prominen\w*|fullness)) (?:of )?(?:the )?(?:upper |superior |right |left )?"
     r"(?:mediastin\w*|paratracheal)|\bparatracheal (?:\w+ )?(?P<unc2>prominence|fullness|widening)"),
    (_BOTH, (POSITIVE, UNCERTAIN), rf"\b(?:{_UNC_ATTR}|(?P<neg>normal|unremarkable)|(?P<pos>enlarged|widened)) {_CMS}"),
    (_BOTH, (POSITIVE, UNCERTAIN), r"\b(?P<neg>normal) (?:heart|cardiac \w+) and mediastin\w*"),
    (("Pleural Effusion",), (POSITIVE,),
     r"\b(?P<neg>sharp|clear) (?:\w+ )?(?:costophrenic|cp)\b"
     r"|\b(?:costophrenic|cp) (?:angles?|sulc[iu]s|recess\w*|xxxx) (?:\w+ ){0,3}(?P<neg2>sharp|clear|preserved|normal)"),
)

NORMAL_STATEMENTS = (
    r"no (?:\w+ )?acute (?:\w+ )?(?:abnormalit\w*|disease|process|findings?|pathology|changes?|cardiopulmonary)",
    r"normal (?:chest|study|exam\w*|radiograph\w*|x-\w+)",
    r"no (?:active|significant) (?:\w+ )?disease",
    r"unremarkable (?:chest|study|exam\w*|radiograph\w*)",
)

PSEUDO_NEGATION = (
    r"no (?:significant |substantial |appreciable |definite )?(?:interval )?(?:change|increase|decrease)",
    r"not (?:significantly |substantially )?changed",
    r"without (?:significant |interval )?change",
    r"not only",
)
NEG_UNCERTAIN = (
    r"(?:cannot|can not|can't|could not|not) (?:be )?(?:entirely |completely |definitely |totally )?(?:excluded?|ruled? out)",
    r"difficult to (?:exclude|rule out)",
    r"no new",  # CheXpert: "no new effusion" leaves an old one possible
)
PRE_NEGATION = (
    r"no", r"not", r"without", r"negative for", r"free of", r"absen\w*", r"nor", r"neither",
    r"resolved|resolution", r"removal of|removed", r"ruled out", r"no longer", r"clear(?:ing|ed)? of",
)
_AUX = r"(?:is|are|was|were|appears?|remains?|seems?|looks?)"
POST_NEGATION = (
    rf"(?:{_AUX}\s+)?(?:no longer|not)\s+(?:\w+ly\s+)?(?:seen|identified|present|visuali[sz]ed|visible|evident|"
    r"demonstrated|appreciated|noted|detected|apparent|shown|enlarged|widened)",
    r"(?:(?:has|have)\s+(?:\w+ly\s+)?(?:been\s+)?)?(?:resolved|cleared|removed)",
    r"(?:(?:is|are)\s+)?absent",
)
POST_NORMAL = rf"{_AUX}\s+(?:\w+ly\s+)?(?:within (?:the )?(?:normal limits|limits of normal)|normal)"
PRE_UNCERTAINTY = (
    r"may", r"might", r"could", r"possibl[ey]", r"probabl[ey]", r"likely", r"suspect\w*", r"suspicious",
    r"suggest\w*", r"concern\w*", r"question\w*", r"equivocal", r"differential", r"versus|vs",
    r"consider\w*", r"favou?r\w*", r"borderline", r"indeterminate", r"uncertain", r"presum\w*", r"perhaps",
    r"worrisome", r"correlat\w*", r"if", r"evaluat\w* for", r"exclude", r"rule out", r"recommend\w*",
)
POST_UNCERTAINTY = (
    r"(?:(?:is|are|was|were)\s+)?(?:\w+ly\s+)?(?:suspected|possible|questioned|questionable|favou?red|suggested|considered)",
    r"(?:may|might|could)\s+(?:be|represent|reflect)",
    r"versus|vs",
)

_AUX_FREE = rf"(?:(?!\b(?:{_AUX[3:-1]}|has|have)\b)[^;]){{0,90}}?"
_AUX_FREE_NO_COMMA = _AUX_FREE.replace("[^;]", "[^;,]")


def _alternation(patterns: Iterable[str]) -> str:
    """One non-capturing alternation of `patterns`."""
    return "(?:" + "|".join(f"(?:{p})" for p in patterns) + ")"


def _words(patterns: Iterable[str]) -> re.Pattern:
    """`patterns` as whole-word alternatives."""
    return re.compile(rf"\b{_alternation(patterns)}\b")


_PHRASE_RES = {label: _words(pats) for label, pats in PHRASES.items()}
_ATTRIBUTE_RES = tuple((labels, statuses, re.compile(rx)) for labels, statuses, rx in ATTRIBUTE_RULES)
_NORMAL_RE = _words(NORMAL_STATEMENTS)
_PSEUDO_RE = _words(PSEUDO_NEGATION)
_NEG_UNC_RE = _words(NEG_UNCERTAIN)
_PRE_NEG_RE = _words(PRE_NEGATION)
_PRE_UNC_RE = re.compile(rf"\b{_alternation(PRE_UNCERTAINTY)}\b|\?")
_POST_NEG_RE = re.compile(rf"^{_AUX_FREE}\b{_alternation(POST_NEGATION)}\b|^{_AUX_FREE_NO_COMMA}\b{POST_NORMAL}\b")
_POST_UNC_RE = re.compile(rf"^{_AUX_FREE}(?:\b{_alternation(POST_UNCERTAINTY)}\b|\?)")
_CLAUSE_RE = re.compile(
    r"[;:]|\s-\s|\b(?:but|however|although|though|whereas|while|except|aside from|apart from|which|otherwise)\b"
    r"|(?:,|\band)\s+(?=(?:there|the|this|these|it|likely|possibly|probably|may|consistent|compatible|suggest\w*|which"
    r"|and there)\b)"
)


@dataclass(frozen=True)
class Mention:
    """One observation phrase found in a sentence, with the cue that decided its status."""

    sentence: int
    observation: str
    phrase: str
    status: float
    cue: str
    start: int
    end: int


def _clause(boundaries: list[tuple[int, int]], start: int, end: int, size: int) -> tuple[int, int]:
    """(first, last) character of the clause holding the span start..end."""
    left = max((b for a, b in boundaries if b <= start), default=0)
    right = min((a for a, b in boundaries if a >= end), default=size)
    return left, right


def _context_status(text: str, start: int, end: int, clause: tuple[int, int]) -> tuple[float, str]:
    """Status of a mention at start..end from the cues of its clause (see module doc)."""
    before, after = text[clause[0] : start], text[end : clause[1]]
    hedge = _NEG_UNC_RE.search(text, clause[0], clause[1])
    if hedge:
        return UNCERTAIN, hedge.group(0)
    neg = list(_PRE_NEG_RE.finditer(before)) or list(_POST_NEG_RE.finditer(after))
    if neg:
        return NEGATIVE, neg[-1].group(0).strip()
    unc = list(_PRE_UNC_RE.finditer(before)) or list(_POST_UNC_RE.finditer(after))
    if unc:
        return UNCERTAIN, unc[-1].group(0).strip()
    return POSITIVE, ""


def _prepare(sentence: str) -> str:
    """Lower-case and blank out pseudo-negations (same length, so offsets stay valid)."""
    text = sentence.lower()
    return _PSEUDO_RE.sub(lambda m: "~" * len(m.group(0)), text)


def _attribute_kind(match: re.Match) -> str:
    """Which attribute group fired: 'unc...', 'neg...' or 'pos'."""
    return next((k for k, v in match.groupdict().items() if v and k[:3] in ("unc", "neg")), "pos")


def _attribute_mentions(index: int, text: str, bounds, sentence: str) -> list[Mention]:
    """Mentions from attribute statements ("heart size is normal", "enlarged cardiomediastinal silhouette")."""
    out = []
    for labels, statuses, pattern in _ATTRIBUTE_RES:
        for m in pattern.finditer(text):
            kind = _attribute_kind(m)
            if kind == "pos":
                base, cue = _context_status(text, m.start(), m.end(), _clause(bounds, m.start(), m.end(), len(text)))
                values = [s if base == POSITIVE else base for s in statuses]
            else:
                cue, values = m.group(kind), [UNCERTAIN if kind.startswith("unc") else NEGATIVE] * len(labels)
            phrase, cue = sentence[m.start() : m.end()], cue or "attribute"
            out += [Mention(index, lab, phrase, v, cue, m.start(), m.end()) for lab, v in zip(labels, values, strict=True)]
    return out


def _sentence_mentions(index: int, sentence: str) -> list[Mention]:
    """All mentions in one sentence."""
    text = _prepare(sentence)
    bounds = [(m.start(), m.end()) for m in _CLAUSE_RE.finditer(text)]
    out = [Mention(index, "No Finding", sentence[m.start() : m.end()], POSITIVE, "normal statement", m.start(), m.end())
           for m in _NORMAL_RE.finditer(text)]
    for label, pattern in _PHRASE_RES.items():
        for m in pattern.finditer(text):
            status, cue = _context_status(text, m.start(), m.end(), _clause(bounds, m.start(), m.end(), len(text)))
            out.append(Mention(index, label, sentence[m.start() : m.end()], status, cue, m.start(), m.end()))
    return out + _attribute_mentions(index, text, bounds, sentence)


def _sentences(text: str | None) -> list[str]:
    """Sentences of a report; None counts as empty, other non-strings are an error."""
    if text is not None and not isinstance(text, str):
        raise ParameterError(f"a report must be a string, got {type(text).__name__}")
    return split_sentences(text or "")


def mentions(text: str) -> list[Mention]:
    """Every observation mention of a report, sentence by sentence, with phrase, cue and status."""
    return [m for i, s in enumerate(_sentences(text)) for m in _sentence_mentions(i, s)]


def _aggregate(statuses: list[float]) -> float:
    """CheXpert aggregation: positive beats uncertain beats negative; NaN when never mentioned."""
    for value in (POSITIVE, UNCERTAIN, NEGATIVE):
        if value in statuses:
            return value
    return np.nan


def label_report(text: str) -> np.ndarray:
    """14 CheXpert values (1 / 0 / -1 / NaN, order of CHEXPERT_LABELS) for one report."""
    sentences = _sentences(text)
    labels = np.full(len(CHEXPERT_LABELS), np.nan, dtype=np.float32)
    if not sentences:
        return labels
    by_label: dict[str, list[float]] = {}
    for m in (m for i, s in enumerate(sentences) for m in _sentence_mentions(i, s)):
        by_label.setdefault(m.observation, []).append(m.status)
    for label, statuses in by_label.items():
        if label in _INDEX and label != "No Finding":
            labels[_INDEX[label]] = _aggregate(statuses)
    blocking = [v for k, v in by_label.items() if k not in ("No Finding", "Support Devices")]
    labels[0] = NEGATIVE if any(s in (POSITIVE, UNCERTAIN) for v in blocking for s in v) else POSITIVE
    return labels


def label_reports(texts: Iterable[str]) -> np.ndarray:
    """(N, 14) float32 array: ``label_report`` for each text."""
    rows = [label_report(t) for t in texts]
    return np.stack(rows) if rows else np.zeros((0, len(CHEXPERT_LABELS)), dtype=np.float32)
