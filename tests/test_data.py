"""The disk data set, one_hot and MiniBatches."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl


def inside_disk(x: torch.Tensor, centre: float) -> torch.Tensor:
    """The label rule, recomputed from the geometry: 1 strictly inside the disk."""
    return ((x.double() - centre).pow(2).sum(1).sqrt() < dl.DISK_RADIUS).long()


# -- disk_dataset ---------------------------------------------------------------------------------

def test_disk_radius_makes_the_disk_cover_half_the_unit_square():
    assert math.isclose(math.pi * dl.DISK_RADIUS ** 2, 0.5, rel_tol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_disk_dataset_shapes_and_dtypes(dtype):
    x, labels = dl.disk_dataset(100, seed=1, dtype=dtype)
    assert x.shape == (100, 2) and x.dtype == dtype
    assert labels.shape == (100,) and labels.dtype == torch.int64
    assert set(labels.tolist()) <= {0, 1}


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-1.0, 1.0), (2.0, 5.0)])
def test_disk_dataset_labels_follow_the_disk_rule(low, high):
    x, labels = dl.disk_dataset(2000, seed=3, low=low, high=high, dtype=torch.float64)
    assert x.min() >= low and x.max() <= high
    assert torch.equal(labels, inside_disk(x, (low + high) / 2))


def test_disk_dataset_float32_labels_follow_the_rule_away_from_the_boundary():
    # Labels are computed before the cast to float32, which moves points by ~6e-8: only points
    # that close to the circle could change side.
    x, labels = dl.disk_dataset(5000, seed=4)
    distance = (x.double() - 0.5).pow(2).sum(1).sqrt()
    clear = (distance - dl.DISK_RADIUS).abs() > 1e-6
    assert torch.equal(labels[clear], inside_disk(x, 0.5)[clear])


def test_disk_dataset_is_deterministic_for_a_seed_and_differs_across_seeds():
    x1, labels1 = dl.disk_dataset(50, seed=7)
    x2, labels2 = dl.disk_dataset(50, seed=7)
    x3, _ = dl.disk_dataset(50, seed=8)
    assert torch.equal(x1, x2) and torch.equal(labels1, labels2)
    assert not torch.equal(x1, x3)


def test_disk_dataset_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    dl.disk_dataset(10, seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("low, high, fraction", [(0.0, 1.0, 1 / 2), (-1.0, 1.0, 1 / 8)])
def test_disk_dataset_class_balance_matches_the_disk_area(low, high, fraction):
    n = 20000
    _, labels = dl.disk_dataset(n, seed=0, low=low, high=high)
    # Binomial standard deviation sqrt(f(1-f)/n) <= 0.0036; 0.015 is more than 4 of them.
    assert abs(labels.double().mean().item() - fraction) < 0.015


@pytest.mark.parametrize("n", [0, -5, 2.5, True, "10"])
def test_disk_dataset_rejects_a_size_that_is_not_a_positive_int(n):
    with pytest.raises(ValueError, match=r"disk_dataset: n must be a positive int, got"):
        dl.disk_dataset(n)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (1.0, 0.0)])
def test_disk_dataset_rejects_an_empty_square(low, high):
    with pytest.raises(ValueError, match=rf"disk_dataset: need low < high, got low={low}"):
        dl.disk_dataset(10, low=low, high=high)


# -- one_hot --------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, num_classes", [([0, 1, 1, 0], None), ([2, 0, 1], 5), ([3], None),
                                                 ([], 4)])
def test_one_hot_equals_torch_one_hot(labels, num_classes):
    labels = torch.tensor(labels, dtype=torch.int64)
    expected = torch.nn.functional.one_hot(labels, -1 if num_classes is None else num_classes)
    result = dl.one_hot(labels, num_classes)
    assert result.dtype == torch.float32
    assert torch.equal(result, expected.float())


def test_one_hot_honours_dtype_and_accepts_int32_labels():
    result = dl.one_hot(torch.tensor([1, 0], dtype=torch.int32), 3, dtype=torch.float64)
    assert result.dtype == torch.float64
    assert result.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


@pytest.mark.parametrize("labels", [torch.tensor([0.0, 1.0]), [0, 1], torch.tensor([True])],
                         ids=["float", "list", "bool"])
def test_one_hot_rejects_labels_that_are_not_an_integer_tensor(labels):
    with pytest.raises(TypeError, match=r"one_hot: labels must be an integer tensor, got"):
        dl.one_hot(labels)


def test_one_hot_rejects_labels_that_are_not_one_dimensional():
    with pytest.raises(ValueError, match=r"one_hot: labels must have shape \(N,\), got \(2, 2\)"):
        dl.one_hot(torch.zeros(2, 2, dtype=torch.int64))


@pytest.mark.parametrize("labels, num_classes, match", [
    ([0, 3], 3, r"one_hot: labels must lie in \[0, 3\), got range \[0, 3\]"),
    ([-1, 1], None, r"one_hot: labels must lie in \[0, 2\), got range \[-1, 1\]"),
])
def test_one_hot_rejects_labels_out_of_range(labels, num_classes, match):
    with pytest.raises(ValueError, match=match):
        dl.one_hot(torch.tensor(labels), num_classes)


@pytest.mark.parametrize("num_classes, error, match", [
    (0, ValueError, r"one_hot: num_classes must be positive, got 0"),
    (2.5, TypeError, r"one_hot: num_classes must be an int, got float"),
    (True, TypeError, r"one_hot: num_classes must be an int, got bool"),
])
def test_one_hot_rejects_invalid_num_classes(num_classes, error, match):
    with pytest.raises(error, match=match):
        dl.one_hot(torch.tensor([0, 1]), num_classes)


def test_one_hot_of_empty_labels_needs_num_classes():
    with pytest.raises(ValueError, match=r"one_hot: cannot infer num_classes from empty labels"):
        dl.one_hot(torch.tensor([], dtype=torch.int64))


# -- MiniBatches ----------------------------------------------------------------------------------

def epoch_indices(batches):
    """The first tensor's entries, in the order one pass over ``batches`` yields them."""
    return [index for batch in batches for index in batch[0].tolist()]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**16))
def test_minibatches_cover_every_index_exactly_once_per_epoch(n, batch_size, seed):
    batches = dl.MiniBatches(torch.arange(n), torch.arange(n) * 10, batch_size=batch_size,
                             seed=seed)
    for _ in range(3):
        sizes = []
        seen = []
        for xb, yb in batches:
            assert torch.equal(yb, xb * 10)  # the tensors stay aligned row by row
            sizes.append(len(xb))
            seen += xb.tolist()
        assert sorted(seen) == list(range(n))
        # Full batches, then the remainder as a last, smaller batch.
        assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size
                                                             else [])
        assert len(batches) == len(sizes) == math.ceil(n / batch_size)


def test_minibatches_yield_the_rows_of_the_epochs_order_for_any_layout_and_dtype():
    # rows of a non-contiguous float tensor, int labels and a 3-D bool tensor, each exactly
    # tensor[index] for the epoch's permutation (drawn from the same seed here)
    x = torch.randn(7, 13, dtype=torch.float64).t()  # (13, 7), not contiguous
    labels, flags = torch.arange(13) * 3, torch.rand(13, 2, 4) > 0.5
    batches = dl.MiniBatches(x, labels, flags, batch_size=5, seed=3)
    order = torch.randperm(13, generator=torch.Generator().manual_seed(3))
    epoch = list(batches)
    assert len(epoch) == 3  # 5 + 5 + 3 rows: none missing from the comparison below
    for start, batch in zip(range(0, 13, 5), epoch):
        index = order[start:start + 5]
        for got, tensor in zip(batch, (x, labels, flags)):
            assert got.dtype == tensor.dtype and torch.equal(got, tensor[index])


def test_minibatches_reshuffle_every_epoch():
    batches = dl.MiniBatches(torch.arange(100), batch_size=10, seed=0)
    first, second = epoch_indices(batches), epoch_indices(batches)
    assert first != second and sorted(first) == sorted(second) == list(range(100))
    assert first != list(range(100))


def test_minibatches_with_the_same_seed_give_the_same_batches():
    def epochs(seed):
        batches = dl.MiniBatches(torch.arange(30), batch_size=7, seed=seed)
        return [[xb.tolist() for (xb,) in batches] for _ in range(3)]

    assert epochs(5) == epochs(5)
    assert epochs(5) != epochs(6)


def test_minibatches_without_shuffle_keep_the_order():
    batches = dl.MiniBatches(torch.arange(5.0), batch_size=2, shuffle=False)
    assert [xb.tolist() for (xb,) in batches] == [[0.0, 1.0], [2.0, 3.0], [4.0]]


def test_minibatches_do_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(dl.MiniBatches(torch.arange(10), batch_size=3, seed=1))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("tensors, error, match", [
    ((), TypeError, r"MiniBatches: expected one or more tensors"),
    (([1, 2, 3],), TypeError, r"MiniBatches: expected one or more tensors"),
    ((torch.zeros(4), torch.zeros(5)), ValueError,
     r"MiniBatches: tensors must share their first dimension, got shapes \[\(4,\), \(5,\)\]"),
    ((torch.tensor(1.0),), ValueError, r"MiniBatches: tensors must share their first dimension"),
])
def test_minibatches_reject_bad_tensors(tensors, error, match):
    with pytest.raises(error, match=match):
        dl.MiniBatches(*tensors, batch_size=2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_minibatches_reject_a_batch_size_that_is_not_a_positive_int(batch_size):
    with pytest.raises(ValueError, match=r"MiniBatches: batch_size must be a positive int, got"):
        dl.MiniBatches(torch.zeros(4), batch_size=batch_size)
