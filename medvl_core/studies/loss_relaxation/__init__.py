"""Jang et al. (loss relaxation): contrastive fine-tuning arms, zero-shot evaluation and the paper's ablation tables.

Two profiles share one code path (`eval.contrastive_fit`). `trainable="projections"` (the CPU demo) freezes both
pretrained towers, caches their pooled outputs once and trains the projections and temperature; each epoch a
report's n sampled sentences are joined into one text and encoded by the frozen text tower (`models.cache.
EpochTextFeatures`, distinct texts encoded once and cached); SLIP and UniCLIP use cached augmented views.
`trainable="last"|"all"` (the paper's protocol, GPU) fine-tunes the towers on pixels and token ids with
the paper's augmentations and per-epoch sentence sampling (`data.pairs.ImageTextPairs`). Everything is seeded.

Modules: `prepare` (the study and the paper's other zero-shot test sets), `arms` (training every arm and seed,
Fig. 4 sweeps), `tables` (Tables 1-7 as tables and metrics), `evidence` (per claim of claims.yaml, its evidence
for the claims engine `eval.claims`), `figures` (Figs. 2 and 5 data). The notebook reaches all of it through
this package.
"""

from ...eval.contrastive_fit import FRAMEWORK_NAMES, ablation_variants
from .arms import Sweep, arm_name, run_ablation, sentences_sweep, threshold_sweep
from .evidence import PAPER_CHOICE, claim_evidence
from .figures import curves_without_and_with, sampled_example
from .prepare import prepare_study, world_options
from .tables import (
    ablation_table,
    alignment_table,
    auroc_columns,
    ensemble_ci_table,
    label_sharing,
    label_sharing_table,
    paper_label_sharing,
    paper_metrics,
    positives_table,
    report_statistics,
    sentences_table,
    zero_shot_set_table,
)

__all__ = ["FRAMEWORK_NAMES", "PAPER_CHOICE", "Sweep", "ablation_table", "ablation_variants", "alignment_table",
           "arm_name", "auroc_columns", "claim_evidence", "curves_without_and_with", "ensemble_ci_table",
           "label_sharing", "label_sharing_table", "paper_label_sharing", "paper_metrics", "positives_table",
           "prepare_study", "report_statistics", "run_ablation", "world_options",
           "sampled_example", "sentences_sweep", "sentences_table", "threshold_sweep", "zero_shot_set_table"]
