"""Checkpoints: a whole training state in one file, written atomically, read without unpickling.

``save_checkpoint`` writes the model's ``state_dict`` (parameters and buffers), the optimizer's
and the scheduler's states (torch.optim's layouts), the epoch, the random-number states that
training draws from (torch's CPU generator, which gives dropout masks and initialisations; CUDA's
when available; the data order: the ``MiniBatches`` generator), ``extra`` (plain data), the
mini_dl and torch versions, and a SHA-256 of all of it. ``load_checkpoint`` puts it all back, so
that training resumed from the file takes the very steps the uninterrupted run takes.

The file is a ``torch.save`` of a small envelope::

    {"format": "mini_dl checkpoint", "format_version": 1,
     "sha256": "<hex digest of the payload bytes>",
     "payload": <uint8 tensor: the bytes of torch.save(payload)>}

Both levels hold only tensors, dicts, lists, tuples, str, int, float, bool and None, so both are
read with ``torch.load(..., weights_only=True)``: a file cannot make the loader build an arbitrary
object, let alone run code (a pickle's ``__reduce__`` may name any function to call). The one
non-plain value of a scheduler's state, MultiStepLR's ``Counter`` of milestones, is stored as a
tagged dict and rebuilt.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import re
import tempfile
from collections import Counter, OrderedDict

import torch

from .data import MiniBatches
from .module import Module
from .optim import Optimizer

FORMAT = "mini_dl checkpoint"
FORMAT_VERSION = 1
_TAG = "__mini_dl_type__"  # marks a value stored in plain form (a Counter); reserved in extra
_SCALARS = (str, int, float, bool, type(None))
PLAIN_DATA = "tensors, dicts, lists, tuples, str, int, float, bool or None"


# -- plain data: what torch.load(weights_only=True) reads back --------------------------------------

def _to_plain(value, where: str):
    """``value`` as plain data (a ``Counter`` becomes a tagged dict); a ``TypeError`` naming
    ``where`` (e.g. ``extra['model']``) for anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if type(value) in _SCALARS:  # exactly: a str or float subclass would pickle as its class
        return value
    if isinstance(value, Counter):
        return {_TAG: "Counter", "items": [[_to_plain(key, f"{where} key"), count]
                                           for key, count in value.items()]}
    if type(value) in (dict, OrderedDict):
        if _TAG in value:
            raise TypeError(f"{where}: the key {_TAG!r} is reserved by mini_dl checkpoints")
        plain = {}
        for key, item in value.items():
            if type(key) not in _SCALARS:
                raise TypeError(f"{where}: dict keys must be str, int, float, bool or None, got "
                                f"a {type(key).__name__}")
            plain[key] = _to_plain(item, f"{where}[{key!r}]")
        return plain
    if type(value) in (list, tuple):
        return type(value)(_to_plain(item, f"{where}[{index}]") for index, item in
                           enumerate(value))
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, not plain "
                    f"data: a checkpoint holds only {PLAIN_DATA} (save what rebuilds the "
                    f"object instead)")


def _from_plain(value):
    """The inverse of :func:`_to_plain`."""
    if isinstance(value, dict):
        if value.get(_TAG) == "Counter":
            return Counter({_from_plain(key): count for key, count in value["items"]})
        return {key: _from_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_plain(item) for item in value)
    return value


def _bytes_of(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


# -- saving ------------------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, model: Module, optimizer: Optimizer | None = None,
                    scheduler=None, *, epoch: int | None = None, extra=None,
                    batches: MiniBatches | None = None) -> None:
    """Write everything training needs to resume exactly into one file at ``path``, atomically.

    The file holds ``model.state_dict()`` (parameters and buffers, e.g. BatchNorm's running
    statistics), ``optimizer.state_dict()`` and ``scheduler.state_dict()`` (when given),
    ``epoch``, ``extra`` (plain data: tensors, dicts, lists, tuples, str, int, float, bool, None;
    anything else is a ``TypeError`` naming where it sits), the random-number states (torch's CPU
    generator, which draws dropout masks; every CUDA device's when CUDA is available; the data
    order, ``batches.generator``, when ``batches`` is given), the mini_dl and torch versions, and
    the SHA-256 of all of it (see the module's docstring for the layout).

    Atomic: the bytes go to a temporary file in the same folder, which is flushed and
    ``os.fsync``-ed, then ``os.replace``-d onto ``path`` (an atomic rename), and the folder is
    fsync-ed so that the rename itself survives a power cut. A crash at any moment leaves the
    old file or the new one, never a torn one (at worst a stray ``.<name>.*.tmp`` file).

    Call it between epochs: the random-number states are those of that moment, so a run that
    loads the file draws the same masks and the same order as the run that wrote it.

    Example:
        >>> import os, tempfile, torch, mini_dl as dl
        >>> _ = torch.manual_seed(0)
        >>> model = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 1))
        >>> optimizer = dl.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> path = os.path.join(tempfile.mkdtemp(), "run.pt")
        >>> save_checkpoint(path, model, optimizer, epoch=3, extra={"note": "after 3 epochs"})
        >>> load_checkpoint(path, model, optimizer)["epoch"]
        3
    """
    path = os.fspath(path)
    payload = _payload(model, optimizer, scheduler, epoch, extra, batches)
    data = _bytes_of(payload)
    envelope = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}
    _write_atomically(path, _bytes_of(envelope))


def _payload(model, optimizer, scheduler, epoch, extra, batches) -> dict:
    from . import __version__  # here: the package imports this module
    name = "save_checkpoint"
    _check_arguments(name, model, optimizer, scheduler, batches, "state_dict")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise ValueError(f"{name}: epoch must be an int >= 0 or None, got {epoch!r}")
    return {
        "model": {key: value.detach() for key, value in model.state_dict().items()},
        "optimizer": None if optimizer is None else _to_plain(
            optimizer.state_dict(), f"{name}: the optimizer's state"),
        "optimizer_class": None if optimizer is None else type(optimizer).__name__,
        "scheduler": None if scheduler is None else _to_plain(
            scheduler.state_dict(), f"{name}: the scheduler's state"),
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
        "epoch": epoch,
        "extra": _to_plain(extra, f"{name}: extra"),
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "batches": None if batches is None else batches.generator.get_state()},
        "batches": None if batches is None else _batches_layout(batches),
        "versions": {"mini_dl": __version__, "torch": str(torch.__version__)},
    }


def _check_arguments(name, model, optimizer, scheduler, batches, method: str) -> None:
    """TypeErrors for arguments of the wrong kind (``method``: what the scheduler needs)."""
    if not isinstance(model, Module):
        raise TypeError(f"{name}: model must be a mini_dl Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: optimizer must be a mini_dl Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    if scheduler is not None and not hasattr(scheduler, method):
        raise TypeError(f"{name}: scheduler must have a {method}(), got "
                        f"{type(scheduler).__name__}")
    if batches is not None and not isinstance(batches, MiniBatches):
        raise TypeError(f"{name}: batches must be a MiniBatches or None, got "
                        f"{type(batches).__name__}")


def _batches_layout(batches: MiniBatches) -> dict:
    """What the data order depends on besides the generator."""
    return {"samples": int(batches.tensors[0].shape[0]), "batch_size": batches.batch_size,
            "shuffle": bool(batches.shuffle)}


def _write_atomically(path: str, data: bytes) -> None:
    """``data`` into ``path`` through a fsync-ed temporary file in the same folder and
    ``os.replace`` (atomic on POSIX and Windows), then a fsync of the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    try:  # the rename is durable once the folder's entry is on disk (POSIX; not on Windows)
        folder_descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder_descriptor)
    except OSError:
        pass
    finally:
        os.close(folder_descriptor)


# -- loading -----------------------------------------------------------------------------------------

def load_checkpoint(path: str | os.PathLike, model: Module, optimizer: Optimizer | None = None,
                    scheduler=None, *, batches: MiniBatches | None = None) -> dict:
    """Restore a file of :func:`save_checkpoint` into ``model`` (and ``optimizer``,
    ``scheduler``, ``batches`` when given) and the global random-number generators.

    Returns ``{"epoch": ..., "extra": ..., "versions": {"mini_dl": ..., "torch": ...}}``.

    Everything is checked before anything changes: the file is read with
    ``torch.load(weights_only=True)`` (never an arbitrary object, never code), its SHA-256 must
    match, the model's ``state_dict`` keys and shapes must be the file's, the optimizer must be
    of the file's class with as many parameter groups of the same sizes (and state of the same
    shapes), the scheduler of the file's class with the same state keys, and ``batches`` (if
    given) over as many samples, with the same batch size and shuffling. A file that fails any
    check (empty, truncated, damaged, not a mini_dl checkpoint, another architecture) raises a
    ``ValueError`` that names the path and what is wrong, and leaves the model, the optimizer,
    the scheduler, ``batches`` and the random-number generators as they were.

    The global torch generator is always restored (it draws dropout masks), and each CUDA
    device's when the file has their states and as many CUDA devices are available. States the
    file holds but the call does not ask for (an optimizer's, say) are ignored; an optimizer,
    scheduler or ``batches`` asked for but absent from the file is a ``ValueError``.

    Example:
        >>> import os, tempfile, torch, mini_dl as dl
        >>> model = dl.Sequential(dl.Linear(2, 3), dl.BatchNorm1d(3))
        >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
        >>> save_checkpoint(path, model, extra={"classes": ["inside", "outside"]})
        >>> other = dl.Sequential(dl.Linear(2, 3), dl.BatchNorm1d(3))
        >>> load_checkpoint(path, other)["extra"]
        {'classes': ['inside', 'outside']}
        >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
        ...                                       other.state_dict().values()))
        True
        >>> load_checkpoint(path, dl.Sequential(dl.Linear(2, 4)))
        Traceback (most recent call last):
        ...
        ValueError: load_checkpoint: .../model.pt: the model's state_dict does not match the file's: ...
    """
    path = os.fspath(path)
    _check_arguments("load_checkpoint", model, optimizer, scheduler, batches, "load_state_dict")
    payload = _read(path)
    _check_fits(path, payload, model, optimizer, scheduler, batches)
    saved = _snapshot(model, optimizer, scheduler, batches)
    try:
        model.load_state_dict(payload["model"])
        if optimizer is not None:
            optimizer.load_state_dict(_from_plain(payload["optimizer"]))
        if scheduler is not None:
            scheduler.load_state_dict(_from_plain(payload["scheduler"]))
        if batches is not None:
            batches.generator.set_state(payload["rng"]["batches"])
        torch.set_rng_state(payload["rng"]["torch"])
        cuda = payload["rng"]["cuda"]
        if cuda is not None and torch.cuda.is_available() and len(cuda) == \
                torch.cuda.device_count():  # not tested: the test machines have no GPU
            torch.cuda.set_rng_state_all(cuda)
    except (TypeError, ValueError, RuntimeError, KeyError, IndexError) as error:
        _restore(saved, model, optimizer, scheduler, batches)
        raise ValueError(f"load_checkpoint: {path}: the state does not fit: {error}") from error
    return {"epoch": payload["epoch"], "extra": _from_plain(payload["extra"]),
            "versions": dict(payload["versions"])}


def _refused(path: str, problem: str) -> ValueError:
    return ValueError(f"load_checkpoint: {path}: {problem}")


def _reason(error: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` failed."""
    message = str(error)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if found:
        return (f"it holds a pickled {found.group(1)}, which weights_only=True refuses to "
                "build (not plain data: it could run code), so nothing of it was executed")
    return f"{type(error).__name__}: {message.splitlines()[0][:200] if message else ''}"


def _read(path: str) -> dict:
    """The payload of the file, checked: readable under weights_only, a mini_dl envelope, the
    checksum right, the payload's keys all there."""
    if os.path.getsize(path) == 0:  # a missing file is a FileNotFoundError, as open() says
        raise _refused(path, "the file is empty (0 bytes): not a mini_dl checkpoint")
    try:
        envelope = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (a damaged zip, a text file, a foreign pickle:
        # whatever torch.load raises, the file is refused)
        raise _refused(path, f"cannot be read as a mini_dl checkpoint (truncated, damaged, or "
                             f"not a checkpoint): {_reason(error)}") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        what = (f"a dict with keys {sorted(map(str, envelope))[:8]}" if isinstance(envelope, dict)
                else f"a {type(envelope).__name__}")
        raise _refused(path, f"not a mini_dl checkpoint: the file holds {what} (written by "
                             f"torch.save, not by save_checkpoint?)")
    if envelope.get("format_version") != FORMAT_VERSION:
        raise _refused(path, f"format version {envelope.get('format_version')!r}; this mini_dl "
                             f"reads version {FORMAT_VERSION}")
    data = envelope.get("payload")
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.ndim != 1:
        raise _refused(path, "damaged: the envelope has no payload bytes")
    data = data.numpy().tobytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != envelope.get("sha256"):
        raise _refused(path, f"damaged: the SHA-256 of the payload is {digest}, the file says "
                             f"{envelope.get('sha256')}")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (as above)
        raise _refused(path, f"the payload cannot be read: {_reason(error)}") from None
    keys = {"model", "optimizer", "optimizer_class", "scheduler", "scheduler_class", "epoch",
            "extra", "rng", "batches", "versions"}
    if not isinstance(payload, dict) or not keys <= set(payload):
        raise _refused(path, f"the payload lacks {sorted(keys - set(payload or ()))}")
    return payload


def _check_fits(path, payload, model, optimizer, scheduler, batches) -> None:
    """The architecture checks of :func:`load_checkpoint`, before anything is touched."""
    saved = payload["model"]
    own = model.state_dict()
    missing = [key for key in own if key not in saved]
    unexpected = [key for key in saved if key not in own]
    shapes = [f"{key}: file {tuple(saved[key].shape)}, model {tuple(value.shape)}"
              for key, value in own.items() if key in saved and saved[key].shape != value.shape]
    if missing or unexpected or shapes:
        raise _refused(path, f"the model's state_dict does not match the file's: missing keys "
                             f"{missing}, unexpected keys {unexpected}, shapes {shapes}")
    if optimizer is not None:
        _check_optimizer(path, payload, optimizer)
    if scheduler is not None:
        _check_class(path, payload, "scheduler", scheduler)
        expected, got = set(scheduler.state_dict()), set(payload["scheduler"])
        if expected != got:
            raise _refused(path, f"the scheduler's state keys differ: missing "
                                 f"{sorted(expected - got)}, unexpected {sorted(got - expected)}")
    if batches is not None:
        if payload["batches"] is None or payload["rng"]["batches"] is None:
            raise _refused(path, "the file holds no data order (saved without batches=)")
        if payload["batches"] != _batches_layout(batches):
            raise _refused(path, f"the data order was saved for {payload['batches']}, the "
                                 f"batches are {_batches_layout(batches)}")


def _check_class(path, payload, role: str, given) -> None:
    """The file holds the state of a ``role`` (optimizer, scheduler) of ``given``'s class."""
    kind = payload[f"{role}_class"]
    if kind is None:
        raise _refused(path, f"the file holds no {role} state (saved without {role}=)")
    if kind != type(given).__name__:
        raise _refused(path, f"the file holds a {kind}'s state, the {role} is a "
                             f"{type(given).__name__}")


def _check_optimizer(path, payload, optimizer) -> None:
    _check_class(path, payload, "optimizer", optimizer)
    groups = payload["optimizer"]["param_groups"]
    sizes, own_sizes = [len(g["params"]) for g in groups], [len(g["params"])
                                                             for g in optimizer.param_groups]
    if sizes != own_sizes:
        raise _refused(path, f"the optimizer's parameter groups differ: the file has groups of "
                             f"{sizes} parameters, the optimizer {own_sizes}")
    params = optimizer.params
    for index, state in payload["optimizer"]["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            raise _refused(path, f"the optimizer's state names parameter {index!r}, which the "
                                 f"optimizer does not have")
        for key, value in state.items():
            if key != "step" and isinstance(value, torch.Tensor) and \
                    value.shape != params[index].shape:
                raise _refused(path, f"the optimizer's {key} of parameter {index} has shape "
                                     f"{tuple(value.shape)}, the parameter "
                                     f"{tuple(params[index].shape)}")


def _snapshot(model, optimizer, scheduler, batches) -> dict:
    """What :func:`load_checkpoint` changes, to put back if a load fails half-way."""
    return {"model": {key: value.clone() for key, value in model.state_dict().items()},
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "scheduler": None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
            "batches": None if batches is None else batches.generator.get_state(),
            "torch": torch.get_rng_state()}


def _restore(saved, model, optimizer, scheduler, batches) -> None:
    model.load_state_dict(saved["model"])
    if optimizer is not None:
        optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    if batches is not None:
        batches.generator.set_state(saved["batches"])
    torch.set_rng_state(saved["torch"])
