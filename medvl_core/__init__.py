"""medvl_core: shared code behind the medvl executable papers (importing this must stay light)."""

__version__ = "0.1.0"

PAPERS = (
    "m3g_answer_generation",
    "perturbed_report_discrimination",
    "meems",
    "loss_relaxation",
    "vlm_feature_probing",
)
