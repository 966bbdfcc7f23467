"""Image-report pairs for contrastive training: per-epoch sentence sampling, augmentation, batch collation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ..errors import DataFormatError, ParameterError
from ..text.sentences import sample_sentences, split_sentences
from .transforms import ShrinkTo, paper_augmentation, two_views


class ImageTextPairs(Dataset):
    """Wrap a dataset with `image` (PIL) and `text` items -> dict(image tensor, text, id, index[, views]).

    Each epoch (`set_epoch`) draws `sentences_per_report` random sentences of every report (None = the full text)
    and a fresh augmentation, both deterministic from (seed, epoch, index). `slip=True` adds "views": two more
    independent augmentations (`augment`, or `paper_augmentation()` when None) as a (2, 3, H, W) tensor.
    Images are first shrunk to the preprocess's resize size (cheap augmentation); `cache_images=True` keeps those
    decoded, shrunk images and the texts in memory (small datasets; in the main process only: DataLoader workers,
    which live across epochs, would each hold a copy of the whole set).
    The training engine's loader sets the epoch in every worker copy (`train.loader`), persistent workers included.
    """

    def __init__(
        self,
        dataset,
        preprocess,
        tokenizer=None,
        sentences_per_report: int | None = 3,
        augment=None,
        seed: int = 0,
        slip: bool = False,
        cache_images: bool = False,
        max_length: int = 128,
    ):
        if sentences_per_report is not None and (
            isinstance(sentences_per_report, bool)
            or not isinstance(sentences_per_report, int | np.integer)
            or sentences_per_report < 1
        ):
            raise ParameterError(f"sentences_per_report={sentences_per_report!r}; use a positive integer or None")
        self.dataset, self.preprocess, self.tokenizer = dataset, preprocess, tokenizer
        self.sentences_per_report, self.augment, self.seed = sentences_per_report, augment, int(seed)
        self.slip, self.cache_images, self.max_length = bool(slip), bool(cache_images), int(max_length)
        self.views = two_views(augment or paper_augmentation()) if slip else None
        self._shrink = ShrinkTo(_resize_side(preprocess)) if _resize_side(preprocess) else None
        self._cache: dict[int, tuple] = {}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose sentences and augmentations `__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def collate(self):
        """`collate_pairs(tokenizer, max_length)` for this dataset's tokenizer (DataLoader's collate_fn)."""
        if self.tokenizer is None:
            raise ParameterError("ImageTextPairs(tokenizer=None) has no collate; pass tokenizer=model.tokenize")
        return collate_pairs(self.tokenizer, self.max_length)

    def _source(self, index: int) -> tuple:
        """(id, PIL image, full text, sentences) of one source item, from the cache when enabled."""
        if index in self._cache:
            return self._cache[index]
        item = self.dataset[index]
        image, text, item_id = item.get("image"), item.get("text"), item.get("id", index)
        if isinstance(image, list | tuple):  # multi-image cases: the first image
            image = image[0] if image else None
        if image is None:
            raise DataFormatError(f"item {item_id!r} has no image; open the dataset with images enabled")
        sentences = split_sentences(text) if isinstance(text, str) else []
        if not sentences:
            raise DataFormatError(
                f"item {item_id!r} has an empty report (no Findings/Impression text); filter such items out first"
            )
        source = (item_id, self._shrink(image) if self._shrink else image, text, sentences)
        if self.cache_images and get_worker_info() is None:
            self._cache[index] = source
        return source

    def text_for(self, index: int, epoch: int | None = None, source: tuple | None = None) -> str:
        """The text item `index` yields in `epoch` (default: the current epoch); `source`: its `_source` if read."""
        _, _, text, sentences = source or self._source(index)
        if self.sentences_per_report is None:
            return text
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index), 0])
        return " ".join(sample_sentences(sentences, self.sentences_per_report, rng))

    def __getitem__(self, index: int) -> dict:
        source = self._source(index)  # read once per item: the text draw reuses it
        item_id, image = source[0], source[1]
        out = {"id": item_id, "index": int(index), "text": self.text_for(index, source=source)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(pair_seed(self.seed, self.epoch, index))
            out["image"] = self.preprocess(self.augment(image) if self.augment else image)
            if self.views is not None:
                augment = self.views.augment
                if hasattr(augment, "with_params"):  # views that say how they were made (UniCLIP)
                    made = [augment.with_params(image) for _ in range(2)]
                    out["views"] = torch.stack([self.preprocess(view) for view, _ in made])
                    out["view_params"] = torch.stack([params for _, params in made])
                else:
                    out["views"] = torch.stack([self.preprocess(view) for view in self.views(image)])
        return out


class PairCollator:
    """Batch ImageTextPairs items: stacked images (and views), texts tokenised once per batch."""

    def __init__(self, tokenizer, max_length: int = 128):
        self.tokenizer, self.max_length = tokenizer, int(max_length)
        owner = getattr(tokenizer, "__self__", None)  # a bound TextEncoder/DualEncoder.tokenize
        limit = getattr(owner, "max_length", None)
        if isinstance(limit, int) and limit > 0:
            self.max_length = min(self.max_length, limit)

    def __call__(self, items: list[dict]) -> dict:
        tokens = self.tokenizer([item["text"] for item in items], max_length=self.max_length)
        batch = {
            "images": torch.stack([item["image"] for item in items]),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
        }
        for key in ("views", "view_params"):
            if key in items[0]:
                batch[key] = torch.stack([item[key] for item in items], dim=1)
        return batch


def collate_pairs(tokenizer, max_length: int = 128) -> PairCollator:
    """A collate_fn -> {"images" (B,3,H,W), "input_ids", "attention_mask"[, "views" (2,B,3,H,W)]}.

    `tokenizer(texts, max_length=...)` returns dict(input_ids, attention_mask), e.g. `model.tokenize`.
    """
    return PairCollator(tokenizer, max_length)


def pair_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit torch seed derived from (seed, epoch, index)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(index), 1]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def _resize_side(preprocess) -> int | None:
    """The shorter-side size of the first Resize inside a (wrapped) torchvision preprocess, if any."""
    from torchvision import transforms as T

    seen, todo = set(), [preprocess]
    while todo:
        t = todo.pop(0)
        if id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, T.Resize):
            size = t.size
            size = size[0] if isinstance(size, list | tuple) and size else size
            return int(size) if isinstance(size, int) else None
        todo += list(getattr(t, "transforms", []) or [])
        if getattr(t, "transform", None) is not None:
            todo.append(t.transform)
    return None


class FeaturePairs(Dataset):
    """Pairs of cached frozen-tower features: an image's features and the mean of this epoch's sentence features.

    `owners[i]` holds the indices (into `sentence_features`) of report i's sentences; each epoch
    `sentences_per_report` of them are drawn from (seed, epoch, index) as in `ImageTextPairs` (None = all).
    The text side is the mean of the drawn sentences' embeddings: the frozen-tower stand-in for encoding
    their concatenation, which lets a CPU demo run the method on cached features.
    """

    def __init__(self, image_features: torch.Tensor, sentence_features: torch.Tensor, owners,
                 sentences_per_report: int | None = 3, seed: int = 0):
        if len(owners) != len(image_features):
            raise ParameterError(f"{len(owners)} reports for {len(image_features)} images; pass one owner list per image")
        if any(len(o) == 0 for o in owners):
            raise DataFormatError("a report has no sentences; drop empty reports before building FeaturePairs")
        self.image_features, self.sentence_features = image_features, sentence_features
        self.owners = [np.asarray(o, dtype=np.int64) for o in owners]
        self.sentences_per_report, self.seed, self.epoch = sentences_per_report, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose sentence draw `__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.owners)

    def sentences_for(self, index: int, epoch: int | None = None) -> np.ndarray:
        """Indices of the sentences report `index` contributes in `epoch`."""
        owned = self.owners[index]
        if self.sentences_per_report is None or len(owned) <= self.sentences_per_report:
            return owned
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index), 0])
        return np.sort(rng.choice(owned, size=self.sentences_per_report, replace=False))

    def __getitem__(self, index: int) -> dict:
        chosen = torch.from_numpy(self.sentences_for(index))
        return {"image_features": self.image_features[index],
                "text_features": self.sentence_features[chosen].mean(dim=0)}


def epoch_text(text: str, sentences_per_report: int | None, seed: int, epoch: int, index: int) -> str:
    """What report `index` contributes in `epoch`: `sentences_per_report` sentences drawn from (seed, epoch, index)
    and joined into one text (Jang et al.'s random sentence sampling; None = the whole report), as `ImageTextPairs`."""
    if sentences_per_report is None:
        return text
    rng = np.random.default_rng([int(seed), int(epoch), int(index), 0])
    return " ".join(sample_sentences(split_sentences(text), sentences_per_report, rng))


class CachedPairs(Dataset):
    """Frozen-tower pairs for a CPU demo: an image's cached pooled features, optional cached augmented views
    (`view_features` (N, V, D) with `view_params` (N, V, P)), and the features of this epoch's texts from
    `text_features(epoch)` -> (N, D) (e.g. `EpochTextFeatures`: the sampled sentences of each report joined and
    encoded by the frozen text tower, as the paper feeds them to its text encoder)."""

    def __init__(self, image_features: torch.Tensor, text_features, view_features: torch.Tensor | None = None,
                 view_params: torch.Tensor | None = None):
        if view_features is not None and (len(view_features) != len(image_features) or view_params is None
                                          or view_params.shape[:2] != view_features.shape[:2]):
            raise ParameterError("view_features (N, V, D) need view_params (N, V, P) for the same N images and V views")
        self.image_features, self.text_features = image_features, text_features
        self.view_features, self.view_params = view_features, view_params
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose texts `__getitem__` returns (idempotent)."""
        self.epoch = int(epoch)
        self._texts = self.text_features(self.epoch)
        if len(self._texts) != len(self.image_features):
            raise ParameterError(f"text_features({epoch}) gave {len(self._texts)} rows for {len(self.image_features)} images")

    def __len__(self) -> int:
        return len(self.image_features)

    def __getitem__(self, index: int) -> dict:
        item = {"image_features": self.image_features[index], "text_features": self._texts[index]}
        if self.view_features is not None:
            item["view_features"], item["view_params"] = self.view_features[index], self.view_params[index]
        return item


def sentence_index(reports) -> tuple[list[str], list[list[int]]]:
    """Unique sentences over all reports and, per report, the indices of its sentences (split once)."""
    position: dict[str, int] = {}
    owners = []
    for report in reports:
        owners.append([position.setdefault(s, len(position)) for s in dict.fromkeys(split_sentences(report))])
    return list(position), owners
