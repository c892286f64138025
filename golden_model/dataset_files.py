"""Readers of the data sets that live in files: MNIST-format IDX files and CIFAR-10
binary batches, from the folder ``task.data_dir`` names.

* ``mnist`` / ``fashion_mnist``: :func:`idx_set` reads the four IDX files (plain or
  ``.gz``).
* ``cifar10``: :func:`cifar10` reads the binary batches (from the folder itself or its
  ``cifar-10-batches-bin`` subfolder).

Nothing is downloaded and nothing is written to disk; a missing or malformed file raises
:class:`DataError` with a one-line message naming the file and the problem. Pixels are
returned as stored (uint8); :func:`golden_model.datasets.load_dataset` scales them.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .config import TaskConfig


class DataError(ValueError):
    """A data set is missing or malformed; the message is one line naming the file and the
    problem."""


_Split = tuple[np.ndarray, np.ndarray]


def data_dir(task: TaskConfig, title: str, what: str) -> Path:
    """The task's data folder, which must be given and exist."""
    if not task.data_dir:
        raise DataError(
            f"task.data_dir must name the folder holding the {title} {what} for task {task.name!r}"
        )
    folder = Path(task.data_dir)
    if not folder.is_dir():
        raise DataError(f"task.data_dir '{folder}' is not a folder (task {task.name!r})")
    return folder


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _read(path: Path, gzipped: bool = False) -> bytes:
    """A file's bytes, decompressed when ``gzipped``; read errors become DataError."""
    try:
        if gzipped:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"'{path}' is not a valid gzip file: {_one_line(exc)}") from None
    except OSError as exc:
        raise DataError(f"'{path}' could not be read: {_one_line(exc.strerror)}") from None


# ------------------------------------------------------------------------- IDX files

IDX_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
_IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS = 0x00000801  # unsigned bytes, 1 dimension
_IDX_SIDE = 28


def idx_set(folder: Path, title: str) -> tuple[_Split, _Split]:
    """Both splits of an MNIST-format set, pixels still uint8."""
    splits = []
    for prefix in ("train", "t10k"):
        img_path, img = _idx_file(folder, f"{prefix}-images-idx3-ubyte", title)
        lbl_path, lbl = _idx_file(folder, f"{prefix}-labels-idx1-ubyte", title)
        images = _idx_images(img_path, img)
        labels = _idx_labels(lbl_path, lbl)
        if len(images) != len(labels):
            raise DataError(
                f"'{img_path}' holds {len(images)} images but '{lbl_path}' holds "
                f"{len(labels)} labels"
            )
        splits.append((images.reshape(len(images), -1), labels))
    return splits[0], splits[1]


def _idx_file(folder: Path, name: str, title: str) -> tuple[Path, bytes]:
    """Find ``name`` or ``name.gz`` in ``folder`` and read it (plain preferred)."""
    plain = folder / name
    packed = folder / f"{name}.gz"
    if plain.is_file():
        return plain, _read(plain)
    if packed.is_file():
        return packed, _read(packed, gzipped=True)
    raise DataError(f"{title} file '{plain}' not found (also tried .gz)")


def _idx_header(path: Path, data: bytes, magic: int, kind: str) -> tuple[int, ...]:
    """Check the magic number and payload length; return the dimensions."""
    if len(data) < 4:
        raise DataError(f"'{path}' is truncated: {len(data)} bytes is too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"'{path}' is not an IDX {kind} file: magic 0x{found:08x}, expected 0x{magic:08x}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"'{path}' is truncated: {len(data)} bytes is shorter than its {header}-byte header"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    shape = "x".join(str(d) for d in dims)
    if len(data) < expected:
        raise DataError(
            f"'{path}' is truncated: {len(data)} bytes, expected {expected} for shape {shape}"
        )
    if len(data) > expected:
        raise DataError(
            f"'{path}' has {len(data) - expected} trailing bytes: {len(data)} bytes, "
            f"expected {expected} for shape {shape}"
        )
    return dims


def _idx_images(path: Path, data: bytes) -> np.ndarray:
    """The ``(n, 28, 28)`` uint8 images of an IDX image file."""
    n, rows, cols = _idx_header(path, data, _IDX_IMAGES, "image")
    if (rows, cols) != (_IDX_SIDE, _IDX_SIDE):
        raise DataError(f"'{path}' holds {rows}x{cols} images, expected {_IDX_SIDE}x{_IDX_SIDE}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def _idx_labels(path: Path, data: bytes) -> np.ndarray:
    """The int64 labels (0-9) of an IDX label file."""
    _idx_header(path, data, _IDX_LABELS, "label")
    labels = np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)
    _check_labels(path, labels, "index")
    return labels


def _check_labels(path: Path, labels: np.ndarray, where: str) -> None:
    bad = np.flatnonzero(labels >= 10)
    if bad.size:
        raise DataError(f"'{path}' has label {labels[bad[0]]} at {where} {bad[0]}, expected 0-9")


# ------------------------------------------------------------------------- CIFAR-10

_CIFAR_SUBDIR = "cifar-10-batches-bin"
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = "test_batch.bin"
_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_RECORD = 1 + _CIFAR_PIXELS


def cifar10(folder: Path) -> tuple[_Split, _Split]:
    """Both CIFAR-10 splits, pixels still uint8 (channel-major, as stored)."""
    folder = _cifar_folder(folder)
    train_files = [folder / name for name in _CIFAR_TRAIN if (folder / name).is_file()]
    if not train_files:
        raise DataError(
            f"no CIFAR-10 training batch ({_CIFAR_TRAIN[0]} ... {_CIFAR_TRAIN[-1]}) "
            f"found in '{folder}'"
        )
    test_file = folder / _CIFAR_TEST
    if not test_file.is_file():
        raise DataError(f"CIFAR-10 file '{test_file}' not found")
    batches = [_cifar_batch(path) for path in train_files]
    train = (
        np.concatenate([x for x, _ in batches]),
        np.concatenate([labels for _, labels in batches]),
    )
    return train, _cifar_batch(test_file)


def _cifar_folder(folder: Path) -> Path:
    """``folder`` itself, or its ``cifar-10-batches-bin`` subfolder if only that holds
    batch files."""
    names = (*_CIFAR_TRAIN, _CIFAR_TEST)
    sub = folder / _CIFAR_SUBDIR
    if not any((folder / n).is_file() for n in names) and sub.is_dir():
        return sub
    return folder


def _cifar_batch(path: Path) -> _Split:
    """The uint8 pixels and int64 labels of one binary batch file."""
    data = _read(path)
    if len(data) % _CIFAR_RECORD:
        raise DataError(
            f"'{path}' is truncated: {len(data)} bytes is not a multiple of "
            f"{_CIFAR_RECORD}-byte records"
        )
    if not data:
        raise DataError(f"'{path}' is empty: it holds no {_CIFAR_RECORD}-byte records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    _check_labels(path, labels, "record")
    return records[:, 1:], labels
