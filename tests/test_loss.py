"""MSELoss against torch.nn.MSELoss, both reductions."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

SHAPES = [(1,), (5,), (4, 3), (2, 3, 4)]
REDUCTIONS = ["mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mse_value_and_prediction_gradient_match_autograd(reduction, shape, matches_torch,
                                                          random_tensor):
    prediction, target = random_tensor(*shape, seed=1), random_tensor(*shape, seed=2)
    matches_torch(dl.MSELoss(reduction), prediction, target)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
def test_mse_matches_autograd_on_random_shapes(shape, reduction, seed, matches_torch,
                                               random_tensor):
    matches_torch(dl.MSELoss(reduction), random_tensor(*shape, seed=seed),
                  random_tensor(*shape, seed=seed + 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (6,)], ids=str)
def test_mse_passes_gradient_checker_against_torch(reduction, shape):
    report = dl.check_gradients(dl.MSELoss(reduction), shape, shape,
                                reference=torch.nn.MSELoss(reduction=reduction))
    assert report.passed, report


@pytest.mark.parametrize("upstream", [0.5, 3, torch.tensor(-2.0, dtype=torch.float64)],
                         ids=["float", "int", "0-dim tensor"])
def test_mse_backward_scales_by_an_upstream_gradient_as_autograd(upstream, matches_torch,
                                                                 random_tensor):
    prediction, target = random_tensor(4, 3, seed=1), random_tensor(4, 3, seed=2)
    matches_torch(dl.MSELoss(), prediction, target, grad_output=upstream)


def test_mse_returns_a_zero_dimensional_loss():
    loss = dl.MSELoss()(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
    assert loss.shape == () and loss.item() == 2.5
    assert dl.MSELoss("sum")(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).item() == 5.0


def test_mse_repr_names_the_reduction():
    assert repr(dl.MSELoss("sum")) == "MSELoss(reduction='sum')"


# -- errors ---------------------------------------------------------------------------------

def test_mse_rejects_prediction_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"MSELoss: target must have shape \(4, 2\), got \(4,\)"):
        dl.MSELoss()(torch.zeros(4, 2), torch.zeros(4))


def test_mse_rejects_target_of_another_dtype():
    message = r"MSELoss: target must have dtype torch.float32 .*got torch.float64"
    with pytest.raises(TypeError, match=message):
        dl.MSELoss()(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.float64))


@pytest.mark.parametrize("prediction, target, name", [
    ([1.0], torch.zeros(1), "prediction"), (torch.zeros(1), [1.0], "target")])
def test_mse_rejects_non_tensor_arguments(prediction, target, name):
    with pytest.raises(TypeError, match=rf"MSELoss: {name} must be a torch.Tensor, got list"):
        dl.MSELoss()(prediction, target)


def test_mse_rejects_integer_prediction():
    with pytest.raises(TypeError, match=r"MSELoss: prediction must be a floating-point tensor"):
        dl.MSELoss()(torch.zeros(3, dtype=torch.int64), torch.zeros(3))


def test_mse_rejects_empty_prediction():
    with pytest.raises(ValueError, match=r"MSELoss: prediction is empty \(shape \(0, 2\)\)"):
        dl.MSELoss()(torch.zeros(0, 2), torch.zeros(0, 2))


@pytest.mark.parametrize("reduction", ["none", "MEAN", None, ""])
def test_mse_rejects_invalid_reduction(reduction):
    message = r"MSELoss: reduction must be one of \('mean', 'sum'\), got"
    with pytest.raises(ValueError, match=message):
        dl.MSELoss(reduction)


def test_mse_rejects_non_scalar_upstream_gradient():
    criterion = dl.MSELoss()
    criterion(torch.zeros(4, 2), torch.ones(4, 2))
    message = r"MSELoss: grad_output must have shape \(\), got \(4, 2\)"
    with pytest.raises(ValueError, match=message):
        criterion.backward(torch.ones(4, 2))


def test_mse_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match=r"MSELoss: backward called before forward"):
        dl.MSELoss().backward()
