"""mini_dl.mnist on small IDX files the tests write themselves (no network, no real MNIST).

``write_idx`` packs values with ``struct`` in big-endian order, independently of ``read_idx``'s
byte flipping, so a round trip checks the reader against the format, not against itself. A
``file://`` URL stands in for a download mirror (urllib opens file URLs).
"""
from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import pytest
import torch
from test_benchmarks import load_script

import mini_dl as dl
from mini_dl.mnist import FILES, read_idx

# IDX type code and struct format of each dtype (the format's table)
IDX_TYPES = {torch.uint8: (0x08, "B"), torch.int8: (0x09, "b"), torch.int16: (0x0B, "h"),
             torch.int32: (0x0C, "i"), torch.float32: (0x0D, "f"), torch.float64: (0x0E, "d")}
SIZES = {"train": 6, "test": 4}


def idx_bytes(values: torch.Tensor) -> bytes:
    """The IDX encoding of ``values``: magic, big-endian sizes, big-endian values."""
    code, fmt = IDX_TYPES[values.dtype]
    header = bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return header + struct.pack(f">{values.numel()}{fmt}", *values.flatten().tolist())


def write_idx(path: Path, values: torch.Tensor) -> Path:
    """Write ``values`` as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    data = idx_bytes(values)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_mnist(root: Path, *, gz: bool, sizes: dict = SIZES, seed: int = 0) -> dict:
    """Small MNIST-like files for both splits in ``root``; returns ``{split: (images, labels)}``
    as written, and ``{"checksums": {file name: MD5}}`` of the files."""
    root.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    written, checksums = {}, {}
    for split, (images_name, labels_name) in FILES.items():
        n = sizes[split]
        images = torch.randint(0, 256, (n, 28, 28), generator=generator).to(torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=generator).to(torch.uint8)
        for name, values in ((images_name, images), (labels_name, labels)):
            path = write_idx(root / (name + ".gz" * gz), values)
            checksums[path.name] = md5(path)
        written[split] = (images, labels)
    written["checksums"] = checksums
    return written


# -- read_idx ------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", list(IDX_TYPES), ids=str)
def test_read_idx_round_trips_every_idx_type_raw_and_gzip(tmp_path, dtype, suffix):
    if dtype.is_floating_point:  # fractions: every byte of the value matters
        values = ((torch.arange(24) - 12) / 7).to(dtype)
    else:  # from the type's smallest value to its largest
        info = torch.iinfo(dtype)
        values = torch.linspace(info.min, info.max, 24, dtype=torch.float64).round().to(dtype)
    values = values.reshape(2, 3, 4)
    read = read_idx(write_idx(tmp_path / f"values{suffix}", values))
    assert read.dtype == dtype and read.shape == (2, 3, 4)
    assert torch.equal(read, values)


def test_read_idx_reads_big_endian_bytes_written_by_hand(tmp_path):
    path = tmp_path / "int32"
    # type 0x0C (int32), 1 dimension of size 2, then 258 and -2 in big-endian order
    path.write_bytes(bytes.fromhex("00000c01 00000002 00000102 fffffffe"))
    assert read_idx(path).tolist() == [258, -2]
    path.write_bytes(bytes.fromhex("00000d01 00000001 3fc00000"))  # float32 1.5
    assert read_idx(path).tolist() == [1.5]


def test_read_idx_reads_an_empty_tensor(tmp_path):
    read = read_idx(write_idx(tmp_path / "empty", torch.zeros(0, 28, 28, dtype=torch.uint8)))
    assert read.shape == (0, 28, 28) and read.dtype == torch.uint8


@pytest.mark.parametrize("data, message", [
    (b"", "bad magic number empty"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number 01000801"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad magic number 00000701"),  # no type 0x07
    (gzip.compress(b"\x00\x00\x08\x01"), "bad magic number 1f8b"),  # gzip, but no .gz name
], ids=["empty", "first-byte", "unknown-type", "gzip-named-raw"])
def test_read_idx_rejects_a_bad_magic_number(tmp_path, data, message):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(ValueError, match=f"read_idx: .*bad.* is not an IDX file \\({message}"):
        read_idx(tmp_path / "bad")


def test_read_idx_rejects_a_truncated_header(tmp_path):
    # three sizes announced, one given
    (tmp_path / "short").write_bytes(bytes.fromhex("00000803 00000002"))
    with pytest.raises(ValueError, match=r"short is truncated: .* 3 sizes \(16 bytes\) .* 8 bytes"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("change", [-1, 1], ids=["truncated", "extra-byte"])
def test_read_idx_rejects_a_body_of_the_wrong_size(tmp_path, change):
    data = idx_bytes(torch.zeros(2, 3, dtype=torch.int32))
    (tmp_path / "body").write_bytes(data[:change] if change < 0 else data + b"\x00")
    with pytest.raises(ValueError, match=rf"shape \(2, 3\) \(24 bytes\) but holds {24 + change}"):
        read_idx(tmp_path / "body")


@pytest.mark.parametrize("damage", ["truncated", "not-gzip"])
def test_read_idx_rejects_a_damaged_gzip_file_with_a_value_error(tmp_path, damage):
    data = gzip.compress(idx_bytes(torch.zeros(50, dtype=torch.uint8)))
    path = tmp_path / "values.gz"
    path.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"plain text")
    with pytest.raises(ValueError, match=r"values.gz is not a readable gzip file"):
        read_idx(path)


# -- load_mnist: reading and checksums -----------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_returns_flat_float_images_in_0_1_and_int64_labels(tmp_path, split, gz):
    written = write_mnist(tmp_path, gz=gz)
    images, labels = dl.load_mnist(tmp_path, split, checksums=written["checksums"])
    n = SIZES[split]
    assert images.shape == (n, 784) and images.dtype == torch.float32
    assert labels.shape == (n,) and labels.dtype == torch.int64
    expected_images, expected_labels = written[split]
    assert torch.equal(images, expected_images.reshape(n, 784).float() / 255)
    assert torch.equal(labels, expected_labels.long())
    assert 0 <= images.min() and images.max() <= 1


def test_load_mnist_prefers_the_verified_gzip_file_to_the_raw_one(tmp_path):
    written = write_mnist(tmp_path, gz=True)
    write_mnist(tmp_path, gz=False, seed=1)  # other raw files beside the .gz ones
    images, _ = dl.load_mnist(tmp_path, "test", checksums=written["checksums"])
    assert torch.equal(images, written["test"][0].reshape(-1, 784).float() / 255)


def test_load_mnist_rejects_a_corrupt_gzip_file_by_its_checksum(tmp_path):
    written = write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    expected = written["checksums"][path.name]
    with pytest.raises(RuntimeError, match=rf"load_mnist: .*{path.name} is corrupt \(MD5 "
                                           rf"{md5(path)}, expected {expected}\); delete it"):
        dl.load_mnist(tmp_path, "test", checksums=written["checksums"])


def test_load_mnist_checks_self_made_gzip_files_against_the_published_md5_by_default(tmp_path):
    write_mnist(tmp_path, gz=True)
    with pytest.raises(RuntimeError, match="train-images-idx3-ubyte.gz is corrupt"):
        dl.load_mnist(tmp_path, "train")


def test_load_mnist_with_checksums_none_skips_verification(tmp_path):
    written = write_mnist(tmp_path, gz=True)
    _, labels = dl.load_mnist(tmp_path, "train", checksums=None)
    assert torch.equal(labels, written["train"][1].long())


def test_load_mnist_refuses_a_gzip_file_it_has_no_checksum_for(tmp_path):
    written = write_mnist(tmp_path, gz=True)
    checksums = dict(written["checksums"])
    del checksums["train-labels-idx1-ubyte.gz"]
    with pytest.raises(ValueError, match="no checksum known for train-labels-idx1-ubyte.gz"):
        dl.load_mnist(tmp_path, "train", checksums=checksums)


# -- load_mnist: missing files, bad contents, bad arguments --------------------------------------

def test_a_missing_file_says_what_is_missing_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        dl.load_mnist(tmp_path / "nowhere", "test")
    message = str(caught.value)
    assert "t10k-images-idx3-ubyte (or t10k-images-idx3-ubyte.gz) not found" in message
    assert str((tmp_path / "nowhere").resolve()) in message
    assert dl.mnist.MIRRORS[0] in message and "download=True" in message


def test_a_missing_labels_file_is_named_when_the_images_are_there(tmp_path):
    write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte .* not found"):
        dl.load_mnist(tmp_path, "train")


def test_a_missing_file_message_names_the_callers_mirror(tmp_path):
    with pytest.raises(FileNotFoundError, match="from file:///somewhere/"):
        dl.load_mnist(tmp_path, "train", mirrors=("file:///somewhere/",))


@pytest.mark.parametrize("split", ["valid", "Train", ""])
def test_load_mnist_rejects_an_unknown_split(tmp_path, split):
    with pytest.raises(ValueError, match=f"split must be 'train' or 'test', got {split!r}"):
        dl.load_mnist(tmp_path, split)


def test_load_mnist_rejects_images_and_labels_of_different_lengths(tmp_path):
    write_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images \(4, 28, 28\) and labels \(3,\) do not match"):
        dl.load_mnist(tmp_path, "test")


def test_load_mnist_rejects_images_that_are_not_a_stack_of_matrices(tmp_path):
    write_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", torch.zeros(4, 784, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images \(4, 784\) and labels \(4,\) do not match"):
        dl.load_mnist(tmp_path, "test")


# -- load_mnist: download from a file:// mirror --------------------------------------------------

@pytest.fixture
def mirror(tmp_path):
    """A directory of gzip files served as ``file://`` URLs, and their checksums."""
    written = write_mnist(tmp_path / "mirror", gz=True)
    return (tmp_path / "mirror").as_uri() + "/", written


def test_download_copies_and_verifies_the_files_from_a_mirror(tmp_path, mirror):
    url, written = mirror
    root = tmp_path / "data" / "mnist"  # created by the download
    _, labels = dl.load_mnist(root, "train", download=True, mirrors=(url,),
                              checksums=written["checksums"])
    assert torch.equal(labels, written["train"][1].long())
    assert sorted(p.name for p in root.iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    for path in root.iterdir():
        assert path.read_bytes() == (tmp_path / "mirror" / path.name).read_bytes()
    # the second call finds the files and downloads nothing (the mirror may be gone)
    dl.load_mnist(root, "train", download=True, mirrors=("file:///gone/",),
                  checksums=written["checksums"])


def test_download_falls_back_to_the_next_mirror(tmp_path, mirror):
    url, written = mirror
    missing = (tmp_path / "empty-mirror").as_uri()  # no trailing slash: it is added
    _, labels = dl.load_mnist(tmp_path / "data", "test", download=True, mirrors=(missing, url),
                              checksums=written["checksums"])
    assert torch.equal(labels, written["test"][1].long())


def test_download_with_a_checksum_mismatch_fails_clearly_and_keeps_nothing(tmp_path, mirror):
    url, written = mirror
    checksums = {name: "0" * 32 for name in written["checksums"]}
    root = tmp_path / "data"
    with pytest.raises(RuntimeError, match=r"could not download t10k-images-idx3-ubyte.gz: "
                                           rf"{url}: checksum mismatch"):
        dl.load_mnist(root, "test", download=True, mirrors=(url,), checksums=checksums)
    assert list(root.iterdir()) == []


def test_download_from_no_working_mirror_names_each_mirror_and_its_error(tmp_path):
    mirrors = ((tmp_path / "a").as_uri() + "/", (tmp_path / "b").as_uri() + "/")
    with pytest.raises(RuntimeError, match=rf"could not download train-images-idx3-ubyte.gz: "
                                           rf"{mirrors[0]}: .*; {mirrors[1]}: "):
        dl.load_mnist(tmp_path / "data", "train", download=True, mirrors=mirrors)


# -- benchmarks/mnist.py -------------------------------------------------------------------------

def test_the_mnist_benchmark_runs_through_the_real_loader(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", gz=False, sizes={"train": 200, "test": 100})
    benchmark = load_script("mnist")
    threads = torch.get_num_threads()
    try:
        results = benchmark.main(["--data", str(tmp_path / "mnist"), "--train-size", "150",
                                  "--epochs", "1", "--json", str(tmp_path / "out" / "mnist.json")])
    finally:
        torch.set_num_threads(threads)  # main() sets the thread count for the whole process
    assert (results["data"], results["train_size"], results["test_size"]) == ("mnist", 150, 100)
    assert results["time_ratio"] > 0
    for name in ("mini_dl", "torch"):
        assert 0 <= results[f"{name}_test_accuracy"] <= 1
    # the same start and batches: float32 round-off only (a wrong gradient moves them ~1e-2)
    assert results["max_parameter_difference"] < 1e-4
    assert (tmp_path / "out" / "mnist.json").exists()
    output = capsys.readouterr().out
    assert "time ratio mini_dl/torch" in output and "MNIST from" in output


def test_the_mnist_benchmark_needs_data_or_fake(capsys):
    with pytest.raises(SystemExit):
        load_script("mnist").main(["--epochs", "1"])
    assert "--data DIR is required" in capsys.readouterr().err


def test_the_mnist_benchmark_rejects_more_training_images_than_the_files_hold(tmp_path):
    write_mnist(tmp_path, gz=False)
    with pytest.raises(ValueError, match="--train-size 10000 but .* holds 6 training images"):
        load_script("mnist").main(["--data", str(tmp_path)])


def test_the_mnist_benchmark_runs_on_fake_data_without_files(tmp_path):
    threads = torch.get_num_threads()
    try:
        results = load_script("mnist").main(["--fake", "--train-size", "100", "--epochs", "1"])
    finally:
        torch.set_num_threads(threads)
    assert (results["data"], results["train_size"], results["test_size"]) == ("fake", 100, 10_000)


@pytest.mark.parametrize("option, value", [("--epochs", "0"), ("--train-size", "-5"),
                                           ("--threads", "two")])
def test_the_mnist_benchmark_rejects_a_count_that_is_not_positive(capsys, option, value):
    with pytest.raises(SystemExit):
        load_script("mnist").main(["--fake", option, value])
    assert f"{option}: must be a positive integer, got {value!r}" in capsys.readouterr().err
