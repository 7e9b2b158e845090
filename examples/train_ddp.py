"""Data-parallel training of the digits CNN with mini_dl on torch.distributed.

Launch one process per CPU core (gloo) or per GPU (NCCL, ``--device cuda``) with torchrun::

    torchrun --standalone --nproc-per-node 2 examples/train_ddp.py
    torchrun --standalone --nproc-per-node 2 examples/train_ddp.py --device cuda --epochs 5

(``python examples/train_ddp.py`` runs it as a group of one.) Every process builds the same
model, which :class:`mini_dl.DistributedDataParallel` wraps: rank 0's initial weights are
broadcast, and after every backward the gradients are averaged over the processes.
:class:`mini_dl.MiniBatches` gives each process its shard of every epoch's permutation, of
``--batch-size`` / world-size examples per step, so that each step is one step on a batch of
``--batch-size`` examples, whatever the number of processes. Only rank 0 prints; ``--json PATH``
(rank 0) writes the history and the timing, for a scaling measurement.

The model and the data split are those of the chapter "A convolutional network on the digits"
(book/experiments_cnn.ipynb): 8x8 digits from scikit-learn, two conv-ReLU-pool blocks, 64-32-10.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import time

import torch
import torch.distributed as dist

import mini_dl as dl


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="weights and data order")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="the global batch: each of the p processes takes batch-size / p")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: gloo; cuda: NCCL, one GPU per process (LOCAL_RANK)")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="a SyncBatchNorm after each convolution")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--json", metavar="PATH", help="rank 0 writes history and timing here")
    return parser.parse_args()


def digits(device: torch.device):
    """The chapter's split: 1,347 training and 450 test images, standardised by the training
    pixels' mean and standard deviation."""
    from sklearn.datasets import load_digits  # here, not at the top: ddp_demo imports this file

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:450], order[450:]
    mean, std = images[train].mean(), images[train].std()
    return ((images[train] - mean) / std).to(device), labels[train].to(device), \
        ((images[test] - mean) / std).to(device), labels[test].to(device)


def make_model(seed: int, sync_batchnorm: bool) -> dl.Sequential:
    torch.manual_seed(seed)

    def block(in_channels, out_channels):
        return [dl.Conv2d(in_channels, out_channels, 3, padding=1),
                *([dl.SyncBatchNorm(out_channels)] if sync_batchnorm else []), dl.ReLU(),
                dl.MaxPool2d(2)]
    return dl.Sequential(*block(1, 6), *block(6, 16), dl.Flatten(), dl.Linear(64, 32),
                         dl.ReLU(), dl.Linear(32, 10))


def join_group(device: str) -> torch.device:
    """Join torchrun's process group (environment variables RANK, WORLD_SIZE, MASTER_ADDR...);
    started without torchrun, a group of one on a free local port."""
    if "WORLD_SIZE" not in os.environ:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
    if device == "cuda":
        local = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=local)
        return local
    dist.init_process_group("gloo")
    return torch.device("cpu")


def main() -> None:
    options = arguments()
    torch.set_num_threads(options.threads)
    device = join_group(options.device)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if options.batch_size % world_size:
        raise SystemExit(f"train_ddp: --batch-size {options.batch_size} is not divisible by "
                         f"the {world_size} processes")
    x_train, labels_train, x_test, labels_test = digits(device)
    model = dl.DistributedDataParallel(
        make_model(options.seed, options.sync_batchnorm).to(device))
    batches = dl.MiniBatches(x_train, labels_train, batch_size=options.batch_size // world_size,
                             seed=options.seed)  # this rank's shard (from the process group)
    optimizer = dl.SGD(model.parameters(), lr=options.lr, momentum=0.9)
    if rank == 0:
        print(f"{world_size} process(es), {dist.get_backend()}, {len(batches)} steps per epoch "
              f"of {options.batch_size} images ({batches.batch_size} per process)", flush=True)
    dist.barrier()  # time the training only, from a common start
    start = time.perf_counter()
    history = dl.fit(model, dl.CrossEntropyLoss(), optimizer, batches, epochs=options.epochs,
                     validation=(x_test, labels_test), progress=False)
    seconds = time.perf_counter() - start
    if rank != 0:
        return
    for epoch in range(options.epochs):
        print(f"epoch {epoch + 1}: train loss {history['train_loss'][epoch]:.4f}, "
              f"test accuracy {100 * history['val_accuracy'][epoch]:.2f}%")
    print(f"{seconds:.2f} s for {options.epochs} epoch(s)")
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"world_size": world_size, "backend": dist.get_backend(),
                       "epochs": options.epochs, "batch_size": options.batch_size,
                       "seconds": seconds, "seconds_per_epoch": seconds / options.epochs,
                       "threads_per_process": options.threads, "history": history}, file,
                      indent=1)


if __name__ == "__main__":
    try:
        main()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
