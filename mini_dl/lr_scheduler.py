"""Learning-rate schedules: ``ReduceLROnPlateau``, with ``torch.optim.lr_scheduler``'s state
machine, so that it changes ``optimizer.lr`` at exactly the epochs torch's would."""
from __future__ import annotations

import math

from .optim import Optimizer


class ReduceLROnPlateau:
    r"""Multiply the learning rate by ``factor`` once the metric has stopped improving for more
    than ``patience`` epochs, as ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    Call ``step(metric)`` once per epoch (e.g. with the validation loss). Each call runs::

        if metric is better than best:               (see below; best starts at +inf, or -inf
            best <- metric; num_bad_epochs <- 0       for mode="max")
        else:
            num_bad_epochs <- num_bad_epochs + 1
        if cooldown_counter > 0:                      (just after a reduction: bad epochs
            cooldown_counter <- cooldown_counter - 1  do not count)
            num_bad_epochs <- 0
        if num_bad_epochs > patience:
            new_lr = max(lr * factor, min_lr)
            if lr - new_lr > eps: lr <- new_lr        (changes smaller than eps are ignored)
            cooldown_counter <- cooldown; num_bad_epochs <- 0

    "Better" needs an improvement larger than ``threshold``::

        mode="min", threshold_mode="rel":  metric < best * (1 - threshold)
        mode="min", threshold_mode="abs":  metric < best - threshold
        mode="max", threshold_mode="rel":  metric > best * (1 + threshold)
        mode="max", threshold_mode="abs":  metric > best + threshold

    A NaN metric is never better, so it counts as a bad epoch (as in torch).

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.ReduceLROnPlateau(optimizer, patience=1)
        >>> lrs = []
        >>> for loss in [3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]:
        ...     scheduler.step(loss)
        ...     lrs.append(optimizer.lr)
        >>> lrs  # two epochs without improvement (> patience) -> lr * 0.1
        [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.010000000000000002]
    """

    STATE_KEYS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                  "min_lr", "eps", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: optimizer must be a mini_dl Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self._set(mode=mode, factor=factor, patience=patience, threshold=threshold,
                  threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
        self.best = self.mode_worse
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [optimizer.lr]

    def _set(self, *, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps):
        """Validate and store the hyperparameters (shared by ``__init__`` and
        ``load_state_dict``)."""
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        if not _number(factor) or not 0.0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be an int >= 0, "
                                 f"got {value!r}")
        for name, value in (("threshold", threshold), ("min_lr", min_lr), ("eps", eps)):
            if not _number(value) or not value >= 0.0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be a number >= 0, "
                                 f"got {value!r}")
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lr, self.eps = min_lr, eps
        self.mode_worse = math.inf if mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, metric: float, best: float) -> bool:
        """Whether ``metric`` improves on ``best`` by more than the threshold."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return metric < best * (1.0 - self.threshold)
        if self.mode == "min":
            return metric < best - self.threshold
        if self.threshold_mode == "rel":
            return metric > best * (self.threshold + 1.0)
        return metric > best + self.threshold

    def step(self, metric) -> None:
        """One epoch's metric (a number or a 0-dim tensor); may lower ``optimizer.lr``."""
        try:
            current = float(metric)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"ReduceLROnPlateau.step: metric must be a number or a one-element "
                            f"tensor, got {metric!r:.60}") from None
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown are ignored
        if self.num_bad_epochs > self.patience:
            old_lr = self.optimizer.lr
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list[float]:
        """The learning rate after the last ``step`` (a one-element list, as torch)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Hyperparameters and the state machine (``best``, counters, ``last_epoch``)."""
        return {key: getattr(self, key) for key in self.STATE_KEYS}

    def load_state_dict(self, state_dict: dict) -> None:
        missing = [key for key in self.STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"ReduceLROnPlateau.load_state_dict: missing keys {missing}")
        self._set(**{key: state_dict[key] for key in ("mode", "factor", "patience", "threshold",
                                                       "threshold_mode", "cooldown", "min_lr",
                                                       "eps")})
        self.best = float(state_dict["best"])
        self.num_bad_epochs = int(state_dict["num_bad_epochs"])
        self.cooldown_counter = int(state_dict["cooldown_counter"])
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = [self.optimizer.lr]

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, "
                f"patience={self.patience}, threshold={self.threshold}, "
                f"threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown}, "
                f"min_lr={self.min_lr}, eps={self.eps})")


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))
