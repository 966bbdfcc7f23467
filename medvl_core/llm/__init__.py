"""medvl_core.llm: Claude (Anthropic Messages API) client and the MEDIQA-M3G two-call pipeline (no torch)."""

from .client import (
    NO_KEY_MESSAGE,
    ClaudeClient,
    LLMReply,
    LLMRequest,
    LLMRequestError,
    MissingAPIKeyError,
    UsageSummary,
    api_key_available,
)
from .m3g import SCENARIOS, M3GCase, M3GTrace, answer_cases, case_from_item, run_scenario

__all__ = ["NO_KEY_MESSAGE", "SCENARIOS", "ClaudeClient", "LLMReply", "LLMRequest", "LLMRequestError", "M3GCase",
           "M3GTrace", "MissingAPIKeyError", "UsageSummary", "answer_cases", "api_key_available", "case_from_item",
           "run_scenario"]
