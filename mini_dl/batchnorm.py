r"""Batch normalisation, as ``torch.nn.BatchNorm1d`` and ``torch.nn.BatchNorm2d``.

Both normalise each channel over every axis but the channel one, with batch statistics in
training and running statistics in eval; they differ only in the input ranks they accept. The
algebra (normalise over some axes, and its backward) is shared with layer and group norm in
:mod:`mini_dl.normalization`.
"""
from __future__ import annotations

import torch

from .module import Module, Parameter, check_size, check_tensor, detached
from .normalization import _accumulate, _affine, _normalize, _normalize_backward

CHANNEL = (1, -1, 1)  # a per-channel vector viewed against the (N, C, L) view of the input
REDUCED = (0, 2)  # the axes a channel's statistics run over in that view: examples, positions


class _BatchNorm(Module):
    r"""What BatchNorm1d and BatchNorm2d share (``torch.nn.modules.batchnorm._BatchNorm``).

    The input is viewed as ``(N, C, L)`` (L = 1 for ``(N, C)``, H*W for images); each channel's
    statistics run over its n = N * L values. Registration order, as torch: ``weight``,
    ``bias`` (when ``affine``), then the buffers ``running_mean``, ``running_var``,
    ``num_batches_tracked`` (None when ``track_running_stats=False``).
    """

    _ranks: tuple[int, ...] = ()  # the input ranks accepted, and how to say so
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features = check_size(type(self).__name__, "num_features", num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        options = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.ones(num_features, **options)) if affine else None
        self.bias = Parameter(torch.zeros(num_features, **options)) if affine and bias else None
        tracked = track_running_stats
        self.register_buffer("running_mean",
                             torch.zeros(num_features, **options) if tracked else None)
        self.register_buffer("running_var",
                             torch.ones(num_features, **options) if tracked else None)
        self.register_buffer("num_batches_tracked", torch.tensor(
            0, dtype=torch.long, device=device) if tracked else None)
        self.x_hat = self.inv_std = self.input_shape = None
        self.batch_statistics = True  # set by every forward: which statistics it used

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0 (as torch)."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, then weight = 1 and bias = 0 (no random draws)."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data.fill_(1)
            self.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        like = self.weight.data if self.affine else self.running_mean
        x = check_tensor(self, "input", x, like=like)
        if x.ndim not in self._ranks:
            raise ValueError(f"{name}: input must be {self._layout}, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input must have {self.num_features} channels "
                             f"(num_features) in dimension 1, got shape {tuple(x.shape)}")
        self.input_shape = x.shape
        values = x.reshape(x.shape[0], self.num_features, -1)  # (N, C, L)
        # as torch: batch statistics in training, and always without running statistics
        self.batch_statistics = self.training or self.running_mean is None
        if self.eps < 0 or (self.batch_statistics and self.eps <= 0):  # as torch
            raise ValueError(f"{name}: eps must be positive with batch statistics and "
                             f"non-negative with running ones, got eps={self.eps}")
        if self.batch_statistics:
            n = values.shape[0] * values.shape[2]
            if n == 1:
                raise ValueError(f"{name}: expected more than 1 value per channel when "
                                 f"training, got input of shape {tuple(x.shape)}")
            x_hat, mean, var, inv_std, spare = _normalize(values, REDUCED, self.eps)
            if self.training and self.track_running_stats:
                self._update_running_stats(detached(mean).view(-1), detached(var).view(-1), n)
        else:  # x_hat = x * inv_std - mean * inv_std: two passes
            inv_std = (self.running_var + self.eps).rsqrt().view(CHANNEL)
            x_hat = (values * inv_std).sub_(self.running_mean.view(CHANNEL) * inv_std)
            spare = None
        self.x_hat, self.inv_std = detached(x_hat), detached(inv_std)  # the cache: no graph
        return _affine(x_hat, self.weight, self.bias, CHANNEL, out=spare).view(x.shape)

    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        """running = (1 - f) running + f batch, with f = momentum (or 1/num_batches_tracked
        when momentum is None: the cumulative average) and the unbiased variance n/(n-1) var."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum
        if factor is None:
            factor = 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(var, alpha=factor * n / (n - 1))

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        x_hat, inv_std = self.saved("x_hat"), self.saved("inv_std")
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=self.input_shape, like=x_hat))
        grad = grad_output.reshape(x_hat.shape)  # (N, C, L)
        weight = self.weight.data.view(CHANNEL) if self.affine else None
        spare = None
        if self.affine or self.batch_statistics:
            spare = grad * x_hat  # then free for the input gradient: one allocation less
            sum_grad = grad.sum(REDUCED)  # dL/dbias = sum G
            sum_grad_x_hat = spare.sum(REDUCED)  # dL/dweight = sum G x_hat
            _accumulate(self.bias, sum_grad)
            _accumulate(self.weight, sum_grad_x_hat)
        if not self.needs_input_grad:
            return None
        if not self.batch_statistics:  # eval: x_hat is affine in x, per channel
            grad_input = torch.mul(grad, inv_std if weight is None else inv_std * weight,
                                   out=spare)
        else:  # weight is constant over REDUCED: sum(G_hat) = weight sum(G), and so on
            sums = [s.view(CHANNEL) if weight is None else s.view(CHANNEL) * weight
                    for s in (sum_grad, sum_grad_x_hat)]
            grad_input = _normalize_backward(grad, x_hat, inv_std, REDUCED, weight, sums,
                                             out=spare)
        return grad_input.view(self.input_shape)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over a batch of vectors ``(N, C)`` or sequences ``(N, C, L)``, as
    ``torch.nn.BatchNorm1d``. Channel c is normalised over its n = N (or N * L) values::

        x_hat = (x - mean_c) / sqrt(var_c + eps),    y = x_hat * weight_c + bias_c

    Training (or ``track_running_stats=False``): the batch's mean and biased variance, and
    (when tracked) ``running = (1 - momentum) * running + momentum * batch`` with the
    *unbiased* variance n/(n-1) var_c, ``num_batches_tracked += 1``; ``momentum=None`` uses
    the factor 1/num_batches_tracked (a cumulative average). Eval: running_mean, running_var.

    Arguments: ``num_features`` (C), ``eps``, ``momentum``, ``affine`` (learned ``weight``,
    ones, and ``bias``, zeros, of shape (C,)), ``track_running_stats``, ``device``, ``dtype``,
    and keyword-only ``bias`` (False: no bias even when affine; torch 2.13's argument).

    Backward, with G = dL/dy and G_hat = G * weight, sums over a channel's n values::

        training: dL/dx = inv_std / n * (n G_hat - sum(G_hat) - x_hat * sum(G_hat * x_hat))
        eval:     dL/dx = G * weight * inv_std     (running statistics are constants)
        dL/dweight = sum G * x_hat   (C,),         dL/dbias = sum G   (C,)

    Shape:
        Input ``(N, C)`` or ``(N, C, L)``, output the same.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.BatchNorm1d(2)
        >>> layer(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))
        tensor([[-1.0000, -1.0000],
                [ 1.0000,  1.0000]])
        >>> layer.running_mean, layer.running_var, layer.num_batches_tracked
        (tensor([0.2000, 2.0000]), tensor([ 1.1000, 20.9000]), tensor(1))
    """

    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over a batch of images ``(N, C, H, W)``, as ``torch.nn.BatchNorm2d``:
    channel c is normalised over its n = N * H * W values (all examples and all positions,
    which is what a convolution shares its weights over)::

        x_hat = (x - mean_c) / sqrt(var_c + eps),    y = x_hat * weight_c + bias_c

    Training (or ``track_running_stats=False``): the batch's mean and biased variance, and
    (when tracked) ``running = (1 - momentum) * running + momentum * batch`` with the
    *unbiased* variance n/(n-1) var_c, ``num_batches_tracked += 1``; ``momentum=None`` uses
    the factor 1/num_batches_tracked (a cumulative average). Eval: running_mean, running_var.

    Arguments: as :class:`BatchNorm1d`.

    Backward, with G = dL/dy and G_hat = G * weight, sums over (N, H, W)::

        training: dL/dx = inv_std / n * (n G_hat - sum(G_hat) - x_hat * sum(G_hat * x_hat))
        eval:     dL/dx = G * weight * inv_std
        dL/dweight = sum G * x_hat   (C,),         dL/dbias = sum G   (C,)

    Shape:
        Input ``(N, C, H, W)``, output the same.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.BatchNorm2d(3)
        >>> y = layer(torch.randn(8, 3, 4, 4) * 5 + 2)
        >>> print(y.mean((0, 2, 3)).abs().max().item() < 1e-6, layer.num_batches_tracked.item())
        True 1
        >>> layer.backward(torch.ones_like(y)).abs().max().item() < 1e-6  # shift-invariant
        True
        >>> layer
        BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


class SyncBatchNorm(_BatchNorm):
    r"""Batch normalisation whose training statistics run over the whole batch of every rank
    of a process group, as ``torch.nn.SyncBatchNorm`` (input ``(N, C, *)``). Rank r holds
    n_r of channel c's values; one ``all_reduce`` of ``(sum x, sum x^2, n_r)`` per channel gives
    the global statistics, the unequal shards weighted by their counts::

        n = sum_r n_r,  mean = (sum_r sum x) / n,  var = (sum_r sum x^2) / n - mean^2
        x_hat = (x - mean) / sqrt(var + eps),       y = x_hat * weight + bias

    and the running statistics (same on every rank) take the global unbiased n/(n-1) var.
    (One reduction, but ``E[x^2] - mean^2`` cancels digits when ``|mean| >> std``, in
    float32 above all; torch gathers each rank's mean and variance instead.)

    Backward: x_hat depends on every rank's x through mean and var, so the input gradient of
    the single-process batch norm, ``inv_std / n * (n G_hat - sum(G_hat) - x_hat *
    sum(G_hat * x_hat))`` with G_hat = G * weight, needs its two sums over the *global* batch:
    d mean / d x_i = 1/n and d var / d x_i = 2 (x_i - mean) / n for every value i of every
    rank, so dL/dx_i = inv_std (G_hat_i - 1/n sum_j G_hat_j - x_hat_i/n sum_j G_hat_j x_hat_j),
    j over all ranks. Each rank computes its local ``sum(G)`` and ``sum(G * x_hat)`` (the
    weight is constant per channel: sum(G_hat) = weight sum(G)), one ``all_reduce`` sums them,
    and the formula above is applied with the global n. The parameter gradients stay local
    (``sum G * x_hat``, ``sum G`` over the rank's values): :class:`DistributedDataParallel`
    averages them with the other parameters'.

    In eval, or without an initialised process group, or in a group of one rank, it is
    :class:`BatchNorm1d`/``2d``'s computation. Arguments: as :class:`BatchNorm1d`, and
    ``process_group`` (None: the default group, as torch).

    Shape:
        Input ``(N, C, *)``, output the same.

    Example:
        >>> import torch, mini_dl as dl
        >>> layer = dl.SyncBatchNorm(2)   # no process group: batch norm
        >>> layer(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))
        tensor([[-1.0000, -1.0000],
                [ 1.0000,  1.0000]])
    """

    _ranks = (2, 3, 4, 5)
    _layout = "(N, C, *) with at least 2 dimensions"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group
        self.global_count = None  # n over all ranks, set by a synchronised forward

    def _synchronised(self) -> bool:
        """Batch statistics over a group of more than one rank."""
        distributed = torch.distributed
        return (self.training and distributed.is_available() and distributed.is_initialized()
                and distributed.get_world_size(self.process_group) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.global_count = None
        if not self._synchronised():
            return super().forward(x)
        like = self.weight.data if self.affine else self.running_mean
        x = check_tensor(self, "input", x, min_ndim=2, like=like)
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: input must have {self.num_features} channels "
                             f"(num_features) in dimension 1, got shape {tuple(x.shape)}")
        if self.eps <= 0:
            raise ValueError(f"SyncBatchNorm: eps must be positive with batch statistics, got "
                             f"eps={self.eps}")
        self.input_shape, self.batch_statistics = x.shape, True
        values = x.reshape(x.shape[0], self.num_features, -1)  # (N, C, L)
        local_count = values.shape[0] * values.shape[2]
        totals = torch.cat([values.sum(REDUCED), (values * values).sum(REDUCED),
                            values.new_full((1,), local_count)])
        torch.distributed.all_reduce(totals, group=self.process_group)
        n = round(totals[-1].item())
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all "
                             f"ranks when training, got {n} (input shape {tuple(x.shape)})")
        mean = totals[:self.num_features] / n
        var = totals[self.num_features:-1] / n - mean * mean
        if self.track_running_stats:
            self._update_running_stats(mean, var, n)
        inv_std = (var + self.eps).rsqrt().view(CHANNEL)
        x_hat = (values - mean.view(CHANNEL)).mul_(inv_std)
        self.x_hat, self.inv_std, self.global_count = x_hat, inv_std, n
        return _affine(x_hat, self.weight, self.bias, CHANNEL).view(x.shape)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        if self.global_count is None:  # the forward was not synchronised
            return super().backward(grad_output)
        x_hat, inv_std = self.saved("x_hat"), self.saved("inv_std")
        grad_output = detached(check_tensor(self, "grad_output", grad_output,
                                            shape=self.input_shape, like=x_hat))
        grad = grad_output.reshape(x_hat.shape)  # (N, C, L)
        local = torch.cat([grad.sum(REDUCED), (grad * x_hat).sum(REDUCED)])
        _accumulate(self.bias, local[:self.num_features].clone())
        _accumulate(self.weight, local[self.num_features:].clone())
        torch.distributed.all_reduce(local, group=self.process_group)  # every rank takes part
        if not self.needs_input_grad:
            return None
        # _normalize_backward divides by the local count: scale the global sums by local/global
        local.mul_(x_hat.shape[0] * x_hat.shape[2] / self.global_count)
        weight = self.weight.data.view(CHANNEL) if self.affine else None
        sums = [s.view(CHANNEL) if weight is None else s.view(CHANNEL) * weight
                for s in local.view(2, self.num_features)]
        return _normalize_backward(grad, x_hat, inv_std, REDUCED, weight, sums).view(
            self.input_shape)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm sharing its
        parameters and buffers (a BatchNorm itself is returned converted), as torch's."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group,
                            bias=module.bias is not None)
            for name in ("weight", "bias", "running_mean", "running_var",
                         "num_batches_tracked"):
                setattr(converted, name, getattr(module, name))
            converted.training = module.training
            return converted
        for name, child in list(module._modules.items()):
            setattr(module, name, cls.convert_sync_batchnorm(child, process_group))
        return module
