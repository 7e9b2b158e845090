"""TransformerEncoderLayer and TransformerEncoder (mini_dl/transformer.py) against torch.nn's in
float64: output, input gradient and every parameter gradient over the options (relu/gelu,
norm_first, batch_first, bias, masks bool/float/key padding/is_causal, unbatched, final norm);
initialisation and state_dict keys, torch_twin both ways, dropout, finite differences, errors."""
from __future__ import annotations

import itertools

import pytest
import torch

import mini_dl as dl
import torch_twin

F64 = torch.float64
TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}  # float64: two orders of summation, ~1e-16 apart
E, H, FF, S, N = 4, 2, 6, 3, 2
NESTED = "ignore:enable_nested_tensor is True:UserWarning"  # torch's, at construction

pytestmark = pytest.mark.filterwarnings(NESTED)


def layer_twins(seed=0, **kwargs):
    kwargs.setdefault("dropout", 0.0)
    torch.manual_seed(seed)
    ours = dl.TransformerEncoderLayer(E, H, FF, dtype=F64, **kwargs)
    torch.manual_seed(seed)
    theirs = torch.nn.TransformerEncoderLayer(E, H, FF, dtype=F64, **kwargs)
    return randomized(ours, theirs)


def encoder_twins(num_layers=3, final_norm=False, **kwargs):
    kwargs.setdefault("dropout", 0.0)
    layer = dl.TransformerEncoderLayer(E, H, FF, dtype=F64, **kwargs)
    ours = dl.TransformerEncoder(layer, num_layers,
                                 norm=dl.LayerNorm(E, dtype=F64) if final_norm else None)
    return randomized(ours, torch_twin.to_torch(ours))


def randomized(ours, theirs):
    """Random parameters (ones and zeros in the norms would hide a swapped formula), the same
    in both."""
    gen = torch.Generator().manual_seed(7)
    for value in ours.state_dict().values():
        value.copy_(torch.randn(value.shape, generator=gen, dtype=F64) * 0.5)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def source(batch_first=False, batched=True, seed=2):
    gen = torch.Generator().manual_seed(seed)
    shape = ((N, S, E) if batch_first else (S, N, E)) if batched else (S, E)
    return torch.randn(shape, generator=gen, dtype=F64)


def compare(ours, theirs, src, **masks):
    """Output, input gradient and every parameter gradient, ours vs torch's autograd."""
    leaf = src.clone().requires_grad_()
    out = theirs(leaf, **masks)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    out.backward(grad)
    torch.testing.assert_close(ours(src, **masks), out.detach(), **TOLERANCE)
    torch.testing.assert_close(ours.backward(grad), leaf.grad, **TOLERANCE)
    mine = dict(ours.named_parameters())
    assert list(mine) == [name for name, _ in theirs.named_parameters()]
    for name, parameter in theirs.named_parameters():
        torch.testing.assert_close(mine[name].grad, parameter.grad, **TOLERANCE, msg=name)


@pytest.mark.parametrize("activation, norm_first, batch_first, bias", list(itertools.product(
    ["relu", "gelu"], [False, True], [False, True], [True, False])))
def test_layer_matches_torch_over_the_options(activation, norm_first, batch_first, bias):
    ours, theirs = layer_twins(activation=activation, norm_first=norm_first,
                               batch_first=batch_first, bias=bias)
    compare(ours, theirs, source(batch_first))


def causal(kind):
    above = torch.ones(S, S, dtype=torch.bool).triu(1)
    return above if kind == "bool" else torch.zeros(S, S, dtype=F64).masked_fill(
        above, float("-inf"))


PADDING = torch.tensor([[False, False, True], [False, True, False]])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", [
    {"src_mask": causal("float")},
    {"src_mask": causal("bool")},
    {"src_mask": causal("bool"), "is_causal": True},
    {"src_key_padding_mask": PADDING},
    {"src_mask": causal("bool"), "src_key_padding_mask": PADDING},
    {"src_mask": torch.randn(N * H, S, S, generator=torch.Generator().manual_seed(4),
                             dtype=F64)},  # a float mask per head, added to the scores
], ids=["causal float", "causal bool", "is_causal", "padding", "causal + padding", "3-D float"])
def test_layer_masks_match_torch(norm_first, masks):
    ours, theirs = layer_twins(norm_first=norm_first)
    compare(ours, theirs, source(), **masks)


@pytest.mark.parametrize("norm_first", [False, True])
def test_unbatched_input_matches_torch(norm_first):
    ours, theirs = layer_twins(norm_first=norm_first, activation="gelu")
    compare(ours, theirs, source(batched=False), src_mask=causal("bool"))
    ours, theirs = encoder_twins(2, True, norm_first=norm_first)
    compare(ours, theirs, source(batched=False))


@pytest.mark.parametrize("final_norm", [False, True])
@pytest.mark.parametrize("norm_first, batch_first", [(False, False), (True, True)])
@pytest.mark.parametrize("masks", [{}, {"mask": causal("float")},
                                   {"mask": causal("bool"), "src_key_padding_mask": PADDING}],
                         ids=["none", "causal", "causal + padding"])
def test_encoder_matches_torch(final_norm, norm_first, batch_first, masks):
    ours, theirs = encoder_twins(3, final_norm, norm_first=norm_first, batch_first=batch_first)
    compare(ours, theirs, source(batch_first), **masks)


def test_encoder_detects_a_causal_mask_as_torch():
    from mini_dl.transformer import _is_causal_mask
    for kind in ("bool", "float"):
        assert _is_causal_mask(causal(kind), None, S)
        assert not _is_causal_mask(causal(kind), False, S)
        assert not _is_causal_mask(causal(kind).t(), None, S)
        assert not _is_causal_mask(causal(kind), None, S + 1)
    assert _is_causal_mask(None, True, S) and not _is_causal_mask(None, None, S)


def test_a_seeded_layer_is_torchs_bit_for_bit_and_keys_agree():
    for kwargs in ({}, {"bias": False, "norm_first": True}, {"activation": "gelu"}):
        torch.manual_seed(3)
        ours = dl.TransformerEncoderLayer(E, H, FF, dtype=F64, **kwargs)
        torch.manual_seed(3)
        theirs = torch.nn.TransformerEncoderLayer(E, H, FF, dtype=F64, **kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
        assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    layer = dl.TransformerEncoderLayer(E, H, FF)
    encoder = dl.TransformerEncoder(layer, 2, norm=dl.LayerNorm(E))
    twin = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, FF), 2,
                                       norm=torch.nn.LayerNorm(E))
    assert list(encoder.state_dict()) == list(twin.state_dict())
    first, second = encoder.layers[0], encoder.layers[1]  # deep copies, equal at the start
    assert first is not second and first is not layer
    assert torch.equal(first.linear1.weight.data, second.linear1.weight.data)


@pytest.mark.parametrize("kwargs", [{}, {"activation": "gelu", "norm_first": True,
                                         "batch_first": True, "bias": False},
                                    {"activation": dl.GELU(approximate="tanh")}], ids=str)
def test_state_dict_moves_both_ways_through_torch_twin(kwargs):
    ours = dl.TransformerEncoderLayer(E, H, FF, dropout=0.2, layer_norm_eps=1e-6, **kwargs)
    twin = torch_twin.to_torch(ours)
    assert isinstance(twin, torch.nn.TransformerEncoderLayer)
    back = torch_twin.from_torch(twin)
    assert isinstance(back, dl.TransformerEncoderLayer)
    for model in (twin, back):
        assert list(model.state_dict()) == list(ours.state_dict())
        for key, value in ours.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
    assert (back.norm_first, back.self_attn.batch_first, back.dropout.p, back.norm1.eps,
            type(back.activation), back.linear1.bias is None) == (
        ours.norm_first, ours.self_attn.batch_first, 0.2, 1e-6, type(ours.activation),
        ours.linear1.bias is None)
    encoder = dl.TransformerEncoder(ours, 2, norm=dl.LayerNorm(E))
    twin = torch_twin.to_torch(encoder)
    assert isinstance(twin, torch.nn.TransformerEncoder) and twin.num_layers == 2
    back = torch_twin.from_torch(twin)
    assert isinstance(back, dl.TransformerEncoder) and isinstance(back.norm, dl.LayerNorm)
    for key, value in encoder.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value) and torch.equal(
            back.state_dict()[key], value), key


def test_dropout_is_deterministic_in_eval_and_random_in_training_with_cached_masks():
    ours, theirs = layer_twins(dropout=0.5, norm_first=True)
    src = source()
    torch.manual_seed(0)
    first = ours(src)
    grad = torch.randn(first.shape, dtype=F64)
    backward = ours.backward(grad)
    assert torch.equal(backward, ours.backward(grad))  # the masks are cached: repeatable
    torch.manual_seed(0)
    assert torch.equal(ours(src), first)  # the masks come from the global RNG
    assert not torch.equal(ours(src), first)  # new masks, a new output
    ours.eval()
    assert torch.equal(ours(src), ours(src))
    theirs.eval()
    ours.zero_grad()
    compare(ours, theirs, src)  # eval: dropout is the identity in both


def test_finite_differences_and_autograd_agree_through_check_gradients():
    for norm_first in (False, True):
        torch.manual_seed(0)
        layer = dl.TransformerEncoderLayer(2, 2, 3, dropout=0.0, norm_first=norm_first,
                                           activation="gelu")
        report = dl.check_gradients(layer, (2, 2, 2), reference=torch_twin.to_torch(layer))
        assert report.passed, report
    encoder = dl.TransformerEncoder(layer, 2, norm=dl.LayerNorm(2))
    report = dl.check_gradients(encoder, (2, 2), reference=torch_twin.to_torch(encoder))
    assert report.passed, report


def test_needs_input_grad_false_skips_the_input_gradient_only():
    ours, theirs = layer_twins(norm_first=True)
    compare(ours, theirs, source())
    expected = {name: p.grad.clone() for name, p in ours.named_parameters()}
    for model in (ours, dl.TransformerEncoder(ours, 1)):
        model.zero_grad()
        model.needs_input_grad = False
        model(source())
        assert model.backward(torch.randn(S, N, E, generator=torch.Generator().manual_seed(1),
                                          dtype=F64)) is None
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, expected[name], **TOLERANCE)


def test_a_wrong_backward_is_caught_by_the_comparison():
    class Wrong(dl.TransformerEncoderLayer):  # forgets the identity path of the first block
        def backward(self, grad_output):
            return super().backward(grad_output) - grad_output

    torch.manual_seed(0)
    wrong = Wrong(E, H, FF, dropout=0.0, norm_first=True, dtype=F64)
    ours, theirs = layer_twins(norm_first=True)
    wrong.load_state_dict(ours.state_dict())
    with pytest.raises(AssertionError):
        compare(wrong, theirs, source())


@pytest.mark.parametrize("build, error, message", [
    (lambda: dl.TransformerEncoderLayer(5, 2), ValueError, "d_model must be divisible by nhead"),
    (lambda: dl.TransformerEncoderLayer(4, 2, dropout=1.0), ValueError, "dropout must be"),
    (lambda: dl.TransformerEncoderLayer(4, 2, activation="tanh"), ValueError, "activation"),
    (lambda: dl.TransformerEncoderLayer(4, 2, activation=torch.relu), TypeError, "backward"),
    (lambda: dl.TransformerEncoderLayer(0, 1), ValueError, "d_model must be positive"),
    (lambda: dl.TransformerEncoder(torch.nn.Linear(2, 2), 2), TypeError, "encoder_layer"),
    (lambda: dl.TransformerEncoder(dl.TransformerEncoderLayer(4, 2), 0), ValueError,
     "num_layers must be positive"),
])
def test_constructors_refuse_bad_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_forward_and_backward_refuse_bad_inputs_naming_the_layer():
    ours, _ = layer_twins()
    src = source()
    with pytest.raises(ValueError, match="TransformerEncoderLayer: src must have 4 features"):
        ours(src[..., :3])
    with pytest.raises(ValueError, match="TransformerEncoderLayer: src must be 3-D"):
        ours(src[None])
    with pytest.raises(TypeError, match="TransformerEncoderLayer: src must have dtype"):
        ours(src.float())
    with pytest.raises(RuntimeError, match="TransformerEncoderLayer: is_causal=True needs"):
        ours(src, is_causal=True)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\)"):
        ours(src, src_mask=torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\)"):
        ours(src, src_key_padding_mask=torch.zeros(3, 2, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="TransformerEncoderLayer: backward called before"):
        dl.TransformerEncoderLayer(E, H).backward(src)
    ours(src)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: grad_output must have shape"):
        ours.backward(src[:2])
    encoder = dl.TransformerEncoder(ours, 2)
    with pytest.raises(ValueError, match="TransformerEncoder: src must have at least 2"):
        encoder(src[0, 0])
    encoder(src)
    with pytest.raises(ValueError, match="TransformerEncoder: grad_output must have shape"):
        encoder.backward(src[:2])
