"""Layers with parameters."""
from __future__ import annotations

import math

import torch

from .module import Module, Parameter, check_size, check_tensor


class Linear(Module):
    r"""Affine map :math:`y = x W^\top + b`.

    Weight ``W`` has shape ``(out_features, in_features)`` and bias ``b`` shape ``(out_features,)``,
    both initialised from :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` as in ``torch.nn.Linear``.

    Backward, with ``G = dL/dy`` of shape ``(N, out)``:
        dL/dx = G W        (N, in)
        dL/dW = G^T x      (out, in)   accumulated into ``weight.grad``
        dL/db = sum_n G    (out,)      accumulated into ``bias.grad``

    Shape:
        Input ``(N, *, in_features)``, output ``(N, *, out_features)``; extra leading dimensions
        are treated as more rows of the batch.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.Linear(3, 2)
        >>> layer(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
        >>> layer.backward(torch.ones(5, 2)).shape, layer.bias.grad.tolist()
        (torch.Size([5, 3]), [5.0, 5.0])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = check_size("Linear", "in_features", in_features)
        self.out_features = check_size("Linear", "out_features", out_features)
        bound = 1.0 / math.sqrt(in_features)
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty(out_features, in_features, **options)
                                .uniform_(-bound, bound))
        self.bias = (Parameter(torch.empty(out_features, **options).uniform_(-bound, bound))
                     if bias else None)
        self.input = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x, min_ndim=1, last_dim=self.in_features,
                         like=self.weight.data)
        self.input = x.detach()  # the cache never carries an autograd graph
        rows = x.reshape(-1, self.in_features)
        if self.bias is None:
            out = rows @ self.weight.data.t()
        else:
            out = torch.addmm(self.bias.data, rows, self.weight.data.t())
        return out.reshape(*x.shape[:-1], self.out_features)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self.saved("input")
        grad_output = check_tensor(self, "grad_output", grad_output,
                                   shape=(*x.shape[:-1], self.out_features), like=x).detach()
        grad_rows = grad_output.reshape(-1, self.out_features)
        self.weight.grad.addmm_(grad_rows.t(), x.reshape(-1, self.in_features))  # += G^T x
        if self.bias is not None:
            self.bias.grad.add_(grad_rows.sum(0))
        return (grad_rows @ self.weight.data).reshape(x.shape)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
