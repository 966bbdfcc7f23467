"""medvl_core.llm layer."""
