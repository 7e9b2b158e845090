"""SGD with momentum, dampening, Nesterov and weight decay against torch.optim.SGD, step for step.

Each test trains a small float64 network and its torch twin side by side and compares every
parameter after every step. Both sides run the same float64 operations in the same order, so the
trajectories agree to the last bits; 1e-10 leaves room for reductions summed in another order.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

TOLERANCE = 1e-10
CORNERS = [  # (momentum, dampening, weight_decay, nesterov)
    (0.0, 0.0, 0.0, False),
    (0.9, 0.0, 0.0, False),
    (0.9, 0.5, 0.0, False),
    (0.5, 1.0, 0.0, False),
    (0.9, 0.0, 0.0, True),
    (0.0, 0.0, 0.1, False),
    (0.9, 0.3, 0.01, False),
    (0.7, 0.0, 0.05, True),
]


def network(seed: int, hidden: int = 5, classes: int = 3):
    """A float64 classifier on the disk data, its torch twin and a batch of 32 points."""
    torch.manual_seed(seed)
    model = dl.Sequential(dl.Linear(2, hidden), dl.Tanh(), dl.Linear(hidden, classes)).double()
    x, labels = dl.disk_dataset(32, seed=seed, dtype=torch.float64)
    return model, torch_twin.to_torch(model), x, labels


def sgd_pair(model, twin, lr=0.1, **options):
    return (dl.SGD(model.parameters(), lr=lr, **options),
            torch.optim.SGD(twin.parameters(), lr=lr, **options))


@pytest.mark.parametrize("momentum, dampening, weight_decay, nesterov", CORNERS)
def test_sgd_trajectory_matches_torch_for_50_steps(momentum, dampening, weight_decay, nesterov):
    model, twin, x, labels = network(seed=0)
    optimizer, torch_optimizer = sgd_pair(model, twin, momentum=momentum, dampening=dampening,
                                          weight_decay=weight_decay, nesterov=nesterov)
    differences = torch_twin.train_side_by_side(model, optimizer, twin, torch_optimizer,
                                                dl.CrossEntropyLoss(), x, labels, steps=50)
    assert max(differences) <= TOLERANCE
    assert model[0].weight.data.sub(twin[0].weight.detach()).abs().max() <= TOLERANCE


def bumpy_gradient(w: torch.Tensor) -> torch.Tensor:
    """The gradient of sum(-cos(3w)/3 + w^2/4 - w/5): it depends on w, so a wrong update
    changes every later gradient too."""
    return torch.sin(3 * w) + 0.5 * w - 0.2


@settings(max_examples=20, deadline=None)
@given(corner=st.sampled_from(CORNERS), shapes=st.lists(
    st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=3),
       lr=st.floats(1e-3, 1.0), seed=st.integers(0, 2**16))
def test_sgd_matches_torch_on_random_shapes(corner, shapes, lr, seed, random_tensor):
    """Same gradients in, so only the update rule can differ (and does not, to the last bit)."""
    momentum, dampening, weight_decay, nesterov = corner
    starts = [random_tensor(*shape, seed=seed + k) for k, shape in enumerate(shapes)]
    ours = [dl.Parameter(start.clone()) for start in starts]
    theirs = [start.clone().requires_grad_() for start in starts]
    options = {"lr": lr, "momentum": momentum, "dampening": dampening,
               "weight_decay": weight_decay, "nesterov": nesterov}
    differences = torch_twin.step_side_by_side(dl.SGD(ours, **options),
                                               torch.optim.SGD(theirs, **options),
                                               bumpy_gradient, steps=50)
    assert max(differences) <= TOLERANCE


def test_momentum_buffer_starts_at_the_gradient_and_matches_torch():
    p = dl.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    optimizer = dl.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad.copy_(torch.tensor([1.0, -1.0]))
    optimizer.step()  # first step: buffer = g, no dampening applied
    assert optimizer.state[0]["momentum_buffer"].tolist() == [1.0, -1.0]
    optimizer.step()  # then: buffer = 0.9 * buffer + 0.5 * g
    assert optimizer.state[0]["momentum_buffer"].tolist() == [1.4, -1.4]

    model, twin, x, labels = network(seed=1)
    optimizer, torch_optimizer = sgd_pair(model, twin, momentum=0.9, dampening=0.2,
                                          weight_decay=0.01)
    torch_twin.train_side_by_side(model, optimizer, twin, torch_optimizer,
                                  dl.CrossEntropyLoss(), x, labels, steps=5)
    for state, p in zip(optimizer.state, twin.parameters()):
        torch.testing.assert_close(state["momentum_buffer"],
                                   torch_optimizer.state[p]["momentum_buffer"],
                                   rtol=0, atol=TOLERANCE)


def test_nesterov_step_is_gradient_plus_momentum_times_buffer():
    p = dl.Parameter(torch.tensor([0.0], dtype=torch.float64))
    optimizer = dl.SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    p.grad.fill_(2.0)
    optimizer.step()  # buffer = 2, step = g + 0.5 * buffer = 3
    assert p.data.item() == -3.0
    optimizer.step()  # buffer = 0.5 * 2 + 2 = 3, step = 2 + 1.5 = 3.5
    assert p.data.item() == -6.5


@pytest.mark.parametrize("corner", CORNERS[1:], ids=str)
def test_sgd_state_dict_restores_a_fresh_optimizer_exactly(corner):
    momentum, dampening, weight_decay, nesterov = corner
    options = {"momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
               "nesterov": nesterov}
    runs = []
    for interrupted in (False, True):
        model, twin, x, labels = network(seed=2)
        optimizer, torch_optimizer = sgd_pair(model, twin, **options)
        first = torch_twin.train_side_by_side(model, optimizer, twin, torch_optimizer,
                                              dl.CrossEntropyLoss(), x, labels, steps=25)
        if interrupted:  # a new optimizer with other hyperparameters, then the saved state
            saved = optimizer.state_dict()
            optimizer = dl.SGD(model.parameters(), lr=5.0)
            optimizer.load_state_dict(saved)
            assert optimizer.hyperparameters() == {"lr": 0.1, **options}
        second = torch_twin.train_side_by_side(model, optimizer, twin, torch_optimizer,
                                               dl.CrossEntropyLoss(), x, labels, steps=25)
        assert max(first + second) <= TOLERANCE  # against uninterrupted torch
        runs.append([p.data.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))  # against our uninterrupted run


def test_sgd_state_dict_is_a_copy():
    p = dl.Parameter(torch.zeros(2))
    optimizer = dl.SGD([p], lr=0.1, momentum=0.9)
    p.grad.fill_(1.0)
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.step()
    assert saved["state"][0]["momentum_buffer"].tolist() == [1.0, 1.0]
    assert saved["hyperparameters"]["momentum"] == 0.9


def test_lr_is_mutable_and_validated():
    optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1)
    optimizer.lr = 0.01
    assert optimizer.lr == 0.01 and "lr=0.01" in repr(optimizer)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -1"):
        optimizer.lr = -1


@pytest.mark.parametrize("options, error, match", [
    ({"lr": -0.1}, ValueError, "lr must be >= 0, got -0.1"),
    ({"lr": "0.1"}, TypeError, "lr must be a number"),
    ({"momentum": -0.5}, ValueError, "momentum must be >= 0, got -0.5"),
    ({"momentum": 0.9, "dampening": -0.1}, ValueError, "dampening must be >= 0"),
    ({"momentum": 0.9, "dampening": 1.5}, ValueError, r"dampening must be in \[0, 1\], got 1.5"),
    ({"weight_decay": -1e-4}, ValueError, "weight_decay must be >= 0"),
    ({"nesterov": True}, ValueError, "nesterov requires momentum > 0 and dampening = 0"),
    ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError,
     "nesterov requires.*dampening=0.1"),
    ({"nesterov": 1, "momentum": 0.9}, TypeError, "nesterov must be a bool"),
], ids=["negative-lr", "string-lr", "negative-momentum", "negative-dampening", "dampening>1",
        "negative-weight-decay", "nesterov-without-momentum", "nesterov-with-dampening",
        "nesterov-not-bool"])
def test_sgd_rejects_bad_hyperparameters(options, error, match):
    options = {"lr": 0.1, **options}
    with pytest.raises(error, match=f"SGD: {match}"):
        dl.SGD([dl.Parameter(torch.zeros(1))], **options)


def test_optimizer_rejects_bad_parameters_and_bad_state():
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        dl.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="SGD: parameter 0 must be a mini_dl Parameter, got Tensor"):
        dl.SGD([torch.zeros(1)], lr=0.1)
    optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="SGD.load_state_dict: expected state for 1 parameters, "
                                         "got 2 parameter states"):
        optimizer.load_state_dict({"state": [{}, {}]})
