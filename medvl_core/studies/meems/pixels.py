"""The paper's image-only baseline on pixels (items, objective, validation, predictions); the encoder's pretraining."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...config import seed_everything
from ...data.images import load_image
from ...eval.metrics import auroc_per_label
from ...models.modules import device_of
from ...train import TrainConfig, train
from .networks import ImageOnlyClassifier
from .tasks import head_loss, head_probabilities


class PixelPairs(Dataset):
    """(preprocessed image, target) items read from image paths."""

    def __init__(self, paths, targets: torch.Tensor, preprocess):
        self.paths, self.targets, self.preprocess = list(paths), targets, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        return {"pixels": self.preprocess(load_image(self.paths[i])), "target": self.targets[i]}


class PixelObjective:
    """loss_fn of the fine-tuned image-only baseline."""

    def __init__(self, task: str):
        self.task = task

    def __call__(self, model, batch) -> torch.Tensor:
        return head_loss(model(batch["pixels"]), batch["target"], self.task)


@torch.no_grad()
def predict_pixels(model, paths, task: str, batch_size: int = 64) -> np.ndarray:
    """Probabilities of an `ImageOnlyClassifier` on image files."""
    model.eval()
    pairs = PixelPairs(paths, torch.zeros(len(paths), 1), model.preprocess)
    chunks = []
    for start in range(0, len(pairs), batch_size):
        pixels = torch.stack([pairs[i]["pixels"] for i in range(start, min(start + batch_size, len(pairs)))])
        chunks.append(head_probabilities(model(pixels.to(device_of(model))), task))
    return np.concatenate(chunks)


class PixelValidation:
    """val_fn of the fine-tuned baseline: validation loss and macro AUROC."""

    def __init__(self, paths, targets: torch.Tensor, task: str):
        self.paths, self.targets, self.task = paths, targets, task

    def __call__(self, model, epoch: int) -> dict:
        probs = torch.as_tensor(predict_pixels(model, self.paths, self.task)).clamp(1e-7, 1 - 1e-7)
        y = self.targets.numpy()
        if self.task == "binary":
            loss = F.binary_cross_entropy(probs[:, 0], self.targets[:, 0])
        else:
            loss = F.binary_cross_entropy(probs, self.targets)
        return {"val_loss": float(loss), "val_auroc": float(np.nanmean(auroc_per_label(y, probs.numpy()).to_numpy()))}


def pretrain_encoder(encoder, images, texts, config: TrainConfig, uncertain: str = "zeros") -> None:
    """Fine-tune `encoder` with a 14-label linear head on the images' pixels, then freeze it in eval mode.

    Its cache spec gets a digest of the new weights, so its grids never mix with the pretrained encoder's.
    """
    del texts, uncertain  # the labels come with the images
    seed_everything(config.seed)
    y = torch.as_tensor(np.nan_to_num(images.label_matrix(), nan=0.0), dtype=torch.float32)
    for p in encoder.parameters():
        p.requires_grad_(True)
    model = ImageOnlyClassifier(encoder.train(), y.shape[1])
    train(model, PixelPairs(images.column("path"), y, model.preprocess), PixelObjective("multilabel"), config)
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    digest = hashlib.sha256()
    for tensor in encoder.state_dict().values():
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    encoder.spec = f"{encoder.spec}#pretrained-on-captioning-{digest.hexdigest()[:12]}"
