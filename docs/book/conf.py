"""Sphinx configuration of the course site (built by docs/book/build.py; `make book`)."""

import re

project = "medvl: five medical vision-language papers, executed"
author = "medvl"
copyright = "medvl contributors"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["**/.ipynb_checkpoints"]

# The committed notebooks are shown with their outputs; nothing is executed at build time.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_dmath_allow_digits = False  # "$15 / $75" in a README stays text
myst_heading_anchors = 4
myst_update_mathjax = False
suppress_warnings = ["mystnb.unknown_mime_type"]

# Importing medvl_core needs no network; type hints are left out of signatures (the docstrings say what they are).
autodoc_typehints = "none"
autodoc_member_order = "bysource"

nitpicky = True

# MathJax 3 (SVG output: no web fonts) from the sphinx-mathjax-offline package, copied into _static/mathjax by
# build.py: no CDN. Only Sphinx's math elements and notebook outputs are typeset.
mathjax_path = "mathjax/tex-svg.js"
mathjax3_config = {"options": {"ignoreHtmlClass": "tex2jax_ignore|mathjax_ignore|document",
                               "processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}

html_theme = "sphinx_book_theme"
html_title = "medvl course"
html_context = {"default_mode": "auto"}  # light or dark as the reader's system prefers
html_theme_options = {"home_page_in_toc": True, "show_navbar_depth": 1, "use_download_button": False,
                      "use_fullscreen_button": False}
html_show_sourcelink = False
html_copy_source = False

# medvl_core's docstrings are plain text (`name` for code, "- " for list items), not reStructuredText: they are
# shown as written, with `name` as code and every other markup character escaped.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True, "ignore-module-all": True}

_CODE = re.compile(r"(?::[a-z]+:)?``([^`]+?)``|(?::[a-z]+:)?`([^`\n]+)`")
_OPENS, _CLOSES = " -:/'\"<([{", " -.,:;!?\\/'\")]}>"
_SPECIAL = re.compile(r"([\\*|_`\[\]<>])")


def _plain_line(text: str) -> str:
    """One line of plain text as reStructuredText: `code` spans as literals, other markup escaped."""
    out, last = [], 0
    for m in _CODE.finditer(text):
        out.append(_SPECIAL.sub(r"\\\1", text[last:m.start()]))
        code = (m.group(1) or m.group(2)).strip() or "` `"
        before = "\\ " if m.start() and text[m.start() - 1] not in _OPENS else ""
        after = "\\ " if m.end() < len(text) and text[m.end()] not in _CLOSES else ""
        out.append(f"{before}``{code}``{after}")
        last = m.end()
    out.append(_SPECIAL.sub(r"\\\1", text[last:]))
    line = "".join(out)
    return line[:-2] + ":\\:" if line.endswith("::") else line


def plain_docstring(lines: list[str]) -> list[str]:
    """A plain-text docstring as reStructuredText: paragraphs and '- ' lists kept, indentation flattened."""
    out, in_item = [], False
    for raw in lines:
        line = raw.strip()
        if not line:
            out.append("")
            in_item = False
        elif line.startswith(("- ", "* ")):
            if out and out[-1] and not in_item:
                out.append("")
            out.append("- " + _plain_line(line[2:]))
            in_item = True
        else:
            out.append(("  " if in_item else "") + _plain_line(line))
    return out


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = plain_docstring(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
