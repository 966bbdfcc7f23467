"""MEEMS (Cooper & Vainio): what the notebook calls, from the modules of this package.

Pipeline: a frozen CNN gives every image a feature grid (cached on disk, `data`); a Show-Attend-Tell
captioner learns the training reports' first sentences (`captions`); each image's MEEMS input is its
pooled image features and the captioner's hidden state after a greedy caption; the embedder + MLP
classifier (`networks`) and the image-only baseline (same heads on image features alone, or a CNN
fine-tuned on pixels, `pixels`) are trained for the binary (No Finding vs Finding) and 14-label tasks
(`heads`). Evaluation (`tables`, `paper_metrics`, on the shared `eval.metrics`): the paper's metrics (AUC as
the mean of the binarised label matrix's column AUCs plus micro AUC on its flattening, F1 and confusion at argmax),
validation-threshold extras, FNR/FPR, trivial references, minority classes, and the SynthCXR rare stratum
(demo: subpulmonic pleural effusion) against the common one with bootstrap CIs; the evidence the paper's
claims are judged on, from the per-image predictions and embeddings of several head seeds (`evidence`); the
paper's figures (`figures`, `projection`).
"""

from .captions import (
    attention_words,
    caption_diversity,
    caption_example_text,
    caption_examples,
    caption_scores,
    distinct_label_examples,
    first_with_label,
    fit_captioner,
    generate_captions,
    rare_words,
    stratum_word_use,
    word_rates,
)
from .data import MeemsData, MeemsSplit, prepare_meems_data
from .evidence import claim_evidence, evidence_metrics, evidence_table
from .figures import (
    attention_figure,
    caption_training_figure,
    confusion_pair,
    label_histogram,
    pca_figure,
    pca_per_class_figure,
    primary_label,
    roc_pair,
)
from .heads import HeadInputs, HeadsResult, embeddings, fit_head_seeds, fit_heads, head_inputs
from .networks import MeemsEmbedder
from .paper_metrics import binarised
from .projection import pca
from .tables import (
    auc_table,
    fnr_fpr_table,
    minority_summary,
    paper_table,
    published_results,
    rare_stratum_table,
    stratum_gaps,
    summary_metrics,
    thresholds_by_model,
    training_summary,
)
from .tasks import MODELS, TASKS, task_targets

__all__ = [
    "MODELS", "TASKS", "HeadInputs", "HeadsResult", "MeemsData", "MeemsEmbedder", "MeemsSplit", "attention_figure",
    "attention_words", "auc_table", "binarised", "caption_diversity", "caption_example_text", "caption_examples",
    "caption_scores", "caption_training_figure", "claim_evidence", "confusion_pair",
    "distinct_label_examples", "embeddings", "evidence_metrics", "evidence_table", "first_with_label", "fit_captioner", "fit_head_seeds", "fit_heads",
    "fnr_fpr_table", "generate_captions", "head_inputs", "label_histogram", "minority_summary", "paper_table", "pca",
    "pca_figure", "pca_per_class_figure", "prepare_meems_data", "primary_label", "published_results", "rare_stratum_table", "rare_words", "roc_pair",
    "stratum_gaps", "stratum_word_use", "summary_metrics", "task_targets", "thresholds_by_model", "training_summary", "word_rates",
]
