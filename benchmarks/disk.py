"""The disk case of ``run.py`` alone, its results written flat to ``--json``.

    python benchmarks/disk.py --json benchmarks/results/disk.json   # same as run.py --case disk

Every other option is ``run.py``'s (``--reps``, ``--threads``, ``--device``, ...). The JSON file
holds the disk row of ``run.py``'s table as top-level keys (``median_ratio``, ``best_ratio``,
``mini_dl_seconds``, ``torch_seconds``, ``mini_dl_peak_bytes``, ...), which is what
``book/results.ipynb`` reads.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def load_runner():
    """``benchmarks/run.py`` as a module (this folder is not a package)."""
    spec = importlib.util.spec_from_file_location("benchmark_run", Path(__file__).with_name("run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict:
    """Run ``run.py --case disk`` with the other options; return (and write) the disk row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the disk results to PATH")
    args, rest = parser.parse_known_args(argv)
    runner = load_runner()
    row = runner.main(["--case", "disk", *rest])["cases"][0]
    if args.json:
        runner.write_json(args.json, row)
    return row


if __name__ == "__main__":
    main()
