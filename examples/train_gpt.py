"""Train mini_dl's character-level GPT (``mini_dl.CharGPT``, the chapter "Experiment: a
character-level GPT") on the Python reference manual (``mini_dl.text``) with AdamW, printing the
validation loss and a sample as it goes::

    OMP_NUM_THREADS=1 python examples/train_gpt.py --steps 2000 --every 250
    python examples/train_gpt.py --help
"""
from __future__ import annotations

import argparse
import math

import torch

import mini_dl as dl
from mini_dl import text
from mini_dl.gpt import validation_loss


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python examples/train_gpt.py",
        description="Train CharGPT on the Python reference manual (pydoc_data.topics) with "
                    "AdamW, printing the validation loss and a sample as it goes.")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (2000)")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per step (32)")
    parser.add_argument("--block-size", type=int, default=64, help="context length (64)")
    parser.add_argument("--d-model", type=int, default=128, help="model width (128)")
    parser.add_argument("--nhead", type=int, default=4, help="attention heads (4)")
    parser.add_argument("--num-layers", type=int, default=2, help="transformer layers (2)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout (0)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (1e-3)")
    parser.add_argument("--every", type=int, default=500, help="report every N steps (500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batches (0)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--save", metavar="PATH", help="save a checkpoint there at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dl.CharGPT:
    """The command line: train, report, sample; returns the trained model."""

    args = _parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_codes, val_codes = text.split(text.encode(text.load_text()))
    model = dl.CharGPT(text.VOCAB_SIZE, args.block_size, args.d_model, args.nhead,
                    args.num_layers, dropout=args.dropout)
    criterion, optimizer = dl.CrossEntropyLoss(), dl.AdamW(model.parameters(), lr=args.lr)
    batches = torch.Generator().manual_seed(args.seed)
    print(f"{sum(p.data.numel() for p in model.parameters()):,} parameters; "
          f"{len(train_codes):,} training characters; loss of a uniform guess "
          f"{math.log(text.VOCAB_SIZE):.3f}")
    for step in range(1, args.steps + 1):
        x, y = text.batch(train_codes, args.batch_size, args.block_size, batches)
        optimizer.zero_grad()
        loss = criterion(model(x).reshape(-1, text.VOCAB_SIZE), y.reshape(-1))
        model.backward(criterion.backward().reshape(*y.shape, text.VOCAB_SIZE))
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            print(f"step {step}: train loss {loss.item():.3f}, validation loss "
                  f"{validation_loss(model, val_codes, args.block_size):.3f}")
    model.eval()
    prompt = text.encode("The ").reshape(1, -1)
    sample = model.generate(prompt, 300, generator=torch.Generator().manual_seed(args.seed))
    print(text.decode(sample[0]))
    if args.save:
        dl.save_checkpoint(args.save, model, optimizer, extra={"steps": args.steps})
        print(f"checkpoint written to {args.save}")
    return model


if __name__ == "__main__":
    main()
