"""Claude (Anthropic Messages API) client for the M3G pipeline: on-disk cache, retries, bounded concurrency, cost.

Usage: `export ANTHROPIC_API_KEY=...` (the key is read from the argument or that variable only; it is never
logged, cached or stored), then `client = ClaudeClient("claude-...", cache_dir)`, `client.complete(system, text,
images)` or `client.complete_many([LLMRequest(...), ...])`, and `client.usage()` for calls, tokens and cost.

- Cache: one JSON file per request (`llm.base`), keyed by model, system prompt, text, the sha256 of each image's
  bytes, max_tokens and temperature; written atomically (medvl_core.io). A cache hit makes no call, so a rerun
  of a finished notebook costs nothing and needs no network (the key is still required).
- Retries: `llm.base.RetryingClient` (the SDK's own retries are off, so every attempt is counted).
- Images: see `llm.claude_content` (PNG/JPEG/GIF/WEBP; an image over the API's 5 MB limit is re-encoded).
- Concurrency: at most `max_concurrency` requests in flight (threads); `complete_many` keeps the input order.
- Cost and models: see `llm.claude_models` (`usage().cost_usd` from its price table; retired models refused
  before any call; a 404 from the API gives the same advice).
- Content: the images (base64 blocks) then the text, or the text first (`text_first`); an empty text sends no text
  block (an image-only message).
- Token counting: `count_tokens(...)` asks the SDK's `messages.count_tokens` (free, needs the key and the network).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import MedvlError, ParameterError
from ..io import atomic_write_json
from .base import (
    LLMReply,
    LLMRequestError,
    RetryingClient,
    UsageSummary,
    cache_key,
    check_at_least,
    describe_error,
    read_cached_reply,
)
from .claude_content import fit_image, image_bytes, message_content
from .claude_models import check_model, model_advice, model_price

API_KEY_ENV = "ANTHROPIC_API_KEY"
CACHE_FORMAT = 1
NO_KEY_MESSAGE = (f"no Anthropic API key: export {API_KEY_ENV}=... (or pass api_key=) to run the Claude pipeline; "
                  "the rest of the notebook runs without it")


class MissingAPIKeyError(MedvlError):
    """No Anthropic API key in the argument or the ANTHROPIC_API_KEY environment variable."""


@dataclass(frozen=True)
class LLMRequest:
    """One Messages API request: system prompt, user text and images (bytes or paths), images first unless text_first."""

    system: str
    text: str
    images: Sequence = ()
    text_first: bool = False


def api_key_available() -> bool:
    """Whether ANTHROPIC_API_KEY is set (non-empty) in the environment."""
    return bool(os.environ.get(API_KEY_ENV, "").strip())


class ClaudeClient(RetryingClient):
    """Anthropic Messages API client with an on-disk response cache, retries and bounded concurrency."""

    api_name = "Anthropic API"

    def __init__(self, model: str, cache_dir, *, max_concurrency: int = 4, max_retries: int = 5,
                 timeout: float = 60.0, base_url: str | None = None, api_key: str | None = None,
                 max_tokens: int = 1024, temperature: float | None = 0.0, backoff_base: float = 1.0,
                 backoff_max: float = 30.0, progress: bool = True):
        if not isinstance(model, str) or not model.strip():
            raise ParameterError(f"ClaudeClient: model={model!r} must be a model name such as 'claude-opus-4-5'")
        check_model(model)
        for name, value, minimum in (("timeout", timeout, 1e-3), ("max_tokens", max_tokens, 1)):
            check_at_least(name, value, minimum)
        self._init_retries(max_concurrency, max_retries, backoff_base, backoff_max)
        self.model, self.cache_dir = model, Path(cache_dir).expanduser()
        self.max_tokens, self.temperature, self.progress = int(max_tokens), temperature, progress
        self._sdk = self._make_sdk(api_key, base_url, timeout)
        price, known = model_price(model)
        self._usage = UsageSummary(model=model, price_known=known, price_per_mtok=price)

    def __repr__(self) -> str:
        return f"ClaudeClient(model={self.model!r}, cache_dir={str(self.cache_dir)!r})"

    @staticmethod
    def _make_sdk(api_key, base_url, timeout):
        """The anthropic.Anthropic client (SDK retries off: this class retries and counts attempts)."""
        import anthropic

        key = (api_key or os.environ.get(API_KEY_ENV, "")).strip()
        if not key:
            raise MissingAPIKeyError(NO_KEY_MESSAGE)
        return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)

    # ------------------------------------------------------------------ public API

    def complete(self, system: str, text: str, images: Sequence = (), text_first: bool = False) -> LLMReply:
        """One request: images (base64 blocks) and the text, under `system`; served from the cache if present."""
        datas = [fit_image(image_bytes(image)) for image in images]
        fields = self._key_fields(system, text, datas, text_first)
        path = self.cache_dir / f"{cache_key(fields)}.json"
        cached = self._read_cache(path)
        if cached is not None:
            with self._lock:
                self._usage.cached_calls += 1
            return cached
        reply = self._call(system, message_content(datas, text, text_first))
        atomic_write_json(path, {"format": CACHE_FORMAT, "request": fields, "text": reply.text,
                                 "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
                                 "model": reply.model})
        return reply

    def complete_many(self, requests: Sequence[LLMRequest]) -> list[LLMReply]:
        """Replies to `requests` in their order, at most max_concurrency in flight, with a progress bar."""
        from tqdm.auto import tqdm

        requests = list(requests)
        with tqdm(total=len(requests), desc=f"claude {self.model}", disable=not self.progress) as bar:
            def run(request: LLMRequest) -> LLMReply:
                reply = self.complete(request.system, request.text, request.images, request.text_first)
                bar.update(1)
                return reply

            with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
                return list(pool.map(run, requests))

    def count_tokens(self, request: LLMRequest) -> int:
        """Input tokens of `request` counted by the SDK (messages.count_tokens; free, needs the network)."""
        import anthropic

        datas = [fit_image(image_bytes(image)) for image in request.images]
        content = message_content(datas, request.text, request.text_first)
        try:
            counted = self._sdk.messages.count_tokens(model=self.model, system=request.system,
                                                      messages=[{"role": "user", "content": content}])
        except anthropic.APIError as exc:
            raise self._refused(exc) from None
        return int(counted.input_tokens)

    def usage(self) -> UsageSummary:
        """Calls, cache hits, attempts, tokens and estimated cost (USD) so far."""
        with self._lock:
            summary = UsageSummary(**asdict(self._usage))
        price_in, price_out = summary.price_per_mtok
        summary.cost_usd = round((summary.input_tokens * price_in + summary.output_tokens * price_out) / 1e6, 6)
        return summary

    # ------------------------------------------------------------------ internals

    def _key_fields(self, system: str, text: str, datas: list[bytes], text_first: bool = False) -> dict:
        """Everything that determines a reply (images by content hash; the text-first layout only when used)."""
        fields = {"model": self.model, "system": system, "text": text,
                  "images_sha256": [hashlib.sha256(d).hexdigest() for d in datas],
                  "max_tokens": self.max_tokens, "temperature": self.temperature}
        return {**fields, "text_first": True} if text_first and datas and text else fields

    def _read_cache(self, path: Path) -> LLMReply | None:
        """The cached reply at `path`, or None when absent."""
        return read_cached_reply(path)

    def _call(self, system: str, content: list[dict]) -> LLMReply:
        """Send the request with retries; count the call and its tokens."""
        extra = {} if self.temperature is None else {"temperature": self.temperature}
        message = self._with_retries(lambda: self._sdk.messages.create(
            model=self.model, max_tokens=self.max_tokens, system=system,
            messages=[{"role": "user", "content": content}], extra_body=extra))
        reply = LLMReply(text="".join(b.text for b in message.content if getattr(b, "type", "") == "text"),
                         input_tokens=int(message.usage.input_tokens), output_tokens=int(message.usage.output_tokens),
                         cached=False, model=str(message.model or self.model))
        with self._lock:
            self._usage.calls += 1
            self._usage.input_tokens += reply.input_tokens
            self._usage.output_tokens += reply.output_tokens
        return reply

    def _sdk_errors(self) -> tuple[type, type]:
        """anthropic's APIError and APIConnectionError."""
        import anthropic

        return anthropic.APIError, anthropic.APIConnectionError

    def _refused(self, exc: Exception) -> LLMRequestError:
        """A clear error for a request the API will not accept on retry (4xx)."""
        status, detail = getattr(exc, "status_code", None), describe_error(exc)
        if status in (401, 403):
            return LLMRequestError(f"Anthropic API rejected the key ({detail}); check {API_KEY_ENV}")
        if status == 404:
            return LLMRequestError(model_advice(self.model, f"is unknown to the Anthropic API or retired ({detail})"))
        if status == 400 and "temperature" in detail:
            return LLMRequestError(f"model {self.model!r} does not accept temperature ({detail}); "
                                   "pass temperature=None")
        return LLMRequestError(f"Anthropic API refused the request ({detail})")

