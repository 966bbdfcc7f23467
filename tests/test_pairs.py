"""Image-text pairs: per-epoch sentence sampling, deterministic augmentation, caching, collation, SLIP views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from medvl_core.data.pairs import ImageTextPairs, collate_pairs
from medvl_core.data.transforms import AUG_PARAMS, ShrinkTo, paper_augmentation, param_vector, two_views
from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.text.sentences import split_sentences

SENTENCES = [
    "The heart is normal in size.", "There is a small left pleural effusion.", "No pneumothorax.",
    "Mild basilar atelectasis.", "Degenerative changes of the spine.", "No acute osseous abnormality.",
]  # fmt: skip


class Reports(Dataset):
    """Items like open_dataset's: id, a PIL grayscale image, a multi-sentence report; counts decodes."""

    def __init__(self, n=6, texts=None):
        self.texts = texts or [" ".join(SENTENCES[i % 6 :] + SENTENCES[: i % 6]) for i in range(n)]
        self.calls = 0

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        self.calls += 1
        image = Image.linear_gradient("L").resize((96, 80)).rotate(10 * i)
        return {"id": f"s{i}", "image": image, "text": self.texts[i], "labels": [1.0]}


@pytest.fixture(scope="module")
def preprocess():
    return build_image_encoder("tiny:cnn-32", image_size=32).preprocess


@pytest.fixture(scope="module")
def tokenizer():
    return build_text_encoder("tiny:text-32").tokenize


def test_sentences_change_with_epoch_and_reproduce_for_seed_and_epoch(preprocess):
    pairs = ImageTextPairs(Reports(), preprocess, sentences_per_report=3, seed=7)
    epoch0 = [pairs[i]["text"] for i in range(len(pairs))]
    pairs.set_epoch(1)
    epoch1 = [pairs[i]["text"] for i in range(len(pairs))]
    assert epoch0 != epoch1
    for i, text in enumerate(epoch0):
        sentences = split_sentences(text)
        report = split_sentences(Reports().texts[i])
        assert len(sentences) == 3 and sentences == [s for s in report if s in sentences]  # report order kept
    again = ImageTextPairs(Reports(), preprocess, sentences_per_report=3, seed=7)
    assert [again[i]["text"] for i in range(6)] == epoch0
    again.set_epoch(1)
    assert [again[i]["text"] for i in range(6)] == epoch1
    assert [again.text_for(i, epoch=0) for i in range(6)] == epoch0
    other_seed = ImageTextPairs(Reports(), preprocess, sentences_per_report=3, seed=8)
    assert [other_seed[i]["text"] for i in range(6)] != epoch0
    full = ImageTextPairs(Reports(), preprocess, sentences_per_report=None)
    assert full[2]["text"] == Reports().texts[2]


def test_augmentation_deterministic_per_epoch_and_cache_equivalent(preprocess):
    source = Reports()
    pairs = ImageTextPairs(source, preprocess, augment=paper_augmentation(), cache_images=True, seed=1)
    first = pairs[3]
    assert first["image"].shape == (3, 32, 32) and first["id"] == "s3" and first["index"] == 3
    assert torch.equal(pairs[3]["image"], first["image"])
    pairs.set_epoch(1)
    assert not torch.equal(pairs[3]["image"], first["image"])
    assert source.calls == 1  # decoded once, then served from the cache
    uncached = ImageTextPairs(Reports(), preprocess, augment=paper_augmentation(), seed=1)
    assert torch.equal(uncached[3]["image"], first["image"])
    plain = ImageTextPairs(Reports(), preprocess, augment=None)
    assert torch.equal(plain[3]["image"], preprocess(Reports()[3]["image"]))
    state = torch.get_rng_state()
    pairs[0]
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is left alone


def test_collate_shapes_and_slip_views(preprocess, tokenizer):
    pairs = ImageTextPairs(Reports(), preprocess, tokenizer=tokenizer, slip=True, seed=0)
    item = pairs[0]
    assert item["views"].shape == (2, 3, 32, 32)
    assert not torch.equal(item["views"][0], item["views"][1])
    loader = DataLoader(pairs, batch_size=4, collate_fn=pairs.collate)
    batch = next(iter(loader))
    assert set(batch) == {"images", "input_ids", "attention_mask", "views", "view_params"}
    assert batch["images"].shape == (4, 3, 32, 32) and batch["views"].shape == (2, 4, 3, 32, 32)
    assert batch["view_params"].shape == (2, 4, 5) and not torch.equal(batch["view_params"][0], batch["view_params"][1])
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["input_ids"].shape[0] == 4
    torch.testing.assert_close(batch["views"][:, 0], item["views"])
    no_views = [{k: v for k, v in pairs[i].items() if k not in ("views", "view_params")} for i in range(3)]
    plain = collate_pairs(tokenizer, max_length=8)(no_views)
    assert set(plain) == {"images", "input_ids", "attention_mask"} and plain["input_ids"].shape[1] <= 8


def test_transforms():
    image = Image.linear_gradient("L").resize((300, 200))
    assert ShrinkTo(100)(image).size == (150, 100) and ShrinkTo(400)(image) is image
    augment = paper_augmentation(image_size=64)
    out = augment(image)
    assert isinstance(out, Image.Image) and out.size == (96, 64)
    assert (augment.degrees, augment.scale, augment.jitter) == (20.0, (0.9, 1.1), (0.5, 2.0))  # the paper's values
    identity = {"angle": 0.0, "scale": 1.0, "flip": False, "brightness": 1.0, "contrast": 1.0}
    shrunk = ShrinkTo(64)(image.convert("RGB"))
    assert np.array_equal(np.asarray(augment.apply(image.convert("RGB"), identity)), np.asarray(shrunk))
    assert param_vector(identity).abs().sum() == 0 and param_vector(None).shape == (len(AUG_PARAMS),)
    torch.manual_seed(0)
    view, vector = augment.with_params(image)
    assert view.size == (96, 64) and vector.shape == (5,) and vector.abs().max() <= 1.0 + 1e-6
    flipped = augment.apply(image.convert("RGB"), {**identity, "flip": True})
    assert np.array_equal(np.asarray(flipped)[:, ::-1], np.asarray(shrunk))
    first, second = two_views(paper_augmentation())(image)
    assert first.size == second.size == image.size


def test_errors_are_clear(preprocess):
    with pytest.raises(ParameterError, match="sentences_per_report"):
        ImageTextPairs(Reports(), preprocess, sentences_per_report=0)
    with pytest.raises(DataFormatError, match="empty report"):
        ImageTextPairs(Reports(texts=["  "]), preprocess)[0]
    with pytest.raises(ParameterError, match="tokenizer"):
        _ = ImageTextPairs(Reports(), preprocess).collate


def test_sentence_index_dedupes_and_keeps_owners():
    from medvl_core.data.pairs import sentence_index

    unique, owners = sentence_index(["No effusion. Heart normal.", "Heart normal. Small nodule."])
    assert unique == ["No effusion.", "Heart normal.", "Small nodule."]
    assert owners == [[0, 1], [1, 2]]


def test_feature_pairs_sample_mean_of_drawn_sentences_per_epoch():
    from medvl_core.data.pairs import FeaturePairs

    images = torch.arange(6.0).reshape(2, 3)
    sentences = torch.eye(5)
    pairs = FeaturePairs(images, sentences, [[0, 1, 2, 3], [4]], sentences_per_report=2, seed=1)
    item = pairs[0]
    drawn = pairs.sentences_for(0)
    assert len(drawn) == 2 and torch.equal(item["image_features"], images[0])
    assert torch.allclose(item["text_features"], sentences[torch.from_numpy(drawn)].mean(0))
    draws = {tuple(pairs.sentences_for(0, epoch)) for epoch in range(8)}
    assert len(draws) > 1 and pairs.sentences_for(0, 3).tolist() == pairs.sentences_for(0, 3).tolist()
    assert torch.equal(pairs[1]["text_features"], sentences[4])
    full = FeaturePairs(images, sentences, [[0, 1, 2, 3], [4]], sentences_per_report=None)
    assert torch.allclose(full[0]["text_features"], sentences[:4].mean(0))


def test_feature_batches_train_through_the_objective():
    from medvl_core.data.pairs import FeaturePairs
    from medvl_core.losses import ContrastiveObjective
    from medvl_core.models.dual_encoder import build_dual_encoder

    model = build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=8, trainable="projections")
    pairs = FeaturePairs(torch.randn(4, model.visual.embed_dim), torch.randn(6, model.text.embed_dim),
                         [[0, 1], [2], [3, 4], [5]])
    batch = torch.utils.data.default_collate([pairs[i] for i in range(4)])
    out = ContrastiveObjective(relax={"threshold": 0.5, "alpha": 10.0})(model, batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.image_projection.weight.grad is not None
