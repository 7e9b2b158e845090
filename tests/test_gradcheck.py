"""The gradient checker passes correct modules and bites on wrong ones."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin

# -- correct modules pass -------------------------------------------------------------------------

CORRECT = {
    "Linear": (lambda: dl.Linear(3, 2), [(4, 3)]),
    "Linear-no-bias": (lambda: dl.Linear(3, 2, bias=False), [(2, 2, 3)]),
    "ReLU": (dl.ReLU, [(4, 3)]),
    "Tanh": (dl.Tanh, [(4, 3)]),
    "Sigmoid": (dl.Sigmoid, [(4, 3)]),
    "MSELoss": (dl.MSELoss, [(4, 3), (4, 3)]),
    "MSELoss-sum": (lambda: dl.MSELoss("sum"), [(5,), (5,)]),
    "Sequential": (lambda: dl.Sequential(dl.Linear(3, 4), dl.Tanh(), dl.Linear(4, 2)), [(5, 3)]),
}


@pytest.mark.parametrize("make, shapes", CORRECT.values(), ids=CORRECT.keys())
def test_gradient_checker_passes_correct_modules_against_their_own_forward(make, shapes):
    torch.manual_seed(0)
    report = dl.check_gradients(make(), *shapes)
    assert report.passed, report
    assert report.reference == "autograd of its own forward"


# -- wrong modules fail: the checker bites ------------------------------------------------------

class ScaledWeightGradLinear(dl.Linear):
    """Bug: dL/dW off by 1%. (The checker zeroes gradients first, so scaling the total is
    scaling this call's contribution.)"""

    def backward(self, grad_output):
        grad_input = super().backward(grad_output)
        self.weight.grad.mul_(1.01)
        return grad_input


class DroppedBiasGradLinear(dl.Linear):
    """Bug: forgets to accumulate dL/db."""

    def backward(self, grad_output):
        bias_grad = self.bias.grad.clone()
        grad_input = super().backward(grad_output)
        self.bias.grad.copy_(bias_grad)
        return grad_input


class ScaledInputGradLinear(dl.Linear):
    """Bug: dL/dx off by 1%."""

    def backward(self, grad_output):
        return super().backward(grad_output) * 1.01


class TransposedWeightGradLinear(dl.Linear):
    """Bug: dL/dW = x^T G instead of G^T x (same shape for a square layer)."""

    def backward(self, grad_output):
        grad_input = super().backward(grad_output)
        self.weight.grad.copy_(self.weight.grad.t().clone())
        return grad_input


class SlightlyScaledWeightGradLinear(dl.Linear):
    """Bug: dL/dW off by one part in a million, far above the 1e-8 autograd tolerance."""

    def backward(self, grad_output):
        grad_input = super().backward(grad_output)
        self.weight.grad.mul_(1 + 1e-6)
        return grad_input


class WrongMaskReLU(dl.ReLU):
    """Bug: mask taken from y >= 0, which is always true: the gradient passes everywhere."""

    def grad_input(self, grad_output, output):
        return grad_output * (output >= 0)


class WrongDerivativeTanh(dl.Tanh):
    """Bug: 1 - y instead of 1 - y^2."""

    def grad_input(self, grad_output, output):
        return grad_output * (1 - output)


class MissingFactorSigmoid(dl.Sigmoid):
    """Bug: y instead of y (1 - y)."""

    def grad_input(self, grad_output, output):
        return grad_output * output


class NaNTanh(dl.Tanh):
    """Bug: a NaN in the gradient (NaN errors must fail, not compare as small)."""

    def grad_input(self, grad_output, output):
        result = super().grad_input(grad_output, output)
        result.view(-1)[0] = float("nan")
        return result


class MissingFactorTwoMSELoss(dl.MSELoss):
    """Bug: d(p - t)^2/dp taken as (p - t) instead of 2 (p - t)."""

    def backward(self, grad_output=None):
        return super().backward(grad_output) / 2


WRONG = {
    "Linear-weight-grad-1.01": (lambda: ScaledWeightGradLinear(3, 2), [(4, 3)], ["weight"]),
    "Linear-weight-grad-1e-6": (lambda: SlightlyScaledWeightGradLinear(3, 2), [(4, 3)],
                                ["weight"]),
    "Linear-dropped-bias-grad": (lambda: DroppedBiasGradLinear(3, 2), [(4, 3)], ["bias"]),
    "Linear-input-grad-1.01": (lambda: ScaledInputGradLinear(3, 2), [(4, 3)], ["input"]),
    "Linear-transposed-weight-grad": (lambda: TransposedWeightGradLinear(3, 3), [(4, 3)],
                                      ["weight"]),
    "ReLU-wrong-mask": (WrongMaskReLU, [(4, 3)], ["input"]),
    "Tanh-wrong-derivative": (WrongDerivativeTanh, [(4, 3)], ["input"]),
    "Sigmoid-missing-factor": (MissingFactorSigmoid, [(4, 3)], ["input"]),
    "Tanh-NaN": (NaNTanh, [(4, 3)], ["input"]),
    "MSELoss-missing-factor-two": (MissingFactorTwoMSELoss, [(4, 3), (4, 3)], ["input"]),
    "Sequential-with-a-wrong-layer": (
        lambda: dl.Sequential(dl.Linear(3, 4), dl.Tanh(), ScaledWeightGradLinear(4, 2)), [(5, 3)],
        ["2.weight"]),
}


@pytest.mark.parametrize("make, shapes, wrong_rows", WRONG.values(), ids=WRONG.keys())
def test_gradient_checker_fails_a_wrong_backward_on_exactly_the_wrong_tensors(
        make, shapes, wrong_rows):
    torch.manual_seed(0)
    report = dl.check_gradients(make(), *shapes)
    assert not report.passed, report
    assert [row.name for row in report.rows if not row.passed] == wrong_rows, report
    assert "FAILED" in str(report)


def test_a_wrong_gradient_fails_both_the_autograd_and_the_finite_difference_comparison():
    torch.manual_seed(0)
    row = dl.check_gradients(ScaledWeightGradLinear(3, 2), (4, 3)).rows[2]
    assert row.name == "weight"
    # A 1% error in the gradient is a ~1e-2 relative error on both sides.
    assert 5e-3 < row.autograd_rel < 2e-2 and 5e-3 < row.finite_difference_rel < 2e-2


class LeakyReLU(dl.ReLU):
    """Bug in the forward: a leaky ReLU posing as a ReLU, with the backward that matches its
    own (wrong) forward. Only a reference implementation can catch it."""

    def function(self, x):
        return x.clamp_min(0) + 0.01 * x.clamp_max(0)

    def grad_input(self, grad_output, output):
        return grad_output * torch.where(output > 0, 1.0, 0.01)


def test_a_wrong_forward_passes_against_itself_but_fails_against_the_torch_reference():
    assert dl.check_gradients(LeakyReLU(), (4, 3)).passed
    report = dl.check_gradients(LeakyReLU(), (4, 3), reference=torch.nn.ReLU())
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["output", "input"]


@pytest.mark.parametrize("ours, reference", [(dl.Tanh, torch.nn.Sigmoid),
                                             (dl.Sigmoid, torch.nn.Tanh),
                                             (lambda: dl.MSELoss("sum"), torch.nn.MSELoss)],
                         ids=["Tanh-vs-Sigmoid", "Sigmoid-vs-Tanh", "sum-vs-mean"])
def test_a_module_checked_against_the_wrong_reference_fails(ours, reference):
    shapes = [(4, 3), (4, 3)] if reference is torch.nn.MSELoss else [(4, 3)]
    assert not dl.check_gradients(ours(), *shapes, reference=reference()).passed


def test_a_linear_with_a_different_reference_architecture_fails():
    torch.manual_seed(0)

    def reference(x):  # y = x W (no transpose, no bias): a plausible slip
        return x @ torch.ones(3, 2, dtype=torch.float64)

    assert not dl.check_gradients(dl.Linear(3, 2), (4, 3), reference=reference).passed


# -- the report -----------------------------------------------------------------------------------

def test_report_string_has_a_header_a_row_per_tensor_and_the_tolerances():
    torch.manual_seed(0)
    report = dl.check_gradients(dl.Linear(3, 2), (4, 3), reference=torch.nn.Linear(3, 2))
    lines = str(report).splitlines()
    assert lines[0].startswith("Linear vs torch autograd of Linear and finite differences "
                               "(float64): PASSED")
    assert lines[1].split()[:3] == ["tensor", "shape", "autograd"]
    rows = lines[2:-1]
    assert [line.split()[0] for line in rows] == ["output", "input", "weight", "bias"]
    assert all(line.endswith("yes") for line in rows)
    assert "(4, 3)" in rows[1] and "(2, 3)" in rows[2] and "(2,)" in rows[3]
    assert lines[-1] == ("tolerances: relative error <= 1e-08 (autograd), "
                         "<= 1e-06 (finite differences), or absolute error <= 1e-12 and 1e-08")
    assert repr(report) == str(report)


def test_report_marks_the_failing_row():
    torch.manual_seed(0)
    lines = str(dl.check_gradients(DroppedBiasGradLinear(3, 2), (4, 3))).splitlines()
    assert lines[0].endswith("FAILED")
    assert [line.split()[0] for line in lines if line.endswith("NO")] == ["bias"]


def test_report_names_each_input_when_checking_several():
    report = dl.check_gradients(dl.MSELoss(), (3,), (3,))
    assert [row.name for row in report.rows] == ["output", "input"]


def test_report_names_a_function_reference():
    def mse(prediction, target):
        return (prediction - target).square().mean()

    report = dl.check_gradients(dl.MSELoss(), (4, 2), (4, 2), reference=mse)
    assert report.passed, report
    assert report.reference == "torch autograd of mse"


# -- behaviour ------------------------------------------------------------------------------------

def test_gradient_checker_leaves_the_module_untouched():
    layer = dl.Linear(3, 2)
    before = [p.data.clone() for p in layer.parameters()]
    dl.check_gradients(layer, (4, 3), reference=torch.nn.Linear(3, 2))
    assert all(p.data.dtype == torch.float32 for p in layer.parameters())
    assert all(torch.equal(p.data, old) for p, old in zip(layer.parameters(), before))
    assert all(not p.grad.any() for p in layer.parameters())
    assert layer.input is None


def test_gradient_checker_is_deterministic_and_accepts_tensor_inputs():
    layer = dl.Linear(3, 2)
    x = torch.randn(4, 3)  # float32: the checker casts it to float64
    first = dl.check_gradients(layer, x)
    second = dl.check_gradients(layer, x)
    assert first.passed and first.rows == second.rows


# -- bad arguments --------------------------------------------------------------------------------

def test_gradient_checker_rejects_a_module_that_is_not_mini_dl():
    with pytest.raises(TypeError, match=r"check_gradients: module must be a mini_dl Module, "
                                        r"got Linear"):
        dl.check_gradients(torch.nn.Linear(3, 2), (4, 3))


@pytest.mark.parametrize("bad", [3, "4, 3", None])
def test_gradient_checker_rejects_inputs_that_are_neither_shapes_nor_tensors(bad):
    with pytest.raises(TypeError, match=r"check_gradients: inputs must be shapes or tensors, got"):
        dl.check_gradients(dl.Tanh(), bad)


def test_gradient_checker_rejects_wrt_beyond_the_inputs():
    message = r"check_gradients: wrt=\(1,\) but only 1 input\(s\) given"
    with pytest.raises(ValueError, match=message):
        dl.check_gradients(dl.Tanh(), (4, 3), wrt=(1,))


def test_gradient_checker_rejects_wrt_that_backward_does_not_return():
    message = r"check_gradients: backward returned 1 gradient\(s\), wrt=\(0, 1\) expects 2"
    with pytest.raises(ValueError, match=message):
        dl.check_gradients(dl.MSELoss(), (4, 3), (4, 3), wrt=(0, 1))


def test_a_gradient_left_none_counts_as_zero_and_fails_clearly():
    class ForgetsItsBias(dl.Linear):
        def backward(self, grad_output):
            bias = self.bias
            self.bias = None  # backward skips the bias: its gradient stays None
            try:
                return super().backward(grad_output)
            finally:
                self.bias = bias

    layer = ForgetsItsBias(3, 2).double()
    layer.zero_grad(set_to_none=True)
    report = dl.check_gradients(layer, (4, 3), reference=torch.nn.Linear(3, 2))
    assert not report.passed
    assert [row.name for row in report.rows if not row.passed] == ["bias"]


# -- modules with buffers and modes ---------------------------------------------------------------

class RunningOffset(dl.Module):
    """y = x * w + m, where m is a running sum that every training forward adds x.mean(0) to
    after using it: a buffer that drifts with every call, as running statistics do."""

    def __init__(self):
        super().__init__()
        self.weight = dl.Parameter(torch.full((3,), 2.0))
        self.register_buffer("running_sum", torch.ones(3))

    def forward(self, x):
        self.input = x
        y = x * self.weight.data + self.running_sum
        if self.training:
            self.running_sum = self.running_sum + x.mean(0)
        return y

    def backward(self, grad_output):
        self.weight.grad += (grad_output * self.saved("input")).sum(0)
        return grad_output * self.weight.data


def test_buffers_are_restored_before_every_forward_so_finite_differences_see_no_drift():
    module = RunningOffset()
    report = dl.check_gradients(module, (4, 3))
    # without the restore, each of the 2 * 15 evaluations would add a different offset
    assert report.passed, report
    assert module.running_sum.tolist() == [1.0, 1.0, 1.0]  # the original is untouched


def test_a_torch_reference_is_checked_in_the_mode_of_the_module():
    # torch.nn.Dropout starts in training mode (random masks); our eval() module is the identity
    # and the reference follows it into eval mode
    assert dl.check_gradients(dl.Dropout(0.5).eval(), (4, 3),
                              reference=torch.nn.Dropout(0.5)).passed


def test_a_gradient_that_is_zero_up_to_round_off_passes_on_its_absolute_error():
    # batch normalisation subtracts each channel's mean, so the convolution's bias before it has
    # a zero gradient: relative errors of round-off against round-off are meaningless
    torch.manual_seed(0)
    model = dl.Sequential(dl.Conv2d(2, 3, 3), dl.BatchNorm2d(3))
    report = dl.check_gradients(model, (2, 2, 5, 5), reference=torch_twin.to_torch(model))
    bias = next(row for row in report.rows if row.name == "0.bias")
    assert bias.autograd_abs < 1e-12 and bias.autograd_rel > 1e-8  # the reason for the floor
    assert report.passed, report


def test_the_absolute_floor_does_not_hide_a_small_error_in_an_order_one_gradient():
    class Nudged(dl.Tanh):
        def backward(self, grad_output):
            return super().backward(grad_output) + 1e-7

    report = dl.check_gradients(Nudged(), (4, 3))
    assert not report.passed
    assert [row.passed for row in report.rows] == [True, False]


def test_a_zero_dim_input_shape_is_drawn_as_a_scalar():
    report = dl.check_gradients(dl.Tanh(), (), reference=torch.nn.Tanh())
    assert report.passed, report


def test_a_non_contiguous_input_is_checked_like_its_contiguous_copy():
    x = torch.randn(3, 4, dtype=torch.float64).t()  # (4, 3), strided
    assert not x.is_contiguous()
    report = dl.check_gradients(dl.Linear(3, 2), x, reference=torch.nn.Linear(3, 2))
    assert report.passed, report
