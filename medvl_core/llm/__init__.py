"""medvl_core.llm: the Claude (Anthropic Messages API) and OpenAI clients, with disk cache, retries and costs (no torch)."""

from .base import LLMReply, LLMRequestError, UsageSummary
from .claude_models import check_model
from .client import NO_KEY_MESSAGE, ClaudeClient, LLMRequest, MissingAPIKeyError, api_key_available

__all__ = ["NO_KEY_MESSAGE", "ClaudeClient", "LLMReply", "LLMRequest", "LLMRequestError", "MissingAPIKeyError",
           "UsageSummary", "api_key_available", "check_model"]
