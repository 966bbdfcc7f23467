"""medvl_core.llm: Claude (Anthropic Messages API) client and the MEDIQA-M3G pipeline with the paper's prompts (no torch)."""

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
from .m3g import (
    SCENARIOS,
    DryRun,
    M3GCase,
    M3GTrace,
    answer_cases,
    case_from_item,
    check_claude_run,
    dry_run,
    load_prompts,
    run_scenario,
)

__all__ = ["NO_KEY_MESSAGE", "SCENARIOS", "ClaudeClient", "DryRun", "LLMReply", "LLMRequest", "LLMRequestError",
           "M3GCase", "M3GTrace", "MissingAPIKeyError", "UsageSummary", "answer_cases", "api_key_available",
           "case_from_item", "check_claude_run", "check_model", "dry_run", "load_prompts", "run_scenario"]
