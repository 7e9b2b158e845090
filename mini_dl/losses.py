"""Loss functions. ``loss = criterion(prediction, target)`` returns a 0-dim tensor equal to
PyTorch's; ``criterion.backward()`` returns dL/dprediction."""
from __future__ import annotations

import torch

from .module import Module, check_tensor

REDUCTIONS = ("mean", "sum")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def upstream(self, grad_output, like: torch.Tensor) -> torch.Tensor | float:
        """dL_total/dloss: 1 by default, or a 0-dim tensor/number passed to ``backward``."""
        if grad_output is None:
            return 1.0
        if isinstance(grad_output, (int, float)) and not isinstance(grad_output, bool):
            return float(grad_output)
        return check_tensor(self, "grad_output", grad_output, shape=(), like=like).detach()

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    r"""Mean squared error: :math:`L = \frac{1}{M}\sum_i (p_i - t_i)^2` over **all** M elements
    (``reduction="mean"``, PyTorch's default) or the plain sum (``reduction="sum"``).

    Backward: dL/dp = 2 (p - t) / M   (or 2 (p - t) for ``"sum"``).
    Shape: prediction and target of the same shape, any; the loss is a 0-dim tensor.

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

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction = check_tensor(self, "prediction", prediction)
        if prediction.numel() == 0:
            raise ValueError(f"MSELoss: prediction is empty (shape {tuple(prediction.shape)})")
        target = check_tensor(self, "target", target, shape=prediction.shape, like=prediction)
        difference = prediction - target
        self.difference = difference.detach()  # the cache never carries an autograd graph
        squared = difference.square()
        return squared.mean() if self.reduction == "mean" else squared.sum()

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        scale = 2.0 / difference.numel() if self.reduction == "mean" else 2.0
        return difference * (scale * self.upstream(grad_output, difference))
