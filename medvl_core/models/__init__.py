"""medvl_core.models layer."""
