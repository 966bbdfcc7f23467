"""medvl_core.losses layer."""
