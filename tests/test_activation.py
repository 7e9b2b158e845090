"""ReLU, Tanh and Sigmoid against their torch.nn counterparts."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

ACTIVATIONS = [(dl.ReLU, torch.nn.ReLU), (dl.Tanh, torch.nn.Tanh), (dl.Sigmoid, torch.nn.Sigmoid)]
ACTIVATION_IDS = ["ReLU", "Tanh", "Sigmoid"]
SHAPES = [(), (7,), (4, 3), (2, 3, 5), (2, 1, 3, 2)]


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
