"""ReduceLROnPlateau against torch.optim.lr_scheduler.ReduceLROnPlateau, epoch for epoch.

Both schedulers see the same metrics; after every ``step`` the learning rates must be equal (the
same float operations: ``lr * factor``, ``max`` with ``min_lr``) and so must the state machine
(``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``).
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

STATE = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
# A loss that improves, stalls, creeps down by less than the threshold, and stalls for long:
LOSSES = [1.0, 0.8, 0.8, 0.795, 0.797, 0.8, 0.6, 0.6, 0.599, 0.6, 0.61, 0.6, 0.4, 0.41, 0.4,
          0.4, 0.399, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]


def schedulers(lr: float = 1.0, **options):
    ours = dl.ReduceLROnPlateau(dl.SGD([dl.Parameter(torch.zeros(1))], lr=lr), **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr), **options)
    return ours, theirs


def step_both(ours, theirs, metrics) -> list[float]:
    """Step both with each metric, asserting equal lr and state after every step; the lrs."""
    lrs = []
    for epoch, metric in enumerate(metrics):
        ours.step(metric)
        theirs.step(metric)
        expected = theirs.optimizer.param_groups[0]["lr"]
        assert ours.optimizer.lr == expected, f"epoch {epoch}: lr {ours.optimizer.lr} != {expected}"
        for key in STATE:
            mine, torchs = getattr(ours, key), getattr(theirs, key)
            assert mine == torchs or (math.isnan(mine) and math.isnan(torchs)), (epoch, key)
        assert ours.get_last_lr() == theirs.get_last_lr()
        lrs.append(expected)
    return lrs


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode, threshold", [("rel", 0.01), ("abs", 0.005)])
@pytest.mark.parametrize("cooldown", [0, 2])
def test_lr_sequence_matches_torch(mode, threshold_mode, threshold, cooldown):
    # "max" watches an accuracy-like metric (positive, as the rel threshold assumes): 2 - loss
    metrics = LOSSES if mode == "min" else [2.0 - loss for loss in LOSSES]
    ours, theirs = schedulers(mode=mode, factor=0.5, patience=2, threshold=threshold,
                              threshold_mode=threshold_mode, cooldown=cooldown, min_lr=0.1)
    lrs = step_both(ours, theirs, metrics)
    assert lrs[0] == 1.0 and lrs[-1] == 0.1  # reduced several times, then held at min_lr
    assert len(set(lrs)) >= 3


def test_the_sequence_exercises_threshold_patience_and_cooldown():
    ours, _ = schedulers(factor=0.5, patience=2, threshold=0.01, cooldown=2, min_lr=0.1)
    bad_epochs, below_best_but_not_better, cooldowns = [], 0, 0
    for loss in LOSSES:
        below_best_but_not_better += ours.best * 0.99 <= loss < ours.best
        ours.step(loss)
        bad_epochs.append(ours.num_bad_epochs)
        cooldowns += ours.in_cooldown
    assert below_best_but_not_better >= 3  # 0.795 after 0.8, 0.599 after 0.6, 0.399 after 0.4
    assert max(bad_epochs) == 2 and cooldowns >= 4


def test_patience_zero_reduces_on_every_bad_epoch():
    ours, theirs = schedulers(patience=0, factor=0.5)
    assert step_both(ours, theirs, [1.0, 2.0, 0.5, 0.5, 0.4]) == [1.0, 0.5, 0.5, 0.25, 0.25]


def test_eps_ignores_changes_smaller_than_eps():
    ours, theirs = schedulers(patience=0, factor=0.5, eps=0.3)
    assert step_both(ours, theirs, [1.0, 1.0, 1.0, 1.0]) == [1.0, 0.5, 0.5, 0.5]


def test_accepts_zero_dim_tensors_and_nan_like_torch():
    ours, theirs = schedulers(patience=1)
    metrics = [torch.tensor(1.0), float("nan"), torch.tensor(float("nan")), 2.0, 0.5]
    step_both(ours, theirs, metrics)
    assert ours.optimizer.lr == pytest.approx(0.1)


@settings(max_examples=60, deadline=None)
@given(metrics=st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 0.99, 1.0, 1.0001, 2.0,
                                         math.inf, math.nan]), min_size=1, max_size=60),
       mode=st.sampled_from(["min", "max"]), threshold_mode=st.sampled_from(["rel", "abs"]),
       threshold=st.sampled_from([0.0, 1e-4, 0.05, 0.5]), patience=st.integers(0, 4),
       cooldown=st.integers(0, 3), factor=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       min_lr=st.sampled_from([0.0, 1e-3, 0.3]), eps=st.sampled_from([1e-8, 0.05]),
       lr=st.sampled_from([1.0, 0.01]))
def test_matches_torch_on_random_metric_sequences(metrics, mode, threshold_mode, threshold,
                                                  patience, cooldown, factor, min_lr, eps, lr):
    ours, theirs = schedulers(lr, mode=mode, factor=factor, patience=patience,
                              threshold=threshold, threshold_mode=threshold_mode,
                              cooldown=cooldown, min_lr=min_lr, eps=eps)
    step_both(ours, theirs, metrics)


def test_state_dict_restores_a_fresh_scheduler_exactly():
    options = {"factor": 0.5, "patience": 2, "threshold": 0.01, "cooldown": 2, "min_lr": 0.1}
    ours, theirs = schedulers(**options)
    step_both(ours, theirs, LOSSES[:9])
    saved = ours.state_dict()
    for key in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                "eps", "best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
        assert saved[key] == theirs.state_dict()[key], key
    restored = dl.ReduceLROnPlateau(ours.optimizer, mode="max", patience=50)
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved
    step_both(restored, theirs, LOSSES[9:])  # continues exactly like torch, never interrupted


def test_scheduler_drives_fit():
    torch.manual_seed(0)
    model = dl.Sequential(dl.Linear(2, 4), dl.Tanh(), dl.Linear(4, 2))
    x, labels = dl.disk_dataset(64, seed=0)
    optimizer = dl.SGD(model.parameters(), lr=0.5)
    scheduler = dl.ReduceLROnPlateau(optimizer, mode="max", patience=0, threshold=10.0)
    history = dl.fit(model, dl.CrossEntropyLoss(), optimizer,
                     dl.MiniBatches(x, labels, batch_size=64), epochs=4,
                     validation=(x, labels), scheduler=scheduler, progress=False)
    # nothing is ever 10x better in "max" mode: the lr drops after every epoch but the first
    assert history["lr"] == pytest.approx([0.5, 0.5, 0.05, 0.005])


@pytest.mark.parametrize("options, match", [
    ({"factor": 1.0}, r"factor must be in \[0, 1\), got 1.0"),
    ({"factor": 2}, r"factor must be in \[0, 1\), got 2"),
    ({"factor": -0.5}, r"factor must be in \[0, 1\), got -0.5"),
    ({"mode": "avg"}, "mode must be 'min' or 'max', got 'avg'"),
    ({"threshold_mode": "relative"}, "threshold_mode must be 'rel' or 'abs', got 'relative'"),
    ({"patience": -1}, "patience must be an int >= 0, got -1"),
    ({"patience": 1.5}, "patience must be an int >= 0, got 1.5"),
    ({"cooldown": -2}, "cooldown must be an int >= 0, got -2"),
    ({"threshold": -1e-4}, "threshold must be a number >= 0"),
    ({"min_lr": -1.0}, "min_lr must be a number >= 0"),
    ({"eps": "small"}, "eps must be a number >= 0, got 'small'"),
], ids=["factor=1", "factor>1", "negative-factor", "bad-mode", "bad-threshold-mode",
        "negative-patience", "float-patience", "negative-cooldown", "negative-threshold",
        "negative-min-lr", "string-eps"])
def test_rejects_bad_hyperparameters(options, match):
    optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=f"ReduceLROnPlateau: {match}"):
        dl.ReduceLROnPlateau(optimizer, **options)


def test_rejects_bad_optimizer_metric_and_state():
    with pytest.raises(TypeError, match="ReduceLROnPlateau: optimizer must be a mini_dl "
                                        "Optimizer, got SGD"):
        dl.ReduceLROnPlateau(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
    scheduler = dl.ReduceLROnPlateau(dl.SGD([dl.Parameter(torch.zeros(1))], lr=1.0))
    for metric in ("low", None, torch.zeros(2)):
        with pytest.raises(TypeError, match="ReduceLROnPlateau.step: metric must be a number"):
            scheduler.step(metric)
    with pytest.raises(ValueError, match=r"load_state_dict: missing keys \['best'"):
        scheduler.load_state_dict({key: value for key, value in scheduler.state_dict().items()
                                   if key != "best"})
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be"):
        scheduler.load_state_dict({**scheduler.state_dict(), "mode": "median"})
    assert repr(scheduler).startswith("ReduceLROnPlateau(mode='min', factor=0.1, patience=10")
