"""The training loop: ``fit``; the metrics ``accuracy`` and ``f1_score``."""
from __future__ import annotations

import contextlib
import math
import os

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .data import MiniBatches
from .distributed import DistributedDataParallel
from .lr_scheduler import LRScheduler, ReduceLROnPlateau
from .module import Module, Sequential
from .optim import Optimizer


def _classes(output: torch.Tensor, target: torch.Tensor, caller: str
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, true) class indices, both ``(N,)``: the arg-max of each row of ``output``
    ``(N, C)``, and ``target`` itself if it is ``(N,)`` indices or its arg-max if ``(N, C)``."""
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise ValueError(f"{caller}: output must have shape (N, C), got "
                         f"{getattr(output, 'shape', output)}")
    if (not isinstance(target, torch.Tensor) or target.ndim not in (1, 2)
            or target.shape[0] != output.shape[0]):
        raise ValueError(f"{caller}: target must have shape ({output.shape[0]},) or "
                         f"({output.shape[0]}, C), got {getattr(target, 'shape', target)}")
    return output.argmax(1), target.argmax(1) if target.ndim == 2 else target


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target class.

    ``output`` has shape ``(N, C)``; ``target`` is ``(N,)`` class indices or ``(N, C)`` one-hot
    (or +-1) rows, whose arg-max is the class.
    """
    predicted, labels = _classes(output, target, "accuracy")
    return (predicted == labels).double().mean().item()


def f1_score(output: torch.Tensor, target: torch.Tensor, positive: int = 1) -> float:
    """F1 score of class ``positive``: the harmonic mean of precision and recall::

        F1 = 2 TP / (2 TP + FP + FN),

    where a row is predicted positive when its arg-max is ``positive``; TP counts the rows
    predicted positive whose target class is ``positive``, FP those whose target class is
    another, FN the rows of target class ``positive`` predicted as another class. Unlike the
    accuracy, it ignores the rows correctly left out of the class, so a classifier that never
    predicts a rare class scores 0. With no positive row at all, predicted or true, it is 0
    (scikit-learn's default). Shapes as in :func:`accuracy`.

    Example:
        >>> import torch
        >>> output = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
        >>> labels = torch.tensor([0, 1, 0, 1])  # TP = 1 (row 1), FP = 1 (row 2), FN = 1 (row 3)
        >>> f1_score(output, labels), f1_score(output, labels, positive=0)
        (0.5, 0.5)
    """
    predicted, labels = _classes(output, target, "f1_score")
    if isinstance(positive, bool) or not isinstance(positive, int) or not (
            0 <= positive < output.shape[1]):
        raise ValueError(f"f1_score: positive must be a class index in [0, {output.shape[1]}), "
                         f"got {positive!r}")
    true_positives = ((predicted == positive) & (labels == positive)).sum().item()
    positives = (predicted == positive).sum().item() + (labels == positive).sum().item()
    return 2 * true_positives / positives if positives else 0.0


def evaluate(model: Module, criterion: Module, x: torch.Tensor, target: torch.Tensor
             ) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on ``(x, target)`` in eval mode; the mode is restored."""
    was_training = model.training
    model.eval()
    output = model(x)
    loss = criterion(output, target).item()
    model.train(was_training)
    return loss, accuracy(output, target)


def fit(model: Module, criterion: Module, optimizer: Optimizer, batches: MiniBatches, *,
        epochs: int, validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        scheduler=None, progress: bool = True, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, detect_anomaly: bool = False) -> dict[str, list[float]]:
    """Train for ``epochs`` passes over ``batches`` and return the per-epoch history.

    One step per mini-batch: ``zero_grad`` -> forward -> loss -> ``criterion.backward()`` ->
    ``model.backward`` -> ``optimizer.step()``. After each epoch the model is evaluated on the
    whole training set and on ``validation`` (if given). A ``scheduler`` is stepped once after
    each epoch: ``ReduceLROnPlateau`` (or any object that is not a mini_dl ``LRScheduler``) with
    the validation loss, or the train loss without one; the calendar schedulers (``StepLR``,
    ``CosineAnnealingLR``, ``SequentialLR``, ...) with no metric, as torch's recipes do, so
    their epoch counts fit's epochs (a ``OneCycleLR`` stepped here needs ``total_steps=epochs``).
    The model's first module is told that its input is the data (``needs_input_grad = False``
    while ``fit`` runs, then restored), so no step computes a gradient nobody reads.

    Checkpoints: with ``checkpoint=path``, the end of every epoch (after the scheduler's step)
    writes :func:`~mini_dl.save_checkpoint` of the model, optimizer, scheduler, random-number
    states and data order, with ``epoch`` = the epochs done and the history in ``extra``; the
    write is atomic, so an epoch that fails or a process that is killed leaves the last good
    file. With ``resume=True`` as well, ``fit`` first loads that file (if it exists; if not, it
    starts afresh) and runs the epochs from the file's epoch to ``epochs``, returning the whole
    history, the saved epochs' included; a file at ``epochs`` (or beyond) returns its history
    without training. A resumed run takes exactly the steps of the run that was never
    interrupted: its parameters are bit-identical (same shuffling, same dropout masks, same
    rates), wherever the first run was killed (before the first checkpoint, there is no file,
    and the resumed run starts afresh, as the first one did). Build the model, optimizer,
    scheduler and batches as for the first run; the file overwrites their state.

    Guards: a mini-batch loss that is not finite (``nan``, ``inf``) raises ``FloatingPointError``
    naming the epoch and the batch (both counted from 0) before that batch's step, so the
    parameters are those after the last finite step and the checkpoint on disk is the last
    good epoch (its ``epoch``, the epochs done, is the failing epoch's index: resuming redoes
    it). ``detect_anomaly=True`` also checks every module's output (forward) and input and
    parameter gradients (backward), and names the first module that produced a non-finite value
    by its path in the model, e.g. ``Sequential[3] (Linear)`` or ``Sequential[0][2] (Linear)``
    for nested containers (the criterion is checked too, and so are the end-of-epoch
    evaluations). It wraps the modules' ``forward`` and
    ``backward`` for the duration of ``fit`` (restored afterwards, also after an error) and costs
    a pass over every tensor; without it, the guard is one ``math.isfinite`` per batch.

    Returns ``{"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}``, lists with one
    entry per epoch; ``train_loss`` is the mean of the mini-batch losses seen during the epoch;
    ``lr`` is the rate used during the epoch by the first parameter group (a float of
    ``optimizer.param_groups[0]["lr"]``; the other groups' rates are in ``param_groups``).

    Under torchrun (data parallelism): wrap the model in :class:`~mini_dl.DistributedDataParallel`
    and build ``batches`` as usual (in an initialised process group, :class:`~mini_dl.MiniBatches`
    shards each epoch's permutation over the ranks). When ``batches`` is sharded over more than
    one rank, ``fit`` runs the same loop on every rank, and: only rank 0 shows the progress bar;
    the train loss's sums and counts are all-reduced, and the end-of-epoch evaluations run on
    ``rank::world_size`` slices of the training and validation sets whose loss sums and correct
    counts are all-reduced, so every rank returns the same global history (equal to one
    process's on the concatenated batches, to rounding); only rank 0 writes the checkpoint (the
    other ranks wait at a barrier), with every rank's random-number state in ``extra``, and with
    ``resume=True`` every rank loads the file (a file system that every rank sees) and takes
    back its own random-number state.

    Example:
        >>> import os, tempfile, torch, mini_dl as dl
        >>> def problem():
        ...     _ = torch.manual_seed(0)
        ...     x, labels = dl.disk_dataset(40)
        ...     model = dl.Sequential(dl.Linear(2, 8), dl.ReLU(), dl.Dropout(0.2), dl.Linear(8, 2))
        ...     optimizer = dl.SGD(model.parameters(), lr=0.1, momentum=0.9)
        ...     batches = dl.MiniBatches(x, dl.one_hot(labels), batch_size=10)
        ...     return model, dl.MSELoss(), optimizer, batches
        >>> path = os.path.join(tempfile.mkdtemp(), "run.pt")
        >>> model, *rest = problem()
        >>> whole = dl.fit(model, *rest, epochs=4, progress=False)
        >>> first = dl.fit(*problem(), epochs=2, checkpoint=path, progress=False)  # "killed" here
        >>> resumed, *rest = problem()
        >>> history = dl.fit(resumed, *rest, epochs=4, checkpoint=path, resume=True, progress=False)
        >>> history == whole, all(torch.equal(p.data, q.data)
        ...                       for p, q in zip(model.parameters(), resumed.parameters()))
        (True, True)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if not isinstance(batches, MiniBatches) or len(batches.tensors) != 2:
        raise TypeError("fit: batches must be a MiniBatches over (inputs, targets)")
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs checkpoint=path (the file to resume from)")
    if checkpoint is not None and scheduler is not None and not (
            hasattr(scheduler, "state_dict") and hasattr(scheduler, "load_state_dict")):
        raise TypeError(f"fit: checkpoint= saves the scheduler's state: a "
                        f"{type(scheduler).__name__} needs state_dict() and load_state_dict()")
    history = {key: [] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                   "lr")}
    start = 0
    if resume and os.path.exists(checkpoint):
        start, history = _resumed(checkpoint, model, optimizer, scheduler, batches, history)
    epoch_range = range(start, epochs)
    if progress and batches.rank == 0:
        from tqdm.auto import tqdm
        epoch_range = tqdm(epoch_range, desc="epochs", initial=start, total=epochs)
    first = _first_module(model)
    needed, first.needs_input_grad = first.needs_input_grad, False  # its input is the data
    try:
        with _anomaly_checks(model, criterion) if detect_anomaly else contextlib.nullcontext():
            _epochs(model, criterion, optimizer, batches, epoch_range, validation, scheduler,
                    history, checkpoint)
    finally:
        first.needs_input_grad = needed
    return history


def _first_module(model: Module) -> Module:
    """The module that receives the data: the first leaf of nested ``Sequential`` containers
    (inside a ``DistributedDataParallel``, if any)."""
    while isinstance(model, DistributedDataParallel) or (
            isinstance(model, Sequential) and len(model)):
        model = model.module if isinstance(model, DistributedDataParallel) else model[0]
    return model


def _sharded(batches: MiniBatches) -> bool:
    """True when ``batches`` is one rank's shard of an initialised process group."""
    return batches.num_replicas > 1 and torch.distributed.is_available() and \
        torch.distributed.is_initialized()


def _all_reduced(values: list[float], like: torch.Tensor) -> list[float]:
    """The sums over the ranks of ``values`` (float64, on the data's device: NCCL needs CUDA)."""
    totals = torch.tensor(values, dtype=torch.float64, device=like.device)
    torch.distributed.all_reduce(totals)
    return totals.tolist()


def _evaluate_sharded(model: Module, criterion: Module, x: torch.Tensor, target: torch.Tensor,
                      batches: MiniBatches) -> tuple[float, float]:
    """:func:`evaluate` over all ranks: each evaluates its ``rank::world_size`` slice; the
    loss sums (a mean loss times the slice's size) and the correct counts are all-reduced."""
    rank, world_size = batches.rank, batches.num_replicas
    x, target = x[rank::world_size].contiguous(), target[rank::world_size].contiguous()
    count, loss_sum, correct = x.shape[0], 0.0, 0.0
    if count:
        was_training = model.training
        model.eval()
        output = model(x)
        loss = criterion(output, target).item()
        model.train(was_training)
        loss_sum = loss if getattr(criterion, "reduction", "mean") == "sum" else loss * count
        predicted, labels = _classes(output, target, "fit")
        correct = float((predicted == labels).sum().item())
    loss_sum, correct, count = _all_reduced([loss_sum, correct, float(count)], x)
    return loss_sum / count, correct / count


def _resumed(checkpoint, model, optimizer, scheduler, batches, history) -> tuple[int, dict]:
    """(epochs done, history so far) from the file, which is loaded into everything."""
    saved = load_checkpoint(checkpoint, model, optimizer, scheduler, batches=batches)
    extra = saved["extra"]
    if saved["epoch"] is None or not isinstance(extra, dict) or not isinstance(
            extra.get("history"), dict) or set(extra["history"]) != set(history):
        raise ValueError(f"fit: {checkpoint} was not written by fit (it has no epoch or no "
                         "history); resume from a file of fit(checkpoint=...)")
    states = extra.get("rank_rng_states")  # written by a data-parallel fit: one per rank
    if _sharded(batches) and isinstance(states, list) and len(states) == batches.num_replicas:
        torch.set_rng_state(states[batches.rank])
    return saved["epoch"], extra["history"]


class _NonFinite(FloatingPointError):
    """Raised inside a step by the anomaly checks; fit adds the epoch and the batch."""


def _epochs(model, criterion, optimizer, batches, epoch_range, validation, scheduler,
            history, checkpoint) -> None:
    x_train, target_train = batches.tensors
    sharded = _sharded(batches)
    evaluation = evaluate if not sharded else (  # the same numbers, over every rank's slice
        lambda *arguments: _evaluate_sharded(*arguments, batches))
    for epoch in epoch_range:
        model.train()
        total, count = 0.0, 0
        for index, (x, target) in enumerate(batches):
            optimizer.zero_grad()
            try:
                loss = criterion(model(x), target).item()
                if not math.isfinite(loss):
                    raise _NonFinite(f"the loss is {loss}")
                model.backward(criterion.backward())
            except _NonFinite as error:
                raise FloatingPointError(f"fit: {error} at epoch {epoch}, batch {index} "
                                         "(counted from 0); no step was taken") from None
            optimizer.step()
            total += loss * x.shape[0]
            count += x.shape[0]
        if sharded:
            total, count = _all_reduced([total, float(count)], x_train)
        history["train_loss"].append(total / count)
        try:  # detect_anomaly's checks also watch the evaluations
            history["train_accuracy"].append(evaluation(model, criterion, x_train,
                                                        target_train)[1])
            if validation is not None:
                val_loss, val_accuracy = evaluation(model, criterion, *validation)
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_accuracy)
        except _NonFinite as error:
            raise FloatingPointError(f"fit: {error} at epoch {epoch} (counted from 0), "
                                     "evaluating after its last step") from None
        history["lr"].append(float(optimizer.param_groups[0]["lr"]))
        if isinstance(scheduler, LRScheduler) and not isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step()  # a calendar schedule: one epoch on
        elif scheduler is not None:
            scheduler.step(history["val_loss"][-1] if validation is not None
                           else history["train_loss"][-1])
        if checkpoint is not None and not sharded:
            save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epoch + 1,
                            extra={"history": history}, batches=batches)
        elif checkpoint is not None:  # rank 0 writes, with every rank's random-number state
            states = [None] * batches.num_replicas
            torch.distributed.all_gather_object(states, torch.get_rng_state())
            if batches.rank == 0:
                save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epoch + 1,
                                extra={"history": history, "rank_rng_states": states},
                                batches=batches)
            torch.distributed.barrier()  # no rank runs ahead of the file on disk


# -- detect_anomaly: every module's output and gradients checked ---------------------------------

def _module_path(model: Module, name: str, module: Module) -> str:
    """``Sequential[3] (Linear)``: where the module ``name`` (a key of ``named_modules``) sits
    in ``model``, indices in brackets, attribute names after dots, its class in parentheses."""
    path = type(model).__name__ + "".join(
        f"[{part}]" if part.isdigit() else f".{part}" for part in name.split(".") if part)
    return f"{path} ({type(module).__name__})" if name else path


@contextlib.contextmanager
def _anomaly_checks(model: Module, criterion: Module):
    """Wrap ``forward`` and ``backward`` of the criterion and of every module of ``model`` (as
    instance attributes, which the class's methods are found behind) with a check that what
    they return, and the gradients of their own parameters, are finite; removed on exit."""
    watched = [(module, _module_path(model, name, module)) for name, module in model.named_modules()]
    watched.append((criterion, f"{type(criterion).__name__} (the criterion)"))
    wrapped = []
    try:
        for module, where in watched:
            for phase in ("forward", "backward"):
                own = module.__dict__.get(phase)  # an instance's own function, if any
                object.__setattr__(module, phase, _checked(module, getattr(module, phase),
                                                           phase, where))
                wrapped.append((module, phase, own))
        yield
    finally:
        for module, phase, own in reversed(wrapped):
            if own is None:
                object.__delattr__(module, phase)
            else:
                object.__setattr__(module, phase, own)


def _checked(module: Module, function, phase: str, where: str):
    def checked(*args):
        result = function(*args)
        values = [("output" if phase == "forward" else "input gradient", value) for value in
                  (result if isinstance(result, tuple) else (result,))]
        if phase == "backward":
            values += [(f"gradient of {name}", p.grad) for name, p in module._parameters.items()
                       if p is not None]
        for what, value in values:
            if isinstance(value, torch.Tensor) and not bool(torch.isfinite(value).all()):
                raise _NonFinite(f"a non-finite {what} in the {phase} pass of {where}")
        return result
    return checked
