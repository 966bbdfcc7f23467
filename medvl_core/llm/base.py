"""What the Claude and OpenAI clients share: replies, usage, the on-disk reply cache, and retries.

- Cache: one JSON file per request, `<cache_dir>/<sha256>.json` (`cache_key` of the request fields), read back by
  `read_cached_reply`; a hit makes no call.
- Retries (`RetryingClient`): our own loop (the SDK's retries are switched off so every attempt is counted):
  exponential backoff `backoff_base * 2**attempt` capped at `backoff_max`, with jitter (or the server's
  retry-after when longer), on 408/409/429/5xx/529 (overloaded) and timeouts/connection errors; after
  `max_retries` retries a LLMRequestError names the last error. At most `max_concurrency` requests in flight.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataFormatError, MedvlError, ParameterError

RETRY_STATUSES = frozenset({408, 409, 429})  # plus every status >= 500 (529 = overloaded)


class LLMRequestError(MedvlError):
    """The Anthropic API refused a request or kept failing after all retries."""


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


def check_at_least(name: str, value, minimum, owner: str = "ClaudeClient") -> None:
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
            check_at_least(name, value, minimum, type(self).__name__)
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
