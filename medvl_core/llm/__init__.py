"""medvl_core.llm: the Claude (Anthropic Messages API) and OpenAI clients, with disk cache, retries and costs (no torch)."""

from .client import (
    NO_KEY_MESSAGE,
    ClaudeClient,
    LLMReply,
    LLMRequest,
    LLMRequestError,
    MissingAPIKeyError,
    UsageSummary,
    api_key_available,
    check_model,
)

__all__ = ["NO_KEY_MESSAGE", "ClaudeClient", "LLMReply", "LLMRequest", "LLMRequestError", "MissingAPIKeyError",
           "UsageSummary", "api_key_available", "check_model"]
