"""Loss functions, with torch.nn's names, arguments, defaults and results.

``loss = criterion(input, target)`` returns PyTorch's value: a 0-dim tensor under
``reduction="mean"`` (the default) or ``"sum"``, one loss per element (or per position, for the
class losses) under ``"none"``. ``criterion.backward()`` returns dL/dinput; under ``"none"`` it
takes the gradient of the loss tensor, ``criterion.backward(grad_output)``.

Signatures follow torch.nn without its deprecated ``size_average`` and ``reduce``: a loss without
weights takes ``reduction`` first (``dl.MSELoss("sum")``); every argument after the first is
keyword-only, so that no call accepted here means something else to torch.nn.
"""
from __future__ import annotations

import math

import torch

from .module import Module, check_tensor, detached

REDUCTIONS = ("mean", "sum", "none")
# arguments shown by repr when they differ from torch's default
# the guard of BCE's gradient: torch's `constexpr float EPSILON = 1e-12`, a float32 (1e-12 rounded)
BCE_EPSILON = 9.999999960041972e-13
DEFAULTS = {"ignore_index": -100, "label_smoothing": 0.0, "delta": 1.0, "beta": 1.0}


class _Loss(Module):
    """The reduction and the upstream gradient, shared by every loss."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def reduce(self, losses: torch.Tensor, denominator=None) -> torch.Tensor:
        """The mean (over the elements, or ``sum / denominator``), the sum, or ``losses``."""
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        return losses.mean() if denominator is None else losses.sum() / denominator

    def upstream(self, grad_output, like: torch.Tensor, shape: tuple = ()
                 ) -> torch.Tensor | float:
        """dL_total/dloss. Under "mean"/"sum": 1 by default, or the number or 0-dim tensor passed
        to ``backward``. Under "none": the tensor passed, of the loss's ``shape`` (required)."""
        if self.reduction == "none":
            if not isinstance(grad_output, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: with reduction='none', backward needs "
                                f"grad_output, a tensor of the loss's shape {tuple(shape)}, got "
                                f"{type(grad_output).__name__}")
            return detached(check_tensor(self, "grad_output", grad_output, shape=shape,
                                         like=like))
        if grad_output is None:
            return 1.0
        if isinstance(grad_output, (int, float)) and not isinstance(grad_output, bool):
            return float(grad_output)
        return detached(check_tensor(self, "grad_output", grad_output, shape=(), like=like))

    def scale(self, grad_output, like: torch.Tensor, shape: tuple, count, factor: float = 1.0):
        """What multiplies each element's local derivative: ``factor / count`` (the mean's
        denominator, a number or a 0-dim tensor) or ``factor``, times the upstream gradient."""
        upstream = self.upstream(grad_output, like, shape)
        return (factor / count if self.reduction == "mean" else factor) * upstream

    def extra_repr(self) -> str:
        shown = [f"reduction={self.reduction!r}"]
        shown += [f"{name}={getattr(self, name)!r}" for name, default in DEFAULTS.items()
                  if hasattr(self, name) and getattr(self, name) != default]
        return ", ".join(shown)


# -- losses that compare input and target element by element ---------------------------------

class _PointwiseLoss(_Loss):
    """``L = reduce(l(x_i, t_i))`` over the elements of an input and a target of one shape."""

    def check(self, input: torch.Tensor, target: torch.Tensor) -> tuple:
        input = check_tensor(self, "input", input)
        if input.numel() == 0:
            raise ValueError(f"{type(self).__name__}: input is empty (shape "
                             f"{tuple(input.shape)})")
        target = check_tensor(self, "target", target, shape=input.shape, like=input)
        return input, target

    def subtract(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``d = x - t`` of a checked input and target, cached for backward as ``difference``."""
        input, target = self.check(input, target)
        difference = input - target
        self.difference = detached(difference)  # the cache never carries an autograd graph
        return difference

    def element_scale(self, grad_output, like: torch.Tensor, factor: float = 1.0):
        """:meth:`scale` for losses of ``like``'s shape, the mean over its elements."""
        return self.scale(grad_output, like, like.shape, like.numel(), factor)

    def check_broadcast(self, name: str, like: torch.Tensor) -> torch.Tensor | None:
        """The buffer ``name`` (None, or a tensor that broadcasts to the input's shape)."""
        value = getattr(self, name)
        if value is None:
            return None
        check_tensor(self, name, value, like=like)
        try:
            fits = torch.broadcast_shapes(value.shape, like.shape) == like.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{type(self).__name__}: {name} of shape {tuple(value.shape)} must "
                             f"broadcast to the input's shape {tuple(like.shape)}")
        return value


class MSELoss(_PointwiseLoss):
    r"""Mean squared error: :math:`l_i = (x_i - t_i)^2`, averaged over **all** M elements
    (``reduction="mean"``, PyTorch's default), summed (``"sum"``) or returned (``"none"``).

    Backward: dL/dx = 2 (x - t) / M   (``"sum"``: 2 (x - t); ``"none"``: 2 (x - t) G for the
    upstream gradient G of the loss's shape).

    Shape: input and target of the same shape, any; the loss is a 0-dim tensor (``"none"``: the
    input's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.MSELoss()
        >>> criterion(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(2.5000)
        >>> criterion.backward()
        tensor([1., 2.])
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)
        self.difference = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        difference = self.subtract(input, target)  # checked, and cached for backward
        return self.reduce(difference * difference)

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        return difference * self.element_scale(grad_output, difference, factor=2.0)


class L1Loss(_PointwiseLoss):
    r"""Mean absolute error: :math:`l_i = |x_i - t_i|`, reduced as :class:`MSELoss`.

    Backward: dl_i/dx_i = sign(x_i - t_i), 0 at the kink x_i = t_i (torch's ``sgn``); times 1/M
    (``"mean"``) and the upstream gradient.

    Shape: input and target of the same shape; the loss is a 0-dim tensor (``"none"``: the
    input's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.L1Loss(reduction="sum")
        >>> criterion(torch.tensor([1.0, 0.0, -3.0]), torch.zeros(3))
        tensor(4.)
        >>> criterion.backward()
        tensor([ 1.,  0., -1.])
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)
        self.difference = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.subtract(input, target).abs())

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        return difference.sign() * self.element_scale(grad_output, difference)


class HuberLoss(_PointwiseLoss):
    r"""Huber loss: quadratic near the target, linear (slope ``delta``) beyond ``delta``. With
    :math:`d_i = x_i - t_i`,

    .. math::
        l_i = \tfrac12 d_i^2 \text{ if } |d_i| < \delta, \quad
        \delta\,(|d_i| - \tfrac12 \delta) \text{ otherwise},

    reduced as :class:`MSELoss`. ``delta`` must be positive.

    Backward: dl_i/dx_i = clamp(d_i, -delta, delta) (continuous: d_i = +-delta at ``|d_i| = delta``,
    as torch), times 1/M (``"mean"``) and the upstream gradient.

    Shape: input and target of the same shape; the loss is a 0-dim tensor (``"none"``: the
    input's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.HuberLoss(reduction="none", delta=1.0)
        >>> criterion(torch.tensor([0.5, 3.0]), torch.zeros(2))
        tensor([0.1250, 2.5000])
        >>> criterion.backward(torch.ones(2))
        tensor([0.5000, 1.0000])
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = _number(self, "delta", delta, "> 0")
        self.difference = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        size = self.subtract(input, target).abs()
        return self.reduce(torch.where(size < self.delta, 0.5 * size * size,
                                       self.delta * (size - 0.5 * self.delta)))

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        slope = difference.clamp(-self.delta, self.delta)
        return slope * self.element_scale(grad_output, difference)


class SmoothL1Loss(_PointwiseLoss):
    r"""Smooth L1 loss: the Huber loss divided by ``beta``. With :math:`d_i = x_i - t_i`,

    .. math::
        l_i = \tfrac12 d_i^2 / \beta \text{ if } |d_i| < \beta, \quad
        |d_i| - \tfrac12 \beta \text{ otherwise},

    and for ``beta = 0`` the L1 loss :math:`|d_i|` (as torch), reduced as :class:`MSELoss`.

    Backward: dl_i/dx_i = clamp(d_i / beta, -1, 1) (+-1 at ``|d_i| = beta``, as torch); for
    ``beta = 0`` sign(d_i), 0 at d_i = 0 (L1's); times 1/M (``"mean"``) and the upstream gradient.

    Shape: input and target of the same shape; the loss is a 0-dim tensor (``"none"``: the
    input's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.SmoothL1Loss(reduction="none", beta=2.0)
        >>> criterion(torch.tensor([1.0, -3.0]), torch.zeros(2))
        tensor([0.2500, 2.0000])
        >>> criterion.backward(torch.ones(2))
        tensor([ 0.5000, -1.0000])
    """

    def __init__(self, reduction: str = "mean", *, beta: float = 1.0):
        super().__init__(reduction)
        self.beta = _number(self, "beta", beta, ">= 0")
        self.difference = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        size = self.subtract(input, target).abs()
        if self.beta == 0:
            return self.reduce(size)
        return self.reduce(torch.where(size < self.beta, 0.5 * size * size / self.beta,
                                       size - 0.5 * self.beta))

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        slope = difference.sign() if self.beta == 0 else (difference / self.beta).clamp(-1, 1)
        return slope * self.element_scale(grad_output, difference)


class BCELoss(_PointwiseLoss):
    r"""Binary cross-entropy of probabilities ``x`` in [0, 1] against targets ``t`` in [0, 1]:

    .. math::
        l_i = -w_i \bigl[t_i \max(\log x_i, -100) + (1 - t_i) \max(\log(1 - x_i), -100)\bigr],

    each log clamped at -100 as torch does (so x = 0 or 1 gives a finite loss), ``w`` the
    optional ``weight`` (broadcast to the input's shape; a buffer), reduced as :class:`MSELoss`.
    From logits, :class:`BCEWithLogitsLoss` is the stable choice.

    Backward (torch's formula, the division guarded): dl_i/dx_i =
    w_i (x_i - t_i) / max((1 - x_i) x_i, 1e-12) (1e-12 rounded to float32, as torch), times 1/M
    (``"mean"``) and the upstream gradient.

    Shape: input and target of the same shape, any; the loss is a 0-dim tensor (``"none"``: the
    input's shape). Values outside [0, 1] are refused on the CPU (on a GPU, checking would make
    every step wait for the device).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.BCELoss()
        >>> criterion(torch.tensor([0.5, 0.9]), torch.tensor([1.0, 1.0]))
        tensor(0.3993)
        >>> criterion.backward()
        tensor([-1.0000, -0.5556])
    """

    def __init__(self, weight: torch.Tensor | None = None, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _floating_or_none(self, "weight", weight))
        self.input = None
        self.target = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        input, target = self.check(input, target)
        weight = self.check_broadcast("weight", input)
        if input.device.type == "cpu":
            for name, value in (("input", input), ("target", target)):
                if bool(((value < 0) | (value > 1)).any()):
                    raise ValueError(f"BCELoss: {name} must hold values in [0, 1], got values "
                                     f"in [{value.min().item():g}, {value.max().item():g}]")
        self.input, self.target = detached(input), target
        losses = ((target - 1) * (-input).log1p().clamp(min=-100)
                  - target * input.log().clamp(min=-100))
        return self.reduce(losses if weight is None else losses * weight)

    def backward(self, grad_output=None) -> torch.Tensor:
        x, t = self.saved("input"), self.target
        grad = (x - t) / ((1 - x) * x).clamp(min=BCE_EPSILON)
        if self.weight is not None:
            grad = grad * self.weight
        return grad * self.element_scale(grad_output, x)


class BCEWithLogitsLoss(_PointwiseLoss):
    r"""Binary cross-entropy of logits ``x`` (any real numbers) against targets ``t`` in [0, 1],
    with the sigmoid inside the loss and computed stably, as torch:

    .. math::
        l_i = w_i \bigl[(1 - t_i)\, x_i - (1 + (p_i - 1)\, t_i) \log\sigma(x_i)\bigr],
        \qquad \log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|}),

    which equals :math:`-w_i [p_i t_i \log\sigma(x_i) + (1 - t_i) \log(1 - \sigma(x_i))]` but never
    takes the log of a sigmoid that rounded to 0 or 1 (logits of +-1000 give finite values). ``w``
    is the optional ``weight`` and ``p`` the optional ``pos_weight`` (the weight of the positive
    term, broadcast along the last dimension, one per class), both buffers broadcast to the
    input's shape; reduced as :class:`MSELoss`.

    Backward: dl_i/dx_i = w_i [(p_i t_i + 1 - t_i) sigma(x_i) - p_i t_i] (without pos_weight:
    w_i (sigma(x_i) - t_i)), times 1/M (``"mean"``) and the upstream gradient.

    Shape: input and target of the same shape; the loss is a 0-dim tensor (``"none"``: the
    input's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.BCEWithLogitsLoss(reduction="none")
        >>> criterion(torch.tensor([1000.0, -1000.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])).tolist()
        [1000.0, 0.0, 0.6931471824645996]
        >>> criterion.backward(torch.ones(3))
        tensor([ 1.0000,  0.0000, -0.5000])
    """

    def __init__(self, weight: torch.Tensor | None = None, *, reduction: str = "mean",
                 pos_weight: torch.Tensor | None = None):
        super().__init__(reduction)
        self.register_buffer("weight", _floating_or_none(self, "weight", weight))
        self.register_buffer("pos_weight", _floating_or_none(self, "pos_weight", pos_weight))
        self.input = None
        self.target = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        input, target = self.check(input, target)
        weight, pos_weight = self.check_broadcast("weight", input), self.check_broadcast(
            "pos_weight", input)
        self.input, self.target = detached(input), target
        log_sigmoid = input.clamp(max=0) - (-input.abs()).exp().log1p()
        if pos_weight is not None:
            log_sigmoid = log_sigmoid * ((pos_weight - 1) * target + 1)
        losses = (1 - target) * input - log_sigmoid
        return self.reduce(losses if weight is None else losses * weight)

    def backward(self, grad_output=None) -> torch.Tensor:
        x, t = self.saved("input"), self.target
        if self.pos_weight is None:
            grad = x.sigmoid() - t
        else:
            positive = self.pos_weight * t
            grad = (positive + 1 - t) * x.sigmoid() - positive
        if self.weight is not None:
            grad = grad * self.weight
        return grad * self.element_scale(grad_output, x)


def _number(owner: Module, name: str, value, condition: str) -> float:
    """``value`` as a float, if it is a number that meets ``condition``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    meets = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0,
             "in [0, 1]": lambda v: 0 <= v <= 1}[condition]
    if not number or not meets(value):
        raise ValueError(f"{type(owner).__name__}: {name} must be a number {condition}, got "
                         f"{value!r}")
    return float(value)


def _floating_or_none(owner: Module, name: str, value) -> torch.Tensor | None:
    if value is not None and not (isinstance(value, torch.Tensor) and value.is_floating_point()):
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise TypeError(f"{type(owner).__name__}: {name} must be None or a floating-point "
                        f"tensor, got {got}")
    return value


# -- losses over classes: scores (N, C, d1, ..., dK) against class indices (N, d1, ..., dK) ---

class _ClassLoss(_Loss):
    """Class weights (a buffer), ``ignore_index``, the checks of scores and targets, and the
    weighted mean over positions (a sample, or one element of a sample's K-dim map)."""

    def __init__(self, weight, ignore_index: int, reduction: str):
        super().__init__(reduction)
        weight = _floating_or_none(self, "weight", weight)
        if weight is not None and weight.ndim != 1:
            raise ValueError(f"{type(self).__name__}: weight must be 1-D, one weight per class, "
                             f"got shape {tuple(weight.shape)}")
        self.register_buffer("weight", weight)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"{type(self).__name__}: ignore_index must be an int, got "
                            f"{ignore_index!r}")
        self.ignore_index = ignore_index
        self.target = None
        self.target_weight = None
        self.ignored = None
        self.denominator = None
        self.unbatched = False

    def check(self, name: str, scores: torch.Tensor, target: torch.Tensor,
              probabilities: bool = False) -> tuple:
        """``(scores, target, ignored)`` with the classes on dimension 1 (an unbatched ``(C,)``
        input gets N = 1); ``ignored`` marks the targets equal to ``ignore_index`` (None when
        there are none: known on the CPU). ``probabilities``: a floating target of the scores'
        shape holds class probabilities (CrossEntropyLoss)."""
        loss = type(self).__name__
        scores = check_tensor(self, name, scores)
        shape = tuple(scores.shape)
        if scores.ndim == 0 or scores.numel() == 0:
            raise ValueError(f"{loss}: {name} must have shape (N, C), (N, C, d1, ..., dK) or (C,) "
                             f"with N, C > 0, got {shape}")
        classes = shape[0] if scores.ndim == 1 else shape[1]
        if self.weight is not None:
            check_tensor(self, "weight", self.weight, shape=(classes,), like=scores)
        floating = isinstance(target, torch.Tensor) and target.is_floating_point()
        if probabilities and floating and target.ndim == scores.ndim:
            if target.shape != scores.shape:
                raise ValueError(f"{loss}: a target of class probabilities must have the {name}' "
                                 f"shape {shape}, got {tuple(target.shape)}")
            check_tensor(self, "target", target, like=scores)
            if self.ignore_index >= 0:
                raise ValueError(f"{loss}: ignore_index={self.ignore_index} cannot apply to class "
                                 f"probabilities (torch supports only a negative ignore_index)")
            ignored = None
        else:
            ignored = self._check_indices(name, shape, classes, target, probabilities,
                                          scores.device)
        if scores.ndim == 1:
            scores, target = scores.unsqueeze(0), target.unsqueeze(0)
            ignored = None if ignored is None else ignored.unsqueeze(0)
        self.unbatched = len(shape) == 1
        return scores, target, ignored

    def _check_indices(self, name, shape, classes, target, probabilities, device):
        loss = type(self).__name__
        index_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
        if not isinstance(target, torch.Tensor) or target.dtype != torch.int64:
            got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
            hint = (f"; class probabilities must be floating point, of the {name}' shape {shape}"
                    if probabilities else "")
            raise TypeError(f"{loss}: target must be an int64 tensor of class indices (use "
                            f".long()), got {got}{hint}")
        if tuple(target.shape) != index_shape:
            if probabilities and tuple(target.shape) == shape:
                raise TypeError(f"{loss}: a target of the {name}' shape {shape} holds class "
                                f"probabilities and must be floating point, got {target.dtype}")
            raise ValueError(f"{loss}: target must have shape {index_shape} to match {name} "
                             f"{shape}, got {tuple(target.shape)}")
        if target.device != device:
            raise TypeError(f"{loss}: target must be on {device}, got {target.device}")
        if target.device.type != "cpu":  # on a GPU, reading the range back would wait for it
            return target == self.ignore_index  # (so the mask is always applied there)
        return self.check_range(target, classes)

    def check_range(self, target: torch.Tensor, classes: int):
        """On the CPU: every kept target in [0, C); returns the mask of the ignored targets,
        or None if none is (``ignore_index`` outside the targets' range: no mask is made)."""
        loss, ignored = type(self).__name__, None
        low, high = (int(value) for value in target.aminmax())
        if low <= self.ignore_index <= high:
            ignored = target == self.ignore_index
            kept = target[~ignored]
            low, high = (int(v) for v in kept.aminmax()) if kept.numel() else (0, 0)
        if low < 0 or high >= classes:
            raise ValueError(f"{loss}: target must hold class indices in [0, {classes}), "
                             f"got values in [{low}, {high}]")
        return ignored

    def positions(self, target: torch.Tensor, ignored, like: torch.Tensor) -> tuple:
        """``(index, weights)``: each position's class as an ``(N, 1, d1, ..., dK)`` index for
        ``gather`` (0 where ignored), and its weight ``w_n = weight[y_n]`` (None without class
        weights). Caches them, and ``denominator``: what the mean divides by, the sum of the
        kept targets' weights (their count without weights; None when that is the number of
        positions, the plain mean)."""
        safe = target if ignored is None else target.masked_fill(ignored, 0)
        weights = None if self.weight is None else self.weight[safe]
        if weights is None and ignored is None:
            self.denominator = None
        else:
            kept = torch.ones_like(target, dtype=like.dtype) if weights is None else weights
            self.denominator = (kept if ignored is None else kept.masked_fill(ignored, 0)).sum()
        self.target, self.target_weight, self.ignored = safe.unsqueeze(1), weights, ignored
        return self.target, weights

    def reduce_positions(self, losses: torch.Tensor) -> torch.Tensor:
        """The reduction of the positions' losses, 0 at the ignored ones."""
        if self.ignored is not None:
            losses = losses.masked_fill(self.ignored, 0.0)
        loss = self.reduce(losses, self.denominator)
        return loss.squeeze(0) if self.unbatched and self.reduction == "none" else loss

    def class_scale(self, grad_output, like: torch.Tensor):
        """:meth:`scale` of the positions' losses, shaped to broadcast over the classes."""
        positions = like.shape[:1] + like.shape[2:]
        count = math.prod(positions) if self.denominator is None else self.denominator
        scale = self.scale(grad_output, like, positions[1:] if self.unbatched else positions,
                           count)
        return scale.reshape(positions).unsqueeze(1) if self.reduction == "none" else scale

    def finish(self, grad: torch.Tensor) -> torch.Tensor:
        """The input gradient: 0 at the ignored positions (even where the mean's denominator is
        0, as torch), in the input's shape."""
        if self.ignored is not None:
            grad = grad.masked_fill_(self.ignored.unsqueeze(1), 0.0)
        return grad.squeeze(0) if self.unbatched else grad


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log softmax over dimension 1, shifted by each maximum so that no exp overflows."""
    shift = logits.max(dim=1, keepdim=True).values
    log_sum_exp = shift + (logits - shift).exp().sum(dim=1, keepdim=True).log()
    return logits - log_sum_exp


class CrossEntropyLoss(_ClassLoss):
    r"""Softmax cross-entropy of logits ``z`` against class indices or class probabilities,
    as ``torch.nn.CrossEntropyLoss``.

    A *position* ``n`` is a sample (``(N, C)`` logits) or one element of a sample's K-dim map
    (``(N, C, d1, ..., dK)``, e.g. a pixel of a segmentation); the classes are on dimension 1.
    Per position, with the log-sum-exp shifted by the maximum so that no ``exp`` overflows::

        log p_nc = z_nc - m_n - log sum_k exp(z_nk - m_n),   m_n = max_k z_nk   (log-softmax)

    **Class indices** ``y_n`` (int64), class weights ``w`` (``weight``, all 1 by default),
    label smoothing ``eps``::

        l_n = (1 - eps) w_{y_n} (-log p_{n, y_n}) + (eps / C) sum_c w_c (-log p_nc)
        l_n = 0 where y_n == ignore_index
        "mean": L = sum_n l_n / sum_{n: y_n != ignore_index} w_{y_n}   (the kept targets' weights)
        "sum":  L = sum_n l_n;     "none": L_n = l_n

    A batch where every target is ignored gives torch's results: ``nan`` for the mean (0 / 0),
    0 for the sum, and a zero gradient.

    **Class probabilities** ``t`` (floating point, the logits' shape), smoothed to
    ``t'_nc = (1 - eps) t_nc + eps / C``: ``l_n = -sum_c w_c t'_nc log p_nc``, and the mean
    divides by the number of positions (not by the weights); ``ignore_index`` must stay negative.

    Backward (softmax and log fused into one step, no division). Write each loss as
    ``l_n = -sum_c q_nc log p_nc``, with ``q_n = (1 - eps) w_{y_n} onehot(y_n) + (eps / C) w``
    for indices and ``q_n = w * t'_n`` for probabilities; then::

        dl_n/dz_n = p_n sum_c q_nc - q_n      (= softmax(z_n) - onehot(y_n) by default)

    0 at the ignored positions, divided by the mean's denominator (``"mean"``) and times the
    upstream gradient (a number or 0-dim tensor; under ``"none"`` one per position).

    Arguments: ``weight`` a 1-D floating tensor of C weights (a buffer: ``to()`` moves it and
    ``state_dict()`` holds it, as in torch), ``ignore_index`` (int), ``reduction``,
    ``label_smoothing`` in [0, 1]. For backward compatibility ``CrossEntropyLoss("sum")`` (a string
    where torch has ``weight``) still means ``reduction="sum"``.

    Shape:
        logits ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``, floating point; target
        ``(N,)``, ``(N, d1, ..., dK)`` or ``()`` int64 with values in ``[0, C)`` or equal to
        ``ignore_index``, or class probabilities of the logits' shape. The loss is a 0-dim tensor
        (``"none"``: the target's shape, without the classes), its gradient has the logits'
        shape. The target's range is checked on the CPU only: on a GPU, reading it back would
        make every step wait for the device; there an index out of range fails inside
        ``gather`` (CUDA's device-side assertion).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.CrossEntropyLoss()
        >>> criterion(torch.tensor([[0.0, 0.0], [1000.0, -1000.0]]), torch.tensor([0, 0]))
        tensor(0.3466)
        >>> criterion.backward()
        tensor([[-0.2500,  0.2500],
                [ 0.0000,  0.0000]])
        >>> smoothed = dl.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]), label_smoothing=0.1)
        >>> smoothed(torch.zeros(3, 2), torch.tensor([0, 1, -100]))
        tensor(0.6931)
    """

    def __init__(self, weight: torch.Tensor | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        if isinstance(weight, str):  # CrossEntropyLoss("sum"): mini_dl's signature before weights
            if reduction != "mean":
                raise TypeError(f"CrossEntropyLoss: reduction given twice ({weight!r} "
                                f"positionally and reduction={reduction!r})")
            weight, reduction = None, weight
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = _number(self, "label_smoothing", label_smoothing, "in [0, 1]")
        self.probabilities = None  # softmax(z), what the fused backward needs

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, target, ignored = self.check("logits", logits, target, probabilities=True)
        log_probabilities = _log_softmax(logits)
        self.probabilities = detached(log_probabilities.exp())  # the cache carries no graph
        smoothing, classes = self.label_smoothing, logits.shape[1]
        weight = self._class_weights(logits)
        if target.is_floating_point():  # class probabilities: smoothed, weighted
            soft = target * (1 - smoothing) + smoothing / classes if smoothing else target
            soft = soft if weight is None else soft * weight
            self.target, self.target_weight, self.ignored, self.denominator = (
                detached(soft), None, None, None)
            return self.reduce_positions(-(log_probabilities * soft).sum(1))
        index, weights = self.positions(target, ignored, logits)
        picked = log_probabilities.gather(1, index).squeeze(1)  # log p_{n, y_n}
        losses = -picked if weights is None else -(picked * weights)
        if smoothing:
            weighted = log_probabilities if weight is None else log_probabilities * weight
            losses = (1 - smoothing) * losses - (smoothing / classes) * weighted.sum(1)
        return self.reduce_positions(losses)

    def backward(self, grad_output=None) -> torch.Tensor:
        probabilities = self.saved("probabilities")
        scale = self.class_scale(grad_output, probabilities)
        if self.target.is_floating_point():  # p_n sum_c q_nc - q_n, with q = w t'
            soft = self.target
            return self.finish((probabilities * soft.sum(1, keepdim=True) - soft) * scale)
        grad = probabilities.clone()  # p - onehot(y): minus 1 at each target
        grad.scatter_add_(1, self.target, torch.full_like(self.target, -1.0, dtype=grad.dtype))
        if self.target_weight is not None:
            grad = grad * self.target_weight.unsqueeze(1)  # w_{y_n} (p_n - onehot(y_n))
        if self.label_smoothing:  # + the uniform part: d/dz of -sum_c w_c log p_c
            smoothing, classes = self.label_smoothing, grad.shape[1]
            weight = self._class_weights(grad)
            uniform = (probabilities * classes - 1 if weight is None
                       else probabilities * self.weight.sum() - weight)
            grad = (1 - smoothing) * grad + (smoothing / classes) * uniform
        return self.finish(grad * scale)

    def _class_weights(self, like: torch.Tensor) -> torch.Tensor | None:
        """``weight`` shaped (C, 1, ..., 1) to broadcast over dimension 1 of ``like``."""
        return None if self.weight is None else self.weight.view(-1, *(1,) * (like.ndim - 2))


class NLLLoss(_ClassLoss):
    r"""Negative log-likelihood of log-probabilities ``x`` (e.g. a log-softmax's output) against
    class indices, as ``torch.nn.NLLLoss``: ``CrossEntropyLoss`` without its log-softmax.
    Per position ``n`` (a sample, or an element of its K-dim map)::

        l_n = -w_{y_n} x_{n, y_n},   l_n = 0 where y_n == ignore_index
        "mean": L = sum_n l_n / sum_{n: y_n != ignore_index} w_{y_n};  "sum": sum_n l_n;
        "none": L_n = l_n

    with class weights ``w`` (``weight``, a buffer, all 1 by default).

    Backward: dl_n/dx_n = -w_{y_n} onehot(y_n), 0 at the ignored positions, divided by the
    mean's denominator (``"mean"``) and times the upstream gradient.

    Shape:
        input ``(N, C)``, ``(N, C, d1, ..., dK)`` or ``(C,)``; target ``(N,)``,
        ``(N, d1, ..., dK)`` or ``()``, int64 class indices (checked on the CPU, as in
        :class:`CrossEntropyLoss`). The loss is a 0-dim tensor (``"none"``: the target's shape).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.NLLLoss(weight=torch.tensor([1.0, 2.0, 1.0]))
        >>> criterion(torch.tensor([[-0.5, -1.0, -2.0], [-3.0, -0.1, -4.0]]), torch.tensor([0, 1]))
        tensor(0.2333)
        >>> criterion.backward()
        tensor([[-0.3333,  0.0000,  0.0000],
                [ 0.0000, -0.6667,  0.0000]])
    """

    def __init__(self, weight: torch.Tensor | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__(weight, ignore_index, reduction)
        self.input = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        input, target, ignored = self.check("input", input, target)
        self.input = detached(input)
        index, weights = self.positions(target, ignored, input)
        picked = input.gather(1, index).squeeze(1)  # x_{n, y_n}
        return self.reduce_positions(-picked if weights is None else -(picked * weights))

    def backward(self, grad_output=None) -> torch.Tensor:
        input = self.saved("input")
        grad = torch.zeros_like(input).scatter_(1, self.target, -1.0)  # -onehot(y_n)
        if self.target_weight is not None:
            grad = grad * self.target_weight.unsqueeze(1)
        return self.finish(grad * self.class_scale(grad_output, input))
