"""The schedulers of mini_dl.lr_scheduler against torch.optim.lr_scheduler, step for step.

Each scheduler is built twice by the same code, once from ``mini_dl`` over a mini_dl SGD and once
from ``torch.optim.lr_scheduler`` over the torch twin (``torch.optim.SGD`` over torch tensors with
the same parameter groups and learning rates). Both run the same float operations in the same
order, so the learning rates must be equal bit for bit at every step, for every group (stronger
than a 1e-15 relative tolerance), and so must the state dicts. ReduceLROnPlateau: both see the
same metrics; after every ``step`` the learning rates and the state machine (``best``,
``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``) must be equal.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
from mini_dl import lr_scheduler

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


# -- the epoch and batch schedulers against torch --------------------------------------------------

GROUP_LRS = (0.1, 0.03, 1.0)  # three parameter groups with different rates


def optimizers(lrs=GROUP_LRS, momentum=0.9):
    """A mini_dl SGD and its torch twin, with one parameter group per learning rate."""
    ours = dl.SGD([{"params": [dl.Parameter(torch.ones(2))], "lr": lr} for lr in lrs],
                  lr=0.5, momentum=momentum)
    theirs = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=0.5, momentum=momentum)
    return ours, theirs


class Halving:
    """A callable object (not a function): LambdaLR's state_dict saves its attributes."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


# name -> (build(schedulers_module, optimizer), steps): the same code builds ours and torch's.
# Steps are >= 3 periods; cosine runs past T_max, where the rate climbs back (the 0/0 branch).
CASES = {
    "StepLR": (lambda L, opt: L.StepLR(opt, step_size=3, gamma=0.5), 12),
    "MultiStepLR": (lambda L, opt: L.MultiStepLR(opt, milestones=[2, 5, 5, 9], gamma=0.3), 15),
    "ExponentialLR": (lambda L, opt: L.ExponentialLR(opt, gamma=0.9), 20),
    "CosineAnnealingLR": (lambda L, opt: L.CosineAnnealingLR(opt, T_max=7), 30),
    "CosineAnnealingLR-eta_min": (lambda L, opt: L.CosineAnnealingLR(opt, 5, eta_min=0.01), 21),
    "LinearLR": (lambda L, opt: L.LinearLR(opt, start_factor=0.1, total_iters=6), 18),
    "LinearLR-decay": (lambda L, opt: L.LinearLR(opt, 1.0, end_factor=0.2, total_iters=5), 15),
    "LambdaLR": (lambda L, opt: L.LambdaLR(opt, lambda epoch: 1 / (1 + epoch)), 12),
    "LambdaLR-per-group": (lambda L, opt: L.LambdaLR(
        opt, [Halving(2), lambda e: 0.9 ** e, lambda e: min(1.0, (e + 1) / 4)]), 12),
    "OneCycleLR-cos": (lambda L, opt: L.OneCycleLR(opt, max_lr=[0.5, 0.2, 2.0],
                                                   total_steps=24), 24),
    "OneCycleLR-linear-3-phase": (lambda L, opt: L.OneCycleLR(
        opt, max_lr=1.0, epochs=4, steps_per_epoch=6, pct_start=0.25,
        anneal_strategy="linear", three_phase=True, div_factor=10.0), 24),
    "OneCycleLR-no-momentum": (lambda L, opt: L.OneCycleLR(
        opt, max_lr=0.4, total_steps=15, cycle_momentum=False, final_div_factor=100.0), 15),
    "SequentialLR-warmup-cosine": (lambda L, opt: L.SequentialLR(
        opt, [L.LinearLR(opt, start_factor=0.1, total_iters=4), L.CosineAnnealingLR(opt, 8)],
        milestones=[4]), 28),
    "SequentialLR-three": (lambda L, opt: L.SequentialLR(
        opt, [L.ExponentialLR(opt, 1.5), L.StepLR(opt, 2, 0.5), L.MultiStepLR(opt, [1, 3])],
        milestones=[3, 8]), 14),
}


def group_values(optimizer, key="lr"):
    return [group[key] for group in optimizer.param_groups]


def step_pair(ours, theirs, steps):
    """optimizer.step() then scheduler.step() on both, ``steps`` times, asserting equal rates
    (and momenta) for every group after each; returns the first group's rates."""
    first = []
    for step in range(steps):
        assert group_values(ours.optimizer) == group_values(theirs.optimizer), step
        assert ours.get_last_lr() == theirs.get_last_lr(), step
        assert group_values(ours.optimizer, "momentum") == group_values(theirs.optimizer,
                                                                        "momentum"), step
        first.append(ours.get_last_lr()[0])
        ours.optimizer.step(), theirs.optimizer.step()
        ours.step(), theirs.step()
    assert group_values(ours.optimizer) == group_values(theirs.optimizer)
    return first


def build_pair(case, lrs=GROUP_LRS):
    build, steps = CASES[case]
    optimizer, twin = optimizers(lrs)
    return build(lr_scheduler, optimizer), build(torch.optim.lr_scheduler, twin), steps


@pytest.mark.parametrize("case", CASES)
def test_every_group_lr_equals_torch_at_every_step(case):
    ours, theirs, steps = build_pair(case)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the proper call order warns neither framework
        lrs = step_pair(ours, theirs, steps)
    assert len(set(lrs)) >= 3  # the schedule moved
    assert ours.state_dict() == theirs.state_dict()  # torch's keys and values


@pytest.mark.parametrize("case", CASES)
def test_state_dict_resume_in_torchs_order_continues_identically(case):
    ours, theirs, steps = build_pair(case)
    step_pair(ours, theirs, steps // 2)
    saved_optimizer, saved_scheduler = ours.optimizer.state_dict(), ours.state_dict()
    optimizer, _ = optimizers((7.0, 8.0, 9.0))  # other rates, overwritten by the loads
    resumed = CASES[case][0](lr_scheduler, optimizer)  # new optimizer, new scheduler,
    optimizer.load_state_dict(saved_optimizer)  # then both states
    resumed.load_state_dict(saved_scheduler)
    step_pair(resumed, theirs, steps - steps // 2)  # torch's run was never interrupted


@pytest.mark.parametrize("case", CASES)
def test_state_moves_between_mini_dl_and_torch_both_ways(case):
    ours, theirs, steps = build_pair(case)
    half = steps // 2
    step_pair(ours, theirs, half)
    # mini_dl's states into a new torch optimizer and scheduler
    _, twin = optimizers((7.0, 8.0, 9.0))
    torch_resumed = CASES[case][0](torch.optim.lr_scheduler, twin)
    twin.load_state_dict(ours.optimizer.state_dict())
    torch_resumed.load_state_dict(ours.state_dict())
    # torch's states into a new mini_dl optimizer and scheduler
    optimizer, _ = optimizers((7.0, 8.0, 9.0))
    ours_resumed = CASES[case][0](lr_scheduler, optimizer)
    optimizer.load_state_dict(theirs.optimizer.state_dict())
    ours_resumed.load_state_dict(theirs.state_dict())
    step_pair(ours_resumed, theirs, steps - half)
    step_pair(ours, torch_resumed, steps - half)


def test_one_cycle_cycles_adams_first_beta_as_torch():
    p, q = dl.Parameter(torch.ones(2)), torch.ones(2, requires_grad=True)
    ours = dl.OneCycleLR(dl.Adam([p], lr=1e-3, betas=(0.9, 0.99)), max_lr=0.01, total_steps=12)
    theirs = torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adam([q], lr=1e-3,
                                                                  betas=(0.9, 0.99)),
                                                 max_lr=0.01, total_steps=12)
    beta1s = []
    for _ in range(12):
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert ours.optimizer.betas == theirs.optimizer.param_groups[0]["betas"]
        beta1s.append(ours.optimizer.betas[0])
        ours.optimizer.step(), theirs.optimizer.step()
        ours.step(), theirs.step()
    # from max_momentum down towards base_momentum (reached between steps 2 and 3), back up
    assert beta1s[0] == 0.95 and 0.85 < min(beta1s) < 0.86 and beta1s[-1] == pytest.approx(0.95)
    assert ours.state_dict() == theirs.state_dict()


def test_a_tensor_lr_is_updated_in_place_as_torch():
    lr = torch.tensor(0.1)
    optimizer = dl.SGD([dl.Parameter(torch.ones(1))], lr=lr)
    twin = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=torch.tensor(0.1))
    ours, theirs = dl.CosineAnnealingLR(optimizer, 4), torch.optim.lr_scheduler.CosineAnnealingLR(
        twin, 4)
    for _ in range(6):
        optimizer.step(), twin.step()
        ours.step(), theirs.step()
        assert torch.equal(optimizer.lr, twin.param_groups[0]["lr"])
        assert optimizer.lr is lr  # the same tensor, filled in place
        assert ours.get_last_lr()[0] is not lr  # a copy
        assert torch.equal(ours.get_last_lr()[0], theirs.get_last_lr()[0])


def test_resuming_with_last_epoch_equals_torch_and_needs_initial_lr():
    ours, theirs, _ = build_pair("StepLR")
    step_pair(ours, theirs, 5)
    optimizer, twin = optimizers()
    optimizer.load_state_dict(ours.optimizer.state_dict())  # carries initial_lr
    twin.load_state_dict(theirs.optimizer.state_dict())
    resumed = dl.StepLR(optimizer, step_size=3, gamma=0.5, last_epoch=5)
    torch_resumed = torch.optim.lr_scheduler.StepLR(twin, step_size=3, gamma=0.5, last_epoch=5)
    step_pair(resumed, torch_resumed, 7)
    with pytest.raises(KeyError, match=r"StepLR: param_groups\[0\] has no 'initial_lr'"):
        dl.StepLR(optimizers()[0], step_size=3, last_epoch=5)


def test_sequential_lr_warms_up_then_decays_from_the_full_rate():
    optimizer = dl.SGD([dl.Parameter(torch.ones(1))], lr=1.0)
    warmup = dl.LinearLR(optimizer, start_factor=0.25, total_iters=3)
    scheduler = dl.SequentialLR(optimizer, [warmup, dl.CosineAnnealingLR(optimizer, T_max=4)],
                                milestones=[3])
    lrs = []
    for _ in range(8):
        optimizer.step()
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.step()
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]  # the cosine starts at the full rate, epoch 3
    assert lrs[4:] == pytest.approx([0.5 * (1 + math.cos(math.pi * t / 4)) for t in (1, 2, 3, 4)],
                                    abs=1e-15)


@pytest.mark.parametrize("module", [lr_scheduler, torch.optim.lr_scheduler],
                         ids=["mini_dl", "torch"])
def test_scheduler_step_before_optimizer_step_warns_as_torch(module):
    optimizer = (dl.SGD([dl.Parameter(torch.ones(1))], lr=1.0) if module is lr_scheduler
                 else torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=1.0))
    scheduler = module.StepLR(optimizer, step_size=2)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        scheduler.step()
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        scheduler.get_lr()


def test_optimizer_step_is_wrapped_once_and_still_steps():
    p = dl.Parameter(torch.ones(1))
    optimizer = dl.SGD([p], lr=0.5)
    dl.StepLR(optimizer, 2)
    wrapper = optimizer.step
    dl.ExponentialLR(optimizer, 0.9)  # a second scheduler keeps the first one's wrapper
    assert optimizer.step is wrapper and wrapper._wrapped_by_lr_sched
    assert not getattr(optimizer, "_opt_called", False)
    p.grad.fill_(1.0)
    optimizer.step()
    assert p.data.item() == 0.5 and optimizer._opt_called  # one SGD step: 1 - 0.5 * 1


def test_reduce_on_plateau_acts_per_group_with_a_min_lr_per_group():
    optimizer, twin = optimizers()
    options = {"factor": 0.5, "patience": 1, "min_lr": [0.02, 0, 0.3]}
    ours = dl.ReduceLROnPlateau(optimizer, **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(twin, **options)
    for metric in LOSSES:
        ours.step(metric), theirs.step(metric)
        assert group_values(optimizer) == group_values(twin)
        assert ours.get_last_lr() == theirs.get_last_lr()
    lrs = group_values(optimizer)  # groups 0 and 2 held at their min_lr, group 1 still falling
    assert lrs[0] == 0.02 and lrs[2] == 0.3 and 0 < lrs[1] < 0.001
    assert ours.state_dict() == theirs.state_dict()
    moved = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizers()[1], patience=3)
    moved.load_state_dict(ours.state_dict())  # and into mini_dl from torch:
    back = dl.ReduceLROnPlateau(optimizers()[0], mode="max")
    back.load_state_dict(theirs.state_dict())
    assert moved.state_dict() == back.state_dict() == ours.state_dict()


def test_reduce_on_plateau_follows_groups_added_later_with_one_min_lr():
    optimizer = dl.SGD([dl.Parameter(torch.ones(1))], lr=1.0)
    scheduler = dl.ReduceLROnPlateau(optimizer, patience=0, min_lr=0.3)
    optimizer.add_param_group({"params": [dl.Parameter(torch.ones(1))], "lr": 2.0})
    scheduler.step(1.0), scheduler.step(2.0), scheduler.step(2.0)
    assert group_values(optimizer) == [0.3, 0.3]
    listed = dl.ReduceLROnPlateau(optimizer, patience=0, min_lr=[0.1, 0.1])
    optimizer.add_param_group({"params": [dl.Parameter(torch.ones(1))]})
    listed.step(1.0)
    with pytest.raises(RuntimeError, match="ReduceLROnPlateau: the optimizer has 3 parameter "
                                           "groups, min_lr has 2 values"):
        listed.step(2.0)


OTHER_OPTIMIZER = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=1.0)


@pytest.mark.parametrize("build, error, match", [
    (lambda opt: dl.StepLR(OTHER_OPTIMIZER, 2), TypeError,
     "StepLR: optimizer must be a mini_dl Optimizer, got SGD"),
    (lambda opt: dl.StepLR(opt, 0), ValueError, "StepLR: step_size must be a positive int, got 0"),
    (lambda opt: dl.StepLR(opt, 2.0), ValueError, "StepLR: step_size must be a positive int"),
    (lambda opt: dl.StepLR(opt, 2, gamma="0.1"), TypeError, "StepLR: gamma must be a number"),
    (lambda opt: dl.StepLR(opt, 2, last_epoch=-2), ValueError,
     "StepLR: last_epoch must be an int >= -1, got -2"),
    (lambda opt: dl.MultiStepLR(opt, [3, -1]), ValueError, "MultiStepLR: milestones must be ints"),
    (lambda opt: dl.ExponentialLR(opt, None), TypeError, "ExponentialLR: gamma must be a number"),
    (lambda opt: dl.CosineAnnealingLR(opt, 0), ValueError,
     "CosineAnnealingLR: T_max must be a positive int, got 0"),
    (lambda opt: dl.CosineAnnealingLR(opt, 5, eta_min=-1.0), ValueError,
     "CosineAnnealingLR: eta_min must be a number >= 0"),
    (lambda opt: dl.LinearLR(opt, start_factor=0.0), ValueError,
     r"LinearLR: start_factor must be in \(0, 1\], got 0.0"),
    (lambda opt: dl.LinearLR(opt, end_factor=1.5), ValueError,
     r"LinearLR: end_factor must be in \[0, 1\], got 1.5"),
    (lambda opt: dl.LinearLR(opt, total_iters=0), ValueError,
     "LinearLR: total_iters must be a positive int"),
    (lambda opt: dl.LambdaLR(opt, 0.5), TypeError,
     r"LambdaLR: lr_lambda must be a function of the epoch, got float \(group 0\)"),
    (lambda opt: dl.LambdaLR(opt, [abs]), ValueError,
     r"LambdaLR: lr_lambda must have one value per parameter group \(3\), got 1"),
    (lambda opt: dl.OneCycleLR(opt, 1.0), ValueError,
     "OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    (lambda opt: dl.OneCycleLR(opt, 1.0, total_steps=0), ValueError,
     "OneCycleLR: total_steps must be a positive int, got 0"),
    (lambda opt: dl.OneCycleLR(opt, 1.0, epochs=2, steps_per_epoch=1.5), ValueError,
     "OneCycleLR: steps_per_epoch must be a positive int, got 1.5"),
    (lambda opt: dl.OneCycleLR(opt, 1.0, 10, pct_start=1), ValueError,
     r"OneCycleLR: pct_start must be a float in \[0, 1\], got 1"),
    (lambda opt: dl.OneCycleLR(opt, 1.0, 10, anneal_strategy="cosine"), ValueError,
     "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'cosine'"),
    (lambda opt: dl.OneCycleLR(opt, [1.0, 2.0], 10), ValueError,
     r"OneCycleLR: max_lr must have one value per parameter group \(3\), got 2"),
    (lambda opt: dl.OneCycleLR(opt, -1.0, 10), ValueError, "OneCycleLR: max_lr must be positive"),
    (lambda opt: dl.OneCycleLR(dl.Adagrad([dl.Parameter(torch.ones(1))]), 1.0, 10), ValueError,
     "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, got Adagrad"),
    (lambda opt: dl.SequentialLR(opt, [], []), ValueError,
     "SequentialLR: schedulers must be a non-empty list"),
    (lambda opt: dl.SequentialLR(opt, [dl.StepLR(opt, 2), dl.StepLR(opt, 3)], [2, 4]),
     ValueError, "SequentialLR: expected 1 milestones for 2 schedulers, got 2"),
    (lambda opt: dl.SequentialLR(opt, [dl.StepLR(opt, 2), dl.StepLR(opt, 3)], [0]),
     ValueError, r"SequentialLR: milestones must be increasing positive ints, got \[0\]"),
    (lambda opt: dl.SequentialLR(opt, [dl.StepLR(opt, 2), dl.ReduceLROnPlateau(opt)], [2]),
     ValueError, r"SequentialLR: schedulers\[1\] is a ReduceLROnPlateau"),
    (lambda opt: dl.SequentialLR(opt, [dl.StepLR(optimizers()[0], 2)], []), ValueError,
     r"SequentialLR: schedulers\[0\] \(StepLR\) drives another optimizer"),
    (lambda opt: dl.ReduceLROnPlateau(opt, min_lr=[0.1, -1.0, 0.0]), ValueError,
     r"ReduceLROnPlateau: min_lr\[1\] must be a number >= 0, got -1.0"),
    (lambda opt: dl.ReduceLROnPlateau(opt, min_lr=[0.1]), ValueError,
     r"ReduceLROnPlateau: min_lr must have one value per parameter group \(3\), got 1"),
], ids=lambda value: "" if callable(value) or isinstance(value, type) else value[:40])
def test_bad_arguments_are_refused_naming_the_scheduler(build, error, match):
    with pytest.raises(error, match=match):
        build(optimizers()[0])


def test_stepping_one_cycle_past_total_steps_and_loading_a_foreign_state_fail_clearly():
    scheduler = dl.OneCycleLR(optimizers()[0], max_lr=1.0, total_steps=3)
    for _ in range(3):
        scheduler.optimizer.step(), scheduler.step()
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 4 times; total_steps is 3"):
        scheduler.step()
    step = dl.StepLR(optimizers()[0], 2)
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: missing keys \['step_size'"):
        step.load_state_dict(dl.ExponentialLR(optimizers()[0], 0.5).state_dict())
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: unknown keys \['T_max'"):
        step.load_state_dict({**step.state_dict(), "T_max": 3})
    with pytest.raises(TypeError, match="StepLR.load_state_dict: expected a dict, got list"):
        step.load_state_dict([])
