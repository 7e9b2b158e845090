"""Dropout: forward and backward against torch autograd on x * mask / (1 - p) with the mask
reproduced from the seed, keep-rate statistics, eval/p=0 identity, train/eval through containers.

``torch.nn.Dropout`` draws its mask with other calls (same distribution, other numbers), so exact
comparisons rebuild *our* mask the documented way: ``torch.rand(x.shape, dtype=x.dtype) >= p``
after re-seeding the global RNG.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

FLOAT64 = {"rtol": 1e-15, "atol": 0}  # x * (m / (1-p)) vs (x * m) / (1-p): at most 1 ulp apart


def reproduce_mask(shape, p: float, seed: int, dtype=torch.float64) -> torch.Tensor:
    """The boolean keep-mask that Dropout draws right after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return torch.rand(shape, dtype=dtype) >= p


def check_against_autograd(shape, p: float, seed: int, random_tensor):
    x, grad_output = random_tensor(*shape, seed=seed), random_tensor(*shape, seed=seed + 1)
    dropout = dl.Dropout(p)
    torch.manual_seed(seed)
    y = dropout(x)
    grad_input = dropout.backward(grad_output)
    mask = reproduce_mask(shape, p, seed)
    leaf = x.clone().requires_grad_()
    expected = leaf * mask / (1 - p)
    expected.backward(grad_output)
    torch.testing.assert_close(y, expected.detach(), **FLOAT64)
    torch.testing.assert_close(grad_input, leaf.grad, **FLOAT64)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(1,), (7,), (4, 5), (2, 3, 4)], ids=str)
def test_dropout_forward_and_backward_match_autograd_with_the_same_mask(shape, p, random_tensor):
    check_against_autograd(shape, p, seed=3, random_tensor=random_tensor)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       p=st.floats(0.0, 0.95), seed=st.integers(0, 2**16))
def test_dropout_matches_autograd_on_random_shapes(shape, p, seed, random_tensor):
    check_against_autograd(tuple(shape), p, seed, random_tensor)


def test_dropout_passes_the_gradient_checker():
    p, shape = 0.4, (5, 6)
    mask = reproduce_mask(shape, p, seed=0)  # check_gradients seeds 0 before every forward
    report = dl.check_gradients(dl.Dropout(p), shape, reference=lambda x: x * mask / (1 - p))
    assert report.passed, report


def test_dropout_backward_reuses_the_mask_and_is_repeatable(random_tensor):
    dropout = dl.Dropout(0.5)
    y = dropout(torch.ones(50, dtype=torch.float64))
    grad_output = random_tensor(50)
    kept = grad_output.clone()
    first = dropout.backward(grad_output)
    torch.testing.assert_close(first, grad_output * y, rtol=0, atol=0)  # y is the scaled mask
    assert torch.equal(first, dropout.backward(grad_output))
    assert torch.equal(grad_output, kept)


def test_dropout_keep_rate_and_expectation():
    p, n = 0.3, 1_000_000
    torch.manual_seed(0)
    y = dl.Dropout(p)(torch.ones(n, dtype=torch.float64))
    kept = (y != 0).double()
    sigma = (p * (1 - p) / n) ** 0.5  # binomial standard deviation of the kept fraction
    assert abs(kept.mean().item() - (1 - p)) < 5 * sigma
    assert abs(y.mean().item() - 1.0) < 5 * sigma / (1 - p)  # E[y] = x
    assert set(y.unique().tolist()) == {0.0, 1 / (1 - p)}


def test_dropout_masks_differ_between_calls():
    dropout = dl.Dropout(0.5)
    x = torch.ones(100)
    assert not torch.equal(dropout(x), dropout(x))


@pytest.mark.parametrize("make", [lambda: dl.Dropout(0.5).eval(), lambda: dl.Dropout(0.0)],
                         ids=["eval", "p=0"])
def test_dropout_is_identity_in_eval_mode_and_for_p_zero(make, random_tensor):
    dropout, x, grad_output = make(), random_tensor(4, 3), random_tensor(4, 3, seed=1)
    state = torch.get_rng_state()
    assert torch.equal(dropout(x), x)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the RNG
    assert torch.equal(dropout.backward(grad_output), grad_output)
    # the cache does not keep x alive (a residual branch's output is freed after its add)
    assert dropout.mask.untyped_storage().nbytes() == x.element_size()
    with pytest.raises(ValueError, match="Dropout: grad_output must have shape"):
        dropout.backward(torch.ones(3, 4))


def test_float32_mask_is_drawn_in_float32():
    torch.manual_seed(5)
    y = dl.Dropout(0.25)(torch.ones(3, 4))
    assert y.dtype == torch.float32
    assert torch.equal(y != 0, reproduce_mask((3, 4), 0.25, seed=5, dtype=torch.float32))


def test_train_and_eval_reach_every_child_of_a_container():
    inner = dl.Sequential(dl.ReLU(), dl.Dropout(0.5))
    model = dl.Sequential(dl.Linear(3, 4), dl.Dropout(0.2), inner, dl.Linear(4, 2))
    modules = [model, *model, *inner]
    assert model.eval() is model and not any(m.training for m in modules)
    x = torch.randn(5, 3)
    assert torch.equal(model(x), model(x))  # no dropout in eval mode: deterministic
    model.train()
    assert all(m.training for m in modules)
    inner.eval()
    assert model.training and not inner[1].training and model[1].training


def test_dropout_twin_and_repr():
    dropout = dl.Dropout(0.25)
    assert repr(dropout) == "Dropout(p=0.25)"
    assert "(1): Dropout(p=0.5)" in repr(dl.Sequential(dl.Linear(2, 2), dl.Dropout()))
    twin = torch_twin.to_torch(dl.Sequential(dl.Linear(2, 2), dropout).eval())
    assert isinstance(twin[1], torch.nn.Dropout) and twin[1].p == 0.25 and not twin[1].training


@pytest.mark.parametrize("p, error, match", [
    (1.0, ValueError, r"p must be in \[0, 1\), got 1.0"),
    (-0.1, ValueError, r"p must be in \[0, 1\), got -0.1"),
    (1.5, ValueError, r"p must be in \[0, 1\), got 1.5"),
    (float("nan"), ValueError, r"p must be in \[0, 1\), got nan"),
    ("0.5", TypeError, "p must be a number, got '0.5'"),
    (True, TypeError, "p must be a number, got True"),
])
def test_dropout_rejects_bad_p(p, error, match):
    with pytest.raises(error, match=f"Dropout: {match}"):
        dl.Dropout(p)


def test_dropout_rejects_bad_input_and_early_backward():
    dropout = dl.Dropout()
    with pytest.raises(RuntimeError, match="Dropout: backward called before forward"):
        dropout.backward(torch.ones(2))
    with pytest.raises(TypeError, match="Dropout: input must be a torch.Tensor, got list"):
        dropout([1.0, 2.0])
    with pytest.raises(TypeError, match="Dropout: input must be a floating-point tensor"):
        dropout(torch.ones(2, dtype=torch.int64))
    dropout(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"Dropout: grad_output must have shape \(2, 3\), "
                                         r"got \(3, 2\)"):
        dropout.backward(torch.ones(3, 2))
