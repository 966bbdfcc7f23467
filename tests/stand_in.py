"""A stand-in paper notebook (a parameters cell and code cells) for CLI tests, found through $MEDVL_NOTEBOOKS."""

import nbformat


def write_stand_in(folder, parameters: str, cells: list[str], paper: str = "meems"):
    """Write `folder/<paper>.ipynb`: a markdown title, the tagged `parameters` cell, then `cells`."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# stand-in"), params, *map(nbformat.v4.new_code_cell, cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / f"{paper}.ipynb"))
    return folder
