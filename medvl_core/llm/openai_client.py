"""OpenAI client for the M3G paper's label pipeline: GPT-4 Turbo label extraction and EmbeddingV3 label embeddings.

The paper (Fig. 1 B): "The medical discussions included as a part of the training data is used to extract the most
likely disease label for each case using GPT4-Turbo from OpenAI" and "The disease labels are embedded using
EmbeddingV3 from OpenAI" (Table 5: text embedding dim 3072, i.e. text-embedding-3-large).

Usage: `export OPENAI_API_KEY=...` (read from the argument or that variable only; never logged, cached or stored),
then `client = OpenAIClient(cache_dir)`, `client.complete(system, text)`, `client.complete_many([(system, text),
...])`, `client.embed(texts)` and `client.usage()`.

- Cache: one JSON file per chat request and one per embedded text, `<cache_dir>/<sha256>.json`, written atomically;
  a rerun of a finished notebook makes no call (the key is still required, as for the Claude arm).
- Retries, concurrency, the key's absence: as `ClaudeClient` (shared `RetryingClient`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, MedvlError, ParameterError
from ..io import atomic_write_json
from .base import (
    LLMReply,
    LLMRequestError,
    RetryingClient,
    UsageSummary,
    cache_key,
    describe_error,
    read_cached_reply,
)

API_KEY_ENV = "OPENAI_API_KEY"
PAPER_CHAT_MODEL = "gpt-4-turbo"  # "GPT4-Turbo from OpenAI" (Fig. 1 B)
PAPER_EMBEDDING_MODEL = "text-embedding-3-large"  # "EmbeddingV3" (Fig. 1 B), 3072-d (Table 5)
CACHE_FORMAT = 1
EMBED_BATCH = 256  # texts per embeddings request


class MissingOpenAIKeyError(MedvlError):
    """No OpenAI API key in the argument or the OPENAI_API_KEY environment variable."""


def no_key_message(what: str = "the LLM label pipeline") -> str:
    """The error text for a missing key, naming the variable and the offline alternative."""
    return (f"no OpenAI API key: export {API_KEY_ENV}=... to run {what} (the paper's GPT-4 Turbo labels and "
            "EmbeddingV3 label embeddings); offline, use -p label_source responses and -p text_encoder bundled:minilm")


class OpenAIClient(RetryingClient):
    """Chat completions and embeddings through the official openai SDK, with an on-disk cache and retries."""

    api_name = "OpenAI API"

    def __init__(self, cache_dir, *, chat_model: str = PAPER_CHAT_MODEL,
                 embedding_model: str = PAPER_EMBEDDING_MODEL, max_concurrency: int = 4, max_retries: int = 5,
                 timeout: float = 60.0, base_url: str | None = None, api_key: str | None = None,
                 max_tokens: int = 64, temperature: float | None = 0.0, backoff_base: float = 1.0,
                 backoff_max: float = 30.0, progress: bool = True):
        for name, value in (("chat_model", chat_model), ("embedding_model", embedding_model)):
            if not isinstance(value, str) or not value.strip():
                raise ParameterError(f"OpenAIClient: {name}={value!r} must be a model name")
        if timeout is None or timeout <= 0 or max_tokens is None or max_tokens < 1:
            raise ParameterError(f"OpenAIClient: timeout={timeout!r} must be > 0 and max_tokens={max_tokens!r} >= 1")
        self._init_retries(max_concurrency, max_retries, backoff_base, backoff_max)
        self.chat_model, self.embedding_model = chat_model, embedding_model
        self.cache_dir = Path(cache_dir).expanduser()
        self.max_tokens, self.temperature, self.progress = int(max_tokens), temperature, progress
        self._sdk = self._make_sdk(api_key, base_url, timeout)
        self._usage = UsageSummary(model=f"{chat_model} + {embedding_model}", price_known=False)

    def __repr__(self) -> str:
        return f"OpenAIClient(chat_model={self.chat_model!r}, embedding_model={self.embedding_model!r})"

    @staticmethod
    def _make_sdk(api_key, base_url, timeout):
        """The openai.OpenAI client (SDK retries off: this class retries and counts attempts)."""
        import openai

        key = (api_key or os.environ.get(API_KEY_ENV, "")).strip()
        if not key:
            raise MissingOpenAIKeyError(no_key_message())
        return openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)

    # ------------------------------------------------------------------ chat

    def complete(self, system: str, text: str) -> LLMReply:
        """One chat completion (system + user text), served from the cache if present."""
        fields = {"model": self.chat_model, "system": system, "text": text, "max_tokens": self.max_tokens,
                  "temperature": self.temperature}
        path = self.cache_dir / f"{cache_key(fields)}.json"
        cached = read_cached_reply(path)
        if cached is not None:
            with self._lock:
                self._usage.cached_calls += 1
            return cached
        reply = self._chat(system, text)
        atomic_write_json(path, {"format": CACHE_FORMAT, "request": fields, "text": reply.text,
                                 "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
                                 "model": reply.model})
        return reply

    def complete_many(self, requests: Sequence[tuple[str, str]]) -> list[LLMReply]:
        """Replies to (system, text) requests in their order, at most max_concurrency in flight."""
        from tqdm.auto import tqdm

        requests = list(requests)
        with tqdm(total=len(requests), desc=f"openai {self.chat_model}", disable=not self.progress) as bar:
            def run(request: tuple[str, str]) -> LLMReply:
                reply = self.complete(*request)
                bar.update(1)
                return reply

            with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
                return list(pool.map(run, requests))

    def _chat(self, system: str, text: str) -> LLMReply:
        """Send one chat request with retries; count the call and its tokens."""
        extra = {} if self.temperature is None else {"temperature": self.temperature}
        completion = self._with_retries(lambda: self._sdk.chat.completions.create(
            model=self.chat_model, max_tokens=self.max_tokens,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": text}], **extra))
        usage = completion.usage
        reply = LLMReply(text=completion.choices[0].message.content or "",
                         input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                         output_tokens=int(getattr(usage, "completion_tokens", 0) or 0), cached=False,
                         model=str(completion.model or self.chat_model))
        self._count(reply.input_tokens, reply.output_tokens)
        return reply

    # ------------------------------------------------------------------ embeddings

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 embeddings of `texts`; cached per text, the missing ones sent in batches of EMBED_BATCH."""
        texts = [str(t) for t in texts]
        paths = {t: self.cache_dir / f"{cache_key({'model': self.embedding_model, 'embed': t})}.json" for t in texts}
        vectors = {t: self._read_vector(p) for t, p in paths.items()}
        missing = list(dict.fromkeys(t for t, v in vectors.items() if v is None))
        with self._lock:
            self._usage.cached_calls += len(paths) - len(missing)
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start:start + EMBED_BATCH]
            for text, vector in zip(batch, self._embed_batch(batch)):
                vectors[text] = vector
                atomic_write_json(paths[text], {"format": CACHE_FORMAT, "model": self.embedding_model, "text": text,
                                         "embedding": vector.tolist()})
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([vectors[t] for t in texts]).astype(np.float32)

    def _embed_batch(self, texts: list[str]) -> list[np.ndarray]:
        """One embeddings request with retries, vectors in the input order."""
        response = self._with_retries(lambda: self._sdk.embeddings.create(model=self.embedding_model, input=texts))
        rows = sorted(response.data, key=lambda row: row.index)
        if len(rows) != len(texts):
            raise LLMRequestError(f"OpenAI embeddings: {len(rows)} vectors for {len(texts)} texts")
        self._count(int(getattr(response.usage, "prompt_tokens", 0) or 0), 0)
        return [np.asarray(row.embedding, dtype=np.float32) for row in rows]

    @staticmethod
    def _read_vector(path: Path) -> np.ndarray | None:
        """The cached embedding at `path`, or None when absent."""
        if not path.is_file():
            return None
        try:
            return np.asarray(json.loads(path.read_text(encoding="utf-8"))["embedding"], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"embedding cache file {path} is unreadable ({exc}); delete it to redo the call") from exc

    # ------------------------------------------------------------------ bookkeeping

    def usage(self) -> UsageSummary:
        """Calls, cache hits, attempts and tokens so far (no price: OpenAI prices are not tabulated here)."""
        with self._lock:
            return UsageSummary(**asdict(self._usage))

    def _count(self, input_tokens: int, output_tokens: int) -> None:
        """Count one billed call."""
        with self._lock:
            self._usage.calls += 1
            self._usage.input_tokens += input_tokens
            self._usage.output_tokens += output_tokens

    def _sdk_errors(self) -> tuple[type, type]:
        """openai's APIError and APIConnectionError."""
        import openai

        return openai.APIError, openai.APIConnectionError

    def _refused(self, exc: Exception) -> LLMRequestError:
        """A clear error for a request the API will not accept on retry (4xx)."""
        status, detail = getattr(exc, "status_code", None), describe_error(exc)
        if status in (401, 403):
            return LLMRequestError(f"OpenAI API rejected the key ({detail}); check {API_KEY_ENV}")
        if status == 404:
            return LLMRequestError(f"OpenAI model unknown or retired ({detail}); pass another with -p label_model "
                                   f"(paper: {PAPER_CHAT_MODEL}) or -p text_encoder openai:MODEL "
                                   f"(paper: openai:{PAPER_EMBEDDING_MODEL})")
        return LLMRequestError(f"OpenAI API refused the request ({detail})")
