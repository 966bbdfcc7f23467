"""medvl_core.eval layer."""
