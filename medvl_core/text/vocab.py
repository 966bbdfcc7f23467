"""Word tokenisation and the captioner vocabulary built from training reports."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[.,;:]")


def word_tokens(text: str) -> list[str]:
    """Lower-cased word, number and punctuation tokens; de-identification 'XXXX' runs dropped."""
    return [t for t in _WORD.findall(text.lower()) if t != "xxxx"]


@dataclass
class Vocabulary:
    """Token <-> id mapping with the captioner's special tokens first."""

    itos: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self):
        self.stoi = {token: index for index, token in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, add_specials: bool = True) -> list[int]:
        """Token ids of `text` (unknown words -> <unk>), wrapped in <start>/<end> by default."""
        ids = [self.stoi.get(t, self.stoi["<unk>"]) for t in word_tokens(text)]
        return [self.stoi["<start>"], *ids, self.stoi["<end>"]] if add_specials else ids

    def decode(self, ids) -> str:
        """Text of token ids, stopping at <end> and skipping other specials."""
        words = []
        for index in ids:
            token = self.itos[int(index)]
            if token == "<end>":
                break
            if token not in SPECIALS:
                words.append(token)
        return " ".join(words)


def build_vocabulary(texts, min_count: int = 5) -> Vocabulary:
    """Vocabulary of tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
    counts = Counter(token for text in texts for token in word_tokens(text))
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return Vocabulary(list(SPECIALS) + kept)
