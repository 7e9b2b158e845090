"""CrossEntropyLoss against torch.nn.CrossEntropyLoss: value, fused gradient, stability, errors."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

REDUCTIONS = ["mean", "sum"]


def targets(n: int, classes: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(classes, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n, classes", [(1, 1), (1, 5), (7, 2), (16, 10)])
def test_cross_entropy_value_and_gradient_match_autograd(reduction, n, classes, matches_torch,
                                                         random_tensor):
    matches_torch(dl.CrossEntropyLoss(reduction), random_tensor(n, classes, seed=3),
                  targets(n, classes))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), classes=st.integers(1, 8), scale=st.sampled_from([0.1, 1.0, 30.0]),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
def test_cross_entropy_matches_autograd_on_random_shapes(n, classes, scale, reduction, seed,
                                                         matches_torch, random_tensor):
    logits = scale * random_tensor(n, classes, seed=seed)
    matches_torch(dl.CrossEntropyLoss(reduction), logits, targets(n, classes, seed))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_passes_gradient_checker_against_torch(reduction):
    report = dl.check_gradients(dl.CrossEntropyLoss(reduction), (6, 4), targets(6, 4),
                                reference=torch.nn.CrossEntropyLoss(reduction=reduction))
    assert report.passed, report


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n(random_tensor):
    logits, target = random_tensor(5, 3), targets(5, 3)
    criterion = dl.CrossEntropyLoss()
    criterion(logits, target)
    expected = (logits.exp() / logits.exp().sum(1, keepdim=True) - dl.one_hot(
        target, 3, dtype=torch.float64)) / 5
    torch.testing.assert_close(criterion.backward(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("upstream", [0.5, 3, torch.tensor(-2.0, dtype=torch.float64)],
                         ids=["float", "int", "tensor"])
def test_cross_entropy_scales_by_upstream_gradient(upstream, matches_torch, random_tensor):
    matches_torch(dl.CrossEntropyLoss(), random_tensor(4, 3), targets(4, 3), grad_output=upstream)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_is_finite_and_exact_for_huge_logits(reduction, matches_torch):
    # +-1000: exp overflows float64 (max ~709) without the log-sum-exp shift
    logits = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0],
                           [1000.0, 1000.0, -1000.0]], dtype=torch.float64)
    target = torch.tensor([1, 2, 0])
    criterion = dl.CrossEntropyLoss(reduction)
    loss = criterion(logits, target)
    grad = criterion.backward()
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    matches_torch(dl.CrossEntropyLoss(reduction), logits, target)


def test_cross_entropy_is_finite_in_float32():
    logits = torch.tensor([[1000.0, -1000.0]])
    criterion = dl.CrossEntropyLoss()
    assert criterion(logits, torch.tensor([1])).item() == pytest.approx(2000.0)
    assert criterion.backward().tolist() == [[1.0, -1.0]]


def test_cross_entropy_backward_is_repeatable_and_keeps_grad_output(random_tensor):
    criterion = dl.CrossEntropyLoss()
    criterion(random_tensor(4, 3), targets(4, 3))
    upstream = torch.tensor(2.0, dtype=torch.float64)
    first = criterion.backward(upstream)
    assert torch.equal(first, criterion.backward(upstream)) and upstream.item() == 2.0


def test_cross_entropy_twin_and_repr():
    import torch_twin
    twin = torch_twin.to_torch(dl.CrossEntropyLoss("sum"))
    assert isinstance(twin, torch.nn.CrossEntropyLoss) and twin.reduction == "sum"
    assert repr(dl.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"


@pytest.mark.parametrize("logits, target, error, match", [
    (torch.zeros(3, 4), torch.tensor([0, 4, 1]), ValueError, r"\[0, 4\).*\[0, 4\]"),
    (torch.zeros(3, 4), torch.tensor([0, -1, 1]), ValueError, r"\[0, 4\).*\[-1, 1\]"),
    (torch.zeros(3, 4), torch.tensor([0.0, 1.0, 1.0]), TypeError, "int64.*float32"),
    (torch.zeros(3, 4), torch.tensor([0, 1, 1], dtype=torch.int32), TypeError, "int64.*int32"),
    (torch.zeros(3, 4), [0, 1, 1], TypeError, "int64.*list"),
    (torch.zeros(3, 4), torch.tensor([0, 1]), ValueError, r"shape \(3,\).*got \(2,\)"),
    (torch.zeros(3, 4), torch.tensor([[0], [1], [1]]), ValueError, r"shape \(3,\).*\(3, 1\)"),
    (torch.zeros(4), torch.tensor([0]), ValueError, r"\(N, C\).*\(4,\)"),
    (torch.zeros(2, 3, 4), torch.tensor([0, 1]), ValueError, r"\(N, C\).*\(2, 3, 4\)"),
    (torch.zeros(0, 4), torch.tensor([], dtype=torch.int64), ValueError, r"N, C > 0"),
    (torch.zeros(3, 4, dtype=torch.int64), torch.tensor([0, 1, 1]), TypeError, "floating"),
], ids=["target-too-large", "target-negative", "float-target", "int32-target", "list-target",
        "n-mismatch", "target-rank", "logits-rank-1", "logits-rank-3", "empty", "integer-logits"])
def test_cross_entropy_rejects_bad_input(logits, target, error, match):
    with pytest.raises(error, match=f"CrossEntropyLoss.*{match}"):
        dl.CrossEntropyLoss()(logits, target)


def test_cross_entropy_errors_on_bad_reduction_and_early_backward():
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        dl.CrossEntropyLoss("none")
    with pytest.raises(RuntimeError, match="CrossEntropyLoss: backward called before forward"):
        dl.CrossEntropyLoss().backward()
