"""Optimizers with ``torch.optim``'s update rules, parameter groups and state layout.

An optimizer holds ``param_groups``: a list of dicts, each with its ``"params"`` (a list of
:class:`~mini_dl.module.Parameter`) and every option (``lr``, ``momentum``, ...), which code may
edit between steps, exactly as in ``torch.optim``. ``defaults`` holds the constructor's options,
which a group that does not name an option inherits. Per-parameter state (momentum buffers,
moments) is saved and loaded by ``state_dict()`` / ``load_state_dict()`` in torch.optim's layout,
so that a state moves between mini_dl and torch in both directions.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from .module import Parameter, zero_gradients

# Options of torch.optim that choose an implementation (kernels, graph capture), not the update
# rule: a state saved by torch carries them; mini_dl's groups leave them out when loading one.
TORCH_IMPLEMENTATION_OPTIONS = ("foreach", "fused", "capturable", "differentiable",
                                "decoupled_weight_decay")


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def _saved(key: str, value):
    """A state entry as torch stores it: ``step`` as a 0-dim float tensor (float32, or float64
    under a float64 default dtype), tensors copied."""
    if key == "step":
        dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        return torch.tensor(float(value), dtype=dtype)
    return _copy(value)


def _loaded(key: str, value, p: Parameter):
    """A saved state entry in mini_dl's form: ``step`` an int, tensors on p's dtype and device."""
    if key == "step":
        return int(value.item() if isinstance(value, torch.Tensor) else value)
    return value.to(p.data).clone() if isinstance(value, torch.Tensor) else value


def _number(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def _non_negative(owner: str, name: str, value) -> float:
    value = _number(owner, name, value)
    if not value >= 0.0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value}")
    return value


def _learning_rate(owner: str, name: str, value):
    """A non-negative number, or a one-element tensor (kept as it is, as torch keeps it)."""
    if not isinstance(value, torch.Tensor):
        return _non_negative(owner, name, value)
    if value.numel() != 1 or not value.is_floating_point():
        raise ValueError(f"{owner}: a tensor lr must have one floating-point element, got "
                         f"shape {tuple(value.shape)} and {value.dtype}")
    if not value.item() >= 0.0:
        raise ValueError(f"{owner}: lr must be >= 0, got {value.item()}")
    return value


def _unit_interval(owner: str, name: str, value, closed: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] when ``closed``): betas, dampening."""
    value = _non_negative(owner, name, value)
    if value > 1.0 or (value == 1.0 and not closed):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{owner}: {name} must be in {interval}, got {value}")
    return value


def _fraction(owner: str, name: str, value) -> float:
    return _unit_interval(owner, name, value, closed=True)


def _betas(owner: str, name: str, value) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{owner}: {name} must be a pair (beta1, beta2), got {value!r}")
    return (_unit_interval(owner, f"{name}[0]", value[0]),
            _unit_interval(owner, f"{name}[1]", value[1]))


def _switch(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a bool, got {value!r}")
    return value


def _scalar(lr):
    """A one-element tensor lr as a 0-dim tensor (torch's ``_to_scalar``); a number as it is."""
    return lr.reshape(()) if isinstance(lr, torch.Tensor) else lr


class Optimizer:
    """Base class: ``param_groups``, ``defaults``, ``zero_grad()``, ``state_dict()``.

    ``params`` is an iterable of Parameters (one group) or of dicts, each a group with its
    ``"params"`` and the options it sets for itself; the others come from ``defaults``, as in
    ``torch.optim``. With one group, ``optimizer.lr`` (and every other option, e.g.
    ``optimizer.momentum``) reads and sets that group's value. ``state`` lists each parameter's
    state dict in the order of ``params`` (all groups' parameters), the indices of
    ``state_dict()``; ``step`` counts in it are ints, saved as torch's 0-dim float tensors.

    Example:
        >>> import torch, mini_dl as dl
        >>> model = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 1))
        >>> optimizer = dl.SGD([{"params": model[0].parameters(), "lr": 0.01},
        ...                     {"params": model[2].parameters()}], lr=0.1, momentum=0.9)
        >>> [(group["lr"], group["momentum"]) for group in optimizer.param_groups]
        [(0.01, 0.9), (0.1, 0.9)]
        >>> optimizer.state_dict()["param_groups"][1]["params"]
        [2, 3]
    """

    # option -> check(owner, name, value), which returns the option's stored form
    checks: ClassVar[dict] = {"lr": _learning_rate}
    quiet_switches: tuple[str, ...] = ("maximize",)  # left out of repr while False

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, (torch.Tensor, Parameter, dict)):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of dicts, "
                            f"got one {type(params).__name__}")
        self.defaults = self._checked(defaults, name)
        self.param_groups: list[dict] = []
        self._states: dict[Parameter, dict] = {}  # keyed by the parameter itself, as torch's
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Append a group: ``{"params": ..., option: value, ...}``; options it leaves out come
        from ``defaults``. A parameter may be in one group only."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}.add_param_group: expected a dict with 'params', "
                            f"got {param_group!r}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(f"{name}: the parameters of a group must be ordered (a list), "
                            "not a set")
        params = [params] if isinstance(params, Parameter) else list(params)
        known = {id(p): i for i, group in enumerate(self.param_groups) for p in group["params"]}
        start = len(known)
        for index, p in enumerate(params, start):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: parameter {index} must be a mini_dl Parameter, "
                                f"got {type(p).__name__}")
            if id(p) in known:
                where = f"group {known[id(p)]}" if known[id(p)] < len(self.param_groups) \
                    else "this group"
                raise ValueError(f"{name}: parameter {index} ({p}) is already in {where}; "
                                 "a parameter may be in one parameter group only")
            known[id(p)] = len(self.param_groups)
        group = {**self.defaults, **param_group, "params": params}
        if set(param_group) - {"params"}:  # options of its own: check them as the defaults were
            group.update(self._checked(group, f"{name} param group {len(self.param_groups)}"))
        self.param_groups.append(group)

    def _checked(self, options: dict, owner: str) -> dict:
        """The options, validated and in their stored form (``owner`` names them in errors)."""
        return {name: check(owner, name, options[name]) for name, check in self.checks.items()}

    @property
    def params(self) -> list[Parameter]:
        """Every group's parameters, in order: the indices of ``state`` and ``state_dict()``."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def state(self) -> list[dict]:
        """Each parameter's state dict (the optimizer's own, not a copy), in ``params`` order."""
        return [self._states.setdefault(p, {}) for p in self.params]

    def _only_group(self, option: str) -> dict:
        if len(self.param_groups) != 1:
            raise ValueError(f"{type(self).__name__}.{option}: the optimizer has "
                             f"{len(self.param_groups)} parameter groups; use "
                             f"param_groups[i][{option!r}]")
        return self.param_groups[0]

    def __getattr__(self, name: str):  # only reached when normal lookup fails
        if name in self.__dict__.get("defaults", ()):
            return self._only_group(name)[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__.get("defaults", ()):  # optimizer.lr = 0.01: the only group's
            group = self._only_group(name)
            group[name] = self._checked({**group, name: value}, type(self).__name__)[name]
        else:
            object.__setattr__(self, name, value)

    def hyperparameters(self) -> dict:
        """The options of the only parameter group."""
        group = self._only_group("hyperparameters")
        return {option: group[option] for option in self.defaults}

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every gradient (lazily: see :class:`~mini_dl.module.Parameter`), or drop it
        (``grad = None``) with ``set_to_none=True``, as :meth:`mini_dl.Module.zero_grad`
        (``torch.optim`` defaults to ``set_to_none=True``; mini_dl keeps the EE-559 contract that
        every ``.grad`` reads as zeros after ``zero_grad()``)."""
        zero_gradients(self.params, set_to_none)

    def with_grad(self, group: dict) -> list[tuple[Parameter, dict]]:
        """``(parameter, state)`` pairs of the group's parameters that have a gradient: as in
        torch, ``step`` leaves a parameter whose ``grad`` is None alone."""
        return [(p, self._states.setdefault(p, {})) for p in group["params"]
                if p.grad is not None]

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [{option: value, "params":
        [index, ...]}]}`` as ``torch.optim`` lays it out, with copies of the tensors."""
        groups, start = [], 0
        for group in self.param_groups:
            saved = {key: _copy(value) for key, value in group.items() if key != "params"}
            groups.append({**saved, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        state = {index: {key: _saved(key, value) for key, value in s.items()}
                 for index, s in enumerate(self._states.get(p) for p in self.params) if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Options and per-parameter state from ``state_dict()`` (mini_dl's or torch.optim's),
        checked entirely before anything changes."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected torch.optim's layout {{'state': ..., "
                             f"'param_groups': [...]}}, got {got}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the state has {len(saved_groups)} parameter groups, "
                             f"the optimizer {len(self.param_groups)}")
        groups, index_to_parameter = [], {}
        for number, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}: parameter group {number} has {len(saved['params'])} "
                                 f"parameters in the state, {len(group['params'])} here")
            missing = [option for option in self.defaults if option not in saved]
            if missing:  # e.g. an Adam state loaded into SGD
                raise ValueError(f"{name}: parameter group {number} of the state has no "
                                 f"{missing}: is it the state of another optimizer?")
            decoupled = getattr(self, "decoupled_weight_decay", False)
            if saved.get("decoupled_weight_decay", decoupled) != decoupled:
                raise ValueError(f"{name}: the state has decoupled_weight_decay="
                                 f"{saved['decoupled_weight_decay']}, the optimizer {decoupled}")
            options = {key: _copy(value) for key, value in saved.items()
                       if key not in ("params", *TORCH_IMPLEMENTATION_OPTIONS)}
            options.update(self._checked(options, f"{name} (parameter group {number})"))
            groups.append({**options, "params": group["params"]})
            index_to_parameter.update(zip(saved["params"], group["params"]))
        states = {}
        for index, saved in state_dict["state"].items():
            if index not in index_to_parameter:
                raise ValueError(f"{name}: the state has an entry for parameter {index}, which "
                                 "no parameter group lists")
            p = index_to_parameter[index]
            for key, value in saved.items():
                if key != "step" and isinstance(value, torch.Tensor) and value.shape != p.shape:
                    raise ValueError(f"{name}: {key} of parameter {index} has shape "
                                     f"{tuple(value.shape)}, the parameter {tuple(p.shape)}")
            states[p] = {key: _loaded(key, value, p) for key, value in saved.items()}
        self.param_groups, self._states = groups, states

    def __repr__(self) -> str:
        def options(group: dict) -> str:
            return ", ".join(f"{key}={group[key]}" for key in self.defaults
                             if not (key in self.quiet_switches and group[key] is False))
        if len(self.param_groups) == 1:
            return f"{type(self).__name__}({options(self.param_groups[0])})"
        lines = [f"  param group {i} ({len(group['params'])} parameters): {options(group)}"
                 for i, group in enumerate(self.param_groups)]
        return "\n".join([f"{type(self).__name__}(", *lines, ")"])


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    For each parameter p with gradient g, at step t::

        g <- -g                                           (if maximize)
        g <- g + weight_decay * p                         (if weight_decay != 0)
        if momentum != 0:
            b <- g                         at t = 1       (the buffer starts at the gradient)
            b <- momentum * b + (1 - dampening) * g       afterwards
            g <- g + momentum * b   if nesterov  else  b
        p <- p - lr * g

    Without momentum and weight decay only the last line acts (with ``maximize``, as
    p + lr * g), and ``step`` applies it to every parameter of a group in one
    ``torch._foreach_add_`` call (the same arithmetic, bit for bit). State per parameter, with
    torch's name: ``momentum_buffer`` (b).

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0])); p.grad.fill_(0.5)
        tensor([0.5000])
        >>> dl.SGD([p], lr=0.1).step(); p.data
        tensor([0.9500])
    """

    checks: ClassVar[dict] = {
        "lr": _learning_rate, "momentum": _non_negative, "dampening": _fraction,
        "weight_decay": _non_negative, "nesterov": _switch, "maximize": _switch}

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _checked(self, options: dict, owner: str) -> dict:
        checked = super()._checked(options, owner)
        if checked["nesterov"] and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ValueError(f"{owner}: nesterov requires momentum > 0 and dampening = 0, got "
                             f"momentum={checked['momentum']}, dampening={checked['dampening']}")
        return checked

    def step(self) -> None:
        for group in self.param_groups:
            lr, momentum, dampening = _scalar(group["lr"]), group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = (group["weight_decay"], group["nesterov"],
                                                group["maximize"])
            if not momentum and not weight_decay:  # plain SGD: p <- p - lr * g, the loop's last
                # line below, for every parameter in one call (as torch's foreach=True does)
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    torch._foreach_add_([p.data for p in params], [p.grad for p in params],
                                        alpha=lr if maximize else -lr)
                continue
            for p, state in self.with_grad(group):
                grad = -p.grad if maximize else p.grad
                if weight_decay:
                    grad = grad.add(p.data, alpha=weight_decay)
                if momentum:
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = grad.clone()
                    else:
                        buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
                    grad = grad.add(buffer, alpha=momentum) if nesterov else buffer
                p.data.add_(grad, alpha=-lr)


class Adam(Optimizer):
    r"""Adam, as ``torch.optim.Adam``.

    For each parameter p with gradient g, at step t = 1, 2, ... (m, v, v_max start at zero)::

        g <- -g                                          (if maximize)
        g <- g + weight_decay * p                        (L2 penalty; AdamW decays p instead)
        m <- beta1 * m + (1 - beta1) * g                 (first moment: mean of g)
        v <- beta2 * v + (1 - beta2) * g * g             (second moment: mean of g^2)
        m_hat = m / (1 - beta1^t)                        (bias correction: m, v start at 0)
        v_max <- max(v_max, v);  v <- v_max              (if amsgrad: v never decreases)
        v_hat = v / (1 - beta2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)        (eps outside the square root)

    State per parameter, with torch's names: ``step`` (t), ``exp_avg`` (m), ``exp_avg_sq`` (v),
    and with amsgrad ``max_exp_avg_sq`` (v_max).

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0, -1.0])); p.grad.copy_(torch.tensor([0.5, -2.0]))
        tensor([ 0.5000, -2.0000])
        >>> dl.Adam([p], lr=0.1).step(); p.data   # the first step moves each entry by ~lr
        tensor([ 0.9000, -0.9000])
    """

    decoupled_weight_decay = False
    checks: ClassVar[dict] = {
        "lr": _learning_rate, "betas": _betas, "eps": _non_negative,
        "weight_decay": _non_negative, "amsgrad": _switch, "maximize": _switch}
    quiet_switches = ("amsgrad", "maximize")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize})

    def step(self) -> None:
        for group in self.param_groups:
            lr, (beta1, beta2), eps = _scalar(group["lr"]), group["betas"], group["eps"]
            weight_decay, amsgrad, maximize = (group["weight_decay"], group["amsgrad"],
                                               group["maximize"])
            for p, state in self.with_grad(group):
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p.data),
                                 exp_avg_sq=torch.zeros_like(p.data))
                    if amsgrad:
                        state["max_exp_avg_sq"] = torch.zeros_like(p.data)
                state["step"] += 1
                grad = -p.grad if maximize else p.grad
                if weight_decay and self.decoupled_weight_decay:
                    p.data.mul_(1 - lr * weight_decay)
                elif weight_decay:
                    grad = grad.add(p.data, alpha=weight_decay)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)  # m + (1 - beta1)(g - m), torch's form
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                step_size = lr / bias_correction1
                if amsgrad:  # v_max <- max(v_max, v), in place
                    exp_avg_sq = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq,
                                               out=state["max_exp_avg_sq"])
                # lr * m_hat / (sqrt(v_hat) + eps), arranged as torch arranges it
                denominator = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
                p.data.addcdiv_(exp_avg, denominator, value=-step_size)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    The same update as :class:`Adam`, except that the line with weight_decay becomes::

        p <- p * (1 - lr * weight_decay)                 (instead of g <- g + weight_decay * p)

    so the decay does not pass through m and v: it shrinks every weight by the same factor,
    whatever the size of its gradients. Default ``weight_decay=1e-2``, as torch.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``: steps scaled by a running RMS of the gradient.

    For each parameter p with gradient g, at step t = 1, 2, ... (v, m, b start at zero)::

        g <- -g                                          (if maximize)
        g <- g + weight_decay * p                        (if weight_decay != 0)
        v <- alpha * v + (1 - alpha) * g * g             (running mean of g^2)
        if centered:
            m <- alpha * m + (1 - alpha) * g             (running mean of g)
            d = sqrt(v - m * m) + eps                    (running standard deviation)
        else:
            d = sqrt(v) + eps
        if momentum > 0:
            b <- momentum * b + g / d
            p <- p - lr * b
        else:
            p <- p - lr * g / d

    State per parameter, with torch's names: ``step`` (t), ``square_avg`` (v), with momentum
    ``momentum_buffer`` (b), and when centered ``grad_avg`` (m).

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0, -1.0])); p.grad.copy_(torch.tensor([0.5, -2.0]))
        tensor([ 0.5000, -2.0000])
        >>> dl.RMSprop([p], lr=0.01).step(); p.data  # v = 0.01 g^2: each entry moves by 10 lr
        tensor([ 0.9000, -0.9000])
    """

    checks: ClassVar[dict] = {
        "lr": _learning_rate, "alpha": _non_negative, "eps": _non_negative,
        "weight_decay": _non_negative, "momentum": _non_negative, "centered": _switch,
        "maximize": _switch}
    quiet_switches = ("centered", "maximize")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    def step(self) -> None:
        for group in self.param_groups:
            lr, alpha, eps, weight_decay = (_scalar(group["lr"]), group["alpha"], group["eps"],
                                            group["weight_decay"])
            momentum, centered, maximize = group["momentum"], group["centered"], group["maximize"]
            for p, state in self.with_grad(group):
                if not state:
                    state.update(step=0, square_avg=torch.zeros_like(p.data))
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(p.data)
                    if centered:
                        state["grad_avg"] = torch.zeros_like(p.data)
                state["step"] += 1
                grad = -p.grad if maximize else p.grad
                if weight_decay:
                    grad = grad.add(p.data, alpha=weight_decay)
                square_avg = state["square_avg"]
                square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                if centered:
                    grad_avg = state["grad_avg"]
                    grad_avg.lerp_(grad, 1 - alpha)  # m + (1 - alpha)(g - m), torch's form
                    denominator = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
                else:
                    denominator = square_avg.sqrt()
                denominator.add_(eps)
                if momentum > 0:
                    buffer = state["momentum_buffer"]
                    buffer.mul_(momentum).addcdiv_(grad, denominator)
                    p.data.add_(buffer, alpha=-lr)
                else:
                    p.data.addcdiv_(grad, denominator, value=-lr)


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``: steps scaled by the root of the summed squared
    gradients, so that often-large coordinates slow down.

    For each parameter p with gradient g, at step t = 1, 2, ...
    (s starts at ``initial_accumulator_value``)::

        g <- -g                                          (if maximize)
        g <- g + weight_decay * p                        (if weight_decay != 0)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        s <- s + g * g
        p <- p - lr_t * g / (sqrt(s) + eps)

    State per parameter, with torch's names, created with the optimizer: ``step`` (t),
    ``sum`` (s). As in torch, s starts at the constructor's ``initial_accumulator_value`` in
    every parameter group (a group's own value is kept in the group but not used).

    Example:
        >>> import torch, mini_dl as dl
        >>> p = dl.Parameter(torch.tensor([1.0])); optimizer = dl.Adagrad([p], lr=0.1)
        >>> for _ in range(3):  # the same gradient 1 each time: steps lr / sqrt(t)
        ...     _ = p.grad.fill_(1.0); optimizer.step()
        >>> p.data, optimizer.state[0]["sum"]  # 1 - 0.1 (1 + 1/sqrt(2) + 1/sqrt(3))
        (tensor([0.7716]), tensor([3.]))
    """

    checks: ClassVar[dict] = {
        "lr": _learning_rate, "lr_decay": _non_negative, "weight_decay": _non_negative,
        "initial_accumulator_value": _non_negative, "eps": _non_negative, "maximize": _switch}

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *,
                 maximize: bool = False):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps, "maximize": maximize})
        for p in self.params:  # as torch: the state exists from the start
            self._states[p] = self._initial_state(p)

    def _initial_state(self, p: Parameter) -> dict:
        # torch fills s with the constructor's value, also for a group that sets its own
        return {"step": 0,
                "sum": torch.full_like(p.data, self.defaults["initial_accumulator_value"])}

    def step(self) -> None:
        for group in self.param_groups:
            lr, lr_decay, weight_decay, eps = (_scalar(group["lr"]), group["lr_decay"],
                                               group["weight_decay"], group["eps"])
            for p, state in self.with_grad(group):
                if not state:  # a parameter added by add_param_group, as in torch
                    state.update(self._initial_state(p))
                state["step"] += 1
                grad = -p.grad if group["maximize"] else p.grad
                if weight_decay:
                    grad = grad.add(p.data, alpha=weight_decay)
                lr_t = lr / (1 + (state["step"] - 1) * lr_decay)
                state["sum"].addcmul_(grad, grad, value=1)
                p.data.addcdiv_(grad, state["sum"].sqrt().add_(eps), value=-lr_t)
