"""`dermavqa`: MEDIQA-M3G 2024 / DermaVQA (iiyi) dermatology VQA in its official layout, and its submissions.

Layout under `root` (see data_cards/dermavqa.md): `train.json`, `valid.json` or `valid_ht.json`,
`test.json` or `test_ht.json` (a JSON list of encounters), `images_{train,valid,test}/IMG_*.jpg`
and `df_userinfo.csv` (author_id, validation_level, rank_level). One item per encounter: `id`,
`image` (list of PIL images, decoded on access), `text` (query title + content in `lang`),
`references` (response texts), `reference_weights` (competition weights), `responses` (raw),
`image_ids`, `image_paths`, `author_id`, `query_title`, `query_content`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import pandas as pd

from ..errors import DataFormatError, MedvlError, ParameterError
from ..io import atomic_write_json
from .base import RecordDataset
from .images import load_image
from .registry import register
from .splits import canonical_split

SPLIT_NAMES = {"train": "train", "val": "valid", "test": "test"}  # canonical split -> the official name (images_*)
SPLIT_FILES = {"train": ("train.json",), "val": ("valid.json", "valid_ht.json"),
               "test": ("test.json", "test_ht.json")}
LANGS = ("en", "zh", "es")
USERINFO_FILE = "df_userinfo.csv"
USERINFO_COLUMNS = ("author_id", "validation_level", "rank_level")
ENCOUNTER_KEYS = ("encounter_id", "image_ids", "responses")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class MultiImageDataset(RecordDataset):
    """A RecordDataset whose `image` is a list; `transform` applies to each image."""

    def __getitem__(self, index: int) -> dict:
        item = dict(self.records[index])
        if self._load is not None:
            item = self._load(item)
        if self.transform is not None and "image" in item:
            item["image"] = [self.transform(image) for image in item["image"]]
        return item


# ------------------------------------------------------------------ files

def split_file(root: Path, split: str, json_path=None) -> Path:
    """The encounters JSON of `split`: `json_path` (absolute or relative to root) or an official name."""
    if json_path is not None:
        path = Path(json_path).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DataFormatError(f"dermavqa: json={json_path!r} not found (looked at {path})")
        return path
    for name in SPLIT_FILES[split]:
        if (root / name).is_file():
            return root / name
    tried = ", ".join(str(root / n) for n in SPLIT_FILES[split])
    raise DataFormatError(f"dermavqa {split} file not found: tried {tried}; set root= to the folder holding "
                          "the MEDIQA-M3G JSON files or pass json=PATH (see data_cards/dermavqa.md)")


def read_json_list(path: Path, what: str = "encounters JSON") -> list:
    """A JSON file holding a list, with parse and type errors naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"cannot read {what} {path}: {exc}; re-download or regenerate the file") from exc
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    return data


def read_encounters(path: Path, lang: str = "en") -> list[dict]:
    """The encounters of one split file, checked for the keys the loader needs in `lang`."""
    encounters = read_json_list(path)
    for index, enc in enumerate(encounters):
        _check_encounter(path, index, enc, lang)
    return encounters


def _check_encounter(path: Path, index: int, enc, lang: str) -> None:
    """Raise a DataFormatError naming the file, the encounter and the missing key."""
    where = f"{path}: encounter {index}"
    if not isinstance(enc, dict):
        raise DataFormatError(f"{where} is a {type(enc).__name__}, expected an object")
    where = f"{path}: encounter {index} ({enc.get('encounter_id', '?')})"
    for key in (*ENCOUNTER_KEYS, f"query_title_{lang}", f"query_content_{lang}"):
        if key not in enc:
            raise DataFormatError(f"{where} has no key {key!r}; expected MEDIQA-M3G encounter keys "
                                  f"{list(ENCOUNTER_KEYS)} + query_title_{lang}/query_content_{lang}")
    if not isinstance(enc["image_ids"], list) or not isinstance(enc["responses"], list):
        raise DataFormatError(f"{where}: 'image_ids' and 'responses' must be lists")
    for k, resp in enumerate(enc["responses"]):
        missing = [key for key in ("author_id", f"content_{lang}") if not isinstance(resp, dict) or key not in resp]
        if missing:
            raise DataFormatError(f"{where}: response {k} has no key {missing[0]!r}")


def read_userinfo(path: Path) -> dict[str, tuple[str, str]]:
    """author_id -> (validation_level, rank_level) from df_userinfo.csv (blank level -> '')."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataFormatError(f"cannot parse {path}: {exc}; re-download the file") from exc
    missing = [c for c in USERINFO_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column {missing[0]!r}; expected columns {list(USERINFO_COLUMNS)}")
    frame = frame.drop_duplicates("author_id")
    return dict(zip(frame["author_id"], zip(frame["validation_level"], frame["rank_level"])))


def _userinfo_path(root: Path, source: Path, userinfo) -> Path | None:
    """`userinfo` if given (False = none), else df_userinfo.csv beside the JSON or in root, else None."""
    if userinfo is False:
        return None
    if userinfo is not None:
        path = Path(userinfo).expanduser()
        if not path.is_file():
            raise DataFormatError(f"dermavqa: userinfo={userinfo!r} not found")
        return path
    for folder in (source.parent, root):
        if (folder / USERINFO_FILE).is_file():
            return folder / USERINFO_FILE
    return None


# ------------------------------------------------------------------ weights and records

def reference_weight(validation_level, rank_level, contains_freq_ans, completeness) -> float:
    """Competition weight of one reference: 0.6 + 0.1 per criterion met (md, rank >= 4, freq answer, complete)."""
    hits = (_is_md(validation_level) + (_rank(rank_level) >= 4)
            + (_flag(contains_freq_ans, "contains_freq_ans", (0, 1)) == 1)
            + (_flag(completeness, "completeness", (0, 0.5, 1)) == 1))
    return round(0.6 + 0.1 * hits, 1)


def response_weights(responses: Sequence[dict], users: Mapping | None, where: str = "") -> list[float]:
    """Competition weight per response; 1.0 without userinfo or without completeness/contains_freq_ans."""
    out = []
    for k, resp in enumerate(responses):
        if users is None or "completeness" not in resp or "contains_freq_ans" not in resp:
            out.append(1.0)
            continue
        if resp["author_id"] not in users:
            raise DataFormatError(f"{where}: response {k} author {resp['author_id']!r} is not in {USERINFO_FILE}; "
                                  "use the df_userinfo.csv released with this split or pass userinfo=False")
        try:
            out.append(reference_weight(*users[resp["author_id"]], resp["contains_freq_ans"], resp["completeness"]))
        except ParameterError as exc:
            raise DataFormatError(f"{where}: response {k} (author {resp['author_id']!r}): {exc}") from exc
    return out


def _is_md(validation_level) -> bool:
    """True for a validation level starting with 'md' (md_validated, md1_validated, ...)."""
    if not isinstance(validation_level, str):
        raise ParameterError(f"validation_level must be a string such as 'md_validated' or 'realid_validated', "
                             f"got {validation_level!r}")
    return validation_level[:2] == "md"


def _rank(rank_level) -> int:
    """Numeric rank of 'level_N' ('unk' = 0)."""
    if rank_level == "unk":
        return 0
    if isinstance(rank_level, str) and rank_level.startswith("level_") and rank_level[6:].isdigit():
        return int(rank_level[6:])
    raise ParameterError(f"rank_level must be 'level_0'..'level_8' or 'unk', got {rank_level!r}")


def _flag(value, name: str, allowed: tuple) -> float:
    """A numeric annotation checked against its allowed values."""
    if isinstance(value, Real) and value in allowed:
        return float(value)
    raise ParameterError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def image_file(folder: Path, image_id: str) -> Path:
    """The file of `image_id` in `folder` (an id without suffix matches .jpg/.jpeg/.png)."""
    path = folder / image_id
    if path.suffix or path.is_file():
        return path
    return next((folder / f"{image_id}{s}" for s in IMAGE_SUFFIXES if (folder / f"{image_id}{s}").is_file()),
                folder / f"{image_id}.jpg")


def query_text(enc: dict, lang: str = "en") -> str:
    """Query title and content in `lang`, one line each (empty parts dropped)."""
    parts = (str(enc.get(f"query_title_{lang}") or "").strip(), str(enc.get(f"query_content_{lang}") or "").strip())
    return "\n".join(p for p in parts if p)


def build_records(encounters: list[dict], image_dir: Path, users: Mapping | None, lang: str, source: Path) -> list[dict]:
    """One record per encounter (no image decoded)."""
    records = []
    for index, enc in enumerate(encounters):
        where = f"{source}: encounter {index} ({enc['encounter_id']})"
        records.append({
            "id": str(enc["encounter_id"]), "author_id": enc.get("author_id", ""),
            "image_ids": list(enc["image_ids"]),
            "image_paths": [str(image_file(image_dir, str(i))) for i in enc["image_ids"]],
            "text": query_text(enc, lang), "query_title": enc[f"query_title_{lang}"],
            "query_content": enc[f"query_content_{lang}"],
            "references": [str(r[f"content_{lang}"]) for r in enc["responses"]],
            "reference_weights": response_weights(enc["responses"], users, where),
            "responses": enc["responses"],
        })
    return records


def _image_loader(mode: str):
    """The lazy `load` callback: decodes every image of the encounter into item['image']."""
    def load(item: dict) -> dict:
        item["image"] = [load_image(path, mode=mode) for path in item["image_paths"]]
        return item

    return load


@register("dermavqa", "MEDIQA-M3G 2024 / DermaVQA iiyi: dermatology queries + images + weighted responses")
def dermavqa(root: Path, split: str = "train", lang: str = "en", json=None, images: bool = True, image_dir=None,
             userinfo=None, mode: str = "RGB", transform=None):
    """One item per encounter of `split` (train, val, test; read from `json=` if given; images still from images_*/)."""
    if lang not in LANGS:
        raise MedvlError(f"dermavqa: lang={lang!r}; use one of {list(LANGS)}")
    root = Path(root).expanduser()
    split = canonical_split(split, dataset="dermavqa")
    source = split_file(root, split, json)
    encounters = read_encounters(source, lang)
    users_path = _userinfo_path(root, source, userinfo)
    users = read_userinfo(users_path) if users_path else None
    folder = Path(image_dir).expanduser() if image_dir else _default_image_dir(root, source, SPLIT_NAMES[split])
    if images and encounters and not folder.is_dir():
        raise DataFormatError(f"dermavqa image folder not found: {folder}; put images_{SPLIT_NAMES[split]}/ there, "
                              "pass image_dir=, or images=False")
    records = build_records(encounters, folder, users, lang, source)
    dataset = MultiImageDataset(records, load=_image_loader(mode) if images else None, transform=transform,
                                name="dermavqa")
    dataset.split, dataset.lang, dataset.source, dataset.userinfo = split, lang, source, users_path
    return dataset


def _default_image_dir(root: Path, source: Path, name: str) -> Path:
    """images_{name}/ (name: the official split name) beside the JSON file if there, else in root."""
    beside = source.parent / f"images_{name}"
    return beside if beside.is_dir() else root / f"images_{name}"


# ------------------------------------------------------------------ submissions

def _as_pairs(predictions) -> list[tuple[str, list[str]]]:
    """(encounter_id, [response, ...]) pairs from a mapping or a sequence of pairs; a str is one response."""
    items = predictions.items() if isinstance(predictions, Mapping) else predictions
    pairs = []
    for eid, value in items:
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ParameterError(f"prediction for {eid!r} must be a string or a non-empty list of strings")
        pairs.append((str(eid), texts))
    return pairs


def _order_ids(order) -> list[str] | None:
    """Encounter ids in reference order from a dataset, a reference JSON path or a list of ids."""
    if order is None:
        return None
    if isinstance(order, (str, Path)):
        return [str(e.get("encounter_id")) for e in read_json_list(Path(order), "reference JSON")]
    if hasattr(order, "records"):
        return [r["id"] for r in order.records]
    return [str(e) for e in order]


def write_submission(path, predictions, order=None, lang: str = "en") -> Path:
    """Write the official submission JSON ([{encounter_id, responses: [{content_<lang>}]}]) atomically.

    `predictions`: mapping encounter_id -> answer (or list of answers; only the first is scored), or
    (id, answer) pairs. `order`: the reference dataset, reference JSON path or id list; the file then
    follows its order and every id must be predicted exactly once (the scorer matches by position).
    """
    pairs = _as_pairs(predictions)
    by_id = dict(pairs)
    if len(by_id) != len(pairs):
        raise ParameterError("predictions contain a repeated encounter_id")
    ids = _order_ids(order)
    if ids is not None:
        missing, extra = [i for i in ids if i not in by_id], sorted(set(by_id) - set(ids))
        if missing or extra:
            raise ParameterError(f"predictions do not match the reference encounters: missing {missing[:5]} "
                                 f"({len(missing)}), unknown {extra[:5]} ({len(extra)})")
        pairs = [(i, by_id[i]) for i in ids]
    rows = [{"encounter_id": eid, "responses": [{f"content_{lang}": t} for t in texts]} for eid, texts in pairs]
    return atomic_write_json(path, rows)


def read_submission(path, lang: str = "en", order=None) -> dict[str, str]:
    """encounter_id -> first response's content_<lang> (the scored one), in file order (a repeated id: the last).

    `order` (the reference dataset, reference JSON path or id list): warn when the file's encounter order differs,
    since the official scorer pairs predictions with references by position, not by id.
    """
    path = Path(path)
    out, rows = {}, read_json_list(path, "submission JSON")
    for index, row in enumerate(rows):
        responses = row.get("responses") if isinstance(row, dict) else None
        if not isinstance(row, dict) or "encounter_id" not in row:
            raise DataFormatError(f"{path}: entry {index} has no key 'encounter_id'")
        if not responses or not isinstance(responses[0], dict) or f"content_{lang}" not in responses[0]:
            raise DataFormatError(f"{path}: entry {index} ({row['encounter_id']}) has no responses[0]['content_{lang}']")
        out[str(row["encounter_id"])] = responses[0][f"content_{lang}"]
    _warn_if_reordered(path, [str(r["encounter_id"]) for r in rows], order)
    return out


def _warn_if_reordered(path: Path, file_ids: list[str], order) -> None:
    """Warn when the file's ids are not the references' ids in the references' order."""
    ids = _order_ids(order)
    if ids is None or file_ids[: len(ids)] == ids:
        return
    warnings.warn(f"{path}: encounter order differs from the references; this dict aligns answers by id, the "
                  "official scorer pairs them by file position. See both scores with "
                  "medvl_core.studies.m3g_answer_generation.official_scorer.score_submission(path, references); rewrite the file with "
                  "write_submission(path, predictions, order=references)", UserWarning, stacklevel=3)
