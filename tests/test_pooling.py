"""MaxPool2d, AvgPool2d and AdaptiveAvgPool2d against torch.nn: values and input gradients over
every argument combination, ties routed as torch routes them, the fast max-pool path equal to the
general one bit for bit, reprs, twins, errors and released caches."""
from __future__ import annotations

import re

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

# float64 on both sides, sums in another order: a few ulps (see FLOAT64_TOLERANCE in conftest)
FLOAT64_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}


def torch_accepts(module: torch.nn.Module, shape: tuple) -> bool:
    """Whether torch itself computes an output for this input shape (some argument combinations
    leave an empty output, which both frameworks refuse)."""
    try:
        module(torch.zeros(shape, dtype=torch.float64))
    except RuntimeError:
        return False
    return True


def exact_gradients(module: dl.Module, x: torch.Tensor, grad_output: torch.Tensor):
    """(ours, torch's) input gradients for one forward and backward, no tolerance applied."""
    twin = torch_twin.to_torch(module)
    x_torch = x.clone().requires_grad_()
    twin(x_torch).backward(grad_output)
    module(x)
    return module.backward(grad_output), x_torch.grad


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The float64 tensor's bit patterns (so that 0.0 and -0.0 differ)."""
    return tensor.double().view(torch.int64)


# -- MaxPool2d against autograd ----------------------------------------------------------

MAX_CASES = [  # (kernel_size, stride, padding, dilation, ceil_mode, input shape)
    (2, None, 0, 1, False, (3, 2, 8, 8)),        # LeNet's pool: the fast path
    (2, None, 0, 1, False, (2, 3, 7, 9)),        # fast path on a cropped input
    ((2, 3), (2, 3), 0, 1, False, (2, 2, 6, 9)),  # fast path, rectangular
    (3, 2, 1, 1, False, (2, 3, 9, 8)),           # overlapping windows, padding
    (3, 1, 1, 2, False, (2, 2, 7, 7)),           # dilation
    (2, 2, 1, 1, True, (2, 2, 7, 6)),            # ceil_mode windows sticking out
    (3, 2, 0, 1, True, (1, 3, 8, 8)),            # ceil_mode without padding
    ((3, 2), (1, 2), (1, 0), (1, 2), True, (2, 1, 6, 9)),  # every argument a pair
    (2, 1, 0, 1, False, (3, 5, 6)),              # unbatched (C, H, W)
    (1, 1, 0, 1, False, (2, 2, 3, 3)),           # kernel 1: the identity
]


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode, shape", MAX_CASES)
def test_max_pool_forward_and_input_gradient_match_autograd(kernel, stride, padding, dilation,
                                                            ceil_mode, shape, matches_torch,
                                                            random_tensor):
    pool = dl.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    x = random_tensor(*shape, seed=1)
    out_shape = torch_twin.to_torch(pool)(x).shape
    matches_torch(pool, x, grad_output=random_tensor(*out_shape, seed=2))


@st.composite
def pool_arguments(draw, dilation: bool = True):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, 3, (1, 2)]))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    spacing = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else 1
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    shape = (*batch, draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    return kernel, stride, padding, spacing, draw(st.booleans()), shape


@settings(max_examples=40, deadline=None)
@given(arguments=pool_arguments(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_max_pool_matches_autograd_on_random_arguments_and_ties(arguments, seed, ties,
                                                                matches_torch, random_tensor):
    kernel, stride, padding, dilation, ceil_mode, shape = arguments
    theirs = torch.nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    assume(torch_accepts(theirs, shape))
    x = random_tensor(*shape, seed=seed)
    if ties:  # integers 0..2: most windows hold their maximum more than once
        x = (x * 1.5).round().clamp(0, 2)
    pool = dl.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    pool(x)
    assume(not pool.dropped)  # torch misroutes windows in the padding only: see below
    matches_torch(pool, x, grad_output=random_tensor(*theirs(x).shape, seed=seed + 1))


def test_max_pool_window_in_the_padding_only_outputs_minus_inf_and_drops_its_gradient():
    # with dilation, window (0, 0) of kernel (1, 2), padding (0, 1), dilation (1, 2) reads the
    # columns -1 and 1 of a 1-column input: padding only. Torch outputs -inf there too but
    # sends the gradient to an index one past the row (the next row's first entry, or out of
    # the plane); mini_dl drops it, since that output depends on no input
    pool = dl.MaxPool2d((1, 2), padding=(0, 1), dilation=(1, 2))
    x = torch.tensor([[[1.0], [2.0]]])
    assert pool(x).tolist() == [[[float("-inf")], [float("-inf")]]] and pool.dropped
    assert pool.backward(torch.ones(1, 2, 1)).tolist() == [[[0.0], [0.0]]]
    pool(torch.ones(1, 2, 3))  # three columns: every window reaches column 1
    assert not pool.dropped


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode, shape", MAX_CASES)
@pytest.mark.parametrize("values", ["all equal", "integers"])
def test_max_pool_routes_ties_exactly_as_torch(kernel, stride, padding, dilation, ceil_mode,
                                               shape, values):
    # torch sends each window's gradient to its first maximum in row-major order; with
    # integer-valued G every sum of overlapping contributions is exact, so equality is exact
    generator = torch.Generator().manual_seed(3)
    x = (torch.ones(shape, dtype=torch.float64) if values == "all equal" else
         torch.randint(0, 3, shape, generator=generator).double())
    pool = dl.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    out_shape = torch_twin.to_torch(pool)(x).shape
    grad_output = torch.randint(-5, 6, out_shape, generator=generator).double()
    ours, theirs = exact_gradients(pool, x, grad_output)
    assert torch.equal(ours, theirs)


def test_max_pool_worked_example_by_hand():
    # windows [[1, 2], [4, 3]] and [[0, 0], [0, 5]]; the tie window [[7, 7], [7, 7]] -> first
    x = torch.tensor([[[1., 2., 0., 0., 7., 7.], [4., 3., 0., 5., 7., 7.]]])
    pool = dl.MaxPool2d(2)
    assert pool(x).tolist() == [[[4., 5., 7.]]]
    assert pool.backward(torch.tensor([[[10., 20., 30.]]])).tolist() == \
        [[[0., 0., 0., 0., 30., 0.], [10., 0., 0., 20., 0., 0.]]]


def test_max_pool_overlapping_windows_accumulate_on_a_shared_maximum():
    # kernel 2, stride 1 on [0, 9, 0]: both windows hold the 9, which receives both gradients
    pool = dl.MaxPool2d((1, 2), stride=1)
    pool(torch.tensor([[[0., 9., 0.]]]))
    assert pool.backward(torch.tensor([[[1., 2.]]])).tolist() == [[[0., 3., 0.]]]


def test_max_pool_window_of_minus_infinity_routes_like_torch():
    # with padding, a window whose input values are all -inf has its maximum also in the
    # padding: torch picks the first position inside the input, and so do we
    x = torch.full((1, 1, 5, 5), float("-inf"), dtype=torch.float64)
    x[0, 0, 3, 3] = 1.0
    for pool in (dl.MaxPool2d(3, 2, 1), dl.MaxPool2d(3, 1, 1, dilation=2),
                 dl.MaxPool2d(2, 2, 1, ceil_mode=True)):
        out_shape = torch_twin.to_torch(pool)(x).shape
        ours, theirs = exact_gradients(pool, x, torch.arange(1.0, 1.0 + out_shape.numel(),
                                                             dtype=torch.float64).view(out_shape))
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode, shape", MAX_CASES[:4])
def test_max_pool_passes_gradient_checker_against_torch(kernel, stride, padding, dilation,
                                                        ceil_mode, shape):
    arguments = (kernel, stride, padding, dilation)
    report = dl.check_gradients(dl.MaxPool2d(*arguments, ceil_mode=ceil_mode), shape,
                                reference=torch.nn.MaxPool2d(*arguments, ceil_mode=ceil_mode))
    assert report.passed, report


class SpreadingMaxPool(dl.MaxPool2d):
    """A wrong backward: every window position gets G, not just the maximum."""

    def backward(self, grad_output):
        self.saved("input")
        return grad_output.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)


def test_a_max_pool_that_spreads_the_gradient_fails_the_checker():
    report = dl.check_gradients(SpreadingMaxPool(2), (1, 2, 4, 4))
    assert not report.passed
    assert [row.passed for row in report.rows] == [True, False]


# -- the fast path ------------------------------------------------------------------------

def general(pool: dl.MaxPool2d) -> dl.MaxPool2d:
    """The same pool forced onto the general path."""
    pool._is_fast = lambda: False
    return pool


@pytest.mark.parametrize("kernel, shape", [(2, (4, 6, 28, 28)), (2, (3, 16, 10, 10)),
                                           (2, (2, 3, 7, 9)), ((2, 3), (2, 2, 6, 9)),
                                           (3, (2, 5, 9)), (1, (2, 2, 3, 3)),
                                           ((3, 1), (2, 2, 9, 5)), ((1, 3), (2, 2, 5, 9))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_fast_path_equals_general_path_bit_for_bit(kernel, shape, dtype, ties):
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    if ties:
        x = x.round().clamp(-1, 1)  # three values: ties in most windows
    fast, slow = dl.MaxPool2d(kernel), general(dl.MaxPool2d(kernel))
    output = fast(x)
    assert fast.positions is not None and fast.indices is None  # the fast path was taken
    assert fast.positions.dtype == torch.uint8  # one byte an output, where int64 indices take 8
    assert torch.equal(bits(output), bits(slow(x)))
    # x.round() holds -0.0 and 0.0, equal maxima: both paths keep the first, as torch does
    assert torch.equal(bits(output), bits(torch.nn.MaxPool2d(kernel)(x)))
    assert slow.positions is None and slow.indices is not None
    grad_output = torch.randn(output.shape, generator=generator, dtype=dtype)
    assert torch.equal(bits(fast.backward(grad_output)), bits(slow.backward(grad_output)))


@pytest.mark.parametrize("kernel", [1, 2, (2, 3)])
def test_max_pool_routes_a_nan_window_as_its_docstring_says(kernel):
    # fast path: the window's last position; general path: its first NaN (torch: its last NaN)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.zeros(1, 1, kh, kw)
    x.view(-1)[0] = x.view(-1)[(kh * kw) // 2] = float("nan")
    fast, slow = dl.MaxPool2d(kernel), general(dl.MaxPool2d(kernel))
    assert fast(x).isnan().all() and slow(x).isnan().all()
    ones = torch.ones(1, 1, 1, 1)
    last, first = torch.zeros(kh * kw), torch.zeros(kh * kw)
    last[-1] = first[0] = 1
    assert torch.equal(fast.backward(ones).view(-1), last)
    assert torch.equal(slow.backward(ones).view(-1), first)


@pytest.mark.parametrize("kernel, width, dtype", [(2, 254, torch.uint8), (2, 255, torch.int32),
                                                  (17, 17, torch.int32), ((1, 256), 256, torch.uint8)])
def test_max_pool_offsets_take_a_byte_while_the_largest_fits(kernel, width, dtype):
    # the largest offset from a window's corner is (kH - 1) W + kW - 1: 255 fits a byte, 256 not
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(2, 1, kh * 2, width, generator=torch.Generator().manual_seed(3))
    fast, slow = dl.MaxPool2d(kernel), general(dl.MaxPool2d(kernel))
    output = fast(x)
    assert fast.positions is not None and fast.positions.dtype == dtype
    assert (dtype == torch.uint8) == ((kh - 1) * width + kw - 1 <= 255)
    assert torch.equal(output, slow(x))
    grad_output = torch.randn(output.shape, generator=torch.Generator().manual_seed(4))
    assert torch.equal(fast.backward(grad_output), slow.backward(grad_output))


def test_max_pool_takes_the_general_path_unless_kernel_equals_stride_without_padding():
    x = torch.randn(1, 1, 7, 7)
    for pool in (dl.MaxPool2d(2, 1), dl.MaxPool2d(2, padding=1), dl.MaxPool2d(2, dilation=2),
                 dl.MaxPool2d(2, ceil_mode=True)):  # ceil_mode on 7: a partial last window
        pool(x)
        assert pool.positions is None and pool.indices is not None, pool


def test_max_pool_fast_path_reads_a_non_contiguous_input(random_tensor):
    x = random_tensor(2, 3, 8, 10, seed=4).transpose(2, 3)  # strides of a (2, 3, 10, 8) view
    fast, slow = dl.MaxPool2d(2), general(dl.MaxPool2d(2))
    assert torch.equal(fast(x), slow(x))
    grad_output = random_tensor(2, 3, 5, 4, seed=5)
    assert torch.equal(fast.backward(grad_output), slow.backward(grad_output))
    assert torch.equal(fast(x), torch.nn.MaxPool2d(2)(x))


# -- AvgPool2d and AdaptiveAvgPool2d against autograd ------------------------------------

AVG_CASES = [  # (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (2, None, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, False, False, None),
    (3, 2, 1, True, True, None),    # a ceil_mode window past the padding: divisor clipped
    (3, 2, 1, True, False, None),
    (2, 1, 1, False, True, 3),      # divisor_override
    ((3, 2), (2, 1), (1, 0), True, False, -2),
]


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode, count_include_pad, divisor",
                         AVG_CASES)
@pytest.mark.parametrize("shape", [(2, 3, 8, 7), (3, 6, 5)])
def test_avg_pool_forward_and_input_gradient_match_autograd(kernel, stride, padding, ceil_mode,
                                                            count_include_pad, divisor, shape,
                                                            matches_torch, random_tensor):
    pool = dl.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    x = random_tensor(*shape, seed=1)
    out_shape = torch_twin.to_torch(pool)(x).shape
    matches_torch(pool, x, grad_output=random_tensor(*out_shape, seed=2))


@settings(max_examples=40, deadline=None)
@given(arguments=pool_arguments(dilation=False), count_include_pad=st.booleans(),
       divisor=st.sampled_from([None, None, 1, 4, -3]), seed=st.integers(0, 2**16))
def test_avg_pool_matches_autograd_on_random_arguments(arguments, count_include_pad, divisor,
                                                       seed, matches_torch, random_tensor):
    kernel, stride, padding, _, ceil_mode, shape = arguments
    theirs = torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    assume(torch_accepts(theirs, shape))
    x = random_tensor(*shape, seed=seed)
    pool = dl.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    matches_torch(pool, x, grad_output=random_tensor(*theirs(x).shape, seed=seed + 1))


@pytest.mark.parametrize("output_size", [1, 2, 3, (2, 5), (None, 3), (4, None), (None, None),
                                         7, (9, 2)])
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (3, 5, 6), (1, 1, 1, 1)])
def test_adaptive_avg_pool_matches_autograd_for_sizes_that_do_not_divide(
        output_size, shape, matches_torch, random_tensor):
    pool = dl.AdaptiveAvgPool2d(output_size)
    x = random_tensor(*shape, seed=1)
    out_shape = torch_twin.to_torch(pool)(x).shape
    matches_torch(pool, x, grad_output=random_tensor(*out_shape, seed=2))


def test_adaptive_avg_pool_windows_follow_the_floor_ceil_formula():
    # H = 5 into 3 rows: [floor(5i/3), ceil(5(i+1)/3)) = [0, 2), [1, 4), [3, 5)
    x = torch.arange(5.0).view(1, 1, 5, 1)
    assert dl.AdaptiveAvgPool2d((3, 1))(x).flatten().tolist() == [0.5, 2.0, 3.5]


def test_avg_pool_worked_example_counts_or_skips_the_padding():
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)  # each 3 x 3 window (padding 1) covers
    # all four ones; the 4 / 9 comes out of products of thirds: equal up to rounding
    assert dl.AvgPool2d(3, 1, 1)(x).flatten().tolist() == pytest.approx([4 / 9] * 4, rel=1e-15)
    assert dl.AvgPool2d(3, 1, 1, count_include_pad=False)(x).flatten().tolist() == [1.0] * 4
    assert dl.AvgPool2d(3, 1, 1, divisor_override=2)(x).flatten().tolist() == [2.0] * 4


@pytest.mark.parametrize("module, reference, shape", [
    (dl.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 7)),
    (dl.AdaptiveAvgPool2d((3, 2)), torch.nn.AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5)),
])
def test_average_pools_pass_gradient_checker_against_torch(module, reference, shape):
    report = dl.check_gradients(module, shape, reference=reference)
    assert report.passed, report


# -- reprs, twins, caches -------------------------------------------------------------------

@pytest.mark.parametrize("arguments", [
    ("MaxPool2d", (2,), {}), ("MaxPool2d", ((2, 3), 1, (1, 1), 2), {"ceil_mode": True}),
    ("AvgPool2d", (3, 2, 1, True, False, 2), {}), ("AvgPool2d", ((2, 2),), {}),
    ("AdaptiveAvgPool2d", ((None, 3),), {}), ("AdaptiveAvgPool2d", (5,), {}),
])
def test_pool_repr_equals_torch_repr(arguments):
    name, args, kwargs = arguments
    assert repr(getattr(dl, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_pools_round_trip_through_torch_twin(random_tensor):
    torch.manual_seed(0)
    model = dl.Sequential(dl.MaxPool2d(2, 1, 1, ceil_mode=True), dl.AvgPool2d(3, 2, 1, True, False),
                          dl.AdaptiveAvgPool2d((2, None)), dl.Flatten(), dl.Linear(8, 2)).double()
    twin = torch_twin.to_torch(model)
    back = torch_twin.from_torch(twin)
    assert repr(back) == repr(model) == repr(twin)
    x = random_tensor(2, 1, 7, 5, seed=1)
    torch.testing.assert_close(model(x), twin(x).detach(), **FLOAT64_TOLERANCE)
    torch.testing.assert_close(back(x), model(x), **FLOAT64_TOLERANCE)


@pytest.mark.parametrize("pool", [dl.MaxPool2d(2), dl.MaxPool2d(3, 1, 1),
                                  dl.AvgPool2d(2, 1), dl.AdaptiveAvgPool2d(3)])
def test_pool_backward_is_repeatable_and_leaves_grad_output_alone(pool, random_tensor):
    output = pool(random_tensor(2, 2, 6, 6, seed=1))
    grad_output = random_tensor(*output.shape, seed=2)
    copy = grad_output.clone()
    first = pool.backward(grad_output)
    assert torch.equal(pool.backward(grad_output), first)
    assert torch.equal(grad_output, copy)


@pytest.mark.parametrize("pool", [dl.MaxPool2d(2), dl.MaxPool2d(3, 1, 1),
                                  dl.AvgPool2d(2, 1), dl.AdaptiveAvgPool2d(3)])
def test_pool_releases_its_cache_when_retain_caches_is_false(pool):
    pool.retain_caches(False)
    output = pool(torch.randn(1, 2, 6, 6))
    pool.backward(torch.ones_like(output))
    with pytest.raises(RuntimeError, match="retain_cache is False"):
        pool.backward(torch.ones_like(output))
    assert pool.input is None


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("build, error, match", [
    (lambda: dl.MaxPool2d(0), ValueError, "kernel_size must be >= 1"),
    (lambda: dl.MaxPool2d(2, stride=0), ValueError, "stride must be >= 1"),
    (lambda: dl.MaxPool2d(2, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: dl.MaxPool2d(2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda: dl.MaxPool2d(2, padding=2), ValueError, "at most half the kernel"),
    (lambda: dl.MaxPool2d((3, 2), padding=(1, 2)), ValueError, "at most half the kernel"),
    (lambda: dl.MaxPool2d(2.0), TypeError, "kernel_size must be an int or a pair"),
    (lambda: dl.MaxPool2d((2, 2, 2)), TypeError, "kernel_size must be an int or a pair"),
    (lambda: dl.MaxPool2d(2, return_indices=True), ValueError, "return_indices"),
    (lambda: dl.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
    (lambda: dl.AvgPool2d(3, padding=2), ValueError, "at most half the kernel"),
    (lambda: dl.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override must be nonzero"),
    (lambda: dl.AvgPool2d(2, divisor_override=1.5), TypeError, "divisor_override must be"),
    (lambda: dl.AvgPool2d(2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: dl.AdaptiveAvgPool2d(0), ValueError, "output_size must be positive"),
    (lambda: dl.AdaptiveAvgPool2d((2, -1)), ValueError, "output_size must be positive"),
    (lambda: dl.AdaptiveAvgPool2d((2,)), TypeError, "output_size must be an int or a pair"),
    (lambda: dl.AdaptiveAvgPool2d("2"), TypeError, "output_size must be an int or a pair"),
])
def test_pool_constructors_reject_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("pool", [dl.MaxPool2d(2), dl.AvgPool2d(2), dl.AdaptiveAvgPool2d(2)])
@pytest.mark.parametrize("shape", [(4, 4), (1, 1, 1, 4, 4), (2, 0, 4, 4), (0, 4, 4)])
def test_pools_reject_inputs_of_the_wrong_rank_or_empty(pool, shape):
    name = type(pool).__name__
    expected = re.escape(f"{name}: input must have shape (N, C, H, W) or (C, H, W) with "
                         f"C, H, W > 0, got shape {tuple(shape)}")
    with pytest.raises(ValueError, match=expected):
        pool(torch.zeros(shape))


def test_pools_reject_integer_and_non_tensor_input():
    with pytest.raises(TypeError, match="MaxPool2d: input must be a floating-point tensor"):
        dl.MaxPool2d(2)(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="AvgPool2d: input must be a torch.Tensor"):
        dl.AvgPool2d(2)([[1.0]])


@pytest.mark.parametrize("pool, shape", [(dl.MaxPool2d(3), (1, 1, 2, 5)),
                                         (dl.MaxPool2d(3, dilation=2), (1, 1, 4, 9)),
                                         (dl.AvgPool2d(4, padding=1), (1, 1, 1, 8))])
def test_pools_reject_a_kernel_larger_than_the_padded_input(pool, shape):
    with pytest.raises(ValueError, match=rf"{type(pool).__name__}: output size .* is empty"):
        pool(torch.zeros(shape))
    with pytest.raises(RuntimeError):  # torch refuses the same inputs
        torch_twin.to_torch(pool)(torch.zeros(shape))


@pytest.mark.parametrize("pool", [dl.MaxPool2d(2), dl.MaxPool2d(3, 1, 1), dl.AvgPool2d(2),
                                  dl.AdaptiveAvgPool2d(3)])
def test_pools_reject_grad_output_of_the_wrong_shape_or_dtype(pool):
    output = pool(torch.zeros(2, 1, 6, 6))
    name = type(pool).__name__
    with pytest.raises(ValueError, match=rf"{name}: grad_output must have shape "
                                         rf"\({', '.join(map(str, output.shape))}\), got"):
        pool.backward(torch.zeros(2, 1, 6, 7))
    with pytest.raises(TypeError, match=f"{name}: grad_output must have dtype torch.float32"):
        pool.backward(torch.zeros(output.shape, dtype=torch.float64))


@pytest.mark.parametrize("pool", [dl.MaxPool2d(2), dl.AvgPool2d(2), dl.AdaptiveAvgPool2d(2)])
def test_pool_backward_before_forward_raises(pool):
    with pytest.raises(RuntimeError, match="backward called before forward"):
        pool.backward(torch.zeros(1, 1, 2, 2))
