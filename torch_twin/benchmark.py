"""Time and memory of one training step: mini_dl against torch.nn + autograd + torch.optim.

Used by ``benchmarks/run.py`` (the command line) and by the chapter "What autograd costs".
A *training step* is what a training loop does for each mini-batch: ``zero_grad``, forward,
loss, backward, ``optimizer.step()`` (SGD). Two multilayer perceptrons (``CASES``):

- ``disk``: the book's disk network 2-25-25-25-2 (ReLU, Tanh output), MSE on one-hot targets;
- ``mnist``: 784-512-512-512-10 (ReLU), cross-entropy, random data of MNIST's shape;

and two convolutional networks (``CNN_CASES``), cross-entropy and SGD with momentum 0.9 on
random 28 x 28 images, batch 64:

- ``lenet``: LeNet-5, Conv2d(1, 6, 5, padding=2) ReLU MaxPool2d(2) Conv2d(6, 16, 5) ReLU
  MaxPool2d(2) Flatten Linear(400, 120) ReLU Linear(120, 84) ReLU Linear(84, 10);
- ``lenet_bn``: the same with BatchNorm2d after each convolution.

Both frameworks start from the same weights (``to_torch`` copies them) and train on the same
batches, in the same process, float32 unless told otherwise. mini_dl's first layer gets
``needs_input_grad = False``: torch skips that gradient too, because the data does not require
grad (``input_grad=True`` times mini_dl's default instead, which computes it).
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import mini_dl as dl

from . import fit_torch, max_parameter_difference, to_torch

# float32 round-off summed in different orders, after a few steps, stays near 1e-7; a wrong
# gradient moves the parameters by far more than this in one step.
PARITY_TOLERANCE = 1e-4
SWEEP_SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000, 4096)


@dataclass(frozen=True)
class Case:
    """A network (layer widths, input first), its output activation, its loss and its data.

    With ``features`` (a function that builds a list of layers, e.g. convolutions), the network
    is ``features()``, ``Flatten()``, then the layers of ``widths``, and one example has the
    shape ``input_shape``.
    """

    name: str
    label: str
    widths: tuple[int, ...]
    output: str | None  # "tanh" or None (logits)
    loss: str  # "mse" (one-hot targets) or "cross_entropy" (class indices)
    lr: float
    momentum: float = 0.0  # of SGD, in both frameworks
    features: Callable[[], list[dl.Module]] | None = None
    input_shape: tuple[int, ...] | None = None  # one example's shape; (widths[0],) by default
    batch_size: int = 100  # the benchmark's default
    sweep_sizes: tuple[int, ...] = SWEEP_SIZES

    def model(self, seed: int = 0) -> dl.Sequential:
        """``features()`` and ``Flatten()`` if any, then Linear layers with ReLU between them,
        then the output activation; seeded (the layers drawn in this order, as in torch)."""
        torch.manual_seed(seed)
        layers = [*self.features(), dl.Flatten()] if self.features else []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(self.widths)):
            last = index == len(self.widths) - 2
            layers += [dl.Linear(fan_in, fan_out)] + ([] if last else [dl.ReLU()])
        return dl.Sequential(*layers, *([dl.Tanh()] if self.output == "tanh" else []))

    def criteria(self) -> tuple[dl.Module, torch.nn.Module]:
        if self.loss == "mse":
            return dl.MSELoss(), torch.nn.MSELoss()
        return dl.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def batches(self, batch_size: int, count: int, *, seed: int = 0, device="cpu",
                dtype=torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``count`` batches ``(x, target)``: disk points, or uniform [0, 1) pixels and labels."""
        n, classes = batch_size * count, self.widths[-1]
        if self.name == "disk":
            x, labels = dl.disk_dataset(n, seed=seed)
        else:
            generator = torch.Generator().manual_seed(seed)
            x = torch.rand(n, *(self.input_shape or self.widths[:1]), generator=generator)
            labels = torch.randint(0, classes, (n,), generator=generator)
        target = dl.one_hot(labels, classes).to(dtype) if self.loss == "mse" else labels
        return list(zip(x.to(device, dtype).split(batch_size), target.to(device).split(batch_size)))


CASES = {
    "disk": Case("disk", "disk MLP 2-25-25-25-2, MSE", (2, 25, 25, 25, 2), "tanh", "mse",
                 lr=0.1),
    "mnist": Case("mnist", "MNIST-size MLP 784-512-512-512-10, cross-entropy",
                  (784, 512, 512, 512, 10), None, "cross_entropy", lr=0.02),
}


def lenet_features(batch_norm: bool = False) -> list[dl.Module]:
    """LeNet-5's convolutional part for 28 x 28 images (padding 2: LeNet's 32 x 32): two blocks
    of a 5 x 5 convolution (6, then 16 channels), [BatchNorm2d,] ReLU and 2 x 2 max pooling,
    which leave 16 x 5 x 5 = 400 features."""
    def block(in_channels, out_channels, padding):
        return [dl.Conv2d(in_channels, out_channels, 5, padding=padding),
                *([dl.BatchNorm2d(out_channels)] if batch_norm else []), dl.ReLU(),
                dl.MaxPool2d(2)]
    return block(1, 6, 2) + block(6, 16, 0)


def lenet_with_batch_norm() -> list[dl.Module]:
    return lenet_features(batch_norm=True)


LENET = {"widths": (400, 120, 84, 10), "output": None, "loss": "cross_entropy", "lr": 0.01,
         "momentum": 0.9, "input_shape": (1, 28, 28), "batch_size": 64,
         "sweep_sizes": (8, 16, 32, 64, 128, 256, 512, 1024)}
CNN_CASES = {
    "lenet": Case("lenet", "LeNet-5 on 28x28, cross-entropy, SGD momentum",
                  features=lenet_features, **LENET),
    "lenet_bn": Case("lenet_bn", "LeNet-5 + BatchNorm2d on 28x28, cross-entropy, SGD momentum",
                     features=lenet_with_batch_norm, **LENET),
}
ALL_CASES = {**CASES, **CNN_CASES}  # what benchmarks/run.py offers


# How a step holds memory: each framework its own default way, or both the same way
RULES = {
    None: "each framework's defaults",
    "mini_dl": "caches/graph kept after backward, gradients zeroed in place",
    "torch": "caches/graph released during backward, gradients set to None",
}


def training_step(framework: str, case: Case, reference: dl.Sequential, *,
                  input_grad: bool = False, rules: str | None = None) -> tuple:
    """``(model, step)``: a copy of ``reference`` (mini_dl or its torch twin) and a function
    ``step(x, target)`` that trains it by one SGD step, the mini_dl way (hand-written backward)
    or the torch way (``loss.backward()``).

    ``rules`` (see ``RULES``) says how the step holds memory. ``None``: each framework's
    defaults. ``"mini_dl"``: mini_dl's defaults for both (torch: ``zero_grad(set_to_none=False)``
    and ``backward(retain_graph=True)``). ``"torch"``: torch's defaults for both (mini_dl:
    ``zero_grad(set_to_none=True)`` and ``retain_caches(False)``).
    """
    if rules not in RULES:
        raise ValueError(f"training_step: rules must be one of {list(RULES)}, got {rules!r}")
    ours, theirs = case.criteria()
    if framework == "torch":
        model = to_torch(reference)
        optimizer = torch.optim.SGD(model.parameters(), lr=case.lr, momentum=case.momentum)
        keep = rules == "mini_dl"

        def step(x, target):
            optimizer.zero_grad(set_to_none=not keep)
            theirs(model(x), target).backward(retain_graph=keep)
            optimizer.step()
    else:
        model = copy.deepcopy(reference)
        model[0].needs_input_grad = input_grad
        optimizer = dl.SGD(model.parameters(), lr=case.lr, momentum=case.momentum)
        release = rules == "torch"
        model.retain_caches(not release)
        ours.retain_caches(not release)

        def step(x, target):
            optimizer.zero_grad(set_to_none=release)
            ours(model(x), target)
            model.backward(ours.backward())
            optimizer.step()
    return model, step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(step, batches: list, steps: int, device: torch.device) -> float:
    """Wall-clock seconds per step over ``steps`` steps cycling through ``batches``."""
    synchronize(device)
    start = time.perf_counter()
    for index in range(steps):
        step(*batches[index % len(batches)])
    synchronize(device)
    return (time.perf_counter() - start) / steps


def compare(case: Case, batch_size: int | None = None, *, reps: int = 15,
            steps: int | None = None,
            block_seconds: float = 0.05, warmup: int = 5, device="cpu",
            dtype=torch.float32, input_grad: bool = False, rules: str | None = None) -> dict:
    """Time a training step of both frameworks, ``reps`` times each, after ``warmup`` steps.

    Each repetition times ``steps`` steps of one framework then of the other (the order
    alternates); ``steps`` defaults to what fills about ``block_seconds``. After the warm-up both
    models must agree to ``PARITY_TOLERANCE``: the two timings measure the same computation.
    Returns the settings, the seconds per step of every repetition, their ratios (mini_dl /
    torch), the medians, and the ratio of the two fastest repetitions. ``rules``: as in
    :func:`training_step`; ``batch_size`` defaults to the case's.
    """
    batch_size = batch_size or case.batch_size
    device = torch.device(device)
    reference = case.model().to(device=device, dtype=dtype)
    models, sides = {}, {}
    for name in ("mini_dl", "torch"):
        models[name], sides[name] = training_step(name, case, reference, input_grad=input_grad,
                                                  rules=rules)
    batches = case.batches(batch_size, 4, device=device, dtype=dtype)
    warm = {name: seconds_per_step(step, batches, warmup, device) for name, step in sides.items()}
    difference = max_parameter_difference(models["mini_dl"], models["torch"])
    if not difference <= PARITY_TOLERANCE:
        raise RuntimeError(f"benchmark {case.name}: mini_dl and torch parameters differ by "
                           f"{difference:.1e} > {PARITY_TOLERANCE:.0e}: not the same computation")
    steps = steps or max(1, round(block_seconds / max(warm.values())))
    times = _alternate(lambda name: seconds_per_step(sides[name], batches, steps, device), reps)
    return {"case": case.name, "batch_size": batch_size, "device": str(device),
            "dtype": str(dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
            "input_grad": input_grad, "rules": rules, "reps": reps, "steps": steps,
            "parity_max_parameter_difference": difference, **_summary(times)}


def _alternate(seconds, reps: int) -> dict[str, list[float]]:
    """``reps`` timings ``seconds(name)`` of each framework, alternating which goes first."""
    times = {"mini_dl": [], "torch": []}
    for rep in range(reps):
        for name in (("mini_dl", "torch") if rep % 2 == 0 else ("torch", "mini_dl")):
            times[name].append(seconds(name))
    return times


def _summary(times: dict[str, list[float]]) -> dict:
    """Every timing, the per-repetition ratios mini_dl / torch, the medians, and the ratio of
    the two fastest repetitions (on a shared machine other processes only ever add time: the
    fastest repetitions are the least disturbed ones)."""
    ratios = [ours / theirs for ours, theirs in zip(times["mini_dl"], times["torch"])]
    return {"mini_dl_seconds": times["mini_dl"], "torch_seconds": times["torch"],
            "ratios": ratios, "mini_dl_median": statistics.median(times["mini_dl"]),
            "torch_median": statistics.median(times["torch"]),
            "median_ratio": statistics.median(ratios),
            "best_ratio": min(times["mini_dl"]) / min(times["torch"])}


def torch_epoch(model: torch.nn.Module, criterion: torch.nn.Module,
                optimizer: torch.optim.Optimizer, batches: dl.MiniBatches) -> float:
    """One epoch of torch's textbook loop over ``batches``, then what ``mini_dl.fit`` does after
    each epoch: the loss and accuracy of the whole training set in eval mode (under
    ``torch.no_grad``). Returns the mean mini-batch loss."""
    mean_loss, = fit_torch(model, criterion, optimizer, batches, epochs=1)
    x_all, target_all = batches.tensors
    model.eval()
    with torch.no_grad():
        output = model(x_all)
        criterion(output, target_all).item()
        labels = target_all.argmax(1) if target_all.ndim == 2 else target_all
        (output.argmax(1) == labels).float().mean().item()
    model.train()
    return mean_loss


def compare_fit(case: Case, images: int = 10_000, batch_size: int | None = None, *,
                reps: int = 5, device="cpu", dtype=torch.float32) -> dict:
    """Seconds per epoch of ``mini_dl.fit`` (``epochs=1``, no progress bar) against
    :func:`torch_epoch` on the same ``images`` examples in the same mini-batches (a
    ``MiniBatches`` with the same seed each), from the same weights. ``fit`` marks the first
    layer's input as data by itself. One warm-up epoch each, after which both models must agree
    to ``PARITY_TOLERANCE``; then ``reps`` epochs each, alternating which goes first. Returns the
    same keys as :func:`compare` (times per epoch)."""
    batch_size = batch_size or case.batch_size
    device = torch.device(device)
    reference = case.model().to(device=device, dtype=dtype)
    (x, target), = case.batches(images, 1, device=device, dtype=dtype)
    ours, theirs = case.criteria()
    model, twin = copy.deepcopy(reference), to_torch(reference)
    optimizer = dl.SGD(model.parameters(), lr=case.lr, momentum=case.momentum)
    torch_optimizer = torch.optim.SGD(twin.parameters(), lr=case.lr, momentum=case.momentum)
    batches = {"mini_dl": dl.MiniBatches(x, target, batch_size=batch_size, seed=0),
               "torch": dl.MiniBatches(x, target, batch_size=batch_size, seed=0)}
    epochs = {"mini_dl": lambda: dl.fit(model, ours, optimizer, batches["mini_dl"], epochs=1,
                                        progress=False),
              "torch": lambda: torch_epoch(twin, theirs, torch_optimizer, batches["torch"])}

    def seconds(name):
        synchronize(device)
        start = time.perf_counter()
        epochs[name]()
        synchronize(device)
        return time.perf_counter() - start

    for name in epochs:  # warm-up, and the same computation on both sides
        seconds(name)
    difference = max_parameter_difference(model, twin)
    if not difference <= PARITY_TOLERANCE:
        raise RuntimeError(f"benchmark fit {case.name}: mini_dl and torch parameters differ by "
                           f"{difference:.1e} > {PARITY_TOLERANCE:.0e}")
    return {"case": case.name, "images": images, "batch_size": batch_size,
            "device": str(device), "dtype": str(dtype).removeprefix("torch."),
            "threads": torch.get_num_threads(), "reps": reps,
            "parity_max_parameter_difference": difference, **_summary(_alternate(seconds, reps))}


def peak_memory(case: Case, framework: str, batch_size: int | None = None, *, device="cpu",
                dtype=torch.float32, input_grad: bool = False, rules: str | None = None) -> int:
    """Peak bytes of tensor memory of a training step: the model's parameters and gradients,
    what the step keeps for its backward pass, its temporaries, and the batch (``rules``: as in
    :func:`training_step`).

    Measured (``peak_allocated``) while the model is built and trained for two steps on one
    batch; the batch itself, made before, is added. ``batch_size`` defaults to the case's.
    """
    batch_size = batch_size or case.batch_size
    device = torch.device(device)
    reference = case.model().to(device=device, dtype=dtype)
    x, target = case.batches(batch_size, 1, device=device, dtype=dtype)[0]

    def build_and_train():
        _, step = training_step(framework, case, reference, input_grad=input_grad, rules=rules)
        step(x, target)
        step(x, target)

    return peak_allocated(build_and_train, device) + x.nbytes + target.nbytes


def peak_allocated(function, device="cpu") -> int:
    """Highest number of bytes of tensor memory held at once by what ``function()`` allocates.

    On a GPU: ``torch.cuda.max_memory_allocated`` above its value before. On the CPU: the
    running total of PyTorch's CPU allocator, which ``torch.profiler`` records at every
    allocation and free when ``profile_memory=True`` (BLAS scratch space is not allocated
    through it: it is the same for both frameworks, and not counted).
    """
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        function()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch._C._profiler import _EventType

    with profiled(profile_memory=True) as profiler:
        function()

    def walk(events):
        for event in events:
            yield event
            yield from walk(event.children)

    tree = profiler.profiler.kineto_results.experimental_event_tree()
    events = sorted((event for event in walk(tree) if event.tag == _EventType.Allocation),
                    key=lambda event: event.start_time_ns)
    if not events:
        return 0
    first = events[0].extra_fields
    start = first.total_allocated - first.alloc_size  # the total when profiling started
    return max(0, max(event.extra_fields.total_allocated for event in events) - start)


@contextlib.contextmanager
def profiled(**options):
    """``torch.profiler.profile(**options)`` on the CPU, without the two log lines its C++
    library writes to the process's standard error at every start and stop (they carry the
    time and the process id, which would make every notebook output differ)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities, **options) as profiler:
            yield profiler
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def profile_by_layer(framework: str, case: Case, batch_size: int | None = None, *,
                     steps: int = 10, warmup: int = 3) -> dict[tuple[str, str], dict]:
    """Where the time of a training step goes, layer by layer: ``{(layer, phase): {"total":
    seconds, "operators": {name: seconds}}}``, per step, averaged over ``steps`` profiled steps
    (``torch.profiler``, CPU time) after ``warmup``.

    ``layer`` is ``"<index> <class>"`` for the model's layers, ``"loss"``, ``"SGD"``, or
    ``"other"`` (what runs outside them: in torch the seed gradient of ``backward()`` and
    ``AccumulateGrad``, which adds each parameter's gradient into ``.grad``); ``phase`` is
    ``"forward"``, ``"backward"``, ``"step"`` or ``"zero_grad"``. ``operators`` splits the total
    into the self time of each tensor operator run inside, and ``"(between operators)"``, the
    time of the code around them (Python; the autograd engine). mini_dl is timed through a range around
    each ``forward``/``backward``; torch's forwards through module hooks, its backwards through
    the autograd node that each forward operator recorded (matched by sequence number).
    """
    batch_size = batch_size or case.batch_size
    reference = case.model()
    x, target = case.batches(batch_size, 1)[0]
    model, step = training_step(framework, case, reference)
    labels = {id(layer): f"{index} {type(layer).__name__}" for index, layer in enumerate(model)}

    def label(module) -> str | None:
        if type(module).__name__ in ("MSELoss", "CrossEntropyLoss"):
            return "loss"
        return labels.get(id(module))

    for _ in range(warmup):
        step(x, target)
    labelled = _mini_dl_ranges if framework == "mini_dl" else _torch_ranges
    with labelled(label), profiled() as profiler:
        for _ in range(steps):
            step(x, target)
    return _attribute(profiler.events(), steps)


@contextlib.contextmanager
def _mini_dl_ranges(label):
    """Every mini_dl module's forward/backward and SGD's step/zero_grad run inside a profiler
    range named after them, while the context lasts (the classes' methods are wrapped)."""
    methods = [(cls, name) for cls in _subclasses(dl.Module) for name in ("forward", "backward")
               if name in vars(cls)] + [(dl.SGD, "step"), (dl.SGD, "zero_grad")]
    originals = [getattr(cls, name) for cls, name in methods]

    def ranged(function, name):
        def method(self, *args, **kwargs):
            where = "SGD" if isinstance(self, dl.SGD) else label(self)
            if where is None:
                return function(self, *args, **kwargs)
            with torch.profiler.record_function(f"{where}.{name}"):
                return function(self, *args, **kwargs)
        return method

    try:
        for (cls, name), function in zip(methods, originals):
            setattr(cls, name, ranged(function, name))
        yield
    finally:
        for (cls, name), function in zip(methods, originals):
            setattr(cls, name, function)


def _subclasses(cls) -> list[type]:
    return [cls] + [sub for child in cls.__subclasses__() for sub in _subclasses(child)]


@contextlib.contextmanager
def _torch_ranges(label):
    """Every labelled torch.nn module's forward runs inside a profiler range named after it."""
    from torch.nn.modules import module as torch_module

    open_ranges = []

    def enter(module, _):
        if label(module) is not None:
            open_ranges.append(torch.profiler.record_function(f"{label(module)}.forward"))
            open_ranges[-1].__enter__()

    def leave(module, _, __):
        if label(module) is not None:
            open_ranges.pop().__exit__(None, None, None)

    handles = [torch_module.register_module_forward_pre_hook(enter),
               torch_module.register_module_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _attribute(events, steps: int) -> dict[tuple[str, str], dict]:
    """Sum the events' self times onto the nearest enclosing layer range (see
    :func:`profile_by_layer`)."""
    def parents(event):
        while event is not None:
            yield event
            event = event.cpu_parent

    def ranged(event) -> tuple[str, str] | None:
        if event.name.startswith("Optimizer."):  # torch: "Optimizer.step#SGD.step"
            return "SGD", event.name.split(".")[-1]
        layer, _, phase = event.name.rpartition(".")
        if phase in ("forward", "backward", "step", "zero_grad") and layer:
            return layer, phase
        return None

    # torch's backward: an autograd node has the sequence number of the forward operator
    # that recorded it; the forward operator ran inside a labelled range
    forward_of = {}
    for event in events:
        where = next((ranged(e) for e in parents(event) if ranged(e)), None)
        if where and where[1] == "forward" and event.sequence_nr >= 0:
            forward_of.setdefault(event.sequence_nr, where[0])
    table: dict[tuple[str, str], dict] = {}
    for event in events:
        where, own = None, None
        for e in parents(event):
            where = ranged(e)
            if where is None and e.name.startswith("autograd::engine::evaluate_function"):
                where = (forward_of.get(e.sequence_nr, "other"), "backward")
            if where is not None:
                own = e is event
                break
        where = where or ("other", "")
        entry = table.setdefault(where, {"total": 0.0, "operators": {}})
        name = "(between operators)" if own else event.name
        seconds = event.self_cpu_time_total / 1e6 / steps
        entry["total"] += seconds
        entry["operators"][name] = entry["operators"].get(name, 0.0) + seconds
    return table


def crossings(results: list[dict]) -> list[tuple[int, int]]:
    """Pairs of consecutive batch sizes between which the median ratio crosses 1."""
    return [(a["batch_size"], b["batch_size"]) for a, b in itertools.pairwise(results)
            if (a["median_ratio"] - 1) * (b["median_ratio"] - 1) < 0]


def plot_sweep(axes, sweeps: dict[str, list[dict]]) -> None:
    """One panel per case: median milliseconds per step against batch size, both frameworks,
    log-log, with the ratio mini_dl / torch written above each batch size."""
    from mini_dl.plot import MINI_DL, TORCH

    for ax, (name, results) in zip(axes, sweeps.items()):
        sizes = [r["batch_size"] for r in results]
        for framework, color in (("mini_dl", MINI_DL), ("torch", TORCH)):
            ax.plot(sizes, [1e3 * r[f"{framework}_median"] for r in results], "o-",
                    color=color, label=framework)
        for size, r in zip(sizes, results):
            top = 1e3 * max(r["mini_dl_median"], r["torch_median"])
            ax.annotate(f"{r['median_ratio']:.2f}", (size, top), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=8)
        ax.set(xscale="log", yscale="log", xlabel="batch size", title=ALL_CASES[name].label,
               ylabel="ms per training step")
        log_axes_in_plain_numbers(ax)
        ax.margins(y=0.15)
        ax.legend(title="labels: ratio mini_dl / torch", title_fontsize=8, loc="upper left")


def log_axes_in_plain_numbers(ax) -> None:
    """Tick labels 0.5, 1, 2 instead of 5 x 10^-1 on log axes; no labels on minor ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
