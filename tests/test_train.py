"""accuracy, evaluate and fit; fit against the classic PyTorch loop (torch_twin.fit_torch)."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin

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
