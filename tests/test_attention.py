"""MultiheadAttention (mini_dl/attention.py) against torch.nn.MultiheadAttention in float64:
values, attention weights, the three input gradients and every parameter gradient, over the
options (batch_first, bias, kdim/vdim, need_weights, average_attn_weights, masks bool/float
2-D/3-D, key_padding_mask, is_causal, unbatched, self-attention); initialisation, errors."""
from __future__ import annotations

import itertools

import pytest
import torch

from mini_dl.attention import (
    MultiheadAttention,
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)

F64 = torch.float64
TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}  # float64: two orders of summation, ~1e-16 apart
E, H, L, S, N = 4, 2, 3, 5, 2


def twins(seed=0, **kwargs):
    torch.manual_seed(seed)
    ours = MultiheadAttention(E, H, dtype=F64, **kwargs)
    torch.manual_seed(seed)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=F64, **kwargs)
    return ours, theirs


def compare(ours, theirs, query, key, value, self_attention=False, **forward):
    gen = torch.Generator().manual_seed(1)
    leaves = [t.clone().requires_grad_() for t in (query, key, value)]
    if self_attention:
        leaves = [leaves[0]] * 3
    out, weights = theirs(*leaves, **forward)
    grad = torch.randn(out.shape, generator=gen, dtype=F64)
    out.backward(grad)
    ours_out, ours_weights = ours.forward(*([query] * 3 if self_attention else (query, key, value)),
                                  **forward)
    torch.testing.assert_close(ours_out, out.detach(), equal_nan=True, **TOLERANCE)
    if weights is None:
        assert ours_weights is None
    else:
        torch.testing.assert_close(ours_weights, weights.detach(), equal_nan=True, **TOLERANCE)
    grads = ours.backward(grad)
    if self_attention:
        torch.testing.assert_close(sum(grads), leaves[0].grad, equal_nan=True, **TOLERANCE)
    else:
        for mine, leaf in zip(grads, leaves):
            torch.testing.assert_close(mine, leaf.grad, equal_nan=True, **TOLERANCE)
    mine = dict(ours.named_parameters())
    for name, parameter in theirs.named_parameters():
        torch.testing.assert_close(mine[name].grad, parameter.grad, equal_nan=True, **TOLERANCE)


def inputs(kdim=E, vdim=E, batch_first=False, batched=True, seed=2):
    gen = torch.Generator().manual_seed(seed)

    def make(length, dim):
        shape = ((N, length, dim) if batch_first else (length, N, dim)) if batched else (
            length, dim)
        return torch.randn(shape, generator=gen, dtype=F64)
    return make(L, E), make(S, kdim), make(S, vdim)


def masks(kind, batched=True):
    gen = torch.Generator().manual_seed(3)
    if kind is None:
        return None
    shape = (L, S) if kind[1] == 2 else (N * H if batched else H, L, S)
    allowed = torch.rand(shape, generator=gen) > 0.3
    allowed[..., 0] = True  # no fully masked row here
    if kind[0] == "bool":
        return ~allowed
    return torch.zeros(shape, dtype=F64).masked_fill(~allowed, float("-inf")) + torch.randn(
        shape, generator=gen, dtype=F64) * 0.1


def padding(kind, batched=True):
    if kind is None:
        return None
    keep = torch.tensor([[False, False, True, False, True], [False, True, False, False, False]])
    keep = keep if batched else keep[0]
    return keep if kind == "bool" else torch.zeros(keep.shape, dtype=F64).masked_fill(
        keep, float("-inf"))


@pytest.mark.parametrize("batch_first, bias, dims, batched", list(itertools.product(
    [False, True], [True, False], [(E, E), (3, 5)], [True, False])))
@pytest.mark.parametrize("need_weights, average", [(True, True), (True, False), (False, True)])
def test_multihead_attention_matches_torch(batch_first, bias, dims, batched, need_weights,
                                           average):
    ours, theirs = twins(bias=bias, kdim=dims[0], vdim=dims[1], batch_first=batch_first)
    compare(ours, theirs, *inputs(*dims, batch_first, batched), need_weights=need_weights,
            average_attn_weights=average)


@pytest.mark.parametrize("mask_kind", [None, ("bool", 2), ("float", 2), ("bool", 3),
                                       ("float", 3)])
@pytest.mark.parametrize("padding_kind", [None, "bool", "float"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_multihead_attention_masks_match_torch(mask_kind, padding_kind, need_weights, batched):
    if mask_kind is not None and padding_kind is not None and (
            mask_kind[0] == "bool") != (padding_kind == "bool"):
        pytest.skip("torch warns: mismatched mask types are deprecated")
    ours, theirs = twins()
    compare(ours, theirs, *inputs(batched=batched), attn_mask=masks(mask_kind, batched),
            key_padding_mask=padding(padding_kind, batched), need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [False, True])
def test_is_causal_is_a_hint_as_in_torch(need_weights, with_padding):
    ours, theirs = twins()
    query = inputs()[0]
    causal = torch.ones(L, L, dtype=torch.bool).tril().logical_not()
    keys = padding("bool")[:, :L] if with_padding else None
    compare(ours, theirs, query, query, query, self_attention=True, attn_mask=causal,
            is_causal=True, need_weights=need_weights, key_padding_mask=keys)
    with pytest.raises(RuntimeError, match="MultiheadAttention: is_causal=True needs attn_mask"):
        ours.forward(query, query, query, is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
def test_a_fully_masked_row_gives_what_torch_gives(need_weights):
    """NaN through torch's softmax with need_weights, 0 through its safe softmax without."""
    ours, theirs = twins()
    mask = torch.zeros(L, S, dtype=torch.bool)
    mask[1] = True
    compare(ours, theirs, *inputs(), attn_mask=mask, need_weights=need_weights)


def test_self_attention_with_the_same_tensor_matches_torch():
    for batch_first in (False, True):
        ours, theirs = twins(batch_first=batch_first)
        query = inputs(batch_first=batch_first)[0]
        compare(ours, theirs, query, query, query, self_attention=True)


def test_initialisation_and_state_dict_keys_are_torchs():
    for kwargs in ({}, {"kdim": 3, "vdim": 5}, {"bias": False}):
        ours, theirs = twins(**kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (_, mine), (_, torchs) in zip(ours.state_dict().items(),
                                          theirs.state_dict().items()):
            torch.testing.assert_close(mine, torchs, rtol=1e-15, atol=1e-15)  # a few ulps
        theirs.load_state_dict(ours.state_dict())
        ours.load_state_dict({k: v.clone() * 2 for k, v in theirs.state_dict().items()})
        torch.testing.assert_close(ours.in_proj_bias.data if ours.in_proj_bias else
                                   ours.out_proj.weight.data, 2 * (
                                       theirs.in_proj_bias if ours.in_proj_bias else
                                       theirs.out_proj.weight).detach())


def test_dropout_drops_attention_weights_with_a_cached_mask():
    ours, _ = twins(dropout=0.5)
    query, key, value = inputs()
    torch.manual_seed(5)
    _, weights = ours.forward(query, key, value, average_attn_weights=False)
    assert (weights == 0).any() and ((weights == 0) | (weights > 0)).all()
    grad = torch.randn(L, N, E, dtype=F64)
    first = ours.backward(grad)
    second = ours.backward(grad)  # the same mask: repeatable
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    ours.eval()
    _, theirs = twins(dropout=0.5)
    theirs.eval()
    theirs.load_state_dict(ours.state_dict())
    ours.zero_grad()
    compare(ours, theirs, query, key, value)


@pytest.mark.parametrize("build, message", [
    (lambda: MultiheadAttention(5, 2), "embed_dim must be divisible by num_heads"),
    (lambda: MultiheadAttention(4, 2, add_bias_kv=True), "add_bias_kv and add_zero_attn"),
    (lambda: MultiheadAttention(4, 2, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
])
def test_constructor_refuses_bad_arguments(build, message):
    with pytest.raises(ValueError, match=f"MultiheadAttention: {message}"):
        build()


def test_forward_refuses_bad_inputs_naming_itself():
    ours, _ = twins()
    query, key, value = inputs()
    with pytest.raises(ValueError, match="MultiheadAttention: query must have 4 features"):
        ours.forward(query[..., :3], key, value)
    with pytest.raises(ValueError, match="MultiheadAttention: key and value must have"):
        ours.forward(query, key[:4], value)
    with pytest.raises(ValueError, match="all be 3-D"):
        ours.forward(query, key[0], value)
    with pytest.raises(TypeError, match="MultiheadAttention: query must have dtype"):
        ours.forward(query.float(), key, value)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 5\)"):
        ours.forward(query, key, value, attn_mask=torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 5\)"):
        ours.forward(query, key, value, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="MultiheadAttention: attn_mask must have dtype"):
        ours.forward(query, key, value, attn_mask=torch.zeros(3, 5, dtype=torch.float32))
    ours.forward(query, key, value)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(3, 2, 4\)"):
        ours.backward(torch.zeros(2, 3, 4, dtype=F64))


def test_a_wrong_backward_is_caught_by_the_comparison():
    class Wrong(MultiheadAttention):  # forgets the softmax's row term
        def backward(self, grad_output):
            grads = super().backward(grad_output)
            return tuple(g * (1 + 1e-4) for g in grads)

    torch.manual_seed(0)
    wrong = Wrong(E, H, dtype=F64)
    _, theirs = twins()
    with pytest.raises(AssertionError):
        compare(wrong, theirs, *inputs())


@pytest.mark.parametrize("kwargs", [{}, {"kdim": 3, "vdim": 5}, {"bias": False},
                                    {"batch_first": True, "dropout": 0.1}], ids=str)
def test_state_dict_moves_both_ways_through_torch_twin(kwargs):
    import torch_twin
    ours, _ = twins(**kwargs)
    twin = torch_twin.to_torch(ours)
    assert isinstance(twin, torch.nn.MultiheadAttention)
    assert list(twin.state_dict()) == list(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=F64, **kwargs)
    back = torch_twin.from_torch(theirs)
    assert isinstance(back, MultiheadAttention)
    assert (back.kdim, back.vdim, back.batch_first, back.dropout) == (
        theirs.kdim, theirs.vdim, theirs.batch_first, theirs.dropout)
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)
    twin.eval()
    compare(ours.eval(), twin, *inputs(kdim=ours.kdim, vdim=ours.vdim,
                                       batch_first=ours.batch_first))


def test_finite_differences_and_autograd_agree_through_check_gradients():
    """check_gradients differentiates one output: the attention output (through a torch
    counterpart returning it alone), with respect to query, key and value and every parameter."""
    import mini_dl as dl

    class Output(MultiheadAttention):
        def forward(self, query, key, value):
            return super().forward(query, key, value, None, False)[0]

    class TorchOutput(torch.nn.MultiheadAttention):
        def forward(self, query, key, value):
            return super().forward(query, key, value, need_weights=False)[0]

    for kwargs in ({}, {"kdim": 3, "vdim": 2, "bias": False}):
        torch.manual_seed(0)
        module = Output(E, H, **kwargs)
        reference = TorchOutput(E, H, dtype=F64, **kwargs)
        report = dl.check_gradients(module, (L, N, E), (S, N, module.kdim), (S, N, module.vdim),
                                    reference=reference, wrt=(0, 1, 2))
        assert report.passed, report


@pytest.mark.parametrize("zero_masked_rows", [False, True])
def test_the_function_works_in_place_and_still_under_autograd(zero_masked_rows):
    # In a training step the softmax runs in the scores' own tensor; called on tensors that
    # autograd tracks, it must keep what autograd needs: the same output, and autograd's
    # gradients equal to the hand-written backward (masked positions and an all-masked row too).
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 5, generator=generator, dtype=torch.float64) for _ in range(3))
    mask = torch.zeros(4, 4, dtype=torch.float64).masked_fill_(
        torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf"))
    if zero_masked_rows:
        mask[1] = float("-inf")  # a row with no allowed position: weights 0
    out, weights = scaled_dot_product_attention(q, k, v, mask, zero_masked_rows=zero_masked_rows)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    tracked_out, tracked_weights = scaled_dot_product_attention(
        *leaves, mask, zero_masked_rows=zero_masked_rows)
    if not zero_masked_rows:
        assert torch.equal(out, tracked_out.detach()) and torch.equal(weights, tracked_weights)
        grad_output = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        tracked_out.backward(grad_output)
        ours = scaled_dot_product_attention_backward(grad_output, q, k, v, weights)
        for leaf, gradient in zip(leaves, ours):
            assert torch.allclose(leaf.grad, gradient, rtol=1e-12, atol=1e-12)
    else:  # the all-masked row: weights 0 (not NaN, as torch's softmax would give)
        assert torch.equal(out, tracked_out.detach()) and not weights[:, 1].any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_whose_exp_would_be_subnormal_are_tiny_and_masked_ones_exactly_zero(dtype):
    # exp's arguments are clamped where exp stops giving normal numbers (torch's exp is slow
    # there): such weights are a tiny normal number, not torch's subnormal or 0; masked ones 0
    q = torch.tensor([[[1.0], [1.0]]], dtype=dtype)
    k = torch.tensor([[[0.0], [-1e4], [5.0]]], dtype=dtype)  # spreads far beyond exp's range
    v = torch.randn(1, 3, 2, dtype=dtype)
    mask = torch.tensor([[0.0, 0.0, float("-inf")]], dtype=dtype)  # key 2: masked for both
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = torch.softmax(q @ k.transpose(1, 2) + mask, -1)
    tiny = torch.finfo(dtype).tiny
    assert torch.allclose(weights, expected, rtol=0, atol=1e3 * tiny)
    assert weights[0, 0, 2] == 0 and 0 < weights[0, 0, 1] < 1e3 * tiny
    assert torch.equal(weights.sum(-1), torch.ones(1, 2, dtype=dtype))
    _, grad_k, grad_v = scaled_dot_product_attention_backward(torch.ones_like(out), q, k, v,
                                                              weights)
    assert not grad_k[0, 2].any() and not grad_v[0, 2].any()  # a masked key: no gradient
    assert torch.allclose(out, expected @ v, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_released_caches_recompute_the_weights_bit_for_bit(dropout):
    # retain_caches(False): the weights are not kept after forward; backward computes them
    # again from q, k and the mask, and the gradients are the same bits
    E, H, L, N = 6, 2, 5, 3
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(L, N, E, generator=generator, dtype=F64)
    grad_output = torch.randn(L, N, E, generator=generator, dtype=F64)
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)
    padding = torch.zeros(N, L, dtype=torch.bool)
    padding[0, -2:] = True
    results = []
    for retain in (True, False):
        torch.manual_seed(0)
        module = MultiheadAttention(E, H, dropout=dropout, dtype=F64).retain_caches(retain)
        module(x, x, x, attn_mask=causal, key_padding_mask=padding, need_weights=False)
        assert (module.weights is None) == (not retain)
        grads = module.backward(grad_output)
        results.append((grads, [p.grad.clone() for p in module.parameters()]))
    (kept, kept_params), (recomputed, recomputed_params) = results
    assert all(torch.equal(a, b) for a, b in zip(kept, recomputed))
    assert all(torch.equal(a, b) for a, b in zip(kept_params, recomputed_params))
