"""Flatten and Unflatten: reshapes, as ``torch.nn``'s. The backward reshapes G back."""
from __future__ import annotations

import math

import torch

from .module import Module, check_tensor, detached


def _dimension(owner: Module, name: str, dim: int, ndim: int) -> int:
    """``dim`` as a non-negative index into ``ndim`` dimensions (a 0-dim tensor counts as
    one, as torch counts it)."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise ValueError(f"{type(owner).__name__}: {name}={dim} is out of range for an input "
                         f"with {ndim} dimension(s): expected a dim in [{-rank}, {rank - 1}]")
    return dim % rank


def _check_dim(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    return value


class _Reshape(Module):
    """Forward reshapes x to ``self._out_shape(x.shape)``; backward reshapes G back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x, floating=False)
        shape = self._out_shape(x.shape)
        self.input_shape = x.shape  # all that backward needs
        return detached(x).reshape(shape)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        input_shape = self.saved("input_shape")
        grad_output = check_tensor(self, "grad_output", grad_output,
                                   shape=torch.Size(self._out_shape(input_shape)))
        return detached(grad_output).reshape(input_shape)


class Flatten(_Reshape):
    r"""Merge the dimensions ``start_dim`` to ``end_dim`` (inclusive, negative counting from the
    end) into one, as ``torch.nn.Flatten``: ``(N, C, H, W) -> (N, C H W)`` by default, e.g.
    between the convolutions and the first Linear of a CNN. Entries keep their row-major order.

    Backward, with ``G = dL/dy``: ``dL/dx = G`` reshaped to the input's shape (a reshape moves
    no value, so it passes every gradient through unchanged).

    Shape:
        Input ``(*, S_start, ..., S_end, *)``, output ``(*, S_start * ... * S_end, *)``.

    Example:
        >>> import torch, mini_dl as dl
        >>> flatten = dl.Flatten()
        >>> flatten(torch.zeros(2, 3, 4, 5)).shape
        torch.Size([2, 60])
        >>> flatten.backward(torch.ones(2, 60)).shape
        torch.Size([2, 3, 4, 5])
        >>> dl.Flatten(0, 1)(torch.arange(6.).view(2, 3))
        tensor([0., 1., 2., 3., 4., 5.])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = _check_dim("Flatten", "start_dim", start_dim)
        self.end_dim = _check_dim("Flatten", "end_dim", end_dim)
        self.input_shape = None

    def _out_shape(self, shape: torch.Size) -> tuple:
        start = _dimension(self, "start_dim", self.start_dim, len(shape))
        end = _dimension(self, "end_dim", self.end_dim, len(shape))
        if start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim} comes after "
                             f"end_dim={self.end_dim} for an input of shape {tuple(shape)}")
        if not shape:  # a 0-dim tensor flattens to one value
            return (1,)
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(_Reshape):
    r"""Split dimension ``dim`` into ``unflattened_size`` (a tuple, list or torch.Size of ints
    whose product is that dimension's size; one entry may be -1, inferred), as
    ``torch.nn.Unflatten``: the inverse of :class:`Flatten`.

    Backward, with ``G = dL/dy``: ``dL/dx = G`` reshaped to the input's shape.

    Shape:
        Input ``(*, S_dim, *)``, output ``(*, U_1, ..., U_n, *)`` with ``U_1 ... U_n = S_dim``.

    Example:
        >>> import torch, mini_dl as dl
        >>> unflatten = dl.Unflatten(1, (2, 3))
        >>> unflatten(torch.zeros(4, 6)).shape
        torch.Size([4, 2, 3])
        >>> unflatten.backward(torch.ones(4, 2, 3)).shape
        torch.Size([4, 6])
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = _check_dim("Unflatten", "dim", dim)
        if not isinstance(unflattened_size, (tuple, list)) or not unflattened_size or any(
                isinstance(v, bool) or not isinstance(v, int) for v in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a non-empty tuple or list of "
                            f"ints, got {unflattened_size!r}")
        if sum(v == -1 for v in unflattened_size) > 1 or any(
                v < -1 for v in unflattened_size):
            raise ValueError(f"Unflatten: unflattened_size must hold sizes >= 0 and at most one "
                             f"-1, got {unflattened_size!r}")
        self.unflattened_size = unflattened_size
        self.input_shape = None

    def _out_shape(self, shape: torch.Size) -> tuple:
        dim = _dimension(self, "dim", self.dim, len(shape))
        size = shape[dim] if shape else 1
        sizes = list(self.unflattened_size)
        known = math.prod(v for v in sizes if v != -1)
        if -1 in sizes and known and size % known == 0:
            sizes[sizes.index(-1)] = size // known
        if math.prod(sizes) != size or -1 in sizes:
            raise ValueError(f"Unflatten: unflattened_size={tuple(self.unflattened_size)} does "
                             f"not multiply up to the size {size} of dim {self.dim} of an input "
                             f"of shape {tuple(shape)}")
        return (*shape[:dim], *sizes, *shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
