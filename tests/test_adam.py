"""Adam and AdamW against torch.optim.Adam / AdamW, step for step, and their state save/restore.

Trajectories are compared after every one of >= 50 steps in float64: with the same gradients in
(``step_side_by_side``) the updates agree to the last bit; on a network trained end to end
(``train_side_by_side``) the two sides' gradients may differ in the last bits (sums in another
order), still far below the asserted 1e-10.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

TOLERANCE = 1e-10
CORNERS = [  # (class name, options)
    ("Adam", {}),
    ("Adam", {"betas": (0.5, 0.9)}),
    ("Adam", {"betas": (0.0, 0.0), "eps": 1e-3}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.0}),
    ("AdamW", {"betas": (0.7, 0.95), "weight_decay": 0.3}),
]
IDS = [f"{name}-{options}" for name, options in CORNERS]


def adam_pair(name: str, ours: list, theirs: list, lr: float, options: dict):
    return (getattr(dl, name)(ours, lr=lr, **options),
            getattr(torch.optim, name)(theirs, lr=lr, **options))


def bumpy_gradient(w: torch.Tensor) -> torch.Tensor:
    """Gradient of sum(-cos(3w)/3 + w^2/4 - w/5): depends on w, so an error compounds."""
    return torch.sin(3 * w) + 0.5 * w - 0.2


@pytest.mark.parametrize("name, options", CORNERS, ids=IDS)
def test_adam_trajectory_matches_torch_for_60_steps(name, options):
    torch.manual_seed(0)
    model = dl.Sequential(dl.Linear(2, 6), dl.Tanh(), dl.Linear(6, 3)).double()
    twin = torch_twin.to_torch(model)
    x, labels = dl.disk_dataset(40, seed=0, dtype=torch.float64)
    optimizer, torch_optimizer = adam_pair(name, model.parameters(), twin.parameters(), 0.01,
                                           options)
    differences = torch_twin.train_side_by_side(model, optimizer, twin, torch_optimizer,
                                                dl.CrossEntropyLoss(), x, labels, steps=60)
    assert max(differences) <= TOLERANCE


@settings(max_examples=20, deadline=None)
@given(corner=st.sampled_from(CORNERS), shapes=st.lists(
    st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=3),
       lr=st.floats(1e-4, 0.5), seed=st.integers(0, 2**16))
def test_adam_matches_torch_on_random_shapes(corner, shapes, lr, seed, random_tensor):
    name, options = corner
    starts = [random_tensor(*shape, seed=seed + k) for k, shape in enumerate(shapes)]
    ours = [dl.Parameter(start.clone()) for start in starts]
    theirs = [start.clone().requires_grad_() for start in starts]
    optimizer, torch_optimizer = adam_pair(name, ours, theirs, lr, options)
    differences = torch_twin.step_side_by_side(optimizer, torch_optimizer, bumpy_gradient,
                                               steps=50)
    assert max(differences) <= TOLERANCE


def test_adam_first_step_moves_each_entry_by_about_lr():
    # m_hat = g and v_hat = g^2 after one step, so the step is lr * g / (|g| + eps)
    p = dl.Parameter(torch.zeros(3, dtype=torch.float64))
    p.grad.copy_(torch.tensor([1e-3, 2.0, -50.0]))
    dl.Adam([p], lr=0.1).step()
    torch.testing.assert_close(p.data, torch.tensor([-0.1, -0.1, 0.1], dtype=torch.float64),
                               rtol=1e-5, atol=0)


def test_adam_weight_decay_is_l2_and_adamw_decouples_it():
    grad = torch.tensor([0.5], dtype=torch.float64)
    runs = {}
    for name in ("Adam", "AdamW"):
        p = dl.Parameter(torch.tensor([2.0], dtype=torch.float64))
        p.grad.copy_(grad)
        getattr(dl, name)([p], lr=0.1, weight_decay=0.5).step()
        runs[name] = p.data.item()
    # Adam: g = 0.5 + 0.5 * 2 = 1.5 goes through the moments -> step ~ lr * sign(g) = 0.1
    assert runs["Adam"] == pytest.approx(2.0 - 0.1, rel=1e-7)
    # AdamW: p <- 2 * (1 - 0.1 * 0.5) = 1.9, then the Adam step on g = 0.5 -> 1.8
    assert runs["AdamW"] == pytest.approx(1.9 - 0.1, rel=1e-7)


def test_adamw_without_decay_is_adam_exactly(random_tensor):
    start = random_tensor(4, 3)
    params = [dl.Parameter(start.clone()), dl.Parameter(start.clone())]
    optimizers = [dl.Adam([params[0]], lr=0.05), dl.AdamW([params[1]], lr=0.05, weight_decay=0)]
    for _ in range(20):
        for p, optimizer in zip(params, optimizers):
            p.grad.copy_(bumpy_gradient(p.data))
            optimizer.step()
    assert torch.equal(params[0].data, params[1].data)


@pytest.mark.parametrize("name, options", CORNERS[::2], ids=IDS[::2])
def test_adam_state_matches_torch_state(name, options, random_tensor):
    start = random_tensor(3, 2)
    ours, theirs = dl.Parameter(start.clone()), start.clone().requires_grad_()
    optimizer, torch_optimizer = adam_pair(name, [ours], [theirs], 0.01, options)
    torch_twin.step_side_by_side(optimizer, torch_optimizer, bumpy_gradient, steps=7)
    state, torch_state = optimizer.state[0], torch_optimizer.state[theirs]
    assert state["step"] == torch_state["step"].item() == 7
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(state[key], torch_state[key], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name, options", CORNERS, ids=IDS)
def test_adam_state_dict_restores_a_fresh_optimizer_exactly(name, options, random_tensor):
    starts = [random_tensor(3, 4, seed=1), random_tensor(4, seed=2)]
    finals = []
    for interrupted in (False, True):
        ours = [dl.Parameter(start.clone()) for start in starts]
        theirs = [start.clone().requires_grad_() for start in starts]
        optimizer, torch_optimizer = adam_pair(name, ours, theirs, 0.05, options)
        first = torch_twin.step_side_by_side(optimizer, torch_optimizer, bumpy_gradient,
                                             steps=30)
        if interrupted:  # save, then continue with a new optimizer built with other settings
            saved = optimizer.state_dict()
            assert [s["step"] for s in saved["state"]] == [30, 30]
            optimizer = getattr(dl, name)(ours, lr=1.0, betas=(0.1, 0.2), eps=0.5)
            optimizer.load_state_dict(saved)
            assert optimizer.hyperparameters() == saved["hyperparameters"]
        second = torch_twin.step_side_by_side(optimizer, torch_optimizer, bumpy_gradient,
                                              steps=30)
        assert max(first + second) <= TOLERANCE  # against torch, never interrupted
        finals.append([p.data.clone() for p in ours])
    assert all(torch.equal(a, b) for a, b in zip(*finals))  # against our uninterrupted run


def test_adam_state_dict_is_a_copy_and_load_casts_to_the_parameters():
    p = dl.Parameter(torch.zeros(2))
    optimizer = dl.Adam([p], lr=0.1)
    p.grad.fill_(1.0)
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.step()
    assert saved["state"][0]["step"] == 1
    assert saved["state"][0]["exp_avg"].tolist() == pytest.approx([0.1, 0.1])
    q = dl.Parameter(torch.zeros(2, dtype=torch.float64))
    restored = dl.Adam([q])
    restored.load_state_dict(saved)
    assert restored.state[0]["exp_avg"].dtype == torch.float64 and restored.lr == 0.1


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("options, error, match", [
    ({"lr": -1e-3}, ValueError, "lr must be >= 0, got -0.001"),
    ({"eps": -1e-8}, ValueError, "eps must be >= 0"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay must be >= 0"),
    ({"betas": (1.0, 0.999)}, ValueError, r"betas\[0\] must be in \[0, 1\), got 1.0"),
    ({"betas": (0.9, 1.5)}, ValueError, r"betas\[1\] must be in \[0, 1\), got 1.5"),
    ({"betas": (-0.1, 0.999)}, ValueError, r"betas\[0\] must be >= 0, got -0.1"),
    ({"betas": (0.9,)}, TypeError, r"betas must be a pair \(beta1, beta2\)"),
    ({"betas": 0.9}, TypeError, r"betas must be a pair"),
    ({"betas": ("a", 0.9)}, TypeError, r"betas\[0\] must be a number"),
], ids=["negative-lr", "negative-eps", "negative-weight-decay", "beta1=1", "beta2>1",
        "negative-beta1", "one-beta", "scalar-betas", "string-beta"])
def test_adam_rejects_bad_hyperparameters(name, options, error, match):
    with pytest.raises(error, match=f"{name}: {match}"):
        getattr(dl, name)([dl.Parameter(torch.zeros(1))], **options)


def test_adam_defaults_and_repr_match_torch():
    p = dl.Parameter(torch.zeros(1))
    assert repr(dl.Adam([p])) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"
    assert dl.AdamW([p]).weight_decay == torch.optim.AdamW([torch.zeros(1)]).defaults[
        "weight_decay"] == 0.01


def test_loading_another_optimizers_state_is_an_error():
    p = dl.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: unknown hyperparameters "
                                         r"\['betas', 'eps'\]"):
        dl.SGD([p], lr=0.1).load_state_dict(dl.Adam([p]).state_dict())
