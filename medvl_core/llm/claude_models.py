"""Claude models: list prices and cost per token, retired models, and the checks that refuse a model before any call.

- Cost: `PRICES_PER_MTOK` (USD per million input/output tokens, matched by model-name prefix); an unknown model is
  priced at the highest listed price (an upper bound) and `price_known` is False (`model_price`).
- Models: a retired model (RETIRED_MODELS, or past the end-of-life date the installed SDK lists) is refused before
  any call (`check_model`), with one error naming `-p claude_model` and the paper's model; `check_known_model`
  refuses a name neither the SDK nor the price table knows (the dry run's check).
"""

from __future__ import annotations

import datetime
import re

from ..errors import ParameterError

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
                                                 "list price in medvl_core.llm.claude_models.PRICES_PER_MTOK"))

