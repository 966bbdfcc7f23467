"""The five papers: ids, titles, headline metrics, and their files in the repository."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import notebooks_dir, papers_dir
from .errors import MedvlError


@dataclass(frozen=True)
class Paper:
    """One executable paper: id (= notebook stem), short title and the metric `medvl` summarises."""

    id: str
    title: str
    headline: str

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / f"{self.id}.ipynb"

    @property
    def folder(self) -> Path:
        return papers_dir() / self.id

    def params_file(self, name: str) -> Path:
        """papers/<id>/params/<name>.yaml (name may include .yaml)."""
        return self.folder / "params" / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")


PAPERS: dict[str, Paper] = {
    p.id: p
    for p in (
        Paper("m3g_answer_generation", "WangLab at MEDIQA-M3G 2024: dermatology answer generation", "knn_top1_accuracy"),
        Paper("perturbed_report_discrimination", "Zhong, Sun, Batmanghelich: perturbed report discrimination",
              "adjective_antonym_coverage"),
        Paper("meems", "Cooper & Vainio: MEEMS multimodal embeddings", "captioner_vocab_size"),
        Paper("loss_relaxation", "Jang et al. 2024: loss relaxation for zero-shot CXR classification",
              "zero_shot_macro_auroc_both"),
        Paper("vlm_feature_probing", "Takeda et al.: VLM feature probing", "svc_accuracy_pretrained"),
    )
}


def get_paper(paper_id: str) -> Paper:
    """The paper with this id, or a one-line error listing the valid ids."""
    if paper_id in PAPERS:
        return PAPERS[paper_id]
    close = difflib.get_close_matches(paper_id, PAPERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise MedvlError(f"unknown paper {paper_id!r}{hint}; choose one of: {', '.join(PAPERS)}")


def published(paper_id: str) -> dict:
    """The paper's own numbers from papers/<id>/published.yaml ({} when the file is absent)."""
    path = get_paper(paper_id).folder / "published.yaml"
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MedvlError(f"{path} is not valid YAML: {exc}; fix the file") from exc
