"""Takeda et al. (poster #IF250081): the poster's table orchestration, the linear-probe protocol of
`eval.probing` run over every (model, dataset) feature matrix, the confounder and subclass probes, and the
small medical image-text model (a CNN trained on SynthCXR pixels) the demo probes beside the non-medical one.

Modules: `poster` (the poster's dataset columns), `probes` (linear, confounder and subclass probes), `tables`
(the poster's layout, metrics, summary), `medical_vlm` (the demo's medical model), `evidence` (the run's
evidence for the poster's claims, judged by `compare.show_claims`). The notebook reaches all of it through this
package.
"""

from .evidence import claim_evidence, explained_variance
from .medical_vlm import MEDICAL_VLM, SMALL_SYNTH_CXR, medical_vlm_label, train_medical_vlm
from .poster import POSTER_COLUMNS, POSTER_N, dataset_table, poster_column, slug
from .probes import (
                     CONFOUNDER_COLUMNS,
                     confounder_results,
                     factor_silhouettes,
                     fitted_probes,
                     pixel_features,
                     probe_results,
                     subclass_results,
)
from .tables import model_summary, per_dataset_metrics, probe_table

__all__ = ["CONFOUNDER_COLUMNS", "MEDICAL_VLM", "POSTER_COLUMNS", "POSTER_N", "SMALL_SYNTH_CXR", "claim_evidence",
           "confounder_results", "dataset_table", "explained_variance", "factor_silhouettes", "fitted_probes",
           "medical_vlm_label", "model_summary", "pixel_features",
           "per_dataset_metrics", "poster_column", "probe_results", "probe_table", "slug", "subclass_results",
           "train_medical_vlm"]
