"""MEEMS heads (Cooper & Vainio): multimodal embedder, MLP classifier, and the image-only baseline.

The embedder maps concat(image features, captioner hidden state) through FC 1000 -> FC 200 (paper
sizes; the demo scales them down); the classifier is an MLP 200 -> 50 -> outputs. The baseline is the
same heads on image features alone (demo: frozen CNN features), or a CNN fine-tuned end to end with a
linear head (paper: ResNet-50).
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ParameterError

PAPER_SIZES = {"embed_hidden": 1000, "embed_dim": 200, "classifier_hidden": 50}


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Linear-ReLU-Dropout blocks over consecutive `sizes` (ReLU after every layer)."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class MeemsEmbedder(nn.Module):
    """concat(image features, caption hidden state) -> FC embed_hidden -> FC embed_dim (the MEEMS embedding)."""

    def __init__(self, image_dim: int, caption_dim: int, embed_hidden: int = 1000, embed_dim: int = 200,
                 dropout: float = 0.2):
        super().__init__()
        if image_dim < 0 or caption_dim < 0 or image_dim + caption_dim == 0:
            raise ParameterError(f"image_dim={image_dim}, caption_dim={caption_dim}: at least one must be > 0")
        self.image_dim, self.caption_dim, self.embed_dim = image_dim, caption_dim, embed_dim
        self.net = _mlp([image_dim + caption_dim, embed_hidden, embed_dim], dropout)

    def forward(self, image_features: torch.Tensor, caption_hidden: torch.Tensor | None = None) -> torch.Tensor:
        parts = [image_features] if self.image_dim else []
        if self.caption_dim:
            if caption_hidden is None:
                raise ParameterError("this embedder was built with caption_dim > 0; pass the captioner hidden state")
            parts.append(caption_hidden)
        x = torch.cat(parts, dim=1)
        if x.shape[1] != self.image_dim + self.caption_dim:
            raise ParameterError(f"embedder input has {x.shape[1]} features, expected image_dim + caption_dim = "
                                 f"{self.image_dim + self.caption_dim}")
        return self.net(x)


class MlpClassifier(nn.Module):
    """embedding -> FC hidden -> ReLU -> FC n_outputs (logits)."""

    def __init__(self, in_dim: int = 200, hidden: int = 50, n_outputs: int = 2, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)


class MeemsClassifier(nn.Module):
    """Embedder + classifier; with caption_dim=0 it is the image-only baseline on the same features."""

    def __init__(self, image_dim: int, caption_dim: int, n_outputs: int, embed_hidden: int = 1000,
                 embed_dim: int = 200, classifier_hidden: int = 50, dropout: float = 0.2):
        super().__init__()
        self.embedder = MeemsEmbedder(image_dim, caption_dim, embed_hidden, embed_dim, dropout)
        self.classifier = MlpClassifier(embed_dim, classifier_hidden, n_outputs, dropout)

    def forward(self, image_features: torch.Tensor, caption_hidden: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.embedder(image_features, caption_hidden))

    @torch.no_grad()
    def embed(self, image_features: torch.Tensor, caption_hidden: torch.Tensor | None = None) -> torch.Tensor:
        """The MEEMS embedding (B, embed_dim) in eval mode."""
        was = self.training
        self.eval()
        try:
            return self.embedder(image_features, caption_hidden)
        finally:
            self.train(was)


class ImageOnlyClassifier(nn.Module):
    """The paper's baseline: an image tower (e.g. torchvision:resnet50) fine-tuned with a linear head on pixels."""

    def __init__(self, encoder: nn.Module, n_outputs: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.embed_dim, n_outputs)
        self.preprocess = encoder.preprocess

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixels))
