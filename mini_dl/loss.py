"""Loss functions. ``loss = criterion(prediction, target)`` returns a 0-dim tensor equal to
PyTorch's; ``criterion.backward()`` returns dL/dprediction."""
from __future__ import annotations

import torch

from .module import Module, check_tensor, detached

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
        return detached(check_tensor(self, "grad_output", grad_output, shape=(), like=like))

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
        self.difference = detached(difference)  # the cache never carries an autograd graph
        squared = difference * difference
        return squared.mean() if self.reduction == "mean" else squared.sum()

    def backward(self, grad_output=None) -> torch.Tensor:
        difference = self.saved("difference")
        scale = 2.0 / difference.numel() if self.reduction == "mean" else 2.0
        return difference * (scale * self.upstream(grad_output, difference))


class CrossEntropyLoss(_Loss):
    r"""Softmax cross-entropy of logits ``z`` (N, C) against class indices ``y`` (N,), as
    ``torch.nn.CrossEntropyLoss`` (no class weights, no ``ignore_index``, no label smoothing).

    With the log-sum-exp of each row, shifted by its maximum so that no ``exp`` overflows::

        lse_n = m_n + log sum_c exp(z_nc - m_n),   m_n = max_c z_nc
        log p_nc = z_nc - lse_n                     (log-softmax)
        L = -(1/N) sum_n log p_{n, y_n}             ("sum": without the 1/N)

    Backward (softmax and log fused into one step): dL/dz = (softmax(z) - onehot(y)) / N
    (``"sum"``: without the 1/N), times the upstream gradient passed to ``backward``.

    Shape:
        logits ``(N, C)`` floating point, target ``(N,)`` int64 with values in ``[0, C)``; the loss
        is a 0-dim tensor and its gradient has the logits' shape. The target's range is checked
        on the CPU only: on a GPU, reading it back would make every step wait for the device;
        there an index out of range fails inside ``gather`` (CUDA's device-side assertion).

    Example:
        >>> import torch, mini_dl as dl
        >>> criterion = dl.CrossEntropyLoss()
        >>> criterion(torch.tensor([[0.0, 0.0], [1000.0, -1000.0]]), torch.tensor([0, 0]))
        tensor(0.3466)
        >>> criterion.backward()
        tensor([[-0.2500,  0.2500],
                [ 0.0000,  0.0000]])
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)
        self.probabilities = None  # softmax(z), what the fused backward needs
        self.target = None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = check_tensor(self, "logits", logits)
        if logits.ndim != 2 or 0 in logits.shape:
            raise ValueError(f"CrossEntropyLoss: logits must have shape (N, C) with N, C > 0, "
                             f"got {tuple(logits.shape)}")
        if not isinstance(target, torch.Tensor) or target.dtype != torch.int64:
            got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
            raise TypeError(f"CrossEntropyLoss: target must be an int64 tensor of class indices "
                            f"(use .long()), got {got}")
        n, classes = logits.shape
        if tuple(target.shape) != (n,):
            raise ValueError(f"CrossEntropyLoss: target must have shape ({n},) to match logits "
                             f"{tuple(logits.shape)}, got {tuple(target.shape)}")
        if target.device != logits.device:
            raise TypeError(f"CrossEntropyLoss: target must be on {logits.device}, "
                            f"got {target.device}")
        if target.device.type == "cpu":  # on a GPU, reading the range back would wait for it
            low, high = (int(value) for value in target.aminmax())
            if low < 0 or high >= classes:
                raise ValueError(f"CrossEntropyLoss: target must hold class indices in "
                                 f"[0, {classes}), got values in [{low}, {high}]")
        shift = logits.max(dim=1, keepdim=True).values
        log_sum_exp = shift + (logits - shift).exp().sum(dim=1, keepdim=True).log()
        log_probabilities = logits - log_sum_exp
        self.probabilities = detached(log_probabilities.exp())  # the cache carries no graph
        self.target = target
        picked = log_probabilities.gather(1, target.unsqueeze(1))
        return -(picked.mean() if self.reduction == "mean" else picked.sum())

    def backward(self, grad_output=None) -> torch.Tensor:
        probabilities = self.saved("probabilities")
        grad = probabilities.clone()
        grad[torch.arange(grad.shape[0], device=grad.device), self.target] -= 1.0
        scale = 1.0 / grad.shape[0] if self.reduction == "mean" else 1.0
        return grad * (scale * self.upstream(grad_output, probabilities))
