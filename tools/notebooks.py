"""Write the Jupyter notebooks (``notebooks/*.ipynb``) from their plain-Python sources.

Each lecture notebook is kept as a ``py:percent`` script (``notebooks/deckNNN_*.py``): ``# %%``
starts a code cell, ``# %% [markdown]`` a markdown cell whose lines carry a leading ``# ``. The
script is what is reviewed and diffed; the ``.ipynb`` beside it is generated from it by this tool,
so that a plain Jupyter (no jupytext) opens it. The test suite checks that the two agree and runs
the notebook's code cells top to bottom.

    python tools/notebooks.py            # rewrite notebooks/*.ipynb
    python tools/notebooks.py --check    # exit 1 if any .ipynb differs from its script
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

_KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _lines_to_source(lines: list[str]) -> list[str]:
    """nbformat's multi-line string: a list of lines, each but the last ending in a newline."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return [ln + "\n" for ln in lines[:-1]] + lines[-1:]


def cells_from_script(text: str) -> list[dict]:
    """The notebook cells of a py:percent script (its jupytext header is dropped)."""
    lines = text.splitlines()
    if lines and lines[0] == "# ---":                      # jupytext metadata header
        end = lines.index("# ---", 1)
        lines = lines[end + 1:]
    cells, kind, body = [], None, []

    def flush():
        if kind is None:
            return
        if kind == "markdown":
            md = []
            for ln in body:
                if ln.strip() and not ln.startswith("#"):
                    raise ValueError(f"markdown cell line does not start with '#': {ln!r}")
                md.append(ln[2:] if ln.startswith("# ") else ln.lstrip("#"))
            cells.append({"cell_type": "markdown", "metadata": {}, "source": _lines_to_source(md)})
        else:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                          "source": _lines_to_source(body)})

    for ln in lines:
        if ln.startswith("# %%"):
            flush()
            kind, body = ("markdown" if "[markdown]" in ln else "code"), []
        elif kind is not None:
            body.append(ln)
        elif ln.strip():
            raise ValueError(f"text before the first '# %%' cell marker: {ln!r}")
    flush()
    return [c for c in cells if c["source"]]


def notebook_from_script(path: Path) -> dict:
    return {"cells": cells_from_script(path.read_text(encoding="utf-8")),
            "metadata": {"kernelspec": dict(_KERNEL),
                         "language_info": {"name": "python", "file_extension": ".py"}},
            "nbformat": 4, "nbformat_minor": 5}


def _with_ids(nb: dict, stem: str) -> dict:
    """nbformat 4.5 wants a stable id per cell; derive it from the position (diffs stay small)."""
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{stem[:7]}-{i:02d}"
    return nb


def render(path: Path) -> str:
    nb = _with_ids(notebook_from_script(path), path.stem)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def scripts() -> list[Path]:
    return sorted(NOTEBOOKS.glob("deck*.py"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that every .ipynb is up to date")
    args = ap.parse_args(argv)
    stale = []
    for py in scripts():
        ipynb, text = py.with_suffix(".ipynb"), render(py)
        if ipynb.exists() and ipynb.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(ipynb.name)
            continue
        tmp = ipynb.with_suffix(".ipynb.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(ipynb)                                  # atomic: a reader never sees half a file
        print("wrote", ipynb.relative_to(ROOT))
    if stale:
        print("out of date (run python tools/notebooks.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
