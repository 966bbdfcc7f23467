"""Zhong et al.'s study: four pre-training variants from one code path, and perturbed report discrimination.

Variants (loss weights): ConVIRT = global only; GLoRIA = global + alpha local; ours w/o local = global +
beta perturbation; ours = all three. The CPU demo trains small adapters over cached frozen features of
pretrained towers (image grids; the text tower's contextual token features, computed once per report and per
perturbation: `models.multiscale.build_multiscale(cached=True)`); the paper's profile trains both towers on
pixels and token ids. Each training report brings its perturbations (all nine kinds by default, K = 9; a kind
that cannot change a report is dropped for that report and counted); perturbations are cached on disk.

Discrimination (Table IV, zero-shot): for each held-out image, the candidates are its original report and
each perturbation that changes it; the model picks the candidate with the highest cosine of GLOBAL image and
text embeddings (image-text, as the paper states; the reference code compared text with text). Ties share the
credit (k candidates tied at the top, the original among them: 1/k).

Modules: `prepare` (splits and perturbations), `arms` (variants, training pairs, training), `discrimination`
(Table IV), `tables` (Tables I-III and the recorded metrics), `seeds` (reruns over seeds, per-item results kept),
`evidence` (the paper's claims as evidence for the claims engine, `eval.claims`), `figures`. The notebook reaches
all of it through this package; the bootstrap CI and the constant-guess accuracies are the shared `eval.metrics`.
"""

from .arms import VARIANTS, local_gamma3, loss_history, metric_name, train_variants, use_threads, variant_weights
from .discrimination import discrimination_table, table_iv, variant_agreement
from .evidence import claim_evidence
from .figures import loss_terms_figure
from .prepare import dataset_options, prepare_perturbed_study
from .seeds import seed_metrics, seed_results, seed_summary
from .tables import accuracy_thresholds, nli_table, study_metrics, table_i, table_ii, table_ii_results

__all__ = ["VARIANTS", "accuracy_thresholds", "claim_evidence", "dataset_options", "discrimination_table", "local_gamma3", "loss_history",
           "loss_terms_figure", "metric_name", "nli_table", "prepare_perturbed_study", "seed_metrics",
           "seed_results", "seed_summary", "study_metrics", "table_i", "table_ii", "table_ii_results", "table_iv", "train_variants",
           "use_threads", "variant_agreement", "variant_weights"]
