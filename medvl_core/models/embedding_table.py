"""A frozen text tower that looks texts up in a table of precomputed embeddings (e.g. from an embeddings API)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ParameterError
from .encoders import TextEncoder


class EmbeddingTable(TextEncoder):
    """Text tower over a fixed vocabulary: each known text maps to its stored vector; nothing is trained."""

    def __init__(self, spec: str, texts: Sequence[str], vectors):
        vectors = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        texts = [str(t) for t in texts]
        if vectors.ndim != 2 or len(texts) != len(vectors) or not len(texts):
            raise ParameterError(f"EmbeddingTable {spec!r}: {len(texts)} texts but vectors of shape "
                                 f"{tuple(vectors.shape)}; expected one row per text")
        super().__init__(spec, embed_dim=vectors.shape[1], token_dim=vectors.shape[1], max_length=1)
        self.texts, self._index = texts, {t: i for i, t in enumerate(texts)}
        self.register_buffer("table", vectors)

    def tokenize(self, texts, max_length: int | None = None) -> dict:
        """Each text's row as a one-token id; a text outside the table is an error naming it."""
        missing = [t for t in texts if t not in self._index]
        if missing:
            raise ParameterError(f"text tower {self.spec!r} holds embeddings for {len(self.texts)} fixed texts; "
                                 f"not for {missing[:3]}")
        ids = torch.tensor([[self._index[t]] for t in texts], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.table[input_ids]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.table[input_ids[:, 0]]
