"""Lookup tables: Embedding (torch.nn keeps it in ``sparse.py`` too)."""
from __future__ import annotations

import torch

from .module import Module, Parameter, check_size, check_tensor, detached

INDEX_DTYPES = (torch.int64, torch.int32)  # the index types torch.nn.Embedding takes


class Embedding(Module):
    r"""A lookup table, as ``torch.nn.Embedding``: row :math:`i` of the weight
    :math:`W` ``(num_embeddings, embedding_dim)`` is the vector of index :math:`i`,

    .. math:: y_{\ldots, :} = W_{i_{\ldots}, :}
              \quad\text{i.e.}\quad y = \mathrm{onehot}(i)\, W

    for an integer tensor of indices :math:`i` of any shape. ``W`` is drawn from
    :math:`\mathcal N(0, 1)` (``normal_``, the same draws as torch), the ``padding_idx`` row then
    set to zero.

    Args:
        num_embeddings: the number of rows V (indices are 0 .. V - 1).
        embedding_dim: the size D of each vector.
        padding_idx: a row (negative: counted from the end, stored as ``V + padding_idx``, as
            torch) that starts at zero and gets no gradient.
        max_norm: if given, each row that the forward looks up and whose ``norm_type``-norm
            exceeds ``max_norm`` is scaled *in place*, outside the gradient, to norm
            ``max_norm`` (``W_i *= max_norm / (norm + 1e-7)``, torch's ``embedding_renorm_``);
            the output and the gradient then use the renormalised rows.
        norm_type: the p of the norm for ``max_norm``.
        scale_grad_by_freq: divide each gradient row by how often its index occurs in the input.
        sparse: refused (True): mini_dl's gradients are dense.
        _weight: an initial weight of shape ``(V, D)`` (shared, not copied, as torch).
        _freeze: refused (True): mini_dl has no frozen parameters (``requires_grad``).

    Backward, with G = dL/dy of shape ``(*, D)`` and c_k the count of index k in i::

        dL/dW = onehot(i)^T G    (V, D): for each position n, row i_n += G_n (index_add_),
                                 so repeated indices accumulate; with scale_grad_by_freq
                                 row i_n += G_n / c_{i_n}; row padding_idx gets nothing
        dL/di = None             (indices are integers: no gradient)

    Shape:
        Input ``(*)`` int64 or int32, any shape (0-dim included); output ``(*, embedding_dim)``.

    Example:
        >>> import torch, mini_dl as dl
        >>> _ = torch.manual_seed(0)
        >>> table = dl.Embedding(4, 2, padding_idx=0)
        >>> table
        Embedding(4, 2, padding_idx=0)
        >>> table(torch.tensor([[1, 0], [1, 3]])).shape
        torch.Size([2, 2, 2])
        >>> table.backward(torch.ones(2, 2, 2)) is None   # row 1 twice, row 0 padding
        True
        >>> table.weight.grad
        tensor([[0., 0.],
                [2., 2.],
                [0., 0.],
                [1., 1.]])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: torch.Tensor | None = None, _freeze: bool = False, device=None,
                 dtype=None):
        super().__init__()
        self.num_embeddings = check_size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = check_size("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
                raise TypeError(f"Embedding: padding_idx must be an int or None, got "
                                f"{padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [{-num_embeddings}, "
                                 f"{num_embeddings - 1}] (num_embeddings={num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings  # negative: from the end, stored as torch stores it
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"Embedding: max_norm must be positive or None, got {max_norm!r}")
        if sparse:
            raise ValueError("Embedding: sparse=True is not supported: mini_dl's gradients are "
                             "dense tensors (use sparse=False)")
        if _freeze:
            raise ValueError("Embedding: _freeze=True is not supported: mini_dl parameters "
                             "have no requires_grad (use _freeze=False)")
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        shape = (num_embeddings, embedding_dim)
        if _weight is None:
            self.weight = Parameter(torch.empty(shape, device=device, dtype=dtype))
            self.reset_parameters()
        else:
            check_tensor(self, "_weight", _weight, shape=shape)
            self.weight = Parameter(_weight)
        self.indices = None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W ~ N(0, 1) (from the global RNG, or from ``generator``), then the ``padding_idx``
        row set to zero, as ``torch.nn.Embedding``."""
        self.weight.data.normal_(0.0, 1.0, generator=generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx].zero_()

    def _check_indices(self, indices: object) -> torch.Tensor:
        if not isinstance(indices, torch.Tensor):
            raise TypeError(f"Embedding: input must be a torch.Tensor of int64 or int32 "
                            f"indices, got {type(indices).__name__}")
        weight = self.weight.data
        if indices.dtype not in INDEX_DTYPES:
            raise TypeError(f"Embedding: input must hold int64 or int32 indices, got dtype "
                            f"{indices.dtype}")
        if indices.device != weight.device:
            raise TypeError(f"Embedding: input must be on {weight.device} (the weight's "
                            f"device), got {indices.device}")
        if indices.device.type == "cpu" and indices.numel():  # elsewhere: no host sync
            low, high = indices.min().item(), indices.max().item()
            if low < 0 or high >= self.num_embeddings:
                raise IndexError(f"Embedding: indices must be in [0, {self.num_embeddings - 1}]"
                                 f" (num_embeddings={self.num_embeddings}), got "
                                 f"{low if low < 0 else high}")
        return indices

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        indices = detached(self._check_indices(indices))
        flat = indices.reshape(-1)
        if self.max_norm is not None:  # renormalise the looked-up rows in place (no gradient)
            rows = flat.unique()
            norms = torch.linalg.vector_norm(self.weight.data[rows], ord=self.norm_type, dim=1)
            scale = torch.where(norms > self.max_norm, self.max_norm / (norms + 1e-7), 1.0)
            self.weight.data[rows] *= scale.unsqueeze(1)
        self.indices = indices
        return self.weight.data.index_select(0, flat).reshape(*indices.shape,
                                                                self.embedding_dim)

    def backward(self, grad_output: torch.Tensor) -> None:
        indices = self.saved("indices")
        weight = self.weight.data
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=(*indices.shape, self.embedding_dim),
                                            like=weight))
        flat = indices.reshape(-1)
        grad_rows = grad_output.reshape(-1, self.embedding_dim)  # G_n, one row per position
        if self.scale_grad_by_freq:  # G_n / c_{i_n}, as torch: times the reciprocal count
            counts = torch.bincount(flat, minlength=self.num_embeddings)
            grad_rows = grad_rows * (1.0 / counts[flat].double()).to(weight.dtype).unsqueeze(1)
        grad_weight = torch.zeros_like(weight).index_add_(0, flat, grad_rows)  # onehot(i)^T G
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0  # the padding row gets no gradient
        self.weight.accumulate_grad(grad_weight)  # the indices get no gradient: returns None

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            text += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return text
