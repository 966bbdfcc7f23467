"""M3G data: the splits of a dermavqa-layout dataset, a disease label per case, and the frozen tower features.

Labels come from the case's responses by rules (`derm_labels`, the offline stand-in) or from an LLM (`llm_labels`,
the paper's GPT-4 Turbo step); label names are embedded by a text tower or the OpenAI embeddings API ("openai:MODEL").
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...config import cache_dir
from ...data import open_dataset
from ...data.base import RecordDataset
from ...data.check import screen
from ...data.images import load_image
from ...errors import ParameterError
from ...eval.metrics import accuracy
from ...llm.openai_client import PAPER_CHAT_MODEL, PAPER_EMBEDDING_MODEL, OpenAIClient
from ...models.cache import image_tower_features, text_tower_features
from ...models.embedding_table import EmbeddingTable
from ...models.encoders import build_image_encoder, build_text_encoder
from ...worlds.synth_derm_conditions import label_dictionary
from .derm_labels import build_label_dictionary, extract_labels
from .llm_labels import llm_labels

OPENAI_PREFIX = "openai:"  # text_encoder "openai:MODEL": label names embedded by the OpenAI embeddings API
LABEL_SOURCES = ("world", "responses", "llm")


@dataclass
class M3GSplit:
    """One split: its encounters, the frozen image features of all their images, and per-case labels."""

    name: str
    dataset: object
    image_features: torch.Tensor  # (n_images, tower dim)
    owner: np.ndarray  # case index of every image row
    labels: list[str]  # label extracted from each case's responses ('' when none)

    @property
    def n_cases(self) -> int:
        return len(self.dataset)

    @property
    def ids(self) -> list[str]:
        return self.dataset.column("id")

    @property
    def queries(self) -> list[str]:
        return self.dataset.column("text")

    @property
    def references(self) -> list[list[str]]:
        return self.dataset.column("references")

    @property
    def weights(self) -> list[list[float]]:
        return self.dataset.column("reference_weights")


@dataclass
class M3GData:
    """The splits, the training label vocabulary with its text-tower features, the towers and the dictionary."""

    splits: dict[str, M3GSplit]
    label_names: list[str]
    label_features: torch.Tensor  # (n labels, text tower dim)
    image_encoder: object
    text_encoder: object
    dictionary: dict[str, str]
    skipped: dict = field(default_factory=dict)  # split -> cases dropped before training (bad_items="skip")

    @property
    def train(self) -> M3GSplit:
        return self.splits["train"]

    def split(self, name: str) -> M3GSplit:
        """The split called `name`, with an error listing the prepared ones."""
        if name not in self.splits:
            raise ParameterError(f"split {name!r} was not prepared; prepared: {list(self.splits)}")
        return self.splits[name]

    def training_items(self) -> tuple[np.ndarray, np.ndarray]:
        """(image rows, label index) of the training images whose case has a label."""
        train, index = self.train, {name: i for i, name in enumerate(self.label_names)}
        rows = np.array([i for i, case in enumerate(train.owner) if train.labels[case]], dtype=np.int64)
        return rows, np.array([index[train.labels[train.owner[i]]] for i in rows], dtype=np.int64)

    def most_frequent_label(self) -> str:
        """The training label of the most cases (ties -> first in label order)."""
        counts = Counter(label for label in self.train.labels if label)
        return max(self.label_names, key=lambda name: counts[name])


def image_records(dataset, rows=None) -> RecordDataset:
    """One record per image of every encounter (id 'case/k', path), decoded lazily as RGB; `rows` selects images."""
    records = [{"id": f"{r['id']}/{k}", "path": path, "case": n}
               for n, r in enumerate(dataset.records) for k, path in enumerate(r["image_paths"])]
    records = records if rows is None else [records[int(i)] for i in rows]
    return RecordDataset(records, load=lambda item: {**item, "image": load_image(item["path"], mode="RGB")},
                         name="m3g-images")


def prepare_m3g(name: str = "synth-derm", dictionary: dict | None = None, splits=("train", "val", "test"),
                image_encoder: str = "bundled:efficientnet_lite0", text_encoder: str = "bundled:minilm",
                image_size: int | None = 128, device: str = "cpu", root=None, progress: bool = False,
                label_client=None, bad_items: str = "error", **options) -> M3GData:
    """Load the splits of `name` (a dermavqa-layout dataset), label the cases and cache the tower features.

    `dictionary` maps lower-case names/aliases to labels; None builds one from the training responses
    (`build_label_dictionary`), as for real DermaVQA. With `label_client` (an `llm.OpenAIClient`) the labels come
    from its chat model instead (the paper's GPT-4 Turbo step) and join the dictionary for query matching; a
    `text_encoder` "openai:MODEL" embeds the label names through its embeddings model (the paper's EmbeddingV3).
    `bad_items`: a case with a missing or unreadable image fails here, listing all of them ("error"), or is dropped
    and counted in `M3GData.skipped` ("skip"); `data.check.screen`.
    """
    if "train" not in splits:
        raise ParameterError(f"splits={splits!r} must include 'train' (the kNN gallery and the CLIP training set)")
    datasets, skipped = {}, {}
    for s in splits:
        opened = open_dataset(name, root=root, split=s, **options)
        datasets[s], kept = screen(opened, bad_items)
        if len(kept) < len(opened.records):
            skipped[s] = len(opened.records) - len(kept)
    dictionary = dictionary or build_label_dictionary(datasets["train"].column("references"))
    image_tower = build_image_encoder(image_encoder, device=device, image_size=image_size)
    out = {s: _split(s, d, dictionary, image_tower, progress, label_client) for s, d in datasets.items()}
    label_names = sorted({label for label in out["train"].labels if label})
    if not label_names:
        raise ParameterError(f"no training case of {name!r} names a label of the dictionary; pass another dictionary")
    if label_client is not None:
        dictionary = {**dictionary, **{label: label for split in out.values() for label in split.labels if label}}
    text_tower, label_features = label_text_tower(text_encoder, label_names, device, progress, label_client)
    return M3GData(out, label_names, label_features, image_tower, text_tower, dict(dictionary), skipped)


def label_text_tower(spec: str, label_names: list[str], device: str = "cpu", progress: bool = False,
                     client=None) -> tuple[object, torch.Tensor]:
    """(text tower, label features): a model spec through the factory, or "openai:MODEL" through `client`."""
    if not spec.startswith(OPENAI_PREFIX):
        tower = build_text_encoder(spec, device=device)
        return tower, text_tower_features(tower, label_names, progress=progress)
    model = spec.removeprefix(OPENAI_PREFIX)
    if client is None or client.embedding_model != model:
        raise ParameterError(f"text_encoder={spec!r} needs an OpenAI client whose embedding model is {model!r} "
                             "(m3g.label_client builds it from the parameters)")
    tower = EmbeddingTable(spec, label_names, client.embed(label_names))
    return tower, tower.table.clone()


def _split(name: str, dataset, dictionary: dict, image_tower, progress: bool, label_client=None) -> M3GSplit:
    """Frozen image features, owners and extracted labels (rules, or the LLM of `label_client`) of one split."""
    images = image_records(dataset)
    features = image_tower_features(image_tower, images, progress=progress)
    owner = np.array(images.column("case"), dtype=np.int64)
    references = dataset.column("references")
    labels = (extract_labels(references, dictionary) if label_client is None
              else llm_labels(label_client, references))
    return M3GSplit(name, dataset, features, owner, labels)


def truth_labels(split: M3GSplit) -> list[str] | None:
    """SynthDerm's true condition per case (truth.csv beside the split file), or None for real data."""
    path = Path(split.dataset.source).parent / "truth.csv"
    if not path.is_file():
        return None
    truth = pd.read_csv(path, keep_default_na=False).set_index("encounter_id")["condition"]
    return [str(truth.get(case_id, "")) for case_id in split.ids]


def label_extraction_table(data: M3GData, truth: dict) -> pd.DataFrame:
    """Per split: the share of cases whose extracted label is the true condition."""
    return pd.DataFrame({
        "split": list(data.splits),
        "extracted label = true condition": [round(accuracy(s.labels, truth[n]), 3) for n, s in data.splits.items()],
    })


def built_dictionary_accuracy(data: M3GData, truth: list[str]) -> tuple[int, float]:
    """A dictionary built from the training answers alone: (its phrases, share of train labels equal to the truth)."""
    built = build_label_dictionary(data.train.references)
    aliases = label_dictionary()
    labels = [aliases.get(label, label) for label in extract_labels(data.train.references, built)]
    return len(built), accuracy(labels, truth)


def choose_dictionary(label_source: str, dataset: str) -> dict | None:
    """The label dictionary: SynthDerm's names and aliases ("world") or None = built from training responses.

    "llm" labels the cases with an LLM (`label_client`); its dictionary (for query matching) is the built one.
    """
    if label_source not in LABEL_SOURCES:
        raise ParameterError(f"label_source={label_source!r}; use one of {LABEL_SOURCES}")
    if label_source in ("responses", "llm"):
        return None
    if dataset != "synth-derm":
        raise ParameterError(f"label_source='world' needs dataset='synth-derm' (got {dataset!r}); "
                             "use label_source='responses' for real DermaVQA")
    return label_dictionary()


def label_client(label_source: str, text_encoder: str, label_model: str = PAPER_CHAT_MODEL, concurrency: int = 4,
                 cache=None, **options):
    """The OpenAI client of the paper's label pipeline when label_source is "llm" or the text encoder is
    "openai:MODEL" (key from OPENAI_API_KEY; replies cached under the data root), else None."""
    if label_source not in LABEL_SOURCES:
        raise ParameterError(f"label_source={label_source!r}; use one of {LABEL_SOURCES}")
    if label_source != "llm" and not text_encoder.startswith(OPENAI_PREFIX):
        return None
    openai_text = text_encoder.startswith(OPENAI_PREFIX)
    embedding = text_encoder.removeprefix(OPENAI_PREFIX) if openai_text else PAPER_EMBEDDING_MODEL
    return OpenAIClient(cache or cache_dir("openai"), chat_model=label_model, embedding_model=embedding,
                        max_concurrency=concurrency, progress=False, **options)


def head(split: M3GSplit, n: int) -> M3GSplit:
    """The first `n` cases of a split (n <= 0 or n >= size: the whole split)."""
    if n <= 0 or n >= split.n_cases:
        return split
    dataset = copy.copy(split.dataset)
    dataset.records = split.dataset.records[:n]
    rows = split.owner < n
    return M3GSplit(split.name, dataset, split.image_features[torch.from_numpy(rows)], split.owner[rows],
                    split.labels[:n])


def take(split: M3GSplit, idx) -> M3GSplit:
    """The cases `idx` (in that order) of a split, their images and labels with them."""
    idx = [int(i) for i in idx]
    dataset = copy.copy(split.dataset)
    dataset.records = [split.dataset.records[i] for i in idx]
    rows = [np.flatnonzero(split.owner == i) for i in idx]
    owner = np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)]) if rows else np.zeros(0, dtype=int)
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    return M3GSplit(split.name, dataset, split.image_features[torch.from_numpy(flat)], owner,
                    [split.labels[i] for i in idx])
