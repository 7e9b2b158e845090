r"""Weight initialisation, as ``torch.nn.init``: same fan rules, same gains, same draws.

Every ``*_`` function fills its argument in place (a mini_dl :class:`~mini_dl.module.Parameter`
or a tensor) and returns it. Each makes exactly one ``uniform_`` or ``normal_`` call with the
bounds torch computes, in the same floating-point order, so that under the same seed (or the same
``generator``) it gives the same numbers as its ``torch.nn.init`` namesake.

Fans of a weight of shape ``(out, in, *kernel)``: fan_in = in * prod(kernel), fan_out = out *
prod(kernel). The standard deviations, with ``gain`` from :func:`calculate_gain`::

    xavier (Glorot):  std = gain * sqrt(2 / (fan_in + fan_out))
    kaiming (He):     std = gain / sqrt(fan)              (fan = fan_in or fan_out, by mode)
    uniform variants: U(-bound, bound) with bound = sqrt(3) * std (a uniform's std is bound/sqrt(3))

:func:`initialize` re-initialises every :class:`~mini_dl.layers.Linear` of a model in one call.
"""
from __future__ import annotations

import math

import torch

from .module import Module, Parameter

LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid")
NONLINEARITIES = (*LINEAR_GAIN, "tanh", "relu", "leaky_relu", "selu")
METHODS = ("default", "xavier", "he")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The gain torch recommends for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh,
    sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (``param`` = negative slope,
    default 0.01), 3/4 for selu.

    Example:
        >>> from mini_dl import init
        >>> init.calculate_gain("relu"), init.calculate_gain("leaky_relu", 0.0)
        (1.4142135623730951, 1.4142135623730951)
    """
    if nonlinearity in LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            param = 0.01
        if isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope must be a number, got {param!r}")
        return math.sqrt(2.0 / (1 + param ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}, "
                     f"expected one of {NONLINEARITIES}")


def _data(tensor, caller: str) -> torch.Tensor:
    """The tensor to fill: a Parameter's ``data``, or the floating-point tensor itself."""
    data = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(data, torch.Tensor) or not data.is_floating_point():
        raise TypeError(f"{caller}: expected a mini_dl Parameter or a floating-point tensor, "
                        f"got {tensor!r:.60}")
    return data


def _fans(data: torch.Tensor, caller: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight ``(out, in, *kernel)``."""
    if data.ndim < 2:
        raise ValueError(f"{caller}: fan_in and fan_out need a tensor with at least 2 "
                         f"dimensions (out, in, ...), got shape {tuple(data.shape)}")
    receptive_field = math.prod(data.shape[2:])
    return data.shape[1] * receptive_field, data.shape[0] * receptive_field


def _fan(data: torch.Tensor, mode: str, caller: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{caller}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(data, caller)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None):
    """Fill with U(a, b)."""
    _data(tensor, "uniform_").uniform_(a, b, generator=generator)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0,
            generator: torch.Generator | None = None):
    """Fill with N(mean, std^2)."""
    _data(tensor, "normal_").normal_(mean, std, generator=generator)
    return tensor


def zeros_(tensor):
    """Fill with zeros."""
    _data(tensor, "zeros_").zero_()
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """Glorot: U(-bound, bound), bound = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out)).

    Example:
        >>> import torch
        >>> from mini_dl import init
        >>> w = init.xavier_uniform_(torch.empty(300, 200))
        >>> round(w.abs().max().item(), 2), round(6 ** 0.5 / 500 ** 0.5, 2)  # bound
        (0.11, 0.11)
    """
    data = _data(tensor, "xavier_uniform_")
    fan_in, fan_out = _fans(data, "xavier_uniform_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    data.uniform_(-bound, bound, generator=generator)
    return tensor


def xavier_normal_(tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """Glorot: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    data = _data(tensor, "xavier_normal_")
    fan_in, fan_out = _fans(data, "xavier_normal_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    data.normal_(0.0, std, generator=generator)
    return tensor


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: torch.Generator | None = None):
    """He: U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan), gain from ``nonlinearity`` (and
    ``a``, the leaky_relu slope)."""
    data = _data(tensor, "kaiming_uniform_")
    if data.numel() == 0:
        return tensor  # torch: a no-op on an empty tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(data, mode, "kaiming_uniform_"))
    bound = math.sqrt(3.0) * std
    data.uniform_(-bound, bound, generator=generator)
    return tensor


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None):
    """He: N(0, std^2), std = gain / sqrt(fan), gain from ``nonlinearity`` (and ``a``).

    Example:
        >>> import torch
        >>> from mini_dl import init
        >>> w = init.kaiming_normal_(torch.empty(500, 200), nonlinearity="relu")
        >>> round(w.std().item(), 2), round((2 / 200) ** 0.5, 2)
        (0.1, 0.1)
    """
    data = _data(tensor, "kaiming_normal_")
    if data.numel() == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(data, mode, "kaiming_normal_"))
    data.normal_(0.0, std, generator=generator)
    return tensor


def _linear_layers(module: Module):
    """Every Linear in ``module`` (itself included), depth first in registration order."""
    from .layers import Linear  # here: layers imports init for Linear's own draws

    if isinstance(module, Linear):
        yield module
    for child in module.children():
        yield from _linear_layers(child)


def initialize(model: Module, method: str = "default", nonlinearity: str = "relu",
               gain: float | None = None, seed: int | None = None) -> Module:
    """Re-initialise the weight and bias of every :class:`~mini_dl.layers.Linear` in ``model``.

    Layer by layer, in registration order, weight before bias, by ``method``:

    - ``"default"``: ``Linear.reset_parameters()``, torch.nn.Linear's U(+-1/sqrt(in_features))
      for weight and bias; ``gain`` and ``nonlinearity`` are not used.
    - ``"xavier"``: weight ~ N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
      (``xavier_normal_``); ``gain`` defaults to 1 (Glorot's choice); bias = 0.
    - ``"he"``: weight ~ N(0, std^2), std = gain / sqrt(fan_in) (``kaiming_normal_``);
      ``gain`` defaults to ``calculate_gain(nonlinearity)``, sqrt(2) for relu; bias = 0.

    ``seed``: draw from a fresh ``torch.Generator`` seeded with it (the global RNG is left
    untouched); ``None`` draws from the global RNG. Returns ``model``.

    Example:
        >>> import torch, mini_dl as dl
        >>> model = dl.Sequential(dl.Linear(400, 300), dl.ReLU(), dl.Linear(300, 2))
        >>> _ = dl.init.initialize(model, "he", seed=0)
        >>> round(model[0].weight.data.std().item(), 3), model[0].bias.data.abs().max().item()
        (0.071, 0.0)
    """
    if not isinstance(model, Module):
        raise TypeError(f"initialize: model must be a mini_dl Module, got {type(model).__name__}")
    if method not in METHODS:
        raise ValueError(f"initialize: method must be one of {METHODS}, got {method!r}")
    if gain is not None and (isinstance(gain, bool) or not isinstance(gain, (int, float))
                             or not gain > 0):
        raise ValueError(f"initialize: gain must be a positive number or None, got {gain!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"initialize: seed must be an int or None, got {seed!r}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"initialize: nonlinearity must be one of {NONLINEARITIES}, "
                         f"got {nonlinearity!r}")
    if method == "he" and gain is None:
        gain = calculate_gain(nonlinearity)
    elif method == "xavier" and gain is None:
        gain = 1.0
    layers = list(_linear_layers(model))
    if not layers:
        raise ValueError(f"initialize: {type(model).__name__} contains no Linear layer")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=layers[0].weight.data.device).manual_seed(seed)
    for layer in layers:
        if method == "default":
            layer.reset_parameters(generator)
            continue
        if method == "xavier":
            xavier_normal_(layer.weight, gain, generator)
        else:
            normal_(layer.weight, 0.0, gain / math.sqrt(layer.in_features), generator)
        if layer.bias is not None:
            zeros_(layer.bias)
    return model
