"""Every paper's claims.yaml: valid, quoting the paper verbatim, and testable claims recorded by the default run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS, paper_claims

PAPER_TEXTS = os.environ.get("MEDVL_PAPER_TEXTS")  # a folder of <paper id>.txt, the papers as text


def _normalised(text: str) -> str:
    """Whitespace collapsed and hyphenated line breaks joined, so a quote matches across the text's line wraps."""
    return " ".join(re.sub(r"-\s*\n\s*", "-", text).split())


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_claims_yaml_is_valid_and_covers_the_paper(paper_id):
    claims = paper_claims(paper_id)
    assert len(claims) >= 4, "list every claim of the abstract, results and conclusion"
    assert all(len(c.quote.split()) <= 60 for c in claims), "quotes are short"


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_testable_claims_name_metrics_the_default_run_records(paper_id):
    metrics = recorded_metrics(PAPERS[paper_id].notebook)
    for claim in paper_claims(paper_id):
        if not claim.testable:
            continue
        keys = [claim.a] + ([claim.b] if isinstance(claim.b, str) else [])
        missing = [k for k in keys if k not in metrics]
        assert not missing, f"{paper_id} claim {claim.id!r}: {missing} not recorded by the default run"


@pytest.mark.skipif(not PAPER_TEXTS, reason="set MEDVL_PAPER_TEXTS to a folder of <paper id>.txt to check quotes")
@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_every_quote_occurs_verbatim_in_the_paper(paper_id):
    text = _normalised((Path(PAPER_TEXTS) / f"{paper_id}.txt").read_text())
    missing = [c.id for c in paper_claims(paper_id) if c.quote not in text]
    assert not missing, f"{paper_id}: quotes not found verbatim: {missing}"


def test_readme_claims_table_is_generated_from_the_committed_notebooks():
    from medvl_core.compare import claims_summary
    from medvl_core.config import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("<!-- claims:start -->")[1].split("<!-- claims:end -->")[0].strip()
    table = claims_summary({pid: recorded_metrics(p.notebook) for pid, p in PAPERS.items()}).to_markdown(index=False)
    assert block == table, "regenerate the README block with `medvl claims --format md`"
