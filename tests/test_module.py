"""The module contract (every module), Parameter, Module's API and Sequential."""
from __future__ import annotations

import pytest
import torch

import mini_dl as dl
import torch_twin


def net64(*modules):
    return dl.Sequential(*modules).double()


def make_cases(random_tensor):
    """(module, inputs, grad_output) for every module kind, in float64; grad_output None means
    a loss, whose backward takes no argument."""
    torch.manual_seed(0)
    x43, g42, g43 = (random_tensor(4, 3, seed=1), random_tensor(4, 2, seed=2),
                     random_tensor(4, 3, seed=3))
    return {
        "Linear": (dl.Linear(3, 2).double(), (x43,), g42),
        "Linear-no-bias-extra-dims": (dl.Linear(3, 2, bias=False).double(),
                                      (random_tensor(2, 5, 3, seed=4),),
                                      random_tensor(2, 5, 2, seed=5)),
        "ReLU": (dl.ReLU(), (x43,), g43),
        "Tanh": (dl.Tanh(), (x43,), g43),
        "Sigmoid": (dl.Sigmoid(), (x43,), g43),
        "MSELoss-mean": (dl.MSELoss(), (x43, g43), None),
        "MSELoss-sum": (dl.MSELoss("sum"), (x43, g43), None),
        "Sequential": (net64(dl.Linear(3, 5), dl.ReLU(), dl.Linear(5, 2), dl.Tanh()), (x43,), g42),
        "nested-Sequential": (net64(dl.Sequential(dl.Linear(3, 4), dl.Sigmoid()),
                                    dl.Linear(4, 2, bias=False)), (x43,), g42),
    }


CASE_NAMES = ["Linear", "Linear-no-bias-extra-dims", "ReLU", "Tanh", "Sigmoid", "MSELoss-mean",
              "MSELoss-sum", "Sequential", "nested-Sequential"]


@pytest.fixture(params=CASE_NAMES)
def case(request, random_tensor):
    return make_cases(random_tensor)[request.param]


def run_backward(module, grad_output):
    return module.backward() if grad_output is None else module.backward(grad_output)


def cached_tensors(module):
    """Every tensor a module (or any descendant) keeps in its attributes."""
    found = [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
    for child in module.children():
        found += cached_tensors(child)
    return found


def assert_no_graph(tensors):
    for tensor in tensors:
        assert not tensor.requires_grad and tensor.grad_fn is None, tensor


# -- the contract, for every module ---------------------------------------------------------

def test_no_autograd_graph_with_grad_mode_on_and_an_input_that_requires_grad(case):
    # Through module(...), the public entry point. (A bare module.forward(...) stays
    # differentiable on purpose: check_gradients differentiates it with torch.func.)
    module, inputs, grad_output = case
    inputs = (inputs[0].clone().requires_grad_(),) + inputs[1:]
    with torch.enable_grad():
        output = module(*inputs)
        grad_input = run_backward(module, grad_output)
    assert_no_graph([output, grad_input, *cached_tensors(module)])
    for parameter in module.parameters():
        assert_no_graph([parameter.data, parameter.grad])


def test_backward_never_modifies_grad_output_in_place(case):
    module, inputs, grad_output = case
    module(*inputs)
    if grad_output is None:  # a loss: its upstream gradient is a 0-dim tensor
        grad_output = torch.tensor(1.5, dtype=torch.float64)
    saved = grad_output.clone()
    run_backward(module, grad_output)
    assert torch.equal(grad_output, saved)


def test_cache_survives_repeated_backward_and_parameter_gradients_accumulate(case):
    module, inputs, grad_output = case
    module.zero_grad()
    module(*inputs)
    first_input_grad = run_backward(module, grad_output).clone()
    first = [p.grad.clone() for p in module.parameters()]
    second_input_grad = run_backward(module, grad_output)
    assert torch.equal(first_input_grad, second_input_grad)
    for parameter, once in zip(module.parameters(), first):
        # The second call adds the same float64 numbers again. Not bit for bit 2a: addmm_ folds
        # the old gradient into the BLAS accumulation (c + sum_k a_k b_k, fused multiply-adds),
        # which rounds differently from (sum_k a_k b_k) * 2; a few ulps, far below any bug.
        torch.testing.assert_close(parameter.grad, 2 * once, rtol=1e-14, atol=1e-15)


def test_zero_grad_resets_every_parameter_gradient(case):
    module, inputs, grad_output = case
    module(*inputs)
    run_backward(module, grad_output)
    module.zero_grad()
    for parameter in module.parameters():
        assert torch.equal(parameter.grad, torch.zeros_like(parameter.data))


def test_zero_grad_set_to_none_drops_the_gradients_and_backward_writes_the_same_ones(case):
    module, inputs, grad_output = case
    module.zero_grad()
    module(*inputs)
    run_backward(module, grad_output)
    expected = [p.grad.clone() for p in module.parameters()]
    module.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in module.parameters())
    module.zero_grad()  # zeroing a gradient that is None leaves it None, as in torch
    assert all(p.grad is None for p in module.parameters())
    module(*inputs)
    run_backward(module, grad_output)
    for parameter, once in zip(module.parameters(), expected):
        torch.testing.assert_close(parameter.grad, once, rtol=1e-15, atol=1e-15)
    run_backward(module, grad_output)  # and from then on they accumulate
    for parameter, once in zip(module.parameters(), expected):
        torch.testing.assert_close(parameter.grad, 2 * once, rtol=1e-15, atol=1e-15)


def test_released_caches_free_after_one_backward_and_a_second_one_says_why(case):
    module, inputs, grad_output = case
    assert module.retain_caches(False) is module
    module(*inputs)
    first = run_backward(module, grad_output)
    assert cached_tensors(module) == []  # every cache handed over and forgotten
    with pytest.raises(RuntimeError, match="backward called before forward .*retain_cache is "
                                           "False: every backward releases"):
        run_backward(module, grad_output)
    module(*inputs)  # a new forward caches again
    assert torch.equal(run_backward(module, grad_output), first)
    module.retain_caches()
    module(*inputs)
    run_backward(module, grad_output)
    assert cached_tensors(module) != []


def test_retain_caches_reaches_every_descendant_and_wants_a_bool():
    net = nested_net()
    net.retain_caches(False)
    assert not any(m.retain_cache for m in [net, *net, *net[2]])
    net.retain_caches(True)
    assert all(m.retain_cache for m in [net, *net, *net[2]])
    with pytest.raises(TypeError, match=r"Sequential.retain_caches: mode must be a bool, got 0"):
        net.retain_caches(0)


def test_to_moves_gradients_and_keeps_dropped_ones_dropped():
    layer = dl.Linear(3, 2)
    layer.bias.grad = None
    layer.to(torch.float64)
    assert layer.weight.grad.dtype == torch.float64 and layer.bias.grad is None


def test_module_passes_gradient_checker_against_its_torch_twin(case):
    module, inputs, _ = case
    report = dl.check_gradients(module, *inputs, reference=torch_twin.to_torch(module))
    assert report.passed, report


# -- Sequential against torch.nn.Sequential ---------------------------------------------------

@pytest.mark.parametrize("batch", [1, 4, 9])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_sequential_forward_input_and_parameter_gradients_match_autograd(
        batch, depth, matches_torch, random_tensor):
    torch.manual_seed(batch * 10 + depth)
    sizes = [3, 6, 5, 4, 2][:depth + 1]
    activations = [dl.ReLU, dl.Tanh, dl.Sigmoid]
    modules = []
    for k in range(depth):
        modules += [dl.Linear(sizes[k], sizes[k + 1], bias=k % 2 == 0), activations[k % 3]()]
    net = net64(*modules)
    matches_torch(net, random_tensor(batch, 3, seed=1),
                  grad_output=random_tensor(batch, sizes[depth], seed=2))


def test_nested_sequential_matches_autograd(matches_torch, random_tensor):
    torch.manual_seed(0)
    net = net64(dl.Sequential(dl.Linear(2, 4), dl.ReLU()),
                dl.Sequential(dl.Linear(4, 4), dl.Tanh(), dl.Sequential(dl.Linear(4, 3))))
    matches_torch(net, random_tensor(5, 2, seed=1), grad_output=random_tensor(5, 3, seed=2))


def test_sequential_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match=r"Linear: backward called before forward"):
        dl.Sequential(dl.ReLU(), dl.Linear(3, 2)).backward(torch.zeros(4, 2))


def test_sequential_rejects_non_module_arguments():
    message = r"Sequential: argument 1 must be a mini_dl Module, got Linear"
    with pytest.raises(TypeError, match=message):
        dl.Sequential(dl.ReLU(), torch.nn.Linear(3, 2))


def test_sequential_indexing_slicing_len_and_iteration():
    layers = [dl.Linear(2, 3), dl.ReLU(), dl.Linear(3, 4), dl.Tanh()]
    net = dl.Sequential(*layers)
    assert len(net) == 4
    assert list(net) == layers
    assert net[0] is layers[0] and net[-1] is layers[-1]
    head = net[1:3]
    assert isinstance(head, dl.Sequential) and list(head) == layers[1:3]
    assert len(net[:0]) == 0
    with pytest.raises(IndexError):
        net[4]


def test_sequential_repr_equals_torch_repr():
    net = dl.Sequential(dl.Linear(2, 3), dl.ReLU(), dl.Sequential(dl.Linear(3, 1, bias=False),
                                                                  dl.Sigmoid()))
    assert repr(net) == repr(torch_twin.to_torch(net))
    assert repr(dl.Sequential()) == repr(torch.nn.Sequential())


# -- parameters, names, modes ------------------------------------------------------------------

def nested_net():
    return dl.Sequential(dl.Linear(2, 4), dl.ReLU(),
                         dl.Sequential(dl.Linear(4, 3, bias=False), dl.Tanh(), dl.Linear(3, 2)))


def test_named_parameters_follow_torch_names_and_order():
    net = nested_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.0.weight", "2.2.weight", "2.2.bias"]
    assert names == [name for name, _ in torch_twin.to_torch(net).named_parameters()]


def test_parameters_order_matches_torch_named_parameters():
    net = nested_net()
    twin = torch_twin.to_torch(net)
    ours = [p.data for p in net.parameters()]
    theirs = [p.detach() for _, p in twin.named_parameters()]
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_param_returns_value_and_gradient_pairs_of_every_parameter():
    net = nested_net()
    pairs = net.param()
    parameters = list(net.parameters())
    assert len(pairs) == len(parameters) == 5
    for (value, grad), parameter in zip(pairs, parameters):
        assert value is parameter.data and grad is parameter.grad


def test_parameters_registered_in_assignment_order_and_reassignment_unregisters():
    class Block(dl.Module):
        def __init__(self):
            super().__init__()
            self.scale = dl.Parameter(torch.ones(1))
            self.inner = dl.Linear(2, 2)
            self.shift = dl.Parameter(torch.zeros(1))

    block = Block()
    assert [n for n, _ in block.named_parameters()] == ["scale", "shift", "inner.weight",
                                                        "inner.bias"]
    block.shift = None
    block.inner.bias = None
    assert [n for n, _ in block.named_parameters()] == ["scale", "inner.weight"]
    assert list(block.children()) == [block.inner]


def test_assigning_a_tensor_over_a_parameter_or_a_child_unregisters_it():
    # tensors take a short path through __setattr__ (caches are set at every step): it must not
    # skip the unregistering
    block = dl.Sequential(dl.Linear(2, 2))
    layer = block[0]
    layer.bias = torch.zeros(2)
    block.extra = torch.ones(1)
    setattr(block, "0", torch.ones(1))
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert list(block.children()) == [] and list(block.parameters()) == []
    assert torch.equal(layer.bias, torch.zeros(2)) and torch.equal(block.extra, torch.ones(1))


def test_detached_returns_the_tensor_itself_unless_it_carries_a_graph():
    plain = torch.ones(3)
    assert dl.module.detached(plain) is plain
    leaf = torch.ones(3, requires_grad=True)
    computed = leaf * 2
    for tensor in (leaf, computed):
        result = dl.module.detached(tensor)
        assert result is not tensor and not result.requires_grad and result.grad_fn is None
        assert result.data_ptr() == tensor.data_ptr()  # the same storage, no copy


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("grad_mode", [False, True])
def test_calling_a_module_leaves_the_grad_mode_as_it_was(requires_grad, grad_mode):
    layer = dl.Linear(3, 2)
    seen = []
    forward = layer.forward
    layer.forward = lambda x: (seen.append(torch.is_grad_enabled()), forward(x))[1]
    with torch.set_grad_enabled(grad_mode):
        output = layer(torch.ones(4, 3, requires_grad=requires_grad))
        assert torch.is_grad_enabled() == grad_mode
    assert not output.requires_grad and output.grad_fn is None
    # autograd is switched off exactly when an input could have recorded a graph
    assert seen == [grad_mode and not requires_grad]


def test_train_and_eval_propagate_to_every_child_of_nested_sequentials():
    net = nested_net()
    everything = [net, *net, *net[2]]
    assert all(m.training for m in everything)
    assert net.eval() is net
    assert not any(m.training for m in everything)
    net.train()
    assert all(m.training for m in everything)
    net[2].train(False)
    assert net.training and not any(m.training for m in net[2])


def test_train_rejects_a_non_bool_mode():
    with pytest.raises(TypeError, match=r"Sequential.train: mode must be a bool, got 'no'"):
        dl.Sequential().train("no")


@pytest.mark.parametrize("cast", [lambda m: m.to(torch.float64), lambda m: m.double()],
                         ids=["to(float64)", "double()"])
def test_to_float64_and_double_move_data_and_grad(cast):
    net = nested_net()
    net(torch.ones(3, 2))
    net.backward(torch.ones(3, 2))
    before = [(p.data.clone(), p.grad.clone()) for p in net.parameters()]
    assert cast(net) is net
    for parameter, (data, grad) in zip(net.parameters(), before):
        assert parameter.data.dtype == parameter.grad.dtype == torch.float64
        assert torch.equal(parameter.data, data.double())
        assert torch.equal(parameter.grad, grad.double())
    net.float()
    assert all(p.data.dtype == p.grad.dtype == torch.float32 for p in net.parameters())


def test_to_an_integer_dtype_raises():
    message = r"Linear.to: parameters must stay floating-point, got torch.int64"
    with pytest.raises(TypeError, match=message):
        dl.Linear(2, 2).to(torch.int64)


def test_assigning_attributes_before_super_init_raises():
    class Broken(dl.Module):
        def __init__(self):
            self.weight = dl.Parameter(torch.zeros(2))
            super().__init__()

    with pytest.raises(RuntimeError, match=r"Broken: call super\(\).__init__\(\) before assigning"):
        Broken()


def test_base_module_forward_and_backward_are_not_implemented():
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        dl.Module()(torch.zeros(1))
    with pytest.raises(NotImplementedError, match="Module does not implement backward"):
        dl.Module().backward(torch.zeros(1))


# -- Parameter ----------------------------------------------------------------------------------

def test_parameter_holds_detached_data_and_a_zero_gradient():
    source = torch.ones(2, 3, requires_grad=True)
    parameter = dl.Parameter(source)
    assert not parameter.data.requires_grad and parameter.data.grad_fn is None
    assert torch.equal(parameter.grad, torch.zeros(2, 3)) and not parameter.grad.requires_grad
    assert parameter.shape == (2, 3)
    assert repr(parameter) == "Parameter(shape=(2, 3), dtype=torch.float32)"


@pytest.mark.parametrize("value", [torch.ones(2, dtype=torch.int64), [1.0, 2.0], None])
def test_parameter_rejects_non_floating_data(value):
    with pytest.raises(TypeError, match=r"Parameter: data must be a floating-point torch.Tensor"):
        dl.Parameter(value)


# -- state_dict ---------------------------------------------------------------------------------

def test_state_dict_keys_and_shapes_equal_torch_for_the_same_architecture():
    ours = nested_net().state_dict()
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False),
                                                     torch.nn.Tanh(),
                                                     torch.nn.Linear(3, 2))).state_dict()
    assert list(ours) == list(theirs)
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]


def test_state_dict_round_trip_torch_to_mini_dl_to_torch_is_identical():
    torch.manual_seed(3)
    source = torch_twin.to_torch(nested_net())
    torch.manual_seed(4)  # a different init, so that equality proves the copy
    ours = nested_net().load_state_dict(source.state_dict())
    back = torch_twin.to_torch(ours)
    for (name, a), (_, b) in zip(source.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), name


def test_load_state_dict_copies_and_never_makes_parameters_require_grad():
    net = nested_net()
    twin = torch_twin.to_torch(nested_net())
    net.load_state_dict(dict(twin.named_parameters()))  # torch.nn.Parameters require grad
    for parameter in net.parameters():
        assert not parameter.data.requires_grad
    with torch.no_grad():
        twin[0].weight.add_(1.0)
    assert not torch.equal(net[0].weight.data, twin[0].weight.detach())


def test_load_state_dict_casts_dtype_as_torch_does():
    net = nested_net().double()
    state = torch_twin.to_torch(nested_net()).state_dict()  # float32
    net.load_state_dict(state)
    assert all(p.data.dtype == torch.float64 for p in net.parameters())
    assert torch.equal(net[0].weight.data, state["0.weight"].double())


def test_load_state_dict_rejects_unexpected_keys():
    state = dict(dl.Linear(2, 3).state_dict(), extra=torch.zeros(1))
    message = r"Linear.load_state_dict: missing keys \[\], unexpected keys \['extra'\]"
    with pytest.raises(RuntimeError, match=message):
        dl.Linear(2, 3).load_state_dict(state)


def test_load_state_dict_rejects_missing_keys_unless_not_strict():
    state = {"weight": torch.ones(3, 2)}
    with pytest.raises(RuntimeError, match=r"Linear.load_state_dict: missing keys \['bias'\]"):
        dl.Linear(2, 3).load_state_dict(state)
    layer = dl.Linear(2, 3).load_state_dict(state, strict=False)
    assert torch.equal(layer.weight.data, torch.ones(3, 2))


def test_load_state_dict_rejects_wrong_shapes():
    state = {"weight": torch.zeros(2, 3), "bias": torch.zeros(3)}
    message = r"Linear.load_state_dict: 'weight' has shape \(2, 3\), expected \(3, 2\)"
    with pytest.raises(RuntimeError, match=message):
        dl.Linear(2, 3).load_state_dict(state)


def test_load_state_dict_rejects_non_tensor_values_and_non_mappings():
    message = r"Linear.load_state_dict: 'bias' must be a tensor, got list"
    with pytest.raises(TypeError, match=message):
        dl.Linear(2, 3).load_state_dict({"weight": torch.zeros(3, 2), "bias": [0.0, 0.0, 0.0]})
    with pytest.raises(TypeError, match=r"Linear.load_state_dict: expected a mapping, got list"):
        dl.Linear(2, 3).load_state_dict([torch.zeros(3, 2), torch.zeros(3)])


def test_the_torch_comparison_bites_on_a_wrong_parameter_gradient(matches_torch, random_tensor):
    class HalfBiasGradLinear(dl.Linear):
        def backward(self, grad_output):
            grad_input = super().backward(grad_output)
            self.bias.grad.mul_(0.5)
            return grad_input

    layer = HalfBiasGradLinear(3, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="bias"):
        matches_torch(layer, random_tensor(4, 3), grad_output=random_tensor(4, 2, seed=1))


def test_sequential_with_a_first_layer_that_skips_its_input_grad_trains_as_torch(random_tensor):
    """The first layer's input gradient is what torch skips for data that does not require grad:
    skipping it changes the return value of backward (None), not a single parameter gradient."""
    torch.manual_seed(0)
    net = dl.Sequential(dl.Linear(3, 4), dl.ReLU(), dl.Linear(4, 2)).double()
    twin = torch_twin.to_torch(net)
    net[0].needs_input_grad = False
    x, target = random_tensor(5, 3), random_tensor(5, 2, seed=1)
    criterion = dl.MSELoss()
    criterion(net(x), target)
    assert net.backward(criterion.backward()) is None
    torch.nn.MSELoss()(twin(x), target).backward()
    for (name, ours), theirs in zip(net.named_parameters(), twin.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-12, atol=1e-12, msg=name)


# -- buffers: state that is not trained -------------------------------------------------------

class Counting(dl.Module):
    """y = x * w + offset, counting its calls and tracking the running mean of x in buffers, as
    batch normalisation does (the running mean does not enter the output)."""

    def __init__(self, features=2):
        super().__init__()
        self.weight = dl.Parameter(torch.ones(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("calls", torch.tensor(0, dtype=torch.long))
        self.register_buffer("scratch", torch.zeros(1), persistent=False)

    def forward(self, x):
        self.input = x
        if self.training:
            self.running_mean.mul_(0.9).add_(0.1 * x.mean(0))
            self.calls += 1
        return x * self.weight.data

    def backward(self, grad_output):
        x = self.saved("input")
        self.weight.grad += (grad_output * x).sum(0)
        return grad_output * self.weight.data


def test_state_dict_holds_own_parameters_then_own_buffers_then_children_as_torch():
    class Outer(Counting):
        def __init__(self):
            super().__init__()
            self.inner = dl.Sequential(dl.Linear(2, 2), Counting())

    keys = list(Outer().state_dict())
    assert keys == ["weight", "running_mean", "calls", "inner.0.weight", "inner.0.bias",
                    "inner.1.weight", "inner.1.running_mean", "inner.1.calls"]
    # the same order torch.nn gives the same structure
    class TorchCounting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(2))
            self.register_buffer("running_mean", torch.zeros(2))
            self.register_buffer("calls", torch.tensor(0))
            self.register_buffer("scratch", torch.zeros(1), persistent=False)
    torch_outer = TorchCounting()
    torch_outer.inner = torch.nn.Sequential(torch.nn.Linear(2, 2), TorchCounting())
    assert keys == list(torch_outer.state_dict())


def test_named_buffers_include_non_persistent_ones_and_skip_none():
    module = Counting()
    module.calls = None  # a buffer set to None is skipped, as in torch.nn
    assert [name for name, _ in module.named_buffers()] == ["running_mean", "scratch"]
    assert "calls" not in module.state_dict()
    assert len(list(module.buffers())) == 2


def test_to_casts_floating_buffers_and_keeps_integer_buffers_integer():
    module = dl.Sequential(Counting()).to(torch.float64)
    state = module.state_dict()
    assert state["0.running_mean"].dtype == torch.float64
    assert state["0.calls"].dtype == torch.long
    assert module[0].scratch.dtype == torch.float64
    module.float()
    assert module[0].running_mean.dtype == torch.float32 and module[0].calls.dtype == torch.long


def test_to_accepts_torchs_argument_forms_and_rejects_others():
    module = Counting()
    assert module.to("cpu", torch.float64).weight.data.dtype == torch.float64
    assert module.to(device="cpu", dtype=torch.float32).running_mean.dtype == torch.float32
    assert module.to(torch.zeros(1, dtype=torch.float64)).scratch.dtype == torch.float64
    with pytest.raises(TypeError, match="Counting.to: expected a device"):
        module.to(3.5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        module.to(memory=1)


def test_buffers_move_through_state_dict_to_torch_and_back():
    ours = Counting()
    ours(torch.randn(5, 2))
    ours(torch.randn(5, 2))
    copy = Counting().load_state_dict(ours.state_dict())
    assert torch.equal(copy.running_mean, ours.running_mean) and copy.calls.item() == 2
    assert copy.calls.dtype == torch.long


def test_load_state_dict_reports_missing_and_unexpected_buffer_keys_and_changes_nothing():
    module = Counting()
    state = dict(module.state_dict())
    del state["calls"]
    state["weight"] = torch.full((2,), 7.0)
    with pytest.raises(RuntimeError, match=r"missing keys \['calls'\]"):
        module.load_state_dict(state)
    assert module.weight.data.tolist() == [1.0, 1.0]  # refused before anything was copied
    state["calls"], state["extra"] = torch.tensor(3), torch.zeros(1)
    with pytest.raises(RuntimeError, match=r"unexpected keys \['extra'\]"):
        module.load_state_dict(state)
    state.pop("extra")
    state["running_mean"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="'running_mean' has shape"):
        module.load_state_dict(state)
    assert module.weight.data.tolist() == [1.0, 1.0]


def test_register_buffer_rejects_bad_names_values_and_taken_attributes():
    module = Counting()
    with pytest.raises(KeyError, match="already exists"):
        module.register_buffer("weight", torch.zeros(1))
    with pytest.raises(TypeError, match="identifier"):
        module.register_buffer("a.b", torch.zeros(1))
    with pytest.raises(TypeError, match="must be a torch.Tensor or None"):
        module.register_buffer("b", [1.0])
    with pytest.raises(TypeError, match="buffer 'running_mean' must be a torch.Tensor"):
        module.running_mean = 3.0
    module.register_buffer("running_mean", torch.ones(2))  # re-registering replaces
    assert module.running_mean.tolist() == [1.0, 1.0]


def test_named_modules_lists_every_module_with_its_path():
    model = dl.Sequential(dl.Linear(2, 2), dl.Sequential(dl.ReLU(), Counting()))
    names = [name for name, _ in model.named_modules()]
    assert names == ["", "0", "1", "1.0", "1.1"]
    twin = torch.nn.Sequential(torch.nn.Linear(2, 2),
                               torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Identity()))
    assert names == [name for name, _ in twin.named_modules()]


# -- lazy zeroing: zero_grad marks gradients stale, the next backward writes over them ----------
def lazy_zeroing_models():
    torch.manual_seed(0)
    return {
        "mlp": (dl.Sequential(dl.Linear(3, 4), dl.ReLU(), dl.Linear(4, 2)).double(), (5, 3)),
        "cnn": (dl.Sequential(dl.Conv2d(2, 3, 3), dl.BatchNorm2d(3), dl.ReLU(), dl.Flatten(),
                              dl.Linear(12, 2)).double(), (4, 2, 4, 4)),
        "norms": (dl.Sequential(dl.Linear(3, 6), dl.LayerNorm(6), dl.Unflatten(1, (6, 1)),
                                dl.GroupNorm(2, 6), dl.Flatten()).double(), (5, 3)),
    }


@pytest.mark.parametrize("name", ["mlp", "cnn", "norms"])
@pytest.mark.parametrize("how", ["module", "optimizer"])
def test_after_lazy_zero_grad_backward_writes_exactly_the_fresh_gradient(name, how, random_tensor):
    model, shape = lazy_zeroing_models()[name]
    x = random_tensor(*shape, seed=1)
    grad_output = random_tensor(*model(x).shape, seed=2)
    model.backward(grad_output)  # a first gradient, then garbage on top of it
    for p in model.parameters():
        p.grad.add_(float("nan"))
    (model if how == "module" else dl.SGD(model.parameters(), 0.1)).zero_grad()
    model(x)
    model.backward(grad_output)
    lazily = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)  # the reference: every gradient written anew
    model(x)
    model.backward(grad_output)
    for p, grad in zip(model.parameters(), lazily):
        assert torch.equal(p.grad, grad)  # bit for bit, and no NaN of the stale values


def test_a_lazily_zeroed_gradient_reads_as_zeros_and_then_accumulates():
    layer = dl.Linear(3, 2).double()
    x, grad_output = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    layer(x)
    layer.backward(grad_output)
    once = layer.weight.grad.clone()
    layer.zero_grad()
    assert torch.equal(layer.weight.grad, torch.zeros(2, 3, dtype=torch.float64))  # read: zeros
    layer.backward(grad_output)
    layer.backward(grad_output)  # after zero_grad, two backwards sum up as always
    torch.testing.assert_close(layer.weight.grad, 2 * once, rtol=1e-15, atol=0)


def test_lazy_zero_grad_keeps_each_gradient_buffer_and_writes_no_zeros():
    layer = dl.Linear(3, 2)
    x, grad_output = torch.randn(4, 3), torch.randn(4, 2)
    layer(x)
    layer.backward(grad_output)
    buffer = layer.weight._grad
    layer.zero_grad()
    assert layer.weight._stale and not torch.equal(buffer, torch.zeros(2, 3))  # nothing written
    layer.backward(grad_output)
    assert layer.weight.grad is buffer  # the next gradient went into the same storage


def test_accumulate_grad_after_set_to_none_adopts_the_new_tensor():
    p = dl.Parameter(torch.zeros(2, 2))
    p.grad = None
    gradient = torch.ones(4)
    p.accumulate_grad(gradient)
    assert p.grad.shape == (2, 2) and p.grad.data_ptr() == gradient.data_ptr()
    p.accumulate_grad(torch.ones(2, 2))
    assert torch.equal(p.grad, torch.full((2, 2), 2.0))
