"""Flatten and Unflatten against torch.nn: shapes, values, gradients (a reshape back), negative
dims, reprs, twins and errors."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin

FLATTEN_CASES = [  # (start_dim, end_dim, input shape)
    (1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)), (1, 2, (2, 3, 4, 5)), (-3, -2, (2, 3, 4, 5)),
    (2, 2, (2, 3, 4)), (0, 0, (5,)), (1, -1, (4, 1)), (0, -1, ()), (-1, -1, ()),
]


@pytest.mark.parametrize("start_dim, end_dim, shape", FLATTEN_CASES)
def test_flatten_forward_and_input_gradient_match_autograd(start_dim, end_dim, shape,
                                                           matches_torch, random_tensor):
    flatten = dl.Flatten(start_dim, end_dim)
    x = random_tensor(*shape, seed=1)
    expected_shape = torch.flatten(x, start_dim, end_dim).shape
    matches_torch(flatten, x, grad_output=random_tensor(*expected_shape, seed=2))


UNFLATTEN_CASES = [  # (dim, unflattened_size, input shape)
    (1, (2, 3), (4, 6)), (-1, (2, 2, 2), (3, 8)), (0, [3, 2], (6, 5)), (1, (-1, 4), (2, 8, 3)),
    (1, torch.Size([5, 1]), (2, 5)), (0, (3,), (3,)),
]


@pytest.mark.parametrize("dim, sizes, shape", UNFLATTEN_CASES)
def test_unflatten_forward_and_input_gradient_match_autograd(dim, sizes, shape, matches_torch,
                                                             random_tensor):
    unflatten = dl.Unflatten(dim, sizes)
    x = random_tensor(*shape, seed=1)
    expected_shape = torch.nn.Unflatten(dim, sizes)(x).shape
    matches_torch(unflatten, x, grad_output=random_tensor(*expected_shape, seed=2))


def test_flatten_then_unflatten_is_the_identity_both_ways(random_tensor):
    x = random_tensor(2, 3, 4, seed=1)
    model = dl.Sequential(dl.Flatten(), dl.Unflatten(1, (3, 4)))
    assert torch.equal(model(x), x)
    assert torch.equal(model.backward(x), x)


def test_flatten_passes_gradient_checker_against_torch():
    report = dl.check_gradients(dl.Flatten(1, 2), (2, 3, 4, 2), reference=torch.nn.Flatten(1, 2))
    assert report.passed, report


def test_flatten_backward_is_repeatable_and_leaves_grad_output_alone(random_tensor):
    flatten = dl.Flatten()
    flatten(random_tensor(2, 3, 4, seed=1))
    grad_output = random_tensor(2, 12, seed=2)
    copy = grad_output.clone()
    assert torch.equal(flatten.backward(grad_output), flatten.backward(grad_output))
    assert torch.equal(grad_output, copy)


def test_flatten_releases_its_cache_when_retain_caches_is_false():
    flatten = dl.Flatten().retain_caches(False)
    flatten(torch.zeros(2, 3, 4))
    flatten.backward(torch.zeros(2, 12))
    with pytest.raises(RuntimeError, match="retain_cache is False"):
        flatten.backward(torch.zeros(2, 12))


@pytest.mark.parametrize("module", [dl.Flatten(), dl.Flatten(0, -2), dl.Unflatten(1, (2, 3)),
                                    dl.Unflatten(-1, [4, -1]), dl.Unflatten(0, torch.Size([2]))])
def test_flatten_repr_equals_torch_repr_and_round_trips_through_torch_twin(module):
    twin = torch_twin.to_torch(module)
    assert repr(module) == repr(twin)
    assert repr(torch_twin.from_torch(twin)) == repr(module)


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("module, shape, match", [
    (dl.Flatten(3), (2, 3), (r"Flatten: start_dim=3 is out of range for an input with 2 "
                            r"dimension\(s\): expected a dim in \[-2, 1\]")),
    (dl.Flatten(0, -4), (2, 3, 4), r"end_dim=-4 is out of range .* \[-3, 2\]"),
    (dl.Flatten(), (3,), r"start_dim=1 is out of range for an input with 1 dimension"),
    (dl.Flatten(2, 1), (2, 3, 4), (r"Flatten: start_dim=2 comes after end_dim=1 for an input of "
                                  r"shape \(2, 3, 4\)")),
    (dl.Unflatten(2, (2, 2)), (2, 4), r"Unflatten: dim=2 is out of range"),
    (dl.Unflatten(1, (2, 2)), (2, 3), (r"Unflatten: unflattened_size=\(2, 2\) does not multiply "
                                      r"up to the size 3 of dim 1 of an input of shape \(2, 3\)")),
    (dl.Unflatten(1, (-1, 4)), (2, 6), r"unflattened_size=\(-1, 4\) does not multiply up"),
])
def test_flatten_and_unflatten_reject_dims_and_sizes_that_do_not_fit(module, shape, match):
    with pytest.raises(ValueError, match=match):
        module(torch.zeros(shape))


@pytest.mark.parametrize("build, error, match", [
    (lambda: dl.Flatten(1.0), TypeError, "Flatten: start_dim must be an int"),
    (lambda: dl.Flatten(1, None), TypeError, "Flatten: end_dim must be an int"),
    (lambda: dl.Unflatten("features", (("a", 2),)), TypeError, "Unflatten: dim must be an int"),
    (lambda: dl.Unflatten(1, 6), TypeError, "unflattened_size must be a non-empty tuple"),
    (lambda: dl.Unflatten(1, (2, "3")), TypeError, "unflattened_size must be a non-empty tuple"),
    (lambda: dl.Unflatten(1, ()), TypeError, "unflattened_size must be a non-empty tuple"),
    (lambda: dl.Unflatten(1, (-1, -1)), ValueError, "at most one -1"),
    (lambda: dl.Unflatten(1, (2, -3)), ValueError, "at most one -1"),
])
def test_flatten_and_unflatten_constructors_reject_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_flatten_rejects_grad_output_of_the_wrong_shape_and_non_tensors():
    flatten = dl.Flatten()
    flatten(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"Flatten: grad_output must have shape \(2, 12\), "
                                         r"got \(2, 3, 4\)"):
        flatten.backward(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="Flatten: input must be a torch.Tensor"):
        flatten([1.0, 2.0])
    with pytest.raises(RuntimeError, match="backward called before forward"):
        dl.Unflatten(1, (2, 3)).backward(torch.zeros(2, 2, 3))
