"""Execute the book's notebooks in place and strip volatile metadata.

    python tools/run_notebooks.py                # every notebook listed in _toc.yml
    python tools/run_notebooks.py book/x.ipynb   # just these

The kernel runs in this Python environment with one thread, as nbval does in `make test`, so the
committed outputs are the ones nbval reproduces.

`book/results.ipynb` reads the committed outputs of the other notebooks (each study's cell
tagged `results`) and `benchmarks/results/*.json`: re-execute it whenever one of those changes,
and after them. It is the last notebook of `_toc.yml`, so a full run executes it last; when
you name notebooks, name it last:

    python tools/run_notebooks.py book/experiments_digits.ipynb book/results.ipynb
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def toc_notebooks() -> list[Path]:
    """Notebooks named in _toc.yml, in reading order."""
    import yaml

    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    paths = [ROOT / (f if f.endswith(".ipynb") else f + ".ipynb") for f in files]
    return [p for p in paths if p.exists()]


def merge_streams(outputs: list) -> list:
    """Join consecutive chunks of the same stream: how stdout is split depends on timing, so the
    committed notebook would otherwise change from run to run (nbval joins them too)."""
    merged = []
    for output in outputs:
        if (merged and output.output_type == "stream" and merged[-1].output_type == "stream"
                and merged[-1].name == output.name):
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


def clean(nb) -> None:
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                  "name": "python3"},
                   "language_info": {"name": "python"}}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if "id" in cell:
            del cell["id"]
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    nb.nbformat, nb.nbformat_minor = 4, 4


def run(path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    clean(nb)
    nbformat.write(nb, path)
    print(f"executed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    targets = [Path(p).resolve() for p in sys.argv[1:]] or toc_notebooks()
    for target in targets:
        run(target)
