"""Layers with parameters."""
from __future__ import annotations

import math

import torch

from . import init
from .module import Module, Parameter, check_size, check_tensor, detached


class Linear(Module):
    r"""Affine map :math:`y = x W^\top + b`.

    Weight ``W`` has shape ``(out_features, in_features)`` and bias ``b`` shape ``(out_features,)``,
    both initialised from :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` as in ``torch.nn.Linear``.

    Backward, with ``G = dL/dy`` of shape ``(N, out)``:
        dL/dx = G W        (N, in)
        dL/dW = G^T x      (out, in)   accumulated into ``weight.grad``
        dL/db = sum_n G    (out,)      accumulated into ``bias.grad``

    With ``needs_input_grad = False`` (e.g. on the first layer) backward skips G W and returns
    None; the parameter gradients are accumulated as always (or written anew where
    ``zero_grad(set_to_none=True)`` left None).

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
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty(out_features, in_features, **options))
        self.bias = Parameter(torch.empty(out_features, **options)) if bias else None
        self.reset_parameters()
        self.input = None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw weight, then bias, from U(-1/sqrt(in_features), 1/sqrt(in_features)), as
        ``torch.nn.Linear`` (from the global RNG, or from ``generator``). The weight's bound is
        computed by torch's own formula, ``kaiming_uniform_(a=sqrt(5))`` (sqrt(3) * sqrt(1/3) /
        sqrt(fan_in), which differs from 1/sqrt(fan_in) in the last bit), so a seeded float64
        Linear is bit for bit torch's."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        bound = 1.0 / math.sqrt(self.in_features)
        if self.bias is not None:
            self.bias.data.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x, min_ndim=1, last_dim=self.in_features,
                         like=self.weight.data)
        self.input = detached(x)  # the cache never carries an autograd graph
        rows = x if x.ndim == 2 else x.reshape(-1, self.in_features)  # (N, in): no reshape if 2-D
        weight_t = self._weight_t()
        out = rows.mm(weight_t) if self.bias is None else torch.addmm(self.bias.data, rows,
                                                                      weight_t)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.out_features)

    def _weight_t(self) -> torch.Tensor:
        """W^T, a view of the weight made once and kept while ``weight.data`` is the same
        tensor (in-place updates keep it valid; ``to()`` or assigning ``data`` renews it): a
        transposed view costs a few microseconds, a tenth of a small layer's forward."""
        data = self.weight.data
        kept = self.__dict__.get("_transposed")
        if kept is None or kept[0] is not data:
            kept = self.__dict__["_transposed"] = (data, data.t())
        return kept[1]

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        x = self.saved("input")
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=(*x.shape[:-1], self.out_features), like=x))
        rows = x if x.ndim == 2 else x.reshape(-1, self.in_features)
        grad_rows = grad_output if x.ndim == 2 else grad_output.reshape(-1, self.out_features)
        buffer, beta = self.weight.grad_buffer()  # beta 0 after zero_grad: overwrite, don't add
        if buffer is None:  # after zero_grad(set_to_none=True): write a new one
            self.weight.grad = grad_rows.t().mm(rows)  # G^T x
        else:
            buffer.addmm_(grad_rows.t(), rows, beta=beta)  # (beta *) grad + G^T x
        if self.bias is not None:
            self.bias.accumulate_grad(grad_rows.sum(0))  # += sum_n G
        if not self.needs_input_grad:  # e.g. the first layer: its input is the data
            return None
        grad_input = grad_rows.mm(self.weight.data)  # G W
        return grad_input if x.ndim == 2 else grad_input.reshape(x.shape)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    r"""Inverted dropout, as ``torch.nn.Dropout``: in training mode each entry of x is kept with
    probability 1 - p and scaled by 1 / (1 - p), otherwise set to 0; in eval mode (or p = 0) it
    is the identity. The scale keeps the expectation: E[y] = x.

    Forward, with M the cached scaled mask (same shape as x)::

        training, p > 0:  M = (torch.rand(x.shape, dtype=x.dtype, device=x.device) >= p) / (1 - p)
                          y = x * M
        otherwise:        y = x, the input itself, as torch returns it (M = 1: nothing is drawn
                          from the RNG, nothing is multiplied, and x is not kept)

    The mask comes from the global RNG, one ``torch.rand`` call with the input's shape, dtype and
    device, so re-seeding and repeating that call reproduces it. (``torch.nn.Dropout`` draws its
    mask differently: same distribution, different numbers.)

    Backward, with G = dL/dy: dL/dx = G * M, the same mask as the forward (repeatable); G itself
    when the forward was the identity.

    Shape:
        Any; the output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> _ = torch.manual_seed(0)
        >>> dropout = dl.Dropout(p=0.5)
        >>> y = dropout(torch.ones(6)); y
        tensor([0., 2., 0., 0., 0., 2.])
        >>> dropout.backward(torch.ones(6))
        tensor([0., 2., 0., 0., 0., 2.])
        >>> _ = torch.manual_seed(0)   # the mask, reproduced from the same seed:
        >>> torch.equal(y, (torch.rand(6) >= 0.5) / (1 - 0.5))
        True
        >>> dropout.eval()(torch.ones(3))
        tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"Dropout: p must be a number, got {p!r}")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self.mask = None
        self.scaled = False  # whether the last forward multiplied by a mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x)
        self.scaled = self.training and self.p > 0
        if not self.scaled:  # the identity. The cache only carries x's shape, dtype and device
            # for backward's check of G: one element expanded (caching x itself would keep a
            # tensor alive that the caller may be done with, e.g. a residual branch)
            self.mask = x.new_empty(()).expand(x.shape)
            return x
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= self.p
        self.mask = keep.to(x.dtype) / (1 - self.p)
        return x * self.mask

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        mask = self.saved("mask")
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=mask.shape,
                                            like=mask))
        return grad_output * mask if self.scaled else grad_output

    def extra_repr(self) -> str:
        return f"p={self.p}"
