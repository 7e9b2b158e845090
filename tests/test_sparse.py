"""Embedding against torch.nn.Embedding: lookups, weight gradients (repeated indices,
padding_idx, scale_grad_by_freq, max_norm), initialisation, state_dict both ways, errors."""
from __future__ import annotations

import itertools

import pytest
import torch
from conftest import FLOAT64_TOLERANCE
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

F64 = torch.float64


def embedding64(*args, seed: int = 0, **kwargs) -> dl.Embedding:
    torch.manual_seed(seed)
    return dl.Embedding(*args, dtype=F64, **kwargs)


def matches_torch_embedding(module: dl.Embedding, indices: torch.Tensor, device,
                            seed: int = 1) -> None:
    """Forward value and weight gradient of ``module`` equal torch.nn.Embedding's under autograd
    (the twin from torch_twin.to_torch, same weights), and backward returns None; with max_norm,
    the renormalised weight is equal too. matches_torch (conftest) differentiates the first
    input, which is integer here: so the comparison is written out."""
    module.to(device)
    indices = indices.to(device)
    twin = torch_twin.to_torch(module)
    grad_output = torch.randn((*indices.shape, module.embedding_dim), dtype=F64,
                              generator=torch.Generator().manual_seed(seed)).to(device)
    expected = twin(indices)
    expected.backward(grad_output)
    module.zero_grad()
    output = module(indices)
    torch.testing.assert_close(output, expected.detach(), **FLOAT64_TOLERANCE)
    assert module.backward(grad_output) is None  # indices have no gradient
    torch.testing.assert_close(module.weight.grad, twin.weight.grad, **FLOAT64_TOLERANCE)
    torch.testing.assert_close(module.weight.data, twin.weight.detach(), **FLOAT64_TOLERANCE)


OPTIONS = [{"padding_idx": padding_idx, "scale_grad_by_freq": scale}
           for padding_idx, scale in itertools.product([None, 0, 3, -1, -6], [False, True])]
INDICES = [
    torch.tensor(2),  # 0-dim: output (D,)
    torch.tensor([1, 1, 1]),  # one row, three times: its gradient is the sum (or the mean)
    torch.tensor([[0, 3, 3], [5, 0, 1]]),
    torch.tensor([[[4, 3], [3, 3]], [[0, 5], [2, 2]]]),  # 3-D
    torch.tensor([[0, 3, 3], [5, 0, 1]], dtype=torch.int32),
    torch.zeros(2, 0, dtype=torch.int64),  # empty: output (2, 0, D), a zero gradient
]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("indices", INDICES, ids=lambda i: f"{tuple(i.shape)} {i.dtype}")
def test_embedding_value_and_weight_gradient_match_torch(options, indices, device):
    matches_torch_embedding(embedding64(6, 4, **options), indices, device)


@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (1.5, 3.0),
                                                 (100.0, 2.0)])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_embedding_max_norm_renormalises_the_rows_looked_up_as_torch(
        max_norm, norm_type, scale_grad_by_freq, device):
    module = embedding64(6, 4, padding_idx=2, max_norm=max_norm, norm_type=norm_type,
                         scale_grad_by_freq=scale_grad_by_freq)
    before = module.weight.data.clone()
    indices = torch.tensor([[0, 3, 3], [5, 0, 2]])
    matches_torch_embedding(module, indices, device)
    untouched = [1, 4]  # rows not looked up keep their values, even above max_norm
    assert torch.equal(module.weight.data.cpu()[untouched], before[untouched])
    norms = torch.linalg.vector_norm(module.weight.data.cpu()[[0, 3, 5]], ord=norm_type, dim=1)
    assert bool((norms <= max_norm).all())


@settings(max_examples=25, deadline=None)
@given(num_embeddings=st.integers(1, 6), embedding_dim=st.integers(1, 4),
       shape=st.lists(st.integers(0, 3), max_size=3), padding=st.booleans(),
       scale_grad_by_freq=st.booleans(), seed=st.integers(0, 2**16))
def test_embedding_matches_torch_on_random_shapes(num_embeddings, embedding_dim, shape, padding,
                                                  scale_grad_by_freq, seed, device):
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, num_embeddings, tuple(shape), generator=generator)
    padding_idx = int(torch.randint(-num_embeddings, num_embeddings, (),
                                    generator=generator)) if padding else None
    module = embedding64(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         scale_grad_by_freq=scale_grad_by_freq, seed=seed)
    matches_torch_embedding(module, indices, device, seed=seed + 1)


def test_embedding_repeated_indices_accumulate_and_the_padding_row_gets_nothing():
    module = embedding64(4, 2, padding_idx=0)
    module(torch.tensor([1, 3, 1, 0, 1]))
    module.backward(torch.ones(5, 2, dtype=F64))
    assert module.weight.grad.tolist() == [[0, 0], [3, 3], [0, 0], [1, 1]]
    module.backward(torch.ones(5, 2, dtype=F64))  # the cache survives; gradients accumulate
    assert module.weight.grad[:, 0].tolist() == [0, 6, 0, 2]
    module.zero_grad()  # lazy: the next backward writes over the stale values
    module.backward(torch.ones(5, 2, dtype=F64))
    assert module.weight.grad[:, 0].tolist() == [0, 3, 0, 1]
    module.zero_grad(set_to_none=True)
    module.backward(torch.ones(5, 2, dtype=F64))
    assert module.weight.grad[:, 0].tolist() == [0, 3, 0, 1]


def test_embedding_backward_does_not_modify_grad_output_and_releases_its_cache():
    module = embedding64(4, 3, scale_grad_by_freq=True).retain_caches(False)
    module(torch.tensor([[1, 1], [2, 0]]))
    grad_output = torch.randn(2, 2, 3, dtype=F64)
    kept = grad_output.clone()
    module.backward(grad_output)
    assert torch.equal(grad_output, kept)
    with pytest.raises(RuntimeError, match="Embedding: backward called before forward"):
        module.backward(grad_output)


@pytest.mark.parametrize("padding_idx", [None, 1, -2])
def test_embedding_initialisation_draws_what_torch_draws(padding_idx):
    torch.manual_seed(7)
    ours = dl.Embedding(5, 3, padding_idx=padding_idx)
    torch.manual_seed(7)
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx)
    assert torch.equal(ours.weight.data, theirs.weight.detach())
    assert ours.padding_idx == theirs.padding_idx  # negative: stored from the end, as torch
    assert repr(ours) == repr(theirs)
    if padding_idx is not None:
        assert ours.weight.data[padding_idx].abs().sum() == 0


@pytest.mark.parametrize("options", [{}, {"padding_idx": -1}, {"max_norm": 1.0},
                                     {"norm_type": 1.0, "scale_grad_by_freq": True}], ids=str)
def test_embedding_repr_and_state_dict_move_both_ways(options):
    ours = embedding64(5, 3, **options)
    twin = torch_twin.to_torch(ours)
    assert repr(ours) == repr(twin)
    assert list(ours.state_dict()) == list(twin.state_dict()) == ["weight"]
    assert torch.equal(twin.weight.detach(), ours.weight.data)
    theirs = torch.nn.Embedding(5, 3, dtype=F64, **options)
    back = torch_twin.from_torch(theirs)
    assert isinstance(back, dl.Embedding) and repr(back) == repr(theirs)
    assert torch.equal(back.weight.data, theirs.weight.detach())
    assert (back.padding_idx, back.max_norm, back.norm_type, back.scale_grad_by_freq) == (
        theirs.padding_idx, theirs.max_norm, theirs.norm_type, theirs.scale_grad_by_freq)


def test_embedding_weight_argument_is_shared_as_torch():
    weight = torch.arange(6.0).reshape(3, 2)
    module = dl.Embedding(3, 2, _weight=weight)
    assert module.weight.data.data_ptr() == weight.data_ptr()
    assert module(torch.tensor([2])).tolist() == [[4.0, 5.0]]


def test_the_checker_passes_embedding_and_a_wrong_backward_fails_it():
    module = embedding64(5, 3)
    indices = torch.tensor([[0, 2, 2], [4, 0, 0]])
    report = dl.check_gradients(module, indices, reference=torch_twin.to_torch(module), wrt=())
    assert report.passed, report
    assert [row.name for row in report.rows] == ["output", "weight"]

    class LastWriteWins(dl.Embedding):  # a classic slip: weight.grad[i] = G (no accumulation)
        def backward(self, grad_output):
            flat = self.saved("indices").reshape(-1)
            grad = torch.zeros_like(self.weight.data)
            grad[flat] = grad_output.reshape(-1, self.embedding_dim)
            self.weight.accumulate_grad(grad)

    wrong = LastWriteWins(5, 3, _weight=module.weight.data.clone())
    report = dl.check_gradients(wrong, indices, reference=torch_twin.to_torch(module), wrt=())
    assert not report.passed, report


def test_scale_grad_by_freq_is_not_the_derivative_finite_differences_measure():
    """torch's option divides by the counts on purpose: the checker's finite differences see the
    plain derivative, autograd of torch.nn.Embedding the scaled one (so the registry leaves it
    out and the comparisons above check it)."""
    module = embedding64(4, 2, scale_grad_by_freq=True)
    report = dl.check_gradients(module, torch.tensor([1, 1, 2]),
                                reference=torch_twin.to_torch(module), wrt=())
    weight = report.rows[1]
    assert weight.autograd_rel < 1e-12 and weight.finite_difference_rel > 0.1


@pytest.mark.parametrize("indices, error, message", [
    ([1, 2], TypeError, "Embedding: input must be a torch.Tensor"),
    (torch.tensor([1.0, 2.0]), TypeError, "Embedding: input must hold int64 or int32 indices"),
    (torch.tensor([True]), TypeError, "got dtype torch.bool"),
    (torch.tensor([0, 5]), IndexError, r"Embedding: indices must be in \[0, 4\].*got 5"),
    (torch.tensor([[-1, 0]]), IndexError, "got -1"),
    (torch.tensor([1], device="meta"), TypeError, "Embedding: input must be on cpu"),
])
def test_embedding_refuses_bad_indices_naming_itself(indices, error, message):
    with pytest.raises(error, match=message):
        dl.Embedding(5, 2)(indices)


def test_embedding_refuses_a_grad_output_of_the_wrong_shape_or_dtype():
    module = dl.Embedding(5, 2)
    module(torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"Embedding: grad_output must have shape \(1, 3, 2\), "
                                         r"got \(3, 2\)"):
        module.backward(torch.ones(3, 2))
    with pytest.raises(TypeError, match="Embedding: grad_output must have dtype torch.float32"):
        module.backward(torch.ones(1, 3, 2, dtype=F64))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_embeddings": 0}, ValueError, "num_embeddings must be positive"),
    ({"embedding_dim": 2.0}, TypeError, "embedding_dim must be an int"),
    ({"padding_idx": 5}, ValueError, r"padding_idx must be in \[-5, 4\].*got 5"),
    ({"padding_idx": -6}, ValueError, "got -6"),
    ({"padding_idx": 1.0}, TypeError, "padding_idx must be an int or None"),
    ({"max_norm": 0.0}, ValueError, "max_norm must be positive"),
    ({"sparse": True}, ValueError, "sparse=True is not supported"),
    ({"_freeze": True}, ValueError, "_freeze=True is not supported"),
    ({"_weight": torch.ones(5, 3)}, ValueError, r"_weight must have shape \(5, 2\)"),
])
def test_embedding_constructor_refuses_bad_arguments_naming_itself(kwargs, error, message):
    arguments = {"num_embeddings": 5, "embedding_dim": 2, **kwargs}
    with pytest.raises(error, match=f"Embedding: .*{message}"):
        dl.Embedding(**arguments)
