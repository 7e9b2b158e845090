"""CharGPT against its torch.nn twin (torch_twin.gpt.TorchCharGPT): forward and every parameter
gradient in float64, finite differences on a tiny model, state_dict both ways, AdamW training
side by side, reproducible sampling, errors."""
from __future__ import annotations

import pytest
import torch
from conftest import FLOAT64_TOLERANCE

import mini_dl as dl
from mini_dl import text
from mini_dl.gpt import CharGPT, validation_loss
from torch_twin.gpt import TorchCharGPT

F64 = torch.float64
TINY = {"vocab_size": 7, "block_size": 5, "d_model": 4, "nhead": 2, "num_layers": 2,
        "dim_feedforward": 6}


def tiny(seed: int = 0, **options) -> CharGPT:
    torch.manual_seed(seed)
    return CharGPT(**{**TINY, **options}, dtype=F64)


def indices(batch: int, length: int, vocab_size: int = TINY["vocab_size"], seed: int = 1):
    return torch.randint(0, vocab_size, (batch, length),
                         generator=torch.Generator().manual_seed(seed))


def randomized(model: CharGPT, seed: int = 2) -> CharGPT:
    """Every parameter N(0, 1): LayerNorm's ones and the zero biases hide swapped formulas."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in model.parameters():
        parameter.data.copy_(torch.randn(parameter.shape, generator=generator, dtype=F64))
    return model


@pytest.mark.parametrize("options", [{}, {"norm_first": False}, {"activation": "relu"},
                                     {"num_layers": 1, "nhead": 1}], ids=str)
@pytest.mark.parametrize("length", [1, 3, 5])
def test_forward_and_every_parameter_gradient_match_the_torch_twin(options, length):
    model = randomized(tiny(**options))
    twin = TorchCharGPT.like(model)
    idx = indices(3, length)
    expected = twin(idx)
    output = model(idx)
    torch.testing.assert_close(output, expected.detach(), **FLOAT64_TOLERANCE)
    grad_output = torch.randn(expected.shape, dtype=F64,
                              generator=torch.Generator().manual_seed(3))
    expected.backward(grad_output)
    model.zero_grad()
    assert model.backward(grad_output) is None  # indices have no gradient
    theirs = dict(twin.named_parameters())
    assert [name for name, _ in model.named_parameters()] == list(theirs)
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, theirs[name].grad, **FLOAT64_TOLERANCE,
                                   msg=lambda message, name=name: f"{name}: {message}")


def test_the_causal_mask_hides_the_future():
    """Changing the last character changes the logits of the last position only."""
    model = randomized(tiny())
    idx = indices(2, 5)
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % TINY["vocab_size"]
    before, after = model(idx), model(changed)
    assert torch.equal(before[:, :-1], after[:, :-1])
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_finite_differences_and_autograd_agree_with_every_parameter_gradient():
    model = randomized(tiny(num_layers=1, d_model=4, dim_feedforward=4, vocab_size=5,
                            block_size=3))
    report = dl.check_gradients(model, indices(2, 3, vocab_size=5),
                                reference=TorchCharGPT.like(model), wrt=())
    assert report.passed, report
    assert len(report.rows) == 1 + len(list(model.parameters()))


def test_state_dict_goes_both_ways_with_identical_keys():
    model = tiny()
    twin = TorchCharGPT.like(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    torch.manual_seed(5)
    other = TorchCharGPT(**TINY, dtype=F64)  # torch's own initialisation
    back = other.to_mini_dl()
    for name, value in other.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
    idx = indices(2, 4)
    torch.testing.assert_close(back(idx), other(idx).detach(), **FLOAT64_TOLERANCE)


def test_initialisation_is_gpt2s_and_the_layers_start_different():
    model = CharGPT(**{**TINY, "d_model": 32, "dim_feedforward": 64})
    state = model.state_dict()
    assert torch.equal(state["norm.weight"], torch.ones(32))
    assert torch.equal(state["encoder.layers.0.norm1.bias"], torch.zeros(32))
    assert torch.equal(state["head.bias"], torch.zeros(7))
    assert abs(state["encoder.layers.0.linear1.weight"].std().item() - 0.02) < 0.003
    assert not torch.equal(state["encoder.layers.0.linear1.weight"],
                           state["encoder.layers.1.linear1.weight"])


def test_training_with_adamw_matches_torch_step_by_step():
    model = tiny()
    twin = TorchCharGPT.like(model)
    optimizer = dl.AdamW(model.parameters(), lr=1e-2)
    torch_optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-2)
    criterion, torch_criterion = dl.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 7, (200,), generator=generator)
    for _ in range(5):
        x, y = text.batch(codes, 4, 5, generator)
        optimizer.zero_grad()
        loss = criterion(model(x).reshape(-1, 7), y.reshape(-1))
        model.backward(criterion.backward().reshape(4, 5, 7))
        optimizer.step()
        torch_optimizer.zero_grad()
        torch_loss = torch_criterion(twin(x).reshape(-1, 7), y.reshape(-1))
        torch_loss.backward()
        torch_optimizer.step()
        assert abs(loss.item() - torch_loss.item()) < 1e-12
    theirs = dict(twin.named_parameters())
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.data, theirs[name].detach(), **FLOAT64_TOLERANCE)


def test_caches_released_by_backward_still_give_the_same_gradients():
    model, released = randomized(tiny()), randomized(tiny()).retain_caches(False)
    idx = indices(2, 5)
    grad_output = torch.randn(2, 5, 7, dtype=F64)
    for each in (model, released):
        each(idx)
        # released caches: the attention weights are not kept, backward computes them again
        kept = each.encoder.layers[0].self_attn.weights
        assert (kept is None) == (each is released)
        each.backward(grad_output)
    for (name, ours), theirs in zip(model.named_parameters(), released.parameters()):
        assert torch.equal(ours.grad, theirs.grad), name
    with pytest.raises(RuntimeError, match="backward called before forward"):
        released.backward(grad_output)


def test_generate_is_reproducible_and_samples_as_the_twin_with_torch_softmax():
    model = randomized(tiny())
    twin = TorchCharGPT.like(model)
    prompt = indices(2, 2)
    sample = model.generate(prompt, 8, generator=torch.Generator().manual_seed(4))
    assert sample.shape == (2, 10) and torch.equal(sample[:, :2], prompt)
    assert torch.equal(sample, model.generate(prompt, 8,
                                              generator=torch.Generator().manual_seed(4)))
    expected = twin.generate(prompt, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(sample, expected)
    cold = model.generate(prompt, 8, temperature=1e-3, generator=torch.Generator())
    greedy = prompt
    for _ in range(8):  # temperature -> 0: the most likely character
        greedy = torch.cat([greedy, model(greedy[:, -5:])[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(cold, greedy)


def test_validation_loss_is_repeatable_and_restores_the_mode():
    model = tiny()
    codes = indices(1, 100)[0]
    first = validation_loss(model, codes, 5, batches=2, batch_size=3)
    assert first == validation_loss(model, codes, 5, batches=2, batch_size=3)
    assert model.training


@pytest.mark.parametrize(("idx", "error", "message"), [
    (torch.zeros(2, 3), TypeError, "CharGPT: idx must be a tensor of int64 or int32"),
    ([[0, 1]], TypeError, "CharGPT: idx must be a tensor"),
    (torch.zeros(3, dtype=torch.int64), ValueError, r"shape \(B, T\)"),
    (torch.zeros(1, 6, dtype=torch.int64), ValueError, r"T <= block_size \(5\), got \(1, 6\)"),
    (torch.zeros(1, 0, dtype=torch.int64), ValueError, r"1 <= T"),
    (torch.full((1, 2), 7), IndexError, r"Embedding: indices must be in \[0, 6\]"),
])
def test_bad_indices_raise_a_clear_error(idx, error, message):
    with pytest.raises(error, match=message):
        tiny()(idx)


def test_bad_grad_output_and_backward_before_forward_raise_clear_errors():
    model = tiny()
    with pytest.raises(RuntimeError, match="CharGPT: backward called before forward"):
        model.backward(torch.zeros(1, 2, 7, dtype=F64))
    model(indices(1, 2))
    with pytest.raises(ValueError, match=r"CharGPT: grad_output must have shape \(1, 2, 7\)"):
        model.backward(torch.zeros(1, 2, 6, dtype=F64))
    with pytest.raises(TypeError, match="CharGPT: grad_output must have dtype torch.float64"):
        model.backward(torch.zeros(1, 2, 7))
    with pytest.raises(ValueError, match="temperature must be positive"):
        model.generate(indices(1, 2), 1, temperature=0.0)


def test_the_command_line_trains_and_samples(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_gpt.py"
    spec = importlib.util.spec_from_file_location("train_gpt", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model = script.main(["--steps", "2", "--every", "1", "--d-model", "8", "--nhead", "2",
                      "--num-layers", "1", "--block-size", "8", "--batch-size", "2"])
    printed = capsys.readouterr().out
    assert "step 2: train loss" in printed and "validation loss" in printed
    assert isinstance(model, CharGPT) and not model.training


def test_the_benchmark_case_runs_with_parity_and_memory(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("benchmark_run", path)
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    threads = torch.get_num_threads()
    try:
        results = run.main(["--case", "gpt", "--reps", "1", "--steps", "1", "--batch-size", "2"])
    finally:
        torch.set_num_threads(threads)
    row, = results["cases"]
    assert row["case"] == "gpt" and row["batch_size"] == 2 and row["median_ratio"] > 0
    assert row["parity_max_parameter_difference"] <= 1e-4
    assert row["mini_dl_peak_bytes"] > 0 and row["torch_peak_bytes"] > 0
    assert "AdamW for gpt" in capsys.readouterr().out
