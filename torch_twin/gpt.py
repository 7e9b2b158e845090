"""The torch.nn twin of ``mini_dl.gpt.CharGPT``: the same architecture from torch.nn's own
modules (``Embedding``, ``TransformerEncoder``, ``LayerNorm``, ``Linear``), under the same
attribute names, so that the two exchange state_dicts key for key.

    >>> import torch, torch_twin
    >>> from mini_dl.gpt import CharGPT
    >>> from torch_twin.gpt import TorchCharGPT
    >>> model = CharGPT(vocab_size=10, block_size=8, d_model=8, nhead=2, num_layers=1)
    >>> twin = TorchCharGPT.like(model)
    >>> list(twin.state_dict()) == list(model.state_dict())
    True
    >>> idx = torch.randint(0, 10, (2, 5))
    >>> torch.allclose(twin(idx), model(idx), atol=1e-5)
    True
    >>> torch.equal(twin.to_mini_dl()(idx), model(idx))   # and back
    True
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch


class TorchCharGPT(torch.nn.Module):
    """Token + position embeddings, causal ``TransformerEncoder`` layers (batch first), a final
    LayerNorm and a linear head: ``forward(idx (B, T)) -> logits (B, T, V)``, as CharGPT."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int | None = None, dropout: float = 0.0,
                 activation: str = "gelu", norm_first: bool = True, device=None, dtype=None):
        super().__init__()
        options = {"device": device, "dtype": dtype}
        self.arguments = {"vocab_size": vocab_size, "block_size": block_size, "d_model": d_model,
                          "nhead": nhead, "num_layers": num_layers,
                          "dim_feedforward": dim_feedforward or 4 * d_model, "dropout": dropout,
                          "activation": activation, "norm_first": norm_first}
        self.token_embedding = torch.nn.Embedding(vocab_size, d_model, **options)
        self.position_embedding = torch.nn.Embedding(block_size, d_model, **options)
        layer = torch.nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward or 4 * d_model, dropout, activation,
            batch_first=True, norm_first=norm_first, **options)
        # nested tensors are a fast path for padded batches, which we never have (and they
        # are off anyway with norm_first: this only silences torch's warning)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d_model, **options)
        self.head = torch.nn.Linear(d_model, vocab_size, **options)

    @classmethod
    def like(cls, model) -> TorchCharGPT:
        """The twin of a ``mini_dl.gpt.CharGPT``: same sizes, dtype, device, weights and mode."""
        weight = model.head.weight.data
        twin = cls(**model.config(), device=weight.device, dtype=weight.dtype)
        twin.load_state_dict(model.state_dict())
        return twin.train(model.training)

    def to_mini_dl(self):
        """The ``mini_dl.gpt.CharGPT`` with the same sizes, dtype, device, weights and mode."""
        from mini_dl.gpt import CharGPT

        weight = self.head.weight
        model = CharGPT(**self.arguments, device=weight.device, dtype=weight.dtype)
        model.load_state_dict(self.state_dict())
        return model.train(self.training)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``CharGPT.generate`` written with torch's own softmax: ``max_new_tokens`` characters
        drawn by ``torch.multinomial`` from ``generator``, one at a time."""
        block_size = self.arguments["block_size"]
        for _ in range(max_new_tokens):
            logits = self(idx[:, -block_size:])[:, -1, :] / temperature
            next_index = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
            idx = torch.cat([idx, next_index.to(idx.dtype)], dim=1)
        return idx

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        length = idx.shape[1]
        positions = torch.arange(length, device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(positions)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(
            length, device=idx.device, dtype=x.dtype)
        return self.head(self.norm(self.encoder(x, mask=mask, is_causal=True)))


# -- the benchmark: one AdamW training step, mini_dl against torch.nn + autograd + torch.optim --

@dataclass(frozen=True)
class GPTCase:
    """The issue's character model for ``benchmarks/run.py --case gpt``: 2 pre-norm layers,
    d_model 128, 4 heads, feed-forward 512, GELU, context 64, vocabulary 96, batch 32, AdamW
    (lr 1e-3, weight decay 0.01) on cross-entropy over the (B * T, V) logits; random windows of
    the Python reference manual (``mini_dl.text``)."""

    name: str = "gpt"
    label: str = "character GPT, 2 pre-norm layers, d_model 128, context 64, AdamW"
    vocab_size: int = 96
    block_size: int = 64
    d_model: int = 128
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int = 512
    lr: float = 1e-3
    batch_size: int = 32
    sweep_sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128)

    def model(self, seed: int = 0):
        from mini_dl.gpt import CharGPT

        torch.manual_seed(seed)
        return CharGPT(self.vocab_size, self.block_size, self.d_model, self.nhead,
                       self.num_layers, self.dim_feedforward)

    def batches(self, batch_size: int, count: int, *, seed: int = 0, device="cpu",
                dtype=torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``count`` batches ``(x, y)`` of windows of the manual and their next characters
        (``dtype`` is the model's: indices stay int64)."""
        from mini_dl import text

        codes = _corpus_codes()
        generator = torch.Generator().manual_seed(seed)
        return [tuple(t.to(device) for t in text.batch(codes, batch_size, self.block_size,
                                                       generator)) for _ in range(count)]


GPT_CASE = GPTCase()


@functools.cache
def _corpus_codes() -> torch.Tensor:
    """The manual, encoded once per process (each benchmark call draws its batches from it)."""
    from mini_dl import text

    return text.encode(text.load_text())


def training_step(framework: str, case: GPTCase, reference, *, input_grad: bool = False,
                  rules: str | None = None) -> tuple:
    """``(model, step)`` as ``torch_twin.benchmark.training_step``, for the character GPT with
    AdamW: a copy of ``reference`` (a CharGPT) or its torch twin, and ``step(x, y)``. The input
    is indices: neither framework computes an input gradient (``input_grad`` is ignored)."""
    import mini_dl as dl
    from torch_twin.benchmark import RULES

    if rules not in RULES:
        raise ValueError(f"training_step: rules must be one of {list(RULES)}, got {rules!r}")
    vocab = case.vocab_size
    if framework == "torch":
        model, criterion = TorchCharGPT.like(reference), torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.AdamW(model.parameters(), lr=case.lr)
        keep = rules == "mini_dl"

        def step(x, y):
            optimizer.zero_grad(set_to_none=not keep)
            criterion(model(x).view(-1, vocab), y.reshape(-1)).backward(retain_graph=keep)
            optimizer.step()
    else:
        model, criterion = copy.deepcopy(reference), dl.CrossEntropyLoss()
        optimizer = dl.AdamW(model.parameters(), lr=case.lr)
        release = rules == "torch"
        model.retain_caches(not release)
        criterion.retain_caches(not release)

        def step(x, y):
            optimizer.zero_grad(set_to_none=release)
            criterion(model(x).view(-1, vocab), y.reshape(-1))
            model.backward(criterion.backward().view(*y.shape, vocab))
            optimizer.step()
    return model, step


def compare(case: GPTCase, batch_size: int | None = None, *, reps: int = 15,
            steps: int | None = None, block_seconds: float = 0.2, warmup: int = 3,
            device="cpu", dtype=torch.float32, input_grad: bool = False,
            rules: str | None = None) -> dict:
    """``torch_twin.benchmark.compare`` for the character GPT: the same warm-up and parity
    check, alternating timed blocks, and summary."""
    from torch_twin import benchmark, max_parameter_difference

    batch_size = batch_size or case.batch_size
    device = torch.device(device)
    reference = case.model().to(device=device, dtype=dtype)
    models, sides = {}, {}
    for name in ("mini_dl", "torch"):
        models[name], sides[name] = training_step(name, case, reference, rules=rules)
    batches = case.batches(batch_size, 4, device=device)
    warm = {name: benchmark.seconds_per_step(step, batches, warmup, device)
            for name, step in sides.items()}
    difference = max_parameter_difference(models["mini_dl"], models["torch"])
    if not difference <= benchmark.PARITY_TOLERANCE:
        raise RuntimeError(f"benchmark {case.name}: mini_dl and torch parameters differ by "
                           f"{difference:.1e} > {benchmark.PARITY_TOLERANCE:.0e}")
    steps = steps or max(1, round(block_seconds / max(warm.values())))
    times = benchmark._alternate(
        lambda name: benchmark.seconds_per_step(sides[name], batches, steps, device), reps)
    return {"case": case.name, "batch_size": batch_size, "device": str(device),
            "dtype": str(dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
            "input_grad": input_grad, "rules": rules, "reps": reps, "steps": steps,
            "parity_max_parameter_difference": difference, **benchmark._summary(times)}


def peak_memory(case: GPTCase, framework: str, batch_size: int | None = None, *, device="cpu",
                dtype=torch.float32, input_grad: bool = False, rules: str | None = None) -> int:
    """``torch_twin.benchmark.peak_memory`` for the character GPT: peak bytes of tensor memory
    while a model is built and trained two steps on one batch, plus the batch."""
    from torch_twin import benchmark

    batch_size = batch_size or case.batch_size
    device = torch.device(device)
    reference = case.model().to(device=device, dtype=dtype)
    x, y = case.batches(batch_size, 1, device=device)[0]

    def build_and_train():
        _, step = training_step(framework, case, reference, rules=rules)
        step(x, y)
        step(x, y)

    return benchmark.peak_allocated(build_and_train, device) + x.nbytes + y.nbytes
