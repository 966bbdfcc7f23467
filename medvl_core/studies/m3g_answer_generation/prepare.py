"""MEDIQA-M3G 2024 CLIP-kNN solution (WangLab): label-CLIP projections, kNN label vote, answers, deltaBLEU tables.

Pipeline (paper section "CLIP solution", with offline stand-ins):

1. a disease label per training case from its responses (`text.derm_labels.extract_label`; the paper used an LLM);
2. towers: every case image through the image tower, every training label text through the text tower
   (`bundled:minilm` in place of the paper's OpenAI embeddings), cached on disk (`models.cache`);
3. CLIP training on (image, label text) pairs with the shared `clip_loss` and training engine, Table 5's recipe:
   one linear projection per side (+ temperature), AdamW, MONAI's RandFlip / RandRotate / RandSpatialCrop /
   RandAdjustContrast (`data.monai_augment`); the image tower trained with the projections (`train_tower=True`, the
   paper) or frozen with augmented views cached through it (`aug_views`, the CPU demo); every image of a case is
   one training item (labelled with its case's label);
4. k nearest neighbours (k=5, cosine) of each query image in the training images ("image-image") or in the
   training items' label-text embeddings ("image-text"), optionally after PCA fitted on the training side;
   the votes of all images of a case are pooled (majority, ties -> the most similar neighbour);
5. post-processing of the label into the answer ("It is <label>.", query word-matching; `derm_labels.answer_text`)
   and deltaBLEU. The headline "dBLEU" is the official competition scorer on the submission these answers make
   (one language, the split's; `eval.m3g_scoring` has the scorer's rules); "dBLEU weighted" (competition reference
   weights, sacreBLEU 2.x rules) and "dBLEU unweighted" (plain sacreBLEU corpus BLEU) are labelled extras.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import cache_dir, seed_everything
from ..data import open_dataset
from ..data.base import RecordDataset
from ..data.check import screen
from ..data.images import load_image
from ..data.monai_augment import MonaiAugment, view_seed
from ..data.pairs import FeaturePairs
from ..errors import MedvlError, ParameterError
from ..eval.deltableu import delta_bleu
from ..eval.knn import cosine_topk
from ..llm.m3g_labels import llm_labels
from ..llm.openai_client import PAPER_CHAT_MODEL, PAPER_EMBEDDING_MODEL, OpenAIClient
from ..losses import ContrastiveObjective
from ..models.cache import image_tower_features, image_view_features, text_tower_features
from ..models.dual_encoder import DualEncoder
from ..models.embedding_table import EmbeddingTable
from ..models.encoders import build_image_encoder, build_text_encoder
from ..text.derm_labels import answer_text, build_label_dictionary, extract_labels
from ..train import TrainConfig, train
from ..worlds.synth_derm_conditions import label_dictionary

GALLERIES = ("image", "text")
HEADLINE = "dBLEU"  # the official scorer's deltaBLEU
EXTRA_SCORES = {"weighted": "dBLEU weighted", "unweighted": "dBLEU unweighted"}  # metric infix -> column
SCORE_COLUMNS = (HEADLINE, "BP", "ratio", "hyp_len", "ref_len", *EXTRA_SCORES.values())
POSTPROCESSING = {  # Table 4 arms: (template "It is <label>.", query word-matching)
    "label only": (False, False),
    "It is [label].": (True, False),
    "query matching": (False, True),
    "It is [label]. + query matching": (True, True),
}
POSTPROCESSING_METRICS = dict(zip(POSTPROCESSING, ("dbleu_post_label_only", "dbleu_post_it_is", "dbleu_post_query_match",
                                                   "dbleu_post_it_is_query_match")))
TRUE_CONDITION = "oracle: It is [true condition]."
RESPONSE_LABEL = "oracle: It is [label of the case's responses]."
CONSTANT = "constant: It is [most frequent training label]."
REFERENCE_METRICS = {TRUE_CONDITION: "dbleu_it_is_true_condition", RESPONSE_LABEL: "dbleu_it_is_label_oracle",
                     CONSTANT: "dbleu_constant_label"}
CLAUDE_METRICS = {"img 1-call": "dbleu_claude_img_1_call", "img 2-calls": "dbleu_claude_img_2_calls",
                  "img-then-text": "dbleu_claude_img_then_text", "img+text": "dbleu_claude_img_plus_text"}
CLAUDE_TABLE4_SCENARIO = "img 2-calls"  # the winning Claude solution (Table 4's "Claude Solution" row)
LENGTH_COLUMNS = {"BP": "bp", "ratio": "ratio", "hyp_len": "hyp_len", "ref_len": "ref_len"}  # column -> metric prefix
INFERENCE_VIEW_SEED = 7919  # offset of the seed of the one augmented view per image at inference (Table 3, row 1)
OPENAI_PREFIX = "openai:"  # text_encoder "openai:MODEL": label names embedded by the OpenAI embeddings API
NEXT_BEST_TEAM = 3.827  # Sec. 4: deltaBLEU of the next-best English submission in the competition


# ------------------------------------------------------------------ data

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


def prepare_m3g(name: str = "synth-derm", dictionary: dict | None = None, splits=("train", "valid", "test"),
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


def accuracy(predicted, truth) -> float | None:
    """Fraction of cases whose predicted label equals the truth (None without truth)."""
    if truth is None:
        return None
    return float(np.mean([p == t for p, t in zip(predicted, truth)]))


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


# ------------------------------------------------------------------ CLIP training

@dataclass
class ClipFit:
    """A trained label-CLIP model and how it was trained."""

    model: DualEncoder
    batch_size: int  # requested
    effective_batch_size: int  # capped by the number of training items
    n_items: int
    history: list = field(default_factory=list)
    steps: int = 0
    augment: MonaiAugment | None = None  # the training augmentation (None: none)
    trained_tower: bool = False  # image tower trained with the projections (else frozen, cached features)
    aug_views: int = 0  # cached augmented views per training image (frozen tower with augmentation)
    seed: int = 0
    features: dict = field(default_factory=dict, repr=False)  # (split, augmented) -> trained-tower features


class ViewFeaturePairs(torch.utils.data.Dataset):
    """Frozen-tower training pairs with augmentation: each epoch one of V cached augmented views per image."""

    def __init__(self, views: torch.Tensor, text_features: torch.Tensor, seed: int = 0):
        self.views, self.text_features, self.seed, self.epoch = views, text_features, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose views `__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.views)

    def view_of(self, index: int) -> int:
        """The view item `index` shows in this epoch, drawn from (seed, epoch, index)."""
        return int(np.random.default_rng([self.seed, self.epoch, int(index), 3]).integers(self.views.shape[1]))

    def __getitem__(self, index: int) -> dict:
        return {"image_features": self.views[index, self.view_of(index)], "text_features": self.text_features[index]}


class PixelLabelPairs(torch.utils.data.Dataset):
    """Pairs for training the image tower: an image, freshly augmented from (seed, epoch, index), and its label features."""

    def __init__(self, images: RecordDataset, text_features: torch.Tensor, preprocess, augment=None, seed: int = 0):
        self.images, self.text_features, self.preprocess = images, text_features, preprocess
        self.augment, self.seed, self.epoch = augment, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws `__getitem__` uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]["image"]
        if self.augment is not None:
            image = self.augment(image, view_seed(self.seed, self.epoch, index))
        return {"images": self.preprocess(image), "text_features": self.text_features[index]}


def make_augment(augmentations) -> MonaiAugment | None:
    """The MONAI augmentation named by the `augmentations` list (empty or None: no augmentation)."""
    return MonaiAugment(augmentations) if augmentations else None


def fit_label_clip(data: M3GData, batch_size: int, config: TrainConfig, embed_dim: int = 128, seed: int = 0,
                   projection_layers: int = 1, train_tower: bool = False, augment: MonaiAugment | None = None,
                   aug_views: int = 4) -> ClipFit:
    """Train label-CLIP with the CLIP loss on the training images: projections (+ the image tower when `train_tower`).

    With a frozen tower and `augment`, `aug_views` augmented views per image are cached through it and each epoch
    draws one; a trained tower sees a fresh view every epoch. The text tower stays frozen (the paper's label
    embeddings are fixed API outputs).
    """
    if projection_layers != 1:
        raise ParameterError(f"projection_layers={projection_layers}: DualEncoder has one linear projection per side "
                             "(Table 5: 1)")
    rows, label_index = data.training_items()
    if len(rows) < 2:
        raise ParameterError(f"only {len(rows)} labelled training images; CLIP training needs at least 2")
    seed_everything(seed)
    tower = copy.deepcopy(data.image_encoder) if train_tower else data.image_encoder
    model = DualEncoder(tower, data.text_encoder, embed_dim=embed_dim).set_trainable("all" if train_tower else "projections")
    model.text.requires_grad_(False)
    pairs = _training_pairs(data, rows, label_index, model, train_tower, augment, aug_views, seed)
    effective = min(int(batch_size), len(rows))
    result = train(model, pairs, ContrastiveObjective("clip"), replace(config, batch_size=effective, seed=seed))
    views = aug_views if augment is not None and not train_tower else 0
    return ClipFit(model.eval(), int(batch_size), effective, len(rows), result.history, result.steps, augment,
                   bool(train_tower), views, seed)


def _training_pairs(data: M3GData, rows, label_index, model, train_tower: bool, augment, aug_views: int, seed: int):
    """The training dataset: pixels (trained tower), cached augmented views, or cached plain features."""
    labels = data.label_features[label_index]
    if train_tower:
        return PixelLabelPairs(image_records(data.train.dataset, rows), labels, model.preprocess, augment, seed)
    if augment is not None:
        if aug_views < 1:
            raise ParameterError(f"aug_views={aug_views}: a frozen tower with augmentations needs >= 1 cached view")
        return ViewFeaturePairs(_train_views(data, augment, aug_views, seed)[rows], labels, seed)
    return FeaturePairs(data.train.image_features[rows], data.label_features, [[i] for i in label_index], None, seed)


def tower_features(fit: ClipFit | None, data: M3GData, split: str, augmented: bool = False, seed: int = 0) -> torch.Tensor:
    """Image-tower features of a split: cached frozen ones or the fit's trained tower; one augmented view each if asked."""
    target = data.split(split)
    if augmented and (fit is None or fit.augment is None):
        raise ParameterError("augmentation at inference needs a fit trained with augmentations (augmentations=[...])")
    if fit is not None and fit.trained_tower:
        key = (split, augmented)
        if key not in fit.features:
            fit.features[key] = _encode(fit.model.visual, image_records(target.dataset),
                                        fit.augment if augmented else None, seed + INFERENCE_VIEW_SEED)
        return fit.features[key]
    if not augmented:
        return target.image_features
    if split == "train" and fit.aug_views:  # the gallery at inference: the first cached training view of each image
        return _train_views(data, fit.augment, fit.aug_views, fit.seed)[:, 0]
    views, _ = image_view_features(data.image_encoder, image_records(target.dataset), fit.augment, 1,
                                   seed + INFERENCE_VIEW_SEED, progress=False)
    return views[:, 0]


def _train_views(data: M3GData, augment, n_views: int, seed: int) -> torch.Tensor:
    """(n train images, n_views, D) frozen-tower features of augmented views of every training image (cached)."""
    views, _ = image_view_features(data.image_encoder, image_records(data.train.dataset), augment, n_views, seed,
                                   progress=False)
    return views


@torch.no_grad()
def _encode(tower, images: RecordDataset, augment, seed: int, batch_size: int = 64) -> torch.Tensor:
    """Pooled features of every image through a (trained) tower in eval mode; augmented from (seed, index) if asked."""
    tower.eval()
    device, chunks = next(tower.parameters()).device, []
    for start in range(0, len(images), batch_size):
        pixels = []
        for i in range(start, min(start + batch_size, len(images))):
            image = images[i]["image"]
            pixels.append(tower.preprocess(augment(image, view_seed(seed, 0, i, 1)) if augment else image))
        chunks.append(tower(torch.stack(pixels).to(device)).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, tower.embed_dim)


# ------------------------------------------------------------------ kNN

@dataclass(frozen=True)
class KnnSetting:
    """Where neighbours come from ('image' or 'text'), PCA components (None = no PCA), k, and whether the image
    embeddings are made from augmented views (the competition run's mistake, Table 3 row 1)."""

    gallery: str = "image"
    pca: int | None = None
    k: int = 5
    augment: bool = False

    def __post_init__(self):
        if self.gallery not in GALLERIES:
            raise ParameterError(f"gallery={self.gallery!r}; use one of {GALLERIES}")
        if self.k < 1 or (self.pca is not None and self.pca < 1):
            raise ParameterError(f"k={self.k} and pca={self.pca} must be >= 1 (pca=None turns PCA off)")

    @property
    def name(self) -> str:
        return (f"image-{self.gallery}, k={self.k}" + (f", PCA {self.pca}" if self.pca else ", no PCA")
                + (", augmented at inference" if self.augment else ""))


def table3_settings(k: int = 5, pca: int = 16) -> list[KnnSetting]:
    """Table 3's five rows in the paper's order (augmented PCA image-image, then text/image x no PCA/PCA)."""
    return [KnnSetting("image", pca, k, augment=True), KnnSetting("text", None, k), KnnSetting("text", pca, k),
            KnnSetting("image", None, k), KnnSetting("image", pca, k)]


def table2_setting(k: int = 5, pca: int = 16) -> KnnSetting:
    """The retrieval Table 2 was scored with: PCA image-image (its batch-256 row equals Table 3's, 8.404)."""
    return KnnSetting("image", pca, k)


@torch.no_grad()
def image_embeddings(model: DualEncoder | None, features: torch.Tensor) -> np.ndarray:
    """Projected, normalised image embeddings of tower features (the features themselves when model is None)."""
    if model is None:
        return features.numpy()
    return model.project_image_features(features.to(_device(model))).cpu().numpy()


@torch.no_grad()
def label_embeddings(model: DualEncoder, data: M3GData) -> np.ndarray:
    """Projected, normalised embeddings of the training label texts."""
    return model.project_text_features(data.label_features.to(_device(model))).cpu().numpy()


def _device(model: DualEncoder) -> torch.device:
    """Where the model's projections live."""
    return model.image_projection.weight.device


def pca_reduce(fit_on: np.ndarray, *arrays: np.ndarray, n_components: int, seed: int = 0) -> list[np.ndarray]:
    """Fit PCA on `fit_on` (components capped by its rank) and project every array."""
    from sklearn.decomposition import PCA

    n = min(int(n_components), fit_on.shape[0] - 1, fit_on.shape[1])
    pca = PCA(n, random_state=seed).fit(fit_on)
    return [pca.transform(a) for a in arrays]


def case_vote(queries: np.ndarray, owner: np.ndarray, n_cases: int, gallery: np.ndarray, gallery_labels,
              k: int = 5, fallback: str = "") -> list[str]:
    """Per case, the majority label of the k nearest gallery items of all its images (ties -> most similar).

    A case without images gets `fallback`.
    """
    idx, sim = cosine_topk(queries, gallery, k)
    labels = np.asarray(gallery_labels)[idx]
    out = []
    for case in range(n_cases):
        rows = owner == case
        votes, sims = labels[rows].ravel(), sim[rows].ravel()
        if votes.size == 0:
            out.append(fallback)
            continue
        counts = Counter(votes.tolist())
        best = max(counts.values())
        out.append(str(max((v for v in counts if counts[v] == best), key=lambda v: sims[votes == v].max())))
    return out


def predict_labels(fit: ClipFit | None, data: M3GData, split: str, setting: KnnSetting, seed: int = 0) -> list[str]:
    """Predicted label per case of `split` (fit=None: kNN on frozen image features, image gallery only)."""
    model = None if fit is None else fit.model
    if model is None and setting.gallery == "text":
        raise ParameterError("image-text kNN needs a trained label-CLIP model (fit_label_clip)")
    rows, label_index = data.training_items()
    train_images = image_embeddings(model, tower_features(fit, data, "train", setting.augment, seed))[rows]
    gallery = train_images if setting.gallery == "image" else label_embeddings(model, data)[label_index]
    queries = image_embeddings(model, tower_features(fit, data, split, setting.augment, seed))
    if setting.pca:
        fit_on = train_images if setting.gallery == "image" else np.concatenate([train_images, gallery])
        queries, gallery = pca_reduce(fit_on, queries, gallery, n_components=setting.pca, seed=seed)
    target = data.split(split)
    names = np.asarray(data.label_names)[label_index]
    return case_vote(queries, target.owner, target.n_cases, gallery, names, setting.k, data.most_frequent_label())


# ------------------------------------------------------------------ answers and scores

def answers(labels, split: M3GSplit, dictionary: dict | None = None, template: bool = True,
            query_match: bool = False) -> list[str]:
    """Answer text per case from predicted labels (see `derm_labels.answer_text`)."""
    return [answer_text(label, query, dictionary, template, query_match) for label, query in zip(labels, split.queries)]


def split_language(split: M3GSplit) -> str:
    """The language of the split's queries and references (the submission's one content_<lang>)."""
    return getattr(split.dataset, "lang", "en") or "en"


def score(hypotheses, split: M3GSplit) -> dict:
    """Official deltaBLEU (headline) with its BP, ratio and lengths, plus weighted and unweighted deltaBLEU."""
    hypotheses, lang = list(hypotheses), split_language(split)
    tokenize = "zh" if lang == "zh" else "13a"
    official = delta_bleu(hypotheses, split.references, split.weights, mode="official", languages=(lang,),
                          tokenize=tokenize)
    weighted = delta_bleu(hypotheses, split.references, split.weights, mode="weighted", tokenize=tokenize)
    unweighted = delta_bleu(hypotheses, split.references, None, mode="weighted", tokenize=tokenize)
    return {HEADLINE: round(official.score, 2), "BP": round(official.bp, 3), "ratio": round(official.ratio, 3),
            "hyp_len": official.hyp_len, "ref_len": official.ref_len,
            EXTRA_SCORES["weighted"]: round(weighted.score, 2), EXTRA_SCORES["unweighted"]: round(unweighted.score, 2)}


def score_row(setting: str, hypotheses, split: M3GSplit, labels=None, truth=None, **extra) -> dict:
    """One table row: setting, split, extra columns, the deltaBLEU columns and label accuracy vs truth."""
    row = {"setting": setting, "split": split.name, **extra, **score(hypotheses, split)}
    if labels is not None and truth is not None:
        row["label accuracy"] = round(accuracy(labels, truth), 3)
    return row


def control_rows(setting: str, labels: dict, data: M3GData, truth: dict) -> list[dict]:
    """Score rows of a control arm from its predicted labels per split, answered as "It is [label]."."""
    return [score_row(setting, answers(labels[s], data.split(s)), data.split(s), labels[s], truth[s]) for s in labels]


# ------------------------------------------------------------------ the paper's tables

def batch_size_sweep(data: M3GData, batch_sizes, config: TrainConfig, setting: KnnSetting = KnnSetting(),
                     splits=("valid", "test"), embed_dim: int = 128, seed: int = 0, postprocess=(True, False),
                     **recipe) -> tuple[pd.DataFrame, dict]:
    """Table 2: one label-CLIP model per batch size (`recipe`: fit_label_clip's options), scored with `setting`.

    `postprocess` = (template, query matching) of the answers (the paper's Tables 2 and 3: both).
    """
    rows, fits = [], {}
    for size in batch_sizes:
        fits[size] = fit = fit_label_clip(data, size, config, embed_dim, seed, **recipe)
        for name in splits:
            labels = predict_labels(fit, data, name, setting, seed)
            rows.append(score_row(f"batch {size}", answers(labels, data.split(name), data.dictionary, *postprocess),
                                  data.split(name), labels, truth_labels(data.split(name)),
                                  **{"effective batch": fit.effective_batch_size, "steps": fit.steps}))
    return pd.DataFrame(rows), fits


def knn_table(data: M3GData, fit: ClipFit, settings, splits=("valid", "test"), seed: int = 0,
              postprocess=(True, False)) -> pd.DataFrame:
    """Table 3: kNN settings (image-image / image-text, with / without PCA, augmented or not) -> scored answers."""
    rows = []
    for setting in settings:
        for name in splits:
            labels = predict_labels(fit, data, name, setting, seed)
            rows.append(score_row(setting.name, answers(labels, data.split(name), data.dictionary, *postprocess),
                                  data.split(name), labels, truth_labels(data.split(name))))
    return pd.DataFrame(rows)


def postprocessing_table(data: M3GData, labels_by_split: dict, arms=tuple(POSTPROCESSING)) -> pd.DataFrame:
    """Table 4: the same predicted labels turned into answers by each post-processing arm."""
    rows = []
    for arm in arms:
        template, query_match = POSTPROCESSING[arm]
        for name, labels in labels_by_split.items():
            split = data.split(name)
            texts = answers(labels, split, data.dictionary, template, query_match)
            rows.append(score_row(arm, texts, split))
    return pd.DataFrame(rows)


def claude_postprocessing_table(data: M3GData, split: str, claude_answers: dict, max_cases: int = 0,
                                scenario: str = CLAUDE_TABLE4_SCENARIO) -> pd.DataFrame:
    """Table 4's Claude row: the scenario's diagnoses (its answers without "It is ... .") through each arm."""
    from ..llm.m3g import diagnosis_of

    if scenario not in claude_answers:
        return pd.DataFrame()
    target = head(data.split(split), max_cases)
    names = [diagnosis_of(answer) for answer in claude_answers[scenario]]
    return pd.DataFrame([score_row(arm, answers(names, target, data.dictionary, *POSTPROCESSING[arm]), target)
                         for arm in POSTPROCESSING])


def post_metric_keys(stem: str = "") -> dict[str, str]:
    """Table 4 arm -> metric key of one solution's row ('dbleu_<stem>post_<arm>'; stem '' = the batch-256 CLIP row)."""
    return {arm: key.replace("dbleu_", f"dbleu_{stem}", 1) for arm, key in POSTPROCESSING_METRICS.items()}


def knn_metric_keys(settings) -> dict[str, str]:
    """Table 3 setting name -> 'dbleu_image_<gallery>[_pca][_aug]'."""
    return {s.name: f"dbleu_image_{s.gallery}" + ("_pca" if s.pca else "") + ("_aug" if s.augment else "")
            for s in settings}


def length_metrics(table: pd.DataFrame, split: str, keys: dict[str, str]) -> dict[str, float]:
    """BP, ratio, hyp_len and ref_len of the rows named in `keys` (setting -> 'dbleu_<stem>') as '<column>_<stem>'."""
    out = {}
    if table.empty:
        return out
    for column, prefix in LENGTH_COLUMNS.items():
        values = dbleu_by_setting(table, split, column)
        cast = int if prefix.endswith("_len") else float
        out.update({f"{prefix}_{key[len('dbleu_'):]}": cast(values[setting]) for setting, key in keys.items()
                    if setting in values})
    return out


# ------------------------------------------------------------------ Fig. S2 and the two clusters

def label_pca(data: M3GData, n_components: int = 2, seed: int = 0) -> pd.DataFrame:
    """Fig. S2: PCA of the training label texts' tower embeddings (label, pc1, pc2)."""
    (points,) = pca_reduce(data.label_features.numpy(), data.label_features.numpy(), n_components=n_components, seed=seed)
    return pd.DataFrame({"label": data.label_names, "pc1": points[:, 0], "pc2": points[:, 1]})


def similar_pairs(labels) -> list[tuple[str, str]]:
    """Pairs of SynthDerm conditions that the world declares look-alikes ("confusers"), among `labels`."""
    from ..worlds.synth_derm_conditions import BY_NAME

    present = set(labels)
    return sorted({tuple(sorted((a, b))) for a in present if a in BY_NAME for b in BY_NAME[a].confusers if b in present})


def closeness(frame: pd.DataFrame, pairs) -> dict:
    """Mean distance in the PCA plane between the given pairs vs between all other pairs, and its ratio."""
    names = list(frame["label"])
    points = frame[["pc1", "pc2"]].to_numpy()
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    index = {n: i for i, n in enumerate(names)}
    chosen = {(index[a], index[b]) for a, b in pairs} | {(index[b], index[a]) for a, b in pairs}
    mask = ~np.eye(len(names), dtype=bool)
    similar = [dist[i, j] for i, j in chosen]
    others = [dist[i, j] for i, j in zip(*np.nonzero(mask)) if (i, j) not in chosen]
    if not similar or not others:
        return {"n_pairs": len(pairs), "similar": float("nan"), "others": float("nan"), "ratio": float("nan")}
    return {"n_pairs": len(pairs), "similar": round(float(np.mean(similar)), 4), "others": round(float(np.mean(others)), 4),
            "ratio": round(float(np.mean(similar) / np.mean(others)), 3)}


SEPARATE_SILHOUETTE = 0.5  # silhouette of the image / label-text split above which we call the clouds separate


def cluster_verdict(stats: dict) -> str:
    """'separate clusters' or 'overlapping clouds' from `modality_pca`'s silhouette in the PCA plane."""
    separate = stats["silhouette_pca"] > SEPARATE_SILHOUETTE
    return f"{'separate clusters' if separate else 'overlapping clouds'} (silhouette > {SEPARATE_SILHOUETTE}: separate)"


def modality_pca(fit: ClipFit, data: M3GData, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Training image and label-text embeddings of a fit in one PCA plane, and how far apart the two clouds are.

    Stats: silhouette of the image/text split (in the plane and in the joint space, cosine), centroid distance in
    the plane over the mean within-cloud distance to its centroid (> 1: separate clusters).
    """
    from sklearn.metrics import silhouette_score

    rows, label_index = data.training_items()
    images = image_embeddings(fit.model, tower_features(fit, data, "train", False, seed))[rows]
    texts = label_embeddings(fit.model, data)
    joint = np.concatenate([images, texts])
    kind = np.array(["image"] * len(images) + ["label text"] * len(texts))
    (plane,) = pca_reduce(joint, joint, n_components=2, seed=seed)
    centres = {k: plane[kind == k].mean(axis=0) for k in ("image", "label text")}
    spread = np.mean([np.linalg.norm(plane[kind == k] - c, axis=1).mean() for k, c in centres.items()])
    stats = {"silhouette_pca": round(float(silhouette_score(plane, kind)), 3),
             "silhouette_joint_cosine": round(float(silhouette_score(joint, kind, metric="cosine")), 3),
             "centroid_distance_over_spread": round(float(np.linalg.norm(centres["image"] - centres["label text"])
                                                          / spread), 3)}
    frame = pd.DataFrame({"kind": kind, "pc1": plane[:, 0], "pc2": plane[:, 1],
                          "label": list(np.asarray(data.label_names)[label_index]) + list(data.label_names)})
    return frame, stats


def reference_answers(data: M3GData, split: str) -> dict[str, list[str]]:
    """Scale markers: the true condition (SynthDerm only), the label of the case's own responses, a constant."""
    target = data.split(split)
    out = {}
    truth = truth_labels(target)
    if truth is not None:
        out[TRUE_CONDITION] = [answer_text(t) for t in truth]
    out[RESPONSE_LABEL] = [answer_text(label or data.most_frequent_label()) for label in target.labels]
    out[CONSTANT] = [answer_text(data.most_frequent_label())] * target.n_cases
    return out


def reference_table(data: M3GData, splits=("valid", "test")) -> pd.DataFrame:
    """deltaBLEU rows of the scale markers on each split."""
    return pd.DataFrame([score_row(name, texts, data.split(split))
                         for split in splits for name, texts in reference_answers(data, split).items()])


# ------------------------------------------------------------------ notebook support

LABEL_SOURCES = ("world", "responses", "llm")


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
    from ..worlds.synth_derm_conditions import label_dictionary

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


def claude_cases(data: M3GData, split: str, max_cases: int = 0) -> tuple[M3GSplit, list]:
    """The split's first `max_cases` cases (0: all) and their llm.M3GCase (images by path, query text)."""
    from ..llm import case_from_item

    target = head(data.split(split), max_cases)
    return target, [case_from_item(record) for record in target.dataset.records]


def claude_table(client, data: M3GData, split: str, scenarios=None, max_cases: int = 0) -> tuple[pd.DataFrame, dict]:
    """Table 1: the Claude pipeline's scenarios (medvl_core.llm, Appendix A prompts) scored on `split`; (rows, answers)."""
    from ..llm import SCENARIOS, run_scenario

    target, cases = claude_cases(data, split, max_cases)
    rows, out = [], {}
    for scenario in scenarios or SCENARIOS:
        traces = run_scenario(client, cases, scenario)
        out[scenario] = [trace.answer for trace in traces]
        fallbacks = sum(trace.parsed_by.startswith("fallback") for trace in traces)
        rows.append(score_row(scenario, out[scenario], target, model=client.model, **{"parse fallbacks": fallbacks}))
    return pd.DataFrame(rows), out


def sdk_token_counter(model: str, count_tokens: bool):
    """A ClaudeClient for the SDK's (free) token counting when asked for and `model` is served; else None (estimates)."""
    from ..llm import ClaudeClient, api_key_available
    from ..llm.client import API_KEY_ENV, retired_on

    if not count_tokens or retired_on(model):
        return None
    if not api_key_available():
        raise ParameterError(f"claude_count_tokens=True asks the Anthropic API to count tokens and needs {API_KEY_ENV} "
                             "in the environment; export it, or keep claude_count_tokens=False (offline estimates)")
    return ClaudeClient(model, cache_dir("claude"), progress=False, timeout=20.0)


def claude_arm(data: M3GData, split: str, model: str, claude_run: bool, *, max_cases: int = 0, concurrency: int = 4,
               count_tokens: bool = False, show=None) -> tuple[pd.DataFrame, dict, str, object]:
    """Table 1's Claude arm: the dry run unless `claude_run`; (rows, answers, outcome, plan or usage).

    The outcome is "dry run", "ran" or "failed": a real run that fails (API errors after retries) fails alone, so
    Tables 2-4 still run; the returned object is then the error message.
    """
    from ..llm import ClaudeClient

    if not claude_run:
        counter = sdk_token_counter(model, count_tokens)
        return pd.DataFrame(), {}, "dry run", claude_dry_run(data, split, model, max_cases=max_cases, counter=counter,
                                                             show=show)
    client = ClaudeClient(model, cache_dir("claude"), max_concurrency=concurrency, progress=False)
    try:
        table, answers = claude_table(client, data, split, max_cases=max_cases)
    except MedvlError as exc:
        return pd.DataFrame(), {}, "failed", f"The Claude arm failed, alone (Tables 2-4 below do not need it): {exc}"
    return table, answers, "ran", client.usage().as_dict()


def claude_dry_run(data: M3GData, split: str, model: str, scenarios=None, max_cases: int = 0, counter=None,
                   show=None):
    """Table 1 before any call: the first case's requests, and the calls, input tokens and cost on `split` (llm.DryRun).

    `show` names the scenarios whose requests are kept for printing (None: all); every scenario is priced.
    """
    from ..llm import dry_run

    _, cases = claude_cases(data, split, max_cases)
    plan = dry_run(cases, model, scenarios, split=split, counter=counter)
    if show is None:
        return plan
    unknown = [name for name in show if name not in plan.requests]
    if unknown:
        raise ParameterError(f"claude_shown_requests names {unknown}; use scenarios of {list(plan.requests)}")
    return replace(plan, requests={name: plan.requests[name] for name in show})


def dbleu_by_setting(table: pd.DataFrame, split: str, column: str = HEADLINE) -> dict[str, float]:
    """setting -> `column` (default the official dBLEU) on `split` from a table of score rows."""
    rows = table[table["split"] == split]
    return dict(zip(rows["setting"], rows[column].astype(float)))


def dbleu_metrics(table: pd.DataFrame, split: str, keys: dict[str, str]) -> dict[str, float]:
    """Metrics of the rows named in `keys` (setting -> 'dbleu_<stem>'): official, 'dbleu_weighted_<stem>', ...unweighted."""
    out = {}
    if table.empty:
        return out
    for column, infix in [(HEADLINE, ""), *((c, f"{name}_") for name, c in EXTRA_SCORES.items())]:
        values = dbleu_by_setting(table, split, column)
        out.update({_metric_key(key, infix): values[setting] for setting, key in keys.items() if setting in values})
    return out


def _metric_key(key: str, infix: str) -> str:
    """'dbleu_<stem>' with the extra's infix after 'dbleu_' ('dbleu_weighted_<stem>')."""
    if not key.startswith("dbleu_"):
        raise ParameterError(f"metric key {key!r} must start with 'dbleu_'")
    return "dbleu_" + infix + key[len("dbleu_"):]


def best_row(table: pd.DataFrame, split: str = "valid") -> str:
    """The setting with the highest dBLEU on `split` (ties -> first)."""
    scores = dbleu_by_setting(table, split)
    if not scores:
        raise ParameterError(f"no rows for split {split!r}; score it first (eval_splits)")
    return max(scores, key=scores.get)


def example_table(split: M3GSplit, labels, hypotheses, n: int = 4, width: int = 90) -> pd.DataFrame:
    """The first `n` cases: query, predicted label, answer, truth (if known) and the first two references."""
    truth = truth_labels(split) or [""] * split.n_cases
    return pd.DataFrame([{"case": split.ids[i], "query": _short(split.queries[i].replace("\n", " / "), width),
                          "predicted": labels[i], "truth": truth[i], "answer": hypotheses[i],
                          "references": _short(" | ".join(split.references[i][:2]), width)}
                         for i in range(min(n, split.n_cases))])


def _short(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 3] + "..."


# ------------------------------------------------------------------ Table 4 figure and the claims

TABLE4_COLUMNS = {"Word Matching": "query matching", "Sentence Structure": "It is [label].",
                  "Both": "It is [label]. + query matching"}  # paper column -> our post-processing arm
TABLE4_ROWS = {"Claude": "claude_", "CLIP competition": "competition_", "CLIP batch 256": ""}  # row -> metric stem


def table4_panels(metrics: dict, dataset: str, split: str = "test") -> tuple[dict, dict]:
    """Bars of the paper's Table 4 and ours ({panel: {row: {column: dBLEU}}}) and each panel's trivial reference."""
    from ..papers import published

    table = published("m3g_answer_generation").tables["table4"]
    paper = {row.label: {c: row.cells[c].value for c in TABLE4_COLUMNS if c in row.cells} for row in table.rows}
    ours = {}
    for row, stem in TABLE4_ROWS.items():
        keys = post_metric_keys(stem)
        values = {c: metrics[keys[arm]] for c, arm in TABLE4_COLUMNS.items() if keys[arm] in metrics}
        if values:
            ours[row] = values
    panels = {"paper (DermaVQA test, leaderboard)": paper, f"this run ({dataset} {split}; synthetic)": ours}
    trivial = {"paper (DermaVQA test, leaderboard)": {"next-best team": NEXT_BEST_TEAM},
               f"this run ({dataset} {split}; synthetic)": {"constant label": metrics.get("dbleu_constant_label", np.nan)}}
    return panels, trivial


def _claim(claim: str, paper: str, ours: str | None, agrees: bool | None) -> dict:
    """One row of the claims table ('—' where this run cannot test the claim)."""
    return {"claim": claim, "paper": paper, "this run": ours if ours is not None else "—",
            "agrees": "—" if agrees is None else ("yes" if agrees else "no")}


def _pair(metrics: dict, a: str, b: str) -> tuple[str | None, bool | None]:
    """'a vs b' text and whether metrics[a] > metrics[b] (None, None when either is missing)."""
    if a not in metrics or b not in metrics:
        return None, None
    return f"{metrics[a]:.2f} vs {metrics[b]:.2f}", bool(metrics[a] > metrics[b])


def claims_table(metrics: dict) -> pd.DataFrame:
    """The paper's claims, each with the paper's numbers, this run's and whether they agree."""
    m = metrics
    rows = [_claim("2 Claude calls beat 1 (Table 1)", "10.415 vs 7.650", *_pair(m, "dbleu_claude_img_2_calls",
                                                                                  "dbleu_claude_img_1_call")),
            _claim("Claude: images alone beat adding the query (Table 1)", "10.415 vs 8.775 / 8.803",
                   *_best_of(m, "dbleu_claude_img_2_calls", ["dbleu_claude_img_then_text", "dbleu_claude_img_plus_text"])),
            _claim("batch 256 is the best batch size (Table 2)", "8.404 vs 7.848 / 8.187",
                   *_best_of(m, "dbleu_batch_256", ["dbleu_batch_128", "dbleu_batch_512"])),
            _claim("image-image beats image-text, no PCA (Table 3)", "10.119 vs 9.262",
                   *_pair(m, "dbleu_image_image", "dbleu_image_text")),
            _claim("image-image beats image-text, PCA (Table 3)", "8.404 vs 6.279",
                   *_pair(m, "dbleu_image_image_pca", "dbleu_image_text_pca")),
            _claim("PCA space hurts image-image retrieval (Table 3)", "10.119 vs 8.404",
                   *_pair(m, "dbleu_image_image", "dbleu_image_image_pca")),
            _claim("augmentation left on at inference did not help: below the corrected best (Table 3)", "8.744 vs 10.119",
                   *_pair(m, "dbleu_image_image", "dbleu_image_image_pca_aug")),
            _claim("same PCA image-image setting: augmented at inference above not augmented (the paper's own numbers; "
                   "they contradict its 'did not lead to better performance')", "8.744 vs 8.404",
                   *_pair(m, "dbleu_image_image_pca_aug", "dbleu_image_image_pca")),
            _claim("both post-processing steps beat the template alone, CLIP batch 256 (Table 4)", "10.119 vs 5.092",
                   *_pair(m, "dbleu_post_it_is_query_match", "dbleu_post_it_is")),
            _claim("the template beats word matching alone, CLIP batch 256 (Table 4)", "5.092 vs 3.334",
                   *_pair(m, "dbleu_post_it_is", "dbleu_post_query_match")),
            _claim("the best CLIP answer beats a trivial one (paper: next-best team 3.827; ours: one constant label)",
                   "10.119 vs 3.827", *_pair(m, "dbleu_clip_best", "dbleu_constant_label")),
            _claim("Fig. S2: similar conditions lie close (ours: look-alike pairs / other pairs, < 1)", "shown, not measured",
                   *_below(m, "label_pca_similar_over_other_distance", 1.0)),
            _claim(f"image and text embeddings form separate clusters in PCA (ours: silhouette > {SEPARATE_SILHOUETTE})",
                   "stated, not measured", *_above(m, "modality_silhouette_pca", SEPARATE_SILHOUETTE))]
    return pd.DataFrame(rows)


def _best_of(metrics: dict, a: str, others) -> tuple[str | None, bool | None]:
    """'a vs b / c' and whether metrics[a] beats every other (None, None when any is missing)."""
    if any(key not in metrics for key in (a, *others)):
        return None, None
    return f"{metrics[a]:.2f} vs " + " / ".join(f"{metrics[o]:.2f}" for o in others), \
        bool(all(metrics[a] > metrics[o] for o in others))


def _below(metrics: dict, key: str, bound: float) -> tuple[str | None, bool | None]:
    """Value text and whether metrics[key] < bound."""
    value = metrics.get(key)
    return (None, None) if value is None or not np.isfinite(value) else (f"{value:.2f}", bool(value < bound))


def _above(metrics: dict, key: str, bound: float) -> tuple[str | None, bool | None]:
    """Value text and whether metrics[key] > bound."""
    value = metrics.get(key)
    return (None, None) if value is None or not np.isfinite(value) else (f"{value:.2f}", bool(value > bound))
