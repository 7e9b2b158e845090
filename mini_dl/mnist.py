"""MNIST from its four IDX files: read (raw or gzip), verify by checksum, optionally download.

The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header ``0x00 0x00 dtype ndim``
followed by ``ndim`` 32-bit sizes, then the values. Images are ``(n, 28, 28)`` unsigned bytes,
labels ``(n,)`` unsigned bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import urllib.request
import zlib
from pathlib import Path

import torch

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the published gzip files (the same table torchvision uses).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32,
           0x0D: torch.float32, 0x0E: torch.float64}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read one IDX file (raw, or gzip if the name ends in ``.gz``) into a tensor."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # a truncated or damaged .gz
        raise ValueError(f"read_idx: {path} is not a readable gzip file ({error})") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number "
                         f"{data[:4].hex() or 'empty'})")
    dtype, ndim = _DTYPES[data[2]], data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"read_idx: {path} is truncated: its header announces {ndim} sizes "
                         f"({4 + 4 * ndim} bytes) but the file holds {len(data)} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    itemsize = torch.empty(0, dtype=dtype).element_size()
    count = 1
    for size in shape:
        count *= size
    if len(body) != count * itemsize:
        raise ValueError(f"read_idx: {path} header says shape {shape} ({count * itemsize} bytes) "
                         f"but holds {len(body)} bytes")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(bytearray(body), dtype=torch.uint8)
    if itemsize > 1:  # IDX stores values big-endian: reverse the bytes of each value
        raw = raw.view(-1, itemsize).flip(1).contiguous()
    return raw.view(dtype).reshape(shape)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _find(root: Path, name: str, checksums: dict | None) -> Path | None:
    """The gzip file (checksum-verified) if present, else the raw file, else None."""
    gz = root / f"{name}.gz"
    if gz.exists():
        expected = (checksums or {}).get(gz.name)
        if checksums is not None and expected is None:
            raise ValueError(f"load_mnist: no checksum known for {gz.name}")
        if expected is not None and _md5(gz) != expected:
            raise RuntimeError(f"load_mnist: {gz} is corrupt (MD5 {_md5(gz)}, expected "
                               f"{expected}); delete it and download it again")
        return gz
    raw = root / name
    return raw if raw.exists() else None


def _download(root: Path, name: str, mirrors, checksums: dict | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        target = root / f"{name}.gz"
        try:
            url = mirror.rstrip("/") + f"/{name}.gz"
            with urllib.request.urlopen(url, timeout=60) as response, \
                    open(target, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as error:
            errors.append(f"{mirror}: {error}")
            target.unlink(missing_ok=True)
            continue
        expected = (checksums or {}).get(target.name)
        if expected is None or _md5(target) == expected:
            return
        errors.append(f"{mirror}: checksum mismatch")
        target.unlink()
    raise RuntimeError(f"load_mnist: could not download {name}.gz: " + "; ".join(errors))


def load_mnist(root: str | Path, split: str = "train", *, download: bool = False,
               mirrors=MIRRORS, checksums: dict | None = MD5) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an MNIST split from ``root`` as ``(images, labels)``.

    ``images`` is float32 of shape ``(n, 784)`` scaled to [0, 1]; ``labels`` is int64 ``(n,)``.
    Files may be raw IDX or gzip (``.gz``, verified against ``checksums``; pass ``None`` to skip
    verification, e.g. for files you made yourself). With ``download=True`` missing files are
    fetched from ``mirrors``; otherwise a missing file is a ``FileNotFoundError`` that says what
    is missing, where it looked and how to get it.
    """
    if split not in FILES:
        raise ValueError(f"load_mnist: split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    paths = []
    for name in FILES[split]:
        path = _find(root, name, checksums)
        if path is None and download:
            _download(root, name, mirrors, checksums)
            path = _find(root, name, checksums)
        if path is None:
            raise FileNotFoundError(
                f"load_mnist: {name} (or {name}.gz) not found in {root.resolve()}. Download the "
                f"four MNIST files into that directory (e.g. from {(mirrors or MIRRORS)[0]}) or call "
                f"load_mnist(..., download=True).")
        paths.append(path)
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: images {tuple(images.shape)} and labels "
                         f"{tuple(labels.shape)} do not match")
    return images.reshape(images.shape[0], -1).float() / 255, labels.long()
