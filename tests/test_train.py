"""accuracy, evaluate and fit; fit against the classic PyTorch loop (torch_twin.fit_torch)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mini_dl as dl
import torch_twin

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OUTPUT = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0]])  # predicted classes 0, 1, 0
LABELS = torch.tensor([0, 1, 1])


# -- accuracy -------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [LABELS, dl.one_hot(LABELS, 2), 2 * dl.one_hot(LABELS, 2) - 1],
                         ids=["labels", "one-hot", "plus-minus-one"])
def test_accuracy_with_labels_and_with_one_hot_targets(target):
    result = dl.accuracy(OUTPUT, target)
    assert isinstance(result, float) and result == 2 / 3


def test_accuracy_is_one_for_a_perfect_prediction():
    assert dl.accuracy(dl.one_hot(LABELS, 3), LABELS) == 1.0


@pytest.mark.parametrize("output", [torch.zeros(3), torch.zeros(3, 2, 1), [[1.0, 0.0]]],
                         ids=["1-d", "3-d", "list"])
def test_accuracy_rejects_output_that_is_not_n_by_c(output):
    with pytest.raises(ValueError, match=r"accuracy: output must have shape \(N, C\), got"):
        dl.accuracy(output, LABELS)


@pytest.mark.parametrize("target", [torch.tensor([0, 1]), torch.zeros(3, 2, 2), torch.tensor(1),
                                    [0, 1, 1]], ids=["rows", "3-d", "0-d", "list"])
def test_accuracy_rejects_target_of_the_wrong_shape(target):
    message = r"accuracy: target must have shape \(3,\) or \(3, C\), got"
    with pytest.raises(ValueError, match=message):
        dl.accuracy(OUTPUT, target)


# -- evaluate -------------------------------------------------------------------------------------

class ModeRecorder(dl.ReLU):
    """A ReLU that records the training flag of each forward."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return super().forward(x)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_the_mode(training):
    torch.manual_seed(0)
    recorder = ModeRecorder()
    model = dl.Sequential(dl.Linear(2, 2), recorder).train(training)
    x, labels = dl.disk_dataset(20, seed=1)
    target = dl.one_hot(labels, 2)
    loss, acc = dl.evaluate(model, dl.MSELoss(), x, target)
    assert recorder.modes == [False]
    assert model.training is training and recorder.training is training
    output = model(x)
    assert loss == dl.MSELoss()(output, target).item()
    assert acc == dl.accuracy(output, target)


# -- fit ------------------------------------------------------------------------------------------

def disk_problem(seed=0, n=200, dtype=torch.float32):
    """A small disk model, its loss, an SGD optimizer and seeded batches."""
    torch.manual_seed(seed)
    x, labels = dl.disk_dataset(n, seed=seed, dtype=dtype)
    model = dl.Sequential(dl.Linear(2, 25), dl.ReLU(), dl.Linear(25, 2)).to(dtype)
    optimizer = dl.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = dl.MiniBatches(x, dl.one_hot(labels, 2, dtype=dtype), batch_size=20, seed=seed)
    return model, dl.MSELoss(), optimizer, batches


def test_fit_returns_a_per_epoch_history_and_prints_nothing_without_progress(capsys):
    model, criterion, optimizer, batches = disk_problem()
    validation = batches.tensors[0][:50], batches.tensors[1][:50]
    history = dl.fit(model, criterion, optimizer, batches, epochs=4, validation=validation,
                     progress=False)
    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(values) == 4 for values in history.values())
    assert history["lr"] == [0.1] * 4
    assert all(0.0 <= a <= 1.0 for a in history["train_accuracy"] + history["val_accuracy"])
    assert capsys.readouterr() == ("", "")


def test_fit_without_validation_leaves_the_validation_history_empty():
    history = dl.fit(*disk_problem(), epochs=2, progress=False)
    assert history["val_loss"] == history["val_accuracy"] == []
    assert len(history["train_loss"]) == len(history["train_accuracy"]) == 2


def test_fit_shows_a_progress_bar_on_stderr_by_default(capsys):
    dl.fit(*disk_problem(n=20), epochs=1)
    assert "epochs" in capsys.readouterr().err


def test_fit_seeded_runs_are_bit_identical():
    def run():
        model, criterion, optimizer, batches = disk_problem(seed=3)
        history = dl.fit(model, criterion, optimizer, batches, epochs=3, progress=False)
        return history, [p.data.clone() for p in model.parameters()]

    (history1, params1), (history2, params2) = run(), run()
    assert history1 == history2
    assert all(torch.equal(a, b) for a, b in zip(params1, params2))


def test_fit_of_a_small_disk_model_reduces_the_loss():
    history = dl.fit(*disk_problem(), epochs=20, progress=False)
    # Seeded: the loss falls from ~0.44 to ~0.09 and the accuracy reaches ~0.9.
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["train_accuracy"][-1] > 0.8


def test_fit_equals_torch_fit_from_the_same_init_and_batches_in_float64():
    model, criterion, optimizer, batches = disk_problem(seed=5, dtype=torch.float64)
    twin = torch_twin.to_torch(model)
    twin_batches = dl.MiniBatches(*batches.tensors, batch_size=20, seed=5)  # same seed, same order
    torch_losses = torch_twin.fit_torch(
        twin, torch.nn.MSELoss(), torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9),
        twin_batches, epochs=4)
    history = dl.fit(model, criterion, optimizer, batches, epochs=4, progress=False)
    # Same float64 arithmetic up to summation order: differences stay ~1e-15 per step; 1e-9
    # after 40 steps leaves room for their growth and still fails on any wrong gradient.
    assert max(abs(a - b) for a, b in zip(history["train_loss"], torch_losses)) < 1e-9
    assert torch_twin.max_parameter_difference(model, twin) < 1e-9
    assert history["train_loss"][-1] < history["train_loss"][0]


@pytest.mark.parametrize("with_validation", [True, False])
def test_fit_steps_the_scheduler_with_the_validation_loss_or_else_the_train_loss(with_validation):
    class Recorder:
        def __init__(self):
            self.values = []

        def step(self, value):
            self.values.append(value)

    model, criterion, optimizer, batches = disk_problem(n=40)
    validation = (batches.tensors[0][:10], batches.tensors[1][:10]) if with_validation else None
    scheduler = Recorder()
    history = dl.fit(model, criterion, optimizer, batches, epochs=3, validation=validation,
                     scheduler=scheduler, progress=False)
    assert scheduler.values == history["val_loss" if with_validation else "train_loss"]


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True, None])
def test_fit_rejects_epochs_that_are_not_a_positive_int(epochs):
    with pytest.raises(ValueError, match=r"fit: epochs must be a positive int, got"):
        dl.fit(*disk_problem(n=10), epochs=epochs, progress=False)


def test_fit_rejects_batches_that_are_not_minibatches_over_inputs_and_targets():
    model, criterion, optimizer, batches = disk_problem(n=10)
    x, target = batches.tensors
    for bad in [[(x, target)], dl.MiniBatches(x, batch_size=2),
                dl.MiniBatches(x, target, target, batch_size=2)]:
        with pytest.raises(TypeError, match=r"fit: batches must be a MiniBatches over \(inputs"):
            dl.fit(model, criterion, optimizer, bad, epochs=1, progress=False)


def test_fit_skips_the_datas_gradient_and_restores_the_first_modules_flag():
    torch.manual_seed(0)
    inner = dl.Sequential(dl.Linear(2, 3), dl.ReLU())
    model = dl.Sequential(inner, dl.Linear(3, 2))
    calls = []
    first_backward = inner[0].backward
    inner[0].backward = lambda g: calls.append(inner[0].needs_input_grad) or first_backward(g)
    x, y = dl.disk_dataset(32, seed=1)
    dl.fit(model, dl.CrossEntropyLoss(), dl.SGD(model.parameters(), 0.1),
           dl.MiniBatches(x, y, batch_size=16, seed=0), epochs=1, progress=False)
    assert calls == [False, False]  # the data's gradient was never computed
    assert inner[0].needs_input_grad is True  # and the flag is as it was


# -- fit with the calendar schedulers of mini_dl.lr_scheduler -------------------------------------

def test_fit_steps_a_calendar_scheduler_once_per_epoch_without_a_metric_as_torch():
    import warnings

    model, criterion, optimizer, batches = disk_problem(n=40)
    scheduler = dl.CosineAnnealingLR(optimizer, T_max=4)
    twin = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    torch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(twin, T_max=4)
    torch_lrs = []
    for _ in range(6):  # torch's recipe: train an epoch (optimizer steps), then scheduler.step()
        torch_lrs.append(twin.param_groups[0]["lr"])
        twin.step()
        torch_scheduler.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fit calls them in the order torch expects
        history = dl.fit(model, criterion, optimizer, batches, epochs=6, validation=None,
                         scheduler=scheduler, progress=False)
    assert history["lr"] == torch_lrs  # the rate used in each epoch, bit for bit
    assert scheduler.last_epoch == 6 and optimizer.lr == torch_scheduler.get_last_lr()[0]


def test_fit_records_the_first_groups_lr_and_schedules_every_group():
    torch.manual_seed(0)
    model = dl.Sequential(dl.Linear(2, 8), dl.ReLU(), dl.Linear(8, 2))
    optimizer = dl.SGD([{"params": model[0].parameters(), "lr": 0.05},
                        {"params": model[2].parameters(), "lr": 0.2}], momentum=0.9)
    scheduler = dl.SequentialLR(optimizer, [dl.LinearLR(optimizer, 0.5, total_iters=2),
                                            dl.StepLR(optimizer, step_size=1, gamma=0.5)],
                                milestones=[2])
    x, labels = dl.disk_dataset(40, seed=0)
    history = dl.fit(model, dl.CrossEntropyLoss(), optimizer,
                     dl.MiniBatches(x, labels, batch_size=20, seed=0), epochs=4,
                     scheduler=scheduler, progress=False)
    assert history["lr"] == pytest.approx([0.025, 0.0375, 0.05, 0.025], rel=1e-15)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.0125, 0.05])


# -- fit with checkpoints: resume to the same bits, also after SIGKILL ----------------------------

SURVIVAL_EPOCHS = 6


class Pause(dl.Identity):
    """The identity, after ``delay`` seconds: slows a worker down enough to be killed mid-run."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return super().forward(x)


def survival_problem(dtype=torch.float32, seed=0, delay=0.0):
    """Dropout, shuffling, momentum and a MultiStepLR: everything a resume must restore. The
    seed sets the initialisation and the data order, not the data."""
    x, labels = dl.disk_dataset(120, seed=0, dtype=dtype)
    torch.manual_seed(seed)
    model = dl.Sequential(dl.Linear(2, 16), dl.ReLU(), dl.Dropout(0.3), Pause(delay),
                          dl.Linear(16, 2)).to(dtype)
    optimizer = dl.SGD(model.parameters(), lr=0.2, momentum=0.9)
    scheduler = dl.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.5)
    batches = dl.MiniBatches(x, dl.one_hot(labels, 2, dtype=dtype), batch_size=20, seed=seed)
    return model, dl.MSELoss(), optimizer, batches, scheduler


def survive(problem, epochs=SURVIVAL_EPOCHS, **options):
    model, criterion, optimizer, batches, scheduler = problem
    return dl.fit(model, criterion, optimizer, batches, epochs=epochs, scheduler=scheduler,
                  progress=False, **options)


def same_parameters(model, other):
    """Bit-identical state_dicts; ``model`` and ``other`` may be models or whole problems."""
    model, other = (m[0] if isinstance(m, tuple) else m for m in (model, other))
    return all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 other.state_dict().values(), strict=True))


WORKER = """
import sys, torch
sys.path.insert(0, "tests")
from test_train import survival_problem, survive
torch.set_num_threads(1)
dtype, path, mode = getattr(torch, sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "checkpointed":  # killed by the test at some point
    survive(survival_problem(dtype, delay=0.02), checkpoint=path)
else:
    problem = survival_problem(dtype)
    history = survive(problem)
    torch.save({"state": problem[0].state_dict(), "history": history}, path)
"""


def start_worker(dtype, path, mode):
    return subprocess.Popen([sys.executable, "-c", WORKER, str(dtype).split(".")[1], str(path),
                             mode], cwd=REPOSITORY, env={**os.environ, "OMP_NUM_THREADS": "1"})


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same arithmetic
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(("dtype", "extra_wait"), [(torch.float32, 0.0), (torch.float64, 0.25)],
                         ids=["float32", "float64"])
def test_fit_killed_with_sigkill_and_resumed_is_bit_identical_to_the_uninterrupted_run(
        tmp_path, dtype, extra_wait):
    path = tmp_path / "run.pt"
    killed = start_worker(dtype, path, "checkpointed")
    whole = start_worker(dtype, tmp_path / "whole.pt", "uninterrupted")  # another process
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(extra_wait)  # float64: killed later, in another epoch or during a write
    finally:
        killed.kill()
        killed.wait()
        whole.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL and whole.returncode == 0
    reached = dl.load_checkpoint(path, survival_problem(dtype)[0])["epoch"]
    assert 1 <= reached < SURVIVAL_EPOCHS  # really interrupted, after a checkpoint
    with one_thread():
        resumed = survival_problem(dtype, seed=1)  # other weights and order: the file rules
        history = survive(resumed, checkpoint=path, resume=True)
        here = survival_problem(dtype)
        history_here = survive(here)
    reference = torch.load(tmp_path / "whole.pt", weights_only=True)
    assert history == reference["history"] == history_here  # the whole history, bit for bit
    assert all(torch.equal(value, reference["state"][key])
               for key, value in resumed[0].state_dict().items())
    assert same_parameters(here, resumed)  # and the same seed gives the same bits in two processes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("stopped_after", [1, 3])
def test_fit_resumed_from_a_checkpoint_takes_the_uninterrupted_runs_steps(tmp_path, dtype,
                                                                          stopped_after):
    uninterrupted = survival_problem(dtype)
    history = survive(uninterrupted)
    survive(survival_problem(dtype), epochs=stopped_after, checkpoint=tmp_path / "c.pt")
    torch.manual_seed(123)  # the global RNG state of the file wins too
    resumed = survival_problem(dtype, seed=1)
    assert survive(resumed, checkpoint=tmp_path / "c.pt", resume=True) == history
    assert same_parameters(uninterrupted, resumed)
    assert dl.load_checkpoint(tmp_path / "c.pt", resumed[0])["epoch"] == SURVIVAL_EPOCHS


def test_fit_with_a_checkpoint_saves_every_epoch_and_changes_no_result(tmp_path, monkeypatch):
    plain = survival_problem()
    history = survive(plain, epochs=3)
    saved = []
    save = dl.train.save_checkpoint
    monkeypatch.setattr(dl.train, "save_checkpoint",
                        lambda *a, **k: saved.append(k["epoch"]) or save(*a, **k))
    checkpointed = survival_problem()
    assert survive(checkpointed, epochs=3, checkpoint=tmp_path / "c.pt") == history
    assert saved == [1, 2, 3] and same_parameters(plain, checkpointed)
    info = dl.load_checkpoint(tmp_path / "c.pt", survival_problem()[0])
    assert info["extra"] == {"history": history}


def test_fit_resume_without_a_file_starts_afresh(tmp_path):
    history = survive(plain := survival_problem(), epochs=2)
    assert survive(fresh := survival_problem(), epochs=2, checkpoint=tmp_path / "new.pt", resume=True) == history
    assert same_parameters(plain, fresh) and (tmp_path / "new.pt").exists()


def test_fit_resume_of_a_finished_run_returns_its_history_without_training(tmp_path):
    done = survival_problem()
    history = survive(done, epochs=3, checkpoint=tmp_path / "c.pt")
    again = survival_problem(seed=1)
    assert survive(again, epochs=3, checkpoint=tmp_path / "c.pt", resume=True) == history
    assert same_parameters(done, again)  # loaded, not trained further
    assert survive(again, epochs=2, checkpoint=tmp_path / "c.pt", resume=True) == history


def test_fit_resume_needs_a_checkpoint_path_and_a_file_of_fit(tmp_path):
    with pytest.raises(ValueError, match=r"fit: resume=True needs checkpoint=path"):
        survive(survival_problem(), resume=True)
    model = survival_problem()[0]
    dl.save_checkpoint(tmp_path / "bare.pt", model, survival_problem()[2],
                       survival_problem()[4], batches=survival_problem()[3])
    with pytest.raises(ValueError, match=r"bare.pt was not written by fit"):
        survive(survival_problem(), checkpoint=tmp_path / "bare.pt", resume=True)


# -- guards: a non-finite loss, output or gradient stops fit before the step ----------------------

def plain_problem(x, labels, model=None, lr=0.1):
    torch.manual_seed(0)
    model = model or dl.Sequential(dl.Linear(2, 8), dl.ReLU(), dl.Linear(8, 2))
    batches = dl.MiniBatches(x, dl.one_hot(labels, 2), batch_size=20, shuffle=False)
    return model, dl.MSELoss(), dl.SGD(model.parameters(), lr=lr, momentum=0.9), batches


def poisoned_data(index=45):
    x, labels = dl.disk_dataset(100, seed=0)
    x[index, 1] = float("nan")
    return x, labels


@pytest.mark.parametrize(("detect_anomaly", "message"), [
    (False, r"fit: the loss is nan at epoch 0, batch 2 \(counted from 0\); no step was taken"),
    (True, (r"fit: a non-finite output in the forward pass of Sequential\[0\] \(Linear\) at "
            r"epoch 0, batch 2 \(counted from 0\); no step was taken")),
])
def test_a_nan_in_the_data_stops_fit_before_its_step(detect_anomaly, message):
    x, labels = poisoned_data(45)  # in batch 2 (samples 40-59)
    model, *rest = plain_problem(x, labels)
    with pytest.raises(FloatingPointError, match=message):
        dl.fit(model, *rest, epochs=3, progress=False, detect_anomaly=detect_anomaly)
    good, *rest = plain_problem(x[:40], labels[:40])  # the two steps before the bad batch
    dl.fit(good, *rest, epochs=1, progress=False)
    assert same_parameters(model, good)  # no step after the last good one


class Poison:
    """A plateau-style scheduler (stepped with a metric) that puts a NaN into the data after
    epoch ``after``: the failure then comes in the middle of a checkpointed run."""

    def __init__(self, tensor, after):
        self.tensor, self.after, self.calls = tensor, after, 0

    def step(self, metric):
        self.calls += 1
        if self.calls == self.after:
            self.tensor[50, 0] = float("nan")

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def test_a_failure_mid_run_leaves_the_last_good_checkpoint(tmp_path):
    x, labels = dl.disk_dataset(100, seed=0)
    model, criterion, optimizer, batches = plain_problem(x.clone(), labels)
    with pytest.raises(FloatingPointError, match=r"at epoch 2, batch 2 "):
        dl.fit(model, criterion, optimizer, batches, epochs=5, progress=False,
               scheduler=Poison(batches.tensors[0], after=2), checkpoint=tmp_path / "c.pt")
    good, *rest = plain_problem(x, labels)
    dl.fit(good, *rest, epochs=2, progress=False)
    on_disk = plain_problem(x, labels, lr=0.5)[0]
    info = dl.load_checkpoint(tmp_path / "c.pt", on_disk)
    assert info["epoch"] == 2 and same_parameters(on_disk, good)


@pytest.mark.parametrize("detect_anomaly", [False, True])
def test_a_diverging_learning_rate_raises_a_floating_point_error(tmp_path, detect_anomaly):
    x, labels = dl.disk_dataset(100, seed=0)
    model, *rest = plain_problem(x, labels, lr=1e4)
    where = (r"a non-finite \w+( \w+)? in the (forward|backward) pass of (Sequential\[\d\] "
             r"\(\w+\)|MSELoss \(the criterion\))" if detect_anomaly else r"the loss is (nan|inf)")
    with pytest.raises(FloatingPointError, match=rf"fit: {where} at epoch \d+, batch \d+ "):
        dl.fit(model, *rest, epochs=20, progress=False, checkpoint=tmp_path / "c.pt",
               detect_anomaly=detect_anomaly)


class BrokenBackward(dl.Identity):
    """The identity forward, a backward that returns NaN: only the backward check sees it."""

    def backward(self, grad_output):
        return grad_output * float("nan")


def nested_model():
    torch.manual_seed(0)
    return dl.Sequential(dl.Sequential(dl.Linear(2, 4), dl.ReLU(), dl.Linear(4, 4)), dl.ReLU(),
                         dl.Linear(4, 2))


@pytest.mark.parametrize(("case", "message"), [
    ("nested", (r"a non-finite output in the forward pass of Sequential\[0\]\[2\] \(Linear\) "
                r"at epoch 0, batch 0 ")),
    ("backward", (r"a non-finite input gradient in the backward pass of Sequential\[1\] "
                  r"\(BrokenBackward\) at epoch 0, batch 0 ")),
])
def test_detect_anomaly_names_the_first_module_by_its_path_and_the_phase(case, message):
    x, labels = dl.disk_dataset(40, seed=0)
    if case == "nested":
        model = nested_model()
        model[0][2].weight.data[0, 0] = float("inf")
    else:
        torch.manual_seed(0)
        model = dl.Sequential(dl.Linear(2, 4), BrokenBackward(), dl.Linear(4, 2))
    model, *rest = plain_problem(x, labels, model=model)
    before = [p.data.clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match=message):
        dl.fit(model, *rest, epochs=1, progress=False, detect_anomaly=True)
    assert all(torch.equal(p.data, b) for p, b in zip(model.parameters(), before, strict=True))
    assert all("forward" not in m.__dict__ and "backward" not in m.__dict__
               for _, m in model.named_modules())  # unwrapped after the error
    assert "forward" not in rest[0].__dict__ and "backward" not in rest[0].__dict__


def test_detect_anomaly_changes_no_result_and_is_removed_after_fit():
    history = survive(plain := survival_problem(), epochs=2)
    assert survive(checked := survival_problem(), epochs=2, detect_anomaly=True) == history
    assert same_parameters(plain, checked)
    assert all(set(m.__dict__).isdisjoint({"forward", "backward"})
               for _, m in checked[0].named_modules())


def test_detect_anomaly_also_watches_the_evaluation():
    x, labels = dl.disk_dataset(40, seed=0)
    model, *rest = plain_problem(x, labels)
    validation = poisoned_data(3)[0][:10], dl.one_hot(labels[:10], 2)
    message = (r"fit: a non-finite output in the forward pass of Sequential\[0\] \(Linear\) at "
               r"epoch 0 \(counted from 0\), evaluating after its last step")
    with pytest.raises(FloatingPointError, match=message):
        dl.fit(model, *rest, epochs=2, validation=validation, progress=False,
               detect_anomaly=True)


def test_fit_with_a_checkpoint_needs_a_scheduler_with_a_state(tmp_path):
    class Stateless:
        def step(self, metric):
            pass

    with pytest.raises(TypeError, match=r"fit: checkpoint= saves the scheduler's state: a "
                                        r"Stateless needs state_dict\(\) and load_state_dict"):
        survive(survival_problem()[:4] + (Stateless(),), checkpoint=tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()
