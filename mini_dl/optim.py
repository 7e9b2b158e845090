"""Optimizers with ``torch.optim``'s update rules, step for step.

An optimizer holds a list of :class:`~mini_dl.module.Parameter` objects, a mutable learning rate
``lr`` and per-parameter state (momentum buffers, moments) that ``state_dict()`` saves.
"""
from __future__ import annotations

import torch

from .module import Parameter


class Optimizer:
    """Base class: parameter list, ``lr``, ``zero_grad()``, ``state_dict()``."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for index, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: parameter {index} must be a mini_dl "
                                f"Parameter, got {type(p).__name__}")
        self.lr = lr
        self.state: list[dict] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _non_negative(self, "lr", value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.zero_()

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def state_dict(self) -> dict:
        """Hyperparameters and a copy of every per-parameter state tensor."""
        state = [{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
                 for s in self.state]
        return {"hyperparameters": self.hyperparameters(), "state": state}

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_dict.get("state") if isinstance(state_dict, dict) else None
        if state is None or len(state) != len(self.params):
            got = "no state" if state is None else f"{len(state)} parameter states"
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected state for "
                             f"{len(self.params)} parameters, got {got}")
        for name, value in state_dict.get("hyperparameters", {}).items():
            setattr(self, name, value)
        self.state = [{k: (v.to(p.data).clone() if isinstance(v, torch.Tensor) else v)
                       for k, v in s.items()} for s, p in zip(state, self.params)]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


def _non_negative(owner, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{type(owner).__name__}: {name} must be a number, got {value!r}")
    if not value >= 0.0:
        raise ValueError(f"{type(owner).__name__}: {name} must be >= 0, got {value}")
    return float(value)


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    For each parameter p with gradient g, at step t::

        g <- g + weight_decay * p                         (if weight_decay != 0)
        if momentum != 0:
            b <- g                         at t = 1       (the buffer starts at the gradient)
            b <- momentum * b + (1 - dampening) * g       afterwards
            g <- g + momentum * b   if nesterov  else  b
        p <- p - lr * g

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0])); p.grad.fill_(0.5)
        tensor([0.5000])
        >>> dl.SGD([p], lr=0.1).step(); p.data
        tensor([0.9500])
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        self.momentum = _non_negative(self, "momentum", momentum)
        self.dampening = float(dampening)
        self.weight_decay = _non_negative(self, "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov requires momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        self.nesterov = bool(nesterov)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            grad = p.grad
            if self.weight_decay:
                grad = grad.add(p.data, alpha=self.weight_decay)
            if self.momentum:
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = grad.clone()
                else:
                    buffer.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
                grad = grad.add(buffer, alpha=self.momentum) if self.nesterov else buffer
            p.data.add_(grad, alpha=-self.lr)
