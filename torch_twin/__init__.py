"""PyTorch twins of mini_dl models, for the book's checks, the tests and the benchmarks.

This package is the *reference side*: it uses ``torch.nn``, autograd and ``torch.optim`` on
purpose, so that every mini_dl result can be compared with PyTorch run side by side. ``mini_dl``
itself never imports it.

    >>> import torch, mini_dl as dl, torch_twin
    >>> model = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 2))
    >>> twin = torch_twin.to_torch(model)
    >>> twin
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
    )
    >>> x = torch.randn(4, 2)
    >>> torch.allclose(model(x), twin(x))
    True
"""
from __future__ import annotations

import torch

import mini_dl as dl


def _simple(module: dl.Module) -> torch.nn.Module:
    name = type(module).__name__
    if isinstance(module, dl.Linear):
        return torch.nn.Linear(module.in_features, module.out_features,
                               bias=module.bias is not None)
    if isinstance(module, dl.Sequential):
        return torch.nn.Sequential(*[_simple(child) for child in module])
    if name in ("MSELoss", "CrossEntropyLoss"):
        return getattr(torch.nn, name)(reduction=module.reduction)
    if name == "Dropout":
        return torch.nn.Dropout(module.p)
    if hasattr(torch.nn, name):
        return getattr(torch.nn, name)()
    raise TypeError(f"to_torch: no torch.nn counterpart known for {name}")


def to_torch(module: dl.Module) -> torch.nn.Module:
    """The ``torch.nn`` module with the same structure, parameters (copied through state_dict,
    so keys and layouts must agree), dtype, device and train/eval mode."""
    twin = _simple(module)
    parameters = list(module.parameters())
    if parameters:
        twin.to(dtype=parameters[0].data.dtype, device=parameters[0].data.device)
    twin.load_state_dict(module.state_dict())
    twin.train(module.training)
    return twin


def fit_torch(model: torch.nn.Module, criterion: torch.nn.Module,
              optimizer: torch.optim.Optimizer, batches: dl.MiniBatches, *, epochs: int,
              scheduler=None) -> list[float]:
    """The classic PyTorch loop over the same mini-batches ``mini_dl.fit`` sees (same seed);
    returns the mean mini-batch loss of each epoch."""
    losses = []
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, target in batches:
            optimizer.zero_grad()
            loss = criterion(model(x), target)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        losses.append(total / count)
        if scheduler is not None:
            scheduler.step(losses[-1])
    return losses


def train_side_by_side(model: dl.Module, optimizer: dl.Optimizer, twin: torch.nn.Module,
                       torch_optimizer: torch.optim.Optimizer, criterion: dl.Module,
                       x: torch.Tensor, target: torch.Tensor, *, steps: int) -> list[float]:
    """Full-batch training of a mini_dl model and its torch twin, one optimizer step each per
    iteration on the same ``(x, target)``; returns the largest parameter difference after each
    step. Build ``twin`` with :func:`to_torch` and each optimizer on its own model's parameters.

        >>> import torch, mini_dl as dl, torch_twin
        >>> model = dl.Sequential(dl.Linear(3, 4), dl.Tanh(), dl.Linear(4, 2)).double()
        >>> twin = torch_twin.to_torch(model)
        >>> differences = torch_twin.train_side_by_side(
        ...     model, dl.Adam(model.parameters(), lr=0.01), twin,
        ...     torch.optim.Adam(twin.parameters(), lr=0.01), dl.MSELoss(),
        ...     torch.randn(8, 3, dtype=torch.float64), torch.zeros(8, 2, dtype=torch.float64),
        ...     steps=50)
        >>> len(differences), max(differences) < 1e-12
        (50, True)
    """
    torch_criterion = _simple(criterion)
    differences = []
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(model(x), target)
        model.backward(criterion.backward())
        optimizer.step()
        torch_optimizer.zero_grad()
        torch_criterion(twin(x), target).backward()
        torch_optimizer.step()
        differences.append(max_parameter_difference(model, twin))
    return differences


def step_side_by_side(optimizer: dl.Optimizer, torch_optimizer: torch.optim.Optimizer,
                      gradient, *, steps: int) -> list[float]:
    """Step a mini_dl optimizer and a torch one whose parameters start equal, giving both the
    gradient ``gradient(value)`` of each parameter's current value; returns the largest
    parameter difference after each step. Only the update rules can make the two drift apart.

        >>> import torch, mini_dl as dl, torch_twin
        >>> start = torch.randn(3, dtype=torch.float64)
        >>> ours, theirs = dl.Parameter(start.clone()), start.clone().requires_grad_()
        >>> torch_twin.step_side_by_side(dl.SGD([ours], lr=0.1, momentum=0.9),
        ...     torch.optim.SGD([theirs], lr=0.1, momentum=0.9), torch.sin, steps=3)
        [0.0, 0.0, 0.0]
    """
    theirs = [p for group in torch_optimizer.param_groups for p in group["params"]]
    differences = []
    for _ in range(steps):
        for ours, their in zip(optimizer.params, theirs):
            ours.grad.copy_(gradient(ours.data))
            their.grad = gradient(their.detach())
        optimizer.step()
        torch_optimizer.step()
        differences.append(max((ours.data - their.detach()).abs().max().item()
                               for ours, their in zip(optimizer.params, theirs)))
    return differences


def max_parameter_difference(model: dl.Module, twin: torch.nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of the two models."""
    theirs = twin.state_dict()
    return max((p - theirs[name].detach()).abs().max().item()
               for name, p in model.state_dict().items())
