"""Time a training step of mini_dl against torch.nn + autograd + torch.optim, side by side.

Cases (``torch_twin.benchmark.ALL_CASES``): ``disk``, the book's 2-25-25-25-2 network with MSE,
and ``mnist``, 784-512-512-512-10 with cross-entropy on random data of MNIST's shape, batch 100,
SGD; ``lenet``, LeNet-5 on random 28 x 28 images, and ``lenet_bn``, the same with BatchNorm2d
after each convolution, batch 64, SGD with momentum 0.9, cross-entropy; float32. ``gpt``
(``torch_twin.gpt.GPT_CASE``, not part of ``all``: run it by name), the character GPT of the
chapter "Experiment: a character-level GPT": 2 pre-norm layers, d_model 128, 4 heads,
feed-forward 512, GELU, context 64, vocabulary 96, batch 32, AdamW, cross-entropy over the
(B * T, V) logits. Both frameworks start from the same weights and see the same batches, in
the same process. After a warm-up that also checks that both end with the same parameters, each
repetition times a block of steps of one framework, then of the other (alternating which goes
first). The table gives the median time per step of each, the median of the per-repetition
ratios mini_dl / torch (below 1: mini_dl is faster) with their range, ``best``: the ratio of
the two fastest repetitions (on a shared machine other processes only add time), and the peak
memory of a training step (``torch_twin.benchmark.peak_memory``). A second table gives the peak
memory under each of ``torch_twin.benchmark.RULES``: each framework's defaults, both keeping
caches and zeroing gradients in place (mini_dl's defaults), both releasing them (torch's).

    python benchmarks/run.py                                 # all four cases, CPU, 1 thread
    python benchmarks/run.py --sweep --plot /tmp/sweep.png   # each case's batch sizes as well
    python benchmarks/run.py --case lenet --reps 21 --threads 2
    python benchmarks/run.py --case gpt --reps 21 --threads 2
    python benchmarks/run.py --device cuda --json /tmp/cuda.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from torch_twin import benchmark, gpt

CASES = {**benchmark.ALL_CASES, gpt.GPT_CASE.name: gpt.GPT_CASE}  # "all": ALL_CASES


def benchmark_of(name: str):
    """The module whose ``compare`` and ``peak_memory`` time case ``name``."""
    return gpt if name == gpt.GPT_CASE.name else benchmark


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all",
                        help="a case, or all but gpt (the default)")
    parser.add_argument("--batch-size", type=int, help="batch size (each case's: 100 for the "
                        "MLPs, 64 for LeNet)")
    parser.add_argument("--reps", type=int, default=15, help="timed repetitions (15)")
    parser.add_argument("--steps", type=int, help="steps per repetition (default: ~0.05 s)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--input-grad", action="store_true", help="mini_dl also computes the "
                        "first layer's input gradient (its default; torch skips it)")
    parser.add_argument("--rules", choices=["default", "mini_dl", "torch"], default="default",
                        help="how the timed steps hold memory: each framework's defaults "
                        "(default), mini_dl's for both, or torch's for both")
    parser.add_argument("--sweep", action="store_true", help="also time batch sizes "
                        + ", ".join(map(str, benchmark.SWEEP_SIZES)) + " (MLPs), "
                        + ", ".join(map(str, benchmark.CNN_CASES["lenet"].sweep_sizes))
                        + " (LeNet), " + ", ".join(map(str, gpt.GPT_CASE.sweep_sizes))
                        + " (gpt)")
    parser.add_argument("--sweep-sizes", type=int, nargs="+", metavar="N",
                        help="batch sizes of --sweep (default: each case's)")
    parser.add_argument("--plot", metavar="PATH", help="with --sweep: save the plot to PATH")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    args = parser.parse_args(argv)
    for name in ("batch_size", "reps", "steps", "threads"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if any(size <= 0 for size in args.sweep_sizes or ()):
        parser.error(f"--sweep-sizes must be positive, got {args.sweep_sizes}")
    if args.plot and not args.sweep:
        parser.error("--plot needs --sweep")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def case_width(rows: list[dict]) -> int:
    """Width of the first column: the longest case name, and at least 6."""
    return max(6, *(len(r["case"]) + 1 for r in rows))


def print_table(rows: list[dict]) -> None:
    width = case_width(rows)
    print(f"{'case':<{width}}{'batch':>6}{'mini_dl ms':>12}{'torch ms':>10}{'ratio':>7}"
          f"{'(min-max)':>12}{'best':>6}{'peak MB mini_dl':>17}{'torch':>8}")
    for r in rows:
        spread = f"({min(r['ratios']):.2f}-{max(r['ratios']):.2f})"
        memory = (f"{r['mini_dl_peak_bytes'] / 1e6:>17.3f}{r['torch_peak_bytes'] / 1e6:>8.3f}"
                  if "torch_peak_bytes" in r else "")
        print(f"{r['case']:<{width}}{r['batch_size']:>6}{1e3 * r['mini_dl_median']:>12.3f}"
              f"{1e3 * r['torch_median']:>10.3f}{r['median_ratio']:>7.2f}{spread:>12}"
              f"{r['best_ratio']:>6.2f}{memory}")


def print_memory_table(rows: list[dict]) -> None:
    width = case_width(rows)
    print("\npeak memory of a training step (MB) under each way of holding memory")
    print(f"{'case':<{width}}{'batch':>6}  {'rules':<62}{'mini_dl':>8}{'torch':>8}")
    for r in rows:
        for key, label in benchmark.RULES.items():
            peaks = r["peak_bytes_by_rules"][str(key)]
            print(f"{r['case']:<{width}}{r['batch_size']:>6}  {label:<62}"
                  f"{peaks['mini_dl'] / 1e6:>8.3f}{peaks['torch'] / 1e6:>8.3f}")


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the tables, and return the results (also written to --json)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(benchmark.ALL_CASES) if args.case == "all" else [args.case]
    rules = None if args.rules == "default" else args.rules
    options = {"reps": args.reps, "steps": args.steps, "device": args.device,
               "input_grad": args.input_grad, "rules": rules}
    print(f"mini_dl / torch, one training step (zero_grad, forward, loss, backward, SGD step; "
          f"AdamW for gpt), "
          f"float32, {args.device}, {args.threads} thread(s), torch {torch.__version__}; "
          f"first layer's input gradient: {'computed' if args.input_grad else 'skipped'} "
          f"by mini_dl, skipped by torch; memory: {benchmark.RULES[rules]}")
    results = {"settings": {**vars(args), "torch_version": torch.__version__}, "cases": []}
    for name in names:
        case, timer = CASES[name], benchmark_of(name)
        row = timer.compare(case, args.batch_size, **options)
        row["peak_bytes_by_rules"] = {
            str(key): {framework: timer.peak_memory(case, framework, args.batch_size,
                                                    device=args.device,
                                                    input_grad=args.input_grad, rules=key)
                       for framework in ("mini_dl", "torch")}
            for key in benchmark.RULES}
        for framework in ("mini_dl", "torch"):  # the peak under the rules the step was timed with
            row[f"{framework}_peak_bytes"] = row["peak_bytes_by_rules"][str(rules)][framework]
        results["cases"].append(row)
    print_table(results["cases"])
    print_memory_table(results["cases"])
    if args.sweep:
        results["sweep"] = {
            name: [benchmark_of(name).compare(CASES[name], size, **options)
                   for size in args.sweep_sizes or CASES[name].sweep_sizes]
            for name in names}
        for name, rows in results["sweep"].items():
            print(f"\nbatch-size sweep, {CASES[name].label}")
            print_table(rows)
            where = benchmark.crossings(rows)
            print("the ratio crosses 1 between batch sizes "
                  + ", ".join(f"{a} and {b}" for a, b in where) if where else
                  f"the ratio stays {'below' if rows[0]['median_ratio'] < 1 else 'above'} 1")
        plotted = {name: rows for name, rows in results["sweep"].items()
                   if name in benchmark.ALL_CASES}  # plot_sweep knows ALL_CASES' labels
        if args.plot and plotted:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from mini_dl import plot
            plot.use_book_style()
            figure, axes = plt.subplots(1, len(plotted), figsize=(5.5 * len(plotted), 4.2),
                                        squeeze=False)
            benchmark.plot_sweep(axes[0], plotted)
            figure.tight_layout()
            figure.savefig(args.plot)
            print(f"plot written to {args.plot}")
    if args.json:
        write_json(args.json, results)
    return results


def write_json(path: str, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
