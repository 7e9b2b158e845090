r"""Data parallelism on ``torch.distributed``, as ``torch.nn.parallel.DistributedDataParallel``.

Each of the p processes (ranks) of a process group holds a replica of the model and one shard of
every mini-batch. If the loss is the mean over a batch of N = p * B examples and rank r sees the
B examples of its shard, the full batch's gradient is the mean of the ranks' gradients::

    dL/dtheta = 1/N sum_n dl_n/dtheta = 1/p sum_r (1/B sum_{n in shard r} dl_n/dtheta)

So after every backward, each rank all-reduces (sums over ranks) its parameter gradients and
divides by p: every replica then holds the same gradient, takes the same optimizer step, and
(having started from the same weights, broadcast from rank 0) keeps the same parameters.
The communication is torch.distributed's (gloo on CPUs, NCCL on GPUs); nothing here is home-made
but the bookkeeping.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator

import torch
import torch.distributed as dist

from .module import Module, Parameter


def _group_size(process_group, owner: str) -> int:
    """The world size of ``process_group`` (None: the default group); a clear error when
    ``torch.distributed`` is missing or no process group was initialised."""
    if not dist.is_available():
        raise RuntimeError(f"{owner}: this build of torch has no torch.distributed")
    if not dist.is_initialized():
        raise RuntimeError(f"{owner}: torch.distributed is not initialised: call "
                           "torch.distributed.init_process_group('gloo') (or 'nccl') first, "
                           "e.g. in a script launched by torchrun")
    return dist.get_world_size(process_group)


def _first_difference(signatures: list, ranks: range) -> str | None:
    """None if every rank's ``[(key, shape, dtype), ...]`` is rank 0's; else a message naming
    the first key where some rank differs, what rank 0 and that rank hold there."""
    reference = signatures[0]
    for rank in ranks[1:]:
        theirs = signatures[rank]
        if theirs == reference:
            continue
        for index in range(max(len(reference), len(theirs))):
            ours = reference[index] if index < len(reference) else None
            other = theirs[index] if index < len(theirs) else None
            if ours != other:
                def describe(entry):
                    if entry is None:
                        return "nothing (fewer entries)"
                    key, shape, dtype = entry
                    return f"{key!r} of shape {shape} and {dtype}"
                return (f"state_dict entry {index}: rank 0 holds {describe(ours)}, rank {rank} "
                        f"holds {describe(other)}")
    return None


class DistributedDataParallel(Module):
    r"""Data-parallel training of ``module`` over the ranks of a process group, as
    ``torch.nn.parallel.DistributedDataParallel``: every rank runs this wrapper on its own shard
    of each batch, and after each backward every rank's ``.grad`` is the mean over ranks::

        grad_r <- 1/p sum_{s=0}^{p-1} grad_s          (p = world size)

    which is the full batch's gradient when the loss is a mean over equal shards (for unequal
    shards, weight each rank's loss by its share of the batch, or use equal shards as
    :class:`~mini_dl.MiniBatches` with ``num_replicas`` gives them).

    Construction (a collective: every rank of the group must construct it, in the same order):

    1. every rank sends its ``[(key, shape, dtype), ...]`` of ``module.state_dict()`` to all
       (``all_gather_object``); a rank whose architecture differs from rank 0's makes every rank
       raise ``RuntimeError`` naming the first differing key, its shapes and the ranks;
    2. rank 0 broadcasts every parameter and buffer, so all replicas start identical.

    ``forward`` is the module's. ``backward(grad_output)`` runs the module's backward, then
    all-reduces the parameter gradients: they are flattened into buckets of at most
    ``bucket_cap_mb`` megabytes (one dtype and device per bucket; a larger parameter is a bucket
    of its own), filled in reverse registration order (the order backward produces them, as
    torch's buckets), one ``all_reduce`` of a flat buffer per bucket; the sums are divided by p
    and copied into each ``Parameter.grad``. A parameter that received no gradient on a rank
    contributes zeros there. Inside :meth:`no_sync` the all-reduce is skipped and gradients
    accumulate locally; the next backward outside it reduces the accumulated sums (gradient
    accumulation with one communication per accumulated batch).

    Unlike torch, which overlaps each bucket's all-reduce with the rest of the backward pass
    (autograd hooks), mini_dl reduces after the module's backward has returned: the same
    numbers, without the overlap. Buffers (running statistics) are broadcast once, at
    construction; torch also re-broadcasts them from rank 0 before every forward
    (``broadcast_buffers=True``): use :class:`~mini_dl.SyncBatchNorm` to keep batch statistics
    consistent across ranks.

    ``state_dict()`` and ``load_state_dict()`` are the wrapped module's, under its own keys
    (``"0.weight"``, not torch's ``"module.0.weight"``): a checkpoint written under DDP loads
    into the plain model and back, with no prefix to strip. ``named_parameters()`` and
    ``named_modules()`` see the wrapper as torch does (``module.0.weight``).

    Arguments: ``module`` (a mini_dl Module, already on its device and dtype), keyword-only
    ``process_group`` (None: the default group of ``init_process_group``), ``bucket_cap_mb``
    (25, torch's default).

    Shape:
        Those of ``module``.
    """

    def __init__(self, module: Module, *, process_group=None, bucket_cap_mb: float = 25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a mini_dl Module, got "
                            f"{type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, "
                             f"got {bucket_cap_mb!r}")
        self.world_size = _group_size(process_group, "DistributedDataParallel")
        self.process_group = process_group
        self.bucket_cap_mb = bucket_cap_mb
        self.module = module
        self.require_backward_grad_sync = True  # False inside no_sync()
        self._check_same_architecture()
        self._broadcast_state()
        self.buckets = self._make_buckets()

    # -- construction: same architecture everywhere, then rank 0's values ----------------------
    def _check_same_architecture(self) -> None:
        signature = [(key, tuple(value.shape), str(value.dtype))
                     for key, value in self.module.state_dict().items()]
        signatures = [None] * self.world_size
        dist.all_gather_object(signatures, signature, group=self.process_group)
        problem = _first_difference(signatures, range(self.world_size))
        if problem is not None:
            raise RuntimeError(f"DistributedDataParallel: the ranks hold different models "
                               f"(every rank must build the same architecture): {problem}")

    def _broadcast_state(self) -> None:
        source = dist.get_global_rank(self.process_group, 0) if self.process_group is not None \
            else 0
        for value in self.module.state_dict().values():
            buffer = value if value.is_contiguous() else value.contiguous()
            dist.broadcast(buffer, src=source, group=self.process_group)
            if buffer is not value:
                value.copy_(buffer)

    def _make_buckets(self) -> list[list[Parameter]]:
        """The parameters in reverse registration order, cut into consecutive buckets of at most
        ``bucket_cap_mb`` megabytes (2**20 bytes) that share a dtype and a device."""
        cap = self.bucket_cap_mb * 2 ** 20
        buckets, size = [], 0
        for parameter in reversed(list(self.module.parameters())):
            data = parameter.data
            nbytes = data.numel() * data.element_size()
            if not buckets or size + nbytes > cap or (
                    buckets[-1][0].data.dtype, buckets[-1][0].data.device) != (data.dtype,
                                                                               data.device):
                buckets.append([])
                size = 0
            buckets[-1].append(parameter)
            size += nbytes
        return buckets

    # -- the contract ------------------------------------------------------------------------
    def forward(self, *inputs, **options):
        return self.module.forward(*inputs, **options)

    def backward(self, *grad_outputs):
        grad_input = self.module.backward(*grad_outputs)
        if self.require_backward_grad_sync:
            self.reduce_gradients()
        return grad_input

    def reduce_gradients(self) -> None:
        """Replace every parameter's gradient by its mean over the ranks (``backward`` calls it
        outside :meth:`no_sync`), one ``all_reduce`` per bucket."""
        for index, bucket in enumerate(self.buckets):
            flat = torch.cat([self._local_grad(p).reshape(-1) for p in bucket])
            try:
                dist.all_reduce(flat, group=self.process_group)
            except RuntimeError as error:  # gloo and NCCL errors (DistBackendError) included
                raise RuntimeError(
                    f"DistributedDataParallel: the all-reduce of gradient bucket {index} failed "
                    f"on rank {dist.get_rank()} of {self.world_size}: another rank died, or "
                    f"did not reach this backward within the process group's timeout "
                    f"({error})") from error
            flat.div_(self.world_size)
            for parameter, mean in zip(bucket, flat.split([p.data.numel() for p in bucket])):
                parameter.grad.copy_(mean.view(parameter.data.shape))

    @staticmethod
    def _local_grad(parameter: Parameter) -> torch.Tensor:
        """The rank's gradient (zeros after a lazy zero_grad, read through ``grad``); a
        gradient left None by ``zero_grad(set_to_none=True)`` becomes a zero tensor, written
        over by the mean."""
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter.data)
        return parameter.grad

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside ``with ddp.no_sync():`` backward accumulates gradients locally, without
        communication; the first backward after it all-reduces the accumulated gradients."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- state_dict: the wrapped module's own keys -------------------------------------------
    def state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """The wrapped module's state_dict, under its own keys (no ``module.`` prefix)."""
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> DistributedDataParallel:
        """Load into the wrapped module (keys without a ``module.`` prefix); every rank loads."""
        self.module.load_state_dict(state_dict, strict=strict)
        return self

    def _state_items(self, prefix: str):
        return self.module._state_items(prefix)

    def extra_repr(self) -> str:
        return f"world_size={self.world_size}, bucket_cap_mb={self.bucket_cap_mb}"

    def __repr__(self) -> str:
        inner = repr(self.module).replace("\n", "\n  ")
        return f"DistributedDataParallel({self.extra_repr()},\n  (module): {inner}\n)"
