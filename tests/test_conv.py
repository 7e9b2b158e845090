"""Conv2d against torch.nn.Conv2d: values, the three gradients, initialisation, state_dict,
repr, errors, and the options of the backward (needs_input_grad, retain_caches)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import mini_dl.conv as conv_module
import torch_twin

# float64: both sides sum the same products in another order (a few ulps on sums of <= ~100
# terms), far below 1e-12; a wrong tap or a missing term is an O(1) error
FLOAT64_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}

# (in, out, kernel_size, constructor keywords, input shape): every argument torch.nn.Conv2d
# takes, alone and combined; non-square kernels, strides and inputs; unbatched inputs.
CASES = [
    (1, 1, 2, {}, (1, 1, 4, 4)),
    (3, 4, 3, {}, (2, 3, 7, 6)),
    (2, 3, (3, 2), {"stride": 2}, (2, 2, 9, 8)),
    (2, 3, 3, {"stride": (2, 1), "padding": (1, 2)}, (2, 2, 7, 5)),
    (2, 2, 3, {"padding": 1, "bias": False}, (3, 2, 5, 5)),
    (2, 3, 3, {"dilation": 2}, (2, 2, 8, 7)),
    (2, 3, (2, 3), {"dilation": (2, 1), "stride": (1, 3), "padding": (2, 0)}, (2, 2, 6, 9)),
    (4, 6, 3, {"groups": 2}, (2, 4, 6, 6)),
    (4, 4, 3, {"groups": 4, "padding": 1}, (2, 4, 5, 5)),          # depthwise
    (3, 6, 1, {"groups": 3}, (2, 3, 4, 4)),                      # depthwise 1x1, multiplier 2
    (2, 3, 3, {"padding": "same"}, (2, 2, 5, 6)),
    (2, 3, (2, 4), {"padding": "same"}, (2, 2, 5, 6)),           # even kernels: uneven padding
    (2, 3, 4, {"padding": "same", "dilation": 3}, (2, 2, 10, 11)),
    (2, 3, 3, {"padding": "valid"}, (2, 2, 5, 4)),
    (3, 2, 3, {"stride": 2, "padding": 1}, (3, 7, 7)),           # unbatched (C, H, W)
    (2, 3, 3, {"padding": 2, "padding_mode": "reflect"}, (2, 2, 5, 6)),
    (2, 3, (3, 2), {"padding": (1, 3), "padding_mode": "reflect", "stride": 2}, (2, 2, 4, 5)),
    (2, 3, 3, {"padding": 2, "padding_mode": "replicate"}, (2, 2, 4, 3)),
    (2, 3, 3, {"padding": (3, 1), "padding_mode": "replicate", "dilation": 2}, (2, 2, 3, 6)),
    (2, 3, 3, {"padding": 2, "padding_mode": "circular"}, (2, 2, 4, 5)),
    (4, 2, 2, {"padding": "same", "padding_mode": "circular", "groups": 2}, (2, 4, 5, 4)),
    (2, 3, 3, {"padding": 1, "padding_mode": "reflect", "bias": False}, (2, 5, 5)),
]
IDS = [f"{k}-{kw}-{shape}" for _, _, k, kw, shape in CASES]


def conv64(in_channels, out_channels, kernel_size, seed=0, **keywords):
    torch.manual_seed(seed)
    return dl.Conv2d(in_channels, out_channels, kernel_size, dtype=torch.float64, **keywords)


def output_shape(layer, shape):
    return torch_twin.to_torch(layer)(torch.zeros(shape, dtype=torch.float64)).shape


# torch warns that it copies the input for "same" with an even kernel (we always do)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("in_channels, out_channels, kernel_size, keywords, shape", CASES,
                         ids=IDS)
def test_conv2d_forward_input_and_parameter_gradients_match_autograd(
        in_channels, out_channels, kernel_size, keywords, shape, matches_torch, random_tensor):
    layer = conv64(in_channels, out_channels, kernel_size, **keywords)
    grad_output = random_tensor(*output_shape(layer, shape), seed=2)
    matches_torch(layer, random_tensor(*shape, seed=1), grad_output=grad_output)


@pytest.mark.parametrize("in_channels, out_channels, kernel_size, keywords, shape",
                         CASES[1::3], ids=IDS[1::3])
def test_conv2d_passes_gradient_checker_against_torch_conv2d(
        in_channels, out_channels, kernel_size, keywords, shape):
    layer = conv64(in_channels, out_channels, kernel_size, **keywords)
    report = dl.check_gradients(layer, shape, reference=torch_twin.to_torch(layer))
    assert report.passed, report
    expected = ["output", "input", "weight"] + (["bias"] if keywords.get("bias", True) else [])
    assert [row.name for row in report.rows] == expected


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 3), groups=st.sampled_from([1, 2]), in_per_group=st.integers(1, 2),
       out_per_group=st.integers(1, 2), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), bias=st.booleans(),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), seed=st.integers(0, 2 ** 16))
def test_conv2d_matches_autograd_on_random_shapes(batch, groups, in_per_group, out_per_group,
                                                  kernel, stride, padding, dilation, bias, mode,
                                                  extra, seed, matches_torch, random_tensor):
    # the input is just large enough for the dilated kernel (plus `extra`) and for the padding
    # mode (reflect: padding < size)
    size = [max(d * (k - 1) + 1 - 2 * p, p + 1) + e
            for k, p, d, e in zip(kernel, padding, dilation, extra)]
    layer = conv64(groups * in_per_group, groups * out_per_group, kernel, seed, stride=stride,
                   padding=padding, dilation=dilation, groups=groups, bias=bias,
                   padding_mode=mode)
    shape = (batch, groups * in_per_group, *size)
    grad_output = random_tensor(*output_shape(layer, shape), seed=seed + 2)
    matches_torch(layer, random_tensor(*shape, seed=seed + 1), grad_output=grad_output)


def test_conv2d_by_hand_on_a_4x4_image_and_a_2x2_kernel():
    layer = dl.Conv2d(1, 1, 2, bias=False, dtype=torch.float64)
    layer.weight.data.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    x = torch.arange(16.0, dtype=torch.float64).view(1, 1, 4, 4)
    # y[i, j] = x[i, j] + 2 x[i, j+1] + 3 x[i+1, j] + 4 x[i+1, j+1] = 40 i + 10 j + 34
    expected = torch.tensor([[34.0, 44, 54], [74, 84, 94], [114, 124, 134]], dtype=torch.float64)
    assert torch.equal(layer(x)[0, 0], expected)
    grad_input = layer.backward(torch.ones(1, 1, 3, 3, dtype=torch.float64))
    # each input pixel gets the sum of the kernel taps that read it (corners: one tap each)
    assert grad_input[0, 0].tolist() == [[1, 3, 3, 2], [4, 10, 10, 6], [4, 10, 10, 6],
                                         [3, 7, 7, 4]]
    assert layer.weight.grad[0, 0].tolist() == [[45, 54], [81, 90]]  # sums of 3x3 windows


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("chunk_bytes", [1, 250])  # one image a run; a few images a run
@pytest.mark.parametrize("in_channels, out_channels, kernel_size, keywords, shape", CASES,
                         ids=IDS)
def test_conv2d_in_runs_of_images_gives_the_whole_batch_numbers_bit_for_bit(
        in_channels, out_channels, kernel_size, keywords, shape, chunk_bytes, monkeypatch):
    # a batch larger than CHUNK_BYTES of unfolded rows is computed a run of images at a time
    # (forward): the same products on the same images, so float32 outputs and gradients are
    # identical
    shape = (5, *shape[-3:])  # five images, so that runs of 1, 2 or 3 images occur
    torch.manual_seed(0)
    layer = dl.Conv2d(in_channels, out_channels, kernel_size, **keywords)
    x = torch.randn(shape)
    grad_output = torch.randn(layer(x).shape)
    results, runs, chunks = [], [], conv_module._chunks
    monkeypatch.setattr(conv_module, "_chunks", lambda *a: runs.append(len(chunks(*a))) or
                        chunks(*a))
    for limit in (conv_module.CHUNK_BYTES, chunk_bytes):
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", limit)
        layer.zero_grad(set_to_none=True)
        output = layer(x)
        results.append((output, layer.backward(grad_output), layer.weight.grad.clone()))
    assert runs == [1, runs[1]] and runs[1] > 1  # forward only: whole, then in runs
    assert chunk_bytes > 1 or runs[1] == 5
    for whole, in_runs in zip(*results):
        assert torch.equal(whole, in_runs)


def test_conv2d_splits_a_batch_into_runs_that_fit_the_chunk_budget():
    assert conv_module._chunks((10, 2, 3), 4) == [slice(0, 10)]  # 24 bytes an image
    assert conv_module._chunks((10, conv_module.CHUNK_BYTES // 12), 4) == [
        slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]  # a third of the budget each
    assert conv_module._chunks((3, 2 * conv_module.CHUNK_BYTES), 4) == [
        slice(0, 1), slice(1, 2), slice(2, 3)]  # an image larger than the budget: one a run
    assert conv_module._chunks((0, 2, 3), 4) == [slice(0, 0)]  # an empty batch


def test_conv2d_takes_an_empty_batch_as_torch_does():
    layer = conv64(2, 3, 3, padding=1)
    empty = torch.zeros(0, 2, 5, 4, dtype=torch.float64)
    assert layer(empty).shape == torch_twin.to_torch(layer)(empty).shape == (0, 3, 5, 4)
    assert layer.backward(torch.zeros(0, 3, 5, 4, dtype=torch.float64)).shape == (0, 2, 5, 4)
    assert layer.weight.grad.abs().sum() == 0


def test_conv2d_first_layer_skips_input_gradient_and_still_gets_parameter_gradients(
        random_tensor):
    layer, reference = conv64(2, 3, 3, padding=1), conv64(2, 3, 3, padding=1)
    layer.needs_input_grad = False
    x, grad_output = random_tensor(2, 2, 5, 5, seed=1), random_tensor(2, 3, 5, 5, seed=2)
    layer(x)
    reference(x)
    assert layer.backward(grad_output) is None
    assert reference.backward(grad_output) is not None
    for ours, expected in zip(layer.parameters(), reference.parameters()):
        assert torch.equal(ours.grad, expected.grad)


def test_conv2d_gradients_accumulate_and_are_written_anew_after_set_to_none(random_tensor):
    layer = conv64(2, 3, 2)
    x, grad_output = random_tensor(2, 2, 4, 4, seed=1), random_tensor(2, 3, 3, 3, seed=2)
    layer(x)
    layer.backward(grad_output)
    once = [p.grad.clone() for p in layer.parameters()]
    layer.backward(grad_output)  # the cache survives a second backward
    for parameter, grad in zip(layer.parameters(), once):
        torch.testing.assert_close(parameter.grad, 2 * grad, **FLOAT64_TOLERANCE)
    layer.zero_grad(set_to_none=True)
    layer.backward(grad_output)
    for parameter, grad in zip(layer.parameters(), once):
        assert torch.equal(parameter.grad, grad)


def test_conv2d_backward_does_not_modify_grad_output(random_tensor):
    layer = conv64(2, 3, 3, padding="same")
    grad_output = random_tensor(2, 3, 4, 4, seed=2)
    kept = grad_output.clone()
    layer(random_tensor(2, 2, 4, 4, seed=1))
    layer.backward(grad_output)
    assert torch.equal(grad_output, kept)


def test_conv2d_releases_its_cache_with_retain_caches_false(random_tensor):
    layer, reference = conv64(2, 3, 3), conv64(2, 3, 3)
    layer.retain_caches(False)
    x, grad_output = random_tensor(2, 2, 5, 5, seed=1), random_tensor(2, 3, 3, 3, seed=2)
    layer(x)
    reference(x)
    assert torch.equal(layer.backward(grad_output), reference.backward(grad_output))
    assert layer.input_padded is None
    with pytest.raises(RuntimeError, match="Conv2d: backward called before forward"):
        layer.backward(grad_output)


class UnflippedConv2d(dl.Conv2d):
    """The input gradient as the full convolution of G with the kernel *not* flipped: a classic
    bug with the right shapes (stride 1, no padding)."""

    def backward(self, grad_output):
        super().backward(grad_output)  # the parameter gradients, right
        k_h, k_w = self.kernel_size
        wrong = dl.Conv2d(self.out_channels, self.in_channels, self.kernel_size,
                          padding=(k_h - 1, k_w - 1), bias=False, dtype=grad_output.dtype)
        wrong.weight.data.copy_(self.weight.data.transpose(0, 1))  # missing .flip(2, 3)
        return wrong(grad_output)


def test_conv2d_wrong_backward_fails_the_gradient_checker():
    layer = conv64(2, 2, 3)
    assert dl.check_gradients(layer, (1, 2, 5, 5)).passed
    wrong = UnflippedConv2d(2, 2, 3, dtype=torch.float64)
    wrong.load_state_dict(layer.state_dict())
    report = dl.check_gradients(wrong, (1, 2, 5, 5))
    assert [row.name for row in report.rows if not row.passed] == ["input"]


def test_conv2d_input_gradient_is_the_full_convolution_with_the_flipped_kernel(random_tensor):
    layer = conv64(3, 2, (3, 2))
    x, grad_output = random_tensor(2, 3, 6, 5, seed=1), random_tensor(2, 2, 4, 4, seed=2)
    layer(x)
    full = dl.Conv2d(2, 3, (3, 2), padding=(2, 1), bias=False, dtype=torch.float64)
    full.weight.data.copy_(layer.weight.data.transpose(0, 1).flip(2, 3))
    torch.testing.assert_close(layer.backward(grad_output), full(grad_output),
                               **FLOAT64_TOLERANCE)


# -- initialisation, state_dict, repr ---------------------------------------------------------

@pytest.mark.parametrize("arguments", [(1, 6, 5), (6, 16, 5), (4, 6, (3, 2), 1, 0, 1, 2),
                                       (3, 3, 3, 1, 1, 1, 3, False)])
def test_conv2d_init_equals_torch_conv2d_with_the_same_seed(arguments):
    torch.manual_seed(1234)
    ours = dl.Conv2d(*arguments)
    torch.manual_seed(1234)
    theirs = torch.nn.Conv2d(*arguments)
    assert torch.equal(ours.weight.data, theirs.weight.detach())  # same draws, same bounds
    assert (ours.bias is None) == (theirs.bias is None)
    if ours.bias is not None:
        assert torch.equal(ours.bias.data, theirs.bias.detach())


def test_conv2d_init_consumes_the_rng_as_torch_does():
    torch.manual_seed(7)
    dl.Conv2d(3, 4, 3)
    after_ours = torch.rand(4)
    torch.manual_seed(7)
    torch.nn.Conv2d(3, 4, 3)
    assert torch.equal(after_ours, torch.rand(4))


def test_conv2d_parameters_have_torch_shapes_names_dtype_and_device():
    layer = dl.Conv2d(4, 6, (3, 2), groups=2, dtype=torch.float64)
    assert [(name, tuple(p.shape)) for name, p in layer.named_parameters()] == \
        [("weight", (6, 2, 3, 2)), ("bias", (6,))]
    assert all(p.data.dtype == p.grad.dtype == torch.float64 for p in layer.parameters())
    assert all(p.data.is_meta for p in dl.Conv2d(1, 2, 3, device="meta").parameters())
    assert [name for name, _ in dl.Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize("keywords", [{}, {"stride": 2, "padding": (1, 2), "dilation": (2, 1)},
                                      {"padding": "same", "padding_mode": "reflect"},
                                      {"groups": 2, "bias": False, "padding": "valid"}])
def test_conv2d_state_dict_moves_both_ways_with_torch(keywords, random_tensor):
    torch.manual_seed(3)
    ours = dl.Conv2d(4, 6, 3, **keywords, dtype=torch.float64)
    twin = torch_twin.to_torch(ours)
    assert repr(twin) == repr(ours)
    x = random_tensor(2, 4, 6, 7, seed=1)
    torch.testing.assert_close(ours(x), twin(x).detach(), **FLOAT64_TOLERANCE)
    torch.manual_seed(4)
    theirs = torch.nn.Conv2d(4, 6, 3, **keywords, dtype=torch.float64)
    back = torch_twin.from_torch(theirs)
    assert list(back.state_dict()) == list(theirs.state_dict())
    for value, expected in zip(back.state_dict().values(), theirs.state_dict().values()):
        assert torch.equal(value, expected)
    torch.testing.assert_close(back(x), theirs(x).detach(), **FLOAT64_TOLERANCE)


@pytest.mark.parametrize("arguments, keywords", [
    ((1, 6, 5), {}), ((1, 6, 5), {"padding": 2}), ((6, 16, (5, 3)), {"stride": (2, 1)}),
    ((4, 4, 3), {"padding": "same", "dilation": 2, "groups": 4, "bias": False}),
    ((2, 2, 3), {"padding": "valid", "padding_mode": "circular"}),
    ((2, 2, 3), {"padding": (0, 1), "padding_mode": "replicate"})])
def test_conv2d_repr_reads_like_torch(arguments, keywords):
    ours = dl.Conv2d(*arguments, **keywords)
    assert repr(ours) == repr(torch.nn.Conv2d(*arguments, **keywords))
    for name in torch_twin.CONSTRUCTOR_ARGUMENTS["Conv2d"][:-2]:  # stored as torch stores them
        assert getattr(ours, name) == getattr(torch.nn.Conv2d(*arguments, **keywords), name)


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, keywords, error, message", [
    ((0, 2, 3), {}, ValueError, "in_channels must be positive, got 0"),
    ((2, -1, 3), {}, ValueError, "out_channels must be positive, got -1"),
    ((2, 2, 0), {}, ValueError, "kernel_size must be >= 1, got 0"),
    ((2, 2, (3, 0)), {}, ValueError, r"kernel_size must be >= 1, got \(3, 0\)"),
    ((2, 2, 2.5), {}, TypeError, "kernel_size must be an int or a pair of ints, got 2.5"),
    ((2, 2, (1, 2, 3)), {}, TypeError, r"kernel_size must be .* got \(1, 2, 3\)"),
    ((2, 2, 3), {"stride": 0}, ValueError, "stride must be >= 1, got 0"),
    ((2, 2, 3), {"dilation": (1, 0)}, ValueError, r"dilation must be >= 1, got \(1, 0\)"),
    ((2, 2, 3), {"padding": -1}, ValueError, "padding must be >= 0, got -1"),
    ((2, 2, 3), {"padding": "full"}, ValueError, "padding must be 'valid', 'same', .* 'full'"),
    ((2, 2, 3), {"padding": "same", "stride": 2}, ValueError,
     r"padding='same' needs stride 1, got stride \(2, 2\)"),
    ((2, 2, 3), {"padding_mode": "mirror"}, ValueError, "padding_mode must be one of .* 'mirror'"),
    ((4, 6, 3), {"groups": 4}, ValueError, ("groups=4 must divide in_channels=4 and "
                                           "out_channels=6")),
    ((3, 6, 3), {"groups": 2}, ValueError, "groups=2 must divide in_channels=3"),
    ((2, 2, 3), {"groups": 0}, ValueError, "groups must be positive, got 0"),
])
def test_conv2d_rejects_bad_constructor_arguments(arguments, keywords, error, message):
    with pytest.raises(error, match="Conv2d: " + message):
        dl.Conv2d(*arguments, **keywords)
    with pytest.raises((ValueError, TypeError, RuntimeError)):  # torch refuses them too
        torch.nn.Conv2d(*arguments, **keywords)(torch.zeros(1, arguments[0] or 1, 5, 5))


@pytest.mark.parametrize("keywords, shape, message", [
    ({}, (2, 3, 5, 5), r"input must have shape \(N, 2, H, W\) or \(2, H, W\), got \(2, 3, 5, 5\)"),
    ({}, (3, 5, 5), r"input must have shape .* got \(3, 5, 5\)"),
    ({}, (5, 5), r"input must have shape .* got \(5, 5\)"),
    ({}, (1, 1, 2, 5, 5), r"input must have shape .* got \(1, 1, 2, 5, 5\)"),
    ({}, (1, 2, 2, 5), (r"input of shape \(1, 2, 2, 5\), padded to \(2, 5\), is smaller than the "
                       r"dilated kernel \(3, 3\)")),
    ({"padding": 1, "dilation": 3}, (1, 2, 4, 9), (r".*padded to \(6, 11\), is smaller than the "
                                                  r"dilated kernel \(7, 7\): the output is empty")),
    ({"padding": 3, "padding_mode": "reflect"}, (1, 2, 3, 6),
     r"padding_mode='reflect' allows padding up to \(2, 5\) for input \(1, 2, 3, 6\), got"),
    ({"padding": (0, 4), "padding_mode": "circular"}, (1, 2, 5, 3),
     r"padding_mode='circular' allows padding up to \(5, 3\)"),
])
def test_conv2d_rejects_inputs_it_cannot_convolve(keywords, shape, message):
    layer = dl.Conv2d(2, 2, 3, **keywords)
    with pytest.raises(ValueError, match="Conv2d: " + message):
        layer(torch.zeros(shape))
    with pytest.raises(RuntimeError):  # and so does torch
        torch.nn.Conv2d(2, 2, 3, **keywords)(torch.zeros(shape))


def test_conv2d_rejects_wrong_dtype_and_non_tensors():
    layer = dl.Conv2d(2, 2, 3)
    with pytest.raises(TypeError, match="Conv2d: input must have dtype torch.float32 on cpu, got "
                                        "torch.float64"):
        layer(torch.zeros(1, 2, 5, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="Conv2d: input must be a torch.Tensor, got list"):
        layer([[0.0]])
    with pytest.raises(TypeError, match="Conv2d: input must be a floating-point tensor"):
        layer(torch.zeros(1, 2, 5, 5, dtype=torch.int64))


def test_conv2d_rejects_wrong_grad_output_and_backward_before_forward():
    layer = dl.Conv2d(2, 3, 3, stride=2)
    with pytest.raises(RuntimeError, match="Conv2d: backward called before forward"):
        layer.backward(torch.zeros(1, 3, 2, 2))
    layer(torch.zeros(1, 2, 5, 6))
    with pytest.raises(ValueError, match=r"Conv2d: grad_output must have shape \(1, 3, 2, 2\), "
                                         r"got \(1, 3, 3, 3\)"):
        layer.backward(torch.zeros(1, 3, 3, 3))
    layer(torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match=r"must have shape \(3, 2, 2\), got \(1, 3, 2, 2\)"):
        layer.backward(torch.zeros(1, 3, 2, 2))
    with pytest.raises(TypeError, match="Conv2d: grad_output must have dtype torch.float32"):
        layer.backward(torch.zeros(3, 2, 2, dtype=torch.float64))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("in_channels, out_channels, kernel_size, keywords, shape", CASES,
                         ids=IDS)
def test_conv2d_input_gradient_of_a_batch_is_each_images_bit_for_bit(
        in_channels, out_channels, kernel_size, keywords, shape):
    # the input gradient runs with the batch innermost, one product for all images: each
    # image's float32 gradient is still the one it gets alone
    torch.manual_seed(0)
    layer = dl.Conv2d(in_channels, out_channels, kernel_size, **keywords)
    x = torch.randn(5, *shape[-3:])
    grad_output = torch.randn(layer(x).shape)
    whole = layer.backward(grad_output)
    assert whole.is_contiguous() and whole.shape == x.shape
    for image in range(5):
        layer(x[image:image + 1])
        assert torch.equal(layer.backward(grad_output[image:image + 1]), whole[image:image + 1])
