"""BatchNorm1d and BatchNorm2d against torch.nn: values, gradients in train and eval mode, running
statistics, buffers and state_dict, errors."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin
from mini_dl import batchnorm

# Running statistics after a few steps: both sides compute mean and variance of the same float64
# numbers, summed in a different order, and blend them with the same factor: a few ulps per step.
RUNNING_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}

# (layer, input shape): BatchNorm1d on vectors and on sequences, BatchNorm2d on images; small, so
# that the finite differences of check_gradients (2 forwards per input entry) stay fast
SHAPES = [(dl.BatchNorm1d, (5, 3)), (dl.BatchNorm1d, (3, 2, 4)), (dl.BatchNorm2d, (3, 2, 2, 3)),
          (dl.BatchNorm2d, (1, 3, 2, 2))]
OPTIONS = [{"affine": affine, "track_running_stats": track, "momentum": momentum}
           for affine, track, momentum in itertools.product((True, False), (True, False),
                                                            (0.1, 0.7, None))]


REFERENCE = {dl.BatchNorm1d: torch.nn.BatchNorm1d, dl.BatchNorm2d: torch.nn.BatchNorm2d}


def with_running_stats(layer, seed: int = 0):
    """Running statistics away from their initial 0 and 1, so that eval mode is a real test."""
    if layer.track_running_stats:
        generator = torch.Generator().manual_seed(seed)
        layer.running_mean.copy_(torch.randn(layer.num_features, generator=generator))
        layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
    generator = torch.Generator().manual_seed(seed + 1)
    for parameter in layer.parameters():
        parameter.data.copy_(torch.randn(layer.num_features, generator=generator))
    return layer


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
@pytest.mark.parametrize("layer_class, shape", SHAPES, ids=lambda v: str(v))
def test_batchnorm_passes_gradient_checker_against_torch_in_train_and_eval_mode(
        layer_class, shape, options, training):
    layer = with_running_stats(layer_class(shape[1], **options, dtype=torch.float64))
    layer.train(training)
    reference = REFERENCE[layer_class](shape[1], **options)
    report = dl.check_gradients(layer, shape, reference=reference)
    assert report.passed, report
    expected = ["output", "input"] + (["weight", "bias"] if options["affine"] else [])
    assert [row.name for row in report.rows] == expected


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layer_class, shape", SHAPES[1:3], ids=lambda v: str(v))
def test_batchnorm_without_bias_passes_gradient_checker_against_torch(layer_class, shape,
                                                                     training):
    # torch 2.13's keyword-only bias=False: a weight and no bias, even when affine
    layer = with_running_stats(layer_class(shape[1], bias=False)).train(training)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    report = dl.check_gradients(layer, shape, reference=REFERENCE[layer_class](shape[1],
                                                                               bias=False))
    assert report.passed, report
    assert repr(layer) == repr(getattr(torch.nn, layer_class.__name__)(shape[1], bias=False))


@settings(max_examples=25, deadline=None)
@given(two_d=st.booleans(), batch=st.integers(2, 5), channels=st.integers(1, 4),
       positions=st.lists(st.integers(1, 4), min_size=0, max_size=2), affine=st.booleans(),
       track=st.booleans(), momentum=st.sampled_from([0.1, 0.3, None]), training=st.booleans(),
       seed=st.integers(0, 2**16))
def test_batchnorm_matches_autograd_on_random_shapes(two_d, batch, channels, positions, affine,
                                                     track, momentum, training, seed,
                                                     matches_torch, random_tensor):
    layer_class = dl.BatchNorm2d if two_d else dl.BatchNorm1d
    positions = (positions + [2, 3])[:2] if two_d else positions[:1]
    shape = (batch, channels, *positions)
    layer = with_running_stats(layer_class(channels, affine=affine, track_running_stats=track,
                                           momentum=momentum, dtype=torch.float64), seed)
    layer.train(training)
    x = random_tensor(*shape, seed=seed) * 3 + 1
    matches_torch(layer, x, grad_output=random_tensor(*shape, seed=seed + 1))


def test_batchnorm_eval_backward_is_the_per_channel_scale(random_tensor):
    layer = with_running_stats(dl.BatchNorm2d(3, dtype=torch.float64)).eval()
    layer(random_tensor(2, 3, 2, 2))
    grad_output = random_tensor(2, 3, 2, 2, seed=1)
    scale = layer.weight.data / (layer.running_var + layer.eps).sqrt()
    expected = grad_output * scale.view(1, 3, 1, 1)
    torch.testing.assert_close(layer.backward(grad_output), expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("mistake", ["x_hat term", "mean term"])
def test_a_wrong_backward_fails_the_gradient_checker(mistake, monkeypatch):
    right = batchnorm._normalize_backward

    def wrong(grad_output, x_hat, inv_std, dims, weight=None, sums=None, out=None):
        sum_g_hat, sum_g_hat_x_hat = sums
        if mistake == "x_hat term":  # forgets that the variance depends on x
            sum_g_hat_x_hat = torch.zeros_like(sum_g_hat_x_hat)
        else:  # forgets that the mean depends on x
            sum_g_hat = torch.zeros_like(sum_g_hat)
        return right(grad_output, x_hat, inv_std, dims, weight, (sum_g_hat, sum_g_hat_x_hat), out)

    monkeypatch.setattr(batchnorm, "_normalize_backward", wrong)
    layer = with_running_stats(dl.BatchNorm2d(2))
    report = dl.check_gradients(layer, (3, 2, 2, 2), reference=torch.nn.BatchNorm2d(2))
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["input"]


# -- running statistics ------------------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.1, 0.9, None])
@pytest.mark.parametrize("layer_class, shape", [(dl.BatchNorm1d, (6, 3)),
                                                (dl.BatchNorm1d, (4, 3, 5)),
                                                (dl.BatchNorm2d, (4, 3, 3, 2))])
def test_running_statistics_equal_torch_after_several_steps_then_eval_outputs_equal(
        layer_class, shape, momentum, random_tensor):
    ours = layer_class(shape[1], momentum=momentum, dtype=torch.float64)
    theirs = torch_twin.to_torch(ours)
    for step in range(5):
        x = random_tensor(*shape, seed=step) * (step + 1) + step  # moments that change
        torch.testing.assert_close(ours(x), theirs(x).detach(), **RUNNING_TOLERANCE)
    for name, buffer in theirs.named_buffers():
        torch.testing.assert_close(getattr(ours, name), buffer, **RUNNING_TOLERANCE)
    assert ours.num_batches_tracked.item() == 5
    x = random_tensor(*shape, seed=10)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x).detach(), **RUNNING_TOLERANCE)


def test_running_var_is_unbiased_and_momentum_none_is_the_cumulative_average(random_tensor):
    layer = dl.BatchNorm1d(2, momentum=None, dtype=torch.float64)
    batches = [random_tensor(4, 2, seed=seed) + seed for seed in range(3)]
    for x in batches:
        layer(x)
    torch.testing.assert_close(layer.running_mean, torch.stack([x.mean(0) for x in batches])
                               .mean(0), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(layer.running_var, torch.stack([x.var(0) for x in batches])
                               .mean(0), rtol=1e-14, atol=1e-14)  # x.var: unbiased, n - 1


def test_eval_mode_and_no_tracking_leave_the_buffers_alone(random_tensor):
    layer = dl.BatchNorm2d(2).eval()
    layer(random_tensor(3, 2, 2, 2, dtype=torch.float32))
    assert layer.num_batches_tracked.item() == 0 and layer.running_mean.abs().max() == 0
    untracked = dl.BatchNorm2d(2, track_running_stats=False)
    assert untracked.running_mean is untracked.running_var is None
    assert untracked.num_batches_tracked is None
    x = random_tensor(3, 2, 2, 2, dtype=torch.float32)
    torch.testing.assert_close(untracked.eval()(x), untracked.train()(x))  # batch stats always


def test_gradient_checker_leaves_the_running_statistics_unchanged():
    layer = with_running_stats(dl.BatchNorm2d(2, dtype=torch.float64))
    before = {name: buffer.clone() for name, buffer in layer.named_buffers()}
    report = dl.check_gradients(layer, (3, 2, 2, 2))  # 2 * 24 + 2 training forwards
    assert report.passed, report
    for name, buffer in layer.named_buffers():
        assert torch.equal(buffer, before[name]), name


# -- state_dict, buffers, conversions ------------------------------------------------------------

@pytest.mark.parametrize("options", OPTIONS[::3] + OPTIONS[1:2],
                         ids=lambda o: "-".join(f"{v}" for v in o.values()))
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
def test_state_dict_keys_order_and_values_equal_torch(name, options):
    ours = getattr(dl, name)(3, **options)
    theirs = getattr(torch.nn, name)(3, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value) and \
            ours.state_dict()[key].dtype == value.dtype, key
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("affine, track", [(True, True), (False, True), (True, False)])
def test_state_dict_moves_both_ways_through_torch_twin(affine, track, random_tensor):
    ours = with_running_stats(dl.BatchNorm2d(3, affine=affine, track_running_stats=track,
                                             dtype=torch.float64))
    x = random_tensor(4, 3, 2, 2)
    ours(x)  # one step: num_batches_tracked = 1
    twin = torch_twin.to_torch(ours.eval())
    for key, value in ours.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value), key
    torch.testing.assert_close(ours(x), twin(x).detach(), rtol=1e-14, atol=1e-14)
    back = torch_twin.from_torch(twin)
    assert type(back) is dl.BatchNorm2d and not back.training
    for key, value in twin.state_dict().items():
        assert torch.equal(back.state_dict()[key], value) and \
            back.state_dict()[key].dtype == value.dtype, key


def test_to_and_double_keep_num_batches_tracked_int64():
    layer = dl.BatchNorm1d(3)
    layer(torch.randn(4, 3))
    for converted in (layer.double(), layer.to(torch.float32), layer.to("cpu", torch.float64)):
        assert converted.num_batches_tracked.dtype == torch.long
        assert converted.num_batches_tracked.item() == 1
    assert layer.running_mean.dtype == layer.weight.data.dtype == torch.float64


def test_constructor_arguments_are_stored_with_torch_names_and_dtype():
    layer = dl.BatchNorm2d(4, eps=1e-3, momentum=None, affine=False, dtype=torch.float64)
    assert (layer.num_features, layer.eps, layer.momentum, layer.affine,
            layer.track_running_stats) == (4, 1e-3, None, False, True)
    assert layer.weight is None and layer.bias is None
    assert layer.running_mean.dtype == torch.float64
    assert layer.num_batches_tracked.dtype == torch.long and layer.num_batches_tracked.ndim == 0
    assert all(p.data.is_meta for p in dl.BatchNorm1d(2, device="meta").parameters())


def test_reset_running_stats_and_parameters(random_tensor):
    layer = with_running_stats(dl.BatchNorm1d(2, dtype=torch.float64))
    layer(random_tensor(3, 2))
    layer.reset_parameters()
    fresh = dl.BatchNorm1d(2, dtype=torch.float64)
    for key, value in fresh.state_dict().items():
        assert torch.equal(layer.state_dict()[key], value), key


# -- the contract -------------------------------------------------------------------------------

def test_backward_twice_accumulates_and_keeps_grad_output(random_tensor):
    layer = with_running_stats(dl.BatchNorm2d(2, dtype=torch.float64))
    layer(random_tensor(3, 2, 2, 2))
    grad_output = random_tensor(3, 2, 2, 2, seed=1)
    copy = grad_output.clone()
    first = layer.backward(grad_output)
    weight_grad = layer.weight.grad.clone()
    second = layer.backward(grad_output)
    assert torch.equal(grad_output, copy)
    assert torch.equal(first, second)
    torch.testing.assert_close(layer.weight.grad, 2 * weight_grad, rtol=1e-15, atol=0)


def test_needs_input_grad_false_returns_none_and_still_accumulates(random_tensor):
    layer = with_running_stats(dl.BatchNorm2d(2, dtype=torch.float64))
    reference = with_running_stats(dl.BatchNorm2d(2, dtype=torch.float64))
    layer.needs_input_grad = False
    x, grad_output = random_tensor(3, 2, 2, 2), random_tensor(3, 2, 2, 2, seed=1)
    layer(x), reference(x)
    assert layer.backward(grad_output) is None
    reference.backward(grad_output)
    assert torch.equal(layer.weight.grad, reference.weight.grad)
    assert torch.equal(layer.bias.grad, reference.bias.grad)


def test_zero_grad_set_to_none_then_backward_writes_new_gradients(random_tensor):
    layer = dl.BatchNorm1d(2, dtype=torch.float64)
    layer(random_tensor(4, 2))
    layer.zero_grad(set_to_none=True)
    layer.backward(random_tensor(4, 2, seed=1))
    assert layer.weight.grad.shape == layer.bias.grad.shape == (2,)


def test_retain_caches_false_releases_the_cache_after_one_backward(random_tensor):
    layer = dl.BatchNorm2d(2, dtype=torch.float64).retain_caches(False)
    kept = dl.BatchNorm2d(2, dtype=torch.float64)
    x, grad_output = random_tensor(3, 2, 2, 2), random_tensor(3, 2, 2, 2, seed=1)
    layer(x), kept(x)
    assert torch.equal(layer.backward(grad_output), kept.backward(grad_output))
    with pytest.raises(RuntimeError, match="retain_cache is False"):
        layer.backward(grad_output)


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer_class, shape", [(dl.BatchNorm1d, (1, 3)),
                                                (dl.BatchNorm1d, (1, 3, 1)),
                                                (dl.BatchNorm2d, (1, 3, 1, 1))])
def test_training_with_one_value_per_channel_is_refused(layer_class, shape):
    message = (rf"{layer_class.__name__}: expected more than 1 value per channel when training, "
               rf"got input of shape \({', '.join(map(str, shape))}\)")
    with pytest.raises(ValueError, match=message):
        layer_class(3)(torch.zeros(shape))
    with pytest.raises(ValueError, match="more than 1 value"):  # batch statistics, as torch
        layer_class(3, track_running_stats=False).eval()(torch.zeros(shape))
    assert layer_class(3).eval()(torch.zeros(shape)).shape == shape  # running ones: fine


@pytest.mark.parametrize("layer_class, shape, expected", [
    (dl.BatchNorm1d, (3,), r"2-D \(N, C\) or 3-D \(N, C, L\)"),
    (dl.BatchNorm1d, (2, 3, 2, 2), r"2-D \(N, C\) or 3-D \(N, C, L\)"),
    (dl.BatchNorm2d, (2, 3, 4), r"4-D \(N, C, H, W\)"),
])
def test_wrong_rank_is_refused_with_both_shapes(layer_class, shape, expected):
    with pytest.raises(ValueError, match=rf"{layer_class.__name__}: input must be {expected}, "
                                         rf"got shape \({', '.join(map(str, shape))}"):
        layer_class(3)(torch.zeros(shape))


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match=r"BatchNorm2d: input must have 3 channels "
                                         r"\(num_features\) in dimension 1, got shape "
                                         r"\(2, 4, 2, 2\)"):
        dl.BatchNorm2d(3)(torch.zeros(2, 4, 2, 2))


def test_wrong_types_and_grad_output_are_refused():
    with pytest.raises(TypeError, match="BatchNorm1d: num_features must be an int"):
        dl.BatchNorm1d(2.0)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be positive"):
        dl.BatchNorm2d(0)
    layer = dl.BatchNorm1d(3)
    with pytest.raises(TypeError, match="BatchNorm1d: input must have dtype torch.float32"):
        layer(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="BatchNorm1d: input must be a torch.Tensor"):
        layer([[1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match="BatchNorm1d: backward called before forward"):
        layer.backward(torch.zeros(2, 3))
    layer(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d: grad_output must have shape \(2, 3\), "
                                         r"got \(3, 2\)"):
        layer.backward(torch.zeros(3, 2))


def test_eps_must_be_positive_with_batch_statistics_as_torch():
    x = torch.randn(4, 2)
    for layer in (dl.BatchNorm1d(2, eps=0.0), dl.BatchNorm1d(2, eps=-1e-5).eval()):
        with pytest.raises(ValueError, match=r"BatchNorm1d: eps must be positive with batch "
                                             r"statistics and non-negative with running ones"):
            layer(x)
        with pytest.raises(ValueError, match="eps must be"):  # torch refuses both too
            torch.nn.BatchNorm1d(2, eps=layer.eps).train(layer.training)(x)
    assert dl.BatchNorm1d(2, eps=0.0).eval()(x).shape == (4, 2)  # running statistics: allowed
