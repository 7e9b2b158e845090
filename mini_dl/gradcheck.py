"""The gradient checker: a module's hand-written backward against PyTorch's autograd and against
central finite differences, in float64, for the input gradient and every parameter gradient.

This is the one file of the package that calls PyTorch's automatic differentiation (through
``torch.func.vjp``, which builds no ``requires_grad`` tensors), because checking against it is
its job. No module's forward or backward uses it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .module import Module

AUTOGRAD_RTOL = 1e-8  # two float64 evaluations of the same formula agree to ~1e-15; margin for sums
FINITE_DIFFERENCE_RTOL = 1e-6  # eps = 1e-6: truncation ~eps^2, round-off ~1e-16/eps = 1e-10
# A gradient that is zero up to round-off (a convolution's bias before batch normalisation, which
# subtracts every channel's mean) has no meaningful relative error: it passes when its absolute
# error is at the round-off of each comparison (O(1) inputs and upstream gradients).
AUTOGRAD_ATOL = 1e-12
FINITE_DIFFERENCE_ATOL = 1e-8


@dataclass
class GradCheckRow:
    name: str
    shape: tuple
    autograd_abs: float
    autograd_rel: float
    finite_difference_abs: float | None  # None: not applicable (the forward value)
    finite_difference_rel: float | None

    @property
    def passed(self) -> bool:  # NaN errors compare False, so they fail
        return ((self.autograd_rel <= AUTOGRAD_RTOL or self.autograd_abs <= AUTOGRAD_ATOL)
                and (self.finite_difference_rel is None
                     or self.finite_difference_rel <= FINITE_DIFFERENCE_RTOL
                     or self.finite_difference_abs <= FINITE_DIFFERENCE_ATOL))


@dataclass
class GradCheckReport:
    """One row per checked tensor (the output's value first, then inputs and parameters)."""
    module: str
    reference: str
    rows: list

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def __str__(self) -> str:
        lines = [(f"{self.module} vs {self.reference} and finite differences (float64): "
                 f"{'PASSED' if self.passed else 'FAILED'}"),
                 (f"{'tensor':<14}{'shape':<14}{'autograd abs':>14}{'rel':>10}"
                 f"{'finite-diff abs':>17}{'rel':>10}  ok"),
                 ]
        for r in self.rows:
            fd_abs, fd_rel = (("-", "-") if r.finite_difference_rel is None else
                              (f"{r.finite_difference_abs:.1e}", f"{r.finite_difference_rel:.1e}"))
            lines.append(f"{r.name:<14}{r.shape!s:<14}{r.autograd_abs:>14.1e}"
                         f"{r.autograd_rel:>10.1e}{fd_abs:>17}{fd_rel:>10}  "
                         f"{'yes' if r.passed else 'NO'}")
        lines.append(f"tolerances: relative error <= {AUTOGRAD_RTOL:g} (autograd), "
                     f"<= {FINITE_DIFFERENCE_RTOL:g} (finite differences), or absolute error "
                     f"<= {AUTOGRAD_ATOL:g} and {FINITE_DIFFERENCE_ATOL:g}")
        return "\n".join(lines)

    __repr__ = __str__


def _errors(ours: torch.Tensor, expected: torch.Tensor) -> tuple[float, float]:
    absolute = (ours - expected).abs().max().item() if ours.numel() else 0.0
    scale = max(ours.abs().max().item(), expected.abs().max().item()) if ours.numel() else 0.0
    return absolute, (absolute / scale if scale > 0 else absolute)


def check_gradients(module: Module, *inputs, reference=None, wrt: tuple[int, ...] = (0,),
                    eps: float = 1e-6, seed: int = 0) -> GradCheckReport:
    """Check ``module.backward`` in float64 and return a per-tensor report.

    Args:
        module: a mini_dl Module (layer, activation, loss or container); it is copied to float64,
            the original is not touched. It is checked in the mode it is in (``train()`` or
            ``eval()``); its buffers (running statistics) are restored before every forward,
            so that finite differences never see them drift, and a torch ``reference`` gets
            them and the same mode.
        inputs: the forward's arguments, each a shape tuple (filled with seeded standard-normal
            float64 values) or a tensor (floating tensors are cast to float64).
        reference: optional PyTorch counterpart (a ``torch.nn.Module``, given our parameters
            through ``load_state_dict``, or a function of the inputs). Without one, autograd
            differentiates the module's own forward.
        wrt: indices of the inputs that ``backward`` returns gradients for (losses: the
            prediction); ``()`` for a module whose inputs have none (Embedding's integer indices:
            its backward returns None).
        eps: finite-difference step.
        seed: seeds the inputs, the upstream gradient, and the RNG before every forward, so that
            stochastic modules (dropout) draw the same mask each time.

    The scalar checked is ``sum(G * forward(inputs))`` for a random upstream gradient ``G``.

    Example:
        >>> import mini_dl as dl
        >>> dl.check_gradients(dl.Linear(3, 2), (4, 3)).passed
        True
    """
    if not isinstance(module, Module):
        raise TypeError(f"check_gradients: module must be a mini_dl Module, got "
                        f"{type(module).__name__}")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for item in inputs:
        if isinstance(item, torch.Tensor):
            values.append(item.detach().double().clone(memory_format=torch.contiguous_format)
                          if item.is_floating_point() else item)  # contiguous: perturbed by view
        elif isinstance(item, (tuple, list, torch.Size)):
            values.append(torch.randn(tuple(item), generator=generator, dtype=torch.float64))
        else:
            raise TypeError(f"check_gradients: inputs must be shapes or tensors, got {item!r}")
    if any(i >= len(values) for i in wrt):
        raise ValueError(f"check_gradients: wrt={wrt} but only {len(values)} input(s) given")
    ours = copy.deepcopy(module).double()
    names = [name for name, _ in ours.named_parameters()]
    parameters = [p for p in ours.parameters()]
    # buffers as they were before the first forward: a module in training mode may update them
    # (running statistics), and every evaluation must start from the same state
    buffers = [(owner, name, owner.__dict__[name].clone())
               for _, owner in ours.named_modules() for name in owner._buffers
               if owner.__dict__[name] is not None]

    def run(*args):
        for owner, name, value in buffers:  # a fresh copy: under torch.func.vjp, updating a
            owner.__dict__[name] = value.clone()  # tensor made outside would be refused
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return ours.forward(*args)

    with torch.no_grad():
        output = run(*values)
    grad_output = torch.randn(output.shape, generator=generator, dtype=torch.float64)

    # 1. the hand-written backward
    ours.zero_grad()
    grads = ours.backward(grad_output)
    if grads is None and not wrt:  # no input gradient (integer indices)
        grads = []
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    if len(grads) != len(wrt):
        raise ValueError(f"check_gradients: backward returned {len(grads)} gradient(s), "
                         f"wrt={wrt} expects {len(wrt)}")
    # a gradient still None (dropped by zero_grad(set_to_none=True), never written) counts as 0
    ours_all = grads + [torch.zeros_like(p.data) if p.grad is None else p.grad.clone()
                        for p in parameters]

    # 2. autograd, through torch.func.vjp (no tensor of ours is marked requires_grad)
    originals = [p.data for p in parameters]

    def function(differentiable, parameter_values):
        args = list(values)
        for index, value in zip(wrt, differentiable):
            args[index] = value
        if reference is None:
            for p, value in zip(parameters, parameter_values):
                p.data = value
            return run(*args)
        if isinstance(reference_module, torch.nn.Module):
            state = dict(zip(names, parameter_values))
            # fresh buffers made inside the transform: torch's BatchNorm updates its running
            # statistics in place, which torch.func refuses on a tensor made outside it
            state.update((name, buffer.clone()) for name, buffer in reference_buffers)
            return torch.func.functional_call(reference_module, state, tuple(args))
        return reference_module(*args)

    reference_module = reference
    if isinstance(reference, torch.nn.Module):
        reference_module = copy.deepcopy(reference).double()
        for owner, name, value in buffers:  # the state before the first forward
            owner.__dict__[name] = value.clone()
        reference_module.load_state_dict(ours.state_dict())
        reference_module.train(ours.training)  # batch statistics or running ones, as ours
        reference_buffers = list(reference_module.named_buffers())
    try:
        expected_output, vjp = torch.func.vjp(function, [values[i] for i in wrt], originals)
        expected_inputs, expected_parameters = vjp(grad_output)
    finally:
        for p, value in zip(parameters, originals):
            p.data = value
    expected_all = list(expected_inputs) + list(expected_parameters)

    # 3. central finite differences of sum(G * forward)
    def objective():
        with torch.no_grad():
            return (run(*values) * grad_output).sum().item()

    numeric_all = []
    for tensor in [values[i] for i in wrt] + originals:
        numeric = torch.zeros_like(tensor)
        flat, numeric_flat = tensor.view(-1), numeric.view(-1)
        for k in range(flat.numel()):
            saved = flat[k].item()
            flat[k] = saved + eps
            plus = objective()
            flat[k] = saved - eps
            minus = objective()
            flat[k] = saved
            numeric_flat[k] = (plus - minus) / (2 * eps)
        numeric_all.append(numeric)

    tensor_names = [("input" if len(wrt) == 1 else f"input[{i}]") for i in wrt] + names
    out_abs, out_rel = _errors(output, expected_output.detach())
    rows = [GradCheckRow("output", tuple(output.shape), out_abs, out_rel, None, None)]
    for name, mine, expected, numeric in zip(tensor_names, ours_all, expected_all, numeric_all):
        rows.append(GradCheckRow(name, tuple(mine.shape), *_errors(mine, expected.detach()),
                                 *_errors(mine, numeric)))
    label = ("autograd of its own forward" if reference is None else
             f"torch autograd of {getattr(reference, '__name__', type(reference).__name__)}")
    return GradCheckReport(type(module).__name__, label, rows)
