"""The losses against torch.nn's, in float64: values and input gradients under autograd
(matches_torch) over every argument combination torch documents, finite differences away from
the kinks, torch exactly at them, bad input, the twins, and a checker that bites."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(1,), (5,), (4, 3), (2, 3, 4)]


def randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def rand(*shape, seed=0, low=0.0, high=1.0):
    uniform = torch.rand(shape, generator=torch.Generator().manual_seed(seed),
                         dtype=torch.float64)
    return low + (high - low) * uniform


def targets(n: int, classes: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(classes, (n,), generator=torch.Generator().manual_seed(seed))


def upstream_for(criterion, loss_shape, seed=7):
    """None (backward()) under a scalar reduction; a random gradient of the loss's shape under
    "none"."""
    return randn(*loss_shape, seed=seed) if criterion.reduction == "none" else None


# -- element-wise losses ----------------------------------------------------------------------

POINTWISE = {  # name: (factory(reduction), input maker, target maker)
    "MSELoss": (lambda r: dl.MSELoss(r), randn, randn),
    "L1Loss": (lambda r: dl.L1Loss(r), randn, randn),
    "HuberLoss": (lambda r: dl.HuberLoss(r), randn, randn),
    "HuberLoss-delta-0.3": (lambda r: dl.HuberLoss(r, delta=0.3), randn, randn),
    "SmoothL1Loss": (lambda r: dl.SmoothL1Loss(r), randn, randn),
    "SmoothL1Loss-beta-2": (lambda r: dl.SmoothL1Loss(r, beta=2.0), randn, randn),
    "SmoothL1Loss-beta-0": (lambda r: dl.SmoothL1Loss(r, beta=0.0), randn, randn),
    "BCELoss": (lambda r: dl.BCELoss(reduction=r), lambda *s, seed: rand(*s, seed=seed, low=0.05,
                                                                         high=0.95), rand),
    "BCEWithLogitsLoss": (lambda r: dl.BCEWithLogitsLoss(reduction=r), randn, rand),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_loss_value_and_input_gradient_match_autograd(name, shape, reduction,
                                                                 matches_torch):
    factory, make_input, make_target = POINTWISE[name]
    criterion = factory(reduction)
    matches_torch(criterion, make_input(*shape, seed=1), make_target(*shape, seed=2),
                  grad_output=upstream_for(criterion, shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_loss_passes_gradient_checker_against_torch(name, reduction):
    factory, make_input, make_target = POINTWISE[name]
    criterion = factory(reduction)
    report = dl.check_gradients(criterion, make_input(4, 3, seed=1), make_target(4, 3, seed=2),
                                reference=torch_twin.to_torch(criterion))
    assert report.passed, report


@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "weight"])
@pytest.mark.parametrize("pos_weighted", [False, True], ids=["no-pos_weight", "pos_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_weights_match_autograd(weighted, pos_weighted, reduction, matches_torch):
    weight = rand(4, 1, seed=3, low=0.5, high=2.0) if weighted else None  # broadcast over rows
    pos_weight = rand(3, seed=4, low=0.5, high=3.0) if pos_weighted else None  # one per class
    criterion = dl.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos_weight)
    matches_torch(criterion, randn(4, 3, seed=1), rand(4, 3, seed=2),
                  grad_output=upstream_for(criterion, (4, 3)))
    report = dl.check_gradients(criterion, randn(4, 3, seed=1), rand(4, 3, seed=2),
                                reference=torch_twin.to_torch(criterion))
    assert report.passed, report


@pytest.mark.parametrize("weight_shape", [(4, 3), (3,), (4, 1), ()], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weight_broadcasts_as_torch(weight_shape, reduction, matches_torch):
    criterion = dl.BCELoss(rand(*weight_shape, seed=3, low=0.5, high=2.0), reduction=reduction)
    matches_torch(criterion, rand(4, 3, seed=1, low=0.05, high=0.95), rand(4, 3, seed=2),
                  grad_output=upstream_for(criterion, (4, 3)))


def test_bce_clamps_the_log_at_minus_100_as_torch(matches_torch):
    # x = 0 and x = 1 against the wrong label: log 0 = -inf, clamped to -100; the gradient's
    # denominator max((1 - x) x, 1e-12) keeps it finite
    x = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    for reduction in REDUCTIONS:
        criterion = dl.BCELoss(reduction=reduction)
        loss = criterion(x, t)
        assert torch.isfinite(loss).all()
        matches_torch(criterion, x, t, grad_output=upstream_for(criterion, (5,)))
    assert dl.BCELoss(reduction="sum")(x, t).item() == pytest.approx(200.0 + 0.6931471805599453)


@pytest.mark.parametrize("pos_weight", [None, torch.tensor([2.0], dtype=torch.float64)],
                         ids=["plain", "pos_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_is_finite_and_exact_at_plus_minus_1000(pos_weight, reduction,
                                                                matches_torch):
    x = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5], dtype=torch.float64)
    criterion = dl.BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight)
    loss = criterion(x, t)
    grad = criterion.backward(upstream_for(criterion, (5,)))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    matches_torch(criterion, x, t, grad_output=upstream_for(criterion, (5,)))


KINKS = {  # input values at the kinks (target 0), where torch defines the gradient
    "L1Loss-at-0": (dl.L1Loss(reduction="sum"), [0.0, 1.0, -1.0]),
    "HuberLoss-at-delta": (dl.HuberLoss("sum", delta=0.5), [0.5, -0.5, 0.0, 2.0]),
    "SmoothL1Loss-at-beta": (dl.SmoothL1Loss("sum", beta=0.5), [0.5, -0.5, 0.0, 2.0]),
    "SmoothL1Loss-beta-0-at-0": (dl.SmoothL1Loss("sum", beta=0.0), [0.0, 1.0, -1.0]),
    "MSELoss-at-0": (dl.MSELoss("sum"), [0.0]),
}


@pytest.mark.parametrize("name", KINKS)
def test_gradient_at_the_kinks_is_torchs_exactly(name):
    criterion, values = KINKS[name]
    x = torch.tensor(values, dtype=torch.float64)
    twin, leaf = torch_twin.to_torch(criterion), x.clone().requires_grad_()
    expected = twin(leaf, torch.zeros_like(x))
    expected.backward()
    assert torch.equal(criterion(x, torch.zeros_like(x)), expected.detach())
    assert torch.equal(criterion.backward(), leaf.grad), (criterion.backward(), leaf.grad)


# -- MSELoss: the defaults, kept from before ---------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
def test_mse_matches_autograd_on_random_shapes(shape, reduction, seed, matches_torch):
    criterion = dl.MSELoss(reduction)
    matches_torch(criterion, randn(*shape, seed=seed), randn(*shape, seed=seed + 1),
                  grad_output=upstream_for(criterion, tuple(shape)))


@pytest.mark.parametrize("upstream", [0.5, 3, torch.tensor(-2.0, dtype=torch.float64)],
                         ids=["float", "int", "0-dim tensor"])
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "BCEWithLogitsLoss"])
def test_backward_scales_by_an_upstream_gradient_as_autograd(name, upstream, matches_torch):
    factory, make_input, make_target = POINTWISE[name]
    matches_torch(factory("mean"), make_input(4, 3, seed=1), make_target(4, 3, seed=2),
                  grad_output=upstream)


def test_mse_returns_a_zero_dimensional_loss_or_the_element_losses():
    prediction, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
    loss = dl.MSELoss()(prediction, target)
    assert loss.shape == () and loss.item() == 2.5
    assert dl.MSELoss("sum")(prediction, target).item() == 5.0
    assert dl.MSELoss("none")(prediction, target).tolist() == [1.0, 4.0]


def test_reprs_name_the_reduction_and_the_arguments_that_differ_from_torchs_defaults():
    assert repr(dl.MSELoss("sum")) == "MSELoss(reduction='sum')"
    assert repr(dl.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"
    assert repr(dl.HuberLoss(delta=2.0)) == "HuberLoss(reduction='mean', delta=2.0)"
    assert repr(dl.CrossEntropyLoss(ignore_index=3, label_smoothing=0.1)) == (
        "CrossEntropyLoss(reduction='mean', ignore_index=3, label_smoothing=0.1)")


def test_loss_backward_is_repeatable_and_keeps_grad_output():
    criterion = dl.HuberLoss("none")
    criterion(randn(4, 3, seed=1), randn(4, 3, seed=2))
    upstream = randn(4, 3, seed=3)
    kept = upstream.clone()
    first = criterion.backward(upstream)
    assert torch.equal(first, criterion.backward(upstream)) and torch.equal(upstream, kept)


def test_weight_buffers_move_with_to_and_are_in_the_state_dict():
    criterion = dl.BCEWithLogitsLoss(torch.ones(3), pos_weight=torch.full((3,), 2.0))
    assert list(criterion.state_dict()) == ["weight", "pos_weight"]
    criterion.double()
    assert criterion.weight.dtype == criterion.pos_weight.dtype == torch.float64
    assert list(dl.CrossEntropyLoss().state_dict()) == []
    assert list(dl.NLLLoss(torch.ones(2)).state_dict()) == ["weight"]


# -- CrossEntropyLoss and NLLLoss: every argument combination -------------------------------

CLASS_SHAPES = [(5, 4), (3, 4, 5), (2, 3, 2, 3), (4,)]  # (N, C), (N, C, d1), (N, C, d1, d2), (C,)


def class_inputs(shape, seed=0, ignore=False, probabilities=False):
    """Logits of ``shape`` and a target: class indices (some set to ignore_index=-100 when
    ``ignore``; never all) or class probabilities."""
    logits = 2 * randn(*shape, seed=seed)
    classes = shape[0] if len(shape) == 1 else shape[1]
    if probabilities:
        scores = randn(*shape, seed=seed + 1)
        dim = 0 if len(shape) == 1 else 1
        return logits, scores.exp() / scores.exp().sum(dim, keepdim=True)
    index_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = torch.randint(classes, index_shape, generator=torch.Generator().manual_seed(seed))
    if ignore:
        flat = target.view(-1)
        flat[::2] = -100 if flat.numel() > 1 else flat[::2]
    return logits, target


CE_CASES = [  # (reduction, weighted, ignore, label_smoothing, probabilities)
    case for case in itertools.product(REDUCTIONS, [False, True], [False, True], [0.0, 0.25],
                                       [False, True])
    if not (case[2] and case[4])  # ignore_index does not apply to probabilities
]


def ce_id(case):
    reduction, weighted, ignore, smoothing, probabilities = case
    return "-".join([reduction, "weight" if weighted else "no-weight",
                     "ignore" if ignore else "no-ignore", f"ls{smoothing}",
                     "probabilities" if probabilities else "indices"])


@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
@pytest.mark.parametrize("case", CE_CASES, ids=ce_id)
def test_cross_entropy_matches_autograd_for_every_argument_combination(case, shape,
                                                                       matches_torch):
    reduction, weighted, ignore, smoothing, probabilities = case
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = rand(classes, seed=5, low=0.2, high=3.0) if weighted else None
    criterion = dl.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=smoothing)
    logits, target = class_inputs(shape, seed=1, ignore=ignore, probabilities=probabilities)
    loss_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    matches_torch(criterion, logits, target, grad_output=upstream_for(criterion, loss_shape))


@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
@pytest.mark.parametrize("case", list(itertools.product(REDUCTIONS, [False, True],
                                                        [False, True])),
                         ids=lambda case: "-".join([case[0], "weight" * case[1] or "no-weight",
                                                    "ignore" * case[2] or "no-ignore"]))
def test_nll_matches_autograd_for_every_argument_combination(case, shape, matches_torch):
    reduction, weighted, ignore = case
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = rand(classes, seed=5, low=0.2, high=3.0) if weighted else None
    criterion = dl.NLLLoss(weight, reduction=reduction)
    scores, target = class_inputs(shape, seed=2, ignore=ignore)
    log_probabilities = scores - scores.logsumexp(0 if len(shape) == 1 else 1, keepdim=True)
    loss_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    matches_torch(criterion, log_probabilities, target,
                  grad_output=upstream_for(criterion, loss_shape))


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2), (4,)], ids=str)
@pytest.mark.parametrize("case", [case for case in CE_CASES if not case[4]], ids=ce_id)
def test_the_gpu_path_with_the_ignore_mask_always_applied_matches_autograd(case, shape,
                                                                          matches_torch,
                                                                          monkeypatch):
    # on a GPU the targets are not read back: no range check, and the mask of ignored targets
    # is applied even when it is all False; here that path runs on the CPU
    monkeypatch.setattr(dl.loss._ClassLoss, "check_range",
                        lambda self, target, classes: target == self.ignore_index)
    reduction, weighted, ignore, smoothing, _ = case
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = rand(classes, seed=5, low=0.2, high=3.0) if weighted else None
    loss_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    for criterion in [dl.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=smoothing),
                      dl.NLLLoss(weight, reduction=reduction)]:
        logits, target = class_inputs(shape, seed=1, ignore=ignore)
        criterion(logits, target)
        assert criterion.ignored is not None  # the mask was applied
        matches_torch(criterion, logits, target, grad_output=upstream_for(criterion, loss_shape))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2), (4,)], ids=str)
@pytest.mark.parametrize("case", [("mean", True, True, 0.25, False), ("sum", False, False, 0.1,
                                                                      True),
                                  ("none", True, False, 0.0, False), ("mean", True, False, 0.3,
                                                                      True)], ids=ce_id)
def test_cross_entropy_passes_the_gradient_checker_with_finite_differences(case, shape):
    reduction, weighted, ignore, smoothing, probabilities = case
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = rand(classes, seed=5, low=0.2, high=3.0) if weighted else None
    criterion = dl.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=smoothing)
    logits, target = class_inputs(shape, seed=3, ignore=ignore, probabilities=probabilities)
    report = dl.check_gradients(criterion, logits, target,
                                reference=torch_twin.to_torch(criterion))
    assert report.passed, report


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_passes_the_gradient_checker_with_weights_and_ignored_targets(reduction):
    criterion = dl.NLLLoss(rand(4, seed=5, low=0.2, high=3.0), reduction=reduction)
    report = dl.check_gradients(criterion, (3, 4, 2), torch.tensor([[0, -100], [3, 1], [2, 2]]),
                                reference=torch_twin.to_torch(criterion))
    assert report.passed, report


@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss, smoothing", [("CrossEntropyLoss", 0.0), ("CrossEntropyLoss", 0.2),
                                             ("NLLLoss", 0.0)])
def test_an_all_ignored_batch_gives_torchs_nan_zero_and_gradient(loss, smoothing, reduction,
                                                                  weighted):
    options = {"label_smoothing": smoothing} if smoothing else {}
    weight = rand(3, seed=5, low=0.2, high=3.0) if weighted else None
    criterion = getattr(dl, loss)(weight, reduction=reduction, **options)
    z, target = randn(4, 3, seed=1), torch.full((4,), -100)
    twin, leaf = torch_twin.to_torch(criterion), z.clone().requires_grad_()
    expected = twin(leaf, target)
    expected.sum().backward()
    loss_value = criterion(z, target)
    torch.testing.assert_close(loss_value, expected.detach(), equal_nan=True)
    grad = criterion.backward(torch.ones(4, dtype=torch.float64) if reduction == "none" else None)
    assert torch.equal(grad, leaf.grad) and not grad.abs().sum()  # zero, as torch
    if reduction == "mean":
        assert loss_value.isnan()


def test_cross_entropy_weighted_mean_divides_by_the_kept_targets_weights():
    weight = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    z, target = randn(4, 3, seed=1), torch.tensor([0, 2, -100, 2])
    per_position = dl.CrossEntropyLoss(weight, reduction="none")(z, target)
    assert per_position[2] == 0.0
    mean = dl.CrossEntropyLoss(weight)(z, target)
    # the same float64 sums in another order: a few ulps
    torch.testing.assert_close(mean, per_position.sum() / (1.0 + 5.0 + 5.0), rtol=1e-12, atol=0)


def test_ignore_index_may_be_a_class_and_is_excluded_from_the_range_check(matches_torch):
    z, target = randn(5, 3, seed=1), torch.tensor([0, 1, 1, 2, 1])
    matches_torch(dl.CrossEntropyLoss(ignore_index=1), z, target)
    matches_torch(dl.NLLLoss(ignore_index=7), z, torch.tensor([0, 7, 2, 7, 1]))


def test_unbatched_none_reduction_gives_a_zero_dimensional_loss():
    criterion = dl.CrossEntropyLoss(reduction="none")
    loss = criterion(torch.zeros(4, dtype=torch.float64), torch.tensor(2))
    assert loss.shape == () and loss.item() == pytest.approx(1.3862943611198906)
    assert criterion.backward(torch.tensor(1.0, dtype=torch.float64)).shape == (4,)


# -- CrossEntropyLoss: the defaults, kept from before --------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n, classes", [(1, 1), (1, 5), (7, 2), (16, 10)])
def test_cross_entropy_value_and_gradient_match_autograd(reduction, n, classes, matches_torch):
    matches_torch(dl.CrossEntropyLoss(reduction=reduction), randn(n, classes, seed=3),
                  targets(n, classes))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), classes=st.integers(1, 8), scale=st.sampled_from([0.1, 1.0, 30.0]),
       reduction=st.sampled_from(["mean", "sum"]), seed=st.integers(0, 2**16))
def test_cross_entropy_matches_autograd_on_random_shapes(n, classes, scale, reduction, seed,
                                                         matches_torch):
    logits = scale * randn(n, classes, seed=seed)
    matches_torch(dl.CrossEntropyLoss(reduction=reduction), logits, targets(n, classes, seed))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_passes_gradient_checker_against_torch(reduction):
    report = dl.check_gradients(dl.CrossEntropyLoss(reduction=reduction), (6, 4), targets(6, 4),
                                reference=torch.nn.CrossEntropyLoss(reduction=reduction))
    assert report.passed, report


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits, target = randn(5, 3), targets(5, 3)
    criterion = dl.CrossEntropyLoss()
    criterion(logits, target)
    expected = (logits.exp() / logits.exp().sum(1, keepdim=True) - dl.one_hot(
        target, 3, dtype=torch.float64)) / 5
    torch.testing.assert_close(criterion.backward(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("upstream", [0.5, 3, torch.tensor(-2.0, dtype=torch.float64)],
                         ids=["float", "int", "tensor"])
def test_cross_entropy_scales_by_upstream_gradient(upstream, matches_torch):
    matches_torch(dl.CrossEntropyLoss(), randn(4, 3), targets(4, 3), grad_output=upstream)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_is_finite_and_exact_for_huge_logits(reduction, matches_torch):
    # +-1000: exp overflows float64 (max ~709) without the log-sum-exp shift
    logits = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0],
                           [1000.0, 1000.0, -1000.0]], dtype=torch.float64)
    target = torch.tensor([1, 2, 0])
    criterion = dl.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1)
    loss = criterion(logits, target)
    grad = criterion.backward(upstream_for(criterion, (3,)))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    matches_torch(dl.CrossEntropyLoss(reduction=reduction), logits, target,
                  grad_output=upstream_for(criterion, (3,)))


def test_cross_entropy_is_finite_in_float32():
    logits = torch.tensor([[1000.0, -1000.0]])
    criterion = dl.CrossEntropyLoss()
    assert criterion(logits, torch.tensor([1])).item() == pytest.approx(2000.0)
    assert criterion.backward().tolist() == [[1.0, -1.0]]


def test_cross_entropy_backward_is_repeatable_and_keeps_grad_output():
    criterion = dl.CrossEntropyLoss()
    criterion(randn(4, 3), targets(4, 3))
    upstream = torch.tensor(2.0, dtype=torch.float64)
    first = criterion.backward(upstream)
    assert torch.equal(first, criterion.backward(upstream)) and upstream.item() == 2.0


def test_cross_entropy_accepts_a_positional_reduction_for_backward_compatibility():
    criterion = dl.CrossEntropyLoss("sum")
    assert criterion.reduction == "sum" and criterion.weight is None
    twin = torch_twin.to_torch(criterion)
    assert isinstance(twin, torch.nn.CrossEntropyLoss) and twin.reduction == "sum"
    with pytest.raises(TypeError, match="CrossEntropyLoss: reduction given twice"):
        dl.CrossEntropyLoss("sum", reduction="none")


# -- the twins ------------------------------------------------------------------------------

TWINS = {
    "CrossEntropyLoss": lambda: dl.CrossEntropyLoss(torch.tensor([1.0, 2.0, 0.5]), ignore_index=1,
                                                    reduction="sum", label_smoothing=0.2),
    "NLLLoss": lambda: dl.NLLLoss(torch.tensor([1.0, 2.0]), ignore_index=0, reduction="none"),
    "BCELoss": lambda: dl.BCELoss(torch.tensor([1.0, 3.0]), reduction="sum"),
    "BCEWithLogitsLoss": lambda: dl.BCEWithLogitsLoss(torch.tensor([2.0]), reduction="none",
                                                      pos_weight=torch.tensor([1.0, 4.0])),
    "MSELoss": lambda: dl.MSELoss("none"),
    "L1Loss": lambda: dl.L1Loss("sum"),
    "HuberLoss": lambda: dl.HuberLoss("sum", delta=0.7),
    "SmoothL1Loss": lambda: dl.SmoothL1Loss("none", beta=0.3),
}


@pytest.mark.parametrize("name", TWINS)
def test_twins_both_ways_keep_every_argument_and_buffer(name):
    ours = TWINS[name]()
    twin = torch_twin.to_torch(ours)
    assert type(twin) is getattr(torch.nn, name)
    assert list(twin.state_dict()) == list(ours.state_dict())
    for argument in torch_twin.CONSTRUCTOR_ARGUMENTS[name]:
        theirs, mine = getattr(twin, argument), getattr(ours, argument)
        assert torch.equal(theirs, mine) if isinstance(mine, torch.Tensor) else theirs == mine
    back = torch_twin.from_torch(twin)
    assert type(back) is type(ours) and list(back.state_dict()) == list(ours.state_dict())
    for key, value in back.state_dict().items():
        assert torch.equal(value, ours.state_dict()[key])
        assert value is not ours.state_dict()[key]  # copied, not shared
    assert repr(back) == repr(ours)


def test_twin_of_a_float32_weighted_loss_has_float32_weights():
    twin = torch_twin.to_torch(dl.CrossEntropyLoss(torch.tensor([1.0, 2.0])).double())
    assert twin.weight.dtype == torch.float64 and twin.reduction == "mean"


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("logits, target, error, match", [
    (torch.zeros(3, 4), torch.tensor([0, 4, 1]), ValueError, r"\[0, 4\).*\[0, 4\]"),
    (torch.zeros(3, 4), torch.tensor([0, -1, 1]), ValueError, r"\[0, 4\).*\[-1, 1\]"),
    (torch.zeros(3, 4), torch.tensor([0, -100, 4]), ValueError, r"\[0, 4\).*\[0, 4\]"),
    (torch.zeros(3, 4), torch.tensor([0.0, 1.0, 1.0]), TypeError, "int64.*float32"),
    (torch.zeros(3, 4), torch.tensor([0, 1, 1], dtype=torch.int32), TypeError, "int64.*int32"),
    (torch.zeros(3, 4), [0, 1, 1], TypeError, "int64.*list"),
    (torch.zeros(3, 4), torch.tensor([0, 1]), ValueError, r"shape \(3,\).*got \(2,\)"),
    (torch.zeros(3, 4), torch.tensor([[0], [1], [1]]), ValueError, r"shape \(3,\).*\(3, 1\)"),
    (torch.zeros(4), torch.tensor([0]), ValueError, r"shape \(\) to match logits \(4,\)"),
    (torch.zeros(2, 3, 4), torch.tensor([0, 1]), ValueError, r"\(2, 4\).*\(2, 3, 4\).*\(2,\)"),
    (torch.zeros(()), torch.tensor(0), ValueError, r"\(N, C\).*got \(\)"),
    (torch.zeros(0, 4), torch.tensor([], dtype=torch.int64), ValueError, r"N, C > 0"),
    (torch.zeros(3, 4, dtype=torch.int64), torch.tensor([0, 1, 1]), TypeError, "floating"),
    (torch.zeros(3, 4), torch.zeros(3, 5), ValueError, r"probabilities.*\(3, 4\), got \(3, 5\)"),
    (torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.int64), TypeError,
     r"probabilities and must be floating point, got torch.int64"),
    (torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.float64), TypeError,
     r"target must have dtype torch.float32"),
], ids=["target-too-large", "target-negative", "ignored-and-too-large", "float-target",
        "int32-target", "list-target", "n-mismatch", "target-rank", "unbatched-target-shape",
        "k-dim-target-shape", "logits-0-dim", "empty", "integer-logits",
        "probabilities-wrong-shape", "integer-probabilities", "probabilities-wrong-dtype"])
def test_cross_entropy_rejects_bad_input(logits, target, error, match):
    with pytest.raises(error, match=f"CrossEntropyLoss.*{match}"):
        dl.CrossEntropyLoss()(logits, target)


@pytest.mark.parametrize("make, error, match", [
    (lambda: dl.CrossEntropyLoss(torch.ones(2, 3)), ValueError, r"weight must be 1-D.*\(2, 3\)"),
    (lambda: dl.CrossEntropyLoss(torch.ones(3, dtype=torch.int64)), TypeError,
     "weight must be None or a floating-point tensor, got torch.int64"),
    (lambda: dl.NLLLoss([1.0, 2.0]), TypeError, "NLLLoss: weight must be None or a floating"),
    (lambda: dl.CrossEntropyLoss(label_smoothing=-0.1), ValueError,
     r"label_smoothing must be a number in \[0, 1\], got -0.1"),
    (lambda: dl.CrossEntropyLoss(label_smoothing=1.5), ValueError, "got 1.5"),
    (lambda: dl.CrossEntropyLoss(ignore_index=1.0), TypeError, "ignore_index must be an int"),
    (lambda: dl.HuberLoss(delta=0.0), ValueError, "HuberLoss: delta must be a number > 0"),
    (lambda: dl.SmoothL1Loss(beta=-1.0), ValueError, r"SmoothL1Loss: beta must be a number >= 0"),
    (lambda: dl.BCEWithLogitsLoss(pos_weight=torch.ones(2, dtype=torch.int64)), TypeError,
     "pos_weight must be None or a floating-point tensor"),
], ids=["weight-2-d", "weight-integer", "weight-list", "smoothing-negative", "smoothing-above-1",
        "ignore-index-float", "delta-zero", "beta-negative", "pos-weight-integer"])
def test_constructors_reject_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss",
                                  "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"])
@pytest.mark.parametrize("reduction", ["MEAN", None, "", "average"])
def test_every_loss_rejects_an_unknown_reduction_by_name(name, reduction):
    message = rf"{name}: reduction must be one of \('mean', 'sum', 'none'\), got"
    with pytest.raises(ValueError, match=message):
        getattr(dl, name)(reduction=reduction)


def test_class_weights_of_the_wrong_length_or_dtype_are_refused_at_forward():
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: weight must have shape \(4,\), "
                                         r"got \(3,\)"):
        dl.CrossEntropyLoss(torch.ones(3))(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"NLLLoss: weight must have shape \(2,\), got \(5,\)"):
        dl.NLLLoss(torch.ones(5))(torch.zeros(2), torch.tensor(1))
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: weight must have dtype torch.float64"):
        dl.CrossEntropyLoss(torch.ones(4))(torch.zeros(2, 4, dtype=torch.float64),
                                           torch.tensor([0, 1]))


def test_nll_refuses_a_float_target_and_probabilities():
    with pytest.raises(TypeError, match=r"NLLLoss: target must be an int64 tensor of class "
                                        r"indices \(use .long\(\)\), got torch.float32$"):
        dl.NLLLoss()(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(TypeError, match=r"NLLLoss: target must be an int64.*float32"):
        dl.NLLLoss()(torch.zeros(3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"NLLLoss: target must hold class indices in \[0, 4\)"):
        dl.NLLLoss()(torch.zeros(3, 4), torch.tensor([0, 9, 1]))


def test_probabilities_refuse_a_non_negative_ignore_index():
    with pytest.raises(ValueError, match="CrossEntropyLoss: ignore_index=0 cannot apply to class "
                                         "probabilities"):
        dl.CrossEntropyLoss(ignore_index=0)(torch.zeros(2, 3), torch.full((2, 3), 1 / 3))


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss",
                                  "BCEWithLogitsLoss"])
def test_pointwise_losses_refuse_an_integer_target_and_a_shape_mismatch(name):
    criterion = getattr(dl, name)()
    with pytest.raises(TypeError, match=rf"{name}: target must be a floating-point tensor, got "
                                        r"dtype torch.int64"):
        criterion(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=rf"{name}: target must have shape \(4, 2\), got \(4,\)"):
        criterion(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(TypeError, match=rf"{name}: input must be a floating-point tensor"):
        criterion(torch.zeros(3, dtype=torch.int64), torch.zeros(3))
    with pytest.raises(ValueError, match=rf"{name}: input is empty \(shape \(0, 2\)\)"):
        criterion(torch.zeros(0, 2), torch.zeros(0, 2))


def test_mse_rejects_target_of_another_dtype_and_non_tensors():
    with pytest.raises(TypeError, match=r"MSELoss: target must have dtype torch.float32 .*got "
                                        r"torch.float64"):
        dl.MSELoss()(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"MSELoss: input must be a torch.Tensor, got list"):
        dl.MSELoss()([1.0], torch.zeros(1))
    with pytest.raises(TypeError, match=r"MSELoss: target must be a torch.Tensor, got list"):
        dl.MSELoss()(torch.zeros(1), [1.0])


def test_bce_refuses_values_outside_0_1_and_weights_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"BCELoss: input must hold values in \[0, 1\], got "
                                         r"values in \[-0.5, 0.5\]"):
        dl.BCELoss()(torch.tensor([-0.5, 0.5]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"BCELoss: target must hold values in \[0, 1\]"):
        dl.BCELoss()(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"BCELoss: weight of shape \(3,\) must broadcast to the "
                                         r"input's shape \(4, 2\)"):
        dl.BCELoss(torch.ones(3))(torch.full((4, 2), 0.5), torch.ones(4, 2))
    with pytest.raises(ValueError, match=r"BCEWithLogitsLoss: pos_weight of shape \(2, 4, 2\)"):
        dl.BCEWithLogitsLoss(pos_weight=torch.ones(2, 4, 2))(torch.zeros(4, 2), torch.ones(4, 2))


@pytest.mark.parametrize("reduction, upstream, error, match", [
    ("mean", torch.ones(4, 2), ValueError, r"grad_output must have shape \(\), got \(4, 2\)"),
    ("none", torch.ones(4), ValueError, r"grad_output must have shape \(4, 2\), got \(4,\)"),
    ("none", None, TypeError, (r"reduction='none', backward needs grad_output, a tensor of the "
                               r"loss's shape \(4, 2\), got NoneType")),
    ("none", 2.0, TypeError, "got float"),
], ids=["scalar-reduction-tensor", "none-wrong-shape", "none-missing", "none-number"])
def test_backward_refuses_a_gradient_of_the_wrong_shape(reduction, upstream, error, match):
    criterion = dl.MSELoss(reduction)
    criterion(torch.zeros(4, 2), torch.ones(4, 2))
    with pytest.raises(error, match=f"MSELoss: .*{match}"):
        criterion.backward(upstream)


def test_cross_entropy_backward_under_none_needs_the_positions_shape():
    criterion = dl.CrossEntropyLoss(reduction="none")
    criterion(torch.zeros(2, 3, 5), torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: grad_output must have shape "
                                         r"\(2, 5\), got \(2, 3, 5\)"):
        criterion.backward(torch.ones(2, 3, 5))


@pytest.mark.parametrize("name", ["MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss"])
def test_backward_before_forward_raises(name):
    with pytest.raises(RuntimeError, match=rf"{name}: backward called before forward"):
        getattr(dl, name)().backward()


# -- the checker bites ----------------------------------------------------------------------

class MeanOverPositionsCrossEntropy(dl.CrossEntropyLoss):
    """Bug: the weighted mean divided by the number of targets, not by their weights."""

    def backward(self, grad_output=None):
        return super().backward(grad_output) * self.denominator / self.probabilities.shape[0]


class NoSmoothingGradientCrossEntropy(dl.CrossEntropyLoss):
    """Bug: label smoothing in the forward, forgotten in the backward."""

    def backward(self, grad_output=None):
        smoothing, self.label_smoothing = self.label_smoothing, 0.0
        try:
            return super().backward(grad_output)
        finally:
            self.label_smoothing = smoothing


class SignAtTheKinkSmoothL1(dl.SmoothL1Loss):
    """Bug: the L1 branch's slope used everywhere (right only for |d| >= beta)."""

    def backward(self, grad_output=None):
        difference = self.saved("difference")
        return difference.sign() * self.scale(grad_output, difference, difference.shape,
                                              difference.numel())


@pytest.mark.parametrize("criterion", [
    MeanOverPositionsCrossEntropy(torch.tensor([1.0, 3.0, 0.5])),
    NoSmoothingGradientCrossEntropy(label_smoothing=0.3),
    SignAtTheKinkSmoothL1(beta=2.0),
], ids=["weighted-mean-denominator", "smoothing-forgotten", "smoothl1-slope"])
def test_a_wrong_backward_fails_the_gradient_checker(criterion):
    shape = (6,) if isinstance(criterion, dl.SmoothL1Loss) else (6, 3)
    second = randn(6, seed=4) if isinstance(criterion, dl.SmoothL1Loss) else targets(6, 3)
    report = dl.check_gradients(criterion, shape, second,
                                reference=torch_twin.to_torch(criterion))
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["input"]
