"""The small `medvl` commands: list, refresh, compare, claims, summary, check-data and prepare."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from ..io import atomic_write_text
from ..notebook import clean_notebook, notebook_parameters, recorded_metrics
from ..papers import PAPERS, get_paper
from ..runs import read_metrics
from .run import execute


def cmd_list(args) -> int:
    """Print each paper id, title and parameter names."""
    for paper in PAPERS.values():
        names = ", ".join(notebook_parameters(paper.notebook)) if paper.notebook.exists() else "(notebook missing)"
        print(f"{paper.id:34s} {paper.title}\n{'':34s} parameters: {names}")
    return 0


def cmd_refresh(args) -> int:
    """Execute each notebook with its defaults, clean volatile metadata, replace notebooks/<id>.ipynb."""
    for paper_id in args.papers or list(PAPERS):
        paper = get_paper(paper_id)
        out = Path("runs") / "notebooks" / paper.id
        code = execute(paper.id, {}, out, fresh=True)
        if code:
            return code
        clean_notebook(out / f"{paper.id}.ipynb")
        atomic_write_text(paper.notebook, (out / f"{paper.id}.ipynb").read_text())
    return 0


def cmd_compare(args) -> int:
    """Print every paper table with this run's numbers beside the paper's (Markdown with --format md)."""
    from ..compare import coverage, paper_tables, render_text

    paper = get_paper(args.paper)
    run_dir = Path(args.run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise UsageError(f"{run_dir}/metrics.json not found; run `medvl run {paper.id} --out {run_dir}` first")
    metrics = read_metrics(run_dir)
    tables = paper_tables(paper.id, metrics, metrics.get("produced_by") or f"the run in {run_dir}")
    print(render_text(tables, markdown=args.format == "md"))
    counts = coverage(tables)
    print(counts.to_markdown(index=False) if args.format == "md" else counts.to_string(index=False))
    if (run_dir / "claims.json").is_file():
        _print_claims(paper.id, run_dir, args.format == "md")
    return 0


def _print_claims(paper_id: str, run_dir: Path, markdown: bool) -> None:
    """The run's claims table, as the notebook shows it."""
    from ..compare import claims_frame, claims_text, recorded_claims

    frame = claims_frame(paper_id, recorded_claims(paper_id, run_dir))
    scheme = json.loads((run_dir / "claims.json").read_text())["scheme"]
    print("\nThe paper's claims on this run")
    print(frame.to_markdown(index=False) if markdown else claims_text(frame))
    print(f"Scheme: {scheme}.")


def cmd_claims(args) -> int:
    """One row per run folder (default: per committed notebook) with its claims' verdict counts (the README's table)."""
    import pandas as pd

    from ..compare import claims_summary, recorded_claims
    from ..eval.claims import counts

    if not args.run_dirs:
        frame = claims_summary({pid: recorded_metrics(p.notebook) for pid, p in PAPERS.items()})
        print(frame.to_markdown(index=False) if args.format == "md" else frame.to_string(index=False))
        return 0
    rows = []
    for folder in map(Path, args.run_dirs):
        status = folder / "run.json"
        paper_id = json.loads(status.read_text()).get("paper") if status.is_file() else folder.name
        if paper_id not in PAPERS:
            raise UsageError(f"{folder}: cannot tell which paper it ran (no run.json naming one); pass run folders "
                             "written by `medvl run`")
        rows.append({"paper": paper_id, **counts(recorded_claims(paper_id, folder)), "run": str(folder)})
    frame = pd.DataFrame(rows)
    print(frame.to_markdown(index=False) if args.format == "md" else frame.to_string(index=False))
    return 0


def cmd_summary(args) -> int:
    """Table of paper, headline metric, value and runtime for each run folder under `folder`."""
    import pandas as pd

    folder = Path(args.folder)
    rows = []
    for run_json in sorted(folder.glob("*/run.json")):
        status = json.loads(run_json.read_text())
        paper = PAPERS.get(status.get("paper"))
        metrics = read_metrics(run_json.parent) if (run_json.parent / "metrics.json").exists() else {}
        headline = paper.headline if paper else "-"
        rows.append({"paper": status.get("paper"), "status": status.get("status"), "headline metric": headline,
                     "value": metrics.get(headline), "runtime_s": status.get("runtime_s")})
    if not rows:
        raise UsageError(f"no run folders with run.json under {folder}; run `make demo` or `medvl run PAPER --out {folder}/PAPER`")
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_check_data(args) -> int:
    """Exit 0 when every item of the dataset reads, else print the bad items and exit 1."""
    import pandas as pd

    from ..data import open_dataset
    from ..data.check import check_dataset

    options = {"views": args.views} if args.views else {}
    dataset = open_dataset(args.dataset, args.root, split=args.split, **options)
    bad = check_dataset(dataset, args.workers, progress=not args.quiet)
    if bad.empty:
        print(f"{args.dataset} ({args.split}): {len(dataset)} items, no bad items")
        return 0
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 120, "display.width", 200):
        print(bad.to_string(index=False))
    counts = ", ".join(f"{n} {problem}" for problem, n in bad["problem"].value_counts().items())
    print(f"{args.dataset} ({args.split}): {bad['index'].nunique()} bad items of {len(dataset)} ({counts})")
    return 1


def cmd_prepare(args) -> int:
    """Write the prepared copy of a dataset (resuming an unfinished one) and print where it is."""
    from ..data.prepare import prepare_dataset
    from ..data.prepared import read_manifest

    folder = prepare_dataset(args.dataset, args.root, size=args.size, views=args.views, workers=args.workers,
                             force=args.force, bad_items=args.bad_items, progress=not args.quiet)
    manifest = read_manifest(folder)
    print(f"{args.dataset}: prepared copy {folder} ({manifest['size']} px, {manifest['n_images']} images, "
          f"{manifest['n_bad']} unreadable)")
    return 0
