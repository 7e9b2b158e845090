r"""Layer and group normalisation, and the normalisation algebra all three norms share.

Batch, layer and group normalisation are one idea applied over different axes: subtract the mean
of a group of values, divide by their standard deviation, then scale and shift. The private
helpers :func:`_normalize` and :func:`_normalize_backward` hold that idea once; each layer only
chooses the view of its input and the axes (``BatchNorm2d``: view ``(N, C, H*W)``, axes (0, 2);
``LayerNorm``: ``(rows, D)``, axis 1; ``GroupNorm``: ``(N, groups, C/groups*H*W)``, axis 2).
"""
from __future__ import annotations

import math

import torch

from .module import Module, Parameter, check_size, check_tensor, detached


def _normalize(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> tuple[torch.Tensor, ...]:
    r"""``(x_hat, mean, var, inv_std, spare)`` with statistics over ``dims`` (kept as size-1
    dims)::

        mean = mean(x),  var = mean((x - mean)^2)  (biased),  inv_std = 1 / sqrt(var + eps),
        x_hat = (x - mean) * inv_std

    Four passes over x (``torch.var_mean`` is 10-30x slower here on one CPU thread). ``spare``
    is the tensor that held the squares, of x's shape: the caller may write its output into it
    (one allocation less per step). When autograd tracks x (check_gradients differentiating
    the forward), x - mean is not overwritten in place: autograd saved it for the squares."""
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    spare = centred * centred
    var = spare.mean(dims, keepdim=True)
    inv_std = (var + eps).rsqrt()
    x_hat = centred * inv_std if x.requires_grad else centred.mul_(inv_std)
    return x_hat, mean, var, inv_std, spare


def _normalize_backward(grad_output: torch.Tensor, x_hat: torch.Tensor, inv_std: torch.Tensor,
                        dims: tuple[int, ...], weight: torch.Tensor | None = None,
                        sums: tuple[torch.Tensor, torch.Tensor] | None = None,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    r"""The input gradient of ``y = x_hat * weight + bias`` when x_hat was normalised over
    ``dims`` (``n`` values per group), with ``G = grad_output`` and ``G_hat = G * weight``
    (``G`` itself without a weight)::

        dL/dx = inv_std / n * (n G_hat - sum(G_hat) - x_hat * sum(G_hat * x_hat))

    the sums taken over ``dims``. ``sums = (sum(G_hat), sum(G_hat * x_hat))`` may be passed by a
    caller that has them already (batch norm: its weight is constant over ``dims``, so they are
    ``weight * dL/dbias`` and ``weight * dL/dweight``), which saves forming G_hat at all.
    Written as ``x_hat * a + b + G_hat * inv_std``: three passes, into ``out`` (a spare tensor
    of x_hat's shape) if given, else into the product G_hat * x_hat or a new tensor."""
    n = math.prod(x_hat.shape[d] for d in dims)
    g_hat = None
    if sums is None:
        g_hat = grad_output if weight is None else grad_output * weight
        product = g_hat * x_hat
        sums = g_hat.sum(dims, keepdim=True), product.sum(dims, keepdim=True)
        out = product if out is None else out
    sum_g_hat, sum_g_hat_x_hat = sums
    scale = inv_std / -n
    # - inv_std/n * x_hat * sum(G_hat x_hat)
    grad_input = torch.mul(x_hat, sum_g_hat_x_hat * scale, out=out)
    grad_input.add_(sum_g_hat * scale)  # - inv_std/n * sum(G_hat)
    if g_hat is None:  # + inv_std * G_hat, with G_hat = G * weight folded into the factor
        return grad_input.addcmul_(grad_output, inv_std if weight is None else inv_std * weight)
    return grad_input.addcmul_(g_hat, inv_std)


def _affine(x_hat: torch.Tensor, weight: Parameter | None, bias: Parameter | None,
            shape: tuple[int, ...], out: torch.Tensor | None = None) -> torch.Tensor:
    """``x_hat * weight + bias`` with the parameters viewed as ``shape`` (broadcast against
    x_hat), written into ``out`` if given (and autograd tracks nothing: ``out=`` is not
    differentiable); x_hat itself (no copy) when there are no parameters."""
    if out is not None and (x_hat.requires_grad or any(
            p is not None and p.data.requires_grad for p in (weight, bias))):
        out = None
    if weight is None:
        return x_hat if bias is None else torch.add(x_hat, bias.data.view(shape), out=out)
    y = torch.mul(x_hat, weight.data.view(shape), out=out)
    return y if bias is None else y.add_(bias.data.view(shape))


def _accumulate(parameter: Parameter | None, gradient: torch.Tensor) -> None:
    """``parameter.grad += gradient`` (``gradient`` is a new tensor: it becomes the gradient
    where ``zero_grad(set_to_none=True)`` left None)."""
    if parameter is not None:
        parameter.accumulate_grad(gradient)


class LayerNorm(Module):
    r"""Layer normalisation, as ``torch.nn.LayerNorm``: each example is normalised over its last
    ``len(normalized_shape)`` dimensions (the D = prod(normalized_shape) values of one row)::

        x_hat = (x - mean) / sqrt(var + eps),   y = x_hat * weight + bias

    with the mean and the biased variance of the row. ``weight`` (ones) and ``bias`` (zeros)
    have shape ``normalized_shape`` (``elementwise_affine=False``: neither; ``bias=False``: no
    bias). The statistics never depend on other examples, so training and eval agree.

    Backward, with ``G = dL/dy``, ``G_hat = G * weight``, sums over the row's D values::

        dL/dx      = inv_std / D * (D G_hat - sum(G_hat) - x_hat * sum(G_hat * x_hat))
        dL/dweight = sum over rows of G * x_hat    (normalized_shape)
        dL/dbias   = sum over rows of G            (normalized_shape)

    Shape:
        Input ``(*, *normalized_shape)``, output the same.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.LayerNorm(3)
        >>> layer(torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([[-1.2247,  0.0000,  1.2247]])
        >>> layer.backward(torch.ones(1, 3)).abs().max().item() < 1e-6  # shift-invariant
        True
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list, torch.Size)) or not normalized_shape:
            raise TypeError(f"LayerNorm: normalized_shape must be an int or a non-empty tuple of "
                            f"ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(check_size("LayerNorm", "normalized_shape", size)
                                      for size in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.ones(self.normalized_shape, **options)) \
            if elementwise_affine else None
        self.bias = Parameter(torch.zeros(self.normalized_shape, **options)) \
            if elementwise_affine and bias else None
        self.x_hat = self.inv_std = self.input_shape = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        like = None if self.weight is None else self.weight.data
        x = check_tensor(self, "input", x, like=like)
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm: input must end with normalized_shape "
                             f"{self.normalized_shape}, got shape {tuple(x.shape)}")
        self.input_shape = x.shape
        rows = x.reshape(-1, math.prod(self.normalized_shape))  # (rows, D)
        x_hat, _, _, inv_std, spare = _normalize(rows, (1,), self.eps)
        self.x_hat, self.inv_std = detached(x_hat), detached(inv_std)  # the cache: no graph
        return _affine(x_hat, self.weight, self.bias, (-1,), out=spare).view(x.shape)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        x_hat, inv_std = self.saved("x_hat"), self.saved("inv_std")
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=self.input_shape, like=x_hat))
        grad_rows = grad_output.reshape(x_hat.shape)
        if self.bias is not None:
            _accumulate(self.bias, grad_rows.sum(0))
        if self.weight is not None:
            _accumulate(self.weight, (grad_rows * x_hat).sum(0))
        if not self.needs_input_grad:
            return None
        weight = None if self.weight is None else self.weight.data.view(-1)
        return _normalize_backward(grad_rows, x_hat, inv_std, (1,), weight).view(
            grad_output.shape)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    r"""Group normalisation, as ``torch.nn.GroupNorm``: the C channels of each example are split
    into ``num_groups`` groups of C/num_groups consecutive channels, and each group is
    normalised over its channels and all positions (n = C/num_groups times the number of
    positions)::

        x_hat = (x - mean) / sqrt(var + eps),   y = x_hat * weight_c + bias_c

    with the group's mean and biased variance, and a per-channel ``weight`` (ones) and ``bias``
    (zeros) of shape ``(C,)`` when ``affine`` (``bias=False``, keyword only as in torch: no
    bias). One group is layer norm over ``(C, *)``; C groups is instance norm. Training and eval agree.

    Backward, with ``G = dL/dy``, ``G_hat = G * weight``, sums over a group's n values::

        dL/dx      = inv_std / n * (n G_hat - sum(G_hat) - x_hat * sum(G_hat * x_hat))
        dL/dweight = sum over (N, *) of G * x_hat    (C,)
        dL/dbias   = sum over (N, *) of G            (C,)

    Shape:
        Input ``(N, C, *)``, output the same.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.GroupNorm(2, 4)
        >>> y = layer(torch.arange(8.0).reshape(1, 4, 2))   # groups: channels {0, 1}, {2, 3}
        >>> y[0, :2].flatten()
        tensor([-1.3416, -0.4472,  0.4472,  1.3416])
        >>> layer.backward(torch.ones(1, 4, 2)).shape, layer.bias.grad.tolist()
        (torch.Size([1, 4, 2]), [2.0, 2.0, 2.0, 2.0])
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_groups = check_size("GroupNorm", "num_groups", num_groups)
        self.num_channels = check_size("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be divisible by num_groups, got "
                             f"num_channels={num_channels} and num_groups={num_groups}")
        self.eps = eps
        self.affine = affine
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.ones(num_channels, **options)) if affine else None
        self.bias = Parameter(torch.zeros(num_channels, **options)) if affine and bias else None
        self.x_hat = self.inv_std = self.input_shape = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        like = None if self.weight is None else self.weight.data
        x = check_tensor(self, "input", x, min_ndim=2, like=like)
        if x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: input must have {self.num_channels} channels "
                             f"(num_channels) in dimension 1, got shape {tuple(x.shape)}")
        if x.numel() == self.num_groups:  # torch refuses it too: x_hat would be 0 everywhere
            raise ValueError(f"GroupNorm: expected more than 1 value per group, got input of "
                             f"shape {tuple(x.shape)} with num_groups={self.num_groups}")
        self.input_shape = x.shape
        groups = x.reshape(x.shape[0], self.num_groups, -1)  # (N, groups, n)
        x_hat, _, _, inv_std, spare = _normalize(groups, (2,), self.eps)
        x_hat = x_hat.view(x.shape[0], self.num_channels, -1)  # (N, C, *): per channel
        self.x_hat, self.inv_std = detached(x_hat), detached(inv_std)  # the cache: no graph
        return _affine(x_hat, self.weight, self.bias, (1, -1, 1),
                       out=spare.view(x_hat.shape)).view(x.shape)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        x_hat, inv_std = self.saved("x_hat"), self.saved("inv_std")
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=self.input_shape, like=x_hat))
        grad_channels = grad_output.reshape(x_hat.shape)  # (N, C, *)
        if self.bias is not None:
            _accumulate(self.bias, grad_channels.sum((0, 2)))
        if self.weight is not None:
            _accumulate(self.weight, (grad_channels * x_hat).sum((0, 2)))
        if not self.needs_input_grad:
            return None
        g_hat = grad_channels if self.weight is None else \
            grad_channels * self.weight.data.view(1, -1, 1)
        groups = (x_hat.shape[0], self.num_groups, -1)
        grad_input = _normalize_backward(g_hat.view(groups), x_hat.view(groups), inv_std, (2,))
        return grad_input.view(grad_output.shape)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
