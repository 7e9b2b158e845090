r"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s rules, state and call order.

A scheduler changes ``group["lr"]`` of every parameter group of an optimizer. Build it after the
optimizer (it stores each group's starting rate as ``group["initial_lr"]`` and ``base_lrs``), then
call ``optimizer.step()`` and after it ``scheduler.step()``: once per epoch, or once per batch for
``OneCycleLR``. ``last_epoch`` counts the calls; ``get_last_lr()`` returns the rates now in force.
Each rule is computed with torch's own float operations, in torch's order (the recursive forms
included), so the rates equal torch's bit for bit; ``state_dict()`` has torch's keys and values,
so a state moves between mini_dl and torch in both directions. ``ReduceLROnPlateau`` is stepped
with a metric instead (``step(val_loss)``).
"""
from __future__ import annotations

import math
import types
import warnings
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable

import torch

from .optim import Optimizer


def _values(optimizer: Optimizer, key: str) -> list:
    """Each group's ``key`` (tensors cloned, so that no list aliases a group's value)."""
    return [group[key].clone() if isinstance(group[key], torch.Tensor) else group[key]
            for group in optimizer.param_groups]


def _set_lr(group: dict, lr) -> None:
    """``group["lr"] = lr``, in place when the group's lr is a tensor (as torch)."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr.item() if isinstance(lr, torch.Tensor) else lr)
    else:
        group["lr"] = lr


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _integer(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def _require(condition: bool, owner: str, message: str, error=ValueError) -> None:
    if not condition:
        raise error(f"{owner}: {message}")


def _check_optimizer(owner: str, optimizer) -> None:
    _require(isinstance(optimizer, Optimizer), owner, f"optimizer must be a mini_dl Optimizer, "
             f"got {type(optimizer).__name__}", TypeError)


def _per_group(owner: str, name: str, value, optimizer: Optimizer) -> list:
    """``value`` for each group: a list or tuple of one per group, or one value for all."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        _require(len(value) == groups, owner, f"{name} must have one value per parameter group "
                 f"({groups}), got {len(value)}")
        return list(value)
    return [value] * groups


def _record_optimizer_steps(optimizer: Optimizer) -> None:
    """Replace ``optimizer.step`` by a function that calls it and sets ``optimizer._opt_called``,
    as torch does, so that ``step`` can tell whether the optimizer stepped before it."""
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return
    original, optimizer_ref = optimizer.step, weakref.ref(optimizer)
    unbound = getattr(original, "__func__", None)

    def step(*args, **kwargs):
        opt = optimizer_ref()
        opt._opt_called = True
        return unbound(opt, *args, **kwargs) if unbound else original(*args, **kwargs)

    step._wrapped_by_lr_sched = True
    optimizer.step = step


class LRScheduler:
    r"""Base class: ``base_lrs``, ``last_epoch``, ``step()``, ``get_last_lr()``, ``state_dict()``.

    At construction (``last_epoch=-1``) each group gets ``group["initial_lr"]`` (its lr, unless
    the key is there already), ``base_lrs`` lists them, and a first ``step()`` sets
    ``last_epoch = 0`` and the rate of epoch 0. Each later ``step()`` runs::

        last_epoch <- last_epoch + 1
        group["lr"] <- get_lr()[i]     for each group i   (the subclass's rule)

    Call it after ``optimizer.step()``; the other order skips the schedule's first rate, and
    the first ``step()`` warns about it as torch does. A subclass implements ``get_lr()``; when
    it also has ``_get_closed_form_lr()`` (the rate at ``last_epoch`` from ``base_lrs``),
    ``SequentialLR`` uses it to restart the schedule at a milestone. ``last_epoch >= 0`` resumes
    a schedule whose groups carry ``initial_lr`` already.

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.LambdaLR(optimizer, lambda epoch: 1 / (epoch + 1))
        >>> optimizer.param_groups[0]["initial_lr"], scheduler.base_lrs, scheduler.last_epoch
        (1.0, [1.0], 0)
        >>> optimizer.step(); scheduler.step(); scheduler.get_last_lr()
        [0.5]
        >>> sorted(scheduler.state_dict())[:4]
        ['_get_lr_called_within_step', '_is_initial', '_last_lr', '_step_count']
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        _require(_integer(last_epoch) and last_epoch >= -1, name,
                 f"last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                initial_lr = group["lr"]
                group.setdefault("initial_lr", initial_lr.clone() if isinstance(
                    initial_lr, torch.Tensor) else initial_lr)
            elif "initial_lr" not in group:
                raise KeyError(f"{name}: param_groups[{index}] has no 'initial_lr', which "
                               f"resuming with last_epoch={last_epoch} needs: load the "
                               "optimizer's state first, or start with last_epoch=-1")
        self.base_lrs = _values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        _record_optimizer_steps(optimizer)
        self._initial_step()

    def _initial_step(self) -> None:
        """The constructor's step: sets the rate of epoch ``last_epoch + 1``."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """Each group's rate at ``last_epoch`` (called by ``step``; read the rates in force with
        ``get_last_lr()``)."""
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """The rate of each group after the last ``step()``, a list (copies, not aliases)."""
        return self._last_lr

    def _warn_unless_in_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use "
                          "`get_last_lr()`.", UserWarning, stacklevel=3)

    def step(self) -> None:
        """Advance one epoch (``last_epoch + 1``) and set each group's rate; call it after
        ``optimizer.step()``."""
        if self._step_count == 1:  # the first call after the constructor's
            if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
                warnings.warn("Seems like `optimizer.step()` has been overridden after learning "
                              "rate scheduler initialization. Please, make sure to call "
                              "`optimizer.step()` before `lr_scheduler.step()`.", UserWarning,
                              stacklevel=2)
            elif not getattr(self.optimizer, "_opt_called", False):
                warnings.warn("Detected call of `lr_scheduler.step()` before `optimizer.step()`."
                              " You should call them in the opposite order: `optimizer.step()` "
                              "before `lr_scheduler.step()`, or the first value of the learning "
                              "rate schedule is skipped.", UserWarning, stacklevel=2)
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        """Next epoch's rates from ``get_lr()``, or epoch ``epoch``'s from the closed form."""
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                values = (self._get_closed_form_lr() if hasattr(self, "_get_closed_form_lr")
                          else self.get_lr())
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _set_lr(group, lr)
        self._last_lr = _values(self.optimizer, "lr")

    def state_dict(self) -> dict:
        """Every attribute but the optimizer, under torch's names (``base_lrs``, ``last_epoch``,
        ``_step_count``, ``_last_lr``, the hyperparameters, ...)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()`` of this scheduler class, mini_dl's or torch's. As in torch,
        build the new scheduler first, then load the optimizer's state and the scheduler's."""
        name = f"{type(self).__name__}.load_state_dict"
        _require(isinstance(state_dict, dict), name,
                 f"expected a dict, got {type(state_dict).__name__}", TypeError)
        expected = set(self.state_dict())
        missing = [key for key in self.state_dict() if key not in state_dict]
        unknown = sorted(set(state_dict) - expected)
        _require(not missing, name, f"missing keys {missing}")
        _require(not unknown, name, f"unknown keys {unknown}: is it another scheduler's state?")
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    r"""The initial rate times a function of the epoch, as ``torch.optim.lr_scheduler.LambdaLR``:

    .. math::
        \eta_t = \eta_0 \cdot \lambda(t),

    with :math:`\eta_0` the group's ``initial_lr`` and :math:`\lambda` = ``lr_lambda`` (one
    function for every group, or a list of one per group). ``state_dict()`` saves the
    attributes of callable objects; plain functions and lambdas are saved as ``None`` (as torch).

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1)
        >>> scheduler = dl.LambdaLR(optimizer, lr_lambda=lambda epoch: 0.5 ** epoch)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.05, 0.025, 0.0125]
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable | list[Callable],
                 last_epoch: int = -1):
        _check_optimizer("LambdaLR", optimizer)
        self.optimizer = optimizer
        self.lr_lambdas = _per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        for index, function in enumerate(self.lr_lambdas):
            _require(callable(function), "LambdaLR", f"lr_lambda must be a function of the "
                     f"epoch, got {type(function).__name__} (group {index})", TypeError)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        return [base_lr * function(self.last_epoch)
                for function, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]

    def state_dict(self) -> dict:
        state = {key: value for key, value in super().state_dict().items() if key != "lr_lambdas"}
        state["lr_lambdas"] = [None if isinstance(function, types.FunctionType)
                               else function.__dict__.copy() for function in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        functions = self.lr_lambdas
        super().load_state_dict(state_dict)
        self.lr_lambdas = functions  # the functions stay; callable objects get their attributes
        for function, saved in zip(functions, state_dict["lr_lambdas"]):
            if saved is not None:
                function.__dict__.update(saved)


class StepLR(LRScheduler):
    r"""Multiply the rate by ``gamma`` every ``step_size`` epochs, as ``torch``'s ``StepLR``:

    .. math::
        \eta_t = \eta_0 \cdot \gamma^{\lfloor t / \text{step\_size} \rfloor},

    computed recursively (:math:`\eta_t = \gamma\, \eta_{t-1}` when ``step_size`` divides
    :math:`t > 0`, else :math:`\eta_t = \eta_{t-1}`), so a change made to ``group["lr"]`` by
    other code carries on.

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.StepLR(optimizer, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        _require(_integer(step_size) and step_size >= 1, "StepLR",
                 f"step_size must be a positive int, got {step_size!r}")
        _require(_number(gamma), "StepLR", f"gamma must be a number, got {gamma!r}", TypeError)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the rate by ``gamma`` at each epoch of ``milestones``, as ``MultiStepLR``:

    .. math::
        \eta_t = \eta_0 \cdot \gamma^{\#\{m \in \text{milestones} : m \le t\}}

    (a milestone listed twice counts twice), computed recursively as :class:`StepLR`.
    ``milestones`` is stored as torch stores it, a ``collections.Counter``.

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.MultiStepLR(optimizer, milestones=[1, 3], gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1,
                 last_epoch: int = -1):
        milestones = list(milestones)
        _require(all(_integer(m) and m >= 0 for m in milestones), "MultiStepLR",
                 f"milestones must be ints >= 0, got {milestones!r}")
        _require(_number(gamma), "MultiStepLR", f"gamma must be a number, got {gamma!r}",
                 TypeError)
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        if self.last_epoch not in self.milestones:
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the rate by ``gamma`` every epoch, as ``torch``'s ``ExponentialLR``:

    .. math::
        \eta_t = \gamma\, \eta_{t-1} \quad (= \eta_0\, \gamma^t).

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.ExponentialLR(optimizer, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _require(_number(gamma), "ExponentialLR", f"gamma must be a number, got {gamma!r}",
                 TypeError)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        if self._is_initial:  # resuming: the constructor's step keeps the loaded rate
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the rate from :math:`\eta_0` to ``eta_min`` along half a cosine over ``T_max``
    epochs, as ``torch``'s ``CosineAnnealingLR``. The closed form (SGDR without restarts) is

    .. math::
        \eta_t = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
                 \left(1 + \cos\frac{\pi t}{T_{\max}}\right);

    like torch, ``step`` computes it recursively from the current rate,

    .. math::
        \eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
                 \frac{1 + \cos(\pi t / T_{\max})}{1 + \cos(\pi (t-1) / T_{\max})},

    so that a change made to the rate by other code (or by a preceding schedule) carries on.
    The ratio is 0/0 at :math:`t - 1 = T_{\max}` (odd multiples of it): there the rate rises by
    :math:`(\eta_0 - \eta_{\min})(1 - \cos(\pi / T_{\max}))/2`, and past :math:`T_{\max}` the
    cosine climbs back up (period :math:`2 T_{\max}`).

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.CosineAnnealingLR(optimizer, T_max=4)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     optimizer.step()
        ...     lrs.append(round(scheduler.get_last_lr()[0], 4))
        ...     scheduler.step()
        >>> lrs
        [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.1464]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        _require(_integer(T_max) and T_max >= 1, "CosineAnnealingLR",
                 f"T_max must be a positive int, got {T_max!r}")
        _require(_number(eta_min) and eta_min >= 0, "CosineAnnealingLR",
                 f"eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        t, T_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _values(self.optimizer, "lr")
        if self._step_count == 1 and t > 0:  # first step after resuming: the closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T_max)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T_max) % (2 * T_max) == 0:  # leaving the minimum: the ratio would be 0/0
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups, strict=True)]
        return [(1 + math.cos(math.pi * t / T_max)) / (1 + math.cos(math.pi * (t - 1) / T_max))
                * (group["lr"] - eta_min) + eta_min for group in groups]

    def _get_closed_form_lr(self) -> list:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the rate by a factor that moves linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs, then stays, as ``torch``'s ``LinearLR`` (a linear warm-up with
    the defaults):

    .. math::
        \eta_t = \eta_0 \left(s + (e - s) \frac{\min(t, T)}{T}\right),
        \qquad s = \text{start\_factor},\ e = \text{end\_factor},\ T = \text{total\_iters};

    computed recursively, :math:`\eta_t = \eta_{t-1} \left(1 + \frac{e - s}{T s + (t - 1)(e -
    s)}\right)` for :math:`1 \le t \le T`.

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = dl.LinearLR(optimizer, start_factor=0.25, total_iters=3)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1):
        _require(_number(start_factor) and 0 < start_factor <= 1, "LinearLR",
                 f"start_factor must be in (0, 1], got {start_factor!r}")
        _require(_number(end_factor) and 0 <= end_factor <= 1, "LinearLR",
                 f"end_factor must be in [0, 1], got {end_factor!r}")
        _require(_integer(total_iters) and total_iters >= 1, "LinearLR",
                 f"total_iters must be a positive int, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = (start_factor, end_factor,
                                                                total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        start, end, t = self.start_factor, self.end_factor, self.last_epoch
        if t == 0:
            return [group["lr"] * start for group in self.optimizer.param_groups]
        if self._is_initial or t > self.total_iters:
            return _values(self.optimizer, "lr")
        return [group["lr"] * (1.0 + (end - start) / (self.total_iters * start
                                                       + (t - 1) * (end - start)))
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR``; step it once per batch.

    Over ``total_steps`` steps (or ``epochs * steps_per_epoch``) the rate goes from
    :math:`\eta_{\text{init}} = \text{max\_lr} / \text{div\_factor}` up to ``max_lr`` during the
    first ``pct_start`` of the steps, then down to :math:`\eta_{\min} = \eta_{\text{init}} /
    \text{final\_div\_factor}`. Within a phase from step :math:`a` to step :math:`b`, going
    from :math:`u` to :math:`v`, with :math:`p = (t - a)/(b - a)`:

    .. math::
        \text{cos:}\ \ \eta_t = v + \tfrac12 (u - v)(1 + \cos \pi p), \qquad
        \text{linear:}\ \ \eta_t = u + (v - u)\, p.

    Phases (:math:`N` = ``total_steps``, :math:`q` = ``pct_start``): two, :math:`[0, qN - 1]`
    up and :math:`[qN - 1, N - 1]` down to :math:`\eta_{\min}`; or, with ``three_phase=True``,
    up, back down to :math:`\eta_{\text{init}}` by :math:`2qN - 2`, then down to
    :math:`\eta_{\min}`. With ``cycle_momentum`` (SGD's ``momentum``, or Adam's first beta)
    the momentum moves the opposite way, between ``max_momentum`` and ``base_momentum``. The
    groups receive torch's keys ``initial_lr``, ``max_lr``, ``min_lr`` (and ``max_momentum``,
    ``base_momentum``). Stepping past ``total_steps`` is an error.

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        >>> scheduler = dl.OneCycleLR(optimizer, max_lr=1.0, total_steps=6, pct_start=0.5,
        ...                           div_factor=10, anneal_strategy="linear")
        >>> lrs, momenta = [], []
        >>> for batch in range(6):
        ...     optimizer.step()
        ...     lrs.append(round(scheduler.get_last_lr()[0], 3))
        ...     momenta.append(round(optimizer.momentum, 3))
        ...     scheduler.step()
        >>> lrs  # up from max_lr / 10 in 3 steps, down to max_lr / 10 / 1e4 in 3 more
        [0.1, 0.55, 1.0, 0.667, 0.333, 0.0]
        >>> momenta  # the other way, between 0.95 and 0.85
        [0.95, 0.9, 0.85, 0.883, 0.917, 0.95]
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        name = "OneCycleLR"
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            _require(_integer(total_steps) and total_steps > 0, name,
                     f"total_steps must be a positive int, got {total_steps!r}")
            self.total_steps = total_steps
        else:
            _require(epochs is not None and steps_per_epoch is not None, name,
                     "give total_steps, or epochs and steps_per_epoch")
            for option, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                _require(_integer(value) and value > 0, name,
                         f"{option} must be a positive int, got {value!r}")
            self.total_steps = epochs * steps_per_epoch
        _require(isinstance(pct_start, float) and 0 <= pct_start <= 1, name,
                 f"pct_start must be a float in [0, 1], got {pct_start!r}")
        _require(anneal_strategy in ("cos", "linear"), name,
                 f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        up = float(pct_start * self.total_steps) - 1
        phases = ([(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                   (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                    "base_momentum", "max_momentum"),
                   (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                    "max_momentum")] if three_phase else
                  [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                   (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")])
        self._schedule_phases = [dict(zip(("end_step", "start_lr", "end_lr", "start_momentum",
                                           "end_momentum"), phase)) for phase in phases]
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group(name, "max_lr", max_lr, optimizer)
        _require(all(_number(lr) and lr > 0 for lr in max_lrs), name,
                 f"max_lr must be positive numbers, got {max_lr!r}")
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            _require("momentum" in optimizer.defaults or "betas" in optimizer.defaults, name,
                     f"cycle_momentum needs an optimizer with momentum or betas, got "
                     f"{type(optimizer).__name__}; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group(name, "max_momentum", max_momentum, optimizer)
            base_momentums = _per_group(name, "base_momentum", base_momentum, optimizer)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, max_momentums,
                                            base_momentums, strict=True):
                    self._set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list:
        self._warn_unless_in_step()
        step = self.last_epoch
        _require(step <= self.total_steps, "OneCycleLR",
                 f"tried to step {step} times; total_steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or index == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]],
                                            pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[phase["start_momentum"]],
                                                               group[phase["end_momentum"]],
                                                               pct))
                    break
                start_step = phase["end_step"]
        return lrs


class SequentialLR(LRScheduler):
    r"""Run ``schedulers`` one after the other, switching at the epochs ``milestones``, as
    ``torch.optim.lr_scheduler.SequentialLR`` (e.g. a warm-up, then a decay):

    .. math::
        \eta_t = \text{schedulers}[i]\ \text{at its epoch}\ t - m_i, \qquad
        m_i \le t < m_{i+1}\quad (m_0 = 0).

    At a milestone the next scheduler starts afresh from its epoch 0 (its closed form from
    ``initial_lr``), so a decay starts at the full rate after the warm-up. Each scheduler must
    drive the same optimizer; ``ReduceLROnPlateau`` cannot be one (it needs a metric).

    Example:
        >>> import torch, mini_dl as dl
        >>> optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
        >>> warmup = dl.LinearLR(optimizer, start_factor=0.25, total_iters=3)
        >>> decay = dl.ExponentialLR(optimizer, gamma=0.5)
        >>> scheduler = dl.SequentialLR(optimizer, [warmup, decay], milestones=[3])
        >>> lrs = []
        >>> for epoch in range(6):
        ...     optimizer.step()
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1):
        name = "SequentialLR"
        _check_optimizer(name, optimizer)
        _require(isinstance(schedulers, (list, tuple)) and len(schedulers) >= 1, name,
                 f"schedulers must be a non-empty list, got {schedulers!r}")
        for index, scheduler in enumerate(schedulers):
            _require(isinstance(scheduler, LRScheduler), name, f"schedulers[{index}] must be a "
                     f"mini_dl scheduler, got {type(scheduler).__name__}", TypeError)
            _require(not isinstance(scheduler, ReduceLROnPlateau), name,
                     f"schedulers[{index}] is a ReduceLROnPlateau, which needs a metric in step")
            _require(scheduler.optimizer is optimizer, name, f"schedulers[{index}] "
                     f"({type(scheduler).__name__}) drives another optimizer")
        milestones = list(milestones)
        _require(len(milestones) == len(schedulers) - 1, name, f"expected "
                 f"{len(schedulers) - 1} milestones for {len(schedulers)} schedulers, "
                 f"got {len(milestones)}")
        _require(all(_integer(m) and m > 0 for m in milestones)
                 and milestones == sorted(set(milestones)), name,
                 f"milestones must be increasing positive ints, got {milestones!r}")
        self._schedulers, self._milestones = list(schedulers), milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # undo the schedulers' initial steps
            _set_lr(group, group["initial_lr"])
        _undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)  # a milestone: the next schedule starts at its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        state = {key: value for key, value in super().state_dict().items()
                 if key != "_schedulers"}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        schedulers = self._schedulers
        super().load_state_dict(state_dict)
        self._schedulers = schedulers
        for scheduler, saved in zip(schedulers, state_dict["_schedulers"], strict=True):
            scheduler.load_state_dict(saved)


def _undo_initial_steps(scheduler: LRScheduler) -> None:
    """One epoch back for every scheduler inside a SequentialLR (torch's ``recursive_undo``)."""
    if isinstance(scheduler, SequentialLR):
        for inner in scheduler._schedulers:
            _undo_initial_steps(inner)
    else:
        scheduler.last_epoch -= 1


class ReduceLROnPlateau(LRScheduler):
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
            for each parameter group i:
                new_lr = max(lr_i * factor, min_lr_i)
                if lr_i - new_lr > eps: lr_i <- new_lr    (changes smaller than eps are ignored)
            cooldown_counter <- cooldown; num_bad_epochs <- 0

    "Better" needs an improvement larger than ``threshold``::

        mode="min", threshold_mode="rel":  metric < best * (1 - threshold)
        mode="min", threshold_mode="abs":  metric < best - threshold
        mode="max", threshold_mode="rel":  metric > best * (1 + threshold)
        mode="max", threshold_mode="abs":  metric > best + threshold

    A NaN metric is never better, so it counts as a bad epoch (as in torch). ``min_lr`` is one
    number for every group or a list of one per group (stored as torch does: ``min_lrs``, and
    ``default_min_lr`` = the number, or None for a list).

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

    HYPERPARAMETERS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                       "min_lrs", "eps")

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0, eps: float = 1e-8):
        _check_optimizer("ReduceLROnPlateau", optimizer)
        self.optimizer = optimizer
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        min_lrs = _per_group("ReduceLROnPlateau", "min_lr", min_lr, optimizer)
        self._set(mode=mode, factor=factor, patience=patience, threshold=threshold,
                  threshold_mode=threshold_mode, cooldown=cooldown, min_lrs=min_lrs, eps=eps)
        self.last_epoch = 0
        self._last_lr = _values(optimizer, "lr")
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _set(self, *, mode, factor, patience, threshold, threshold_mode, cooldown, min_lrs, eps):
        """Validate and store the hyperparameters (shared by ``__init__`` and
        ``load_state_dict``)."""
        owner = "ReduceLROnPlateau"
        _require(mode in ("min", "max"), owner, f"mode must be 'min' or 'max', got {mode!r}")
        _require(threshold_mode in ("rel", "abs"), owner,
                 f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        _require(_number(factor) and 0.0 <= factor < 1.0, owner,
                 f"factor must be in [0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            _require(_integer(value) and value >= 0, owner,
                     f"{name} must be an int >= 0, got {value!r}")
        many = len(min_lrs) > 1 and self.default_min_lr is None
        for name, value in (("threshold", threshold), ("eps", eps),
                            *((f"min_lr[{i}]" if many else "min_lr", value)
                              for i, value in enumerate(min_lrs))):
            _require(_number(value) and value >= 0.0, owner,
                     f"{name} must be a number >= 0, got {value!r}")
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.min_lrs, self.eps = list(min_lrs), eps
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
        """One epoch's metric (a number or a 0-dim tensor); may lower each group's lr."""
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
            for group, min_lr in zip(self.optimizer.param_groups, self._group_min_lrs()):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    _set_lr(group, new_lr)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _values(self.optimizer, "lr")

    def _group_min_lrs(self) -> list:
        """``min_lrs``, one per group even after ``add_param_group`` (when one number was
        given; a list that no longer fits is an error, as in torch)."""
        groups = len(self.optimizer.param_groups)
        if len(self.min_lrs) != groups:
            _require(self.default_min_lr is not None, "ReduceLROnPlateau", f"the optimizer has "
                     f"{groups} parameter groups, min_lr has {len(self.min_lrs)} values: set "
                     "scheduler.min_lrs to one per group", RuntimeError)
            self.min_lrs = [self.default_min_lr] * groups
        return self.min_lrs

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()`` (mini_dl's or torch's), hyperparameters checked first."""
        name = "ReduceLROnPlateau.load_state_dict"
        missing = [key for key in self.state_dict() if key not in state_dict]
        _require(not missing, name, f"missing keys {missing}")
        self._set(**{key: state_dict[key] for key in self.HYPERPARAMETERS})
        self.default_min_lr = state_dict["default_min_lr"]
        super().load_state_dict({**state_dict, "mode_worse": self.mode_worse})

    def __repr__(self) -> str:
        min_lr = self.min_lrs if self.default_min_lr is None else self.default_min_lr
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, "
                f"patience={self.patience}, threshold={self.threshold}, "
                f"threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown}, "
                f"min_lr={min_lr}, eps={self.eps})")
