"""The shared metrics every paper calls: AUROC (`roc`), confusion-count metrics (`confusion`), thresholded
multi-label metrics (`thresholds`), class-index confusion matrices (`multiclass`), label and constant-guess
accuracy (`label_accuracy`), bootstrap CIs and paired tests (`bootstrap`), silhouettes of bootstrap draws
(`silhouette`); input checks and ensembles (`arrays`).

Labels are arrays with NaN meaning "not stated"; such entries are dropped per label. Scores are
probabilities (or any monotone score).
"""

from .arrays import as_float_array, column_names, ensemble, label_score_matrices
from .bootstrap import (
    METRICS,
    LabelStatistic,
    MeanStatistic,
    ResampleChunk,
    auroc_ci,
    bootstrap_ci,
    paired_bootstrap_pvalue,
    percentile_interval,
    resample_chunks,
)
from .confusion import (
    cohen_kappa,
    column_f1,
    confusion_counts,
    confusion_scores,
    error_rates,
    f1,
    mcc,
    precision,
    rate,
    recall,
)
from .label_accuracy import accuracy, constant_accuracy, majority_accuracy
from .multiclass import (
    argmax_onehot,
    classification_summary,
    confusion_matrix,
    single_label_confusion,
)
from .roc import AucIndex, auroc, auroc_per_label, macro_auroc, micro_auroc, roc_curve_points
from .silhouette import SilhouetteStatistic, distance_matrix, silhouettes
from .thresholds import binary_metrics, choose_thresholds

__all__ = [
    "METRICS", "AucIndex", "LabelStatistic", "MeanStatistic", "ResampleChunk", "SilhouetteStatistic", "accuracy", "argmax_onehot",
    "as_float_array", "auroc", "auroc_ci", "auroc_per_label", "binary_metrics", "bootstrap_ci",
    "choose_thresholds", "classification_summary", "cohen_kappa", "column_f1", "column_names", "confusion_counts",
    "confusion_matrix", "confusion_scores", "constant_accuracy", "distance_matrix", "ensemble", "error_rates", "f1",
    "label_score_matrices", "macro_auroc", "majority_accuracy", "mcc", "micro_auroc",
    "paired_bootstrap_pvalue", "percentile_interval", "precision", "rate", "recall", "resample_chunks",
    "roc_curve_points", "silhouettes", "single_label_confusion",
]
