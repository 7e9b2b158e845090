"""mini_dl.init against torch.nn.init: gains, fans, the same numbers under the same seed, the
theoretical standard deviations, and ``initialize`` over whole models."""
from __future__ import annotations

import math

import pytest
import torch

import mini_dl as dl
from mini_dl import init

SHAPES = [(3, 5), (10, 4), (7, 1), (6, 3, 2, 2)]  # the last: a conv weight (out, in, kh, kw)
FILLERS = [  # (name, options): called as init.<name>(tensor, **options) and torch's alike
    ("uniform_", {"a": -0.5, "b": 2.0}),
    ("normal_", {"mean": 1.0, "std": 0.3}),
    ("xavier_uniform_", {}),
    ("xavier_uniform_", {"gain": 5 / 3}),
    ("xavier_normal_", {}),
    ("xavier_normal_", {"gain": math.sqrt(2)}),
    ("kaiming_uniform_", {}),
    ("kaiming_uniform_", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_uniform_", {"nonlinearity": "relu"}),
    ("kaiming_normal_", {}),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
    ("kaiming_normal_", {"nonlinearity": "relu"}),
]
FILLER_IDS = [f"{name}{options}" for name, options in FILLERS]


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 3),
    ("selu", None)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, options", FILLERS, ids=FILLER_IDS)
def test_same_seed_gives_torch_nn_init_numbers_exactly(name, options, shape, dtype):
    torch.manual_seed(7)
    ours = getattr(init, name)(torch.empty(shape, dtype=dtype), **options)
    torch.manual_seed(7)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=dtype), **options)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("name, options", FILLERS, ids=FILLER_IDS)
def test_parameters_and_generators_are_accepted(name, options):
    parameter = dl.Parameter(torch.empty(4, 6, dtype=torch.float64))
    returned = getattr(init, name)(parameter, **options,
                                   generator=torch.Generator().manual_seed(1))
    theirs = getattr(torch.nn.init, name)(torch.empty(4, 6, dtype=torch.float64), **options,
                                          generator=torch.Generator().manual_seed(1))
    assert returned is parameter and torch.equal(parameter.data, theirs)


def test_zeros_fills_in_place_and_returns_its_argument():
    tensor, parameter = torch.ones(2, 3), dl.Parameter(torch.ones(4))
    assert init.zeros_(tensor) is tensor and init.zeros_(parameter) is parameter
    assert not tensor.any() and not parameter.data.any()


@pytest.mark.parametrize("name, options, expected_std", [
    ("xavier_normal_", {}, math.sqrt(2 / (288 + 576))),
    ("xavier_uniform_", {"gain": 5 / 3}, 5 / 3 * math.sqrt(2 / (288 + 576))),
    ("kaiming_normal_", {"nonlinearity": "relu"}, math.sqrt(2 / 288)),
    ("kaiming_uniform_", {"nonlinearity": "relu", "mode": "fan_out"}, math.sqrt(2 / 576)),
    ("kaiming_normal_", {"a": 0.1}, math.sqrt(2 / (1 + 0.01)) / math.sqrt(288)),
], ids=["xavier-normal", "xavier-uniform-tanh", "he-normal", "he-uniform-fan-out",
        "he-leaky"])
def test_statistics_match_the_theoretical_std(name, options, expected_std):
    # a conv weight (64, 32, 3, 3): fan_in = 32 * 9 = 288, fan_out = 64 * 9 = 576
    torch.manual_seed(0)
    weight = getattr(init, name)(torch.empty(64, 32, 3, 3, dtype=torch.float64), **options)
    # 18,432 draws: the sample std is within ~0.5% (1 sigma) of the true one; allow 3%
    assert weight.std().item() == pytest.approx(expected_std, rel=0.03)
    assert abs(weight.mean().item()) < 0.03 * expected_std * 5
    if "uniform" in name:  # U(-bound, bound) has std = bound / sqrt(3)
        assert weight.abs().max().item() <= math.sqrt(3) * expected_std


def test_kaiming_on_an_empty_tensor_is_a_no_op():
    assert init.kaiming_normal_(torch.empty(0, 3)).shape == (0, 3)


@pytest.mark.parametrize("call, error, match", [
    (lambda: init.calculate_gain("softmax"), ValueError,
     "calculate_gain: unsupported nonlinearity 'softmax'"),
    (lambda: init.calculate_gain("leaky_relu", "0.1"), ValueError,
     "calculate_gain: negative_slope must be a number"),
    (lambda: init.xavier_uniform_(torch.empty(5)), ValueError,
     r"xavier_uniform_: fan_in and fan_out need .* at least 2 dimensions .* got shape \(5,\)"),
    (lambda: init.kaiming_normal_(torch.empty(3)), ValueError,
     "kaiming_normal_: fan_in and fan_out need"),
    (lambda: init.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg"), ValueError,
     "kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got 'fan_avg'"),
    (lambda: init.normal_([1.0, 2.0]), TypeError,
     "normal_: expected a mini_dl Parameter or a floating-point tensor"),
    (lambda: init.uniform_(torch.zeros(3, dtype=torch.int64)), TypeError,
     "uniform_: expected a mini_dl Parameter or a floating-point tensor"),
], ids=["unknown-nonlinearity", "bad-slope", "xavier-1d", "kaiming-1d", "bad-mode", "list",
        "integer-tensor"])
def test_init_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- initialize(model, ...) ------------------------------------------------------------------
def make_model(bias: bool = True):
    float64 = {"dtype": torch.float64}
    return dl.Sequential(dl.Linear(20, 30, bias=bias, **float64), dl.ReLU(),
                         dl.Sequential(dl.Linear(30, 10, **float64), dl.Tanh()),
                         dl.Linear(10, 3, **float64))


def linear_layers(model):
    return [model[0], model[2][0], model[3]]


def test_initialize_default_equals_building_the_model_under_the_seed():
    torch.manual_seed(11)
    fresh = make_model()
    model = make_model()
    state = torch.get_rng_state()
    assert init.initialize(model, "default", seed=11) is model
    assert torch.equal(torch.get_rng_state(), state)  # a seed leaves the global RNG alone
    for ours, expected in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(ours.data, expected.data)


@pytest.mark.parametrize("method, nonlinearity, gain, torch_fill", [
    ("xavier", "relu", None, lambda w, g: torch.nn.init.xavier_normal_(w, generator=g)),
    ("xavier", "relu", 5 / 3,
     lambda w, g: torch.nn.init.xavier_normal_(w, gain=5 / 3, generator=g)),
    ("he", "relu", None,
     lambda w, g: torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)),
    ("he", "tanh", None,
     lambda w, g: torch.nn.init.kaiming_normal_(w, nonlinearity="tanh", generator=g)),
    ("he", "relu", 3.0,
     lambda w, g: torch.nn.init.normal_(w, 0.0, 3.0 / math.sqrt(w.shape[1]), generator=g)),
], ids=["xavier", "xavier-gain", "he-relu", "he-tanh", "he-gain"])
def test_initialize_xavier_and_he_match_torch_nn_init_and_zero_the_biases(
        method, nonlinearity, gain, torch_fill):
    model = make_model()
    init.initialize(model, method, nonlinearity=nonlinearity, gain=gain, seed=5)
    generator = torch.Generator().manual_seed(5)
    for layer in linear_layers(model):
        expected = torch_fill(torch.empty(layer.weight.shape, dtype=torch.float64), generator)
        assert torch.equal(layer.weight.data, expected)
        assert not layer.bias.data.any()


def test_initialize_without_seed_draws_from_the_global_rng():
    model = dl.Linear(8, 4, bias=False)
    torch.manual_seed(2)
    init.initialize(model, "he")
    torch.manual_seed(2)
    expected = torch.nn.init.kaiming_normal_(torch.empty(4, 8), nonlinearity="relu")
    assert torch.equal(model.weight.data, expected)


def test_initialize_on_a_model_without_biases():
    model = make_model(bias=False)
    init.initialize(model, "xavier", seed=0)
    assert model[0].bias is None and model[3].bias.data.abs().sum() == 0


def test_he_keeps_the_activation_scale_through_a_deep_relu_stack_and_xavier_does_not():
    torch.manual_seed(0)
    layers = []
    for _ in range(10):
        layers += [dl.Linear(256, 256), dl.ReLU()]
    model = dl.Sequential(*layers).double()
    x = torch.randn(2000, 256, dtype=torch.float64)
    second_moments = {}
    for method in ("he", "xavier"):
        init.initialize(model, method, seed=1)
        second_moments[method] = model(x).square().mean().item()
    # He: E[x^2] is preserved layer to layer (here 1); Xavier (gain 1): halved by each ReLU
    assert 0.5 < second_moments["he"] < 2
    assert second_moments["xavier"] == pytest.approx(2.0 ** -10, rel=0.5)


@pytest.mark.parametrize("arguments, error, match", [
    ((make_model(), "kaiming"), ValueError,
     r"method must be one of \('default', 'xavier', 'he'\), got 'kaiming'"),
    ((make_model(), "he", "swish"), ValueError, r"nonlinearity must be one of \('linear',.*got 'swish'"),
    ((make_model(), "xavier", "relu", -1.0), ValueError, "gain must be a positive number"),
    ((make_model(), "he", "relu", None, "0"), TypeError, "seed must be an int or None"),
    ((torch.nn.Linear(2, 2), "he"), TypeError, "model must be a mini_dl Module, got Linear"),
    ((dl.Sequential(dl.ReLU()), "he"), ValueError, "Sequential contains no Linear layer"),
], ids=["bad-method", "bad-nonlinearity", "negative-gain", "string-seed", "torch-model",
        "no-linear"])
def test_initialize_errors(arguments, error, match):
    with pytest.raises(error, match=f"initialize: {match}"):
        init.initialize(*arguments)
