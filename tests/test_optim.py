"""SGD against torch.optim.SGD, step for step, and the optimizer API."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl

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
], ids=["sgd", "sgd-momentum-decay", "adam", "adamw"])
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
    assert state["hyperparameters"]["momentum"] == 0.9
    for index, (mine, q) in enumerate(zip(state["state"], theirs)):
        expected = reference.state[q]["momentum_buffer"]
        assert (mine["momentum_buffer"] - expected).abs().max() <= STEP_TOLERANCE, index


def test_optimizer_load_state_dict_rejects_a_state_for_other_parameters(random_tensor):
    ours, _ = twin_parameters(random_tensor)
    state = dl.SGD(ours[:2], lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: expected state for 3 parameters, "
                                         r"got 2 parameter states"):
        dl.SGD(ours, lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: .* got no state"):
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
        dl.Optimizer([dl.Parameter(torch.zeros(1))], lr=0.1).step()


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
