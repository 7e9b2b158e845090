"""mini_dl.text: the corpus, the fixed 96-character vocabulary, encode/decode, the split and
the seeded batches of context windows."""
from __future__ import annotations

import pytest
import torch

from mini_dl import text


def test_the_vocabulary_is_newline_and_printable_ascii_sorted():
    assert text.VOCAB_SIZE == len(text.CHARACTERS) == 96
    assert list(text.CHARACTERS) == sorted(text.CHARACTERS)
    assert text.CHARACTERS[0] == "\n" and text.CHARACTERS[1] == " "


def test_the_corpus_is_deterministic_and_inside_the_vocabulary():
    corpus = text.load_text()
    assert corpus == text.load_text()
    assert len(corpus) > 100_000  # about 465,000 characters on Python 3.11
    assert set(corpus) <= set(text.CHARACTERS)  # typographic characters made ASCII
    assert text.decode(text.encode(corpus)) == corpus


def test_encode_and_decode_round_trip_and_unknown_characters_become_question_marks():
    codes = text.encode("def f(x):\n    return x")
    assert codes.dtype == torch.int64 and codes.shape == (22,)
    assert text.decode(codes) == "def f(x):\n    return x"
    assert text.decode(codes.tolist()) == text.decode(codes)
    assert text.decode(text.encode("naïve €")) == "na?ve ?"
    assert "’…".translate(text.TO_ASCII) == "'..."


@pytest.mark.parametrize("bad", [torch.tensor([0.0, 1.0]), torch.zeros(2, 2, dtype=torch.int64),
                                 [96], [-1], [-1.5]])
def test_decode_refuses_what_is_not_a_sequence_of_valid_indices(bad):
    with pytest.raises(ValueError, match="text.decode"):
        text.decode(bad)


def test_encode_refuses_a_non_string():
    with pytest.raises(TypeError, match="text.encode: expected a str"):
        text.encode(b"bytes")


def test_split_keeps_the_order_and_the_fraction():
    codes = torch.arange(100)
    train, validation = text.split(codes, 0.9)
    assert torch.equal(torch.cat([train, validation]), codes) and len(train) == 90
    with pytest.raises(ValueError, match="fraction must be in"):
        text.split(codes, 1.0)


def test_batches_are_shifted_windows_reproducible_from_the_generator():
    codes = torch.arange(50)
    x, y = text.batch(codes, 4, 8, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.int64
    assert torch.equal(y, x + 1)  # codes[i] = i: the next character is the next integer
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 7, dtype=torch.int64))
    again, _ = text.batch(codes, 4, 8, torch.Generator().manual_seed(3))
    assert torch.equal(again, x)
    assert int(x.min()) >= 0 and int(y.max()) <= 49  # every window lies inside the text


def test_batch_refuses_a_text_no_longer_than_the_window():
    with pytest.raises(ValueError, match="longer than block_size"):
        text.batch(torch.arange(8), 2, 8)
