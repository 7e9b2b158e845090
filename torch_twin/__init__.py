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

import statistics

import torch

import mini_dl as dl

# Layers whose constructor arguments are attributes of the same names on both sides (mini_dl
# keeps torch.nn's attribute names); "bias" is read as "has a bias parameter".
CONSTRUCTOR_ARGUMENTS = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "bias", "padding_mode"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                  "divisor_override"),
    "AdaptiveAvgPool2d": ("output_size",),
    "Flatten": ("start_dim", "end_dim"),
    "Unflatten": ("dim", "unflattened_size"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias"),
    "SyncBatchNorm": ("num_features", "eps", "momentum", "affine", "track_running_stats",
                      "bias"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine", "bias"),
    "Dropout": ("p",),
    "Embedding": ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type",
                  "scale_grad_by_freq", "sparse"),
    "MultiheadAttention": ("embed_dim", "num_heads", "dropout", "bias", "kdim", "vdim",
                           "batch_first"),
    "LeakyReLU": ("negative_slope",),
    "ELU": ("alpha",),
    "GELU": ("approximate",),
    "Softplus": ("beta", "threshold"),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "MSELoss": ("reduction",),
    "L1Loss": ("reduction",),
    "HuberLoss": ("reduction", "delta"),
    "SmoothL1Loss": ("reduction", "beta"),
    "CrossEntropyLoss": ("weight", "ignore_index", "reduction", "label_smoothing"),
    "NLLLoss": ("weight", "ignore_index", "reduction"),
    "BCELoss": ("weight", "reduction"),
    "BCEWithLogitsLoss": ("weight", "reduction", "pos_weight"),
    "TransformerEncoderLayer": ("d_model", "nhead", "dim_feedforward", "dropout", "activation",
                                "layer_norm_eps", "batch_first", "norm_first", "bias"),
    "TransformerEncoder": ("encoder_layer", "num_layers", "norm", "enable_nested_tensor",
                           "mask_check"),
}


def _other(module):
    """The twin of ``module`` in the other framework (its state comes later, by state_dict)."""
    return _simple(module) if isinstance(module, dl.Module) else _mini(module)


def _activation(layer):
    """A transformer layer's activation as a constructor argument: the string for torch's
    F.relu / F.gelu (and for mini_dl's ReLU / GELU chosen by string: no registered child),
    else the twin of the module."""
    activation = layer.activation
    if isinstance(layer, dl.Module) and "activation" not in layer._modules:
        return {"ReLU": "relu", "GELU": "gelu"}[type(activation).__name__]
    functions = {torch.nn.functional.relu: "relu", torch.nn.functional.gelu: "gelu"}
    return functions[activation] if activation in functions else _other(activation)


# Transformer arguments that torch keeps only inside the children (both sides read the same)
_TRANSFORMER_READERS = {
    "d_model": lambda m: m.self_attn.embed_dim,
    "nhead": lambda m: m.self_attn.num_heads,
    "dim_feedforward": lambda m: m.linear1.out_features,
    "dropout": lambda m: m.dropout.p,
    "activation": _activation,
    "layer_norm_eps": lambda m: m.norm1.eps,
    "batch_first": lambda m: m.self_attn.batch_first,
    "bias": lambda m: m.linear1.bias is not None,
    "encoder_layer": lambda m: _other(m.layers[0]),
    "num_layers": lambda m: len(m.layers),
    "norm": lambda m: None if m.norm is None else _other(m.norm),
}


def _arguments(module, names: tuple[str, ...]) -> dict:
    """The constructor arguments of ``module`` (either framework's), read off its attributes."""
    arguments = {}
    transformer = hasattr(module, "self_attn") or hasattr(module, "layers")
    for name in names:
        if transformer and name in _TRANSFORMER_READERS:
            arguments[name] = _TRANSFORMER_READERS[name](module)
        elif name == "bias" and hasattr(module, "out_proj"):  # MultiheadAttention's projections
            arguments[name] = module.out_proj.bias is not None
        elif name == "bias":  # a norm without affine parameters has no bias either: the default
            affine = getattr(module, "elementwise_affine", getattr(module, "affine", True))
            arguments[name] = module.bias is not None if affine else True
        else:  # a tensor (a loss's class weights) is copied: the twins share no storage
            value = getattr(module, name)
            arguments[name] = value.detach().clone() if isinstance(value, torch.Tensor) else value
    return arguments


def _known_name(module, library) -> str:
    """The name of the first class of ``module``'s MRO that ``library`` (mini_dl or torch.nn)
    defines: a subclass of ``dl.Linear`` has the twin of a Linear."""
    for cls in type(module).__mro__:
        if getattr(library, cls.__name__, None) is cls:
            return cls.__name__
    return type(module).__name__


def _simple(module: dl.Module) -> torch.nn.Module:
    name = _known_name(module, dl)
    if isinstance(module, dl.Sequential):
        return torch.nn.Sequential(*[_simple(child) for child in module])
    if name in CONSTRUCTOR_ARGUMENTS:
        return getattr(torch.nn, name)(**_arguments(module, CONSTRUCTOR_ARGUMENTS[name]))
    if hasattr(torch.nn, name):
        return getattr(torch.nn, name)()
    raise TypeError(f"to_torch: no torch.nn counterpart known for {name}")


def _mini(module: torch.nn.Module) -> dl.Module:
    name = _known_name(module, torch.nn)
    if isinstance(module, torch.nn.Sequential):
        return dl.Sequential(*[_mini(child) for child in module])
    if name in CONSTRUCTOR_ARGUMENTS:
        return getattr(dl, name)(**_arguments(module, CONSTRUCTOR_ARGUMENTS[name]))
    if name in dl.__all__ and isinstance(getattr(dl, name), type):
        return getattr(dl, name)()
    raise TypeError(f"from_torch: no mini_dl counterpart known for torch.nn.{name}")


def _copy_state(source, target):
    """``target`` (a twin of ``source``, either framework's) given the dtype and device of the
    first floating-point tensor of ``source``, its parameters and buffers (through state_dict),
    and each submodule's train/eval mode."""
    state = source.state_dict()
    like = next((t for t in state.values() if t.is_floating_point()), None)
    if like is not None:
        target.to(dtype=like.dtype, device=like.device)
    target.load_state_dict(state)
    for (_, theirs), (_, ours) in zip(source.named_modules(), target.named_modules()):
        ours.train(theirs.training)
    return target


def to_torch(module: dl.Module) -> torch.nn.Module:
    """The ``torch.nn`` module with the same structure, parameters and buffers (copied through
    state_dict, so keys and layouts must agree), dtype, device and train/eval mode."""
    return _copy_state(module, _simple(module))


def from_torch(twin: torch.nn.Module) -> dl.Module:
    """The mini_dl module with the same structure, parameters and buffers as a ``torch.nn``
    model built from layers mini_dl has (the reverse of :func:`to_torch`).

        >>> import torch, mini_dl as dl, torch_twin
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        >>> ours = torch_twin.from_torch(net)
        >>> list(ours.state_dict()) == list(net.state_dict())
        True
    """
    return _copy_state(twin, _mini(twin))


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



def fit_torch_together(twins: list[torch.nn.Module], criterion: torch.nn.Module, make_optimizer,
                       batches: list[dl.MiniBatches], *, epochs: int,
                       validation: tuple[torch.Tensor, torch.Tensor] | None = None,
                       make_scheduler=None) -> list[dict[str, list[float]]]:
    """Train several twins of one architecture at once, as one batch of models: twin i sees
    ``batches[i]``, as if trained alone with ``make_optimizer(twin.parameters())`` (and
    ``make_scheduler(optimizer)``). The twins are trained in place.

    Each step runs all forwards as one batched computation (``torch.vmap`` over
    ``torch.func.functional_call``, PyTorch's recipe for model ensembles) on the twins'
    parameters stacked along a new first dimension, then one ``backward`` of the summed losses:
    twin i's slice of the gradient is that of its own loss. Without schedulers one optimizer
    updates the stacked parameters, which is each twin's own update because torch.optim's SGD
    (momentum included), Adam and AdamW act element by element; with ``make_scheduler`` each
    twin keeps its own optimizer and scheduler (slower). After each epoch every twin is evaluated
    on ``validation`` in eval mode, and each scheduler steps on its twin's validation loss (the
    train loss without one), as ``mini_dl.fit`` does. Dropout draws different masks for different
    twins. Returns one history per twin: ``{"train_loss", "val_loss", "lr"}``, one entry per epoch.

        >>> import torch, mini_dl as dl, torch_twin
        >>> x, t = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64)
        >>> models = [dl.Sequential(dl.Linear(3, 4), dl.Tanh(), dl.Linear(4, 2)).double()
        ...           for _ in range(3)]
        >>> twins = [torch_twin.to_torch(model) for model in models]
        >>> _ = torch_twin.fit_torch_together(
        ...     twins, torch.nn.MSELoss(), lambda params: torch.optim.Adam(params, lr=0.01),
        ...     [dl.MiniBatches(x, t, batch_size=5, seed=seed) for seed in range(3)], epochs=4)
        >>> for seed, model in enumerate(models):  # each one alone, on its own batches
        ...     _ = dl.fit(model, dl.MSELoss(), dl.Adam(model.parameters(), lr=0.01),
        ...                dl.MiniBatches(x, t, batch_size=5, seed=seed), epochs=4, progress=False)
        >>> max(torch_twin.max_parameter_difference(m, tw) for m, tw in zip(models, twins)) < 1e-12
        True
    """
    import copy

    from torch.func import functional_call

    if not twins or len(twins) != len(batches):
        raise ValueError(f"fit_torch_together: need one MiniBatches per twin, got {len(twins)} "
                         f"twins and {len(batches)} MiniBatches")
    base = copy.deepcopy(twins[0]).to("meta")  # the structure; the parameters come in stacked
    names = [name for name, _ in twins[0].named_parameters()]
    own = [list(twin.parameters()) for twin in twins]
    if make_scheduler is None:  # one optimizer over the stacked parameters
        leaves = [torch.stack([p[i].detach() for p in own]).requires_grad_()
                  for i in range(len(names))]
        optimizers, schedulers = [make_optimizer(leaves)], [None] * len(twins)
    else:  # each twin its own optimizer and scheduler, stacked again at every step
        optimizers = [make_optimizer(twin.parameters()) for twin in twins]
        schedulers = [make_scheduler(optimizer) for optimizer in optimizers]

    def stacked():  # {name: (twins, *shape)}, through which autograd reaches the leaves
        if make_scheduler is None:
            return dict(zip(names, leaves))
        return {name: torch.stack([p[i] for p in own]) for i, name in enumerate(names)}

    def batched(shared):  # all twins' forwards, then their losses, as one computation
        forward = torch.vmap(lambda params, x: functional_call(base, params, (x,)),
                             in_dims=(0, None if shared else 0), randomness="different")
        losses = torch.vmap(criterion, in_dims=(0, None if shared else 0))
        return lambda params, x, target: losses(forward(params, x), target)

    train_losses, val_losses = batched(shared=False), batched(shared=True)
    histories = [{"train_loss": [], "val_loss": [], "lr": []} for _ in twins]
    for _ in range(epochs):
        base.train()
        total, count = 0.0, 0
        for batch in zip(*batches):
            x, target = (torch.stack(tensors) for tensors in zip(*batch))
            for optimizer in optimizers:
                optimizer.zero_grad()
            losses = train_losses(stacked(), x, target)
            losses.sum().backward()
            for optimizer in optimizers:
                optimizer.step()
            total, count = total + losses.detach() * x.shape[1], count + x.shape[1]
        metrics = (total / count).tolist()
        for history, loss in zip(histories, metrics):
            history["train_loss"].append(loss)
        if validation is not None:
            base.eval()
            with torch.no_grad():
                metrics = val_losses(stacked(), *validation).tolist()
            for history, loss in zip(histories, metrics):
                history["val_loss"].append(loss)
        for index, (history, scheduler) in enumerate(zip(histories, schedulers)):
            optimizer = optimizers[index % len(optimizers)]  # the shared one, or twin i's own
            history["lr"].append(optimizer.param_groups[0]["lr"])
            if scheduler is not None:
                scheduler.step(metrics[index])
    if make_scheduler is None:
        with torch.no_grad():
            for index, params in enumerate(own):
                for param, leaf in zip(params, leaves):
                    param.copy_(leaf[index])
    return histories

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
    theirs = dict(twin.named_parameters())
    return max((p.data - theirs[name].detach()).abs().max().item()
               for name, p in model.named_parameters())


def paired_difference(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Compare two configurations run on the same seeds, seed by seed: with d_s = a_s - b_s,
    returns (mean of d, its standard error sd(d) / sqrt(n), t = mean / standard error).

    If the two were equally good, |t| would exceed 2.26 only 5 % of the time for n = 10 seeds
    (Student's t with 9 degrees of freedom).

        >>> import torch_twin
        >>> [round(v, 4) for v in torch_twin.paired_difference([3.0, 2.0, 4.0], [2.0, 2.0, 2.0])]
        [1.0, 0.5774, 1.7321]
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_difference: need two lists of the same length >= 2, got "
                         f"{len(a)} and {len(b)} values")
    differences = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(differences)
    standard_error = statistics.stdev(differences) / len(differences) ** 0.5
    return mean, standard_error, mean / standard_error
