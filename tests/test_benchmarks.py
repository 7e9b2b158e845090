"""Smoke test of the benchmark runner: it runs and reports sensible numbers (no timing limits)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

import torch_twin
from torch_twin import benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    """Import ``benchmarks/<name>.py`` by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_reports_ratios_memory_and_a_sweep_for_every_case(tmp_path, capsys):
    run = load_script("run")
    threads = torch.get_num_threads()
    try:
        results = run.main(["--reps", "1", "--steps", "1", "--batch-size", "3", "--sweep",
                            "--sweep-sizes", "2", "4", "--plot", str(tmp_path / "sweep.png"),
                            "--json", str(tmp_path / "results.json")])
    finally:
        torch.set_num_threads(threads)  # main() sets the thread count for the whole process
    assert [row["case"] for row in results["cases"]] == ["disk", "mnist", "lenet", "lenet_bn"]
    for row in results["cases"]:
        assert row["median_ratio"] > 0 and row["best_ratio"] > 0
        assert row["parity_max_parameter_difference"] <= benchmark.PARITY_TOLERANCE
        assert row["mini_dl_peak_bytes"] > 0 and row["torch_peak_bytes"] > 0
    assert [row["batch_size"] for row in results["sweep"]["mnist"]] == [2, 4]
    assert [row["batch_size"] for row in results["sweep"]["lenet_bn"]] == [2, 4]
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["cases"][0]["case"] == "disk"
    out = capsys.readouterr().out
    assert "peak MB mini_dl" in out and "batch-size sweep" in out
    assert "under each way of holding memory" in out


def test_runner_times_under_the_rules_asked_for_and_reports_memory_under_all(capsys):
    run = load_script("run")
    threads = torch.get_num_threads()
    try:
        results = run.main(["--case", "disk", "--reps", "1", "--steps", "1", "--batch-size", "4",
                            "--rules", "torch"])
    finally:
        torch.set_num_threads(threads)
    row = results["cases"][0]
    assert row["rules"] == "torch" and results["settings"]["rules"] == "torch"
    peaks = row["peak_bytes_by_rules"]
    assert list(peaks) == ["None", "mini_dl", "torch"]
    assert row["mini_dl_peak_bytes"] == peaks["torch"]["mini_dl"]  # the timed rules' peak
    assert "gradients set to None" in capsys.readouterr().out


def test_runner_rejects_bad_options(capsys):
    run = load_script("run")
    for argv in (["--reps", "0"], ["--plot", "x.png"], ["--sweep-sizes", "0"]):
        with pytest.raises(SystemExit):
            run.parse_args(argv)
    assert "--plot needs --sweep" in capsys.readouterr().err


def test_peak_memory_counts_at_least_parameters_gradients_and_batch():
    case = benchmark.CASES["disk"]
    parameters = sum(p.data.nbytes for p in case.model().parameters())
    x, target = case.batches(8, 1)[0]
    for framework in ("mini_dl", "torch"):
        peak = benchmark.peak_memory(case, framework, 8)
        assert peak >= 2 * parameters + x.nbytes + target.nbytes, framework


def test_both_training_steps_change_the_weights_identically():
    case = benchmark.CASES["mnist"]
    reference = case.model().double()
    batches = case.batches(5, 2, dtype=torch.float64)
    (ours, step_ours), (theirs, step_theirs) = (benchmark.training_step(name, case, reference)
                                                for name in ("mini_dl", "torch"))
    for x, target in batches:
        step_ours(x, target)
        step_theirs(x, target)
    # float64: the two frameworks differ by round-off only
    assert torch_twin.max_parameter_difference(ours, theirs) < 1e-12
    assert torch_twin.max_parameter_difference(reference, theirs) > 1e-6  # they did train


@pytest.mark.parametrize("rules", ["mini_dl", "torch"])
def test_both_frameworks_train_identically_under_either_memory_rules(rules):
    case = benchmark.CASES["disk"]
    reference = case.model().double()
    (ours, step_ours), (theirs, step_theirs) = (
        benchmark.training_step(name, case, reference, rules=rules) for name in ("mini_dl", "torch"))
    for x, target in case.batches(16, 3, dtype=torch.float64):
        step_ours(x, target)
        step_theirs(x, target)
    assert torch_twin.max_parameter_difference(ours, theirs) < 1e-12
    assert torch_twin.max_parameter_difference(reference, theirs) > 1e-6


@pytest.mark.parametrize("name", ["disk", "mnist"])
def test_under_the_same_memory_rules_mini_dl_never_needs_more_than_torch(name):
    # bytes, not time: the allocator's running total is deterministic
    case = benchmark.CASES[name]
    for rules in ("mini_dl", "torch"):
        ours, theirs = (benchmark.peak_memory(case, framework, 20, rules=rules)
                        for framework in ("mini_dl", "torch"))
        assert ours <= theirs, (rules, ours, theirs)
    # and mini_dl's defaults cost memory: caches and gradients stay allocated
    assert (benchmark.peak_memory(case, "mini_dl", 20)
            > benchmark.peak_memory(case, "mini_dl", 20, rules="torch"))


def test_the_gpt_step_needs_no_more_memory_than_torch_when_both_release_caches():
    # the batch of 32: mini_dl then keeps no attention weights (it recomputes them in
    # backward, as torch's fused attention does) and lets each gradient go once used
    from torch_twin import gpt

    ours, theirs = (gpt.peak_memory(gpt.GPT_CASE, framework, rules="torch")
                    for framework in ("mini_dl", "torch"))
    assert ours <= theirs, (ours, theirs)


def test_training_step_rejects_unknown_rules():
    with pytest.raises(ValueError, match=r"training_step: rules must be one of \[None, "
                                         r"'mini_dl', 'torch'\], got 'tf'"):
        benchmark.training_step("torch", benchmark.CASES["disk"], benchmark.CASES["disk"].model(),
                                rules="tf")


def test_disk_script_writes_the_disk_row_flat(tmp_path):
    disk = load_script("disk")
    threads = torch.get_num_threads()
    try:
        row = disk.main(["--reps", "1", "--steps", "1", "--json", str(tmp_path / "disk.json")])
    finally:
        torch.set_num_threads(threads)
    assert row["case"] == "disk" and row["median_ratio"] > 0
    assert json.loads((tmp_path / "disk.json").read_text())["median_ratio"] == row["median_ratio"]


@pytest.mark.parametrize("name", ["lenet", "lenet_bn"])
def test_runner_times_a_lenet_case_at_its_own_batch_size_with_parity(name):
    run = load_script("run")
    threads = torch.get_num_threads()
    try:
        row = run.main(["--case", name, "--reps", "1", "--steps", "1"])["cases"][0]
    finally:
        torch.set_num_threads(threads)
    assert row["batch_size"] == 64  # LeNet's default, the MLPs keep 100
    assert row["median_ratio"] > 0 and row["best_ratio"] > 0
    assert row["parity_max_parameter_difference"] <= benchmark.PARITY_TOLERANCE
    assert row["mini_dl_peak_bytes"] > 0 and row["torch_peak_bytes"] > 0


@pytest.mark.parametrize(("name", "parameters", "batch_norms"),
                         [("lenet", 61_706, 0), ("lenet_bn", 61_750, 2)])
def test_lenet_cases_build_lenet_5_for_28x28_images(name, parameters, batch_norms):
    case = benchmark.ALL_CASES[name]
    model = case.model()
    # 6*(25+1) + 16*(150+1) + 120*(400+1) + 84*(120+1) + 10*(84+1), and 2*(6+16) for BN
    assert sum(p.data.numel() for p in model.parameters()) == parameters
    assert sum(type(layer).__name__ == "BatchNorm2d" for layer in model) == batch_norms
    x, labels = case.batches(5, 1)[0]
    assert x.shape == (5, 1, 28, 28) and labels.shape == (5,)
    assert model(x).shape == (5, 10)
    assert list(torch_twin.to_torch(model).state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("name", ["lenet", "lenet_bn"])
def test_lenet_training_steps_agree_with_torch_in_float64_with_momentum(name):
    case = benchmark.ALL_CASES[name]
    reference = case.model().double()
    (ours, step_ours), (theirs, step_theirs) = (benchmark.training_step(framework, case, reference)
                                                for framework in ("mini_dl", "torch"))
    assert ours[0].needs_input_grad is False  # torch skips the data's gradient too
    for x, target in case.batches(6, 3, dtype=torch.float64):
        step_ours(x, target)
        step_theirs(x, target)
    # float64: round-off only, over three momentum steps (BatchNorm's statistics included)
    assert torch_twin.max_parameter_difference(ours, theirs) < 1e-12
    assert torch_twin.max_parameter_difference(reference, theirs) > 1e-6  # they did train
    for (key, buffer), twin_buffer in zip(ours.state_dict().items(),
                                          theirs.state_dict().values()):
        assert torch.allclose(buffer, twin_buffer, rtol=0, atol=1e-12), key


@pytest.mark.parametrize("framework", ["mini_dl", "torch"])
def test_profile_by_layer_times_the_forward_and_backward_of_every_layer(framework):
    case = benchmark.CNN_CASES["lenet_bn"]
    table = benchmark.profile_by_layer(framework, case, 4, steps=1, warmup=1)
    layers = [f"{index} {type(layer).__name__}" for index, layer in enumerate(case.model())]
    for layer in layers:
        assert table[layer, "forward"]["total"] > 0, layer
    for layer in layers[1:]:  # the first convolution's backward: its weight gradient
        assert (layer, "backward") in table, layer
    assert ("0 Conv2d", "backward") in table and ("SGD", "step") in table
    assert ("loss", "forward") in table and ("loss", "backward") in table
    for entry in table.values():  # the operators add up to the total
        assert entry["total"] == pytest.approx(sum(entry["operators"].values()))
    # the wrapping is undone: mini_dl's methods are its own again
    assert benchmark.dl.Conv2d.forward.__qualname__ == "Conv2d.forward"


def test_fit_benchmark_times_mini_dl_fit_against_torchs_loop_on_the_same_batches(tmp_path,
                                                                               capsys):
    fit = load_script("fit")
    threads = torch.get_num_threads()
    try:
        results = fit.main(["--images", "40", "--batch-size", "10", "--reps", "1",
                            "--json", str(tmp_path / "fit.json")])
    finally:
        torch.set_num_threads(threads)
    assert [row["case"] for row in results["cases"]] == ["disk", "mnist"]
    for row in results["cases"]:
        assert row["median_ratio"] > 0 and len(row["mini_dl_seconds"]) == 1
        assert row["parity_max_parameter_difference"] <= benchmark.PARITY_TOLERANCE
    assert json.loads((tmp_path / "fit.json").read_text())["cases"][1]["images"] == 40
    assert "mini_dl.fit / torch's loop" in capsys.readouterr().out


def test_fit_benchmark_refuses_a_parity_failure(monkeypatch):
    # a fit that trains nothing: the two models no longer agree after the warm-up epoch
    monkeypatch.setattr(benchmark.dl, "fit", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match="parameters differ"):
        benchmark.compare_fit(benchmark.CASES["disk"], 40, 10, reps=1)
