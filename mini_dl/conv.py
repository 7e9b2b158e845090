"""Conv2d: a 2-D convolution written as matrix products per image (im2col)."""
from __future__ import annotations

import math

import torch

from . import init
from .module import Module, Parameter, check_size, check_tensor, detached

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# The products that add up over the kernel rows (the output in forward, the rows' gradient in
# backward) run over this many bytes of unfolded rows at a time, about one core's L2 cache:
# over a larger batch each kernel row would stream the whole sum through memory again. The
# same products on the same images, so the same numbers bit for bit.
CHUNK_BYTES = 1 << 21


def _chunks(rows_shape, element_size: int) -> list[slice]:
    """The batch (``rows_shape[0]`` images) in runs of images whose unfolded rows fit in
    :data:`CHUNK_BYTES` (at least one image a run; an empty batch is one empty run)."""
    n, per_image = rows_shape[0], math.prod(rows_shape[1:]) * element_size
    size = max(1, CHUNK_BYTES // max(1, per_image))
    return [slice(start, min(n, start + size)) for start in range(0, max(n, 1), size)]


def _run(tensor: torch.Tensor, images: slice, groups: int = 1) -> torch.Tensor:
    """The images of a run in ``tensor`` (batch first, ``groups`` entries an image): the tensor
    itself when the run is the whole batch, the usual case, which then costs no slicing."""
    if images.start == 0 and images.stop * groups >= len(tensor):
        return tensor
    return tensor[images.start * groups:images.stop * groups]


def _pair(owner: str, name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as the tuple torch stores."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return tuple(pair)


def _border_index(size: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """For each position of a padded axis, the input position it copies (reflect, replicate,
    circular): position p in [-before, size + after) reads index(p) in [0, size)."""
    p = torch.arange(-before, size + after, device=device)
    if mode == "reflect":  # ... 2 1 | 0 1 2 ... size-1 | size-2 ...
        return torch.where(p < 0, -p, torch.where(p >= size, 2 * (size - 1) - p, p))
    if mode == "replicate":  # 0 0 | 0 1 2 ... size-1 | size-1 size-1
        return p.clamp(0, size - 1)
    return p.remainder(size)  # circular: size-2 size-1 | 0 1 ... size-1 | 0 1


def _unfold_width(x_padded: torch.Tensor, kernel_size, stride, dilation,
                  output_size) -> torch.Tensor:
    """The padded batch (N, C, Hp, Wp) seen through each kernel column q: ``rows`` of shape
    (N, C, kW, Hp, Wo), rows[n, c, q, r, j] = x_padded[n, c, r, s_W j + d_W q]. One copy of a
    strided view, kW times the input's size."""
    (n, c, h_padded, _), k_w, (s_w, d_w), w_out = x_padded.shape, kernel_size[1], \
        (stride[1], dilation[1]), output_size[1]
    stride_n, stride_c, stride_h, stride_w = x_padded.stride()
    return x_padded.as_strided((n, c, k_w, h_padded, w_out), (stride_n, stride_c,
                               d_w * stride_w, stride_h, s_w * stride_w)).contiguous()


def _im2col_blocks(rows: torch.Tensor, k_h: int, groups: int, stride, dilation, h_out: int,
                   transposed: bool = False):
    """The kH blocks of the im2col matrix, one per kernel row p, in order: block p holds the rows
    of X that kernel row p reads, per image and group, shape (N * g, C/g * kW, Ho * Wo),
    X_p[(n, g), (c, q), (i, j)] = rows[n, c, q, s_H i + d_H p, j] (``transposed``: X_p^T, a view,
    (N * g, Ho * Wo, C/g * kW)). With s_H = 1 each is a view: the kH blocks are one matrix
    shifted by d_H rows, the columns [d_H p Wo, (d_H p + Ho) Wo) of ``rows`` seen as
    (N * g, C/g * kW, Hp * Wo), one slice each, so X itself, kH * kW times the input's size, is
    never built. (With s_H > 1 each block is a copy, made when it is asked for.)"""
    (n, c, k_w, h_padded, w_out), (s_h, d_h) = rows.shape, (stride[0], dilation[0])
    if s_h == 1:
        matrix = rows.view(n * groups, c // groups * k_w, h_padded * w_out)
        if transposed:
            matrix = matrix.transpose(1, 2)
        for p in range(k_h):
            columns = slice(d_h * p * w_out, (d_h * p + h_out) * w_out)
            yield matrix[:, columns] if transposed else matrix[:, :, columns]
        return
    for p in range(k_h):
        block = rows[:, :, :, d_h * p:d_h * p + s_h * (h_out - 1) + 1:s_h]  # (N, C, kW, Ho, Wo)
        block = block.reshape(n * groups, c // groups * k_w, h_out * w_out)
        yield block.transpose(1, 2) if transposed else block


def _fold_width(grad_rows: torch.Tensor, grad_padded: torch.Tensor, stride, dilation) -> None:
    """The gradient of :func:`_unfold_width`, with the batch innermost: ``grad_rows`` (C, kW,
    Hp, Wo, N) added into ``grad_padded`` (C, Hp, Wp, N). Each kernel column's rows go back
    where they were read, kW additions of strided slices (overlapping windows add up), each a
    run of Wo N (or, with stride, N) consecutive numbers."""
    w_out, (s_w, d_w) = grad_rows.shape[3], (stride[1], dilation[1])
    for q, column in enumerate(grad_rows.unbind(1)):  # (add_ on the slice: `slice += ...`
        # would copy it back onto itself)
        grad_padded[:, :, d_w * q:d_w * q + s_w * (w_out - 1) + 1:s_w].add_(column)


class Conv2d(Module):
    r"""2-D convolution (cross-correlation, as ``torch.nn.Conv2d``):

    .. math::
        y[n, o, i, j] = b[o] + \sum_{c \in \text{group}(o)} \sum_{p < kH} \sum_{q < kW}
            W[o, c, p, q] \; x_{pad}[n, c, s_H i + d_H p, s_W j + d_W q]

    with stride ``s``, dilation ``d`` and ``x_pad`` the input padded by ``padding`` (zeros, or
    the border reflected, replicated or wrapped around, by ``padding_mode``). Output channel o
    sees only the ``in_channels / groups`` input channels of its group.

    Computed as matrix products (im2col): per image, the columns ``X`` of shape ``(K, L)`` hold
    the K = C/groups * kH * kW values under the kernel for each of the L = Ho * Wo output
    pixels, and ``Y = W X + b`` with W viewed as ``(out, K)`` (per group) is ``(out, L)``, the
    NCHW output without a transpose. X repeats every input value up to kH * kW times, so it is
    never built whole: its rows come in kH blocks X_p, one per kernel row p, and with stride 1
    every block is a shifted view of one matrix, the input unfolded along the width only (kW
    times its size). So ``Y = sum_p W_p X_p``, with W_p = W[:, :, p] viewed as
    ``(out, C/groups * kW)``. Like torch, forward caches only the (padded) input. The sums over
    p run over a batch a run of images at a time (:func:`_chunks`, about one core's L2 cache
    of rows a run), so that a large batch does not stream the whole sum through memory once per
    kernel row; the numbers do not depend on the runs.

    Args:
        in_channels, out_channels: C and O; both divisible by ``groups``.
        kernel_size, stride, dilation: an int or a pair (height, width), stored as pairs.
        padding: an int or pair (zeros added on both sides), ``"valid"`` (none) or ``"same"``
            (output size = input size; stride must be 1; total d * (k - 1) per axis, the extra
            one at the bottom/right for even kernels, as torch).
        groups: split channels into ``groups`` independent convolutions (``groups ==
            in_channels``: depthwise).
        bias: add a learned ``b`` of shape ``(out,)``.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.

    Weight ``(out, in / groups, kH, kW)`` and bias ``(out,)`` are drawn as torch draws them:
    ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then the bias
    from the same range, fan_in = in / groups * kH * kW.

    Backward, with ``G = dL/dy`` viewed as ``(N, out, L)``::

        dL/dW = sum_n G_n X_n^T     (out, K): the correlation of the input with G; block by
                                    block, dL/dW_p = sum_n G_n X_p,n^T
        dL/dX = W^T G               (N, K, L), scattered back onto the input (col2im: each
                                    column added where it was read), i.e. the "full"
                                    convolution of G with the flipped kernel; block by block,
                                    W_p^T G added onto the rows X_p read (with
                                    the batch innermost: one product per kernel
                                    row for all images), then the rows onto the
                                    input; padded borders fold back onto the
                                    pixels they copied
        dL/db = sum_{n, l} G        (out,)

    With ``needs_input_grad = False`` backward skips dL/dx and returns None.

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, O, Ho, Wo)`` or ``(O, Ho, Wo)``
        with ``Ho = floor((H + pad_top + pad_bottom - d_H (kH - 1) - 1) / s_H) + 1`` (the same
        for Wo).

    Example:
        >>> import torch, mini_dl as dl
        >>> conv = dl.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> conv
        Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
        >>> conv(torch.zeros(4, 3, 28, 28)).shape
        torch.Size([4, 8, 14, 14])
        >>> conv.backward(torch.ones(4, 8, 14, 14)).shape, conv.weight.grad.shape
        (torch.Size([4, 3, 28, 28]), torch.Size([8, 3, 3, 3]))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        self.in_channels = check_size("Conv2d", "in_channels", in_channels)
        self.out_channels = check_size("Conv2d", "out_channels", out_channels)
        self.groups = check_size("Conv2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.kernel_size = _pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = _pair("Conv2d", "stride", stride, 1)
        self.dilation = _pair("Conv2d", "dilation", dilation, 1)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Conv2d: padding must be 'valid', 'same', an int or a pair, "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"Conv2d: padding='same' needs stride 1, got stride "
                                 f"{self.stride}")
            self.padding = padding
            totals = [d * (k - 1) if padding == "same" else 0
                      for d, k in zip(self.dilation, self.kernel_size)]
            # (top, bottom, left, right); the odd one of an even kernel goes bottom/right
            self._sides = (totals[0] // 2, totals[0] - totals[0] // 2,
                           totals[1] // 2, totals[1] - totals[1] // 2)
        else:
            self.padding = _pair("Conv2d", "padding", padding, 0)
            self._sides = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.empty(out_channels, in_channels // groups,
                                            *self.kernel_size, **options))
        self.bias = Parameter(torch.empty(out_channels, **options)) if bias else None
        self.reset_parameters()
        self.input_padded = None
        self.input_shape = None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """torch.nn.Conv2d's draws: weight by kaiming_uniform_(a=sqrt(5)), which is
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.weight.data[0].numel()  # in / groups * kH * kW
            bound = 1 / math.sqrt(fan_in)
            self.bias.data.uniform_(-bound, bound, generator=generator)

    # -- padding and its gradient --------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self._sides
        if not any(self._sides):
            return x
        n, c, h, w = x.shape
        if self.padding_mode == "zeros":
            x_padded = x.new_zeros(n, c, h + top + bottom, w + left + right)
            x_padded[:, :, top:top + h, left:left + w] = x
            return x_padded
        rows = _border_index(h, top, bottom, self.padding_mode, x.device)
        cols = _border_index(w, left, right, self.padding_mode, x.device)
        return x.index_select(2, rows).index_select(3, cols)

    def _unpad(self, grad_padded: torch.Tensor, input_shape) -> torch.Tensor:
        """The gradient of ``_pad``: drop the zero border, or add each padded border pixel's
        gradient back onto the input pixel it copied."""
        top, bottom, left, right = self._sides
        if not any(self._sides):
            return grad_padded.contiguous()
        n, c, h, w = input_shape
        if self.padding_mode == "zeros":
            return grad_padded[:, :, top:top + h, left:left + w].contiguous()
        rows = _border_index(h, top, bottom, self.padding_mode, grad_padded.device)
        cols = _border_index(w, left, right, self.padding_mode, grad_padded.device)
        grad_rows = grad_padded.new_zeros(n, c, grad_padded.shape[2], w).index_add_(
            3, cols, grad_padded)
        return grad_padded.new_zeros(n, c, h, w).index_add_(2, rows, grad_rows)

    # -- the contract ------------------------------------------------------------------------
    def _output_size(self, shape: torch.Size) -> tuple[int, int]:
        """(Ho, Wo) for an input of ``shape``, or a ValueError if the kernel does not fit."""
        (h, w), (top, bottom, left, right) = shape[-2:], self._sides
        padded = (h + top + bottom, w + left + right)
        spans = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
        if padded[0] < spans[0] or padded[1] < spans[1]:
            raise ValueError(f"Conv2d: input of shape {tuple(shape)}, padded to {padded}, is "
                             f"smaller than the dilated kernel {spans}: the output is empty")
        wraps = {"reflect": (h - 1, w - 1), "circular": (h, w)}.get(self.padding_mode)
        if wraps and (max(top, bottom) > wraps[0] or max(left, right) > wraps[1]):
            raise ValueError(f"Conv2d: padding_mode={self.padding_mode!r} allows padding up to "
                             f"{wraps} for input {tuple(shape)}, got (top, bottom, left, right) "
                             f"{self._sides}")
        return tuple((p - span) // s + 1 for p, span, s in zip(padded, spans, self.stride))

    def _weight_rows(self, n: int) -> torch.Tensor:
        """W_p, the weights of kernel row p, for every row p, image and group: (kH, N * g, O/g,
        C/g * kW), one copy of the weight (the images share it: a stride-0 view)."""
        g, k_h = self.groups, self.kernel_size[0]
        o, k = self.out_channels // g, self.weight.shape[1] * self.kernel_size[1]
        weight = self.weight.data.permute(2, 0, 1, 3).reshape(k_h, 1, g, o, k)
        return weight.expand(k_h, n, g, o, k).reshape(k_h, n * g, o, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tensor(self, "input", x, like=self.weight.data)
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"Conv2d: input must have shape (N, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W), got {tuple(x.shape)}")
        (h_out, w_out), n = self._output_size(x.shape), (x.shape[0] if x.ndim == 4 else 1)
        x_padded = self._pad(x if x.ndim == 4 else x.unsqueeze(0))
        self.input_padded = detached(x_padded)  # as torch: the input only, not its columns
        self.input_shape = x.shape
        rows = _unfold_width(x_padded, self.kernel_size, self.stride, self.dilation, (h_out, w_out))
        g = self.groups  # Y = W X = sum_p W_p X_p: (N * g, O/g, L), which is NCHW order
        out = x_padded.new_empty(n * g, self.out_channels // g, h_out * w_out)
        for images in _chunks(rows.shape, rows.element_size()):  # a cache-sized run of images
            rows_part, part = _run(rows, images), _run(out, images, g)
            weights = self._weight_rows(len(rows_part)).unbind(0)  # W_p, p = 0 .. kH - 1
            blocks = _im2col_blocks(rows_part, self.kernel_size[0], g, self.stride,
                                    self.dilation, h_out)
            for p, block in enumerate(blocks):
                part.baddbmm_(weights[p], block, beta=0 if p == 0 else 1)  # += W_p X_p
        out = out.view(n, self.out_channels, h_out, w_out)
        if self.bias is not None:
            out += self.bias.data.view(-1, 1, 1)
        return out if x.ndim == 4 else out[0]

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        x_padded, input_shape = self.saved("input_padded"), self.saved("input_shape")
        (h_out, w_out), n, g = self._output_size(input_shape), x_padded.shape[0], self.groups
        grad_output = detached(check_tensor(
            self, "grad_output", grad_output, like=x_padded,
            shape=(*input_shape[:-3], self.out_channels, h_out, w_out)))
        grad = grad_output.reshape(n * g, self.out_channels // g, h_out * w_out)  # G
        rows = _unfold_width(x_padded, self.kernel_size, self.stride, self.dilation,
                             (h_out, w_out))  # made again: kW times the input, not kept
        (o, c, k_h, k_w), block = self.weight.shape, None
        per_image = x_padded.new_empty(n * g, o // g, c * k_w)  # G_n X_p,n^T (N * g, O/g, C/g kW)
        images = per_image.view(n, o, c, k_w)  # the same products, image by image
        per_row = x_padded.new_empty(k_h, o, c, k_w)  # dL/dW_p for each kernel row p
        blocks = _im2col_blocks(rows, k_h, g, self.stride, self.dilation, h_out, transposed=True)
        for block, grad_row in zip(blocks, per_row.unbind(0)):  # dL/dW_p = sum_n G_n X_p,n^T
            per_image.baddbmm_(grad, block, beta=0)  # (beta=0: overwritten)
            torch.sum(images, 0, out=grad_row)
        grad_bias = grad.view(n, self.out_channels, h_out * w_out).sum((0, 2))  # images, pixels
        self.weight.accumulate_grad(per_row.permute(1, 2, 0, 3).contiguous())  # (O, C/g, kH, kW)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        if not self.needs_input_grad:  # e.g. the first layer: its input is the data
            return None
        del rows, block  # freed first: one rows-sized buffer at a time
        grad_padded = self._input_grad_padded(grad_output.view(n, self.out_channels, h_out, w_out),
                                              x_padded.shape)
        grad_input = self._unpad(grad_padded, (n, *input_shape[-3:]))
        return grad_input if len(input_shape) == 4 else grad_input[0]

    def _input_grad_padded(self, grad_output: torch.Tensor, padded_shape) -> torch.Tensor:
        """dL/dx_padded (N, C, Hp, Wp), a view, from G (N, O, Ho, Wo): per group and kernel row
        p, W_p^T G added onto the rows that X_p read, then each kernel column's rows onto the
        input (:func:`_fold_width`). Here the batch is innermost: G is laid out ``(O, Ho, Wo,
        N)`` and the rows ``(C, kW, Hp, Wo, N)``. The rows that kernel row p reads for all images
        are then one slice of consecutive columns, so with stride 1 one ``addmm_`` per group and
        kernel row, ``(C/g kW, O/g) (O/g, Ho Wo N)``, adds W_p^T G straight into them, and each
        kernel column folds back in runs of Wo N numbers. The same products, element by element,
        as one per image, added in the same order."""
        (n, _, h_out, w_out), (_, c, h_padded, w_padded) = grad_output.shape, padded_shape
        g, (k_h, k_w), (s_h, d_h) = self.groups, self.kernel_size, (self.stride[0],
                                                                     self.dilation[0])
        width = w_out * n  # one row of the unfolded rows, over the batch
        grad_t = grad_output.permute(1, 2, 3, 0).reshape(  # (O, Ho, Wo, N)
            g, self.out_channels // g, h_out * width)
        # W_p^T for each group and kernel row p, (C/g kW, O/g): views of one copy of the weight
        weights_t = self.weight.data.view(g, -1, c // g, k_h, k_w).permute(0, 3, 1, 2, 4).reshape(
            g * k_h, -1, c // g * k_w).transpose(1, 2).unbind(0)
        grad_rows = grad_output.new_empty(g, c // g * k_w, h_padded * width)  # (C, kW, Hp, Wo, N)
        if s_h == 1:  # kernel row p reads rows [d_H p, d_H p + Ho): p = 0 writes, the others add
            grad_rows[..., h_out * width:].zero_()  # the rows that p = 0 does not cover
        else:  # rows s_H i + d_H p, a strided target: each product goes through a block
            grad_rows.zero_()
        targets = (grad_rows if s_h == 1 else grad_rows.view(g, -1, h_padded, width)).unbind(0)
        sources = grad_t.unbind(0)
        for p in range(k_h):
            for group, (target, source) in enumerate(zip(targets, sources)):
                w_t = weights_t[group * k_h + p]  # W_p^T (C/g kW, O/g)
                if s_h == 1:
                    target[:, d_h * p * width:(d_h * p + h_out) * width].addmm_(
                        w_t, source, beta=0 if p == 0 else 1)
                else:
                    target[:, d_h * p:d_h * p + s_h * (h_out - 1) + 1:s_h].add_(
                        (w_t @ source).view(-1, h_out, width))
        grad_padded = grad_output.new_zeros(c, h_padded, w_padded, n)
        _fold_width(grad_rows.view(c, k_w, h_padded, w_out, n), grad_padded, self.stride,
                    self.dilation)
        return grad_padded.permute(3, 0, 1, 2)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text
