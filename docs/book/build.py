"""Build the course site (`make book`): the five papers, the verdict guide, the architecture and the API reference.

Sphinx + MyST-NB over copies of the committed, executed notebooks (never re-executed), with warnings as errors,
MathJax 3 served from a local copy (the `sphinx-mathjax-offline` package), and a final check that no page loads a
script, stylesheet or image from outside the site. Sources are laid out in `_build/book/src`, the site lands in
`_build/book/html`. `--if-stale` skips the build when no input changed since the last successful one.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "docs" / "book"
OUT = ROOT / "_build" / "book"
SRC, HTML, STAMP = OUT / "src", OUT / "html", OUT / "stamp.json"
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class BookError(RuntimeError):
    """The site could not be built or breaks a rule (a warning, an outside resource)."""


def papers() -> list:
    """The registered papers (medvl_core.papers.PAPERS), in the registry's order."""
    sys.path.insert(0, str(ROOT))
    from medvl_core.papers import PAPERS

    return list(PAPERS.values()) if isinstance(PAPERS, dict) else list(PAPERS)


def inputs() -> list[Path]:
    """Every file the site is built from (its digest decides whether a build is stale)."""
    files = [*BOOK.glob("*"), ROOT / "docs" / "architecture.md", *ROOT.glob("notebooks/*.ipynb"),
             *ROOT.glob("papers/*/README.md"), *ROOT.glob("medvl_core/**/*.py"), ROOT / "requirements.lock"]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)


def digest() -> str:
    """SHA-256 over the inputs' paths and contents."""
    h = hashlib.sha256()
    for path in inputs():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def is_fresh() -> bool:
    """Whether the site in _build/book/html was built from the current inputs."""
    try:
        return json.loads(STAMP.read_text())["digest"] == digest() and (HTML / "index.html").is_file()
    except (OSError, ValueError, KeyError):
        return False


def rewrite_links(text: str, source: Path, site_targets: dict[Path, str]) -> str:
    """Markdown links to repository files: to the site page when the file is on the site, else plain text."""

    def one(m: re.Match) -> str:
        bang, label, target = m.groups()
        if bang or re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve()
        if resolved in site_targets:
            return f"[{label}]({site_targets[resolved]}{'#' + anchor if anchor else ''})"
        rel = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else path
        return label if rel in label else f"{label} (`{rel}` in the repository)"

    return LINK.sub(one, text)


def site_targets_for(page_dir: str, pages: dict[Path, str]) -> dict[Path, str]:
    """The site pages as links relative to a page in `page_dir` (a folder of the source tree)."""
    return {path: os.path.relpath(page, page_dir or ".") for path, page in pages.items()}


def called_names(notebook: dict) -> list[str]:
    """The medvl_core objects a notebook's code calls: imported names and `alias.attr` uses, fully qualified."""
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medvl_core"):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("medvl_core"):
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or a.name.split(".")[0]
    names = set(aliases.values())
    for node in ast.walk(tree):
        dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted and dotted.split(".")[0] in aliases:
            head, _, rest = dotted.partition(".")
            names.add(f"{aliases[head]}.{rest}")
    return sorted(names)


def _dotted(node: ast.AST) -> str | None:
    """'a.b.c' for an attribute chain on a plain name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def resolve(name: str, documented: set[str]) -> tuple[str, str] | None:
    """(role, target) of the API page entry for a dotted name, or None when it is not a documented object."""
    import importlib
    import inspect

    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        break
    else:
        return None
    if inspect.ismodule(obj):
        return ("mod", obj.__name__) if obj.__name__ in documented else None
    module, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (module in documented and qual and "<" not in qual and not any(p.startswith("_") for p in qual.split("."))):
        return None
    if "." in qual and not _own_doc(obj):  # an undocumented method: autodoc leaves it out, link its class
        return resolve(f"{module}.{qual.rpartition('.')[0]}", documented)
    role = "class" if inspect.isclass(obj) else "func" if callable(obj) else "data"
    return role, f"{module}.{qual}"


def _own_doc(obj) -> bool:
    """Whether `obj` has a docstring of its own (autodoc documents only those members)."""
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return bool(doc and doc.strip())


def modules() -> list[str]:
    """Every module of medvl_core, dotted, packages before their modules."""
    found = []
    for path in sorted((ROOT / "medvl_core").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        if not any(p.startswith("_") for p in parts) and "__pycache__" not in rel.parts:
            found.append(".".join(parts))
    return sorted(set(found))


def api_groups(mods: list[str]) -> dict[str, list[str]]:
    """The API reference's pages: one per top-level module or package of medvl_core, its submodules with it."""
    groups: dict[str, list[str]] = {}
    for m in mods:
        if m == "medvl_core":
            continue
        groups.setdefault(m.split(".")[1], []).append(m)
    return groups


def write_api(groups: dict[str, list[str]]) -> None:
    """api/index.md and one page per group, each module documented with automodule."""
    api = SRC / "api"
    api.mkdir(parents=True)
    lines = ["# API reference", "", "Generated from the docstrings of `medvl_core`, one page per module or package "
             "(see [the architecture](../architecture.md) for the layers).", "",
             "```{toctree}", ":maxdepth: 1", "", *groups, "```", ""]
    (api / "index.md").write_text("\n".join(lines))
    for group, mods in groups.items():
        body = [f"# `medvl_core.{group}`", ""]
        for m in mods:
            body += ["```{eval-rst}", f".. automodule:: {m}", "   :members:", "```", ""]
        (api / f"{group}.md").write_text("\n".join(body))


def write_calls(paper, notebook: dict, documented: set[str]) -> None:
    """papers/<id>/calls.md: the medvl_core functions and classes the paper's notebook calls, linked to the API."""
    rows = [(n, resolve(n, documented)) for n in called_names(notebook)]
    linked = sorted({target: role for _, r in rows if r for role, target in [r]}.items())
    lines = ["# What the notebook calls", "",
             f"Every `medvl_core` function, class and module the `{paper.id}` notebook uses (imported names and "
             "`study.`-style attribute calls found in its code cells), linked to its entry in the API reference.", ""]
    lines += [f"- {{py:{role}}}`{target}`" for target, role in linked]
    (SRC / "papers" / paper.id / "calls.md").write_text("\n".join(lines) + "\n")


def write_paper(paper, pages: dict[Path, str], documented: set[str]) -> None:
    """papers/<id>/: the README as introduction, the executed notebook (links rewritten), the calls page."""
    folder = SRC / "papers" / paper.id
    folder.mkdir(parents=True)
    readme = ROOT / "papers" / paper.id / "README.md"
    targets = site_targets_for(f"papers/{paper.id}", pages)
    (folder / "index.md").write_text(rewrite_links(readme.read_text(), readme, targets))
    source = ROOT / "notebooks" / f"{paper.id}.ipynb"
    notebook = json.loads(source.read_text())
    for n, cell in enumerate(notebook["cells"]):
        cell.setdefault("id", f"cell-{n}")  # nbformat 4.5 wants one; a notebook saved by an old client may lack it
        if cell["cell_type"] == "markdown":
            cell["source"] = rewrite_links("".join(cell["source"]), source, targets)
    (folder / "notebook.ipynb").write_text(json.dumps(notebook))
    write_calls(paper, notebook, documented)


def write_index(all_papers: list) -> None:
    """index.md: the course's front page (docs/book/index.md) and one toctree part per paper."""
    text = (BOOK / "index.md").read_text().rstrip() + "\n\n"
    text += "```{toctree}\n:caption: Start here\n:maxdepth: 1\n\nverdicts\narchitecture\n```\n\n"
    for n, paper in enumerate(all_papers, 1):
        text += (f"```{{toctree}}\n:caption: Part {n}: {paper.title}\n:maxdepth: 1\n\n"
                 f"Introduction <papers/{paper.id}/index>\nThe notebook <papers/{paper.id}/notebook>\n"
                 f"What it calls <papers/{paper.id}/calls>\n```\n\n")
    text += "```{toctree}\n:caption: Reference\n:maxdepth: 1\n\napi/index\n```\n"
    (SRC / "index.md").write_text(text)


def lay_out_sources() -> int:
    """Fill _build/book/src from the repository; returns the number of source pages."""
    shutil.rmtree(SRC, ignore_errors=True)
    SRC.mkdir(parents=True)
    all_papers = papers()
    pages = {(ROOT / "papers" / p.id / "README.md").resolve(): f"papers/{p.id}/index.md" for p in all_papers}
    pages |= {(ROOT / "notebooks" / f"{p.id}.ipynb").resolve(): f"papers/{p.id}/notebook.ipynb" for p in all_papers}
    pages[(ROOT / "docs" / "architecture.md").resolve()] = "architecture.md"
    arch = ROOT / "docs" / "architecture.md"
    (SRC / "architecture.md").write_text(rewrite_links(arch.read_text(), arch, site_targets_for("", pages)))
    (SRC / "verdicts.md").write_text((BOOK / "verdicts.md").read_text())
    mods = modules()
    groups = api_groups(mods)
    write_api(groups)
    for paper in all_papers:
        write_paper(paper, pages, set(mods))
    write_index(all_papers)
    return sum(1 for _ in SRC.rglob("*.md")) + sum(1 for _ in SRC.rglob("*.ipynb"))


def sphinx_build() -> None:
    """sphinx-build -W (every warning an error) into _build/book/html, one process, no notebook execution."""
    shutil.rmtree(HTML, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-j", "1", "-E",
           "-c", str(BOOK), "-d", str(OUT / "doctrees"), str(SRC), str(HTML)]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BookError(f"sphinx-build failed (exit {done.returncode}):\n{done.stderr.strip() or done.stdout.strip()}")


def copy_mathjax() -> None:
    """MathJax 3 from the sphinx-mathjax-offline package into _static/mathjax."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise BookError("the sphinx-mathjax-offline package is missing (make install)")
    static = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    shutil.copytree(static, HTML / "_static" / "mathjax", dirs_exist_ok=True)


class _Sources(HTMLParser):
    """Collects every URL a page loads by itself: script/img/iframe/source src, link href (not <a>)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        if tag == "object" and a.get("data"):
            self.urls.append(a["data"])


def outside_resources(html_dir: Path = HTML) -> list[str]:
    """'page: url' for every resource of a page or stylesheet that is not on this site or localhost."""
    bad = []
    for page in sorted(html_dir.rglob("*.html")):
        parser = _Sources()
        parser.feed(page.read_text(errors="replace"))
        bad += [f"{page.relative_to(html_dir)}: {u}" for u in parser.urls if _is_outside(u)]
    for css in sorted(html_dir.rglob("*.css")):
        for u in re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)", css.read_text(errors="replace")):
            if _is_outside(u):
                bad.append(f"{css.relative_to(html_dir)}: {u}")
    return bad


def _is_outside(url: str) -> bool:
    """An absolute http(s) or protocol-relative URL whose host is not this machine."""
    m = re.match(r"^(?:https?:)?//([^/:?#]+|\[[^\]]+\])", url.strip(), re.I)
    return bool(m) and m.group(1).lower() not in LOCAL_HOSTS


def build(if_stale: bool = False) -> dict:
    """Build the site (or keep it when `if_stale` and nothing changed); returns what was built."""
    from medvl_core.io import exclusive_lock

    with exclusive_lock(OUT.parent / "book.lock"):
        if if_stale and is_fresh():
            return {**json.loads(STAMP.read_text()), "rebuilt": False}
        start = time.monotonic()
        STAMP.unlink(missing_ok=True)
        sources = lay_out_sources()
        laid_out = time.monotonic()
        sphinx_build()
        copy_mathjax()
        bad = outside_resources()
        if bad:
            raise BookError("pages load resources from outside the site:\n" + "\n".join(bad))
        pages = sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html") if "_static" not in p.parts)
        record = {"digest": digest(), "sources": sources, "pages": pages, "seconds": round(time.monotonic() - start, 1),
                  "sphinx_seconds": round(time.monotonic() - laid_out, 1)}
        STAMP.write_text(json.dumps(record, indent=1))
        return {**record, "rebuilt": True}


def main(argv: list[str] | None = None) -> int:
    """Command line: build, print the site's path and page count; exit 1 on any warning or outside resource."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--if-stale", action="store_true", help="keep the site when no input changed")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try:
        record = build(args.if_stale)
    except BookError as e:
        print(f"make book: {e}", file=sys.stderr)
        return 1
    state = "built" if record["rebuilt"] else "up to date"
    print(f"book {state}: {HTML.relative_to(ROOT)}/index.html ({len(record['pages'])} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
