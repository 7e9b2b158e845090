"""Attention: scaled dot-product attention (a function pair, forward and backward) and
MultiheadAttention. torch.nn keeps MultiheadAttention in ``activation.py``; mini_dl's
activation.py is long already, so here attention has a file of its own."""
from __future__ import annotations

import math

import torch

from .layers import Linear
from .module import Module, Parameter, check_size, check_tensor, detached


def _floor(x: torch.Tensor) -> float:
    """The smallest argument whose ``exp`` is a normal number of ``x``'s dtype, with a margin
    (log of the dtype's smallest normal number, plus 0.5): about -86.8 in float32."""
    return math.log(torch.finfo(x.dtype).tiny) + 0.5


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None,
                                 dropout_mask: torch.Tensor | None = None,
                                 zero_masked_rows: bool = False, weights_only: bool = False):
    r"""Attention of queries ``q`` ``(B, L, D)`` over keys ``k`` ``(B, S, D)`` and values ``v``
    ``(B, S, Dv)``:

    .. math:: P = \mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt D} + M\Big), \qquad O = (P \odot R) V

    with ``mask`` M an additive float mask broadcastable to ``(B, L, S)`` (``-inf``: not allowed)
    and ``dropout_mask`` R (scaled by 1 / (1 - p)) or 1. A row whose every entry is ``-inf``
    gives NaN (as torch's softmax), or 0 with ``zero_masked_rows`` (torch's safe softmax of
    ``scaled_dot_product_attention``). Returns ``(O, P)``, P before dropout (P alone with
    ``weights_only``: v is not read). A weight below
    about 2e-38 (float32; exp(-86.8)) is computed as that small normal number times its row's
    1 / sum, where torch's softmax gives a subnormal one or 0 (see the code: torch's exp is
    slow below it); a masked position's weight is exactly 0.

    Example:
        >>> import torch
        >>> q = k = v = torch.eye(2).unsqueeze(0)
        >>> out, weights = scaled_dot_product_attention(q, k, v)
        >>> weights.sum(-1).tolist()
        [[1.0, 1.0]]
    """
    # Every step writes into the scores' own (B, L, S) tensor: each new tensor of that size
    # costs page faults. Where autograd tracks the inputs (the checker differentiating the
    # forward), the steps that it needs undone stay out of place.
    tracked = q.requires_grad or k.requires_grad or (mask is not None and mask.requires_grad)
    scores = torch.bmm(q, k.transpose(1, 2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.add_(mask)  # mask broadcasts to (B, L, S): the scores' own shape
    top = scores.amax(-1, keepdim=True)
    shifted = scores - top if tracked else scores.sub_(top)
    # softmax written out: exp(s - max) / sum. torch's exp takes a slow path (10-300x) for
    # arguments whose exp is not a normal number, -inf included: half the scores under a causal
    # mask. So the arguments are clamped at FLOOR (weights under ~2e-38 become that small
    # normal number instead of a subnormal one) and the masked positions zeroed by a product.
    exp = (shifted.clamp_min(_floor(shifted)) if tracked
           else shifted.clamp_min_(_floor(shifted))).exp_()
    if mask is not None:
        allowed = ~torch.isneginf(mask)  # the mask's own (small) shape: broadcasts
        exp = exp * allowed if tracked else exp.mul_(allowed)
    total = exp.sum(-1, keepdim=True)
    weights = exp / total if tracked else exp.div_(total)
    if zero_masked_rows:
        empty = torch.isneginf(top)  # rows with no allowed position: NaN, made 0
        if tracked:
            weights = torch.where(empty, 0.0, weights)
        elif empty.any():  # a pass over the weights only where a row is empty
            weights.masked_fill_(empty, 0.0)
    if weights_only:
        return weights
    dropped = weights if dropout_mask is None else weights * dropout_mask
    return torch.bmm(dropped, v), weights


def scaled_dot_product_attention_backward(grad_output: torch.Tensor, q: torch.Tensor,
                                          k: torch.Tensor, v: torch.Tensor,
                                          weights: torch.Tensor,
                                          dropout_mask: torch.Tensor | None = None):
    r"""The gradients ``(dQ, dK, dV)`` of :func:`scaled_dot_product_attention` for
    G = dL/dO ``(B, L, Dv)``, with P the forward's weights and R the dropout mask::

        dV = (P * R)^T G                    dP = (G V^T) * R
        dS = P * (dP - sum_j(dP * P))       (softmax backward, row by row)
        dQ = dS K / sqrt(D)                 dK = dS^T Q / sqrt(D)

    A masked position has P = 0, hence dS = 0: it gets no gradient.
    """
    dropped = weights if dropout_mask is None else weights * dropout_mask
    grad_v = torch.bmm(dropped.transpose(1, 2), grad_output)
    grad_p = torch.bmm(grad_output, v.transpose(1, 2))
    if dropout_mask is not None:
        grad_p = grad_p * dropout_mask
    # in grad_p's own tensor (new above): P * (dP - sum_j dP * P)
    grad_s = grad_p.sub_((grad_p * weights).sum(-1, keepdim=True)).mul_(weights)
    scale = 1.0 / math.sqrt(q.shape[-1])
    grad_q = torch.bmm(grad_s, k).mul_(scale)
    grad_k = torch.bmm(grad_s.transpose(1, 2), q).mul_(scale)
    return grad_q, grad_k, grad_v


class MultiheadAttention(Module):
    r"""Multi-head attention, as ``torch.nn.MultiheadAttention``:

    .. math:: \mathrm{head}_h = \mathrm{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{d}} + M\Big) V_h,
              \qquad y = [\mathrm{head}_1, \ldots, \mathrm{head}_H]\, W_o^\top + b_o

    with Q = query W_q^T + b_q, K = key W_k^T + b_k, V = value W_v^T + b_v split into H heads
    of d = embed_dim / H features. Parameters as torch: ``in_proj_weight`` (3E, E) (W_q, W_k,
    W_v stacked) or, when kdim/vdim differ from embed_dim, ``q_proj_weight`` (E, E),
    ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim); ``in_proj_bias`` (3E);
    ``out_proj`` a :class:`Linear` (E, E). Initialisation as torch: out_proj's Linear draws
    first, then ``xavier_uniform_`` of the input projections, biases zero.

    Arguments ``embed_dim``, ``num_heads``, ``dropout`` (on the attention weights, in training
    mode; the mask from the global RNG, as :class:`Dropout`), ``bias``, ``kdim``, ``vdim`` and
    ``batch_first`` are torch's; ``add_bias_kv=True`` and ``add_zero_attn=True`` are refused.

    Backward, with G = dL/dy (the weights output has no gradient): out_proj's backward, then
    :func:`scaled_dot_product_attention_backward` per head, then the projections:
    dW_q = dQ^T query, d query = dQ W_q (and so for k, v); returns (d query, d key, d value):
    self-attention callers add them. The attention weights P (N * H, L, S) are cached for
    backward; after ``retain_caches(False)`` (torch's way of holding memory) they are not, and
    backward computes them again from the cached q, k and mask, bit for bit, as torch's fused
    attention does: L * S values per head less memory, one more product and softmax to compute.

    Shape:
        query (L, N, E) / (N, L, E) with batch_first / (L, E) unbatched; key (S, N, kdim),
        value (S, N, vdim); output as query; weights (N, L, S) averaged or (N, H, L, S).

    Example:
        >>> import torch, mini_dl as dl
        >>> from mini_dl.attention import MultiheadAttention
        >>> attention = MultiheadAttention(4, 2)
        >>> x = torch.randn(3, 1, 4)
        >>> out, weights = attention(x, x, x)
        >>> out.shape, weights.shape
        (torch.Size([3, 1, 4]), torch.Size([1, 3, 3]))
        >>> [g.shape for g in attention.backward(torch.ones(3, 1, 4))][0]
        torch.Size([3, 1, 4])
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        name = "MultiheadAttention"
        self.embed_dim = check_size(name, "embed_dim", embed_dim)
        self.num_heads = check_size(name, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim must be divisible by num_heads, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if add_bias_kv or add_zero_attn:
            raise ValueError(f"{name}: add_bias_kv and add_zero_attn are not supported (use "
                             f"False), got {add_bias_kv} and {add_zero_attn}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1), got {dropout!r}")
        self.kdim = embed_dim if kdim is None else check_size(name, "kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_size(name, "vdim", vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = False
        options = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(torch.empty(3 * embed_dim, embed_dim, **options))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(torch.empty(embed_dim, embed_dim, **options))
            self.k_proj_weight = Parameter(torch.empty(embed_dim, self.kdim, **options))
            self.v_proj_weight = Parameter(torch.empty(embed_dim, self.vdim, **options))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(torch.zeros(3 * embed_dim, **options)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **options)  # draws first
        self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for weight in self._projection_weights():
            fan_out, fan_in = weight.shape
            bound = math.sqrt(3.0) * math.sqrt(2.0 / float(fan_in + fan_out))  # xavier, as torch
            weight.uniform_(-bound, bound)
        if self.in_proj_bias is not None:
            self.in_proj_bias.data.zero_()
            self.out_proj.bias.data.zero_()

    def _projection_weights(self) -> list[torch.Tensor]:
        if self._qkv_same_embed_dim:
            return [self.in_proj_weight.data]
        return [self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data]

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._qkv_same_embed_dim:
            return self.in_proj_weight.data.chunk(3)
        return self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data

    def _mask(self, mask, name, shape, like):
        if mask is None:
            return None
        check_tensor(self, name, mask, floating=False)
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill_(
                mask, float("-inf"))
        check_tensor(self, name, mask, like=like)
        if tuple(mask.shape) not in shape:
            raise ValueError(f"MultiheadAttention: {name} must have shape "
                             f"{' or '.join(map(str, shape))}, got {tuple(mask.shape)}")
        return detached(mask)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        like = self.out_proj.weight.data
        query = check_tensor(self, "query", query, min_ndim=2, last_dim=self.embed_dim,
                             like=like)
        key = check_tensor(self, "key", key, min_ndim=2, last_dim=self.kdim, like=like)
        value = check_tensor(self, "value", value, min_ndim=2, last_dim=self.vdim, like=like)
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 3-D "
                             f"(batched) or 2-D (unbatched), got shapes {tuple(query.shape)}, "
                             f"{tuple(key.shape)}, {tuple(value.shape)}")
        batched = query.ndim == 3
        self._batched = batched
        if not batched:
            query, key, value = query[None], key[None], value[None]
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, length, e = query.shape
        source = key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != n:
            raise ValueError(f"MultiheadAttention: key and value must have the query's batch "
                             f"size and the same sequence length, got shapes (batch first) "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        h, d = self.num_heads, self.head_dim
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal=True needs attn_mask (a hint "
                               "that attn_mask is the causal mask, as torch)")
        padding = self._mask(key_padding_mask, "key_padding_mask",
                             [(n, source)] if batched else [(source,)], like)
        if is_causal and padding is None and not need_weights:  # torch then uses its own
            attn_mask = torch.ones(length, source, dtype=torch.bool,
                                   device=like.device).tril().logical_not()
        mask = self._mask(attn_mask, "attn_mask", [(length, source), (n * h, length, source)],
                          like)
        if mask is not None and mask.ndim == 2:
            mask = mask[None]
        if padding is not None:
            padding = padding.reshape(n, 1, 1, source).expand(n, h, 1, source).reshape(
                n * h, 1, source)
            mask = padding if mask is None else mask + padding
        w_q, w_k, w_v = self._weights()
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.data.chunk(3)
        self.query, self.key, self.value = detached(query), detached(key), detached(value)
        q, k, v = (self._project(x, w, b) for x, w, b in ((query, w_q, b_q), (key, w_k, b_k),
                                                            (value, w_v, b_v)))
        self.q, self.k, self.v = q, k, v
        dropout_mask = None
        if self.training and self.dropout > 0:
            keep = torch.rand((n * h, length, source), dtype=like.dtype, device=like.device)
            dropout_mask = (keep >= self.dropout).to(like.dtype) / (1 - self.dropout)
        self.dropout_mask = dropout_mask
        heads, weights = scaled_dot_product_attention(q, k, v, mask, dropout_mask,
                                                      zero_masked_rows=not need_weights)
        # Kept for backward, or, when caches are released (torch's way of holding memory),
        # recomputed there from q, k and the mask, bit for bit, as torch's fused attention does
        self.mask, self.zero_masked_rows = mask, not need_weights
        self.weights = weights if self.retain_cache else None
        merged = heads.reshape(n, h, length, d).transpose(1, 2).reshape(n, length, e)
        output = self.out_proj(merged)
        if not batched:
            output = output[0]
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if not need_weights:
            return output, None
        returned = weights if dropout_mask is None else weights * dropout_mask
        returned = returned.reshape(n, h, length, source)
        if average_attn_weights:
            returned = returned.mean(1)
        return output, (returned if batched else returned[0])

    def _project(self, x, weight, bias):
        n, length, _ = x.shape
        y = x @ weight.t() if bias is None else torch.addmm(
            bias, x.reshape(-1, x.shape[-1]), weight.t()).reshape(n, length, -1)
        return y.reshape(n, length, self.num_heads, self.head_dim).transpose(1, 2).reshape(
            n * self.num_heads, length, self.head_dim)

    def _merge(self, grad, n):
        length = grad.shape[1]
        return grad.reshape(n, self.num_heads, length, self.head_dim).transpose(1, 2).reshape(
            n, length, self.embed_dim)

    def backward(self, grad_output):
        query, key, value = self.saved("query"), self.saved("key"), self.saved("value")
        q, k, v = self.saved("q"), self.saved("k"), self.saved("v")
        weights = self.__dict__["weights"]
        if weights is None:  # released caches: the forward's weights, computed again
            weights = scaled_dot_product_attention(q, k, v, self.mask, zero_masked_rows=(
                self.zero_masked_rows), weights_only=True)
        elif not self.retain_cache:
            self.weights = None
        batched = self._batched
        n, length, e = query.shape
        expected = ((length, e) if not batched else (n, length, e) if self.batch_first
                    else (length, n, e))
        grad_output = detached(check_tensor(self, "grad_output", grad_output, shape=expected,
                                            like=query))
        if not batched:
            grad_output = grad_output[None]
        elif not self.batch_first:
            grad_output = grad_output.transpose(0, 1)
        # Each intermediate of the size of the activations is let go as soon as it is used (a
        # name holds a tensor until it is rebound or deleted), as autograd frees them
        grad_heads = self.out_proj.backward(grad_output).reshape(
            n, length, self.num_heads, self.head_dim).transpose(1, 2).reshape(
            n * self.num_heads, length, self.head_dim)
        grads = [self._merge(g, n) for g in scaled_dot_product_attention_backward(
            grad_heads, q, k, v, weights, self.dropout_mask)]
        del grad_heads, weights
        inputs = (query, key, value)
        weight_grads = [g.reshape(-1, e).t().mm(x.reshape(-1, x.shape[-1]))
                        for g, x in zip(grads, inputs)]
        if self._qkv_same_embed_dim:
            self.in_proj_weight.accumulate_grad(torch.cat(weight_grads))
        else:
            for parameter, g in zip((self.q_proj_weight, self.k_proj_weight,
                                     self.v_proj_weight), weight_grads):
                parameter.accumulate_grad(g)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate_grad(torch.cat([g.sum((0, 1)) for g in grads]))
        if not self.needs_input_grad:
            return None
        results = []
        for index, w in enumerate(self._weights()):
            g, grads[index] = grads[index], None
            x = g @ w
            results.append(x[0] if not batched else x if self.batch_first
                           else x.transpose(0, 1))
        return tuple(results)

    def extra_repr(self) -> str:
        return ""
