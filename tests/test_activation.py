"""The activations against their torch.nn counterparts: ReLU, Tanh, Sigmoid (and their exact
formulas, unchanged), LeakyReLU, ELU, GELU, SiLU, Softplus, Softmax, LogSoftmax, Identity."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin
from mini_dl import activation
from mini_dl.activation import SQRT1_2, TWO_OVER_SQRTPI

ACTIVATIONS = [(dl.ReLU, torch.nn.ReLU), (dl.Tanh, torch.nn.Tanh), (dl.Sigmoid, torch.nn.Sigmoid)]
ACTIVATION_IDS = ["ReLU", "Tanh", "Sigmoid"]
SHAPES = [(), (7,), (4, 3), (2, 3, 5), (2, 1, 3, 2)]
# As conftest.FLOAT64_TOLERANCE: float64 round-off of the same formulas is far below 1e-12.
FLOAT64_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("ours, theirs", ACTIVATIONS, ids=ACTIVATION_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_activation_forward_and_input_gradient_match_autograd(ours, theirs, shape, matches_torch,
                                                              random_tensor):
    # Scaled by 3 so that sigmoid and tanh are also exercised where they saturate.
    x = 3 * random_tensor(*shape, seed=1)
    matches_torch(ours(), x, grad_output=random_tensor(*shape, seed=2))


@settings(max_examples=20, deadline=None)
@given(index=st.integers(0, 2), shape=st.lists(st.integers(1, 5), max_size=4),
       seed=st.integers(0, 2**16))
def test_activation_matches_autograd_on_random_shapes(index, shape, seed, matches_torch,
                                                      random_tensor):
    ours, _ = ACTIVATIONS[index]
    matches_torch(ours(), random_tensor(*shape, seed=seed),
                  grad_output=random_tensor(*shape, seed=seed + 1))


@pytest.mark.parametrize("ours, theirs", ACTIVATIONS, ids=ACTIVATION_IDS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)], ids=str)
def test_activation_passes_gradient_checker_against_torch(ours, theirs, shape):
    report = dl.check_gradients(ours(), shape, reference=theirs())
    assert report.passed, report
    assert [row.name for row in report.rows] == ["output", "input"]


@pytest.mark.parametrize("ours", [a for a, _ in ACTIVATIONS], ids=ACTIVATION_IDS)
def test_activation_has_no_parameters(ours):
    assert list(ours().parameters()) == []
    assert ours().param() == []


def test_relu_gradient_at_zero_is_zero_as_in_torch():
    x = torch.tensor([-1.0, 0.0, 0.0, 2.0], dtype=torch.float64)
    relu = dl.ReLU()
    relu(x)
    grad_input = relu.backward(torch.ones_like(x))
    leaf = x.clone().requires_grad_()
    torch.relu(leaf).backward(torch.ones_like(x))
    assert grad_input.tolist() == leaf.grad.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_activation_repr_matches_torch():
    for ours, theirs in ACTIVATIONS:
        assert repr(ours()) == repr(theirs())


# -- errors ---------------------------------------------------------------------------------

def forward_then_backward(module, grad_output):
    module(torch.zeros(4, 3))
    return module.backward(grad_output)


MISUSES = {
    "non-tensor-input": (lambda m: m([1.0, -1.0]), TypeError,
                         r"{}: input must be a torch.Tensor, got list"),
    "integer-input": (lambda m: m(torch.tensor([1, -1])), TypeError,
                      r"{}: input must be a floating-point tensor, got dtype torch.int64"),
    "gradient-shape": (lambda m: forward_then_backward(m, torch.zeros(3, 4)), ValueError,
                       r"{}: grad_output must have shape \(4, 3\), got \(3, 4\)"),
    "gradient-dtype": (lambda m: forward_then_backward(m, torch.zeros(4, 3, dtype=torch.float64)),
                       TypeError,
                       r"{}: grad_output must have dtype torch.float32 .*got torch.float64"),
    "backward-before-forward": (lambda m: m.backward(torch.zeros(4, 3)), RuntimeError,
                                r"{}: backward called before forward"),
}


@pytest.mark.parametrize("misuse, error, message", MISUSES.values(), ids=MISUSES.keys())
@pytest.mark.parametrize("ours", [a for a, _ in ACTIVATIONS], ids=ACTIVATION_IDS)
def test_activation_errors_name_the_module_and_the_expected_and_received_values(
        ours, misuse, error, message):
    with pytest.raises(error, match=message.format(ours.__name__)):
        misuse(ours())


# -- LeakyReLU, ELU, GELU, SiLU, Softplus, Identity: every argument value -----------------------

# (mini_dl module, torch.nn module) factories, one per argument combination torch documents.
ELEMENTWISE = {
    "LeakyReLU()": (dl.LeakyReLU, torch.nn.LeakyReLU),
    "LeakyReLU(0.2)": (lambda: dl.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    "LeakyReLU(-0.3)": (lambda: dl.LeakyReLU(-0.3), lambda: torch.nn.LeakyReLU(-0.3)),
    "LeakyReLU(0)": (lambda: dl.LeakyReLU(0), lambda: torch.nn.LeakyReLU(0)),
    "ELU()": (dl.ELU, torch.nn.ELU),
    "ELU(0.5)": (lambda: dl.ELU(0.5), lambda: torch.nn.ELU(0.5)),
    "ELU(alpha=2)": (lambda: dl.ELU(alpha=2), lambda: torch.nn.ELU(alpha=2)),
    "GELU()": (dl.GELU, torch.nn.GELU),
    "GELU('tanh')": (lambda: dl.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    "SiLU()": (dl.SiLU, torch.nn.SiLU),
    "Softplus()": (dl.Softplus, torch.nn.Softplus),
    "Softplus(2, 5)": (lambda: dl.Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0)),
    "Softplus(0.5, 1)": (lambda: dl.Softplus(0.5, 1.0), lambda: torch.nn.Softplus(0.5, 1.0)),
    "Softplus(-1.5, 3)": (lambda: dl.Softplus(-1.5, 3), lambda: torch.nn.Softplus(-1.5, 3)),
    "Identity()": (dl.Identity, torch.nn.Identity),
}
SOFTMAXES = {"Softmax": (dl.Softmax, torch.nn.Softmax),
             "LogSoftmax": (dl.LogSoftmax, torch.nn.LogSoftmax)}
# every (shape, dim) pair, negative dims included; a 0-dim tensor has dims -1 and 0
SOFTMAX_DIMS = [(shape, dim) for shape in [(), (5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]
                for dim in range(-max(len(shape), 1), max(len(shape), 1))]


@pytest.mark.parametrize("ours, theirs", ELEMENTWISE.values(), ids=ELEMENTWISE.keys())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_new_activation_forward_and_input_gradient_match_autograd(ours, theirs, shape,
                                                                  matches_torch, random_tensor):
    # Scaled by 4 so that every Softplus above has entries on both sides of its threshold.
    x = 4 * random_tensor(*shape, seed=3)
    module = ours()
    assert repr(torch_twin.to_torch(module)) == repr(theirs())  # the twin matches_torch uses
    matches_torch(module, x, grad_output=random_tensor(*shape, seed=4))


@pytest.mark.parametrize("ours, theirs", SOFTMAXES.values(), ids=SOFTMAXES.keys())
@pytest.mark.parametrize("shape, dim", SOFTMAX_DIMS, ids=str)
def test_softmax_matches_autograd_over_every_dim(ours, theirs, shape, dim, matches_torch,
                                                 random_tensor):
    matches_torch(ours(dim), 3 * random_tensor(*shape, seed=5),
                  grad_output=random_tensor(*shape, seed=6))


@settings(max_examples=20, deadline=None)
@given(log=st.booleans(), shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       data=st.data(), seed=st.integers(0, 2**16))
def test_softmax_matches_autograd_on_random_shapes_and_dims(log, shape, data, seed,
                                                            matches_torch, random_tensor):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    module = dl.LogSoftmax(dim) if log else dl.Softmax(dim)
    matches_torch(module, random_tensor(*shape, seed=seed),
                  grad_output=random_tensor(*shape, seed=seed + 1))


@pytest.mark.parametrize("ours, theirs", ELEMENTWISE.values(), ids=ELEMENTWISE.keys())
@pytest.mark.parametrize("shape", [(), (4, 3), (2, 3, 2)], ids=str)
def test_new_activation_passes_gradient_checker_against_torch(ours, theirs, shape):
    # A tensor rather than a shape for 0-dim input (check_gradients draws shapes with
    # torch.randn(*shape), which an empty shape does not reach).
    report = dl.check_gradients(ours(), torch.randn(shape, generator=torch.Generator().
                                                    manual_seed(7), dtype=torch.float64),
                                reference=theirs())
    assert report.passed, report


@pytest.mark.parametrize("ours, theirs", SOFTMAXES.values(), ids=SOFTMAXES.keys())
@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
def test_softmax_of_nchw_passes_gradient_checker_over_each_dim(ours, theirs, dim):
    report = dl.check_gradients(ours(dim), (2, 3, 2, 3), reference=theirs(dim))
    assert report.passed, report


def test_softmax_backward_is_a_jacobian_vector_product_for_many_classes(random_tensor):
    # C = 200,000: a materialised C x C float64 Jacobian would take 320 GB; the JVP takes O(C).
    x, grad_output = random_tensor(2, 200_000, seed=8), random_tensor(2, 200_000, seed=9)
    for ours, theirs in SOFTMAXES.values():
        module, leaf = ours(dim=1), x.clone().requires_grad_()
        torch.testing.assert_close(module(x), theirs(dim=1)(leaf).detach(), **FLOAT64_TOLERANCE)
        theirs(dim=1)(leaf).backward(grad_output)
        torch.testing.assert_close(module.backward(grad_output), leaf.grad, **FLOAT64_TOLERANCE)


@pytest.mark.parametrize("ours, theirs", SOFTMAXES.values(), ids=SOFTMAXES.keys())
@pytest.mark.parametrize("ndim", range(5))
def test_softmax_without_dim_follows_torch_implicit_choice_and_warns(ours, theirs, ndim,
                                                                     random_tensor):
    x, grad_output = random_tensor(*(3,) * ndim, seed=10), random_tensor(*(3,) * ndim, seed=11)
    module, leaf = ours(), x.clone().requires_grad_()
    with pytest.warns(UserWarning, match=f"{ours.__name__}: implicit dimension choice"):
        output = module(x)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        expected = theirs()(leaf)
    expected.backward(grad_output)
    torch.testing.assert_close(output, expected.detach(), **FLOAT64_TOLERANCE)
    torch.testing.assert_close(module.backward(grad_output), leaf.grad, **FLOAT64_TOLERANCE)


@pytest.mark.parametrize("ours, theirs", SOFTMAXES.values(), ids=SOFTMAXES.keys())
@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((2, 0), 1), ((0,), 0)], ids=str)
def test_softmax_of_an_empty_tensor_is_empty_as_in_torch(ours, theirs, shape, dim):
    module = ours(dim)
    assert module(torch.zeros(shape)).shape == theirs(dim)(torch.zeros(shape)).shape == shape
    assert module.backward(torch.zeros(shape)).shape == shape


def test_softmax_keeps_infinities_as_torch():
    x = torch.tensor([[0.0, -math.inf, 1.0], [-math.inf, -math.inf, 2.0]], dtype=torch.float64)
    for ours, theirs in SOFTMAXES.values():
        torch.testing.assert_close(ours(dim=1)(x), theirs(dim=1)(x), **FLOAT64_TOLERANCE)


# -- at the kinks, exactly as torch ---------------------------------------------------------

def forward_and_backward_of_both(ours, theirs, x, grad_output):
    leaf = x.clone().requires_grad_()
    expected = theirs(leaf)
    expected.backward(grad_output)
    output = ours(x)
    return output, ours.backward(grad_output), expected.detach(), leaf.grad


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.3, 0, 1.5])
def test_leaky_relu_derivative_at_zero_is_the_negative_slope_exactly_as_torch(slope):
    x = torch.tensor([-1.0, -0.0, 0.0, 0.0, 2.0], dtype=torch.float64)
    grad_output = torch.tensor([1.0, 2.0, 3.0, -4.0, 5.0], dtype=torch.float64)
    output, grad, expected, expected_grad = forward_and_backward_of_both(
        dl.LeakyReLU(slope), torch.nn.LeakyReLU(slope), x, grad_output)
    assert torch.equal(output, expected) and torch.equal(grad, expected_grad)
    assert grad[1:4].tolist() == (slope * grad_output[1:4]).tolist()


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_elu_derivative_at_zero_is_alpha_exactly_as_torch(alpha):
    x = torch.tensor([-1.0, -0.0, 0.0, 2.0], dtype=torch.float64)
    grad_output = torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=torch.float64)
    output, grad, expected, expected_grad = forward_and_backward_of_both(
        dl.ELU(alpha), torch.nn.ELU(alpha), x, grad_output)
    assert torch.equal(output[1:], expected[1:]) and torch.equal(grad[1:], expected_grad[1:])
    assert grad[1:3].tolist() == [2 * alpha, 3 * alpha]


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0), (2.0, 1.0)])
def test_softplus_is_linear_strictly_above_its_threshold_exactly_as_torch(beta, threshold):
    at = torch.tensor(threshold / beta, dtype=torch.float64)
    above = torch.nextafter(at, torch.tensor(math.inf, dtype=torch.float64))
    below = torch.nextafter(at, torch.tensor(-math.inf, dtype=torch.float64))
    x = torch.stack([below, at, above, at + 1]).repeat(3)  # 12 entries: vectorised and tail
    grad_output = torch.linspace(1, 2, 12, dtype=torch.float64)
    output, grad, expected, expected_grad = forward_and_backward_of_both(
        dl.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold), x, grad_output)
    assert torch.equal(output, expected) and torch.equal(grad, expected_grad)
    linear = x * beta > threshold  # at the threshold itself: the log branch, as in torch
    assert linear.tolist() == [False, False, True, True] * 3
    assert torch.equal(output[linear], x[linear]) and torch.equal(grad[linear], grad_output[linear])
    assert (grad[~linear] < grad_output[~linear]).all()


def test_softplus_and_silu_stay_finite_for_large_inputs_as_torch():
    x = torch.tensor([-1000.0, -50.0, 50.0, 1000.0], dtype=torch.float64)
    for ours, theirs in [(dl.Softplus(), torch.nn.Softplus()), (dl.SiLU(), torch.nn.SiLU()),
                         (dl.GELU(), torch.nn.GELU()), (dl.GELU("tanh"), torch.nn.GELU("tanh"))]:
        output, grad, expected, expected_grad = forward_and_backward_of_both(
            ours, theirs, x, torch.ones_like(x))
        assert torch.isfinite(output).all() and torch.isfinite(grad).all()
        assert torch.equal(output, expected) and torch.equal(grad, expected_grad)


def gelu_as_written(x, grad_output, approximate):
    """GELU's forward and backward as the docstring writes them, out of place, in torch's order:
    the reference for the in-place rewrite in mini_dl (which must not change one bit)."""
    if approximate == "tanh":
        beta, kappa = math.sqrt(2 / math.pi), 0.044715
        tanh_inner = torch.tanh(dl.GELU.BETA * (x + kappa * (x * x * x)))
        output = 0.5 * x * (1 + tanh_inner)
        derivative = 0.5 * (1 + tanh_inner) + 0.5 * x * (1 - tanh_inner * tanh_inner) * (
            dl.GELU.BETA * (1 + 3 * kappa * (x * x)))
        assert abs(beta - dl.GELU.BETA) < 1e-15
    else:
        output = x * 0.5 * (1 + torch.erf(x * SQRT1_2))
        cdf = 0.5 * (1 + torch.erf(x * SQRT1_2))
        density = (TWO_OVER_SQRTPI * SQRT1_2 * 0.5) * torch.exp(x * x * -0.5)  # 1/sqrt(2 pi)
        derivative = cdf + x * density
    return output, grad_output * derivative


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("copies", [1, 3], ids=["whole", "by blocks"])
def test_gelu_in_place_arithmetic_is_the_formula_bit_for_bit(approximate, dtype, copies):
    # copies=3: more than activation.BLOCK values, computed block by block (a part block last)
    # magnitudes from subnormal to near overflow, both signs, and the special values
    generator = torch.Generator().manual_seed(3)
    exponents = torch.linspace(math.log2(torch.finfo(dtype).tiny) - 20,
                               math.log2(torch.finfo(dtype).max) - 1, 4000, dtype=torch.float64)
    magnitudes = torch.exp2(exponents).to(dtype)
    special = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan], dtype=dtype)
    x = torch.cat([magnitudes, -magnitudes, 6 * torch.randn(20000, generator=generator,
                                                              dtype=dtype), special] * copies)
    assert (x.numel() > activation.BLOCK) == (copies == 3) and x.numel() % activation.BLOCK
    grad_output = torch.randn(x.shape, generator=generator, dtype=dtype)
    x_before, grad_before = x.clone(), grad_output.clone()
    gelu = dl.GELU(approximate)
    output, grad = gelu(x), gelu.backward(grad_output)
    expected, expected_grad = gelu_as_written(x, grad_output, approximate)
    bits = torch.int64 if dtype == torch.float64 else torch.int32
    # NaN payloads may differ between kernels: compare NaN positions, then the other bits
    for ours, theirs in ((output, expected), (grad, expected_grad)):
        assert torch.equal(ours.isnan(), theirs.isnan())
        keep = ~ours.isnan()
        assert torch.equal(ours[keep].view(bits), theirs[keep].view(bits))
    assert torch.equal(x.view(bits), x_before.view(bits))  # inputs untouched
    assert torch.equal(grad_output.view(bits), grad_before.view(bits))
    # backward_ writes the same bits into G itself (the transformer's feed-forward block)
    gelu(x)
    in_place = gelu.backward_(grad_output)
    assert in_place is grad_output
    assert torch.equal(in_place.isnan(), grad.isnan())
    assert torch.equal(in_place[keep].view(bits), grad[keep].view(bits))


def test_gelu_backward_in_place_falls_back_where_it_cannot_write_into_g():
    gelu, x = dl.GELU(), torch.randn(300, 500, dtype=torch.float64)
    gelu(x)
    grad_output = torch.randn(500, 300, dtype=torch.float64).t()  # not contiguous
    expected = gelu.backward(grad_output)
    result = gelu.backward_(grad_output)
    assert result is not grad_output and torch.equal(result, expected)
    with pytest.raises(ValueError, match="GELU: grad_output must have shape"):
        gelu.backward_(torch.ones(3))


# -- caches, repr, twins ------------------------------------------------------------------------

@pytest.mark.parametrize("module, cached", [(dl.LeakyReLU(), "input"), (dl.ELU(), "input"),
                                            (dl.GELU(), "input"), (dl.SiLU(), "input"),
                                            (dl.Softplus(), "input"), (dl.Softmax(1), "output"),
                                            (dl.LogSoftmax(1), "output"), (dl.ReLU(), "output"),
                                            (dl.Tanh(), "output"), (dl.Sigmoid(), "output")],
                         ids=repr)
def test_activation_caches_what_its_backward_needs_and_survives_repeated_backward(
        module, cached, random_tensor):
    x, grad_output = random_tensor(4, 3, seed=12), random_tensor(4, 3, seed=13)
    output = module(x)
    assert module.__dict__[cached] is (x if cached == "input" else output)
    kept = grad_output.clone()
    first = module.backward(grad_output)
    assert torch.equal(module.backward(grad_output), first)  # the cache survives
    assert torch.equal(grad_output, kept)  # G is never modified in place
    module.retain_caches(False)
    module(x)
    module.backward(grad_output)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        module.backward(grad_output)


@pytest.mark.parametrize("ours, theirs", ELEMENTWISE.values(), ids=ELEMENTWISE.keys())
def test_new_activation_repr_matches_torch(ours, theirs):
    assert repr(ours()) == repr(theirs())


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_softmax_repr_matches_torch(dim):
    assert repr(dl.Softmax(dim)) == repr(torch.nn.Softmax(dim))
    assert repr(dl.LogSoftmax(dim=dim)) == repr(torch.nn.LogSoftmax(dim=dim))


def test_identity_ignores_its_arguments_and_passes_tensors_through():
    identity = dl.Identity(54, unused_argument1=0.1, unused_argument2=False)
    x = torch.arange(6).reshape(2, 3)  # any dtype, as torch's
    grad_output = torch.ones(2, 3)
    assert identity(x) is x and identity.backward(grad_output) is grad_output
    assert repr(identity) == repr(torch.nn.Identity(54)) == "Identity()"


TWINS = [(ours(), theirs()) for ours, theirs in ELEMENTWISE.values()] + [
    (dl.Softmax(dim), torch.nn.Softmax(dim)) for dim in (None, 0, -1)] + [
    (dl.LogSoftmax(dim), torch.nn.LogSoftmax(dim)) for dim in (None, 1)]


@pytest.mark.parametrize("ours, theirs", TWINS, ids=lambda m: repr(m))
def test_new_activation_twins_move_both_ways(ours, theirs):
    to_torch, from_torch = torch_twin.to_torch(ours), torch_twin.from_torch(theirs)
    assert type(to_torch) is type(theirs) and type(from_torch) is type(ours)
    assert repr(to_torch) == repr(theirs) and repr(from_torch) == repr(ours)


def test_model_with_every_new_activation_moves_from_torch_and_computes_the_same(random_tensor):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 8), torch.nn.ELU(0.5),
        torch.nn.Linear(8, 8), torch.nn.GELU("tanh"), torch.nn.Linear(8, 8), torch.nn.SiLU(),
        torch.nn.Linear(8, 8), torch.nn.Softplus(2.0, 3.0), torch.nn.Identity(),
        torch.nn.Linear(8, 4), torch.nn.LogSoftmax(dim=1)).double()
    ours = torch_twin.from_torch(theirs)
    x = random_tensor(5, 3, seed=14)
    torch.testing.assert_close(ours(x), theirs(x).detach(), **FLOAT64_TOLERANCE)
    assert repr(ours) == repr(theirs)


# -- the checker bites; the old three keep their exact formulas ---------------------------------

class GELUWithoutDensityTerm(dl.GELU):
    def grad_input(self, grad_output, x):  # G Phi(x): forgets the x phi(x) term
        return grad_output * 0.5 * (1 + torch.erf(x / math.sqrt(2)))


class SoftmaxWithoutCentering(dl.Softmax):
    def grad_input(self, grad_output, output):  # y * G: forgets the - sum(G y) of the Jacobian
        return grad_output * output


@pytest.mark.parametrize("wrong, reference", [(GELUWithoutDensityTerm(), torch.nn.GELU()),
                                              (SoftmaxWithoutCentering(1), torch.nn.Softmax(1))],
                         ids=["GELU", "Softmax"])
def test_a_wrong_activation_backward_fails_the_gradient_checker(wrong, reference):
    report = dl.check_gradients(wrong, (4, 3), reference=reference)
    assert not report.passed
    assert [row.passed for row in report.rows] == [True, False]  # the forward is right


def test_relu_tanh_sigmoid_keep_their_exact_formulas(random_tensor):
    # Committed notebooks print numbers from these three: their results must stay bit-identical.
    x, grad_output = 3 * random_tensor(4, 3, seed=15), random_tensor(4, 3, seed=16)
    for module, output, grad in [
            (dl.ReLU(), x.clamp_min(0), x.clamp_min(0).sign() * grad_output),
            (dl.Tanh(), torch.tanh(x), (1 - torch.tanh(x) ** 2) * grad_output),
            (dl.Sigmoid(), torch.sigmoid(x),
             grad_output * torch.sigmoid(x) * (1 - torch.sigmoid(x)))]:
        assert torch.equal(module(x), output) and torch.equal(module.backward(grad_output), grad)
        assert module.cached == "output"


# -- errors of the new activations ----------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: dl.LeakyReLU(inplace=True), ValueError,
     r"LeakyReLU: inplace must be False, got True: mini_dl never overwrites"),
    (lambda: dl.ELU(1.0, True), ValueError, r"ELU: inplace must be False, got True"),
    (lambda: dl.SiLU(inplace=True), ValueError, r"SiLU: inplace must be False, got True"),
    (lambda: dl.LeakyReLU("0.1"), TypeError, r"LeakyReLU: negative_slope must be a number, got '0.1'"),
    (lambda: dl.ELU(alpha=None), TypeError, r"ELU: alpha must be a number, got None"),
    (lambda: dl.GELU("erf"), ValueError, r"GELU: approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: dl.GELU(approximate=True), ValueError, r"GELU: approximate .* got True"),
    (lambda: dl.Softplus(beta=0), ValueError, r"Softplus: beta must be nonzero"),
    (lambda: dl.Softplus(threshold="20"), TypeError, r"Softplus: threshold must be a number"),
    (lambda: dl.Softmax(1.0), TypeError, r"Softmax: dim must be an int or None, got 1.0"),
    (lambda: dl.LogSoftmax(dim=True), TypeError, r"LogSoftmax: dim must be an int or None"),
], ids=["leaky-inplace", "elu-inplace", "silu-inplace", "slope-type", "alpha-type",
        "gelu-approximate", "gelu-approximate-type", "softplus-beta-zero", "threshold-type",
        "softmax-dim-type", "log-softmax-dim-type"])
def test_new_activation_constructor_errors_name_the_module_and_the_value(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("ours", [dl.Softmax, dl.LogSoftmax], ids=["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, dim, expected", [((4, 3), 2, r"\[-2, 1\]"),
                                                  ((4, 3), -3, r"\[-2, 1\]"),
                                                  ((), 1, r"\[-1, 0\]"),
                                                  ((0, 3), 5, r"\[-2, 1\]")], ids=str)
def test_softmax_dim_out_of_range_is_a_clear_error(ours, shape, dim, expected):
    with pytest.raises(ValueError, match=rf"{ours.__name__}: dim={dim} is out of range for an "
                                         rf"input with {len(shape)} dimension\(s\): expected a "
                                         rf"dim in {expected}"):
        ours(dim)(torch.zeros(shape))


NEW_WITH_FLOAT_INPUT = [dl.LeakyReLU, dl.ELU, dl.GELU, dl.SiLU, dl.Softplus,
                        lambda: dl.Softmax(1), lambda: dl.LogSoftmax(1)]
NEW_IDS = ["LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Softmax", "LogSoftmax"]


@pytest.mark.parametrize("misuse, error, message", MISUSES.values(), ids=MISUSES.keys())
@pytest.mark.parametrize("make, name", list(zip(NEW_WITH_FLOAT_INPUT, NEW_IDS)), ids=NEW_IDS)
def test_new_activation_errors_name_the_module_and_the_expected_and_received_values(
        make, name, misuse, error, message):
    with pytest.raises(error, match=message.format(name)):
        misuse(make())


def test_identity_errors_name_the_module():
    with pytest.raises(TypeError, match=r"Identity: input must be a torch.Tensor, got list"):
        dl.Identity()([1.0])
    with pytest.raises(RuntimeError, match=r"Identity: backward called before forward"):
        dl.Identity().backward(torch.zeros(2))
    with pytest.raises(ValueError, match=r"Identity: grad_output must have shape \(4, 3\), "
                                         r"got \(3, 4\)"):
        forward_then_backward(dl.Identity(), torch.zeros(3, 4))
