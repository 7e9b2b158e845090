"""The measurements of the book's chapter "Data parallelism", in one process group.

    OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2 examples/ddp_demo.py --out DIR

(The chapter forks the processes from the notebook instead, with :func:`forked`: it saves each
of them the import of torch.)

Every rank runs three parts and rank 0 writes what all ranks recorded to ``DIR/results.pt``
(a list of one dict per rank, of plain tensors, lists and floats: ``torch.load(...,
``weights_only=True)``):

- ``training``: a float64 MLP trained with ``mini_dl.DistributedDataParallel`` for
  ``STEPS`` steps of SGD with momentum and of Adam, each rank on its shard of a fixed global
  batch, every rank built from a *different* seed (the broadcast must make them equal); with
  equal shards, and with unequal ones both as DDP computes them (the plain mean over ranks)
  and with each rank's loss gradient weighted by p n_r / N. The chapter compares the final
  parameters with one process trained on the whole batches (:func:`global_batches`).
- ``sync_batchnorm``: ``mini_dl.SyncBatchNorm`` on unequal shards of one batch, two training
  steps: outputs, input and parameter gradients, running statistics (and a plain per-shard
  ``BatchNorm2d`` for contrast).
- ``timing``: epochs of the digits CNN at global batches of 64 and 512: rank 0 alone, on the
  whole data and on its shard only (the other rank waits at a barrier, which costs no CPU);
  both ranks under DDP on the same global batches, with and without ``no_sync`` (the
  difference is the all-reduce, waiting for the other rank included); wall time and each
  process's CPU time. Then ``torch.distributed.all_reduce`` timed over message sizes and
  bucket counts. Timings vary from run to run: the chapter plots them and prints none.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from train_ddp import make_model  # examples/train_ddp.py, beside this file

import mini_dl as dl

STEPS, BATCH, FEATURES, HIDDEN, CLASSES = 16, 12, 5, 8, 3
UNEQUAL = (4, 8)  # the shard sizes of the unequal run (two ranks)
BUCKET_CAP_MB = 256 / 2**20  # 256 bytes: the MLP's 75 float64 gradients go in several buckets


def global_batches(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``STEPS`` global batches ``(STEPS, BATCH, FEATURES)`` and their labels."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, BATCH, FEATURES, generator=generator, dtype=dtype)
    return x, torch.randint(CLASSES, (STEPS, BATCH), generator=generator)


def mlp(seed: int) -> dl.Sequential:
    """The float64 MLP of the training proof, drawn from ``seed``."""
    torch.manual_seed(seed)
    return dl.Sequential(dl.Linear(FEATURES, HIDDEN), dl.Tanh(),
                         dl.Linear(HIDDEN, CLASSES)).double()


def make_optimizer(name: str, parameters) -> dl.Optimizer:
    if name == "sgd":
        return dl.SGD(parameters, lr=0.1, momentum=0.9)
    return dl.Adam(parameters, lr=0.01)


def train(model, optimizer, shards, weights=None) -> None:
    """``STEPS`` steps; step t trains on ``shards[t]`` = (x, labels). With ``weights``, the
    loss gradient is multiplied by ``weights`` (p n_r / N: the plain mean over ranks then
    weights each rank by n_r / N)."""
    criterion = dl.CrossEntropyLoss()
    for x, labels in shards:
        optimizer.zero_grad()
        criterion(model(x), labels)
        grad_output = criterion.backward()
        model.backward(grad_output if weights is None else grad_output * weights)
        optimizer.step()


def shard_rows(sizes: tuple[int, ...], rank: int) -> slice:
    """Rank ``rank``'s rows of a batch cut into consecutive shards of ``sizes``."""
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def training_runs(rank: int, world_size: int) -> dict:
    """Final parameters of every run on this rank, and its parameters before and after the
    broadcast at construction."""
    x, labels = global_batches()
    equal = (BATCH // world_size,) * world_size
    runs = {"sgd": (equal, False), "adam": (equal, False),
            "sgd_unequal_mean": (UNEQUAL, False), "sgd_unequal_weighted": (UNEQUAL, True)}
    results = {}
    for name, (sizes, weighted) in runs.items():
        if world_size != len(sizes):
            continue
        module = mlp(seed=10 + rank)  # a different draw on every rank
        before = [p.data.clone() for p in module.parameters()]
        model = dl.DistributedDataParallel(module, bucket_cap_mb=BUCKET_CAP_MB)
        after = [p.data.clone() for p in module.parameters()]
        rows = shard_rows(sizes, rank)
        shards = [(x[t, rows], labels[t, rows]) for t in range(STEPS)]
        weights = world_size * sizes[rank] / BATCH if weighted else None
        train(model, make_optimizer(name.split("_")[0], model.parameters()), shards, weights)
        results[name] = {"before": before, "after_broadcast": after,
                         "final": {k: v.clone() for k, v in model.state_dict().items()},
                         "buckets": [[tuple(p.shape) for p in bucket] for bucket in model.buckets]}
    return results


SYNC_SIZES, CHANNELS = (4, 6), 3  # unequal shards: counts must weight the statistics


def sync_batchnorm_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two global batches (input, upstream gradient), (10, 3, 4, 4), different mean and scale."""
    generator = torch.Generator().manual_seed(1)
    shape = (sum(SYNC_SIZES), CHANNELS, 4, 4)
    return [(torch.randn(shape, generator=generator, dtype=torch.float64) * (1 + step) + step,
             torch.randn(shape, generator=generator, dtype=torch.float64)) for step in range(2)]


def sync_batchnorm_run(rank: int, world_size: int) -> dict:
    """SyncBatchNorm and plain BatchNorm2d on this rank's shard: outputs and gradients."""
    if world_size != len(SYNC_SIZES):
        return {}
    rows = shard_rows(SYNC_SIZES, rank)
    results = {}
    for name, layer in (("sync", dl.SyncBatchNorm(CHANNELS, momentum=0.3)),
                        ("local", dl.BatchNorm2d(CHANNELS, momentum=0.3))):
        layer = layer.double()
        layer.weight.data.copy_(torch.linspace(0.5, 1.5, CHANNELS))
        steps = []
        for x, grad in sync_batchnorm_batches():
            layer.zero_grad()
            y = layer(x[rows])
            steps.append({"output": y, "grad_input": layer.backward(grad[rows]),
                          "grad_weight": layer.weight.grad.clone(),
                          "grad_bias": layer.bias.grad.clone()})
        results[name] = {"steps": steps, "running_mean": layer.running_mean.clone(),
                         "running_var": layer.running_var.clone()}
    return results


def digits(random: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 8x8 digits, standardised, and their labels (scikit-learn ships them); with
    ``random``, standard normal images and random labels of the same shapes (the time of a step
    does not depend on the values, and it saves each rank the import of scikit-learn)."""
    if random:
        generator = torch.Generator().manual_seed(0)
        return (torch.randn(1797, 1, 8, 8, generator=generator),
                torch.randint(10, (1797,), generator=generator))
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    return (images - images.mean()) / images.std(), torch.tensor(data.target)


def cnn() -> dl.Sequential:
    """The CNN of the chapter on CNN experiments (3,350 parameters), seed 0, no batch norm."""
    return make_model(0, sync_batchnorm=False)


def epoch_seconds(model, batches, synchronise: bool = True) -> tuple[float, float]:
    """Wall time and this process's CPU time of one epoch of SGD steps; ``synchronise=False``
    runs every backward under ``no_sync`` (nothing is all-reduced: the computation alone)."""
    criterion, optimizer = dl.CrossEntropyLoss(), dl.SGD(model.parameters(), lr=0.03)
    start, start_cpu = time.perf_counter(), time.process_time()
    for x, labels in batches:
        optimizer.zero_grad()
        criterion(model(x), labels)
        if synchronise:
            model.backward(criterion.backward())
        else:
            with model.no_sync():
                model.backward(criterion.backward())
        optimizer.step()
    return time.perf_counter() - start, time.process_time() - start_cpu


def all_reduce_seconds(numel: int, buckets: int, repeats: int) -> float:
    """The shortest wall time, over ``repeats`` tries after a warm-up, of all-reducing ``numel``
    float32 values cut into ``buckets`` equal all-reduces (the least disturbed try: on a shared
    machine the others include the time a rank waits to be scheduled)."""
    flat = torch.ones(numel)
    pieces = flat.chunk(buckets)
    times = []
    for repeat in range(repeats + 1):
        dist.barrier()
        start = time.perf_counter()
        for piece in pieces:
            dist.all_reduce(piece)
        times.append(time.perf_counter() - start)
    return min(times[1:])  # the first is a warm-up


def timing_runs(rank: int, world_size: int, rounds: int, batch_sizes: tuple[int, ...],
                random: bool = False) -> dict:
    """Epoch times, wall and CPU seconds: ``epochs[batch][configuration]`` and ``cpu[...]``
    (lists of ``rounds``, the configurations taking turns), for each global batch size; then
    the all-reduce times."""
    x, labels = digits(random)
    names = ["1 process", "1 process, one shard", f"{world_size} processes",
             f"{world_size} processes, no_sync"]
    epochs = {str(b): {name: [] for name in names} for b in batch_sizes}
    cpu = {str(b): {name: [] for name in names} for b in batch_sizes}
    single = cnn()
    ddp = dl.DistributedDataParallel(cnn())
    for round_ in range(rounds):
        for batch_size in batch_sizes:
            key = str(batch_size)
            if rank == 0:  # alone: the other ranks wait at the barrier, which blocks without CPU
                for name, replicas in zip(names[:2], (1, world_size)):  # all, or rank 0's shard
                    batches = dl.MiniBatches(x, labels, batch_size=batch_size // replicas,
                                             seed=round_, num_replicas=replicas, rank=0)
                    wall, seconds = epoch_seconds(single, batches)
                    epochs[key][name].append(wall)
                    cpu[key][name].append(seconds)
            dist.barrier()
            for name, synchronise in zip(names[2:], (True, False)):
                batches = dl.MiniBatches(x, labels, batch_size=batch_size // world_size,
                                         seed=round_, num_replicas=world_size, rank=rank)
                dist.barrier()
                wall, seconds = epoch_seconds(ddp, batches, synchronise)
                epochs[key][name].append(wall)
                cpu[key][name].append(seconds)
    sizes = [2**k for k in range(10, 21, 2)]  # 1,024 to 1,048,576 float32 values (4 KiB-4 MiB)
    by_size = [all_reduce_seconds(numel, 1, repeats=10) for numel in sizes]
    bucket_counts = [1, 4, 16, 64]  # 1 MiB in buckets of 1 MiB down to 16 KiB
    by_buckets = [all_reduce_seconds(2**18, k, repeats=5) for k in bucket_counts]
    return {"epochs": epochs, "cpu": cpu, "examples": x.shape[0],
            "parameters": sum(p.data.numel() for p in single.parameters()),
            "all_reduce_numel": sizes, "all_reduce_by_size": by_size,
            "bucket_numel": 2**18, "bucket_counts": bucket_counts,
            "all_reduce_by_buckets": by_buckets}


def run(rank: int, world_size: int, out: Path, *, init_method: str = "env://",
        rounds: int = 4, batch_sizes: tuple[int, ...] = (64, 512),
        random_data: bool = False) -> None:
    """Join the gloo group as ``rank`` of ``world_size``, run the three parts, and (rank 0)
    save every rank's record to ``out/results.pt``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        record = {"world_size": world_size, "training": training_runs(rank, world_size),
                  "sync_batchnorm": sync_batchnorm_run(rank, world_size),
                  "timing": timing_runs(rank, world_size, rounds, batch_sizes, random_data)}
        gathered = [None] * world_size if rank == 0 else None
        dist.gather_object(record, gathered, dst=0)
        if rank == 0:
            Path(out).mkdir(parents=True, exist_ok=True)
            torch.save(gathered, Path(out) / "results.pt")
    finally:
        dist.destroy_process_group()


def forked(rank: int, world_size: int, out: Path, random_data: bool = False) -> None:
    """:func:`run` in a process forked by ``torch.multiprocessing.start_processes(...,
    start_method="fork")`` (which passes ``rank`` first): the rendezvous is a file in ``out``,
    and the output goes to ``out/rank<r>.log``, not to the parent's streams (a notebook's)."""
    with open(Path(out) / f"rank{rank}.log", "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = os.fdopen(1, "w", buffering=1, closefd=False)
    run(rank, world_size, out, init_method=f"file://{Path(out).resolve()}/rendezvous",
        random_data=random_data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.pt")
    parser.add_argument("--rounds", type=int, default=4, help="timed epochs per configuration")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512],
                        help="the global batches of the timing")
    parser.add_argument("--random-data", action="store_true",
                        help="time on random images of the digits' shape (no scikit-learn)")
    args = parser.parse_args()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])  # from torchrun
    run(rank, world_size, args.out, rounds=args.rounds, batch_sizes=tuple(args.batch_sizes),
        random_data=args.random_data)
    if rank == 0:
        print(f"ddp_demo: {world_size} ranks, results in {args.out / 'results.pt'}")


if __name__ == "__main__":
    main()
