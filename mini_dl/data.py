"""Data: the disk data set of the reports, one-hot targets, and a seeded mini-batch iterator."""
from __future__ import annotations

import math

import torch
import torch.distributed

from .module import check_size

DISK_RADIUS = 1 / math.sqrt(2 * math.pi)  # the disk covers half of the unit square


def disk_dataset(n: int, *, seed: int = 0, low: float = 0.0, high: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points uniform in ``[low, high]^2``; label 1 inside the disk of radius
    ``1/sqrt(2 pi)`` centred in the square, else 0.

    On ``[0, 1]^2`` the disk has area 1/2, so the classes are balanced in expectation; on the
    ``[-1, 1]^2`` variant it covers 1/8 of the square.

    Returns ``(x, labels)``: ``x`` of shape ``(n, 2)`` and integer ``labels`` of shape ``(n,)``.

    Example:
        >>> x, labels = disk_dataset(1000, seed=0)
        >>> x.shape, labels.dtype, round(labels.float().mean().item(), 1)
        (torch.Size([1000, 2]), torch.int64, 0.5)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"disk_dataset: n must be a positive int, got {n!r}")
    if not high > low:
        raise ValueError(f"disk_dataset: need low < high, got low={low}, high={high}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=generator, dtype=torch.float64) * (high - low) + low
    centre = (low + high) / 2
    labels = ((x - centre).square().sum(1) < DISK_RADIUS ** 2).long()
    return x.to(dtype), labels


def one_hot(labels: torch.Tensor, num_classes: int | None = None, *,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(N,)`` integer labels -> ``(N, C)`` rows with a 1 at each label and 0 elsewhere."""
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"one_hot: labels must be an integer tensor, got {labels!r:.60}")
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must have shape (N,), got {tuple(labels.shape)}")
    if num_classes is None:
        if labels.numel() == 0:
            raise ValueError("one_hot: cannot infer num_classes from empty labels; pass it")
        num_classes = int(labels.max()) + 1
    num_classes = check_size("one_hot", "num_classes", num_classes)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    out = torch.zeros(labels.shape[0], num_classes, dtype=dtype, device=labels.device)
    return out.scatter_(1, labels.long().unsqueeze(1), 1.0)


class MiniBatches:
    """Iterate over ``(x[i], y[i], ...)`` mini-batches; each pass (epoch) reshuffles from its own
    seeded generator, so two iterators with the same seed give the same batches.

    Sharding, for data-parallel training (``num_replicas`` processes, this one of rank
    ``rank``), exactly as ``torch.utils.data.DistributedSampler`` (without ``drop_last``): each
    epoch's permutation of the n samples (the same on every rank: every rank's generator starts
    from the same ``seed`` and draws one permutation per epoch) is padded, by repeating its
    start, to a multiple of ``num_replicas``, and rank r takes positions r, r + num_replicas,
    ...: ``ceil(n / num_replicas)`` samples per rank, every sample seen by exactly one rank
    (the few padding samples by two), batched by ``batch_size`` (a per-rank batch size, as a
    DataLoader's over a DistributedSampler). ``num_replicas=None`` and ``rank=None`` (the
    defaults) are read from ``torch.distributed`` when it is initialised, as
    DistributedSampler does, and are 1 and 0 otherwise (no sharding: the single-process
    batches, unchanged). ``num_replicas=1`` keeps the whole data set in every process.

    Example:
        >>> import torch
        >>> batches = MiniBatches(torch.arange(5.0), torch.arange(5), batch_size=2, seed=0)
        >>> len(batches), [xb.tolist() for xb, _ in batches]
        (3, [[4.0, 0.0], [1.0, 3.0], [2.0]])
        >>> shards = [MiniBatches(torch.arange(5.0), batch_size=2, seed=0, num_replicas=2, rank=r)
        ...           for r in (0, 1)]  # permutation 4 0 1 3 2, padded with 4
        >>> [[xb.tolist() for xb, in shard] for shard in shards]
        [[[4.0, 1.0], [2.0]], [[0.0, 3.0], [4.0]]]
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
                 seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        if not tensors or any(not isinstance(t, torch.Tensor) for t in tensors):
            raise TypeError("MiniBatches: expected one or more tensors")
        n = tensors[0].shape[0] if tensors[0].ndim else 0
        if any(t.ndim == 0 or t.shape[0] != n for t in tensors):
            raise ValueError(f"MiniBatches: tensors must share their first dimension, got shapes "
                             f"{[tuple(t.shape) for t in tensors]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"MiniBatches: batch_size must be a positive int, got {batch_size!r}")
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def num_samples(self) -> int:
        """The samples this rank sees per epoch: ``ceil(n / num_replicas)``."""
        return math.ceil(self.tensors[0].shape[0] / self.num_replicas)

    def __iter__(self):
        n = self.tensors[0].shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.num_replicas > 1 and n:  # DistributedSampler: pad with the start, then every p-th
            total = self.num_samples * self.num_replicas
            order = order.repeat(math.ceil(total / n))[:total][self.rank::self.num_replicas]
        for start in range(0, order.shape[0], self.batch_size):
            index = order[start:start + self.batch_size].to(self.tensors[0].device)
            # index_select: the same rows as t[index], without advanced indexing's general path
            # (4-5 times faster for MNIST-size rows here)
            yield tuple(t.index_select(0, index) for t in self.tensors)


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``(num_replicas, rank)``, each None read from torch.distributed when it is initialised
    (else 1 and 0), checked: 0 <= rank < num_replicas."""
    initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    if num_replicas is None:
        num_replicas = torch.distributed.get_world_size() if initialised else 1
    if rank is None:
        rank = torch.distributed.get_rank() if initialised else 0
    for name, value in (("num_replicas", num_replicas), ("rank", rank)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"MiniBatches: {name} must be an int or None, got {value!r}")
    if num_replicas <= 0 or not 0 <= rank < num_replicas:
        raise ValueError(f"MiniBatches: need num_replicas >= 1 and 0 <= rank < num_replicas, "
                         f"got num_replicas={num_replicas}, rank={rank}")
    return num_replicas, rank
