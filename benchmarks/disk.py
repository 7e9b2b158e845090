"""Time the disk experiment's training loop: mini_dl against torch.nn + autograd + torch.optim.

Both frameworks train the book's disk model (2-25-25-25-2, ReLU hidden layers, Tanh output,
MSE on one-hot targets, SGD with lr 0.1, mini-batches of 100 of 1,000 points, float32) from the
same initial weights on the same mini-batches, in the same process, one after the other in
each repetition. Only the training loop is timed (``time.perf_counter``, with a CUDA
synchronisation on either side on a GPU); data creation and model building are not.

    python benchmarks/disk.py                          # CPU, 1 thread, 25 epochs, 5 repetitions
    python benchmarks/disk.py --threads 2 --json /tmp/disk.json
    python benchmarks/disk.py --device cuda

Before timing, a warm-up run of both frameworks (at most ``VERIFY_EPOCHS`` epochs) checks that
they end with the same parameters, so that the two timings measure the same computation.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import mini_dl as dl
import torch_twin

N_POINTS, BATCH_SIZE, LR = 1000, 100, 0.1
VERIFY_EPOCHS = 5
# float32 round-off (~1e-7 relative) summed in different orders and amplified over 50 steps
# stays near 1e-7 here; a wrong gradient moves the parameters by ~1e-2 in one epoch.
PARITY_TOLERANCE = 1e-4


def make_model(device: torch.device) -> dl.Sequential:
    """The disk model of the book, seeded, in float32 on ``device``."""
    torch.manual_seed(0)
    model = dl.Sequential(dl.Linear(2, 25), dl.ReLU(), dl.Linear(25, 25), dl.ReLU(),
                          dl.Linear(25, 25), dl.ReLU(), dl.Linear(25, 2), dl.Tanh())
    return model.to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Two bare loops, step for step alike, rather than dl.fit / torch_twin.fit_torch: fit also
# evaluates the training accuracy after each epoch, and both call loss.item() per step (a
# GPU synchronisation), which would time more than the training itself.
def train_mini_dl(model: dl.Module, batches: dl.MiniBatches, epochs: int) -> None:
    criterion, optimizer = dl.MSELoss(), dl.SGD(model.parameters(), lr=LR)
    for _ in range(epochs):
        for x, target in batches:
            optimizer.zero_grad()
            criterion(model(x), target)
            model.backward(criterion.backward())
            optimizer.step()


def train_torch(model: torch.nn.Module, batches: dl.MiniBatches, epochs: int) -> None:
    criterion, optimizer = torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(epochs):
        for x, target in batches:
            optimizer.zero_grad()
            criterion(model(x), target).backward()
            optimizer.step()


def timed(train, model, batches: dl.MiniBatches, epochs: int, device: torch.device) -> float:
    """Seconds spent in ``train(model, batches, epochs)``."""
    synchronize(device)
    start = time.perf_counter()
    train(model, batches, epochs)
    synchronize(device)
    return time.perf_counter() - start


def run_pair(x: torch.Tensor, target: torch.Tensor, *, epochs: int, seed: int,
             device: torch.device) -> tuple[float, float, float]:
    """Train both frameworks from the same initial weights on the same batches.

    Returns ``(mini_dl seconds, torch seconds, largest parameter difference)``.
    """
    model = make_model(device)
    twin = torch_twin.to_torch(model)  # copied before training: the same starting point
    ours = timed(train_mini_dl, model, dl.MiniBatches(x, target, batch_size=BATCH_SIZE,
                                                      seed=seed), epochs, device)
    theirs = timed(train_torch, twin, dl.MiniBatches(x, target, batch_size=BATCH_SIZE,
                                                     seed=seed), epochs, device)
    return ours, theirs, torch_twin.max_parameter_difference(model, twin)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--epochs", type=int, default=25, help="epochs per timed run (25)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (5)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    args = parser.parse_args(argv)
    for name in ("threads", "epochs", "reps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, and return the results (``median_ratio`` included)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, labels = dl.disk_dataset(N_POINTS, seed=0)
    x, target = x.to(device), dl.one_hot(labels, 2).to(device)

    # warm-up (caches, lazy initialisation, CUDA kernels) that also proves parity
    *_, difference = run_pair(x, target, epochs=min(args.epochs, VERIFY_EPOCHS), seed=0,
                              device=device)
    if not difference <= PARITY_TOLERANCE:
        raise RuntimeError(f"disk benchmark: mini_dl and torch parameters differ by "
                           f"{difference:.1e} > {PARITY_TOLERANCE:.0e}; not the same computation")

    print(f"disk benchmark: {args.epochs} epochs x {N_POINTS // BATCH_SIZE} steps, batch "
          f"{BATCH_SIZE}, float32, {device}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"parity after the warm-up: largest parameter difference {difference:.1e}")
    print(f"{'rep':>4}{'mini_dl s':>12}{'torch s':>12}{'ratio':>9}")
    times_mini_dl, times_torch, ratios = [], [], []
    for rep in range(args.reps):
        ours, theirs, _ = run_pair(x, target, epochs=args.epochs, seed=rep + 1, device=device)
        times_mini_dl.append(ours)
        times_torch.append(theirs)
        ratios.append(ours / theirs)
        print(f"{rep + 1:>4}{ours:>12.3f}{theirs:>12.3f}{ratios[-1]:>9.2f}")
    results = {
        "device": str(device), "threads": args.threads, "epochs": args.epochs,
        "reps": args.reps, "batch_size": BATCH_SIZE, "torch_version": torch.__version__,
        "parity_max_parameter_difference": difference,
        "mini_dl_seconds": times_mini_dl, "torch_seconds": times_torch, "ratios": ratios,
        "median_ratio": statistics.median(ratios),
    }
    print(f"median time ratio mini_dl/torch: {results['median_ratio']:.2f} "
          f"(mini_dl {statistics.median(times_mini_dl):.3f} s, "
          f"torch {statistics.median(times_torch):.3f} s)")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
