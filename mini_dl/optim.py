"""Optimizers with ``torch.optim``'s update rules, step for step.

An optimizer holds a list of :class:`~mini_dl.module.Parameter` objects, a mutable learning rate
``lr`` and per-parameter state (momentum buffers, moments) that ``state_dict()`` saves.
"""
from __future__ import annotations

import torch

from .module import Parameter, zero_gradients


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

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every gradient in place, or drop it (``grad = None``) with ``set_to_none=True``,
        as :meth:`mini_dl.Module.zero_grad` (``torch.optim`` defaults to ``set_to_none=True``)."""
        zero_gradients(self.params, set_to_none)

    def with_grad(self) -> list[tuple[Parameter, dict]]:
        """``(parameter, state)`` pairs of the parameters that have a gradient: as in torch,
        ``step`` leaves a parameter whose ``grad`` is None alone."""
        return [(p, state) for p, state in zip(self.params, self.state) if p.grad is not None]

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
        hyperparameters = state_dict.get("hyperparameters", {})
        unknown = sorted(set(hyperparameters) - set(self.hyperparameters()))
        if unknown:  # e.g. an Adam state loaded into SGD
            raise ValueError(f"{type(self).__name__}.load_state_dict: unknown hyperparameters "
                             f"{unknown}, expected {list(self.hyperparameters())}")
        for name, value in hyperparameters.items():
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


def _unit_interval(owner, name: str, value, closed: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] when ``closed``): momentum coefficients, betas."""
    value = _non_negative(owner, name, value)
    if value > 1.0 or (value == 1.0 and not closed):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{type(owner).__name__}: {name} must be in {interval}, got {value}")
    return value


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    For each parameter p with gradient g, at step t::

        g <- g + weight_decay * p                         (if weight_decay != 0)
        if momentum != 0:
            b <- g                         at t = 1       (the buffer starts at the gradient)
            b <- momentum * b + (1 - dampening) * g       afterwards
            g <- g + momentum * b   if nesterov  else  b
        p <- p - lr * g

    Without momentum and weight decay only the last line acts, and ``step`` applies it to every
    parameter in one ``torch._foreach_add_`` call (the same arithmetic, bit for bit).

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
        self.dampening = _unit_interval(self, "dampening", dampening, closed=True)
        self.weight_decay = _non_negative(self, "weight_decay", weight_decay)
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be a bool, got {nesterov!r}")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov requires momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        self.nesterov = nesterov

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def step(self) -> None:
        if not self.momentum and not self.weight_decay:  # plain SGD: p <- p - lr * g, the loop's
            # last line below, for every parameter in one call (as torch's foreach=True does)
            params = [p for p in self.params if p.grad is not None]
            if params:
                torch._foreach_add_([p.data for p in params], [p.grad for p in params],
                                    alpha=-self.lr)
            return
        for p, state in self.with_grad():
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


class Adam(Optimizer):
    r"""Adam, as ``torch.optim.Adam`` (without ``amsgrad`` and ``maximize``).

    For each parameter p with gradient g, at step t = 1, 2, ... (m and v start at zero)::

        g <- g + weight_decay * p                        (L2 penalty; AdamW decays p instead)
        m <- beta1 * m + (1 - beta1) * g                 (first moment: mean of g)
        v <- beta2 * v + (1 - beta2) * g * g             (second moment: mean of g^2)
        m_hat = m / (1 - beta1^t)                        (bias correction: m, v start at 0)
        v_hat = v / (1 - beta2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)        (eps outside the square root)

    State per parameter, with torch's names: ``step`` (t), ``exp_avg`` (m), ``exp_avg_sq`` (v).

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0, -1.0])); p.grad.copy_(torch.tensor([0.5, -2.0]))
        tensor([ 0.5000, -2.0000])
        >>> dl.Adam([p], lr=0.1).step(); p.data   # the first step moves each entry by ~lr
        tensor([ 0.9000, -0.9000])
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), "
                            f"got {betas!r}")
        self.betas = (_unit_interval(self, "betas[0]", betas[0]),
                      _unit_interval(self, "betas[1]", betas[1]))
        self.eps = _non_negative(self, "eps", eps)
        self.weight_decay = _non_negative(self, "weight_decay", weight_decay)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, state in self.with_grad():
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p.data),
                             exp_avg_sq=torch.zeros_like(p.data))
            state["step"] += 1
            grad = p.grad
            if self.weight_decay and self.decoupled_weight_decay:
                p.data.mul_(1 - self.lr * self.weight_decay)
            elif self.weight_decay:
                grad = grad.add(p.data, alpha=self.weight_decay)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)  # m + (1 - beta1)(g - m), torch's form of the update
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1 ** state["step"]
            bias_correction2 = 1 - beta2 ** state["step"]
            # lr * m_hat / (sqrt(v_hat) + eps), arranged as torch arranges it
            denominator = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(self.eps)
            p.data.addcdiv_(exp_avg, denominator, value=-self.lr / bias_correction1)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    The same update as :class:`Adam`, except that the first line becomes::

        p <- p * (1 - lr * weight_decay)                 (instead of g <- g + weight_decay * p)

    so the decay does not pass through m and v: it shrinks every weight by the same factor,
    whatever the size of its gradients. Default ``weight_decay=1e-2``, as torch.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
