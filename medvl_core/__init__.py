"""medvl_core: shared code behind the medvl executable papers (importing this must stay light)."""

__version__ = "0.1.0"
