"""Smoke test of the benchmark scripts: they run and report sensible numbers (no timing limits)."""
import importlib.util
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    """Import ``benchmarks/<name>.py`` by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_disk_benchmark_runs_and_reports_a_positive_ratio(tmp_path, capsys):
    disk = load_script("disk")
    threads = torch.get_num_threads()
    try:
        results = disk.main(["--epochs", "1", "--reps", "1", "--json",
                             str(tmp_path / "disk.json")])
    finally:
        torch.set_num_threads(threads)  # main() sets the thread count for the whole process
    assert results["median_ratio"] > 0
    assert results["parity_max_parameter_difference"] <= disk.PARITY_TOLERANCE
    assert (tmp_path / "disk.json").exists()
    assert "median time ratio mini_dl/torch" in capsys.readouterr().out
