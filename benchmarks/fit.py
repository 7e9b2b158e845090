"""Time ``mini_dl.fit`` against PyTorch's textbook training loop, one epoch at a time.

Each framework trains the same network from the same weights on the same ``--images`` examples
(random data of the case's shape, as in ``run.py``), in the same mini-batches, in one process:
``mini_dl.fit(..., epochs=1)`` against torch's loop (``zero_grad``, forward, loss,
``loss.backward()``, ``step``) followed by the evaluation ``fit`` runs after every epoch (the
training set's loss and accuracy, in eval mode). ``fit`` tells the first layer that its input is
the data, so neither framework computes that gradient. After a warm-up epoch both models must
agree to 1e-4; then each repetition times one epoch of each, alternating which goes first.

    python benchmarks/fit.py                          # MNIST-size MLP and disk, 10,000 images
    python benchmarks/fit.py --case mnist --threads 2 --reps 9
    python benchmarks/fit.py --json /tmp/fit.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from torch_twin import benchmark


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=[*benchmark.CASES, "all"], default="all")
    parser.add_argument("--images", type=int, default=10_000, help="examples per epoch (10000)")
    parser.add_argument("--batch-size", type=int, help="batch size (the case's: 100)")
    parser.add_argument("--reps", type=int, default=5, help="timed epochs of each (5)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "reps", "threads"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    names = list(benchmark.CASES) if args.case == "all" else [args.case]
    rows = [benchmark.compare_fit(benchmark.CASES[name], args.images, args.batch_size,
                                  reps=args.reps, device=args.device) for name in names]
    print(f"mini_dl.fit / torch's loop (+ the same evaluation), one epoch of {args.images} "
          f"examples, float32, {args.device}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'case':<7}{'batch':>6}{'mini_dl s':>11}{'torch s':>9}{'ratio':>7}{'(min-max)':>12}"
          f"{'best':>6}")
    for r in rows:
        spread = f"({min(r['ratios']):.2f}-{max(r['ratios']):.2f})"
        print(f"{r['case']:<7}{r['batch_size']:>6}{r['mini_dl_median']:>11.3f}"
              f"{r['torch_median']:>9.3f}{r['median_ratio']:>7.2f}{spread:>12}"
              f"{r['best_ratio']:>6.2f}")
    results = {"settings": {**vars(args), "torch_version": torch.__version__}, "cases": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
