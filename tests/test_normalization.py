"""LayerNorm and GroupNorm against torch.nn: values, gradients, parameters, state_dict, errors;
and the normalisation helper that they share with batch norm."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin
from mini_dl import normalization


def randomised(layer, seed: int = 0):
    """Parameters away from their initial ones and zeros, so that every gradient formula is
    exercised (a weight of ones hides a missing factor)."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in layer.parameters():
        parameter.data.copy_(torch.randn(parameter.shape, generator=generator))
    return layer


# -- the shared algebra ------------------------------------------------------------------------

@pytest.mark.parametrize("shape, dims", [((4, 3, 5), (0, 2)), ((6, 7), (1,)), ((2, 3, 8), (2,))])
def test_normalize_gives_zero_mean_unit_variance_over_its_axes(shape, dims, random_tensor):
    x = random_tensor(*shape) * 4 + 3
    x_hat, mean, var, inv_std, _ = normalization._normalize(x, dims, eps=0.0)
    torch.testing.assert_close(x_hat.mean(dims), torch.zeros_like(x_hat.mean(dims)), atol=1e-14,
                               rtol=0)
    variance = x_hat.var(dims, unbiased=False)
    torch.testing.assert_close(variance, torch.ones_like(variance), atol=1e-13, rtol=0)
    torch.testing.assert_close(var, x.var(dims, unbiased=False, keepdim=True), rtol=1e-13, atol=0)
    torch.testing.assert_close(mean, x.mean(dims, keepdim=True), rtol=1e-14, atol=0)
    assert inv_std.shape == mean.shape


# -- LayerNorm ----------------------------------------------------------------------------------

LAYER_NORM_CASES = [  # (normalized_shape, input shape, elementwise_affine, bias)
    (3, (4, 3), True, True), (3, (3,), True, True), ((2, 3), (2, 2, 3), True, True),
    ((2, 2), (3, 2, 2), True, False), (4, (2, 1, 4), False, True), ([3], (2, 3), True, True),
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("normalized_shape, shape, affine, bias", LAYER_NORM_CASES)
def test_layer_norm_passes_gradient_checker_against_torch(normalized_shape, shape, affine, bias,
                                                          training):
    layer = randomised(dl.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias))
    reference = torch.nn.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias)
    report = dl.check_gradients(layer.train(training), shape, reference=reference)
    assert report.passed, report
    assert [row.name for row in report.rows] == ["output", "input"] + (
        ["weight"] if affine else []) + (["bias"] if affine and bias else [])


@settings(max_examples=25, deadline=None)
@given(leading=st.lists(st.integers(1, 4), min_size=0, max_size=2),
       normalized=st.lists(st.integers(1, 4), min_size=1, max_size=3), affine=st.booleans(),
       bias=st.booleans(), as_int=st.booleans(), seed=st.integers(0, 2**16))
def test_layer_norm_matches_autograd_on_random_shapes(leading, normalized, affine, bias, as_int,
                                                      seed, matches_torch, random_tensor):
    normalized_shape = normalized[0] if as_int and len(normalized) == 1 else tuple(normalized)
    layer = randomised(dl.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias,
                                    dtype=torch.float64), seed)
    shape = (*leading, *normalized)
    x = random_tensor(*shape, seed=seed) * 2 + 1
    matches_torch(layer, x, grad_output=random_tensor(*shape, seed=seed + 1))


def test_layer_norm_stores_torch_attributes_parameters_and_repr():
    for arguments in [(5,), ((2, 3),), ((4,), 1e-3, False), ((3,), 1e-5, True, False)]:
        ours, theirs = dl.LayerNorm(*arguments), torch.nn.LayerNorm(*arguments)
        assert ours.normalized_shape == theirs.normalized_shape
        assert isinstance(ours.normalized_shape, tuple)
        assert (ours.eps, ours.elementwise_affine) == (theirs.eps, theirs.elementwise_affine)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, True)])
def test_layer_norm_state_dict_moves_both_ways(affine, bias, random_tensor):
    ours = randomised(dl.LayerNorm((2, 3), elementwise_affine=affine, bias=bias,
                                   dtype=torch.float64))
    twin = torch_twin.to_torch(ours)
    x = random_tensor(4, 2, 3)
    torch.testing.assert_close(ours(x), twin(x).detach(), rtol=1e-14, atol=1e-14)
    back = torch_twin.from_torch(twin)
    assert back.normalized_shape == (2, 3)
    for key, value in twin.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_layer_norm_refuses_input_that_does_not_end_with_normalized_shape():
    with pytest.raises(ValueError, match=r"LayerNorm: input must end with normalized_shape "
                                         r"\(3, 4\), got shape \(2, 4, 3\)"):
        dl.LayerNorm((3, 4))(torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"normalized_shape \(3,\), got shape \(2,\)"):
        dl.LayerNorm(3)(torch.zeros(2))
    with pytest.raises(TypeError, match="LayerNorm: normalized_shape must be an int or a "
                                        "non-empty tuple"):
        dl.LayerNorm("3")
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be positive"):
        dl.LayerNorm((3, 0))
    with pytest.raises(TypeError, match="LayerNorm: input must have dtype torch.float32"):
        dl.LayerNorm(3)(torch.zeros(2, 3, dtype=torch.float64))
    layer = dl.LayerNorm(3)
    with pytest.raises(RuntimeError, match="LayerNorm: backward called before forward"):
        layer.backward(torch.zeros(2, 3))
    layer(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"LayerNorm: grad_output must have shape \(2, 3\)"):
        layer.backward(torch.zeros(3, 2))


# -- GroupNorm ----------------------------------------------------------------------------------

GROUP_NORM_CASES = [(groups, channels, shape) for channels, shape in
                    [(4, (2, 4, 3)), (6, (2, 6, 2, 2)), (3, (3, 3, 2))]
                    for groups in range(1, channels + 1) if channels % groups == 0]


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("groups, channels, shape", GROUP_NORM_CASES)
def test_group_norm_passes_gradient_checker_against_torch_for_every_group_count(
        groups, channels, shape, affine):
    layer = randomised(dl.GroupNorm(groups, channels, affine=affine))
    report = dl.check_gradients(layer, shape,
                                reference=torch.nn.GroupNorm(groups, channels, affine=affine))
    assert report.passed, report
    assert [row.name for row in report.rows] == ["output", "input"] + (
        ["weight", "bias"] if affine else [])


def test_group_norm_without_bias_passes_gradient_checker_against_torch():
    layer = randomised(dl.GroupNorm(2, 4, bias=False))  # torch 2.13's keyword-only bias
    report = dl.check_gradients(layer, (2, 4, 3), reference=torch.nn.GroupNorm(2, 4, bias=False))
    assert report.passed, report
    assert [row.name for row in report.rows] == ["output", "input", "weight"]


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), group_size=st.integers(1, 3), groups=st.integers(1, 3),
       positions=st.lists(st.integers(1, 3), min_size=0, max_size=2), affine=st.booleans(),
       seed=st.integers(0, 2**16))
def test_group_norm_matches_autograd_on_random_shapes(batch, group_size, groups, positions,
                                                      affine, seed, matches_torch,
                                                      random_tensor):
    channels = groups * group_size
    if group_size * (positions + [1, 1])[0] * (positions + [1, 1])[1] == 1:
        positions = [2]  # one value per group: x_hat is 0, both gradients are round-off
    layer = randomised(dl.GroupNorm(groups, channels, affine=affine, dtype=torch.float64), seed)
    shape = (batch, channels, *positions)
    x = random_tensor(*shape, seed=seed) * 2 - 1
    matches_torch(layer, x, grad_output=random_tensor(*shape, seed=seed + 1))


def test_group_norm_with_one_group_is_layer_norm_over_channels_and_positions(random_tensor):
    x = random_tensor(2, 3, 4)
    torch.testing.assert_close(dl.GroupNorm(1, 3, dtype=torch.float64)(x),
                               dl.LayerNorm((3, 4), dtype=torch.float64)(x), rtol=1e-14,
                               atol=1e-14)


def test_group_norm_stores_torch_attributes_parameters_and_repr(random_tensor):
    for arguments in [(2, 4), (3, 6, 1e-3), (1, 2, 1e-5, False)]:
        ours, theirs = dl.GroupNorm(*arguments), torch.nn.GroupNorm(*arguments)
        assert (ours.num_groups, ours.num_channels, ours.eps, ours.affine) == \
            (theirs.num_groups, theirs.num_channels, theirs.eps, theirs.affine)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
    ours = randomised(dl.GroupNorm(2, 4, dtype=torch.float64))
    twin = torch_twin.to_torch(ours)
    x = random_tensor(3, 4, 2)
    torch.testing.assert_close(ours(x), twin(x).detach(), rtol=1e-14, atol=1e-14)
    back = torch_twin.from_torch(twin)
    for key, value in twin.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_group_norm_refuses_bad_arguments_and_input():
    with pytest.raises(ValueError, match="GroupNorm: num_channels must be divisible by "
                                         "num_groups, got num_channels=5 and num_groups=2"):
        dl.GroupNorm(2, 5)
    with pytest.raises(TypeError, match="GroupNorm: num_groups must be an int"):
        dl.GroupNorm(2.0, 4)
    layer = dl.GroupNorm(2, 4)
    with pytest.raises(ValueError, match=r"GroupNorm: input must have 4 channels \(num_channels\)"
                                         r" in dimension 1, got shape \(2, 3, 5\)"):
        layer(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"GroupNorm: input must have at least 2 dimension\(s\), "
                                         r"got shape \(4,\)"):
        layer(torch.zeros(4))
    with pytest.raises(ValueError, match=r"GroupNorm: expected more than 1 value per group, got "
                                         r"input of shape \(1, 2\) with num_groups=2"):
        dl.GroupNorm(2, 2)(torch.zeros(1, 2))  # as torch, which refuses it too
    layer(torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match=r"GroupNorm: grad_output must have shape \(2, 4, 3\)"):
        layer.backward(torch.zeros(2, 3, 4))


# -- the contract, for both -----------------------------------------------------------------------

LAYERS = [lambda: dl.LayerNorm((2, 3), dtype=torch.float64),
          lambda: dl.GroupNorm(2, 2, dtype=torch.float64)]


@pytest.mark.parametrize("make", LAYERS, ids=["LayerNorm", "GroupNorm"])
@pytest.mark.parametrize("mistake", ["x_hat term", "mean term"])
def test_a_wrong_backward_fails_the_gradient_checker(make, mistake, monkeypatch):
    right = normalization._normalize_backward

    def wrong(grad_output, x_hat, inv_std, dims, weight=None, sums=None, out=None):
        g_hat = grad_output if weight is None else grad_output * weight
        sum_g_hat, sum_g_hat_x_hat = g_hat.sum(dims, True), (g_hat * x_hat).sum(dims, True)
        if mistake == "x_hat term":
            sum_g_hat_x_hat = torch.zeros_like(sum_g_hat_x_hat)
        else:
            sum_g_hat = torch.zeros_like(sum_g_hat)
        return right(grad_output, x_hat, inv_std, dims, weight, (sum_g_hat, sum_g_hat_x_hat), out)

    monkeypatch.setattr(normalization, "_normalize_backward", wrong)
    report = dl.check_gradients(randomised(make()), (3, 2, 3))
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["input"]


@pytest.mark.parametrize("make", LAYERS, ids=["LayerNorm", "GroupNorm"])
def test_backward_contract_repeat_needs_input_grad_set_to_none_and_retain_caches(
        make, random_tensor):
    x, grad_output = random_tensor(3, 2, 3), random_tensor(3, 2, 3, seed=1)
    layer = randomised(make())
    layer(x)
    copy = grad_output.clone()
    first = layer.backward(grad_output)
    assert torch.equal(layer.backward(grad_output), first) and torch.equal(grad_output, copy)
    skipping = randomised(make())
    skipping.needs_input_grad = False
    skipping.zero_grad(set_to_none=True)
    skipping(x)
    assert skipping.backward(grad_output) is None
    for ours, twice in zip(skipping.parameters(), layer.parameters()):
        torch.testing.assert_close(2 * ours.grad, twice.grad, rtol=1e-15, atol=0)
    releasing = randomised(make()).retain_caches(False)
    releasing(x)
    assert torch.equal(releasing.backward(grad_output), first)
    with pytest.raises(RuntimeError, match="retain_cache is False"):
        releasing.backward(grad_output)
