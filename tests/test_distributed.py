"""Data parallelism (mini_dl.distributed, SyncBatchNorm, sharded MiniBatches, fit under DDP),
proved with real process groups: gloo on loopback (NCCL with ``pytest --device cuda`` and two
GPUs or more).

Each process group is started once per world size (2, 3, 4) by :func:`launch`: processes forked
from this one (gloo), or fresh interpreters running this file (NCCL:
``python tests/test_distributed.py SCENARIO RANK WORLD DIR nccl``), which meet through a file in a
fresh folder; every rank runs all the checks of its scenario and
saves what it computed, and the tests compare that, in this process, with one process trained on
the concatenated batches and with torch's own DistributedDataParallel. Every launch is bounded:
past ``LAUNCH_TIMEOUT_S`` the processes are killed (their whole session) and the test fails.
"""
from __future__ import annotations

import datetime
import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch

import mini_dl as dl
import torch_twin

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT_S = 60  # a group of 4 on 2 loaded cores takes ~10 s; a hang fails, never waits
GLOO_TIMEOUT = datetime.timedelta(seconds=15)  # a collective whose peer is gone fails by then
F64 = torch.float64
# float64 all the way; the ranks sum shard gradients in another order than one process sums
# the batch (a few ulps per step), and 16 steps of SGD or Adam keep that far below 1e-12
TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}
STEPS, BATCH, FEATURES, OUTPUTS, HIDDEN = 16, 24, 5, 3, 8  # BATCH: divisible by 2, 3 and 4
TINY_BUCKETS_MB = 200 / 2 ** 20  # 200 bytes: several buckets for this small model
# torch's DDP imports torch._dynamo (~5 s a process here): compared on 2 processes only
TORCH_WORLD_SIZE = 2
FIT_SAMPLES, FIT_BATCH, FIT_EPOCHS = 96, 4, 3  # per-rank batch; 96 = 2 * 3 * 4 * 4


# -- the problems, built identically in the workers and here ------------------------------------

def problem(device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """STEPS batches of BATCH examples: inputs (STEPS, BATCH, FEATURES), targets."""
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(STEPS, BATCH, FEATURES, generator=generator, dtype=F64)
    target = torch.randn(STEPS, BATCH, OUTPUTS, generator=generator, dtype=F64)
    return x.to(device), target.to(device)


def make_model(seed: int, norm=None, device="cpu") -> dl.Sequential:
    torch.manual_seed(seed)
    layers = [dl.Linear(FEATURES, HIDDEN), *([norm(HIDDEN)] if norm else []), dl.Tanh(),
              dl.Linear(HIDDEN, OUTPUTS)]
    return dl.Sequential(*layers).double().to(device)


OPTIMIZERS = {"sgd": lambda parameters: dl.SGD(parameters, lr=0.1, momentum=0.9),
              "adam": lambda parameters: dl.Adam(parameters, lr=0.01)}
TORCH_OPTIMIZERS = {"sgd": lambda parameters: torch.optim.SGD(parameters, lr=0.1, momentum=0.9),
                    "adam": lambda parameters: torch.optim.Adam(parameters, lr=0.01)}


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of a batch (dim 0)."""
    size = batch.shape[0] // world_size
    return batch[rank * size:(rank + 1) * size]


def train(model, optimizer, x, target, *, rank=0, world_size=1, steps=STEPS) -> None:
    """mini_dl's loop, each step on this rank's shard of batch ``step`` (all of it: one process)."""
    criterion = dl.MSELoss()
    for step in range(steps):
        optimizer.zero_grad()
        criterion(model(shard(x[step], rank, world_size)),
                  shard(target[step], rank, world_size))
        model.backward(criterion.backward())
        optimizer.step()


def fit_problem(device="cpu"):
    x, labels = dl.disk_dataset(FIT_SAMPLES, seed=1, dtype=F64)
    x_val, labels_val = dl.disk_dataset(40, seed=2, dtype=F64)
    torch.manual_seed(5)
    model = dl.Sequential(dl.Linear(2, 8), dl.ReLU(), dl.Linear(8, 2)).double().to(device)
    validation = (x_val.to(device), dl.one_hot(labels_val, 2, dtype=F64).to(device))
    return model, x.to(device), dl.one_hot(labels, 2, dtype=F64).to(device), validation


def state(module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}


def sync_bn_layer_problem(world_size: int):
    """An input of 1 + 2 + ... + world_size images (rank r holds r + 1: unequal shards), its
    output gradient, and the layer's weight and bias."""
    generator = torch.Generator().manual_seed(11)
    n = world_size * (world_size + 1) // 2
    x = torch.randn(n, 3, 2, 2, generator=generator, dtype=F64) * 2 + 1
    grad_output = torch.randn(n, 3, 2, 2, generator=generator, dtype=F64)
    weight = 1 + 0.1 * torch.arange(3, dtype=F64)
    bias = 0.2 * torch.arange(3, dtype=F64)
    return x, grad_output, weight, bias


def rows_of(rank: int) -> slice:
    start = rank * (rank + 1) // 2
    return slice(start, start + rank + 1)


# -- worker side ---------------------------------------------------------------------------------

def scenario_checks(rank: int, world_size: int, directory: Path, device: str) -> dict:
    """Everything one group checks; returns what this rank computed (tensors on the CPU)."""
    results = {}
    x, target = problem(device)
    for name, make_optimizer in OPTIMIZERS.items():
        model = make_model(100 + rank, device=device)  # different weights on every rank
        ddp = dl.DistributedDataParallel(
            model, bucket_cap_mb=TINY_BUCKETS_MB if name == "sgd" else 25)
        results[f"{name}_initial"] = state(ddp)
        results[f"{name}_buckets"] = len(ddp.buckets)
        train(ddp, make_optimizer(ddp.parameters()), x, target, rank=rank,
              world_size=world_size)
        results[name] = state(ddp)
        if world_size != TORCH_WORLD_SIZE:
            continue
        # torch's own DDP on the twin, started from this rank's different weights as well
        twin = torch_twin.to_torch(make_model(100 + rank, device=device))
        torch_ddp = torch.nn.parallel.DistributedDataParallel(
            twin, device_ids=None if device == "cpu" else [torch.device(device)])
        optimizer = TORCH_OPTIMIZERS[name](torch_ddp.parameters())
        for step in range(STEPS):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(torch_ddp(shard(x[step], rank, world_size)),
                                                shard(target[step], rank, world_size))
            loss.backward()
            optimizer.step()
        results[f"torch_{name}"] = state(twin)
    results["state_dict_keys"] = list(ddp.state_dict())
    plain = make_model(0, device=device).load_state_dict(ddp.state_dict())
    results["plain_loads_ddp_state"] = state(plain)

    # no_sync: two half-shards per step, the first without communication
    ddp = dl.DistributedDataParallel(make_model(100, device=device))
    optimizer, criterion = dl.SGD(ddp.parameters(), lr=0.1, momentum=0.9), dl.MSELoss()
    for step in range(3):
        optimizer.zero_grad()
        xs, targets = shard(x[step], rank, world_size), shard(target[step], rank, world_size)
        half = xs.shape[0] // 2
        with ddp.no_sync():
            criterion(ddp(xs[:half]), targets[:half])
            ddp.backward(criterion.backward() * 0.5)
        if step == 0:
            results["no_sync_local_grad"] = ddp.module[0].weight.grad.cpu().clone()
        criterion(ddp(xs[half:]), targets[half:])
        ddp.backward(criterion.backward() * 0.5)
        optimizer.step()
    results["no_sync"] = state(ddp)

    # SyncBatchNorm inside DDP, trained: running statistics are in the state
    ddp = dl.DistributedDataParallel(make_model(100 + rank, norm=dl.SyncBatchNorm, device=device))
    train(ddp, OPTIMIZERS["sgd"](ddp.parameters()), x, target, rank=rank, world_size=world_size)
    results["sync_bn_training"] = state(ddp)

    # SyncBatchNorm alone, unequal shards
    x_bn, grad_bn, weight, bias = (t.to(device) for t in sync_bn_layer_problem(world_size))
    layer = dl.SyncBatchNorm(3).double().to(device)
    layer.weight.data.copy_(weight)
    layer.bias.data.copy_(bias)
    output = layer(x_bn[rows_of(rank)])
    grad_input = layer.backward(grad_bn[rows_of(rank)])
    results["sync_bn_layer"] = {"output": output.cpu(), "grad_input": grad_input.cpu(),
                                "weight_grad": layer.weight.grad.cpu(),
                                "bias_grad": layer.bias.grad.cpu(), **state(layer)}

    # a rank with a different model is refused, on every rank
    hidden = HIDDEN + 1 if rank == world_size - 1 else HIDDEN
    try:
        dl.DistributedDataParallel(dl.Sequential(dl.Linear(FEATURES, hidden), dl.Tanh()))
        results["refused"] = None
    except RuntimeError as error:
        results["refused"] = str(error)

    # float32: the replicas stay bit-identical
    model = make_model(3 + rank, device=device).float()
    ddp = dl.DistributedDataParallel(model)
    train(ddp, dl.SGD(ddp.parameters(), lr=0.1), x.float(), target.float(), rank=rank,
          world_size=world_size, steps=2)
    results["float32"] = state(ddp)

    # fit under DDP, with a checkpoint, then resumed for one more epoch
    model, x_fit, target_fit, validation = fit_problem(device)
    ddp = dl.DistributedDataParallel(model)
    batches = dl.MiniBatches(x_fit, target_fit, batch_size=FIT_BATCH, seed=0)
    results["fit_shard"] = (batches.num_replicas, batches.rank, len(batches))
    path = directory / "fit.pt"
    results["fit_history"] = dl.fit(ddp, dl.MSELoss(), dl.SGD(ddp.parameters(), lr=0.1,
                                                               momentum=0.9), batches,
                                    epochs=FIT_EPOCHS, validation=validation, progress=False,
                                    checkpoint=path)
    results["fit"] = state(ddp)
    model, *_ = fit_problem(device)
    ddp = dl.DistributedDataParallel(model)
    batches = dl.MiniBatches(x_fit, target_fit, batch_size=FIT_BATCH, seed=0)
    results["resumed_history"] = dl.fit(
        ddp, dl.MSELoss(), dl.SGD(ddp.parameters(), lr=0.1, momentum=0.9), batches,
        epochs=FIT_EPOCHS + 1, validation=validation, progress=False, checkpoint=path,
        resume=True)
    results["resumed"] = state(ddp)
    return results


def scenario_dead_rank(rank: int, world_size: int, directory: Path, device: str) -> dict:
    """The last rank dies (exit code 3, no goodbye) after three steps; the others go on."""
    x, target = problem(device)
    ddp = dl.DistributedDataParallel(make_model(0, device=device))
    optimizer, criterion = OPTIMIZERS["sgd"](ddp.parameters()), dl.MSELoss()
    for step in range(STEPS):
        if step == 3 and rank == world_size - 1:
            os._exit(3)
        optimizer.zero_grad()
        criterion(ddp(shard(x[step], rank, world_size)), shard(target[step], rank, world_size))
        ddp.backward(criterion.backward())
        optimizer.step()
    return {}


SCENARIOS = {"checks": scenario_checks, "dead_rank": scenario_dead_rank}


def worker(scenario: str, rank: int, world_size: int, directory: Path, backend: str) -> None:
    device = "cpu" if backend == "gloo" else f"cuda:{rank}"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    torch.distributed.init_process_group(backend, init_method=f"file://{directory}/rendezvous",
                                         rank=rank, world_size=world_size, timeout=GLOO_TIMEOUT)
    results = SCENARIOS[scenario](rank, world_size, directory, device)
    torch.save(results, directory / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


# -- launcher side -------------------------------------------------------------------------------

def _forked_worker(scenario: str, rank: int, world_size: int, directory: Path) -> None:
    """A forked child: its output to its log, then the worker, then ``os._exit`` (no pytest
    teardown in the child). Forking saves each child the import of torch (seconds here)."""
    with open(directory / f"rank{rank}.log", "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = os.fdopen(1, "w", buffering=1, closefd=False)
    torch.set_num_threads(1)  # as DataLoader's forked workers: no thread pool after a fork
    code = 0
    try:
        worker(scenario, rank, world_size, directory, "gloo")
    except BaseException:  # noqa: BLE001 - reported in the log, the exit code says it failed
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    os._exit(code)


def launch(scenario: str, world_size: int, directory: Path, backend: str = "gloo",
           timeout: float = LAUNCH_TIMEOUT_S) -> list[tuple[int, str]]:
    """Run ``scenario`` on ``world_size`` processes; ``[(exit code, log), ...]`` by rank.
    gloo: children forked from this process (unless it has initialised CUDA); NCCL (and gloo
    after CUDA): fresh interpreters, ``python tests/test_distributed.py ...``. Past ``timeout`` seconds every process
    (its whole session) is killed and the test fails."""
    directory.mkdir(parents=True, exist_ok=True)
    fork = backend == "gloo" and not torch.cuda.is_initialized()  # CUDA does not survive a fork
    processes = []
    for rank in range(world_size):
        if fork:
            process = multiprocessing.get_context("fork").Process(
                target=_forked_worker, args=(scenario, rank, world_size, directory))
            process.start()
        else:
            environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
                [str(ROOT), os.environ.get("PYTHONPATH", "")])}
            with open(directory / f"rank{rank}.log", "w") as log:
                process = subprocess.Popen(
                    [sys.executable, __file__, scenario, str(rank), str(world_size),
                     str(directory), backend], stdout=log, stderr=subprocess.STDOUT,
                    env=environment, start_new_session=True)
        processes.append(process)
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            remaining = max(0.1, deadline - time.monotonic())
            if fork:
                process.join(remaining)
                if process.exitcode is None:
                    raise subprocess.TimeoutExpired(scenario, timeout)
            else:
                process.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario} on {world_size} processes did not end within {timeout} s")
    finally:
        for process in processes:
            if fork and process.exitcode is None:
                process.kill()
                process.join()
            elif not fork and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return [(process.exitcode if fork else process.returncode,
             (directory / f"rank{rank}.log").read_text()) for rank, process in
            enumerate(processes)]


def run_group(directory: Path, world_size: int, backend: str = "gloo") -> list[dict]:
    outcomes = launch("checks", world_size, directory, backend)
    for rank, (code, log) in enumerate(outcomes):
        assert code == 0, f"rank {rank} of {world_size} exited with {code}:\n{log[-3000:]}"
    return [torch.load(directory / f"rank{rank}.pt") for rank in range(world_size)]


def pytest_generate_tests(metafunc):
    """NCCL groups only with ``pytest --device cuda``; the gloo ones always."""
    if "backend" in metafunc.fixturenames:
        cuda = metafunc.config.getoption("device").startswith("cuda")
        metafunc.parametrize("backend", ["gloo", "nccl"] if cuda else ["gloo"], scope="module")


@pytest.fixture(scope="module", params=[2, 3, 4], ids=lambda p: f"{p}procs")
def group(request, backend, tmp_path_factory) -> tuple[int, list[dict]]:
    """(world size, every rank's results) of one launch of the checks."""
    world_size = request.param
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        pytest.skip(f"NCCL with {world_size} processes needs {world_size} GPUs, this machine "
                    f"has {torch.cuda.device_count()}")
    if world_size == TORCH_WORLD_SIZE and backend == "gloo":
        importlib.import_module("torch._dynamo")  # torch's DDP imports it: once, not per child
    directory = tmp_path_factory.mktemp(f"ddp_{backend}_{world_size}")
    return world_size, run_group(directory, world_size, backend)


def assert_states_close(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        torch.testing.assert_close(value, theirs[key], **TOLERANCE,
                                   msg=lambda message, key=key: f"{key}: {message}")


# -- the proofs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_ddp_equals_one_process_on_the_concatenated_batch(group, name):
    world_size, results = group
    x, target = problem()
    model = make_model(100)  # rank 0's initial weights: the broadcast's
    train(model, OPTIMIZERS[name](model.parameters()), x, target)
    for rank in range(world_size):
        assert_states_close(results[rank][name], state(model))


def test_the_broadcast_makes_different_initial_weights_identical(group):
    world_size, results = group
    assert not torch.equal(make_model(100)[0].weight.data, make_model(101)[0].weight.data)
    for rank in range(world_size):
        for key, value in state(make_model(100)).items():
            assert torch.equal(results[rank]["sgd_initial"][key], value), (rank, key)
        for key, value in results[0]["adam"].items():  # identical replicas, to the last bit
            assert torch.equal(results[rank]["adam"][key], value), (rank, key)


def test_tiny_buckets_give_the_same_result_as_one_bucket(group):
    _, results = group
    assert results[0]["sgd_buckets"] > 2 and results[0]["adam_buckets"] == 1
    # both were compared with one process above; the small buckets changed nothing


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_ddp_equals_torch_distributed_data_parallel_on_the_twin(group, name):
    world_size, results = group
    if world_size != TORCH_WORLD_SIZE:  # not a skip: the same claim, checked once
        assert f"torch_{name}" not in results[0]
        return
    for rank in range(world_size):
        assert_states_close(results[rank][name], results[rank][f"torch_{name}"])


def test_state_dict_has_the_wrapped_modules_keys_without_a_module_prefix(group):
    _, results = group
    assert results[0]["state_dict_keys"] == list(make_model(0).state_dict())
    assert_states_close(results[0]["plain_loads_ddp_state"], results[0]["adam"])


def test_no_sync_accumulation_equals_one_big_step(group):
    world_size, results = group
    x, target = problem()
    model = make_model(100)
    train(model, OPTIMIZERS["sgd"](model.parameters()), x, target, steps=3)
    for rank in range(world_size):
        assert_states_close(results[rank]["no_sync"], state(model))
    # inside no_sync nothing was communicated: the ranks' gradients differ
    assert not torch.allclose(results[0]["no_sync_local_grad"], results[1]["no_sync_local_grad"])


def test_sync_batchnorm_in_ddp_equals_batchnorm_on_the_whole_batch(group):
    world_size, results = group
    x, target = problem()
    model = make_model(100, norm=dl.BatchNorm1d)
    train(model, OPTIMIZERS["sgd"](model.parameters()), x, target)
    for rank in range(world_size):  # parameters and running statistics
        assert_states_close(results[rank]["sync_bn_training"], state(model))


def test_sync_batchnorm_with_unequal_shards_equals_batchnorm_on_the_whole_batch(group):
    world_size, results = group
    x, grad_output, weight, bias = sync_bn_layer_problem(world_size)
    layer = dl.BatchNorm2d(3).double()
    layer.weight.data.copy_(weight)
    layer.bias.data.copy_(bias)
    output = layer(x)
    grad_input = layer.backward(grad_output)
    shards = [results[rank]["sync_bn_layer"] for rank in range(world_size)]
    for rank, ours in enumerate(shards):
        torch.testing.assert_close(ours["output"], output[rows_of(rank)], **TOLERANCE)
        torch.testing.assert_close(ours["grad_input"], grad_input[rows_of(rank)], **TOLERANCE)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(ours[key], getattr(layer, key), **TOLERANCE)
    # parameter gradients stay local: their sum over ranks is the whole batch's
    for name in ("weight", "bias"):
        total = sum(ours[f"{name}_grad"] for ours in shards)
        torch.testing.assert_close(total, getattr(layer, name).grad, **TOLERANCE)


def test_a_rank_with_a_different_model_is_refused_at_construction(group):
    world_size, results = group
    for rank in range(world_size):
        message = results[rank]["refused"]
        assert message is not None, f"rank {rank} accepted a different model"
        assert "ranks hold different models" in message and "'0.weight'" in message
        assert f"rank {world_size - 1} holds '0.weight' of shape ({HIDDEN + 1}, " in message
        assert f"rank 0 holds '0.weight' of shape ({HIDDEN}, {FEATURES})" in message


def test_float32_replicas_stay_identical(group):
    world_size, results = group
    for rank in range(1, world_size):
        for key, value in results[0]["float32"].items():
            assert value.dtype == torch.float32 and torch.equal(results[rank]["float32"][key],
                                                                value)


def test_fit_under_ddp_equals_one_process_fit_with_the_whole_batch(group):
    world_size, results = group
    model, x, target, validation = fit_problem()
    batches = dl.MiniBatches(x, target, batch_size=FIT_BATCH * world_size, seed=0)
    history = dl.fit(model, dl.MSELoss(), dl.SGD(model.parameters(), lr=0.1, momentum=0.9),
                     batches, epochs=FIT_EPOCHS + 1, validation=validation, progress=False)
    three = {key: values[:FIT_EPOCHS] for key, values in history.items()}
    for rank in range(world_size):
        assert results[rank]["fit_shard"] == (
            world_size, rank, FIT_SAMPLES // (world_size * FIT_BATCH))
        for ours, theirs in ((results[rank]["fit_history"], three),
                             (results[rank]["resumed_history"], history)):
            assert list(ours) == list(theirs)
            for key in ours:  # train loss and val loss to rounding, accuracies exactly
                assert ours[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-12), key
        assert_states_close(results[rank]["resumed"], state(model))


def test_a_rank_that_dies_ends_the_job_with_a_clear_error_in_bounded_time(tmp_path):
    start = time.monotonic()
    outcomes = launch("dead_rank", 2, tmp_path, timeout=45)
    elapsed = time.monotonic() - start
    assert outcomes[1][0] == 3
    code, log = outcomes[0]
    assert code != 0, log[-2000:]
    assert "DistributedDataParallel: the all-reduce of gradient bucket" in log, log[-2000:]
    assert elapsed < 45


def test_the_example_trains_under_torchrun_and_prints_from_rank_0_only(tmp_path):
    report = tmp_path / "run.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(ROOT / "examples" / "train_ddp.py"), "--epochs", "1",
               "--json", str(report)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environment, start_new_session=True) as process:
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail("torchrun examples/train_ddp.py did not end within 120 s")
    assert process.returncode == 0, output[-3000:]
    assert output.count("epoch 1: train loss") == 1, output  # rank 0 only
    assert "2 process(es), gloo, 22 steps per epoch of 64 images (32 per process)" in output
    result = json.loads(report.read_text())
    assert result["world_size"] == 2 and len(result["history"]["train_loss"]) == 1


# -- single process: the errors, the sharding rule -----------------------------------------------

def test_ddp_without_a_process_group_is_a_clear_error():
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        dl.DistributedDataParallel(make_model(0))
    with pytest.raises(TypeError, match="must be a mini_dl Module"):
        dl.DistributedDataParallel(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("n, world_size", [(10, 3), (12, 4), (5, 2), (3, 4), (1, 3), (7, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_minibatches_shard_as_distributed_sampler(n, world_size, shuffle):
    data = torch.arange(n)
    seen = []
    for rank in range(world_size):
        sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world_size,
                                                      rank=rank, shuffle=shuffle, seed=4)
        batches = dl.MiniBatches(data, batch_size=2, shuffle=shuffle, seed=4,
                                 num_replicas=world_size, rank=rank)
        ours = torch.cat([xb for xb, in batches]).tolist()  # epoch 0: the sampler's permutation
        assert ours == list(sampler) and len(batches) == -(-len(sampler) // 2)
        seen += ours
    assert set(seen) == set(range(n))


def test_minibatches_without_a_process_group_are_unsharded():
    batches = dl.MiniBatches(torch.arange(5.0), batch_size=2, seed=0)
    assert (batches.num_replicas, batches.rank) == (1, 0)
    with pytest.raises(ValueError, match="0 <= rank < num_replicas"):
        dl.MiniBatches(torch.arange(5.0), batch_size=2, num_replicas=2, rank=2)


def test_sync_batchnorm_without_a_process_group_is_batchnorm(random_tensor):
    x, grad = random_tensor(4, 3, 2, 2), random_tensor(4, 3, 2, 2, seed=1)
    ours, reference = dl.SyncBatchNorm(3).double(), dl.BatchNorm2d(3).double()
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)
    torch.testing.assert_close(ours.backward(grad), reference.backward(grad), rtol=0, atol=0)
    assert_states_close(state(ours), state(reference))


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    model = dl.Sequential(dl.Linear(2, 3), dl.BatchNorm1d(3), dl.Sequential(dl.BatchNorm2d(4)))
    model[1].eval()
    weight, running_mean = model[1].weight, model[1].running_mean
    converted = dl.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is dl.SyncBatchNorm
    assert type(model[2][0]) is dl.SyncBatchNorm and not model[1].training
    assert model[1].weight is weight and model[1].running_mean is running_mean
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked", "2.0.weight", "2.0.bias",
                                        "2.0.running_mean", "2.0.running_var",
                                        "2.0.num_batches_tracked"]


if __name__ == "__main__":  # a worker of launch()
    worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
