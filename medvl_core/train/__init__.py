"""medvl_core.train layer."""
