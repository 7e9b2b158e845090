"""mini_dl.optim against torch.optim, step for step: SGD, Adam, AdamW, RMSprop and Adagrad with
every option, parameter groups, state_dict() both ways, and the errors.

Trajectories are compared after every one of >= 50 steps in float64. With the same gradients in
(``step_side_by_side``, ``step_both``) both sides run the same float64 operations in the same
order and agree to the last bit; on a network trained end to end (``train_side_by_side``) the two
sides' gradients may differ in the last bits (sums in another order), still far below the
asserted 1e-10.
"""
from __future__ import annotations

import inspect
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

CONFIGS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "dampening": {"momentum": 0.9, "dampening": 0.3},
    "weight-decay": {"weight_decay": 0.01},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "momentum-dampening-decay": {"momentum": 0.7, "dampening": 0.1, "weight_decay": 1e-3},
    "nesterov-decay": {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
}
SHAPES = [(3, 4), (4,), (2, 2, 3)]
# Identical float64 update formulas: the only freedom is the order of a few element-wise
# operations, worth an ulp or two per step; 1e-12 after 50 steps still catches any rule error.
STEP_TOLERANCE = 1e-12


def twin_parameters(random_tensor, seed=0):
    ours = [dl.Parameter(random_tensor(*shape, seed=seed + i)) for i, shape in enumerate(SHAPES)]
    theirs = [torch.nn.Parameter(p.data.clone()) for p in ours]
    return ours, theirs


def set_gradients(parameters, random_tensor, seed):
    """Seeded random gradients (a different draw for every ``seed``), also returned."""
    gradients = [random_tensor(*p.shape, seed=1000 * seed + i) for i, p in enumerate(parameters)]
    for p, gradient in zip(parameters, gradients):
        p.grad.copy_(gradient)
    return gradients


def step_both(optimizer, reference, ours, theirs, random_tensor, seed):
    """Give both sides the same random gradients, then step both."""
    for q, gradient in zip(theirs, set_gradients(ours, random_tensor, seed)):
        q.grad = gradient.clone()
    optimizer.step()
    reference.step()


def max_difference(ours, theirs):
    return max((p.data - q.detach()).abs().max().item() for p, q in zip(ours, theirs))


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_sgd_equals_torch_sgd_over_many_steps_in_float64(config, random_tensor):
    ours, theirs = twin_parameters(random_tensor)
    optimizer = dl.SGD(ours, lr=0.05, **config)
    reference = torch.optim.SGD(theirs, lr=0.05, **config)
    for step in range(50):
        step_both(optimizer, reference, ours, theirs, random_tensor, step)
        assert max_difference(ours, theirs) <= STEP_TOLERANCE, f"step {step}"
    # The steps really moved the parameters (the comparison is not between two frozen copies).
    assert max((p.data - random_tensor(*p.shape, seed=i)).abs().max()
               for i, p in enumerate(ours)) > 0.1


def test_plain_sgd_in_one_call_equals_the_per_parameter_rule_bit_for_bit(random_tensor):
    # without momentum and weight decay, SGD.step updates every parameter in one foreach call:
    # the same p - lr * g as p.data.add_(g, alpha=-lr), parameter by parameter, to the last bit
    ours = [dl.Parameter(random_tensor(*shape, seed=i).float()) for i, shape in enumerate(SHAPES)]
    optimizer = dl.SGD(ours, lr=0.3)
    for step in range(3):
        set_gradients(ours, random_tensor, step)
        expected = [p.data.clone().add_(p.grad, alpha=-0.3) for p in ours]
        optimizer.step()
        assert all(torch.equal(p.data, e) for p, e in zip(ours, expected)), f"step {step}"


@pytest.mark.parametrize("make", [
    lambda params: (dl.SGD(params, lr=0.1), torch.optim.SGD),
    lambda params: (dl.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1), torch.optim.SGD),
    lambda params: (dl.Adam(params, lr=0.1, weight_decay=0.1), torch.optim.Adam),
    lambda params: (dl.AdamW(params, lr=0.1), torch.optim.AdamW),
    lambda params: (dl.RMSprop(params, momentum=0.5, centered=True), torch.optim.RMSprop),
    lambda params: (dl.Adagrad(params, lr_decay=0.1), torch.optim.Adagrad),
], ids=["sgd", "sgd-momentum-decay", "adam", "adamw", "rmsprop", "adagrad"])
def test_a_parameter_without_gradient_is_left_alone_as_in_torch(make, random_tensor):
    ours, theirs = twin_parameters(random_tensor)
    optimizer, torch_class = make(ours)
    reference = torch_class(theirs, **optimizer.hyperparameters())
    for step in range(4):
        optimizer.zero_grad(set_to_none=True)
        reference.zero_grad(set_to_none=True)
        present = [i for i in range(len(ours)) if (i + step) % 2 == 0]  # every other one
        for i in present:
            ours[i].grad = random_tensor(*ours[i].shape, seed=10 * step + i)
            theirs[i].grad = ours[i].grad.clone()
        optimizer.step()
        reference.step()
        assert max_difference(ours, theirs) <= STEP_TOLERANCE, f"step {step}"
    assert all(p.grad is None or i in present for i, p in enumerate(ours))


def test_optimizer_zero_grad_set_to_none_drops_every_gradient(random_tensor):
    ours, _ = twin_parameters(random_tensor)
    optimizer = dl.SGD(ours, lr=0.1)
    optimizer.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in ours)
    optimizer.zero_grad()  # nothing to zero: stays None
    assert all(p.grad is None for p in ours)
    before = [p.data.clone() for p in ours]
    optimizer.step()  # no gradient at all: nothing moves
    assert all(torch.equal(p.data, b) for p, b in zip(ours, before))


def test_sgd_follows_a_learning_rate_changed_between_steps_as_torch(random_tensor):
    ours, theirs = twin_parameters(random_tensor)
    optimizer = dl.SGD(ours, lr=0.1, momentum=0.9)
    reference = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    for step in range(20):
        if step == 10:
            optimizer.lr = 0.01
            reference.param_groups[0]["lr"] = 0.01
        step_both(optimizer, reference, ours, theirs, random_tensor, step)
    assert max_difference(ours, theirs) <= STEP_TOLERANCE


@pytest.mark.parametrize("config", [CONFIGS["momentum-dampening-decay"], CONFIGS["nesterov"]],
                         ids=["momentum-dampening-decay", "nesterov"])
def test_sgd_state_dict_round_trip_continues_identically(config, random_tensor):
    ours, _ = twin_parameters(random_tensor)
    optimizer = dl.SGD(ours, lr=0.05, **config)
    for step in range(5):
        set_gradients(ours, random_tensor, step)
        optimizer.step()
    saved_state = optimizer.state_dict()
    saved_parameters = [p.data.clone() for p in ours]

    def continue_with(opt):
        for step in range(5, 10):
            set_gradients(ours, random_tensor, step)
            opt.step()
        return [p.data.clone() for p in ours]

    uninterrupted = continue_with(optimizer)  # also mutates its buffers: saved_state must not move
    for p, data in zip(ours, saved_parameters):
        p.data.copy_(data)
    restored = dl.SGD(ours, lr=123.0)  # every hyperparameter comes from the state_dict
    restored.load_state_dict(saved_state)
    assert restored.hyperparameters() == optimizer.hyperparameters()
    resumed = continue_with(restored)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted, resumed))


def test_sgd_state_dict_holds_torch_named_momentum_buffers(random_tensor):
    ours, theirs = twin_parameters(random_tensor)
    optimizer = dl.SGD(ours, lr=0.1, momentum=0.9)
    reference = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    for step in range(3):
        step_both(optimizer, reference, ours, theirs, random_tensor, step)
    state = optimizer.state_dict()
    assert state["param_groups"][0]["momentum"] == 0.9 and list(state["state"]) == [0, 1, 2]
    for index, q in enumerate(theirs):
        expected = reference.state[q]["momentum_buffer"]
        mine = state["state"][index]["momentum_buffer"]
        assert (mine - expected).abs().max() <= STEP_TOLERANCE, index


def test_optimizer_load_state_dict_rejects_a_state_for_other_parameters(random_tensor):
    ours, _ = twin_parameters(random_tensor)
    state = dl.SGD(ours[:2], lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: parameter group 0 has 2 "
                                         r"parameters in the state, 3 here"):
        dl.SGD(ours, lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: expected torch.optim's layout "
                                         r".* got list"):
        dl.SGD(ours, lr=0.1).load_state_dict([])


# -- API ----------------------------------------------------------------------------------------

def test_sgd_updates_the_model_parameters_it_was_given():
    model = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 1))
    optimizer = dl.SGD(model.parameters(), lr=0.1)  # a generator, as in torch
    assert [id(p) for p in optimizer.params] == [id(p) for p in model.parameters()]
    before = [p.data.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad.fill_(1.0)
    optimizer.step()
    for p, old in zip(model.parameters(), before):
        torch.testing.assert_close(p.data, old - 0.1)  # float32: one rounding per entry
        assert not p.data.requires_grad and not p.grad.requires_grad


def test_optimizer_zero_grad_resets_every_gradient(random_tensor):
    ours, _ = twin_parameters(random_tensor)
    for p in ours:
        p.grad.fill_(3.0)
    dl.SGD(ours, lr=0.1).zero_grad()
    assert all(torch.equal(p.grad, torch.zeros_like(p.data)) for p in ours)


def test_sgd_repr_lists_its_hyperparameters():
    optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    assert repr(optimizer) == ("SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, "
                               "nesterov=False)")


def test_base_optimizer_step_is_not_implemented():
    with pytest.raises(NotImplementedError):
        dl.Optimizer([dl.Parameter(torch.zeros(1))], {"lr": 0.1}).step()


# -- errors -------------------------------------------------------------------------------------

def one_parameter():
    return [dl.Parameter(torch.zeros(2))]


def test_sgd_rejects_a_negative_learning_rate_in_the_constructor():
    with pytest.raises(ValueError, match=r"SGD: lr must be >= 0, got -1"):
        dl.SGD(one_parameter(), lr=-1)


def test_sgd_rejects_a_negative_learning_rate_assigned_later():
    optimizer = dl.SGD(one_parameter(), lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: lr must be >= 0, got -1"):
        optimizer.lr = -1
    assert optimizer.lr == 0.1


@pytest.mark.parametrize("lr, error, match", [
    (float("nan"), ValueError, r"SGD: lr must be >= 0, got nan"),
    ("0.1", TypeError, r"SGD: lr must be a number, got '0.1'"),
    (True, TypeError, r"SGD: lr must be a number, got True"),
    (None, TypeError, r"SGD: lr must be a number, got None"),
])
def test_sgd_rejects_a_learning_rate_that_is_not_a_non_negative_number(lr, error, match):
    with pytest.raises(error, match=match):
        dl.SGD(one_parameter(), lr=lr)


@pytest.mark.parametrize("params", [[], iter([]), dl.ReLU().parameters()],
                         ids=["list", "iterator", "module-without-parameters"])
def test_sgd_rejects_an_empty_parameter_list(params):
    with pytest.raises(ValueError, match=r"SGD: got an empty parameter list"):
        dl.SGD(params, lr=0.1)


def test_sgd_rejects_tensors_that_are_not_parameters():
    message = r"SGD: parameter 1 must be a mini_dl Parameter, got Tensor"
    with pytest.raises(TypeError, match=message):
        dl.SGD([dl.Parameter(torch.zeros(1)), torch.zeros(1)], lr=0.1)


@pytest.mark.parametrize("config", [{"nesterov": True}, {"momentum": 0.0, "nesterov": True},
                                    {"momentum": 0.9, "dampening": 0.1, "nesterov": True}],
                         ids=["no-momentum", "zero-momentum", "dampening"])
def test_sgd_rejects_nesterov_without_momentum_or_with_dampening(config):
    with pytest.raises(ValueError, match=r"SGD: nesterov requires momentum > 0 and dampening = 0"):
        dl.SGD(one_parameter(), lr=0.1, **config)


@pytest.mark.parametrize("config, error, match", [
    ({"momentum": -0.1}, ValueError, r"SGD: momentum must be >= 0, got -0.1"),
    ({"weight_decay": -1.0}, ValueError, r"SGD: weight_decay must be >= 0, got -1.0"),
    ({"dampening": 1.5}, ValueError, r"SGD: dampening must be in \[0, 1\], got 1.5"),
    ({"nesterov": "yes"}, TypeError, r"SGD: nesterov must be a bool, got 'yes'"),
])
def test_sgd_rejects_invalid_hyperparameters(config, error, match):
    with pytest.raises(error, match=match):
        dl.SGD(one_parameter(), lr=0.1, **config)


# -- SGD with momentum, dampening, Nesterov and weight decay on a network ---------------------

TOLERANCE = 1e-10
SGD_CORNERS = [  # (momentum, dampening, weight_decay, nesterov)
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


@pytest.mark.parametrize("momentum, dampening, weight_decay, nesterov", SGD_CORNERS)
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
@given(corner=st.sampled_from(SGD_CORNERS), shapes=st.lists(
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


@pytest.mark.parametrize("corner", SGD_CORNERS[1:], ids=str)
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
            assert optimizer.hyperparameters() == {"lr": 0.1, **options, "maximize": False}
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
    assert saved["param_groups"][0]["momentum"] == 0.9


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
    with pytest.raises(ValueError, match="SGD.load_state_dict: expected torch.optim's layout "
                                         r"\{'state': ..., 'param_groups': \[...\]\}, got \['state'\]"):
        optimizer.load_state_dict({"state": [{}, {}]})


# -- Adam and AdamW ---------------------------------------------------------------------------

ADAM_CORNERS = [  # (class name, options)
    ("Adam", {}),
    ("Adam", {"betas": (0.5, 0.9)}),
    ("Adam", {"betas": (0.0, 0.0), "eps": 1e-3}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.0}),
    ("AdamW", {"betas": (0.7, 0.95), "weight_decay": 0.3}),
]
ADAM_IDS = [f"{name}-{options}" for name, options in ADAM_CORNERS]


def adam_pair(name: str, ours: list, theirs: list, lr: float, options: dict):
    return (getattr(dl, name)(ours, lr=lr, **options),
            getattr(torch.optim, name)(theirs, lr=lr, **options))


@pytest.mark.parametrize("name, options", ADAM_CORNERS, ids=ADAM_IDS)
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
@given(corner=st.sampled_from(ADAM_CORNERS), shapes=st.lists(
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


@pytest.mark.parametrize("name, options", ADAM_CORNERS[::2], ids=ADAM_IDS[::2])
def test_adam_state_matches_torch_state(name, options, random_tensor):
    start = random_tensor(3, 2)
    ours, theirs = dl.Parameter(start.clone()), start.clone().requires_grad_()
    optimizer, torch_optimizer = adam_pair(name, [ours], [theirs], 0.01, options)
    torch_twin.step_side_by_side(optimizer, torch_optimizer, bumpy_gradient, steps=7)
    state, torch_state = optimizer.state[0], torch_optimizer.state[theirs]
    assert state["step"] == torch_state["step"].item() == 7
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(state[key], torch_state[key], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name, options", ADAM_CORNERS, ids=ADAM_IDS)
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
            assert [s["step"].item() for s in saved["state"].values()] == [30, 30]
            optimizer = getattr(dl, name)(ours, lr=1.0, betas=(0.1, 0.2), eps=0.5)
            optimizer.load_state_dict(saved)
            assert optimizer.hyperparameters() == {
                key: value for key, value in saved["param_groups"][0].items() if key != "params"}
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
    assert saved["state"][0]["step"].item() == 1
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
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: parameter group 0 of the state "
                                         r"has no \['momentum', 'dampening', 'nesterov'\]"):
        dl.SGD([p], lr=0.1).load_state_dict(dl.Adam([p]).state_dict())


# -- every optimizer and option combination against torch.optim, with parameter groups ----------

def every_combination(*axes: list[dict]) -> list[dict]:
    """One choice from each axis (a list of option dicts), merged: the full grid of options."""
    return [{k: v for choice in choices for k, v in choice.items()}
            for choices in itertools.product(*axes)]


def off_or(**options) -> list[dict]:
    """An axis of the grid: the defaults, or these options."""
    return [{}, options]


GRID = {  # every option of each optimizer, on and off, in every combination
    "SGD": every_combination(
        [{"lr": 0.05}], [{}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3},
                         {"momentum": 0.8, "nesterov": True}],
        off_or(weight_decay=0.05), off_or(maximize=True)),
    "Adam": every_combination([{"lr": 0.01}], off_or(amsgrad=True), off_or(weight_decay=0.1),
                              off_or(maximize=True), off_or(betas=(0.8, 0.99), eps=1e-6)),
    "AdamW": every_combination([{"lr": 0.01}], off_or(amsgrad=True), off_or(weight_decay=0.3),
                               off_or(maximize=True), off_or(betas=(0.8, 0.99), eps=1e-6)),
    "RMSprop": every_combination(off_or(centered=True), off_or(momentum=0.9),
                                 off_or(weight_decay=0.1), off_or(maximize=True)),
    "Adagrad": every_combination([{"lr": 0.1}], off_or(lr_decay=0.05),
                                 off_or(initial_accumulator_value=0.3), off_or(weight_decay=0.1),
                                 off_or(maximize=True)),
}
CASES = [(name, options) for name, grid in GRID.items() for options in grid]
CASE_IDS = [f"{name}-{options}" for name, options in CASES]
GROUP_OVERRIDES = {  # the first group's own options (the numbers the grid leaves at default)
    "SGD": {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.01},
    "Adam": {"lr": 0.03, "betas": (0.5, 0.9), "weight_decay": 0.02},
    "AdamW": {"lr": 0.03, "betas": (0.5, 0.9), "weight_decay": 0.02},
    "RMSprop": {"lr": 0.003, "alpha": 0.8, "eps": 1e-4, "weight_decay": 0.02},
    "Adagrad": {"lr": 0.03, "lr_decay": 0.1, "eps": 1e-3, "weight_decay": 0.02},
}


def wavy_gradient(w: torch.Tensor) -> torch.Tensor:
    """A gradient that depends on w and stays bounded, so that maximize does not diverge."""
    return torch.sin(3 * w) + 0.3 * torch.cos(w) - 0.2


def grouped(params: list, overrides: dict | None) -> list:
    """The parameters as one group (``overrides`` None), or as two: the first parameter with
    ``overrides``, the others with the optimizer's defaults."""
    if overrides is None:
        return list(params)
    return [{"params": params[:1], **overrides}, {"params": params[1:]}]


def optimizer_pair(name: str, options: dict, overrides: dict | None = None,
                   tensor_lr: bool = False, seed: int = 0):
    """A mini_dl optimizer and the torch.optim one of the same name, each over its own copy of
    three seeded float64 tensors."""
    generator = torch.Generator().manual_seed(seed)
    starts = [torch.randn(shape, generator=generator, dtype=torch.float64)
              for shape in [(3, 4), (4,), (2, 3)]]
    ours = [dl.Parameter(start.clone()) for start in starts]
    theirs = [start.clone().requires_grad_() for start in starts]
    pair = []
    for module, params in ((dl, ours), (torch.optim, theirs)):
        kwargs = dict(options)
        if tensor_lr:  # a float32 0-dim tensor, as torch.tensor(0.01) gives
            kwargs["lr"] = torch.tensor(kwargs.get("lr", 0.01))
        pair.append(getattr(module, name)(grouped(params, overrides), **kwargs))
    return pair


SETUPS = [(name, options, setup) for index, (name, options) in enumerate(CASES)
          for setup in ["one-group", "two-groups", "tensor-lr"][:3 if index % 4 == 0 else 2]]


@pytest.mark.parametrize("name, options, setup", SETUPS,  # a tensor lr: every 4th combination
                         ids=[f"{name}-{options}-{setup}" for name, options, setup in SETUPS])
def test_every_optimizer_and_option_follows_torch_for_50_steps(name, options, setup):
    ours, theirs = optimizer_pair(name, options, GROUP_OVERRIDES[name] if setup == "two-groups"
                                  else None, tensor_lr=setup == "tensor-lr")
    starts = [p.data.clone() for p in ours.params]
    differences = torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=50)
    # the same float64 operations in the same order: equal to the last bit in practice; the
    # tolerance only allows for another rounding order in a future torch
    assert max(differences) <= STEP_TOLERANCE
    assert max((p.data - start).abs().max() for p, start in zip(ours.params, starts)) > 0.01


def test_a_one_element_lr_tensor_of_any_shape_follows_torch():
    for name, lr in [("SGD", [0.05]), ("Adam", [[0.01]]), ("RMSprop", [0.01]), ("Adagrad", [0.1])]:
        ours, theirs = optimizer_pair(name, {"lr": torch.tensor(lr, dtype=torch.float64)})
        assert max(torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=50)) == 0.0
        assert ours.lr.shape == torch.tensor(lr).shape  # kept as given, as torch keeps it


def test_rmsprop_and_adagrad_first_steps_by_hand():
    p = dl.Parameter(torch.tensor([2.0], dtype=torch.float64))
    optimizer = dl.RMSprop([p], lr=0.01, alpha=0.5, momentum=0.5)
    for _ in range(2):
        p.grad.fill_(1.0)
        optimizer.step()
    # v = 0.5, then 0.75; b = 1/sqrt(0.5), then 0.5 b + 1/sqrt(0.75) (eps 1e-8 is negligible)
    b1 = 1 / 0.5 ** 0.5
    assert p.data.item() == pytest.approx(2.0 - 0.01 * (b1 + 0.5 * b1 + 1 / 0.75 ** 0.5), rel=1e-9)
    assert optimizer.state[0]["square_avg"].item() == 0.75 and optimizer.state[0]["step"] == 2
    q = dl.Parameter(torch.tensor([1.0], dtype=torch.float64))
    optimizer = dl.Adagrad([q], lr=0.1, lr_decay=1.0, initial_accumulator_value=3.0)
    for _ in range(2):
        q.grad.fill_(1.0)
        optimizer.step()
    # s = 4, then 5; lr_t = 0.1, then 0.1 / 2
    assert q.data.item() == pytest.approx(1.0 - 0.1 / 2 - 0.05 / 5 ** 0.5, rel=1e-9)


# -- param_groups: editing, add_param_group ----------------------------------------------------

EDITS = {  # (name, options, [edits before each of three runs]: (group, option, value))
    "SGD": ({"lr": 0.05, "momentum": 0.9}, [(0, "lr", 0.2), (1, "momentum", 0.5),
                                            (1, "weight_decay", 0.1), (0, "maximize", True)]),
    "Adam": ({"lr": 0.01}, [(0, "lr", 0.05), (1, "betas", (0.5, 0.9)), (1, "eps", 1e-3),
                            (0, "weight_decay", 0.1)]),
    "RMSprop": ({"momentum": 0.5}, [(0, "alpha", 0.5), (1, "lr", 0.05), (1, "momentum", 0.9),
                                    (0, "eps", 1e-3)]),
    "Adagrad": ({}, [(0, "lr_decay", 0.5), (1, "lr", 0.3), (0, "weight_decay", 0.1),
                     (1, "maximize", True)]),
}


@pytest.mark.parametrize("name", EDITS)
def test_editing_param_groups_between_steps_acts_as_in_torch(name):
    options, edits = EDITS[name]
    ours, theirs = optimizer_pair(name, options, overrides={"lr": 0.02})
    differences = torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=10)
    for group, option, value in edits:
        ours.param_groups[group][option] = theirs.param_groups[group][option] = value
        differences += torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=10)
    assert max(differences) <= STEP_TOLERANCE


@pytest.mark.parametrize("name, options", [("SGD", {"lr": 0.05, "momentum": 0.9}),
                                           ("Adam", {"amsgrad": True}), ("RMSprop", {}),
                                           ("Adagrad", {"initial_accumulator_value": 0.1})])
def test_add_param_group_follows_torch(name, options):
    ours, theirs = optimizer_pair(name, options)
    for optimizer in (ours, theirs):  # start with the first parameter only, add the others later
        params = optimizer.param_groups[0]["params"]
        optimizer.param_groups[0]["params"], later = params[:1], params[1:]
        optimizer.later = later
    first = torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=10)
    for optimizer in (ours, theirs):
        optimizer.add_param_group({"params": optimizer.later, "lr": 0.02})
    assert ours.param_groups[1] == {**ours.defaults, "lr": 0.02, "params": ours.later}
    second = torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=40)
    assert max(first + second) <= STEP_TOLERANCE


def test_one_group_options_read_and_set_as_attributes():
    optimizer = dl.SGD([dl.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    optimizer.momentum = 0.5
    assert optimizer.param_groups[0]["momentum"] == optimizer.momentum == 0.5
    with pytest.raises(ValueError, match=r"SGD: momentum must be >= 0, got -1.0"):
        optimizer.momentum = -1
    with pytest.raises(AttributeError, match=r"'SGD' object has no attribute 'betas'"):
        optimizer.betas  # noqa: B018
    assert optimizer.hyperparameters() == {"lr": 0.1, "momentum": 0.5, "dampening": 0.0,
                                           "weight_decay": 0.0, "nesterov": False,
                                           "maximize": False}


def test_lr_and_hyperparameters_with_several_groups_are_an_error_that_says_what_to_use():
    p, q = dl.Parameter(torch.zeros(1)), dl.Parameter(torch.zeros(1))
    optimizer = dl.SGD([{"params": [p]}, {"params": [q], "lr": 0.01}], lr=0.1)
    message = r"SGD.lr: the optimizer has 2 parameter groups; use param_groups\[i\]\['lr'\]"
    with pytest.raises(ValueError, match=message):
        optimizer.lr  # noqa: B018
    with pytest.raises(ValueError, match=message):
        optimizer.lr = 0.5
    with pytest.raises(ValueError, match=r"SGD.hyperparameters: the optimizer has 2 parameter"):
        optimizer.hyperparameters()
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.01]
    assert repr(optimizer) == (
        "SGD(\n  param group 0 (1 parameters): lr=0.1, momentum=0.0, dampening=0.0, "
        "weight_decay=0.0, nesterov=False\n  param group 1 (1 parameters): lr=0.01, "
        "momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False\n)")


def test_defaults_and_signatures_are_torchs():
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        ours, theirs = getattr(dl, name), getattr(torch.optim, name)
        torch_parameters = inspect.signature(theirs).parameters
        for parameter in inspect.signature(ours).parameters.values():
            assert parameter.default == torch_parameters[parameter.name].default, parameter
        defaults = ours([dl.Parameter(torch.zeros(1))]).defaults
        torch_defaults = theirs([torch.zeros(1, requires_grad=True)]).defaults
        assert defaults == {key: torch_defaults[key] for key in defaults}, name
    # a repr leaves out the switches that are off and shows them when on
    p = dl.Parameter(torch.zeros(1))
    assert repr(dl.RMSprop([p])) == ("RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, "
                                     "momentum=0.0)")
    assert repr(dl.Adam([p], amsgrad=True, maximize=True)) == (
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=True, "
        "maximize=True)")


# -- state_dict in torch.optim's layout, both ways ---------------------------------------------

STATEFUL = [("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
            ("Adam", {"amsgrad": True, "weight_decay": 0.1}), ("AdamW", {"amsgrad": True}),
            ("RMSprop", {"centered": True, "momentum": 0.5}),
            ("Adagrad", {"lr_decay": 0.01, "initial_accumulator_value": 0.1})]


def fresh_pair_like(name: str, options: dict, ours, theirs):
    """New optimizers of the same kind and groups over copies of the current parameters, built
    with other options on purpose: load_state_dict must bring them all back."""
    other = {**options, "lr": 123.0}
    our_params = [dl.Parameter(p.data.clone()) for p in ours.params]
    their_params = [p.detach().clone().requires_grad_() for g in theirs.param_groups
                    for p in g["params"]]
    return (getattr(dl, name)(grouped(our_params, {"lr": 7.0}), **other),
            getattr(torch.optim, name)(grouped(their_params, {"lr": 7.0}), **other))


@pytest.mark.parametrize("name, options", STATEFUL, ids=[name for name, _ in STATEFUL])
def test_state_dict_moves_both_ways_and_each_side_continues_torchs_trajectory(name, options):
    ours, theirs = optimizer_pair(name, options, GROUP_OVERRIDES[name])
    torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=20)
    mine, torchs = ours.state_dict(), theirs.state_dict()
    # the same layout, names and types as torch's: indices, state names, a float 0-dim step
    assert mine["state"].keys() == torchs["state"].keys() == {0, 1, 2}
    for index, state in mine["state"].items():
        assert state.keys() == torchs["state"][index].keys()
        for key, value in state.items():
            expected = torchs["state"][index][key]
            assert value.dtype == expected.dtype and value.shape == expected.shape, key
            torch.testing.assert_close(value, expected, rtol=0, atol=STEP_TOLERANCE)
    for group, torch_group in zip(mine["param_groups"], torchs["param_groups"]):
        assert group == {key: torch_group[key] for key in group}
    # mini_dl -> torch and torch -> mini_dl, into fresh optimizers built with other options
    ours_from_torch, torch_from_ours = fresh_pair_like(name, options, ours, theirs)
    ours_from_torch.load_state_dict(torchs)
    torch_from_ours.load_state_dict(mine)
    uninterrupted = torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=30)
    crossed = torch_twin.step_side_by_side(ours_from_torch, torch_from_ours, wavy_gradient,
                                           steps=30)
    assert max(uninterrupted + crossed) <= STEP_TOLERANCE
    assert all(torch.equal(a.data, b.data) for a, b in zip(ours_from_torch.params, ours.params))


def test_a_state_dict_saved_and_loaded_with_torch_save_resumes(tmp_path):
    ours, theirs = optimizer_pair("Adam", {"amsgrad": True})
    torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=5)
    torch.save(ours.state_dict(), tmp_path / "adam.pt")
    restored = dl.Adam(ours.params)
    restored.load_state_dict(torch.load(tmp_path / "adam.pt"))
    assert restored.state[0]["step"] == 5 and restored.param_groups[0]["amsgrad"] is True
    assert max(torch_twin.step_side_by_side(restored, theirs, wavy_gradient, steps=5)) == 0.0


def test_an_adamw_state_does_not_load_into_adam_nor_a_bad_state_change_anything():
    ours, theirs = optimizer_pair("Adam", {}, GROUP_OVERRIDES["Adam"])
    torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=3)
    groups, exp_avg = [dict(g) for g in ours.param_groups], ours.state[0]["exp_avg"].clone()
    adamw = torch.optim.AdamW(grouped([p.detach() for p in theirs.param_groups[0]["params"]
                                       + theirs.param_groups[1]["params"]], {"lr": 0.1}))
    saved = ours.state_dict()
    bad = [
        (adamw.state_dict(), r"the state has decoupled_weight_decay=True, the optimizer False"),
        ({**saved, "param_groups": saved["param_groups"][:1]},
         r"the state has 1 parameter groups, the optimizer 2"),
        ({**saved, "state": {**saved["state"], 7: {}}},
         r"the state has an entry for parameter 7, which no parameter group lists"),
        ({**saved, "state": {**saved["state"], 1: {**saved["state"][1],
                                                   "exp_avg": torch.zeros(5)}}},
         r"exp_avg of parameter 1 has shape \(5,\), the parameter \(4,\)"),
        ({"param_groups": saved["param_groups"]}, r"expected torch.optim's layout"),
    ]
    for state_dict, message in bad:
        with pytest.raises(ValueError, match=f"Adam.load_state_dict: {message}"):
            ours.load_state_dict(state_dict)
        assert ours.param_groups == groups and torch.equal(ours.state[0]["exp_avg"], exp_avg)


# -- errors of the groups and of the new options -----------------------------------------------

def test_a_parameter_in_two_groups_or_twice_in_one_is_refused():
    p, q = dl.Parameter(torch.zeros(1)), dl.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=r"SGD: parameter 1 \(Parameter\(shape=\(1,\), "
                                         r"dtype=torch.float32\)\) is already in group 0; a "
                                         r"parameter may be in one parameter group only"):
        dl.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: parameter 2 .* is already in this group"):
        dl.Adam([q, p, q])
    optimizer = dl.RMSprop([p])
    with pytest.raises(ValueError, match=r"RMSprop: parameter 2 .* is already in group 0"):
        optimizer.add_param_group({"params": [q, p]})
    assert len(optimizer.param_groups) == 1  # nothing was added


@pytest.mark.parametrize("params, error, match", [
    (dl.Parameter(torch.zeros(1)), TypeError,
     r"SGD: params must be an iterable of Parameters or of dicts, got one Parameter"),
    ({"params": []}, TypeError, r"SGD: params must be an iterable .* got one dict"),
    ([{"params": {dl.Parameter(torch.zeros(1))}}], TypeError,
     r"SGD: the parameters of a group must be ordered \(a list\), not a set"),
    ([{"lr": 0.1}], TypeError, r"SGD.add_param_group: expected a dict with 'params'"),
    ([{"params": [dl.Parameter(torch.zeros(1))], "lr": -1}], ValueError,
     r"SGD param group 0: lr must be >= 0, got -1.0"),
    ([{"params": [dl.Parameter(torch.zeros(1))]},
      {"params": [dl.Parameter(torch.zeros(1))], "nesterov": True}], ValueError,
     r"SGD param group 1: nesterov requires momentum > 0 and dampening = 0"),
], ids=["one-parameter", "one-dict", "set", "no-params", "group-lr", "group-nesterov"])
def test_bad_params_and_groups_are_refused_with_the_optimizers_name(params, error, match):
    with pytest.raises(error, match=match):
        dl.SGD(params, lr=0.1)


@pytest.mark.parametrize("name, options, error, match", [
    ("SGD", {"lr": torch.tensor([0.1, 0.2])}, ValueError,
     r"a tensor lr must have one floating-point element, got shape \(2,\)"),
    ("SGD", {"lr": torch.tensor(-0.1)}, ValueError, r"lr must be >= 0, got -0.1"),
    ("SGD", {"maximize": 1}, TypeError, r"maximize must be a bool, got 1"),
    ("Adam", {"amsgrad": "yes"}, TypeError, r"amsgrad must be a bool, got 'yes'"),
    ("AdamW", {"maximize": None}, TypeError, r"maximize must be a bool, got None"),
    ("RMSprop", {"lr": -0.01}, ValueError, r"lr must be >= 0, got -0.01"),
    ("RMSprop", {"alpha": -0.5}, ValueError, r"alpha must be >= 0, got -0.5"),
    ("RMSprop", {"eps": -1e-8}, ValueError, r"eps must be >= 0"),
    ("RMSprop", {"momentum": -0.9}, ValueError, r"momentum must be >= 0, got -0.9"),
    ("RMSprop", {"weight_decay": -0.1}, ValueError, r"weight_decay must be >= 0"),
    ("RMSprop", {"centered": 1}, TypeError, r"centered must be a bool, got 1"),
    ("Adagrad", {"lr": -0.01}, ValueError, r"lr must be >= 0, got -0.01"),
    ("Adagrad", {"lr_decay": -0.1}, ValueError, r"lr_decay must be >= 0, got -0.1"),
    ("Adagrad", {"weight_decay": -0.1}, ValueError, r"weight_decay must be >= 0"),
    ("Adagrad", {"initial_accumulator_value": -1}, ValueError,
     r"initial_accumulator_value must be >= 0, got -1.0"),
    ("Adagrad", {"eps": -1e-10}, ValueError, r"eps must be >= 0"),
    ("Adagrad", {"maximize": "no"}, TypeError, r"maximize must be a bool"),
], ids=lambda value: str(value) if isinstance(value, str) else None)
def test_new_options_are_validated_as_torch_with_the_optimizers_name(name, options, error,
                                                                      match):
    with pytest.raises(error, match=f"{name}: {match}"):
        getattr(dl, name)([dl.Parameter(torch.zeros(1))], **options)


def test_adagrad_starts_every_group_at_the_constructors_accumulator_as_torch_does():
    ours, theirs = optimizer_pair("Adagrad", {"initial_accumulator_value": 0.5},
                                  overrides={"initial_accumulator_value": 2.0})
    assert ours.param_groups[0]["initial_accumulator_value"] == 2.0  # kept, but not used:
    assert [s["sum"].unique().item() for s in ours.state] == [0.5, 0.5, 0.5]
    assert max(torch_twin.step_side_by_side(ours, theirs, wavy_gradient, steps=50)) == 0.0
