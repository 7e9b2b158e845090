"""Pooling layers: MaxPool2d, AvgPool2d and AdaptiveAvgPool2d, as ``torch.nn``'s.

Max pooling looks at windows of the input (``as_strided`` views), keeps each window's maximum
and routes the gradient back to it. Average pooling is linear and separable: every output is a
weighted sum over a rectangle, so ``y = A_H x A_W^T`` with two small averaging matrices whose rows
hold each window's weights, and the backward is ``A_H^T G A_W``.
"""
from __future__ import annotations

import torch

from .module import Module, check_tensor, detached


def _pair(owner: str, name: str, value: object, minimum: int) -> tuple[int, int]:
    """``(v, v)`` from an int, or the pair itself; each an int >= ``minimum``."""
    pair = (value, value) if isinstance(value, int) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                 ceil_mode: bool) -> int:
    """torch's pooling output size: floor (or ceil) of (size + 2p - d (k - 1) - 1) / s, plus 1;
    with ``ceil_mode`` the last window must start inside the input or the left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _check_input(owner: Module, x: object) -> torch.Tensor:
    """A floating (N, C, H, W) or (C, H, W) tensor with C, H, W > 0, returned as 4-D."""
    x = check_tensor(owner, "input", x)
    if x.ndim not in (3, 4) or 0 in x.shape[-3:]:
        raise ValueError(f"{type(owner).__name__}: input must have shape (N, C, H, W) or "
                         f"(C, H, W) with C, H, W > 0, got shape {tuple(x.shape)}")
    return x if x.ndim == 4 else x.unsqueeze(0)


class _Pool2d(Module):
    """What MaxPool2d and AvgPool2d share: the arguments (kept as given, as torch keeps them)
    and the output size."""

    def _store(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        owner = type(self).__name__
        self.kernel = _pair(owner, "kernel_size", kernel_size, 1)
        self.step = _pair(owner, "stride", kernel_size if stride is None else stride, 1)
        self.pad = _pair(owner, "padding", padding, 0)
        self.spacing = _pair(owner, "dilation", dilation, 1)
        if not isinstance(ceil_mode, bool):
            raise TypeError(f"{owner}: ceil_mode must be a bool, got {ceil_mode!r}")
        if any(p > k // 2 for p, k in zip(self.pad, self.kernel)):
            raise ValueError(f"{owner}: padding must be at most half the kernel size, got "
                             f"padding={padding!r} with kernel_size={kernel_size!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode

    def _out_shape(self, x: torch.Tensor) -> tuple[int, int]:
        """(OH, OW) for a 4-D input; a clear error if a window does not fit."""
        out = tuple(_output_size(x.shape[2 + i], self.kernel[i], self.step[i], self.pad[i],
                                 self.spacing[i], self.ceil_mode) for i in range(2))
        if min(out) < 1:
            raise ValueError(f"{type(self).__name__}: output size {out} is empty: input (H, W) = "
                             f"{tuple(x.shape[2:])} with padding {self.pad} is smaller than the "
                             f"kernel {self.kernel} (dilation {self.spacing})")
        return out

    def _check_grad_output(self, x: torch.Tensor, grad_output: object, out: tuple
                           ) -> torch.Tensor:
        """grad_output of the output's shape (unbatched if the input was), as 4-D."""
        shape = (*x.shape[:-2], *out)
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=shape, like=x))
        return grad_output if x.ndim == 4 else grad_output.unsqueeze(0)


class MaxPool2d(_Pool2d):
    r"""Max pooling over windows of each channel, as ``torch.nn.MaxPool2d``.

    With window :math:`K_{ij}` the positions :math:`(i s_H + a d_H - p_H,\ j s_W + b d_W - p_W)`,
    :math:`0 \le a < k_H,\ 0 \le b < k_W` (stride ``s``, dilation ``d``, padding ``p``, which
    counts as :math:`-\infty`)::

        y[n, c, i, j] = max over (h, w) in K_ij of x[n, c, h, w]

    Backward, with ``G = dL/dy``: the whole of ``G[n, c, i, j]`` goes to the window's arg-max
    (its first maximum in the window's row-major order, as torch chooses at ties); overlapping
    windows (stride < kernel) add their contributions::

        dL/dx[n, c, h, w] = sum over (i, j) whose arg-max is (h, w) of G[n, c, i, j]

    Args:
        kernel_size, stride (default: kernel_size), padding, dilation: an int or a pair (H, W);
            padding at most half the kernel.
        return_indices: not supported (must be False); it is here for torch's argument order.
        ceil_mode: round the output size up (the last window must start inside the input or
            the left padding).

    The common case ``kernel_size == stride``, no padding, no dilation (LeNet's ``MaxPool2d(2)``)
    takes a fast path of elementwise maxima over the ``k_H k_W`` strided slices of the input,
    keeping each window's arg-max as one byte (its offset from the window's corner in the input
    plane, while that fits in a byte); it gives the same
    output and the same gradient bit for bit. A window holding a NaN sends its gradient to its
    last position on the fast path and to its first NaN on the general one (torch sends it to
    its last NaN). A window in
    the padding only (possible with dilation) outputs -inf and its gradient is dropped (torch
    sends it to the index one past the row, a bug).

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``, output ``(N, C, H_out, W_out)`` or
        ``(C, H_out, W_out)``, with ``H_out = floor((H + 2 p_H - d_H (k_H - 1) - 1) / s_H) + 1``
        (ceil with ``ceil_mode``, see above).

    Example:
        >>> import torch, mini_dl as dl
        >>> pool = dl.MaxPool2d(2)
        >>> x = torch.tensor([[[1., 2., 0., 0.], [4., 3., 0., 5.]]])
        >>> pool(x)
        tensor([[[4., 5.]]])
        >>> pool.backward(torch.tensor([[[10., 20.]]]))
        tensor([[[ 0.,  0.,  0.,  0.],
                 [10.,  0.,  0., 20.]]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        if return_indices is not False:
            raise ValueError(f"MaxPool2d: return_indices=True is not supported, got "
                             f"return_indices={return_indices!r}")
        self._store(kernel_size, stride, padding, dilation, ceil_mode)
        self.dilation = dilation
        self.return_indices = False
        self.input = self.positions = self.indices = None
        self.dropped = False

    def _is_fast(self) -> bool:
        return self.kernel == self.step and self.pad == (0, 0) and self.spacing == (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = _check_input(self, x)
        out = self._out_shape(x4)
        self.input = detached(x)
        if self._is_fast() and out[0] * self.kernel[0] <= x4.shape[2] \
                and out[1] * self.kernel[1] <= x4.shape[3]:  # windows tile (part of) the input
            self.indices = None
            output, self.positions = self._fast_forward(x4, out)
        else:
            self.positions = None
            output, self.indices = self._general_forward(x4, out)
        return output if x.ndim == 4 else output.squeeze(0)

    def _blocks(self, x: torch.Tensor, out: tuple) -> torch.Tensor:
        """The (N, C, OH, kH, OW, kW) view of the tiled part of x: block (i, j) is window (i, j)."""
        (kh, kw), (sn, sc, sh, sw) = self.kernel, x.stride()
        return x.as_strided((*x.shape[:2], out[0], kh, out[1], kw),
                            (sn, sc, kh * sh, sh, kw * sw, sw))

    def _fast_forward(self, x: torch.Tensor, out: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """kernel == stride: the maximum over the kH kW strided slices, and for each window the
        position of its first maximum (a, b) as the offset a W + b from the window's corner in
        the (H, W) input plane, shape (N, C, OH, OW), one byte an entry (uint8 while the
        largest offset, (kH - 1) W + kW - 1, fits; int32 beyond). The slices go in the window's
        row-major order, and a window's offset grows while none of the slices so far holds its
        maximum: by 1 along a row of the window, by W - kW + 1 from one row to the next."""
        blocks = self._blocks(x, out)
        (kh, kw), width = self.kernel, x.shape[3]
        slices = [piece for row in blocks.unbind(3) for piece in row.unbind(4)]  # (a, b)
        output = slices[0].clone()
        for piece in slices[1:]:
            output = torch.maximum(output, piece)
        dtype = torch.uint8 if (kh - 1) * width + kw - 1 <= 255 else torch.int32
        if len(slices) == 1:  # a 1 x 1 window: its only entry
            return output, torch.zeros(output.shape, dtype=dtype, device=x.device)
        # the offset's step from entry k to entry k + 1: along a row, or on to the next row
        steps = [1 if (k + 1) % kw else width - kw + 1 for k in range(len(slices) - 1)]
        before = slices[0] != output  # windows whose first maximum comes after this slice
        positions = before.to(dtype)
        if steps[0] != 1:
            positions.mul_(steps[0])
        for piece, step in zip(slices[1:-1], steps[1:]):
            before &= piece != output
            positions.add_(before, alpha=step)
        return output, positions

    def _general_forward(self, x: torch.Tensor, out: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Any arguments: windows of the -inf-padded input, their maximum and arg-max, returned
        as an index into each (H, W) input plane, torch's ``indices``, shape (N, C, OH, OW)."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.step, self.pad, self.spacing
        n, c, h, w = x.shape
        # the padded extent: the left padding, then the input or the last window, if longer
        height = max(ph + h, (out[0] - 1) * sh + dh * (kh - 1) + 1)
        width = max(pw + w, (out[1] - 1) * sw + dw * (kw - 1) + 1)
        padded = x
        if (height, width) != (h, w):
            padded = x.new_full((n, c, height, width), float("-inf"))
            padded[:, :, ph:ph + h, pw:pw + w] = x
        strides = padded.stride()
        windows = padded.as_strided(
            (n, c, *out, kh, kw), (*strides[:2], sh * strides[2], sw * strides[3],
                                   dh * strides[2], dw * strides[3]))
        output, position = windows.reshape(n, c, *out, kh * kw).max(dim=-1)  # first maximum
        rows = torch.arange(out[0], device=x.device).view(-1, 1) * sh - ph
        cols = torch.arange(out[1], device=x.device) * sw - pw
        self.dropped = False  # whether some window lies in the padding only
        # (on the meta device there are no values to look at: the shapes are the same)
        if padded is not x and x.device.type != "meta" and torch.isneginf(output).any():
            # a window of -inf values: torch picks its first position inside the input; a
            # window with none (possible with dilation) outputs -inf and its gradient is lost
            inside = torch.zeros(height, width, dtype=torch.uint8, device=x.device)
            inside[ph:ph + h, pw:pw + w] = 1
            inside = inside.as_strided((*out, kh, kw), (sh * width, sw, dh * width, dw)
                                       ).reshape(*out, kh * kw)
            position = torch.where(torch.isneginf(output), inside.argmax(dim=-1), position)
            empty = inside.amax(dim=-1) == 0
            if empty.any():
                self.dropped = True
                return output, torch.where(empty, h * w, (rows + position // kw * dh) * w
                                           + cols + position % kw * dw)
        return output, (rows + position // kw * dh) * w + cols + position % kw * dw

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self.saved("input")
        x4 = x if x.ndim == 4 else x.unsqueeze(0)
        out = self._out_shape(x4)
        grad_output = self._check_grad_output(x, grad_output, out)
        n, c, h, w = x4.shape
        if self.__dict__["positions"] is not None:  # the fast path: offsets from the corners
            indices = torch.add(self._corners(out, w, x.device), self.saved("positions"))
            size = h * w
        else:  # the input position of each window's maximum, or h * w, one past the end, for
            indices, size = self.saved("indices"), h * w + self.dropped  # windows in the padding
        grad_input = x4.new_zeros(n * c, size).scatter_add_(
            1, indices.reshape(n * c, -1), grad_output.reshape(n * c, -1))
        grad_input = grad_input[:, :h * w].reshape(x4.shape)
        return grad_input if x.ndim == 4 else grad_input.squeeze(0)

    def _corners(self, out: tuple, width: int, device) -> torch.Tensor:
        """The fast path's window corners as indices into the (H, W) input plane, (OH, OW)
        int64: window (i, j) starts at row i kH, column j kW, index i kH W + j kW. Added to the
        offsets that forward keeps, they give the general path's indices (int64, made in the
        backward and let go after it: 8 bytes an output, where the offsets keep 1). The table
        depends on the shape only, so it is made once and kept for the next step."""
        key, kept = (out, width, device), self.__dict__.get("_corner_table")
        if kept is None or kept[0] != key:
            (kh, kw), rows = self.kernel, torch.arange(out[0], device=device)
            corners = rows.view(-1, 1) * (kh * width) + torch.arange(out[1], device=device) * kw
            kept = self.__dict__["_corner_table"] = (key, corners)
        return kept[1]

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


def _averaging_matrix(starts: torch.Tensor, ends: torch.Tensor, divisors: torch.Tensor,
                      size: int, like: torch.Tensor) -> torch.Tensor:
    """(out, size) matrix A with A[i, h] = 1 / divisors[i] for starts[i] <= h < ends[i], else 0:
    row i averages window i of a length-``size`` axis."""
    positions = torch.arange(size, device=like.device)
    inside = (positions >= starts.view(-1, 1)) & (positions < ends.view(-1, 1))
    return inside.to(like.dtype) / divisors.view(-1, 1).to(like.dtype)


class _Average(Module):
    """y = A_H x A_W^T and its backward, for averaging matrices built by ``_matrices``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self._matrices(_check_input(self, x))
        self.input, self.rows, self.cols = detached(x), rows, cols
        return rows @ (x @ cols.t())  # (OH, H) (N, C, H, W) (W, OW) -> (N, C, OH, OW)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x, rows, cols = self.saved("input"), self.saved("rows"), self.saved("cols")
        shape = (*x.shape[:-2], rows.shape[0], cols.shape[0])
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=shape, like=x))
        return rows.t() @ (grad_output @ cols)  # (H, OH) G (OW, W): every G spread on its window


class AvgPool2d(_Average, _Pool2d):
    r"""Average pooling over windows of each channel, as ``torch.nn.AvgPool2d``.

    Window :math:`(i, j)` covers rows :math:`i s_H - p_H \le h < i s_H - p_H + k_H` and the like
    columns; ``padding`` adds zeros. Its divisor is, as torch's: ``divisor_override`` if given;
    else with ``count_include_pad`` the window's size clipped to the padded input (a ceil_mode
    window sticking out past the padding counts only up to it); else the number of its positions
    inside the input. The divisor is the product of a row and a column factor, so the layer is
    separable: with ``A_H`` of shape ``(H_out, H)``, ``A_H[i, h]`` = 1 / (row factor of i) for
    the rows h of window i inside the input (0 elsewhere), and ``A_W`` alike::

        y = A_H x A_W^T                   (per sample and channel: (H_out, W_out))

    Backward, with ``G = dL/dy``: each ``G[i, j]`` spread over its window, divided by its
    divisor, overlapping windows adding up::

        dL/dx = A_H^T G A_W               (H, W)

    (An infinite input value makes the matrix products NaN where torch's sums give inf or a
    finite value: 0 * inf is NaN.)

    Args:
        kernel_size, stride (default: kernel_size), padding: an int or a pair (H, W); padding at
            most half the kernel.
        ceil_mode: round the output size up. count_include_pad: count the padding zeros in the
            divisor. divisor_override: a nonzero int that replaces the divisor.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``, output ``(N, C, H_out, W_out)`` or
        ``(C, H_out, W_out)``, ``H_out = floor((H + 2 p_H - k_H) / s_H) + 1`` (ceil, with the
        last window starting inside the input or the left padding, under ``ceil_mode``).

    Example:
        >>> import torch, mini_dl as dl
        >>> pool = dl.AvgPool2d(2)
        >>> pool(torch.tensor([[[1., 3., 0., 0.], [5., 7., 0., 8.]]]))
        tensor([[[4., 2.]]])
        >>> pool.backward(torch.tensor([[[4., 8.]]]))
        tensor([[[1., 1., 2., 2.],
                 [1., 1., 2., 2.]]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self._store(kernel_size, stride, padding, 1, ceil_mode)
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"AvgPool2d: count_include_pad must be a bool, got "
                            f"{count_include_pad!r}")
        if divisor_override is not None and (isinstance(divisor_override, bool) or not
                                             isinstance(divisor_override, int)):
            raise TypeError(f"AvgPool2d: divisor_override must be None or an int, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("AvgPool2d: divisor_override must be nonzero, got 0")
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self.input = self.rows = self.cols = None

    def _matrices(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._out_shape(x)
        matrices = []
        for axis in range(2):
            size, kernel, pad = x.shape[2 + axis], self.kernel[axis], self.pad[axis]
            starts = torch.arange(out[axis], device=x.device) * self.step[axis] - pad
            ends = (starts + kernel).clamp(max=size + pad)  # the padded extent, torch's rule
            starts_in, ends_in = starts.clamp(min=0), ends.clamp(max=size)
            if self.divisor_override is not None:
                divisors = torch.full_like(starts, self.divisor_override if axis == 0 else 1)
            else:
                divisors = ends - starts if self.count_include_pad else ends_in - starts_in
            matrices.append(_averaging_matrix(starts_in, ends_in, divisors, size, x))
        return matrices[0], matrices[1]

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(_Average):
    r"""Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``.

    Output row :math:`i` of :math:`H_{out}` averages input rows
    :math:`\lfloor i H / H_{out} \rfloor \le h < \lceil (i + 1) H / H_{out} \rceil` (windows
    overlap when :math:`H_{out}` does not divide :math:`H`), columns alike. With the averaging
    matrices ``A_H[i, h]`` = 1 / (length of window i) inside window i (0 elsewhere), ``A_W``
    alike::

        y = A_H x A_W^T,        Backward: dL/dx = A_H^T G A_W

    Args:
        output_size: an int (square output) or a pair; a None entry keeps that input size.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``, output ``(N, C, H_out, W_out)`` or
        ``(C, H_out, W_out)``.

    Example:
        >>> import torch, mini_dl as dl
        >>> pool = dl.AdaptiveAvgPool2d((1, 2))
        >>> pool(torch.tensor([[[0., 1., 2.], [3., 4., 5.]]]))   # columns {0, 1} and {1, 2}
        tensor([[[2., 3.]]])
    """

    def __init__(self, output_size):
        super().__init__()
        pair = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
            else output_size
        if len(pair) != 2 or any(v is not None and (isinstance(v, bool) or not isinstance(v, int))
                                 for v in pair):
            raise TypeError(f"AdaptiveAvgPool2d: output_size must be an int or a pair of ints "
                            f"(or None), got {output_size!r}")
        if any(v is not None and v < 1 for v in pair):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be positive, got "
                             f"{output_size!r}")
        self.sizes = tuple(pair)
        self.output_size = output_size
        self.input = self.rows = self.cols = None

    def _matrices(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        matrices = []
        for axis in range(2):
            size = x.shape[2 + axis]
            out = size if self.sizes[axis] is None else self.sizes[axis]
            index = torch.arange(out, device=x.device)
            starts = index * size // out  # floor(i H / out)
            ends = -((-(index + 1) * size) // out)  # ceil((i + 1) H / out)
            matrices.append(_averaging_matrix(starts, ends, ends - starts, size, x))
        return matrices[0], matrices[1]

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
