"""Score a MEDIQA-M3G submission as the official scorer does (wyim/MEDIQA-M3G-2024, evaluation/nlg/scoring_multilingresp.py).

The scorer's rules around ``delta_bleu(mode="official")`` (facts: ``official_scorer`` in
papers/m3g_answer_generation/published.yaml):

- languages: the ``content_<lang>`` keys of the submission's first entry's first response, intersected with those
  of the references' first response; each language is scored on its own (tokenizer 'zh' for Chinese, '13a' else);
- reference weights apply to every scored language when 'zh' is among them, otherwise every weight is 1;
- predictions are paired with references by position in the file (its id check compares the reference list with
  itself, so a reordered file goes unnoticed there); only the first response of each prediction is scored.

``score_submission`` scores by position (the official score) and, when the file's encounter order differs from the
references', also by encounter id, and warns with both scores.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ...data.dermavqa import read_json_list, read_userinfo, response_weights
from ...errors import DataFormatError, ParameterError
from ...eval.deltableu import DeltaBleuResult, delta_bleu

CONTENT_PREFIX = "content_"


class SubmissionOrderWarning(UserWarning):
    """A submission's encounter order differs from the references' (the official scorer pairs by position)."""


@dataclass(frozen=True)
class SubmissionScore:
    """Official deltaBLEU per scored language, by file position (official) and by encounter id."""

    languages: tuple[str, ...]
    weighted: bool  # reference weights applied ('zh' among the languages)
    by_position: dict[str, DeltaBleuResult]
    by_id: dict[str, DeltaBleuResult] | None  # None when some reference id has no prediction
    order_matches: bool
    n_cases: int

    def score(self, lang: str = "en") -> float:
        """The official score (by position) of `lang`."""
        if lang not in self.by_position:
            raise ParameterError(f"language {lang!r} was not scored; scored: {list(self.languages)}")
        return self.by_position[lang].score

    def rows(self) -> list[dict]:
        """One row per language: official (by position) and by-id dBLEU, BP, ratio, lengths."""
        return [_row(lang, self.by_position[lang], (self.by_id or {}).get(lang), self.weighted)
                for lang in self.languages]

    def __str__(self) -> str:
        """One line per language with both pairings."""
        return "\n".join(_describe(row) for row in self.rows())


def _row(lang: str, official: DeltaBleuResult, by_id: DeltaBleuResult | None, weighted: bool) -> dict:
    """A table row of one language."""
    return {"language": lang, "dBLEU": official.score, "dBLEU by id": None if by_id is None else by_id.score,
            "BP": official.bp, "ratio": official.ratio, "hyp_len": official.hyp_len, "ref_len": official.ref_len,
            "weighted": weighted}


def _describe(row: dict) -> str:
    """`deltableu_<lang> = x (by file position, official); y by encounter id` for one row."""
    by_id = "—" if row["dBLEU by id"] is None else f"{row['dBLEU by id']:.2f}"
    return (f"deltableu_{row['language']} = {row['dBLEU']:.2f} (by file position, as the official scorer pairs); "
            f"{by_id} by encounter id; reference weights {'on' if row['weighted'] else 'off'}")


# ------------------------------------------------------------------ languages


def content_languages(response, where: str = "response") -> tuple[str, ...]:
    """The languages of a response's content_<lang> keys, in key order."""
    if not isinstance(response, dict):
        raise DataFormatError(f"{where} must be an object with content_<lang> keys, got {type(response).__name__}")
    return tuple(key[len(CONTENT_PREFIX):] for key in response if key.startswith(CONTENT_PREFIX))


def submission_languages(rows, where: str = "submission") -> tuple[str, ...]:
    """The languages the official scorer reads from a submission: content_<lang> keys of rows[0].responses[0]."""
    if not isinstance(rows, list) or not rows:
        raise DataFormatError(f"{where}: expected a non-empty JSON list of {{encounter_id, responses}} entries")
    return content_languages(_first_response(rows[0], f"{where}: entry 0"), f"{where}: entry 0 responses[0]")


def scored_languages(rows, encounters, where: str = "submission") -> tuple[str, ...]:
    """The submission's languages that the references also hold (the scorer's intersection), in submission order."""
    ours = submission_languages(rows, where)
    theirs = content_languages(_first_response(encounters[0], "references: encounter 0"), "references")
    both = tuple(lang for lang in ours if lang in theirs)
    if not both:
        raise DataFormatError(f"{where} holds content_{list(ours)} but the references hold content_{list(theirs)}; "
                              "nothing to score: write the answers under a language the references have "
                              "(write_submission(..., lang='en'))")
    return both


def _first_response(entry, where: str) -> dict:
    """entry['responses'][0], with an error naming the entry."""
    responses = entry.get("responses") if isinstance(entry, dict) else None
    if not isinstance(responses, list) or not responses or not isinstance(responses[0], dict):
        raise DataFormatError(f"{where} has no responses[0] object; expected {{'encounter_id', 'responses': "
                              "[{'content_en': ...}]}")
    return responses[0]


# ------------------------------------------------------------------ inputs


def _submission_rows(submission) -> tuple[list, str]:
    """(entries, name) of a submission given as a JSON file path or a list of entries."""
    if isinstance(submission, str | Path):
        return read_json_list(Path(submission), "submission JSON"), str(submission)
    if isinstance(submission, list):
        return submission, "submission"
    raise ParameterError(f"submission must be a JSON file path or a list of entries, got {type(submission).__name__}")


def _reference_rows(reference, userinfo) -> tuple[list, object]:
    """(encounters, users mapping or None) from a reference JSON path, a dermavqa dataset or a list of encounters."""
    if isinstance(reference, str | Path):
        encounters = read_json_list(Path(reference), "reference JSON")
        beside = Path(reference).with_name("df_userinfo.csv")
        default = beside if beside.is_file() else None
    elif hasattr(reference, "records"):
        encounters = [{"encounter_id": r["id"], "responses": r["responses"]} for r in reference.records]
        default = getattr(reference, "userinfo", None)
    elif isinstance(reference, list):
        encounters, default = reference, None
    else:
        raise ParameterError("reference must be a reference JSON path, a dermavqa dataset or a list of encounters, "
                             f"got {type(reference).__name__}")
    if not encounters:
        raise DataFormatError("the reference holds no encounters")
    path = default if userinfo is None else (None if userinfo is False else Path(userinfo))
    return encounters, (read_userinfo(path) if path else None)


def _ids(rows, what: str) -> list[str]:
    """The encounter_id of every entry, with an error naming the entry without one."""
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "encounter_id" not in row:
            raise DataFormatError(f"{what}: entry {index} has no key 'encounter_id'")
    return [str(row["encounter_id"]) for row in rows]


def _hypothesis(row, lang: str, index: int, where: str) -> str:
    """The scored text of one prediction: responses[0]['content_<lang>']."""
    response = _first_response(row, f"{where}: entry {index} ({row.get('encounter_id', '?')})")
    text = response.get(CONTENT_PREFIX + lang)
    if not isinstance(text, str):
        raise DataFormatError(f"{where}: entry {index} ({row.get('encounter_id', '?')}) has no string "
                              f"responses[0]['content_{lang}'] although entry 0 has one; the official scorer fails "
                              "there (KeyError): give every entry the same languages")
    return text


# ------------------------------------------------------------------ scoring


def score_submission(submission, reference, userinfo=None) -> SubmissionScore:
    """Official deltaBLEU of a submission per language it holds, by position, and by id when the order differs.

    `submission`: a submission JSON path or its list of entries. `reference`: the reference JSON path (its
    df_userinfo.csv beside it supplies the weights), a dermavqa dataset, or a list of encounters. `userinfo`:
    a df_userinfo.csv path to use instead (False: none, all weights 1, as the scorer's df_userinfo=None).
    """
    rows, where = _submission_rows(submission)
    encounters, users = _reference_rows(reference, userinfo)
    languages = scored_languages(rows, encounters, where)
    sub_ids, ref_ids = _ids(rows, where), _ids(encounters, "references")
    _check_length(len(rows), len(ref_ids), where)
    weights = _weights(encounters, users) if "zh" in languages else None
    by_position = _score_pairs(rows[: len(ref_ids)], encounters, weights, languages, where)
    order_matches = sub_ids[: len(ref_ids)] == ref_ids
    by_id = by_position if order_matches else _score_by_id(rows, sub_ids, encounters, ref_ids, weights, languages,
                                                            where)
    result = SubmissionScore(languages, weights is not None, by_position, by_id, order_matches, len(ref_ids))
    if not order_matches:
        _warn_order(where, sub_ids, ref_ids, result)
    return result


def _check_length(n_rows: int, n_refs: int, where: str) -> None:
    """A submission shorter than the references fails in the official scorer (IndexError): refuse it."""
    if n_rows < n_refs:
        raise DataFormatError(f"{where} has {n_rows} entries but the references have {n_refs}; the official scorer "
                              "pairs by position and fails on a short file: predict every encounter "
                              "(write_submission(..., order=references))")


def _weights(encounters, users) -> list[list[float]]:
    """Competition weight of every reference response (1.0 without userinfo, as the scorer's df_userinfo=None)."""
    return [response_weights(enc.get("responses") or [], users, f"references: encounter {i}")
            for i, enc in enumerate(encounters)]


def _references(encounters, lang: str) -> list[list[str]]:
    """Per encounter, its responses' content_<lang>."""
    out = []
    for index, enc in enumerate(encounters):
        texts = [r.get(CONTENT_PREFIX + lang) for r in enc.get("responses") or [] if isinstance(r, dict)]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise DataFormatError(f"references: encounter {index} ({enc.get('encounter_id', '?')}) lacks "
                                  f"content_{lang} in some response")
        out.append(texts)
    return out


def _score_pairs(rows, encounters, weights, languages, where: str) -> dict[str, DeltaBleuResult]:
    """Official deltaBLEU per language of rows[i] against encounters[i]."""
    out = {}
    for lang in languages:
        hyps = [_hypothesis(row, lang, i, where) for i, row in enumerate(rows)]
        out[lang] = delta_bleu(hyps, _references(encounters, lang), weights, mode="official", languages=languages,
                               tokenize="zh" if lang == "zh" else "13a")
    return out


def _score_by_id(rows, sub_ids, encounters, ref_ids, weights, languages, where: str):
    """Scores with each reference paired with the prediction of its encounter_id (None when one has none).

    A repeated id keeps its last entry, as `data.dermavqa.read_submission` does.
    """
    by_id = dict(zip(sub_ids, rows))
    if any(eid not in by_id for eid in ref_ids):
        return None
    return _score_pairs([by_id[eid] for eid in ref_ids], encounters, weights, languages, where)


def _warn_order(where: str, sub_ids, ref_ids, result: SubmissionScore) -> None:
    """Warn that the file's order differs from the references', with both scores."""
    first = next(i for i, (a, b) in enumerate(zip(sub_ids, ref_ids)) if a != b)
    missing = sorted(set(ref_ids) - set(sub_ids))
    detail = f"; {len(missing)} reference ids have no prediction (e.g. {missing[:3]})" if missing else ""
    warnings.warn(f"{where}: encounter order differs from the references (first at position {first}: "
                  f"{sub_ids[first]!r} vs {ref_ids[first]!r}){detail}. The official scorer pairs by position: "
                  f"{result}. Rewrite the file in reference order: write_submission(path, predictions, "
                  "order=references)", SubmissionOrderWarning, stacklevel=3)
