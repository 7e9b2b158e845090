"""torch_twin.fit_torch_together: several twins trained as one batch of models equal each model
trained alone by mini_dl, in float64, with and without per-twin schedulers."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin


def disk_models(count: int, *, logits: bool):
    """Small disk networks in float64, seeds 0..count-1 (a Tanh output unless ``logits``)."""
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        layers = [dl.Linear(2, 6), dl.ReLU(), dl.Linear(6, 2)] + ([] if logits else [dl.Tanh()])
        models.append(dl.Sequential(*layers).double())
    return models


def disk_data(n: int, seed: int, *, one_hot: bool):
    x, labels = dl.disk_dataset(n, seed=seed, dtype=torch.float64)
    return x, dl.one_hot(labels, 2, dtype=torch.float64) if one_hot else labels


def test_twins_trained_together_match_mini_dl_trained_alone_with_cross_entropy_and_momentum():
    x, labels = disk_data(60, seed=0, one_hot=False)
    models = disk_models(3, logits=True)
    twins = [torch_twin.to_torch(model) for model in models]
    histories = torch_twin.fit_torch_together(
        twins, torch.nn.CrossEntropyLoss(),
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
        [dl.MiniBatches(x, labels, batch_size=20, seed=seed) for seed in range(3)], epochs=5)
    for seed, (model, twin, history) in enumerate(zip(models, twins, histories)):
        ours = dl.fit(model, dl.CrossEntropyLoss(), dl.SGD(model.parameters(), lr=0.05, momentum=0.9),
                      dl.MiniBatches(x, labels, batch_size=20, seed=seed), epochs=5, progress=False)
        # float64, 15 steps: rounding differences stay near 1e-16, a wrong step would be O(1e-2)
        assert torch_twin.max_parameter_difference(model, twin) < 1e-12
        assert history["train_loss"] == pytest.approx(ours["train_loss"], abs=1e-12)
        assert history["lr"] == [0.05] * 5


def test_per_twin_schedulers_follow_each_twins_validation_loss_as_mini_dl_fit():
    x, target = disk_data(60, seed=0, one_hot=True)
    validation = disk_data(40, seed=1, one_hot=True)
    models = disk_models(2, logits=False)
    twins = [torch_twin.to_torch(model) for model in models]
    histories = torch_twin.fit_torch_together(
        twins, torch.nn.MSELoss(), lambda params: torch.optim.SGD(params, lr=0.5),
        [dl.MiniBatches(x, target, batch_size=30, seed=seed) for seed in range(2)], epochs=12,
        validation=validation,
        make_scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1))
    for seed, (model, twin, history) in enumerate(zip(models, twins, histories)):
        optimizer = dl.SGD(model.parameters(), lr=0.5)
        ours = dl.fit(model, dl.MSELoss(), optimizer,
                      dl.MiniBatches(x, target, batch_size=30, seed=seed), epochs=12,
                      validation=validation, scheduler=dl.ReduceLROnPlateau(optimizer, patience=1),
                      progress=False)
        assert history["lr"] == ours["lr"]
        assert history["val_loss"] == pytest.approx(ours["val_loss"], abs=1e-12)
        assert torch_twin.max_parameter_difference(model, twin) < 1e-12
    assert histories[0]["lr"][-1] < 0.5 == histories[1]["lr"][-1]  # each twin its own schedule


def test_fit_torch_together_needs_one_minibatches_per_twin():
    x, target = disk_data(10, seed=0, one_hot=True)
    twins = [torch_twin.to_torch(model) for model in disk_models(2, logits=False)]
    with pytest.raises(ValueError, match="one MiniBatches per twin, got 2 twins and 1"):
        torch_twin.fit_torch_together(twins, torch.nn.MSELoss(),
                                      lambda params: torch.optim.SGD(params, lr=0.1),
                                      [dl.MiniBatches(x, target, batch_size=5)], epochs=1)


def test_paired_difference_gives_scipys_paired_t_statistic():
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [0.031, 0.022, 0.040, 0.027, 0.035], [0.020, 0.021, 0.030, 0.026, 0.020]
    mean, standard_error, t = torch_twin.paired_difference(a, b)
    assert mean == pytest.approx(0.0076) and t == pytest.approx(mean / standard_error)
    assert t == pytest.approx(scipy_stats.ttest_rel(a, b).statistic, rel=1e-12)


def test_paired_difference_needs_two_lists_of_the_same_length():
    with pytest.raises(ValueError, match="same length >= 2, got 2 and 3 values"):
        torch_twin.paired_difference([0.1, 0.2], [0.1, 0.2, 0.3])


def test_from_torch_builds_the_mini_dl_twin_with_the_same_weights_dtype_and_mode():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(4, 2, bias=False)).double().eval()
    ours = torch_twin.from_torch(net)
    assert [type(m).__name__ for m in ours] == ["Linear", "Tanh", "Dropout", "Linear"]
    assert ours[2].p == 0.2 and ours[3].bias is None and not ours.training
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(ours(x), net(x).detach())
    back = torch_twin.to_torch(ours)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                 net.state_dict().values()))


def test_twins_of_subclasses_are_the_twins_of_their_base_class():
    class Wider(dl.Linear):
        pass

    assert isinstance(torch_twin.to_torch(Wider(2, 3)), torch.nn.Linear)


def test_from_torch_refuses_a_layer_mini_dl_does_not_have():
    with pytest.raises(TypeError, match="from_torch: no mini_dl counterpart known for "
                                        "torch.nn.LSTM"):
        torch_twin.from_torch(torch.nn.Sequential(torch.nn.LSTM(2, 3)))
