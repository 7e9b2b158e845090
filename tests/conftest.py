"""Shared fixtures: the comparison of a mini_dl module with its torch.nn twin under autograd.

The fixtures are session-scoped functions (they hold no state), so hypothesis tests may use them.
"""
from __future__ import annotations

import pytest
import torch

import torch_twin

# Both sides compute the same float64 formulas, possibly summing in a different order: that costs
# a few ulps per term (eps = 2.2e-16, sums of <= ~100 terms here), far below 1e-12, while any
# formula error (a missing factor, a transpose) is an O(1) relative error.
FLOAT64_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="device of the tests that compare mini_dl with torch.nn (the "
                          "matches_torch fixture and tests/test_device.py): cpu (the default), "
                          "cuda, cuda:1, ...")


def pytest_configure(config):
    name = config.getoption("device", default="cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise pytest.UsageError(f"--device {name!r}: not a torch device ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {name}: torch {torch.__version__} sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise pytest.UsageError(f"--device {name}: expected cpu or cuda")


@pytest.fixture(scope="session")
def device(pytestconfig) -> torch.device:
    """The device given by ``pytest --device`` (default: the CPU)."""
    return torch.device(pytestconfig.getoption("device"))


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Seeded standard-normal tensor, independent of the global RNG."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype)


@pytest.fixture(scope="session")
def random_tensor():
    """``random_tensor(*shape, seed=0, dtype=torch.float64)``: a seeded standard-normal tensor."""
    return randn


@pytest.fixture(scope="session")
def matches_torch(device):
    """``matches_torch(module, *inputs, grad_output=None)`` asserts that a float64 mini_dl module
    agrees with ``torch_twin.to_torch(module)`` under autograd: forward value, gradient of the
    first input, and every parameter gradient (by name). ``grad_output=None`` is for losses
    (``backward()`` with no argument, ``loss.backward()`` on the torch side); a loss also
    accepts a number or 0-dim tensor as ``grad_output``. Module, inputs and twin are moved to
    the ``--device`` first (the module in place)."""

    def check(module, *inputs, grad_output=None):
        module.to(device)
        inputs = [t.to(device) for t in inputs]
        if isinstance(grad_output, torch.Tensor):
            grad_output = grad_output.to(device)
        twin = torch_twin.to_torch(module)
        torch_inputs = [inputs[0].clone().requires_grad_()] + [t.clone() for t in inputs[1:]]
        expected = twin(*torch_inputs)
        module.zero_grad()
        output = module(*inputs)
        torch.testing.assert_close(output, expected.detach(), **FLOAT64_TOLERANCE)
        if grad_output is None:
            grad_input = module.backward()
            expected.backward()
        else:
            grad_input = module.backward(grad_output)
            expected.backward(torch.as_tensor(grad_output, dtype=expected.dtype,
                                              device=expected.device))
        torch.testing.assert_close(grad_input, torch_inputs[0].grad, **FLOAT64_TOLERANCE)
        theirs = dict(twin.named_parameters())
        ours = dict(module.named_parameters())
        assert list(ours) == list(theirs)
        for name, parameter in ours.items():
            torch.testing.assert_close(parameter.grad, theirs[name].grad, **FLOAT64_TOLERANCE,
                                       msg=lambda m, name=name: f"{name}: {m}")

    return check
