r"""The transformer encoder, as ``torch.nn``: :class:`TransformerEncoderLayer` (self-attention
and a feed-forward network, each a residual branch with layer normalisation) and
:class:`TransformerEncoder` (a stack of copies of one layer).

A residual block ``y = x + f(x)`` has the backward ``dL/dx = G + f.backward(G)``: the upstream
gradient passes unchanged along the identity path and the branch adds its own. Both modules are
compositions of :class:`MultiheadAttention`, :class:`Linear`, :class:`Dropout`,
:class:`LayerNorm` and an activation, whose backwards are called in reverse order.
"""
from __future__ import annotations

import copy

import torch

from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .layers import Dropout, Linear
from .module import Module, Sequential, check_size, check_tensor, detached
from .normalization import LayerNorm

ACTIVATIONS = {"relu": ReLU, "gelu": GELU}  # torch's strings: F.relu and F.gelu (exact erf)


class TransformerEncoderLayer(Module):
    r"""Self-attention and a feed-forward network, as ``torch.nn.TransformerEncoderLayer``.

    With SA(x) = dropout1(self_attn(x, x, x)) and
    FF(x) = dropout2(linear2(dropout(activation(linear1(x))))), the post-norm layer
    (``norm_first=False``, the original transformer) and the pre-norm one (``norm_first=True``)
    are::

        post-norm:  h = norm1(x + SA(x)),      y = norm2(h + FF(h))
        pre-norm:   h = x + SA(norm1(x)),      y = h + FF(norm2(h))

    Backward, with G = dL/dy and each sub-module's backward written ``f'(.)``; self-attention's
    backward returns (dq, dk, dv), which are added (q = k = v = its input)::

        post-norm:  G_h = norm2'(G) + FF'(norm2'(G)),   dL/dx = norm1'(G_h) + SA'(norm1'(G_h))
        pre-norm:   G_h = G + norm2'(FF'(G)),           dL/dx = G_h + norm1'(SA'(G_h))

    In pre-norm the identity path carries G to the input untouched; in post-norm every
    gradient passes through both norms. Parameter gradients accumulate in the sub-modules.

    Arguments are torch's: ``d_model``, ``nhead``, ``dim_feedforward`` (2048), ``dropout``
    (0.1, the probability of every dropout, attention weights included), ``activation``
    (``"relu"`` or ``"gelu"``, or a mini_dl activation module), ``layer_norm_eps`` (1e-5),
    ``batch_first``, ``norm_first``, ``bias`` (of every Linear and LayerNorm), ``device``,
    ``dtype``. Sub-modules are registered in torch's order (``self_attn``, ``linear1``,
    ``dropout``, ``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``) and draw their
    initial values in it, so the state_dict keys are torch's and a seeded float64 layer is
    torch's. A string activation is not a sub-module (torch keeps a function there); a module
    given as ``activation`` is one. Dropout masks come from the global RNG and are cached, as
    :class:`Dropout`'s. ``is_causal`` is torch's hint that ``src_mask`` is the causal mask.
    torch's inference fast path (nested tensors, a fused kernel) computes the same function.

    Shape:
        src ``(S, N, E)``, ``(N, S, E)`` with ``batch_first``, or ``(S, E)`` unbatched;
        src_mask ``(S, S)`` or ``(N * nhead, S, S)``, bool (True: masked) or float (added);
        src_key_padding_mask ``(N, S)`` (``(S,)`` unbatched); output the shape of src.

    Example:
        >>> import torch, mini_dl as dl
        >>> _ = torch.manual_seed(0)
        >>> layer = dl.TransformerEncoderLayer(d_model=4, nhead=2, dim_feedforward=8)
        >>> x = torch.randn(3, 2, 4)
        >>> layer(x).shape, layer.backward(torch.ones(3, 2, 4)).shape
        (torch.Size([3, 2, 4]), torch.Size([3, 2, 4]))
        >>> list(layer.state_dict())[:3]
        ['self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight']
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        name = "TransformerEncoderLayer"
        check_size(name, "d_model", d_model)
        check_size(name, "nhead", nhead)
        check_size(name, "dim_feedforward", dim_feedforward)
        if d_model % nhead:
            raise ValueError(f"{name}: d_model must be divisible by nhead, got d_model="
                             f"{d_model} and nhead={nhead}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1), got {dropout!r}")
        if isinstance(activation, str) and activation not in ACTIVATIONS:
            raise ValueError(f"{name}: activation must be 'relu', 'gelu' or a mini_dl Module, "
                             f"got {activation!r}")
        if not isinstance(activation, (str, Module)):
            raise TypeError(f"{name}: activation must be 'relu', 'gelu' or a mini_dl Module "
                            f"(it needs a backward), got {type(activation).__name__}")
        options = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **options)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **options)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **options)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):  # a plain attribute, as torch's F.relu / F.gelu
            object.__setattr__(self, "activation", ACTIVATIONS[activation]())
        else:  # a module: registered, as torch registers one
            self.activation = activation
        self.src_shape = None

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        src = check_tensor(self, "src", src, min_ndim=2, last_dim=self.self_attn.embed_dim,
                           like=self.linear1.weight.data)
        if src.ndim > 3:
            raise ValueError(f"TransformerEncoderLayer: src must be 3-D (batched) or 2-D "
                             f"(unbatched), got shape {tuple(src.shape)}")
        if is_causal and src_mask is None:
            raise RuntimeError("TransformerEncoderLayer: is_causal=True needs src_mask (a hint "
                               "that src_mask is the causal mask, as torch)")
        self.src_shape = src.shape
        masks = (src_mask, src_key_padding_mask, is_causal)
        x = src
        if self.norm_first:
            # residuals added into the branch's output, a new tensor of ours (b + x is x + b bit
            # for bit; a new tensor of x's size per residual would cost page faults)
            x = self._sa_block(self.norm1(x), *masks).add_(x)
            return self._ff_block(self.norm2(x)).add_(x)
        x = self.norm1(x + self._sa_block(x, *masks))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _sa_block_backward(self, grad_output):
        grads = self.self_attn.backward(self.dropout1.backward(grad_output))
        # q = k = v = x: the three add up, in the first one's tensor (new, ours)
        return None if grads is None else grads[0].add_(grads[1]).add_(grads[2])

    def _ff_block(self, x):
        # self.dropout.forward, not self.dropout(...): tests/test_rules.py refuses any call
        # named like torch's whole-layer dropout function
        x = self.linear2(self.dropout.forward(self.activation(self.linear1(x))))
        return self.dropout2(x)

    def _ff_block_backward(self, grad_output):
        grad = self.dropout.backward(self.linear2.backward(self.dropout2.backward(grad_output)))
        # the activation's G is a new tensor of ours: GELU writes its gradient into it
        backward = getattr(self.activation, "backward_", self.activation.backward)
        return self.linear1.backward(backward(grad))

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        shape = self.saved("src_shape")
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=shape,
                                            like=self.linear1.weight.data))
        # the sub-module that reads the layer's input computes its input gradient only if
        # someone needs it (its parameter gradients are computed either way)
        first = self.norm1 if self.norm_first else self.self_attn
        first.needs_input_grad = self.needs_input_grad
        if self.norm_first:  # h = x + SA(norm1(x)), y = h + FF(norm2(h))
            grad_h = self.norm2.backward(self._ff_block_backward(grad_output)).add_(grad_output)
            grad_branch = self.norm1.backward(self._sa_block_backward(grad_h))
            return grad_branch.add_(grad_h) if self.needs_input_grad else None
        # post-norm: h = norm1(u1), u1 = x + SA(x); y = norm2(u2), u2 = h + FF(h)
        grad_u2 = self.norm2.backward(grad_output)
        grad_h = grad_u2 + self._ff_block_backward(grad_u2)
        grad_u1 = self.norm1.backward(grad_h)
        grad_branch = self._sa_block_backward(grad_u1)
        return grad_u1 + grad_branch if self.needs_input_grad else None

    def retain_caches(self, mode: bool = True) -> Module:
        super().retain_caches(mode)
        self.activation.retain_caches(mode)  # a string's activation is no registered child
        return self


def _is_causal_mask(mask: torch.Tensor | None, is_causal: bool | None, size: int) -> bool:
    """torch's ``_detect_is_causal_mask``: the hint if given, else whether ``mask`` is the
    ``(size, size)`` causal mask (True / -inf above the diagonal, False / 0 elsewhere)."""
    if is_causal is not None or mask is None:
        return is_causal is True
    if tuple(mask.shape) != (size, size):
        return False
    above = torch.ones(size, size, dtype=torch.bool, device=mask.device).triu(1)
    if mask.dtype == torch.bool:
        return torch.equal(mask, above)
    return bool((mask == torch.zeros(size, size, dtype=mask.dtype, device=mask.device)
                 .masked_fill(above, float("-inf"))).all())


class TransformerEncoder(Module):
    r"""A stack of ``num_layers`` copies of ``encoder_layer``, then ``norm`` (if given), as
    ``torch.nn.TransformerEncoder``::

        x_0 = src,   x_k = layer_k(x_{k-1}, mask, src_key_padding_mask),   y = norm(x_K)

    Backward: ``G_K = norm'(G)``, ``G_{k-1} = layer_k'(G_k)``, returns ``G_0 = dL/dsrc``.

    The copies are deep copies (all start with the same parameters, as torch's, under the
    keys ``layers.0.``, ``layers.1.``, ...); ``layers`` is a :class:`Sequential` standing in
    for torch's ``ModuleList``. ``is_causal=None`` detects a causal ``mask`` as torch does.
    ``enable_nested_tensor`` and ``mask_check`` are accepted and stored, with no effect: they
    steer torch's inference fast path, which packs padded sequences into nested tensors and
    returns zeros at padded positions; mini_dl computes every position, as torch does in
    training or whenever autograd records.

    Shape:
        as :class:`TransformerEncoderLayer`: src ``(S, N, E)`` (``(N, S, E)`` with the layer's
        ``batch_first``) or ``(S, E)``; output the shape of src.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.TransformerEncoderLayer(4, 2, dim_feedforward=8, norm_first=True)
        >>> encoder = dl.TransformerEncoder(layer, num_layers=2, norm=dl.LayerNorm(4))
        >>> encoder(torch.randn(3, 4)).shape, encoder.backward(torch.ones(3, 4)).shape
        (torch.Size([3, 4]), torch.Size([3, 4]))
        >>> list(encoder.state_dict())[-4:]
        ['layers.1.norm2.weight', 'layers.1.norm2.bias', 'norm.weight', 'norm.bias']
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        name = "TransformerEncoder"
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"{name}: encoder_layer must be a mini_dl Module, got "
                            f"{type(encoder_layer).__name__}")
        check_size(name, "num_layers", num_layers)
        if norm is not None and not isinstance(norm, Module):
            raise TypeError(f"{name}: norm must be a mini_dl Module or None, got "
                            f"{type(norm).__name__}")
        self.layers = Sequential(*[copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        self.src_shape = None

    def forward(self, src: torch.Tensor, mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None,
                is_causal: bool | None = None) -> torch.Tensor:
        src = check_tensor(self, "src", src, min_ndim=2)
        self.src_shape = src.shape
        attention = getattr(self.layers[0], "self_attn", None)
        batch_first = src.ndim == 3 and getattr(attention, "batch_first", False)
        is_causal = _is_causal_mask(mask, is_causal, src.shape[1 if batch_first else 0])
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                           is_causal=is_causal)
        return output if self.norm is None else self.norm(output)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        like = next((p.data for p in self.parameters()), None)
        grad_output = check_tensor(self, "grad_output", grad_output,
                                   shape=self.saved("src_shape"), like=like)
        grad = grad_output if self.norm is None else self.norm.backward(grad_output)
        del grad_output  # not held through the layers' backward (unless it is grad)
        self.layers[0].needs_input_grad = self.needs_input_grad  # its input is ours
        for layer in reversed(list(self.layers)):
            grad = layer.backward(grad)
        return grad
