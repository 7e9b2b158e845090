"""Activations. Each caches what its derivative is written through: the *output* where the output
determines the derivative (ReLU, Tanh, Sigmoid, Softmax, LogSoftmax), else the *input*."""
from __future__ import annotations

import warnings

import torch

from .flatten import _dimension
from .module import Module, check_tensor, detached

# The C constants torch's kernels use (math.h's M_SQRT1_2, M_SQRT2, M_2_SQRTPI), as doubles.
SQRT1_2 = 0.70710678118654752440  # 1 / sqrt(2)
SQRT2 = 1.41421356237309504880
TWO_OVER_SQRTPI = 1.12837916709551257390  # 2 / sqrt(pi)


# Elementwise chains by blocks. A chain of in-place operations over a tensor larger than the
# cache reads and writes memory once per operation; over blocks of BLOCK elements (256 KB in
# float32) each block stays in the cache for the whole chain. Elementwise, so the blocks give
# the same numbers bit for bit. GELU's forward and backward are such chains.
BLOCK = 1 << 16


def _mul(a: torch.Tensor, b, out: torch.Tensor | None) -> torch.Tensor:
    """``a * b``, written into ``out`` if given (else a new tensor)."""
    return torch.mul(a, b) if out is None else torch.mul(a, b, out=out)


def _blockwise(chain, like: torch.Tensor, *tensors: torch.Tensor, temporaries: int,
               out: torch.Tensor | None = None):
    """``chain(out, *tensors, *temporaries)`` computed block by block into ``out`` (a new
    tensor of ``like``'s shape unless given): ``chain`` writes its first step into ``out`` (or
    into a temporary) and the rest in place, elementwise. Tensors that are small, not
    contiguous, of different shapes, tracked by autograd (the checker differentiating a forward:
    ``out=`` is not differentiable), or on a GPU (one kernel per step is what it wants) go
    through ``chain`` whole, with ``out`` and the temporaries ``None`` (its first steps then
    make new tensors)."""
    if like.numel() <= BLOCK or like.device.type != "cpu" or like.requires_grad or any(
            t.shape != like.shape or not t.is_contiguous() or t.requires_grad for t in tensors):
        return chain(None, *tensors, *[None] * temporaries)
    if out is None:
        out = torch.empty_like(like, memory_format=torch.contiguous_format)
    scratch = [like.new_empty(BLOCK) for _ in range(temporaries)]
    flat = [t.view(-1) for t in (out, *tensors)]
    for start in range(0, like.numel(), BLOCK):
        blocks = [t[start:start + BLOCK] for t in flat]
        size = blocks[0].numel()
        chain(*blocks, *[t[:size] for t in scratch])
    return out


class _Elementwise(Module):
    """Shared plumbing: forward caches the tensor named by ``cached`` (the ``output``, or the
    ``input`` where the output does not give the derivative); backward is
    ``grad_input(G, cached)``."""

    cached = "output"

    def __init__(self):
        super().__init__()
        setattr(self, self.cached, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x)
        output = self.function(x)
        # the cache never carries an autograd graph
        setattr(self, self.cached, detached(output if self.cached == "output" else x))
        return output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return self.grad_input(*self._backward_arguments(grad_output))

    def _backward_arguments(self, grad_output):
        """``(G, cache)``: G checked against the cache that forward left."""
        cached = self.saved(self.cached)
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=cached.shape,
                                            like=cached))
        return grad_output, cached
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


def _number(owner: str, name: str, value: object) -> int | float:
    """A real number (int or float, not bool), stored as given, as torch stores it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return value


def _refuse_inplace(owner: str, inplace: object) -> bool:
    if inplace is not False:
        raise ValueError(f"{owner}: inplace must be False, got {inplace!r}: mini_dl never "
                         f"overwrites a module's input (backward reads it)")
    return False


class LeakyReLU(_Elementwise):
    r"""y = x if x > 0, else negative_slope * x, as ``torch.nn.LeakyReLU``.

    Args:
        negative_slope: the slope for x <= 0. Default: 0.01.
        inplace: only False (the default) is accepted: mini_dl never overwrites its input.

    Backward: dL/dx = G where x > 0, negative_slope * G elsewhere; at x = 0 the derivative is
    negative_slope, as in torch. Caches the input (with negative_slope < 0 the output's sign
    does not tell which side x was on).
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> leaky = dl.LeakyReLU(0.5)
        >>> leaky(torch.tensor([-2.0, 0.0, 3.0])).tolist()
        [-1.0, 0.0, 3.0]
        >>> leaky.backward(torch.ones(3)).tolist()  # at 0: the negative slope
        [0.5, 0.5, 1.0]
    """

    cached = "input"

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__()
        self.negative_slope = _number("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = _refuse_inplace("LeakyReLU", inplace)

    def function(self, x):
        return torch.where(x > 0, x, x * self.negative_slope)

    def grad_input(self, grad_output, x):
        return torch.where(x > 0, grad_output, grad_output * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    r"""y = x if x > 0, else alpha * (exp(x) - 1) (computed with expm1), as ``torch.nn.ELU``.

    Args:
        alpha: the value y approaches as x -> -inf is -alpha. Default: 1.0.
        inplace: only False (the default) is accepted: mini_dl never overwrites its input.

    Backward: dL/dx = G where x > 0, G * alpha * exp(x) elsewhere; at x = 0 the derivative is
    alpha, as in torch. Caches the input.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> elu = dl.ELU(alpha=2.0)
        >>> elu(torch.tensor([0.0, 3.0])).tolist()
        [0.0, 3.0]
        >>> elu.backward(torch.ones(2)).tolist()
        [2.0, 1.0]
    """

    cached = "input"

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = _number("ELU", "alpha", alpha)
        self.inplace = _refuse_inplace("ELU", inplace)

    def function(self, x):
        return torch.where(x > 0, x, torch.expm1(x) * self.alpha)

    def grad_input(self, grad_output, x):
        return torch.where(x > 0, grad_output, grad_output * self.alpha * torch.exp(x))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(_Elementwise):
    r"""y = x Phi(x), Phi the standard normal CDF, as ``torch.nn.GELU``.

    ``approximate="none"``: y = x * 0.5 * (1 + erf(x / sqrt(2))).
    ``approximate="tanh"``: y = 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3).

    Backward (caches the input), with G = dL/dy::

        none: dL/dx = G (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
        tanh: dL/dx = G (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2 / pi) (1 + 3 * 0.044715 x^2))

    each evaluated in torch's own order of operations.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> gelu = dl.GELU()
        >>> round(gelu(torch.tensor(1.0)).item(), 4), round(gelu.backward(torch.tensor(1.0)).item(), 4)
        (0.8413, 1.0833)
        >>> dl.GELU(approximate="tanh")
        GELU(approximate='tanh')
    """

    cached = "input"
    KAPPA = 0.044715
    BETA = SQRT2 * TWO_OVER_SQRTPI * 0.5  # sqrt(2 / pi)

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def function(self, x):
        return _blockwise(self._forward_into, x, x, temporaries=0)

    def grad_input(self, grad_output, x):
        return _blockwise(self._backward_into, x, grad_output, x,
                          temporaries=2 if self.approximate == "tanh" else 1)

    def backward_(self, grad_output: torch.Tensor) -> torch.Tensor:
        """:meth:`backward` written into ``grad_output`` itself, for a caller whose G is a
        temporary of its own (the transformer's feed-forward block): the same numbers (G * d is
        d * G bit for bit), and no new tensor of the input's size."""
        grad_output, x = self._backward_arguments(grad_output)
        if grad_output.requires_grad or not grad_output.is_contiguous():
            return self.grad_input(grad_output, x)
        return _blockwise(self._backward_in_place, x, grad_output, x, out=grad_output,
                          temporaries=3 if self.approximate == "tanh" else 2)

    # The formulas of the docstring, each step in place in ``out`` (and the temporaries), in
    # torch's order of operations. Bit for bit torch's x * 0.5 * (1 + erf) (and 0.5 x (1 +
    # tanh)): halving 1 + erf, a float in [0, 2] that is 0 or at least one ulp of 1, never
    # rounds, so (1 + erf) * 0.5 * x rounds once, where x * 0.5 * (1 + erf) does.
    def _forward_into(self, out, x):
        if self.approximate == "tanh":
            # BETA (x + K x^3)
            inner = _mul(x, x, out).mul_(x).mul_(self.KAPPA).add_(x).mul_(self.BETA)
            return inner.tanh_().add_(1).mul_(0.5).mul_(x)  # 0.5 x (1 + tanh u)
        return _mul(x, SQRT1_2, out).erf_().add_(1).mul_(0.5).mul_(x)  # x 0.5 (1 + erf(x / sqrt 2))

    def _backward_into(self, out, grad_output, x, first, second=None):
        return self._derivative_into(out, x, first, second).mul_(grad_output)

    def _backward_in_place(self, out, grad_output, x, first, second, third=None):
        # out is grad_output (or None, whole-tensor path): G *= d(x)
        return grad_output.mul_(self._derivative_into(first, x, second, third))

    def _derivative_into(self, out, x, first, second=None):
        """dy/dx, into ``out`` (the temporaries ``first``, ``second`` for the steps before)."""
        if self.approximate == "tanh":
            x_squared = _mul(x, x, first)
            tanh_inner = _mul(x_squared, x, second).mul_(self.KAPPA).add_(x).mul_(self.BETA).tanh_()
            inner_derivative = x_squared.mul_(3 * self.KAPPA).add_(1).mul_(self.BETA)
            # 0.5 x (1 - tanh^2 u) BETA (1 + 3 K x^2); halving 1 - tanh^2 is exact, as above
            right_derivative = _mul(tanh_inner, tanh_inner, out).neg_().add_(1).mul_(0.5) \
                .mul_(x).mul_(inner_derivative)
            left_derivative = tanh_inner.add_(1).mul_(0.5)  # 0.5 (1 + tanh u)
            return right_derivative.add_(left_derivative)
        cdf = _mul(x, SQRT1_2, first).erf_().add_(1).mul_(0.5)  # Phi(x)
        pdf = _mul(x, x, out).mul_(-0.5).exp_().mul_(TWO_OVER_SQRTPI * SQRT1_2 * 0.5)  # phi(x)
        return pdf.mul_(x).add_(cdf)  # Phi(x) + x phi(x), which G multiplies

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Elementwise):
    r"""y = x sigma(x) = x / (1 + exp(-x)), as ``torch.nn.SiLU`` (also called swish).

    Args:
        inplace: only False (the default) is accepted: mini_dl never overwrites its input.

    Backward: dL/dx = G sigma(x) (1 + x (1 - sigma(x))). Caches the input.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> silu = dl.SiLU()
        >>> silu(torch.tensor([0.0])).tolist(), silu.backward(torch.ones(1)).tolist()
        ([0.0], [0.5])
    """

    cached = "input"

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _refuse_inplace("SiLU", inplace)

    def function(self, x):
        return x / (1 + torch.exp(-x))

    def grad_input(self, grad_output, x):
        sigmoid = 1 / (1 + torch.exp(-x))
        return grad_output * sigmoid * (1 + x * (1 - sigmoid))


class Softplus(_Elementwise):
    r"""y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (for numerical
    stability), as ``torch.nn.Softplus``.

    Args:
        beta: sharpness (nonzero). Default: 1.0.
        threshold: above it (beta x > threshold) the function is the identity. Default: 20.0.

    Backward, with z = exp(beta x): dL/dx = G where beta x > threshold, G z / (z + 1) elsewhere
    (at beta x = threshold exactly, the log branch, as in torch). Caches the input.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> softplus = dl.Softplus(beta=2.0, threshold=10.0)
        >>> softplus(torch.tensor([0.0, 6.0])).tolist()
        [0.3465735912322998, 6.0]
        >>> softplus.backward(torch.ones(2)).tolist()
        [0.5, 1.0]
    """

    cached = "input"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _number("Softplus", "beta", beta)
        if beta == 0:
            raise ValueError("Softplus: beta must be nonzero (y divides by it), got 0")
        self.threshold = _number("Softplus", "threshold", threshold)

    def function(self, x):
        scaled = x * self.beta
        return torch.where(scaled > self.threshold, x, scaled.exp().log1p_().div_(self.beta))

    def grad_input(self, grad_output, x):
        scaled = x * self.beta
        z = scaled.exp()
        return torch.where(scaled > self.threshold, grad_output, grad_output * z / (z + 1))

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class _Softmax(_Elementwise):
    """Softmax and LogSoftmax: a function of the slices along ``dim``, derivative from the
    output. ``dim=None`` follows torch's deprecated implicit choice, with torch's warning."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise TypeError(f"{type(self).__name__}: dim must be an int or None, got {dim!r}")
        self.dim = dim

    def _dim(self, ndim: int, warn: bool = False) -> int:
        """``dim`` as an index into ``ndim`` dimensions; for ``dim=None`` torch's legacy rule:
        0 for 0-, 1- and 3-dim input, else 1."""
        if self.dim is None:
            if warn:
                warnings.warn(f"{type(self).__name__}: implicit dimension choice for "
                              f"{self.function_name} has been deprecated. Change the call to "
                              f"include dim=X as an argument.", UserWarning, stacklevel=5)
            return _dimension(self, "dim", 0 if ndim in (0, 1, 3) else 1, ndim)
        return _dimension(self, "dim", self.dim, ndim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_Softmax):
    r"""y_i = exp(x_i) / sum_j exp(x_j) over each slice along ``dim``, as ``torch.nn.Softmax``;
    computed as exp(x - max) / sum exp(x - max) (the same value, without overflow).

    Args:
        dim: the dimension whose slices sum to 1 (negative counts from the end). ``None``
            (the default, deprecated in torch) picks torch's implicit dim (0 for 0-, 1- and 3-dim
            input, else 1) and warns as torch does; a dim out of range is a ValueError.

    Backward, a Jacobian-vector product along ``dim`` (the C x C Jacobian diag(y) - y y^T is
    never formed): dL/dx = y * (G - sum(G * y, dim)). Caches the output.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> softmax = dl.Softmax(dim=1)
        >>> softmax(torch.zeros(2, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]
        >>> softmax.backward(torch.ones(2, 4)).abs().max().item()  # a shift of G does nothing
        0.0
    """

    function_name = "softmax"  # as torch's warning names it

    def function(self, x):
        dim = self._dim(x.ndim, warn=True)
        if x.numel() == 0:  # amax has nothing to reduce over
            return torch.empty_like(x)
        exp = (x - x.amax(dim, keepdim=True)).exp_()
        return exp.div_(exp.sum(dim, keepdim=True))

    def grad_input(self, grad_output, output):
        dim = self._dim(output.ndim)
        return (grad_output - (grad_output * output).sum(dim, keepdim=True)).mul_(output)


class LogSoftmax(_Softmax):
    r"""y_i = x_i - log sum_j exp(x_j) over each slice along ``dim``, as ``torch.nn.LogSoftmax``;
    computed as (x - max) - log sum exp(x - max).

    Args:
        dim: the dimension of the slices (negative counts from the end). ``None`` (the default,
            deprecated in torch) picks torch's implicit dim (0 for 0-, 1- and 3-dim input, else 1)
            and warns as torch does; a dim out of range is a ValueError.

    Backward, a Jacobian-vector product along ``dim`` (the Jacobian I - 1 softmax^T is never
    formed): dL/dx = G - exp(y) * sum(G, dim). Caches the output.
    Shape: any, 0-dim included; output has the input's shape.

    Example:
        >>> import torch, mini_dl as dl
        >>> log_softmax = dl.LogSoftmax(dim=-1)
        >>> log_softmax(torch.zeros(1, 2)).exp().tolist()
        [[0.5, 0.5]]
        >>> log_softmax.backward(torch.tensor([[1.0, 0.0]])).tolist()
        [[0.5, -0.5]]
    """

    function_name = "log_softmax"

    def function(self, x):
        dim = self._dim(x.ndim, warn=True)
        if x.numel() == 0:  # amax has nothing to reduce over
            return torch.empty_like(x)
        shifted = x - x.amax(dim, keepdim=True)
        return shifted - shifted.exp().sum(dim, keepdim=True).log_()

    def grad_input(self, grad_output, output):
        dim = self._dim(output.ndim)
        return grad_output - output.exp().mul_(grad_output.sum(dim, keepdim=True))


class Identity(Module):
    r"""y = x, as ``torch.nn.Identity``: a placeholder that accepts and ignores any arguments.

    Backward: dL/dx = G, returned as it came (the same tensor: nothing is computed, and no
    module modifies its grad_output in place). Caches only the input's shape, to check G's.
    Shape: any, 0-dim included; output is the input itself.

    Example:
        >>> import torch, mini_dl as dl
        >>> identity = dl.Identity(54, unused=0.1)
        >>> x = torch.ones(2, 3)
        >>> identity(x) is x, identity.backward(torch.zeros(2, 3)).shape
        (True, torch.Size([2, 3]))
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.input_shape = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x, floating=False)
        self.input_shape = x.shape
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return check_tensor(self, "grad_output", grad_output, shape=self.saved("input_shape"))
