"""Text for a character-level language model: the corpus that ships with Python, its characters
as integers, and seeded random batches of context windows.

The corpus is ``pydoc_data.topics.topics``, the Python reference manual's help topics (what
``help("for")`` prints), about 465,000 characters of English prose and code, offline. Its
text depends on the Python version (3.11.7 here): nothing below assumes its exact length.

The vocabulary is fixed, not read off the text: the newline and the 95 printable ASCII
characters, 96 in all. The few typographic characters of the manual become their ASCII
equivalents (curly quotes, dashes, the ellipsis); any other character becomes ``?``.

Example:
    >>> import torch
    >>> from mini_dl import text
    >>> codes = text.encode("for x in y:")
    >>> codes[:3].tolist(), text.decode(codes)
    ([71, 80, 83], 'for x in y:')
    >>> x, y = text.batch(codes, batch_size=2, block_size=4,
    ...                   generator=torch.Generator().manual_seed(0))
    >>> x.shape, text.decode(x[0][1:]) == text.decode(y[0][:-1])   # y is x shifted by one
    (torch.Size([2, 4]), True)
"""
from __future__ import annotations

import torch

CHARACTERS = "\n" + "".join(chr(code) for code in range(32, 127))  # newline, printable ASCII
VOCAB_SIZE = len(CHARACTERS)  # 96
UNKNOWN = "?"  # what a character outside the vocabulary becomes
# the manual's typographic characters, as ASCII (str.translate: one character to a string)
TO_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                          "\u2013": "-", "\u2014": "--", "\u2026": "...", "\u00b0": " degrees",
                          "\u00df": "ss"})
_INDEX = {character: index for index, character in enumerate(CHARACTERS)}


def load_text() -> str:
    """The help topics of ``pydoc_data.topics``, in sorted order of their names, joined into one
    string, typographic characters as ASCII (``TO_ASCII``). Deterministic for one Python
    version."""
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    return "".join(topics[name] for name in sorted(topics)).translate(TO_ASCII)


def encode(string: str) -> torch.Tensor:
    """The int64 indices of ``string``'s characters in ``CHARACTERS``; a character outside the
    vocabulary is encoded as ``UNKNOWN``."""
    if not isinstance(string, str):
        raise TypeError(f"text.encode: expected a str, got {type(string).__name__}")
    unknown = _INDEX[UNKNOWN]
    return torch.tensor([_INDEX.get(character, unknown) for character in string],
                        dtype=torch.int64)


def decode(indices) -> str:
    """The string of a 1-D sequence of indices (a tensor or a list of ints) into ``CHARACTERS``."""
    if isinstance(indices, torch.Tensor):
        if indices.is_floating_point() or indices.ndim != 1:
            raise ValueError(f"text.decode: expected a 1-D integer tensor, got shape "
                             f"{tuple(indices.shape)} and dtype {indices.dtype}")
        indices = indices.tolist()
    bad = [i for i in indices if not (isinstance(i, int) and 0 <= i < VOCAB_SIZE)]
    if bad:
        raise ValueError(f"text.decode: indices must be ints in [0, {VOCAB_SIZE - 1}], got "
                         f"{bad[0]!r}")
    return "".join(CHARACTERS[index] for index in indices)


def split(codes: torch.Tensor, fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, validation)``: the first ``fraction`` of ``codes`` and the rest (views, in
    order: the validation text is a part of the manual the model never trains on)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"text.split: fraction must be in (0, 1), got {fraction!r}")
    cut = int(fraction * len(codes))
    return codes[:cut], codes[cut:]


def batch(codes: torch.Tensor, batch_size: int, block_size: int,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``, each ``(batch_size, block_size)`` int64: ``batch_size`` windows of
    ``block_size`` characters starting at positions drawn uniformly from ``generator`` (the
    global RNG if None), and the same windows shifted by one character, the targets: ``y[b, t]``
    is the character that follows ``x[b, :t + 1]``."""
    if codes.ndim != 1 or len(codes) <= block_size:
        raise ValueError(f"text.batch: codes must be 1-D and longer than block_size "
                         f"({block_size}), got shape {tuple(codes.shape)}")
    starts = torch.randint(0, len(codes) - block_size, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(block_size + 1)
    windows = codes[offsets]
    return windows[:, :-1], windows[:, 1:]
