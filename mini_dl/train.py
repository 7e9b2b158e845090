"""The training loop: ``fit`` and ``accuracy``."""
from __future__ import annotations

import torch

from .data import MiniBatches
from .module import Module
from .optim import Optimizer


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target class.

    ``output`` has shape ``(N, C)``; ``target`` is ``(N,)`` class indices or ``(N, C)`` one-hot
    (or +-1) rows, whose arg-max is the class.
    """
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise ValueError(f"accuracy: output must have shape (N, C), got {getattr(output, 'shape', output)}")
    if (not isinstance(target, torch.Tensor) or target.ndim not in (1, 2)
            or target.shape[0] != output.shape[0]):
        raise ValueError(f"accuracy: target must have shape ({output.shape[0]},) or "
                         f"({output.shape[0]}, C), got {getattr(target, 'shape', target)}")
    labels = target.argmax(1) if target.ndim == 2 else target
    return (output.argmax(1) == labels).double().mean().item()


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
    whole training set and on ``validation`` (if given). A ``scheduler`` (e.g.
    ``ReduceLROnPlateau``) is stepped with the validation loss, or the train loss without one.

    Returns ``{"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}``, lists with one
    entry per epoch; ``train_loss`` is the mean of the mini-batch losses seen during the epoch.
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
        history["lr"].append(optimizer.lr)
        if scheduler is not None:
            scheduler.step(history["val_loss"][-1] if validation is not None
                           else history["train_loss"][-1])
    return history
