"""The module contract: Parameter, Module and Sequential.

A :class:`Module` computes ``forward`` and caches exactly what its ``backward`` needs.
``backward(grad_output)`` returns the gradient of the loss with respect to the module's input and
*adds* the gradients with respect to its parameters into ``parameter.grad`` (they accumulate across
calls until :meth:`Module.zero_grad`, as in PyTorch). Nothing here builds an autograd graph.
The one exception to "returns the input gradient": a module whose ``needs_input_grad`` is False
may skip it and return None (see :class:`Module`).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

import torch


def check_tensor(owner: object, name: str, value: object, *, shape: tuple | None = None,
                 last_dim: int | None = None, min_ndim: int = 0, like: torch.Tensor | None = None,
                 floating: bool = True) -> torch.Tensor:
    """Validate an argument that enters a module and return it unchanged: a tensor, floating
    point (unless ``floating=False``), with at least ``min_ndim`` dimensions, ``last_dim`` features
    in its last one, the given ``shape``, and the dtype and device of ``like`` (a floating-point
    tensor), each check only when asked.

    Raises ``TypeError`` or ``ValueError`` naming ``owner`` (the module), the expected and the
    received value, so that bad input never surfaces as a traceback from deep inside torch.
    This runs several times per training step: the messages are only built when a check fails.
    """
    if not isinstance(value, torch.Tensor):
        raise _error(TypeError, owner, name, f"must be a torch.Tensor, got {type(value).__name__}")
    # like (always floating point) is given in most calls: when value matches it, it is floating
    # point too, and the two checks below that concern dtype and device have nothing to do
    matches_like = like is not None and value.dtype == like.dtype and value.device == like.device
    if floating and not matches_like and not value.is_floating_point():
        raise _error(TypeError, owner, name,
                     f"must be a floating-point tensor, got dtype {value.dtype}")
    if min_ndim and value.ndim < min_ndim:
        raise _error(ValueError, owner, name, f"must have at least {min_ndim} dimension(s), "
                     f"got shape {tuple(value.shape)}")
    if last_dim is not None and value.shape[-1] != last_dim:
        raise _error(ValueError, owner, name, f"must have {last_dim} features in its last "
                     f"dimension, got shape {tuple(value.shape)}")
    if shape is not None and value.shape != shape:
        raise _error(ValueError, owner, name,
                     f"must have shape {tuple(shape)}, got {tuple(value.shape)}")
    if like is not None and not matches_like:
        raise _error(TypeError, owner, name, f"must have dtype {like.dtype} on {like.device}, "
                     f"got {value.dtype} on {value.device}")
    return value


def detached(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` without an autograd graph: itself if it carries none (always, inside a mini_dl
    training step: no tensor of ours requires grad), else ``tensor.detach()``. What a module
    caches goes through it, so that a cache never keeps a graph alive; skipping ``detach()``
    when there is nothing to detach saves a new tensor object per call."""
    return tensor.detach() if tensor.requires_grad else tensor


def _parse_to(owner: str, args: tuple, kwargs: dict) -> tuple:
    """``(device, dtype)`` from the arguments of ``Module.to``, as ``torch.nn.Module.to`` reads
    them (either may be None: unchanged)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"{owner}.to: unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, torch.Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, (str, torch.device, int)) and not isinstance(arg, bool):
            device = arg
        else:
            raise TypeError(f"{owner}.to: expected a device, a dtype or a tensor, got {arg!r}")
    return (None if device is None else torch.device(device)), dtype


def _error(kind: type[Exception], owner: object, name: str, message: str) -> Exception:
    """``kind("Linear: input <message>")``: the module and the argument, then the problem."""
    return kind(f"{type(owner).__name__}: {name} {message}")


def check_size(owner: str, name: str, value: object) -> int:
    """A positive integer size (``in_features``, ``out_features``, ...)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value}")
    return value


class Parameter:
    """A trainable tensor ``data`` and the gradient ``grad`` accumulated for it (same shape, dtype,
    device). ``grad`` starts at zero; backward passes add into it. After
    ``zero_grad(set_to_none=True)`` it is None until the next backward writes it anew.

    ``zero_grad()`` zeroes lazily: it only marks the gradient *stale*. The next backward then
    writes its gradient over the old values instead of adding to them (no zeros written, no old
    values read); anyone who reads ``grad`` before that sees zeros, materialised on the spot. So
    ``grad`` always reads as the sum of the gradients since the last ``zero_grad``, as in torch.
    Modules hand their gradients over with :meth:`accumulate_grad` or :meth:`grad_buffer`."""

    def __init__(self, data: torch.Tensor):
        if not isinstance(data, torch.Tensor) or not data.is_floating_point():
            raise TypeError(f"Parameter: data must be a floating-point torch.Tensor, got {data!r}")
        self.data = data.detach()
        self._grad = torch.zeros_like(self.data)
        self._stale = False  # True after zero_grad(): _grad's values read as zeros

    @property
    def grad(self) -> torch.Tensor | None:
        if self._stale:  # zeroed lazily and not written since: the zeros are made now
            self._grad.zero_()
            self._stale = False
        return self._grad

    @grad.setter
    def grad(self, value: torch.Tensor | None) -> None:
        self._grad, self._stale = value, False

    def accumulate_grad(self, gradient: torch.Tensor) -> None:
        """``grad += gradient``; after ``zero_grad`` (lazy or ``set_to_none=True``) ``gradient``,
        a new tensor of the parameter's size that nothing else writes to, becomes ``grad``."""
        if gradient.shape != self.data.shape:  # e.g. a norm's (C,) sums for a (C, 1) weight
            gradient = gradient.view(self.data.shape)
        if self._grad is None or self._stale:
            self._grad, self._stale = gradient, False
        else:
            self._grad.add_(gradient)

    def grad_buffer(self) -> tuple[torch.Tensor | None, int]:
        """Where a module writes its gradient in place, as ``(buffer, beta)``: the gradient
        becomes ``beta * buffer + new`` (``beta`` 0 after a lazy ``zero_grad``: the old values are
        overwritten, never read; 1 otherwise), e.g. ``buffer.addmm_(a, b, beta=beta)``. ``(None,
        0)`` after ``zero_grad(set_to_none=True)``: assign ``grad`` instead. The caller must write."""
        if self._grad is None:
            return None, 0
        beta, self._stale = (0 if self._stale else 1), False
        return self._grad, beta

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


def zero_gradients(parameters: Iterable[Parameter], set_to_none: bool = False) -> None:
    """Zero every gradient lazily (each reads as zeros from now on, and the next backward writes
    over it: see :class:`Parameter`); or, with ``set_to_none=True``, ``p.grad = None``. A
    gradient that is already None stays None. Both ``Module.zero_grad`` and
    ``Optimizer.zero_grad`` call it."""
    for parameter in parameters:
        if set_to_none:
            parameter.grad = None
        elif parameter._grad is not None:
            parameter._stale = True


class Module:
    """Base class of every layer, activation, loss and container.

    Subclasses call ``super().__init__()``, assign their :class:`Parameter` and sub-:class:`Module`
    attributes (they are registered in assignment order, as in ``torch.nn``), register state that
    is not trained (running statistics) with :meth:`register_buffer`, and write ``forward`` and
    ``backward``. ``state_dict()`` holds parameters and persistent buffers under torch.nn's keys.

    ``needs_input_grad`` (True by default) may be set to False on a module whose input gradient
    nobody uses, typically the first layer, whose input is the data: its ``backward`` may then
    skip computing that gradient and return None (``Linear`` does, saving a matrix product),
    while parameter gradients accumulate as always. PyTorch makes the same saving by itself,
    because the data does not require grad. The gradient checker needs the input gradient.

    ``retain_cache`` (True by default; set it with :meth:`retain_caches`) keeps what ``forward``
    cached after ``backward`` has used it; False releases it, as PyTorch releases a graph.
    """

    needs_input_grad = True
    retain_cache = True  # set through retain_caches(), which reaches every descendant

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())  # name -> persistent (the value
        object.__setattr__(self, "_modules", OrderedDict())  # lives in the attribute itself)
        self.training = True

    def __setattr__(self, name: str, value: object) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning "
                               f"attributes")
        if isinstance(value, torch.Tensor) and name not in self._parameters \
                and name not in self._modules:  # a cache, set at every step: the short way
            object.__setattr__(self, name, value)
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if name in self._buffers and value is not None:  # a buffer stays a tensor (or None)
            raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a torch.Tensor or "
                            f"None, got {type(value).__name__}")
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    # -- the contract ------------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, *grad_outputs):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs, **options):
        # We write every gradient ourselves: never record a graph. Torch records one only for an
        # input that requires grad (no tensor of ours does), so only then is autograd switched off
        # (entering torch.no_grad() costs more than a layer's own Python code). Keyword options
        # (masks, flags) go to forward as in torch.nn: ``attention(q, k, v, need_weights=False)``.
        for value in (*inputs, *options.values()) if options else inputs:
            if isinstance(value, torch.Tensor) and value.requires_grad:
                with torch.no_grad():
                    return self.forward(*inputs, **options)
        return self.forward(*inputs, **options)

    def saved(self, name: str) -> torch.Tensor:
        """The tensor cached by ``forward`` under ``name``; a clear error if forward never ran.
        With ``retain_cache`` False the module forgets it as it hands it over (see
        :meth:`retain_caches`), so ``backward`` reads each cache once."""
        value = self.__dict__.get(name)
        if value is None:
            released = "" if self.retain_cache else "; retain_cache is False: every backward " \
                "releases what the forward before it cached"
            raise RuntimeError(f"{type(self).__name__}: backward called before forward "
                               f"(nothing cached as {name!r}{released})")
        if not self.retain_cache:
            self.__dict__[name] = None  # released: freed once backward is done with it
        return value

    # -- parameters and children -------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Own parameters first, then each child's, in registration order (as ``torch.nn``)."""
        for name, parameter in self._parameters.items():
            if parameter is not None:
                yield prefix + name, parameter
        for name, child in self._modules.items():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> Iterator[Parameter]:
        for _, parameter in self.named_parameters():
            yield parameter

    def param(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(value, grad), ...]`` for every parameter (the EE-559 project API)."""
        return [(p.data, p.grad) for p in self.parameters()]

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``, ``""`` at the top) and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    # -- buffers: state that is not trained (running statistics) ------------------------------
    def register_buffer(self, name: str, tensor: torch.Tensor | None,
                        persistent: bool = True) -> None:
        """Register ``tensor`` as the buffer ``name``, as ``torch.nn.Module.register_buffer``:
        an attribute that ``to()`` moves (and casts, if floating point), that has no gradient,
        and that ``state_dict()`` holds when ``persistent``. Assigning a tensor to the attribute
        later replaces the buffer's value."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"{type(self).__name__}.register_buffer: name must be an identifier "
                            f"string, got {name!r}")
        if name in self._parameters or name in self._modules or (
                name in self.__dict__ and name not in self._buffers):
            raise KeyError(f"{type(self).__name__}.register_buffer: attribute {name!r} already "
                           f"exists")
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{type(self).__name__}.register_buffer: {name!r} must be a "
                            f"torch.Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = bool(persistent)
        object.__setattr__(self, name, tensor)

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, torch.Tensor]]:
        """Own buffers first, then each child's (if ``recurse``), in registration order; a
        buffer set to None is skipped, as in ``torch.nn``."""
        for name in self._buffers:
            value = self.__dict__[name]
            if value is not None:
                yield prefix + name, value
        if recurse:
            for name, child in self._modules.items():
                yield from child.named_buffers(prefix + name + ".")

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Set every parameter's gradient to zero, in place; or, with ``set_to_none=True``, drop
        it (``grad = None``, freeing its memory until the next backward writes a new one).
        ``torch.nn.Module.zero_grad`` defaults to ``set_to_none=True``; mini_dl keeps zeros by
        default, so that ``.grad`` is always a tensor to look at and add into."""
        zero_gradients(self.parameters(), set_to_none)

    def retain_caches(self, mode: bool = True) -> Module:
        """Keep every cache after backward (``True``, the default), or release each one as
        ``backward`` reads it (``False``), for this module and all its descendants.

        Kept caches let ``backward`` run again after one forward (gradients accumulate) and can be
        inspected. Released ones free their memory during the backward pass, as PyTorch frees a
        graph's saved tensors unless ``retain_graph=True``; a second ``backward`` then needs a
        new ``forward``. With ``zero_grad(set_to_none=True)`` this is PyTorch's default way of
        holding memory (the chapter "What autograd costs" measures both ways).
        """
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.retain_caches: mode must be a bool, "
                            f"got {mode!r}")
        self.retain_cache = mode
        for child in self.children():
            child.retain_caches(mode)
        return self

    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.train: mode must be a bool, got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state_dict: torch.nn's key names and tensor layouts ---------------------------------
    def state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """Parameters and persistent buffers under torch.nn's keys and in its order: a module's
        own parameters, then its own buffers, then each child's entries (``"0.weight"``,
        ``"1.running_mean"``, ...). The values are the tensors themselves, not copies."""
        return OrderedDict(self._state_items(""))

    def _state_items(self, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
        for name, parameter in self._parameters.items():
            if parameter is not None:
                yield prefix + name, parameter.data
        for name, persistent in self._buffers.items():
            value = self.__dict__[name]
            if persistent and value is not None:
                yield prefix + name, value
        for name, child in self._modules.items():
            yield from child._state_items(prefix + name + ".")

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> Module:
        """Copy tensors into the parameters and persistent buffers (casting dtype and device, as
        ``torch.nn`` does; an integer buffer such as ``num_batches_tracked`` keeps its dtype).

        Everything is checked before anything is copied: missing or unexpected keys (when
        ``strict``) and shape mismatches raise ``RuntimeError`` and leave the module unchanged.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a mapping, "
                            f"got {type(state_dict).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                               f"unexpected keys {unexpected}")
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{type(self).__name__}.load_state_dict: {name!r} must be a "
                                f"tensor, got {type(value).__name__}")
            if value.shape != target.shape:
                raise RuntimeError(f"{type(self).__name__}.load_state_dict: {name!r} has shape "
                                   f"{tuple(value.shape)}, expected {tuple(target.shape)}")
        for name, target in own.items():
            if name in state_dict:
                target.copy_(state_dict[name].detach())
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move/cast every parameter, its gradient and every buffer, as ``torch.nn.Module.to``:
        ``to(torch.float64)``, ``to("cuda")``, ``to(device, dtype)``, ``to(tensor)``. A dtype
        applies to floating-point tensors only: integer buffers (``num_batches_tracked``) keep
        theirs."""
        device, dtype = _parse_to(type(self).__name__, args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__}.to: parameters must stay floating-point, "
                            f"got {dtype}")

        def convert(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)

        for parameter in self.parameters():
            parameter.data = convert(parameter.data)
            if parameter.grad is not None:  # None after zero_grad(set_to_none=True)
                parameter.grad = convert(parameter.grad)
        for _, module in self.named_modules():
            for name in module._buffers:
                if module.__dict__[name] is not None:
                    object.__setattr__(module, name, convert(module.__dict__[name]))
        return self

    def double(self) -> Module:
        return self.to(torch.float64)

    def float(self) -> Module:
        return self.to(torch.float32)

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; backward walks them in reverse (the chain rule).

    forward:  x_0 = x,  x_k = f_k(x_{k-1}),  y = x_K
    backward: G_K = dL/dy,  G_{k-1} = f_k.backward(G_k),  returns G_0 = dL/dx

    ``backward`` returns None instead if the first module's ``needs_input_grad`` is False.

    Example:
        >>> import torch, mini_dl as dl
        >>> _ = torch.manual_seed(0)
        >>> net = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 1))
        >>> len(net), net(torch.ones(4, 2)).shape
        (3, torch.Size([4, 1]))
        >>> net.backward(torch.ones(4, 1)).shape
        torch.Size([4, 2])
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} must be a mini_dl Module, "
                                f"got {type(module).__name__}")
            setattr(self, str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module.forward(x)
        return x

    def backward(self, grad_output):
        for module in reversed(self._modules.values()):
            grad_output = module.backward(grad_output)
        return grad_output

    def __getitem__(self, index: int) -> Module:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
