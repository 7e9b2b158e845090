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


def max_parameter_difference(model: dl.Module, twin: torch.nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of the two models."""
    theirs = twin.state_dict()
    return max((p - theirs[name].detach()).abs().max().item()
               for name, p in model.state_dict().items())
