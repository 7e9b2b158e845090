"""The notebook-level guard: the book's notebooks exist, are listed in _toc.yml, and are committed
executed and clean.

nbval (``make test``) compares committed outputs with a fresh run, but it silently skips a cell
with no stored execution count: a notebook committed without outputs would pass. These tests close
that hole.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK_SUFFIXES = (".ipynb", ".md")


def load_runner():
    """``tools/run_notebooks.py``, imported by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOTEBOOKS = load_runner().toc_notebooks()  # those listed in _toc.yml that exist, in order


def toc_entries(node=None) -> list[str]:
    """Every page of _toc.yml (its ``root`` and each ``file``), as written there."""
    if node is None:
        node = yaml.safe_load((ROOT / "_toc.yml").read_text())
    if isinstance(node, list):
        return [entry for item in node for entry in toc_entries(item)]
    if not isinstance(node, dict):
        return []
    own = [node[key] for key in ("root", "file") if key in node]
    return own + [entry for value in node.values() for entry in toc_entries(value)]


def page_path(entry: str) -> Path | None:
    """The file a _toc.yml entry names (Jupyter Book allows omitting the suffix), or None."""
    if Path(entry).suffix in BOOK_SUFFIXES:
        return ROOT / entry if (ROOT / entry).exists() else None
    return next((ROOT / (entry + s) for s in BOOK_SUFFIXES if (ROOT / (entry + s)).exists()), None)


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if page_path(entry) is None]
    assert missing == [], f"listed in _toc.yml but not written: {missing}"


def test_every_book_notebook_is_listed_in_the_toc():
    listed = {page_path(entry) for entry in toc_entries()}
    unlisted = sorted(p.name for p in (ROOT / "book").glob("*.ipynb") if p not in listed)
    assert unlisted == [], f"notebooks missing from _toc.yml: {unlisted}"


def test_the_notebook_runner_finds_the_toc_notebooks_in_reading_order():
    expected = [page_path(e) for e in toc_entries()]
    assert NOTEBOOKS == [p for p in expected if p is not None and p.suffix == ".ipynb"]


def code_cells(path: Path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    cells = [cell for cell in code_cells(path) if cell.source.strip()]
    assert cells, f"{path.name} has no code"
    counts = [cell.execution_count for cell in cells]
    # One fresh top-to-bottom run (tools/run_notebooks.py) numbers the non-empty cells 1, 2, ...
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts}; run tools/run_notebooks.py {path.name}")
    # A cell that shows an error on purpose carries the tag nbval and the book both understand.
    errors = [cell.source.splitlines()[0] for cell in cells
              if any(output.output_type == "error" for output in cell.outputs)
              and "raises-exception" not in cell.metadata.get("tags", [])]
    assert errors == [], f"{path.name}: cells with an unexpected error output: {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_volatile_metadata(path):
    notebook = nbformat.read(path, as_version=4)
    volatile = [index for index, cell in enumerate(notebook.cells)
                if {"execution", "ExecuteTime"} & set(cell.metadata)]
    assert volatile == [], f"{path.name}: execution timestamps in cells {volatile}"
    assert "widgets" not in notebook.metadata
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
