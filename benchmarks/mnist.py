"""The reports' MNIST study: one MLP trained with mini_dl and with PyTorch, accuracy and time.

Protocol (the reports', as quoted in issue #4): 784-512-512-512-10 with ReLU hidden layers,
cross-entropy on the 10 logits, SGD with learning rate 0.02, mini-batches of 100, 100 epochs on
the first 10,000 of the 60,000 training images (in file order), test accuracy on the full test
set of 10,000 images. Pixels are scaled to [0, 1] by ``mini_dl.load_mnist``, nothing else.

Both frameworks start from the same initial weights (``torch_twin.to_torch`` copies them before
training) and see the same mini-batches (a ``MiniBatches`` with the same seed), in float32, in
the same process, one after the other. Only the training loops are timed. The report got 95.08%
test accuracy with its framework against 95.23% with PyTorch.

    python benchmarks/mnist.py --data ~/data/mnist --download   # fetch the four files once
    python benchmarks/mnist.py --data ~/data/mnist --json benchmarks/results/mnist.json
    python benchmarks/mnist.py --fake --epochs 1                 # random images: try the code

``--fake`` trains on random images of MNIST's shape (no files needed): its accuracies are chance
level; it only exercises the code and gives a time.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import mini_dl as dl
import torch_twin

HIDDEN, CLASSES, BATCH_SIZE, LR, SEED = 512, 10, 100, 0.02, 0
FAKE_TEST_SIZE = 10_000


def make_model(device: torch.device) -> dl.Sequential:
    """784-512-512-512-10 with ReLU, seeded, in float32 on ``device``."""
    torch.manual_seed(SEED)
    return dl.Sequential(dl.Linear(784, HIDDEN), dl.ReLU(), dl.Linear(HIDDEN, HIDDEN), dl.ReLU(),
                         dl.Linear(HIDDEN, HIDDEN), dl.ReLU(), dl.Linear(HIDDEN, CLASSES)
                         ).to(device)


def fake_mnist(train_size: int) -> tuple[torch.Tensor, ...]:
    """Random images in [0, 1] (multiples of 1/255, as loaded) and random labels."""
    generator = torch.Generator().manual_seed(SEED)
    n = train_size + FAKE_TEST_SIZE
    images = torch.randint(0, 256, (n, 784), generator=generator).float() / 255
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    return images[:train_size], labels[:train_size], images[train_size:], labels[train_size:]


def load(args: argparse.Namespace) -> tuple[torch.Tensor, ...]:
    """``(x_train, labels_train, x_test, labels_test)``, the first ``train_size`` training
    images only."""
    if args.fake:
        return fake_mnist(args.train_size)
    x_train, labels_train = dl.load_mnist(args.data, "train", download=args.download)
    x_test, labels_test = dl.load_mnist(args.data, "test", download=args.download)
    if args.train_size > len(x_train):
        raise ValueError(f"mnist benchmark: --train-size {args.train_size} but {args.data} "
                         f"holds {len(x_train)} training images")
    return x_train[:args.train_size], labels_train[:args.train_size], x_test, labels_test


def train(model, criterion, optimizer, batches: dl.MiniBatches, epochs: int, *,
          autograd: bool) -> None:
    """The bare training loop (no per-epoch evaluation, no ``.item()``), for either framework:
    only the backward differs, hand-written in mini_dl, ``loss.backward()`` in torch."""
    for _ in range(epochs):
        for x, labels in batches:
            optimizer.zero_grad()
            loss = criterion(model(x), labels)
            if autograd:
                loss.backward()
            else:
                model.backward(criterion.backward())
            optimizer.step()


def make_sides(device: torch.device) -> dict[str, tuple]:
    """``{framework: (model, criterion, optimizer, autograd)}``, the same initial weights."""
    model = make_model(device)
    twin = torch_twin.to_torch(model)  # copied before training: the same starting point
    return {
        "mini_dl": (model, dl.CrossEntropyLoss(), dl.SGD(model.parameters(), lr=LR), False),
        "torch": (twin, torch.nn.CrossEntropyLoss(), torch.optim.SGD(twin.parameters(), lr=LR),
                  True),
    }


def timed(device: torch.device, function, *args, **kwargs) -> float:
    """Seconds spent in ``function(*args, **kwargs)``, with a CUDA synchronisation on either
    side on a GPU."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda device: None
    synchronize(device)
    start = time.perf_counter()
    function(*args, **kwargs)
    synchronize(device)
    return time.perf_counter() - start


def test_accuracy(model, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy in eval mode, in chunks of 1,000 images (a mini_dl model or a torch twin)."""
    model.eval()
    with torch.no_grad():
        correct = sum(dl.accuracy(model(xs), ys) * len(ys)
                      for xs, ys in zip(x.split(1000), labels.split(1000)))
    return correct / len(labels)


def positive(text: str) -> int:
    """argparse type: a positive int."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def torch_device(text: str) -> torch.device:
    """argparse type: a torch device that this machine has."""
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("no CUDA device is available")
    return torch.device(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", metavar="DIR", help="directory of the four MNIST IDX files "
                        "(raw or .gz); required unless --fake")
    parser.add_argument("--download", action="store_true",
                        help="download missing files into DIR from the public mirrors")
    parser.add_argument("--fake", action="store_true",
                        help="random images of MNIST's shape instead of MNIST (no files)")
    parser.add_argument("--epochs", type=positive, default=100, help="epochs (100)")
    parser.add_argument("--train-size", type=positive, default=10_000,
                        help="the first N training images (10000)")
    parser.add_argument("--threads", type=positive, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--device", type=torch_device, default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    args = parser.parse_args(argv)
    if args.data is None and not args.fake:
        parser.error("--data DIR is required (or --fake for random images)")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Train both frameworks, print accuracies and times, return them (and write ``--json``)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    x_train, labels_train, x_test, labels_test = (t.to(args.device) for t in load(args))
    data = "random images (--fake)" if args.fake else f"MNIST from {args.data}"
    print(f"mnist benchmark: {data}; {len(x_train)} training and {len(x_test)} test images; "
          f"784-{HIDDEN}-{HIDDEN}-{HIDDEN}-{CLASSES} ReLU, cross-entropy, SGD lr {LR}, batch "
          f"{BATCH_SIZE}, {args.epochs} epochs, float32, {args.device}, {args.threads} thread(s), "
          f"torch {torch.__version__}", flush=True)

    # untimed warm-up (lazy initialisation, caches, CUDA kernels): ten steps of each framework
    for net, criterion, optimizer, autograd in make_sides(args.device).values():
        train(net, criterion, optimizer, dl.MiniBatches(
            x_train[:10 * BATCH_SIZE], labels_train[:10 * BATCH_SIZE], batch_size=BATCH_SIZE),
            1, autograd=autograd)
    sides = make_sides(args.device)
    results = {"data": "fake" if args.fake else "mnist", "train_size": len(x_train),
               "test_size": len(x_test), "epochs": args.epochs, "batch_size": BATCH_SIZE,
               "lr": LR, "device": str(args.device), "threads": args.threads,
               "torch_version": torch.__version__}
    for name, (net, criterion, optimizer, autograd) in sides.items():
        batches = dl.MiniBatches(x_train, labels_train, batch_size=BATCH_SIZE, seed=SEED)
        seconds = timed(args.device, train, net, criterion, optimizer, batches, args.epochs,
                        autograd=autograd)
        results[f"{name}_seconds"] = seconds
        results[f"{name}_test_accuracy"] = test_accuracy(net, x_test, labels_test)
        print(f"{name:>8}: test accuracy {100 * results[f'{name}_test_accuracy']:.2f}%, "
              f"training time {seconds:.2f} s", flush=True)
    results["time_ratio"] = results["mini_dl_seconds"] / results["torch_seconds"]
    # float32 round-off summed in different orders drifts apart over the steps; a wrong
    # gradient would show as a large difference and as different accuracies
    results["max_parameter_difference"] = torch_twin.max_parameter_difference(
        sides["mini_dl"][0], sides["torch"][0])
    print(f"time ratio mini_dl/torch: {results['time_ratio']:.2f}; largest parameter "
          f"difference after training: {results['max_parameter_difference']:.1e}")
    print("the report: 95.08% (its framework) against 95.23% (PyTorch)")
    if args.json:  # benchmarks/results/ may not exist yet
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
