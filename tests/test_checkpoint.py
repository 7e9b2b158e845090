"""save_checkpoint / load_checkpoint: every piece round-trips, writes are atomic, every refused file
changes nothing, and a malicious pickle is never executed (fit's checkpoints: tests/test_train.py)."""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
import torch

import mini_dl as dl
from mini_dl import checkpoint as checkpoint_module

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Halving:
    """A LambdaLR factor with state of its own (saved by LambdaLR.state_dict, unlike a lambda)."""

    def __init__(self):
        self.base = 0.5

    def __call__(self, epoch):
        return self.base ** epoch


OPTIMIZERS = {
    "SGD": lambda params: dl.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda params: dl.Adam(params, lr=0.01, amsgrad=True),
    "AdamW": lambda params: dl.AdamW(params, lr=0.01),
    "RMSprop": lambda params: dl.RMSprop(params, lr=0.01, momentum=0.5, centered=True),
    "Adagrad": lambda params: dl.Adagrad(params, lr=0.1),
}
SCHEDULERS = {
    "StepLR": lambda o: dl.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: dl.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5),
    "LambdaLR-function": lambda o: dl.LambdaLR(o, lambda epoch: 1 / (epoch + 1)),
    "LambdaLR-object": lambda o: dl.LambdaLR(o, Halving()),
    "ExponentialLR": lambda o: dl.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: dl.CosineAnnealingLR(o, T_max=5),
    "LinearLR": lambda o: dl.LinearLR(o, start_factor=0.2, total_iters=3),
    "OneCycleLR": lambda o: dl.OneCycleLR(o, max_lr=0.2, total_steps=6),
    "SequentialLR": lambda o: dl.SequentialLR(o, [dl.LinearLR(o, start_factor=0.5, total_iters=2),
                                                  dl.MultiStepLR(o, milestones=[1, 2])],
                                              milestones=[2]),
    "ReduceLROnPlateau": lambda o: dl.ReduceLROnPlateau(o, patience=0, factor=0.5),
}


def training(seed=0, optimizer="SGD", scheduler="StepLR", dtype=torch.float64):
    """A model with BatchNorm buffers and dropout, an optimizer, a scheduler and shuffled
    batches; different seeds give different weights and a different data order."""
    torch.manual_seed(seed)
    x, labels = dl.disk_dataset(60, seed=0, dtype=dtype)
    model = dl.Sequential(dl.Linear(2, 8), dl.BatchNorm1d(8), dl.ReLU(), dl.Dropout(0.25),
                          dl.Linear(8, 2)).to(dtype)
    opt = OPTIMIZERS[optimizer](model.parameters())
    sched = None if scheduler is None else SCHEDULERS[scheduler](opt)
    batches = dl.MiniBatches(x, dl.one_hot(labels, 2, dtype=dtype), batch_size=16, seed=seed)
    return model, dl.MSELoss(), opt, sched, batches


def run(pieces, epochs=2):
    model, criterion, optimizer, scheduler, batches = pieces
    return dl.fit(model, criterion, optimizer, batches, epochs=epochs, scheduler=scheduler,
                  progress=False)


def state_of(model, optimizer, scheduler, batches):
    """Everything a load may change, as comparable values."""
    return {"model": {k: v.clone() for k, v in model.state_dict().items()},
            "optimizer": repr(optimizer.state_dict()) if optimizer is not None else None,
            "scheduler": repr(scheduler.state_dict()) if scheduler is not None else None,
            "batches": batches.generator.get_state() if batches is not None else None,
            "rng": torch.get_rng_state()}


def assert_same_state(before, after):
    assert before["model"].keys() == after["model"].keys()
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    assert before["optimizer"] == after["optimizer"]
    assert before["scheduler"] == after["scheduler"]
    for key in ("batches", "rng"):
        assert (before[key] is None and after[key] is None) or torch.equal(before[key],
                                                                           after[key])


def continue_from_file(path, optimizer, scheduler):
    """Train, save, train on (a); load the file into differently seeded pieces, train on (b):
    (a) and (b) must be the same bits in everything."""
    first = training(0, optimizer, scheduler)
    run(first)
    dl.save_checkpoint(path, first[0], first[2], first[3], epoch=2, batches=first[4])
    history_a = run(first)
    second = training(1, optimizer, scheduler)
    run(second, epochs=1)  # different weights, optimizer state, rates and data order
    info = dl.load_checkpoint(path, second[0], second[2], second[3], batches=second[4])
    history_b = run(second)
    return info, (first, history_a), (second, history_b)


# -- round trips -----------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_continues_bit_identically_after_a_round_trip(tmp_path, optimizer):
    info, (first, history_a), (second, history_b) = continue_from_file(
        tmp_path / "run.pt", optimizer, "StepLR")
    assert info["epoch"] == 2
    assert history_a == history_b
    assert_same_state(state_of(first[0], first[2], first[3], first[4]),
                      state_of(second[0], second[2], second[3], second[4]))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_continues_bit_identically_after_a_round_trip(tmp_path, scheduler):
    _, (first, history_a), (second, history_b) = continue_from_file(
        tmp_path / "run.pt", "SGD", scheduler)
    assert history_a == history_b  # the "lr" entries included
    assert first[3].get_last_lr() == second[3].get_last_lr()
    assert_same_state(state_of(first[0], first[2], first[3], first[4]),
                      state_of(second[0], second[2], second[3], second[4]))


def test_multisteplr_milestones_come_back_as_a_counter(tmp_path):
    model, _, optimizer, scheduler, _ = training(scheduler="MultiStepLR")
    dl.save_checkpoint(tmp_path / "c.pt", model, optimizer, scheduler)
    other = training(1, scheduler="MultiStepLR")
    other[3].milestones = Counter({7: 1})
    dl.load_checkpoint(tmp_path / "c.pt", other[0], other[2], other[3])
    assert type(other[3].milestones) is Counter and other[3].milestones == Counter({1: 1, 3: 2})


def test_a_lambda_objects_state_round_trips_and_a_function_stays(tmp_path):
    model, _, optimizer, scheduler, _ = training(scheduler="LambdaLR-object")
    scheduler.lr_lambdas[0].base = 0.25
    dl.save_checkpoint(tmp_path / "c.pt", model, optimizer, scheduler)
    other = training(1, scheduler="LambdaLR-object")
    dl.load_checkpoint(tmp_path / "c.pt", other[0], other[2], other[3])
    assert other[3].lr_lambdas[0].base == 0.25 and isinstance(other[3].lr_lambdas[0], Halving)


def test_model_parameters_and_batchnorm_buffers_round_trip(tmp_path):
    model, *_ = training()
    run(training())  # the buffers move away from their initial values
    first, *_ = pieces = training(2)
    run(pieces)
    dl.save_checkpoint(tmp_path / "m.pt", first)
    dl.load_checkpoint(tmp_path / "m.pt", model)
    assert int(model[1].num_batches_tracked) == 8 and model[1].num_batches_tracked.dtype == \
        torch.int64
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 model.state_dict().values()))


def test_the_random_states_and_the_data_order_are_restored(tmp_path):
    model, _, _, _, batches = training()
    torch.manual_seed(5)
    next(iter(batches))
    rng, order = torch.get_rng_state(), batches.generator.get_state()
    dl.save_checkpoint(tmp_path / "r.pt", model, batches=batches)
    expected_draw, expected_batch = torch.rand(3), next(iter(batches))[0]
    torch.manual_seed(6)
    next(iter(batches))
    dl.load_checkpoint(tmp_path / "r.pt", model, batches=batches)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(batches.generator.get_state(), order)
    assert torch.equal(torch.rand(3), expected_draw)
    assert torch.equal(next(iter(batches))[0], expected_batch)


def test_extra_epoch_and_versions_round_trip(tmp_path):
    extra = {"history": {"loss": [0.5, 0.25]}, "best": float("inf"), "note": "ok", "flag": True,
             "none": None, "pair": (1, 2.5), "weights": torch.arange(3.0), 7: ["int key"]}
    model, *_ = training()
    dl.save_checkpoint(tmp_path / "e.pt", model, epoch=4, extra=extra)
    info = dl.load_checkpoint(tmp_path / "e.pt", model)
    assert info["epoch"] == 4 and info["versions"] == {"mini_dl": dl.__version__,
                                                         "torch": str(torch.__version__)}
    weights = info["extra"].pop("weights")
    assert torch.equal(weights, extra.pop("weights")) and info["extra"] == extra
    assert type(info["extra"]["pair"]) is tuple


class Name(str):
    """A str subclass: pickled as its class, so not plain data."""


@pytest.mark.parametrize(("extra", "where"), [
    ({"f": lambda: 0}, r"extra\['f'\] is a builtins.function"),
    ({"model": dl.Linear(1, 1)}, r"extra\['model'\] is a mini_dl.layers.Linear"),
    ([np.float64(1.0)], r"extra\[0\] is a numpy.float64"),
    ({"s": {1, 2}}, r"extra\['s'\] is a builtins.set"),
    ({"n": Name("a")}, r"extra\['n'\] is a .*Name"),
    ({(1, 2): 0}, r"extra: dict keys must be"),
    ({"__mini_dl_type__": "Counter"}, r"reserved"),
], ids=["lambda", "module", "numpy", "set", "str-subclass", "tuple-key", "reserved-key"])
def test_extra_that_is_not_plain_data_is_a_type_error_and_keeps_the_old_file(tmp_path, extra,
                                                                              where):
    model, *_ = training()
    dl.save_checkpoint(tmp_path / "x.pt", model, epoch=1)
    before = (tmp_path / "x.pt").read_bytes()
    with pytest.raises(TypeError, match=where):
        dl.save_checkpoint(tmp_path / "x.pt", model, epoch=2, extra=extra)
    assert (tmp_path / "x.pt").read_bytes() == before and os.listdir(tmp_path) == ["x.pt"]


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"model": "net"}, TypeError, "model must be a mini_dl Module"),
    ({"optimizer": object()}, TypeError, "optimizer must be a mini_dl Optimizer"),
    ({"scheduler": object()}, TypeError, r"scheduler must have a state_dict\(\)"),
    ({"batches": [1]}, TypeError, "batches must be a MiniBatches"),
    ({"epoch": -1}, ValueError, "epoch must be an int >= 0"),
    ({"epoch": 1.0}, ValueError, "epoch must be an int >= 0"),
])
def test_save_checkpoint_rejects_bad_arguments(tmp_path, arguments, error, message):
    model, *_ = training()
    with pytest.raises(error, match=f"save_checkpoint: {message}"):
        dl.save_checkpoint(tmp_path / "a.pt", **{"model": model, **arguments})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("arguments", "message"), [
    ({"model": "net"}, "model must be a mini_dl Module"),
    ({"optimizer": object()}, "optimizer must be a mini_dl Optimizer"),
    ({"scheduler": object()}, r"scheduler must have a load_state_dict\(\)"),
    ({"batches": [1]}, "batches must be a MiniBatches"),
])
def test_load_checkpoint_rejects_bad_arguments_before_reading(tmp_path, arguments, message):
    model, *_ = training()
    dl.save_checkpoint(tmp_path / "a.pt", model)
    with pytest.raises(TypeError, match=f"load_checkpoint: {message}"):
        dl.load_checkpoint(tmp_path / "a.pt", **{"model": model, **arguments})


# -- atomic writes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_a_crash_during_a_write_leaves_the_old_file_valid_and_no_temporary(tmp_path, monkeypatch,
                                                                            failing):
    model, *_ = training()
    path = tmp_path / "a.pt"
    dl.save_checkpoint(path, model, epoch=1)

    def crash(*args, **kwargs):
        raise OSError(f"simulated crash in {failing}")

    if failing == "write":  # the bytes are half written when the crash comes
        real_fdopen = os.fdopen

        class HalfFile:
            def __init__(self, file):
                self.file = file

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.file.close()

            def write(self, data):
                self.file.write(data[:len(data) // 2])
                crash()

        monkeypatch.setattr(checkpoint_module.os, "fdopen",
                            lambda *a, **k: HalfFile(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(checkpoint_module.os, failing, crash)
    with pytest.raises(OSError, match="simulated crash"):
        dl.save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert dl.load_checkpoint(path, model)["epoch"] == 1
    assert os.listdir(tmp_path) == ["a.pt"]


WRITER = """
import sys, torch, mini_dl as dl
model = dl.Sequential(dl.Linear(500, 500), dl.Linear(500, 500))  # 2 MB: most time is writing
epoch = 0
while True:
    dl.save_checkpoint(sys.argv[1], model, epoch=epoch)
    epoch += 1
"""


def test_a_process_killed_while_writing_leaves_a_complete_file(tmp_path):
    path = tmp_path / "w.pt"
    worker = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPOSITORY,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.01)
        time.sleep(0.3)  # a few more writes: the kill lands in one of them
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -9
    model = dl.Sequential(dl.Linear(500, 500), dl.Linear(500, 500))
    assert dl.load_checkpoint(path, model)["epoch"] >= 1


# -- refused files ---------------------------------------------------------------------------------

def damage(path, kind, tmp_path):
    """Turn the good checkpoint at ``path`` into the refused file ``kind``; returns what the
    error message must say."""
    data = path.read_bytes()
    if kind == "truncated-half":
        path.write_bytes(data[:len(data) // 2])
    elif kind == "truncated-end":
        path.write_bytes(data[:-20])
    elif kind in ("flipped-header", "flipped-payload"):
        envelope = torch.load(path, weights_only=True)
        payload = envelope["payload"].numpy().tobytes()
        where = 0 if kind == "flipped-header" else data.find(payload) + len(payload) // 2
        damaged = bytearray(data)
        damaged[where] ^= 0x40
        path.write_bytes(bytes(damaged))
        return "cannot be read" if kind == "flipped-header" else "damaged: the SHA-256"
    elif kind == "empty":
        path.write_bytes(b"")
        return "empty"
    elif kind == "foreign-dict":
        torch.save({"weight": torch.zeros(2)}, path)
        return r"not a mini_dl checkpoint: the file holds a dict with keys \['weight'\]"
    elif kind == "foreign-tensor":
        torch.save(torch.zeros(2), path)
        return "not a mini_dl checkpoint: the file holds a Tensor"
    elif kind == "text":
        path.write_text("epoch: 3\nweights: [0.1, 0.2]\n")
    elif kind == "other-version":
        envelope = torch.load(path, weights_only=True)
        torch.save({**envelope, "format_version": 99}, path)
        return "format version 99"
    return "cannot be read"


REFUSED = ["truncated-half", "truncated-end", "flipped-header", "flipped-payload", "empty",
           "foreign-dict", "foreign-tensor", "text", "other-version"]


@pytest.mark.parametrize("kind", REFUSED)
def test_a_damaged_or_foreign_file_is_a_value_error_naming_the_path_and_changes_nothing(
        tmp_path, kind):
    first = training(0, "Adam", "MultiStepLR")
    run(first)
    path = tmp_path / "run.pt"
    dl.save_checkpoint(path, first[0], first[2], first[3], epoch=2, batches=first[4])
    problem = damage(path, kind, tmp_path)
    model, _, optimizer, scheduler, batches = training(1, "Adam", "MultiStepLR")
    run((model, dl.MSELoss(), optimizer, scheduler, batches), epochs=1)  # unlike the file
    before = state_of(model, optimizer, scheduler, batches)
    with pytest.raises(ValueError, match=f"load_checkpoint: {re.escape(str(path))}: .*{problem}"):
        dl.load_checkpoint(path, model, optimizer, scheduler, batches=batches)
    assert_same_state(before, state_of(model, optimizer, scheduler, batches))


def wider(seed):
    torch.manual_seed(seed)
    return dl.Sequential(dl.Linear(2, 9), dl.BatchNorm1d(9), dl.ReLU(), dl.Dropout(0.25),
                         dl.Linear(9, 2)).double()


MISMATCHES = {  # name -> (pieces to load into, from the saved SGD + StepLR run; the message)
    "wider-model": (lambda p: (wider(1), None, None, None), (
                    r"the model's state_dict does not match the file's: missing keys \[\], "
                    r"unexpected keys \[\], shapes \['0.weight: file \(8, 2\), model \(9, 2\)'")),
    "fewer-layers": (lambda p: (dl.Sequential(dl.Linear(2, 8)).double(), None, None, None),
                     r"the model's state_dict .* unexpected keys \['1.weight'"),
    "other-optimizer": (lambda p: (p[0], dl.Adam(p[0].parameters()), None, None),
                        "the file holds a SGD's state, the optimizer is a Adam"),
    "other-groups": (lambda p: (p[0], dl.SGD([{"params": p[0][0].parameters()},
                                              {"params": list(p[0].parameters())[2:]}], lr=0.1),
                                None, None),
                     "the optimizer's parameter groups differ: the file has groups of "
                     + r"\[6\] parameters, the optimizer \[2, 4\]"),
    "other-scheduler": (lambda p: (p[0], p[2], dl.ExponentialLR(p[2], 0.5), None),
                        "the file holds a StepLR's state, the scheduler is a ExponentialLR"),
    "other-data": (lambda p: (p[0], p[2], p[3], dl.MiniBatches(torch.zeros(10, 2), torch.zeros(
        10, 2), batch_size=16)), r"the data order was saved for \{'samples': 60"),
}


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
def test_a_file_of_another_architecture_is_refused_before_anything_changes(tmp_path, mismatch):
    first = training(0)
    run(first)
    path = tmp_path / "run.pt"
    dl.save_checkpoint(path, first[0], first[2], first[3], batches=first[4])
    pieces = training(1)
    run(pieces, epochs=1)
    build, message = MISMATCHES[mismatch]
    model, optimizer, scheduler, batches = build(pieces)
    before = state_of(model, optimizer, scheduler, batches)
    with pytest.raises(ValueError, match=f"load_checkpoint: {re.escape(str(path))}: {message}"):
        dl.load_checkpoint(path, model, optimizer, scheduler, batches=batches)
    assert_same_state(before, state_of(model, optimizer, scheduler, batches))


@pytest.mark.parametrize("missing", ["optimizer", "scheduler", "batches"])
def test_asking_for_a_state_the_file_lacks_is_refused(tmp_path, missing):
    model, _, optimizer, scheduler, batches = training()
    dl.save_checkpoint(tmp_path / "m.pt", model)
    arguments = {"optimizer": optimizer, "scheduler": scheduler, "batches": batches}
    arguments = {key: value for key, value in arguments.items() if key == missing}
    what = "data order" if missing == "batches" else f"{missing} state"
    with pytest.raises(ValueError, match=f"the file holds no {what}"):
        dl.load_checkpoint(tmp_path / "m.pt", model, **arguments)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        dl.load_checkpoint(tmp_path / "nothing.pt", training()[0])


# -- weights_only: a pickle that would run code is refused unexecuted ----------------------------

class Malicious:
    """Unpickling this calls open(marker, "w"): with weights_only=False the file appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_the_malicious_object_does_run_code_when_unpickled_freely(tmp_path):
    marker = tmp_path / "ran"  # the control: the object below is really malicious
    torch.save(Malicious(str(marker)), tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False).close()
    assert marker.exists()


@pytest.mark.parametrize("layout", ["torch.save", "pickle", "inside-a-valid-envelope"])
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, layout):
    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    evil = Malicious(str(marker))
    if layout == "torch.save":
        torch.save({"format": "mini_dl checkpoint", "model": evil}, path)
    elif layout == "pickle":
        path.write_bytes(pickle.dumps(evil, protocol=2))
    else:  # a right envelope and checksum around a payload that holds the object
        data = checkpoint_module._bytes_of({"model": evil})
        torch.save({"format": checkpoint_module.FORMAT, "format_version": 1,
                    "sha256": checkpoint_module.hashlib.sha256(data).hexdigest(),
                    "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, path)
    model = training()[0]
    before = state_of(model, None, None, None)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*it holds a pickled "
                                         r"(builtins|io)\.open, which weights_only=True refuses"):
        dl.load_checkpoint(path, model)
    assert not marker.exists()
    assert_same_state(before, state_of(model, None, None, None))
