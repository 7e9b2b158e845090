"""Linear against torch.nn.Linear: values, gradients, initialisation, errors."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

# (input shape, out_features, bias): plain batches, a single row, no batch dimension, and extra
# leading dimensions (N, *, in), which Linear treats as more rows.
SHAPES = [
    ((5, 3), 4, True),
    ((1, 7), 2, True),
    ((6, 3), 1, False),
    ((3,), 5, True),
    ((2, 4, 3), 6, True),
    ((3, 2, 2, 5), 3, False),
]


def linear64(in_features: int, out_features: int, bias: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    return dl.Linear(in_features, out_features, bias, dtype=torch.float64)


@pytest.mark.parametrize("shape, out_features, bias", SHAPES)
def test_linear_forward_input_and_parameter_gradients_match_autograd(
        shape, out_features, bias, matches_torch, random_tensor):
    layer = linear64(shape[-1], out_features, bias)
    x = random_tensor(*shape, seed=1)
    grad_output = random_tensor(*shape[:-1], out_features, seed=2)
    matches_torch(layer, x, grad_output=grad_output)


@settings(max_examples=25, deadline=None)
@given(batch=st.lists(st.integers(1, 4), min_size=1, max_size=3), in_features=st.integers(1, 6),
       out_features=st.integers(1, 6), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_matches_autograd_on_random_shapes(batch, in_features, out_features, bias, seed,
                                                  matches_torch, random_tensor):
    layer = linear64(in_features, out_features, bias, seed)
    x = random_tensor(*batch, in_features, seed=seed + 1)
    matches_torch(layer, x, grad_output=random_tensor(*batch, out_features, seed=seed + 2))


@pytest.mark.parametrize("shape, out_features, bias", SHAPES)
def test_linear_passes_gradient_checker_against_torch_linear(shape, out_features, bias):
    layer = linear64(shape[-1], out_features, bias)
    report = dl.check_gradients(layer, shape,
                                reference=torch.nn.Linear(shape[-1], out_features, bias=bias))
    assert report.passed, report
    expected_rows = ["output", "input", "weight"] + (["bias"] if bias else [])
    assert [row.name for row in report.rows] == expected_rows


def test_linear_output_shape_keeps_leading_dimensions():
    layer = dl.Linear(3, 4)
    assert layer(torch.zeros(2, 5, 3)).shape == (2, 5, 4)
    assert layer.backward(torch.zeros(2, 5, 4)).shape == (2, 5, 3)


# -- initialisation -------------------------------------------------------------------------

@pytest.mark.parametrize("in_features, out_features, bias", [(2, 3, True), (25, 2, True),
                                                             (7, 7, False)])
def test_linear_init_equals_torch_linear_with_the_same_seed(in_features, out_features, bias):
    torch.manual_seed(1234)
    ours = dl.Linear(in_features, out_features, bias)
    torch.manual_seed(1234)
    theirs = torch.nn.Linear(in_features, out_features, bias=bias)
    # Same RNG draws; only the bound is computed differently (kaiming formula vs 1/sqrt(in)),
    # which may change the last bit of the float32 bound: 1e-6 covers that, nothing more.
    torch.testing.assert_close(ours.weight.data, theirs.weight.detach(), rtol=1e-6, atol=1e-7)
    if bias:
        torch.testing.assert_close(ours.bias.data, theirs.bias.detach(), rtol=1e-6, atol=1e-7)
    else:
        assert ours.bias is None and theirs.bias is None


@pytest.mark.parametrize("in_features", [1, 4, 100])
def test_linear_init_lies_within_one_over_sqrt_in_features(in_features):
    torch.manual_seed(0)
    layer = dl.Linear(in_features, 200)
    bound = 1 / math.sqrt(in_features)
    for parameter in layer.parameters():
        assert parameter.data.abs().max() <= bound
        # 200+ uniform draws: the largest lies within 10% of the bound with probability
        # 1 - 0.9^200 ~ 1 - 7e-10, so the bound is the bound, not something smaller.
        assert parameter.data.abs().max() > 0.9 * bound
        assert torch.equal(parameter.grad, torch.zeros_like(parameter.data))


def test_linear_honours_dtype_and_device_arguments():
    layer = dl.Linear(3, 2, dtype=torch.float64, device="cpu")
    for parameter in layer.parameters():
        assert parameter.data.dtype == parameter.grad.dtype == torch.float64
        assert parameter.data.device.type == parameter.grad.device.type == "cpu"
    meta = dl.Linear(3, 2, device="meta")
    assert all(p.data.is_meta and p.grad.is_meta for p in meta.parameters())
    assert dl.Linear(3, 2).weight.data.dtype == torch.get_default_dtype()


def test_linear_forward_follows_its_weight_however_it_changes():
    # forward keeps a transposed view of weight.data: in-place updates, a new data tensor, a
    # cast and a loaded state must all be what the next forward uses
    torch.manual_seed(0)
    layer, x = dl.Linear(3, 2), torch.randn(4, 3)

    def expected():
        return x.to(layer.weight.data.dtype) @ layer.weight.data.t() + layer.bias.data

    layer(x)
    layer.weight.data.mul_(2)  # in place (as every optimizer step)
    assert torch.equal(layer(x), expected())
    layer.weight.data = torch.randn(2, 3)  # a new tensor
    assert torch.equal(layer(x), expected())
    layer.load_state_dict({"weight": torch.ones(2, 3), "bias": torch.zeros(2)})
    assert torch.equal(layer(x), expected())
    layer.double()
    assert torch.equal(layer(x.double()), expected())


def test_linear_repr_names_its_sizes():
    assert repr(dl.Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"
    assert repr(dl.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))


def test_linear_bias_false_has_only_a_weight():
    layer = dl.Linear(3, 2, bias=False)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


# -- errors ---------------------------------------------------------------------------------

def test_linear_rejects_wrong_feature_count():
    message = r"Linear: input must have 3 features .* got shape \(4, 5\)"
    with pytest.raises(ValueError, match=message):
        dl.Linear(3, 2)(torch.zeros(4, 5))


def test_linear_rejects_zero_dimensional_input():
    message = r"Linear: input must have at least 1 dimension.*got shape \(\)"
    with pytest.raises(ValueError, match=message):
        dl.Linear(3, 2)(torch.tensor(1.0))


def test_linear_rejects_input_of_another_dtype():
    message = r"Linear: input must have dtype torch.float32 .*got torch.float64"
    with pytest.raises(TypeError, match=message):
        dl.Linear(3, 2)(torch.zeros(4, 3, dtype=torch.float64))


def test_linear_rejects_integer_input():
    message = r"Linear: input must be a floating-point tensor, got dtype torch.int64"
    with pytest.raises(TypeError, match=message):
        dl.Linear(3, 2)(torch.zeros(4, 3, dtype=torch.int64))


@pytest.mark.parametrize("value", [[[1.0, 2.0, 3.0]], None, 3.0])
def test_linear_rejects_non_tensor_input(value):
    with pytest.raises(TypeError, match=r"Linear: input must be a torch.Tensor, got "):
        dl.Linear(3, 2)(value)


@pytest.mark.parametrize("grad_shape", [(4, 3), (2, 2), (4, 2, 1), (2,)])
def test_linear_rejects_gradient_of_the_wrong_shape(grad_shape):
    layer = dl.Linear(3, 2)
    layer(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"Linear: grad_output must have shape \(4, 2\), got"):
        layer.backward(torch.zeros(grad_shape))


def test_linear_rejects_gradient_of_another_dtype():
    layer = dl.Linear(3, 2)
    layer(torch.zeros(4, 3))
    with pytest.raises(TypeError, match=r"Linear: grad_output must have dtype torch.float32"):
        layer.backward(torch.zeros(4, 2, dtype=torch.float64))


def test_linear_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match=r"Linear: backward called before forward"):
        dl.Linear(3, 2).backward(torch.zeros(4, 2))


@pytest.mark.parametrize("in_features, out_features, error, match", [
    (0, 3, ValueError, r"Linear: in_features must be positive, got 0"),
    (3, -1, ValueError, r"Linear: out_features must be positive, got -1"),
    (2.5, 3, TypeError, r"Linear: in_features must be an int, got float"),
    (True, 3, TypeError, r"Linear: in_features must be an int, got bool"),
    (3, "2", TypeError, r"Linear: out_features must be an int, got str"),
])
def test_linear_rejects_invalid_sizes(in_features, out_features, error, match):
    with pytest.raises(error, match=match):
        dl.Linear(in_features, out_features)


@pytest.mark.parametrize("shape, out_features, bias", SHAPES)
def test_linear_without_input_grad_returns_none_and_the_same_parameter_gradients(
        shape, out_features, bias, random_tensor):
    x, grad_output = random_tensor(*shape, seed=1), random_tensor(*shape[:-1], out_features, seed=2)
    default = linear64(shape[-1], out_features, bias)
    skipping = linear64(shape[-1], out_features, bias)
    skipping.needs_input_grad = False
    assert default.needs_input_grad  # the contract's default: backward returns dL/dx
    default(x)
    default.backward(grad_output)
    skipping(x)
    assert skipping.backward(grad_output) is None
    for ours, theirs in zip(skipping.parameters(), default.parameters()):
        assert torch.equal(ours.grad, theirs.grad)  # the same products, in the same order
