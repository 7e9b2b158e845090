"""A character-level GPT assembled from mini_dl's own modules: embeddings, causal transformer
layers, a final LayerNorm and a linear head, with its backward written as the chain rule
through them, and sampling from it.

Train it on the Python reference manual (``mini_dl.text``) from the command line
(``examples/train_gpt.py``)::

    python examples/train_gpt.py --steps 5000
    python examples/train_gpt.py --help
"""
from __future__ import annotations

import torch

from .activation import Softmax
from .layers import Linear
from .module import Module, check_size, check_tensor
from .normalization import LayerNorm
from .sparse import INDEX_DTYPES, Embedding
from .transformer import TransformerEncoder, TransformerEncoderLayer

INIT_STD = 0.02  # GPT-2's initialisation: weights N(0, 0.02^2), biases 0


class CharGPT(Module):
    r"""A decoder-only transformer over characters (GPT's architecture, small):

    .. math:: h_0 = E_{\mathrm{tok}}[i_{b,t}] + E_{\mathrm{pos}}[t], \qquad
              h_\ell = \mathrm{Block}_\ell(h_{\ell - 1}), \qquad
              z = \mathrm{LayerNorm}(h_L)\, W^\top + b

    for indices ``idx`` :math:`i` of shape (B, T), T <= ``block_size``. Each block is a
    :class:`~mini_dl.transformer.TransformerEncoderLayer` (``batch_first=True``, pre-norm by
    default) under the causal mask: position t attends to positions 0..t only, so the logits
    :math:`z_{b,t}` score the character that follows :math:`i_{b,0..t}`. Submodules, whose names
    are the state_dict keys (the same as ``torch_twin.gpt.TorchCharGPT``'s): ``token_embedding``
    (V, D), ``position_embedding`` (block_size, D), ``encoder`` (a
    :class:`~mini_dl.transformer.TransformerEncoder`), ``norm``, ``head`` (a Linear D -> V).
    Initialisation as GPT-2: every weight matrix and embedding drawn from N(0, 0.02^2), biases
    zero, LayerNorms ones and zeros (:meth:`reset_parameters`); so the layers start different,
    where torch's ``TransformerEncoder`` copies one layer ``num_layers`` times.

    Args:
        vocab_size: V, the number of characters.
        block_size: the longest context T the position table covers.
        d_model, nhead, num_layers: D, the heads per layer, the number of layers.
        dim_feedforward: the hidden width of each feed-forward network (default 4 D).
        dropout, activation, norm_first: as ``TransformerEncoderLayer`` (defaults 0, ``"gelu"``,
            True: GPT-2's pre-norm blocks).

    Backward, with G = dL/dz of shape (B, T, V), through the modules in reverse::

        G_L = encoder input gradient of norm.backward(head.backward(G))     (B, T, D)
        dL/dE_tok += scatter-add of G_L rows at idx   (token_embedding.backward(G_L))
        dL/dE_pos[t] += sum_b G_L[b, t]               (position_embedding.backward(G_L.sum(0)))
        dL/didx = None                                 (indices have no gradient)

    Shape:
        ``idx`` (B, T) int64 or int32 with 1 <= T <= block_size; logits (B, T, V).

    Example:
        >>> import torch
        >>> from mini_dl.gpt import CharGPT
        >>> _ = torch.manual_seed(0)
        >>> model = CharGPT(vocab_size=10, block_size=8, d_model=16, nhead=2, num_layers=1)
        >>> logits = model(torch.randint(0, 10, (2, 8)))
        >>> logits.shape
        torch.Size([2, 8, 10])
        >>> model.backward(torch.ones_like(logits)) is None, model.head.bias.grad[0].item()
        (True, 16.0)
        >>> model.generate(torch.zeros(1, 1, dtype=torch.int64), 5,
        ...                generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 6])
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int | None = None, dropout: float = 0.0,
                 activation: str = "gelu", norm_first: bool = True, device=None, dtype=None):
        super().__init__()
        self.vocab_size = check_size("CharGPT", "vocab_size", vocab_size)
        self.block_size = check_size("CharGPT", "block_size", block_size)
        self.d_model = check_size("CharGPT", "d_model", d_model)
        self.nhead = check_size("CharGPT", "nhead", nhead)
        self.num_layers = check_size("CharGPT", "num_layers", num_layers)
        self.dim_feedforward = check_size("CharGPT", "dim_feedforward",
                                          4 * d_model if dim_feedforward is None
                                          else dim_feedforward)
        self.dropout, self.activation, self.norm_first = dropout, activation, norm_first
        options = {"device": device, "dtype": dtype}
        self.token_embedding = Embedding(vocab_size, d_model, **options)
        self.position_embedding = Embedding(block_size, d_model, **options)
        layer = TransformerEncoderLayer(d_model, nhead, self.dim_feedforward, dropout,
                                        activation, batch_first=True, norm_first=norm_first,
                                        **options)
        self.encoder = TransformerEncoder(layer, num_layers)
        self.norm = LayerNorm(d_model, **options)
        self.head = Linear(d_model, vocab_size, **options)
        self.reset_parameters()
        self.input_shape = None

    def config(self) -> dict:
        """The constructor's arguments (sizes and options), e.g. to build a twin or a copy."""
        names = ("vocab_size", "block_size", "d_model", "nhead", "num_layers",
                 "dim_feedforward", "dropout", "activation", "norm_first")
        return {name: getattr(self, name) for name in names}

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """GPT-2's initialisation, in ``named_parameters`` order, from the global RNG or from
        ``generator``: LayerNorm weights 1, every bias 0, every other weight N(0, 0.02^2)."""
        norms = {id(m.weight) for _, m in self.named_modules() if isinstance(m, LayerNorm)}
        for name, parameter in self.named_parameters():
            if id(parameter) in norms:
                parameter.data.fill_(1.0)
            elif name.endswith("bias"):
                parameter.data.zero_()
            else:
                parameter.data.normal_(0.0, INIT_STD, generator=generator)

    def _check_indices(self, idx: object) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dtype not in INDEX_DTYPES:
            kind = idx.dtype if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise TypeError(f"CharGPT: idx must be a tensor of int64 or int32 character "
                            f"indices, got {kind}")
        if idx.ndim != 2 or not 1 <= idx.shape[1] <= self.block_size:
            raise ValueError(f"CharGPT: idx must have shape (B, T) with 1 <= T <= block_size "
                             f"({self.block_size}), got {tuple(idx.shape)}")
        return idx

    def causal_mask(self, length: int) -> torch.Tensor:
        """The (T, T) additive mask: 0 on and below the diagonal, -inf above (position t does
        not see t + 1, ...), as ``torch.nn.Transformer.generate_square_subsequent_mask``."""
        weight = self.head.weight.data
        return torch.full((length, length), float("-inf"), dtype=weight.dtype,
                          device=weight.device).triu_(1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = self._check_indices(idx)
        length = idx.shape[1]
        self.input_shape = tuple(idx.shape)
        positions = torch.arange(length, device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(positions)  # (B, T, D)
        hidden = self.encoder(x, mask=self.causal_mask(length), is_causal=True)
        return self.head(self.norm(hidden))

    def backward(self, grad_output: torch.Tensor) -> None:
        if self.input_shape is None:
            raise RuntimeError("CharGPT: backward called before forward")
        check_tensor(self, "grad_output", grad_output,
                     shape=(*self.input_shape, self.vocab_size), like=self.head.weight.data)
        grad = self.norm.backward(self.head.backward(grad_output))
        del grad_output  # (B, T, V): freed now, not held through the encoder's backward
        grad_hidden = self.encoder.backward(grad)
        self.token_embedding.backward(grad_hidden)
        self.position_embedding.backward(grad_hidden.sum(0))  # the indices: no gradient

    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``idx`` (B, T0) followed by ``max_new_tokens`` sampled characters, (B, T0 + n): each
        new character is drawn (``torch.multinomial`` from ``generator``, the global RNG if
        None) from softmax(z / temperature) of the last position's logits, given the last
        ``block_size`` characters. The model runs in the mode it is in: call ``eval()`` first if
        it has dropout. Each step overwrites the caches of the last forward."""
        self._check_indices(idx[:, -self.block_size:] if isinstance(idx, torch.Tensor)
                            and idx.ndim == 2 else idx)
        if not temperature > 0:
            raise ValueError(f"CharGPT.generate: temperature must be positive, got "
                             f"{temperature!r}")
        softmax = Softmax(dim=-1)
        for _ in range(max_new_tokens):
            logits = self.forward(idx[:, -self.block_size:])[:, -1, :]
            probabilities = softmax(logits / temperature)
            next_index = torch.multinomial(probabilities, 1, generator=generator)
            idx = torch.cat([idx, next_index.to(idx.dtype)], dim=1)
        return idx

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, "
                f"d_model={self.d_model}, nhead={self.nhead}, num_layers={self.num_layers}")


def validation_loss(model, codes: torch.Tensor, block_size: int, batches: int = 8,
                    batch_size: int = 32, seed: int = 1234) -> float:
    """Mean cross-entropy of ``model`` (any model mapping indices (B, T) to logits (B, T, V),
    the torch twin included) on ``batches`` seeded batches of ``codes`` (the same windows at
    every call: losses at different steps are comparable), in eval mode; the model's mode is
    restored afterwards."""
    from . import text
    from .loss import CrossEntropyLoss

    criterion, generator, training = CrossEntropyLoss(), torch.Generator().manual_seed(seed), \
        model.training
    model.eval()
    total = 0.0
    for _ in range(batches):
        x, y = text.batch(codes, batch_size, block_size, generator)
        logits = model(x)
        total += criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    model.train(training)
    return total / batches

