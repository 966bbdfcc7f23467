"""WangLab at MEDIQA-M3G 2024 (Xie et al.): what `notebooks/m3g_answer_generation.ipynb` calls, in one package.

Two solutions of the paper, each with offline stand-ins:

- the Claude pipeline (Table 1): the paper's Appendix A prompts (`prompts`, quoted in
  papers/m3g_answer_generation/prompts.yaml), the calls and answer parsing of its four scenarios (`claude`), the dry
  run with requests, tokens and cost (`dry_run`) and the arm on a prepared split (`claude_arm`);
- the CLIP-kNN solution (Tables 2-5): a disease label per training case from its responses (`derm_labels` by rules,
  or `llm_labels`, the paper's LLM step), the splits with cached tower features (`prepare`), label-CLIP training with
  Table 5's recipe (`clip`), the k=5 kNN label vote over a case's images (`knn`), the answer post-processing
  ("It is <label>.", query word-matching: `derm_labels.answer_text`) and deltaBLEU rows (`scores`), the tables
  (`tables`), the tables over several training seeds and Sec. 6's instability (`seeds`), the paper's claims about
  deltaBLEU itself (`metric_checks`), Fig. S2 and the embedding clusters (`embedding_maps`) and the run's evidence for the paper's claims
  (`evidence`; the claims are papers/m3g_answer_generation/claims.yaml, judged by `compare.show_claims`).

The headline "dBLEU" is the official competition scorer's deltaBLEU; `official_scorer` scores a submission file as
that scorer does.
"""

from .claude import check_claude_run
from .claude_arm import (
    CLAUDE_METRICS,
    TABLE1_POSTPROCESSING,
    claude_arm,
    claude_postprocessing_table,
    claude_rows,
    claude_table,
)
from .clip import fit_label_clip, make_augment
from .embedding_maps import closeness, label_pca, modality_pca, similar_pairs
from .evidence import (
    case_means,
    claim_evidence,
    claude_answer_sets,
    clip_answer_sets,
    clip_best,
    label_change,
    per_case_values,
    seed_answer_sets,
    seed_per_case,
    wrong_labels,
)
from .knn import KnnSetting, neighbour_disagreement, predict_labels, table2_setting, table3_settings
from .metric_checks import metric_check_answers, metric_check_table
from .official_scorer import score_submission
from .prepare import (
    built_dictionary_accuracy,
    choose_dictionary,
    label_client,
    label_extraction_table,
    prepare_m3g,
    truth_labels,
)
from .scores import (
    POSTPROCESSING,
    answers,
    best_row,
    control_rows,
    dbleu_metrics,
    knn_metric_keys,
    length_metrics,
    post_metric_keys,
)
from .seeds import instability_table, label_disagreement, mean_sd_view, mean_table, sd_table, seed_accuracy, seed_runs
from .tables import (
    REFERENCE_METRICS,
    batch_size_sweep,
    example_table,
    knn_table,
    next_best_team,
    postprocessing_table,
    reference_table,
    scale_table,
    table4_panels,
)

__all__ = ["CLAUDE_METRICS", "POSTPROCESSING", "REFERENCE_METRICS", "TABLE1_POSTPROCESSING", "KnnSetting",
           "claude_rows", "instability_table", "label_disagreement", "mean_sd_view", "mean_table",
           "metric_check_answers", "metric_check_table", "scale_table", "sd_table", "seed_answer_sets",
           "seed_accuracy", "seed_per_case", "seed_runs", "answers", "batch_size_sweep",
           "best_row", "built_dictionary_accuracy", "case_means", "check_claude_run", "choose_dictionary",
           "claim_evidence", "claude_answer_sets", "claude_arm", "claude_postprocessing_table", "claude_table",
           "clip_answer_sets", "clip_best", "closeness", "control_rows", "dbleu_metrics", "example_table",
           "fit_label_clip", "knn_metric_keys", "knn_table", "label_change", "label_client", "label_extraction_table",
           "label_pca", "length_metrics", "make_augment", "modality_pca", "neighbour_disagreement", "next_best_team",
           "per_case_values", "post_metric_keys", "postprocessing_table", "predict_labels", "prepare_m3g",
           "reference_table", "score_submission", "similar_pairs", "table2_setting", "table3_settings", "table4_panels",
           "truth_labels", "wrong_labels"]
