"""Claude (Anthropic Messages API) client for the M3G pipeline: on-disk cache, retries, bounded concurrency, cost.

Usage: `export ANTHROPIC_API_KEY=...` (the key is read from the argument or that variable only; it is never
logged, cached or stored), then `client = ClaudeClient("claude-...", cache_dir)`, `client.complete(system, text,
images)` or `client.complete_many([LLMRequest(...), ...])`, and `client.usage()` for calls, tokens and cost.

- Cache: one JSON file per request, `<cache_dir>/<sha256>.json`, keyed by model, system prompt, text, the sha256
  of each image's bytes, max_tokens and temperature; written atomically (medvl_core.io). A cache hit makes no
  call, so a rerun of a finished notebook costs nothing and needs no network (the key is still required).
- Retries: our own loop (the SDK's retries are switched off so every attempt is counted): exponential backoff
  `backoff_base * 2**attempt` capped at `backoff_max`, with jitter (or the server's retry-after when longer),
  on 408/409/429/5xx/529 (overloaded) and timeouts/connection errors; after `max_retries` retries a LLMRequestError names the last error.
- Images: bytes or file paths; PNG/JPEG/GIF/WEBP detected from the bytes; an image over the API's 5 MB limit is
  re-encoded as a smaller JPEG (the cache key hashes the bytes actually sent).
- Concurrency: at most `max_concurrency` requests in flight (threads); `complete_many` keeps the input order.
- Cost: `usage().cost_usd` from PRICES_PER_MTOK (USD per million input/output tokens, matched by model-name
  prefix); an unknown model is priced at the highest listed price (an upper bound) and `price_known` is False.
- Models: a retired model (RETIRED_MODELS, or past the end-of-life date the installed SDK lists) is refused before
  any call (`check_model`), with one error naming `-p claude_model` and the paper's model; a 404 from the API gives
  the same advice; `check_known_model` refuses a name neither the SDK nor the price table knows (the dry run's check).
- Content: the images (base64 blocks) then the text, or the text first (`text_first`); an empty text sends no text
  block (an image-only message).
- Token counting: `count_tokens(...)` asks the SDK's `messages.count_tokens` (free, needs the key and the network).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataFormatError, MedvlError, ParameterError
from ..io import atomic_write_json

API_KEY_ENV = "ANTHROPIC_API_KEY"
RETRY_STATUSES = frozenset({408, 409, 429})  # plus every status >= 500 (529 = overloaded)
CACHE_FORMAT = 1
NO_KEY_MESSAGE = (f"no Anthropic API key: export {API_KEY_ENV}=... (or pass api_key=) to run the Claude pipeline; "
                  "the rest of the notebook runs without it")

PAPER_MODEL = "claude-3-opus-20240229"  # the M3G paper's Claude 3 Opus
MODEL_PARAMETER = "claude_model"  # the notebook parameter that names the model

# USD per million (input, output) tokens, Anthropic list prices (base input / output; no caching or batch discount).
# Longest matching prefix wins, so a dated snapshot takes its alias's price and a minor version not listed takes
# its family's; a model matching no prefix is priced at FALLBACK_PRICE (an upper bound) with price_known False.
PRICES_SOURCE = ("Anthropic pricing page, https://platform.claude.com/docs/en/about-claude/pricing (model pricing "
                 "table; Claude 3 models as listed while offered) and the Claude Opus 5 models overview "
                 "(Opus 5.5, Sonnet 5.5, Haiku 5.5), read 2026-12-02")
PRICES_PER_MTOK = {
    "claude-3-opus": (15.0, 75.0),
    "claude-3-sonnet": (3.0, 15.0),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-opus-4": (15.0, 75.0),  # Opus 4 and 4.1
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-opus-4-8": (5.0, 25.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-sonnet-4": (3.0, 15.0),  # Sonnet 4, 4.5, 4.6
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-haiku-5-5": (0.1, 0.5),  # prompts up to 100k tokens
    "claude-fable-5": (10.0, 50.0),
    "claude-mythos-5": (10.0, 50.0),
}
FALLBACK_PRICE = max(PRICES_PER_MTOK.values())

# Models the Claude API no longer serves (requests fail), with the retirement date. Models the installed SDK lists
# as deprecated (anthropic._data.DEPRECATED_MODELS) count as retired once their end-of-life date has passed.
RETIRED_SOURCE = ("Anthropic model deprecations page, https://platform.claude.com/docs/en/about-claude/"
                  "model-deprecations, and the API release notes, read 2026-12-02")
RETIRED_MODELS = {
    **dict.fromkeys(("claude-1.0", "claude-1.1", "claude-1.2", "claude-1.3", "claude-instant-1.0",
                     "claude-instant-1.1", "claude-instant-1.2"), "2024-11-06"),
    **dict.fromkeys(("claude-2.0", "claude-2.1", "claude-3-sonnet-20240229"), "2025-07-21"),
    **dict.fromkeys(("claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022"), "2025-10-28"),
    "claude-3-opus-20240229": "2026-01-05",
}

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the Messages API's per-image limit (base64 of larger images is refused)
MAX_IMAGE_SIDE = 1568  # longest side the API uses without downscaling it itself
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


class MissingAPIKeyError(MedvlError):
    """No Anthropic API key in the argument or the ANTHROPIC_API_KEY environment variable."""


class LLMRequestError(MedvlError):
    """The Anthropic API refused a request or kept failing after all retries."""


@dataclass(frozen=True)
class LLMRequest:
    """One Messages API request: system prompt, user text and images (bytes or paths), images first unless text_first."""

    system: str
    text: str
    images: Sequence = ()
    text_first: bool = False


@dataclass(frozen=True)
class LLMReply:
    """The reply text with its token counts; `cached` when it came from the on-disk cache (no call)."""

    text: str
    input_tokens: int
    output_tokens: int
    cached: bool
    model: str


@dataclass
class UsageSummary:
    """Calls made (billed), cache hits, HTTP attempts (incl. retries), tokens and estimated cost of this client."""

    model: str
    calls: int = 0
    cached_calls: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    price_known: bool = True
    price_per_mtok: tuple = field(default=(0.0, 0.0))

    def as_dict(self) -> dict:
        """Plain dict (for runs.record / a table)."""
        out = asdict(self)
        out["price_per_mtok"] = list(self.price_per_mtok)
        return out


def api_key_available() -> bool:
    """Whether ANTHROPIC_API_KEY is set (non-empty) in the environment."""
    return bool(os.environ.get(API_KEY_ENV, "").strip())


def model_price(model: str) -> tuple[tuple[float, float], bool]:
    """(USD per million input tokens, per million output tokens) for `model`, and whether it was listed."""
    matches = [prefix for prefix in PRICES_PER_MTOK if model == prefix or model.startswith(prefix + "-")]
    if not matches:
        return FALLBACK_PRICE, False
    return PRICES_PER_MTOK[max(matches, key=len)], True


def sdk_models() -> tuple[str, ...]:
    """The model names the installed anthropic SDK lists (anthropic.types.ModelParam)."""
    from typing import get_args

    from anthropic.types import ModelParam

    return tuple(name for arg in get_args(ModelParam) for name in get_args(arg))


def sdk_deprecations() -> dict[str, datetime.date]:
    """Model -> end-of-life date of the models the installed SDK lists as deprecated (empty if it lists none)."""
    try:
        from anthropic._data import DEPRECATED_MODELS
    except ImportError:
        return {}
    return {model: _eol_date(text) for model, text in DEPRECATED_MODELS.items() if _eol_date(text)}


def _eol_date(text: str) -> datetime.date | None:
    """'June 30th, 2026' -> date(2026, 6, 30); None when unparsable."""
    try:
        return datetime.datetime.strptime(re.sub(r"(\d)(st|nd|rd|th)", r"\1", text.strip()), "%B %d, %Y").date()
    except ValueError:
        return None


def retired_on(model: str, today: datetime.date | None = None) -> str | None:
    """The date (YYYY-MM-DD) `model` was retired, or None while it is served."""
    if model in RETIRED_MODELS:
        return RETIRED_MODELS[model]
    eol = sdk_deprecations().get(model)
    return eol.isoformat() if eol and eol <= (today or datetime.date.today()) else None


def suggested_model() -> str:
    """A current model to suggest: the first Opus model the SDK lists that is not deprecated."""
    deprecated = sdk_deprecations()
    return next((m for m in sdk_models() if m.startswith("claude-opus") and m not in deprecated), "claude-opus-4-7")


def model_advice(model: str, problem: str) -> str:
    """One error line: what is wrong with `model`, the parameter to change and the paper's model."""
    retired = RETIRED_MODELS.get(PAPER_MODEL)
    paper = f"the paper used {PAPER_MODEL} (Claude 3 Opus" + (f", retired {retired})" if retired else ")")
    return (f"{MODEL_PARAMETER}={model!r} {problem}; pass a current model with -p {MODEL_PARAMETER} NAME "
            f"(e.g. {suggested_model()}); {paper}")


def check_model(model: str, today: datetime.date | None = None) -> None:
    """Raise ParameterError for a retired model before any call is made."""
    date = retired_on(model, today)
    if date:
        raise ParameterError(model_advice(model, f"was retired by Anthropic on {date} (requests to it fail)"))


def check_known_model(model: str) -> None:
    """Raise ParameterError for a name neither the installed SDK nor the price table knows (a typo, most likely)."""
    if model not in sdk_models() and not model_price(model)[1]:
        raise ParameterError(model_advice(model, "is not a model the installed anthropic SDK lists nor one with a "
                                                 "list price in medvl_core.llm.client.PRICES_PER_MTOK"))


def image_media_type(data: bytes) -> str:
    """MIME type of PNG/JPEG/GIF/WEBP bytes, from their signature."""
    for signature, media_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise DataFormatError(f"image is not PNG, JPEG, GIF or WEBP (starts with {data[:12]!r}); "
                          "convert it to one of these formats before sending it to Claude")


def image_bytes(image) -> bytes:
    """The bytes of an image given as bytes or a file path."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, str | os.PathLike):
        try:
            return Path(image).read_bytes()
        except OSError as exc:
            raise DataFormatError(f"cannot read image {os.fspath(image)}: {exc}; check the path") from exc
    raise ParameterError(f"images must be bytes or file paths, got {type(image).__name__}")


def fit_image(data: bytes) -> bytes:
    """`data` unchanged if within MAX_IMAGE_BYTES, else re-encoded as a smaller JPEG (long side <= MAX_IMAGE_SIDE)."""
    if len(data) <= MAX_IMAGE_BYTES:
        return data
    image_media_type(data)  # a clear error for bytes that are no image we could send
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        if buffer.tell() <= MAX_IMAGE_BYTES or min(image.size) <= 64:
            return buffer.getvalue()
        image = image.resize((int(image.width * 0.75), int(image.height * 0.75)))


def message_content(datas: Sequence[bytes], text: str, text_first: bool = False) -> list[dict]:
    """The user message's blocks: image blocks and the text block (none when empty), text first if asked."""
    images = [image_block(d) for d in datas]
    texts = [{"type": "text", "text": text}] if text else []
    return texts + images if text_first else images + texts


def image_block(data: bytes) -> dict:
    """A base64 `image` content block."""
    return {"type": "image", "source": {"type": "base64", "media_type": image_media_type(data),
                                        "data": base64.b64encode(data).decode("ascii")}}


def retryable(exc: Exception, connection_error: type | None = None) -> bool:
    """Whether an SDK error is worth retrying: 408/409/429/5xx/529 or a timeout / connection error.

    `connection_error` is the SDK's connection-error class (anthropic's when None; its timeouts subclass it).
    """
    if connection_error is None:
        import anthropic

        connection_error = anthropic.APIConnectionError
    if isinstance(exc, connection_error):
        return True
    status = getattr(exc, "status_code", None)
    return status is not None and (status in RETRY_STATUSES or status >= 500)


def retry_after(exc: Exception) -> float:
    """Seconds the server asked to wait (retry-after header of the error's response), 0 when absent."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after", 0)))
    except (TypeError, ValueError):
        return 0.0  # an HTTP-date retry-after: fall back to our own backoff


def describe_error(exc: Exception) -> str:
    """A short description of an SDK error (status and message; never the key)."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__} ({status}): {message}" if status else f"{type(exc).__name__}: {message}"


def _check_at_least(name: str, value, minimum, owner: str = "ClaudeClient") -> None:
    """Raise ParameterError unless value >= minimum."""
    if value is None or value < minimum:
        raise ParameterError(f"{owner}: {name}={value!r} must be >= {minimum}")


class RetryingClient:
    """What the API clients share: counted attempts, capped exponential backoff with jitter, bounded concurrency.

    A subclass sets `api_name`, `_usage` (with an `attempts` field), `_sdk_errors()` and `_refused(exc)`.
    """

    api_name = "API"

    def _init_retries(self, max_concurrency: int, max_retries: int, backoff_base: float, backoff_max: float) -> None:
        """Check and store the retry and concurrency settings."""
        for name, value, minimum in (("max_concurrency", max_concurrency, 1), ("max_retries", max_retries, 0),
                                     ("backoff_base", backoff_base, 0), ("backoff_max", backoff_max, 0)):
            _check_at_least(name, value, minimum, type(self).__name__)
        self.max_concurrency, self.max_retries = int(max_concurrency), int(max_retries)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()

    def _sdk_errors(self) -> tuple[type, type]:
        """(the SDK's base API error, its connection error)."""
        raise NotImplementedError

    def _refused(self, exc: Exception) -> MedvlError:
        """A clear error for a request the API will not accept on retry (4xx)."""
        raise NotImplementedError

    def _with_retries(self, send):
        """Run `send()` (one HTTP attempt) up to max_retries + 1 times with backoff on retryable errors."""
        api_error, connection_error = self._sdk_errors()
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self._usage.attempts += 1
            try:
                with self._slots:
                    return send()
            except api_error as exc:
                if not retryable(exc, connection_error):
                    raise self._refused(exc) from None
                if attempt == self.max_retries:
                    raise LLMRequestError(
                        f"{self.api_name} still failing after {attempt + 1} attempts (last: {describe_error(exc)}); "
                        "try again later (cached replies are kept) or lower max_concurrency") from None
                time.sleep(self._wait_seconds(attempt, exc))

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt + 1`: capped exponential with jitter in [50%, 100%]."""
        return min(self.backoff_max, self.backoff_base * 2 ** attempt) * random.uniform(0.5, 1.0)

    def _wait_seconds(self, attempt: int, exc: Exception) -> float:
        """The backoff, or the server's retry-after when longer (both capped at backoff_max)."""
        return min(self.backoff_max, max(self._backoff(attempt), retry_after(exc)))


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
            _check_at_least(name, value, minimum)
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


def read_cached_reply(path: Path) -> LLMReply | None:
    """The reply cached at `path` (an LLMReply with cached=True), or None when absent."""
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        return LLMReply(text=entry["text"], input_tokens=int(entry["input_tokens"]),
                        output_tokens=int(entry["output_tokens"]), cached=True, model=entry["model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(f"LLM cache file {path} is unreadable ({exc}); delete it to redo the call") from exc


def cache_key(fields: dict) -> str:
    """sha256 of the canonical JSON of the request fields."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
