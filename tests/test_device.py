"""mini_dl on the device given by ``pytest --device`` (the CPU unless told otherwise).

    .venv/bin/python -m pytest tests/test_device.py --device cuda   # on a machine with a GPU

With ``--device cuda`` the fixture ``matches_torch`` also moves every module comparison of the
other test files to the GPU. Each test here compares with PyTorch on the same device, in float64
where gradients are compared, and checks that nothing falls back to the CPU on the way.
"""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin
from torch_twin import benchmark


def disk_model(device) -> dl.Sequential:
    torch.manual_seed(0)
    return dl.Sequential(dl.Linear(2, 25), dl.ReLU(), dl.Linear(25, 25), dl.Tanh(),
                         dl.Linear(25, 3)).to(device=device, dtype=torch.float64)


@pytest.mark.parametrize("make_optimizer", [
    lambda params: dl.SGD(params, lr=0.1),
    lambda params: dl.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda params: dl.Adam(params, lr=0.01),
], ids=["sgd", "sgd-momentum-decay", "adam"])
def test_training_on_the_device_follows_the_torch_twin_there(device, make_optimizer):
    model = disk_model(device)
    twin = torch_twin.to_torch(model)
    torch_optimizer = {dl.SGD: torch.optim.SGD, dl.Adam: torch.optim.Adam}
    optimizer = make_optimizer(model.parameters())
    theirs = torch_optimizer[type(optimizer)](twin.parameters(), **optimizer.hyperparameters())
    x, labels = dl.disk_dataset(64, seed=1)
    x, labels = x.to(device, torch.float64), labels.to(device)
    differences = torch_twin.train_side_by_side(model, optimizer, twin, theirs,
                                                dl.CrossEntropyLoss(), x, labels, steps=20)
    assert max(differences) <= 1e-12
    moved = max((p.data - q.data).abs().max().item()
                for p, q in zip(model.parameters(), disk_model(device).parameters()))
    assert moved > 1e-3  # the comparison is between two trained models, not two frozen copies


def test_caches_gradients_and_optimizer_state_stay_on_the_device(device):
    model = disk_model(device)
    optimizer = dl.Adam(model.parameters(), lr=0.01)
    criterion = dl.CrossEntropyLoss()
    x = torch.randn(8, 2, dtype=torch.float64, device=device)
    loss = criterion(model(x), torch.arange(8, device=device) % 3)
    model.backward(criterion.backward())
    optimizer.step()
    tensors = [loss, *[p.data for p in model.parameters()], *[p.grad for p in model.parameters()]]
    tensors += [v for m in [*model, criterion] for v in vars(m).values()
                if isinstance(v, torch.Tensor)]
    tensors += [v for state in optimizer.state for v in state.values()
                if isinstance(v, torch.Tensor)]
    assert len(tensors) > 20
    assert all(t.device == device for t in tensors), {t.device for t in tensors}


def test_an_input_on_another_device_gets_a_clear_error():
    # a "meta" tensor (shape and dtype, no data) stands for a tensor on another device: this
    # runs without a GPU, and the message is the one a CPU input to a CUDA model would get
    layer = dl.Linear(3, 2)
    with pytest.raises(TypeError, match=r"Linear: input must have dtype torch.float32 on cpu, "
                                        r"got torch.float32 on meta"):
        layer(torch.empty(4, 3, device="meta"))
    criterion = dl.CrossEntropyLoss()
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: target must be on cpu, got meta"):
        criterion(torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64, device="meta"))


def test_the_benchmark_runs_and_measures_memory_on_the_device(device):
    case = benchmark.CASES["disk"]
    row = benchmark.compare(case, 16, reps=1, steps=2, device=device)
    assert row["device"] == str(device) and row["parity_max_parameter_difference"] <= 1e-4
    assert row["mini_dl_median"] > 0 and row["torch_median"] > 0
    parameters_and_grads = 2 * 4 * sum(p.data.numel() for p in case.model().parameters())
    for framework in ("mini_dl", "torch"):
        assert benchmark.peak_memory(case, framework, 16, device=device) > parameters_and_grads
