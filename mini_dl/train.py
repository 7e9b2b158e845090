"""The training loop: ``fit``; the metrics ``accuracy`` and ``f1_score``."""
from __future__ import annotations

import torch

from .data import MiniBatches
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
        scheduler=None, progress: bool = True) -> dict[str, list[float]]:
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

    Returns ``{"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}``, lists with one
    entry per epoch; ``train_loss`` is the mean of the mini-batch losses seen during the epoch;
    ``lr`` is the rate used during the epoch by the first parameter group (a float of
    ``optimizer.param_groups[0]["lr"]``; the other groups' rates are in ``param_groups``).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if not isinstance(batches, MiniBatches) or len(batches.tensors) != 2:
        raise TypeError("fit: batches must be a MiniBatches over (inputs, targets)")
    history = {key: [] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                   "lr")}
    epoch_range = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        epoch_range = tqdm(epoch_range, desc="epochs")
    first = _first_module(model)
    needed, first.needs_input_grad = first.needs_input_grad, False  # its input is the data
    try:
        _epochs(model, criterion, optimizer, batches, epoch_range, validation, scheduler, history)
    finally:
        first.needs_input_grad = needed
    return history


def _first_module(model: Module) -> Module:
    """The module that receives the data: the first leaf of nested ``Sequential`` containers."""
    while isinstance(model, Sequential) and len(model):
        model = model[0]
    return model


def _epochs(model, criterion, optimizer, batches, epoch_range, validation, scheduler,
            history) -> None:
    x_train, target_train = batches.tensors
    for _ in epoch_range:
        model.train()
        total, count = 0.0, 0
        for x, target in batches:
            optimizer.zero_grad()
            loss = criterion(model(x), target)
            model.backward(criterion.backward())
            optimizer.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        history["train_loss"].append(total / count)
        history["train_accuracy"].append(evaluate(model, criterion, x_train, target_train)[1])
        if validation is not None:
            val_loss, val_accuracy = evaluate(model, criterion, *validation)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_accuracy)
        history["lr"].append(float(optimizer.param_groups[0]["lr"]))
        if isinstance(scheduler, LRScheduler) and not isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step()  # a calendar schedule: one epoch on
        elif scheduler is not None:
            scheduler.step(history["val_loss"][-1] if validation is not None
                           else history["train_loss"][-1])
