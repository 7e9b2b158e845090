"""Element-wise activations. Each caches its *output*, from which its derivative follows."""
from __future__ import annotations

import torch

from .module import Module, check_tensor, detached


class _Elementwise(Module):
    """Shared plumbing: forward caches ``output``; backward is ``G * derivative(output)``."""

    def __init__(self):
        super().__init__()
        self.output = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x)
        output = self.function(x)
        self.output = detached(output)  # the cache never carries an autograd graph
        return output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        output = self.saved("output")
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=output.shape,
                                            like=output))
        return self.grad_input(grad_output, output)


class ReLU(_Elementwise):
    r"""y = max(x, 0).

    Backward: dL/dx = G * 1[y > 0]; at x = 0 the derivative is taken as 0, as in PyTorch.
    Computed as sign(y) * G: y >= 0, so sign(y) is exactly 1[y > 0], and it stays a float
    tensor (a boolean mask that ``*`` must convert costs about five times more).
    Shape: any; output has the input's shape.
    """

    def function(self, x):
        return x.clamp_min(0)

    def grad_input(self, grad_output, output):
        return output.sign().mul_(grad_output)  # 1[y > 0] * G, multiplied in place


class Tanh(_Elementwise):
    r"""y = tanh(x).

    Backward: dL/dx = G * (1 - y^2), computed as (1 - y^2) * G, multiplied in place into the
    new tensor 1 - y^2 (the same product: multiplication commutes exactly).
    Shape: any; output has the input's shape.
    """

    def function(self, x):
        return torch.tanh(x)

    def grad_input(self, grad_output, output):
        return (1 - output * output).mul_(grad_output)  # (1 - y^2) * G, multiplied in place


class Sigmoid(_Elementwise):
    r"""y = 1 / (1 + exp(-x)).

    Backward: dL/dx = G * y * (1 - y).
    Shape: any; output has the input's shape.
    """

    def function(self, x):
        return torch.sigmoid(x)

    def grad_input(self, grad_output, output):
        return grad_output * output * (1 - output)
