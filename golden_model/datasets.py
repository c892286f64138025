"""The data sets the toolkit trains on, as plain NumPy arrays.

:func:`load_dataset` turns a :class:`~golden_model.config.TaskConfig` into a
:class:`Dataset`: float64 inputs in [0, 1], float64 targets and int64 class labels, for
a training and a test split.

* ``xor`` and ``parity`` are the complete truth tables (train set == test set) with one
  output column holding 0.0 / 1.0.
* ``images7`` is a generated four-class 7x7 image set (bars and diagonals plus uniform
  pixel noise), deterministic for a given seed.
* ``digits`` is scikit-learn's bundled 8x8 digits set with a fixed, seed-independent,
  stratified 80/20 split.
* ``mnist`` / ``fashion_mnist`` read the four IDX files (plain or ``.gz``) and
  ``cifar10`` reads the CIFAR-10 binary batches from ``task.data_dir``.

Multi-class targets are one-hot. Nothing is downloaded and nothing is written to disk;
a missing or malformed file raises :class:`DataError` with a one-line message naming
the file and the problem.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import TASKS, TaskConfig

__all__ = ["DataError", "Dataset", "load_dataset"]


class DataError(ValueError):
    """A data set is missing or malformed; the message is one line naming the file and the
    problem."""


@dataclass(frozen=True)
class Dataset:
    """A training and a test split of one task.

    Attributes
    ----------
    name : str
        The task name (one of ``config.TASKS``).
    x_train, x_test : numpy.ndarray
        Inputs, shape ``(n_samples, n_inputs)``, float64 in [0, 1].
    y_train, y_test : numpy.ndarray
        Targets, shape ``(n_samples, n_outputs)``, float64: one column of 0.0 / 1.0 for
        binary tasks, one-hot rows otherwise.
    labels_train, labels_test : numpy.ndarray
        Class labels, shape ``(n_samples,)``, int64.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_test: np.ndarray

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y, labels = (getattr(self, f"{k}_{split}") for k in ("x", "y", "labels"))
            if x.ndim != 2 or y.ndim != 2 or labels.ndim != 1:
                raise ValueError(
                    f"{split} arrays must be 2-D inputs, 2-D targets and 1-D labels, "
                    f"not {x.ndim}-D, {y.ndim}-D and {labels.ndim}-D"
                )
            if not len(x) == len(y) == len(labels):
                raise ValueError(
                    f"{split} arrays disagree on the sample count: "
                    f"{len(x)} inputs, {len(y)} targets, {len(labels)} labels"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError("train and test inputs have different widths")
        if self.y_train.shape[1] != self.y_test.shape[1]:
            raise ValueError("train and test targets have different widths")

    @property
    def n_inputs(self) -> int:
        """Number of input features."""
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of target columns (1 for binary tasks)."""
        return int(self.y_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (2 for binary tasks, else ``n_outputs``)."""
        return 2 if self.n_outputs == 1 else self.n_outputs


def load_dataset(task: TaskConfig, seed: int = 0) -> Dataset:
    """Build or read the data set that ``task`` names.

    Parameters
    ----------
    task : TaskConfig
        The task section of the config: ``name`` picks the data set, ``parity_bits``,
        ``images_per_class``, ``image_noise`` and ``data_dir`` shape or locate it, and
        ``train_limit`` / ``test_limit`` (when > 0) keep only the first samples of each
        split (after any fixed shuffling).
    seed : int, optional
        Seeds the generated ``images7`` set; every other task ignores it (the digits
        split is fixed).

    Returns
    -------
    Dataset
        C-contiguous float64 inputs and targets and int64 labels for both splits.

    Raises
    ------
    DataError
        The task is unknown, ``data_dir`` is empty or not a folder, or a data file is
        missing or malformed.
    """
    name = task.name
    if name in ("xor", "parity"):
        bits = 2 if name == "xor" else task.parity_bits
        x, labels = _parity_table(bits)
        tr = te = (x, labels)
        n_classes = 2
    elif name == "images7":
        tr, te = _images7(task.images_per_class, task.image_noise, seed)
        n_classes = len(_IMAGES7_PROTOTYPES)
    elif name == "digits":
        tr, te = _digits()
        n_classes = 10
    elif name in ("mnist", "fashion_mnist"):
        tr, te = _idx_set(_data_dir(task, _IDX_TITLES[name], "IDX files"), _IDX_TITLES[name])
        n_classes = 10
    elif name == "cifar10":
        tr, te = _cifar10(_data_dir(task, "CIFAR-10", "binary batches"))
        n_classes = 10
    else:
        raise DataError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    x_tr, l_tr = _limit(*tr, task.train_limit)
    x_te, l_te = _limit(*te, task.test_limit)
    return Dataset(
        name=name,
        x_train=_inputs(x_tr),
        y_train=_targets(l_tr, n_classes),
        labels_train=np.ascontiguousarray(l_tr, dtype=np.int64),
        x_test=_inputs(x_te),
        y_test=_targets(l_te, n_classes),
        labels_test=np.ascontiguousarray(l_te, dtype=np.int64),
    )


# --------------------------------------------------------------------------- helpers

_Split = tuple[np.ndarray, np.ndarray]


def _limit(x: np.ndarray, labels: np.ndarray, limit: int) -> _Split:
    """Keep the first ``limit`` samples (all of them when ``limit`` is 0)."""
    return (x[:limit], labels[:limit]) if limit > 0 else (x, labels)


def _inputs(x: np.ndarray) -> np.ndarray:
    """Inputs as a C-contiguous float64 array; uint8 pixels are scaled by 1/255."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x, dtype=np.float64) / 255.0
    return np.ascontiguousarray(x, dtype=np.float64)


def _targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """One 0/1 column for two classes, else one-hot rows."""
    if n_classes == 2:
        return np.ascontiguousarray(labels, dtype=np.float64).reshape(-1, 1)
    return np.ascontiguousarray(np.eye(n_classes)[labels])


def _parity_table(bits: int) -> _Split:
    """All ``2**bits`` patterns (most significant bit first) and their parity."""
    codes = np.arange(2**bits, dtype=np.int64)
    x = (codes[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return x.astype(np.float64), x.sum(axis=1) % 2


def _images7_prototypes() -> np.ndarray:
    """Horizontal bar, vertical bar, diagonal and anti-diagonal on a 7x7 grid."""
    p = np.zeros((4, 7, 7))
    p[0, 3, :] = 1.0
    p[1, :, 3] = 1.0
    p[2] = np.eye(7)
    p[3] = np.fliplr(np.eye(7))
    return p.reshape(4, 49)


_IMAGES7_PROTOTYPES = _images7_prototypes()


def _images7(per_class: int, noise: float, seed: int) -> tuple[_Split, _Split]:
    """Prototypes plus U(-noise, noise) pixel noise, clipped to [0, 1], shuffled.

    One generator (``default_rng([seed, 7])``) draws the training split, then the test
    split, so the two never share a draw.
    """
    rng = np.random.default_rng([seed, 7])
    n_classes = len(_IMAGES7_PROTOTYPES)

    def split() -> _Split:
        labels = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
        x = _IMAGES7_PROTOTYPES[labels] + rng.uniform(-noise, noise, (len(labels), 49))
        order = rng.permutation(len(labels))
        return np.clip(x, 0.0, 1.0)[order], labels[order]

    train = split()
    return train, split()


def _digits() -> tuple[_Split, _Split]:
    """scikit-learn's 8x8 digits / 16 with a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, l_tr, l_te = train_test_split(
        x, labels, test_size=0.2, random_state=0, stratify=labels
    )
    return (x_tr, l_tr), (x_te, l_te)


def _data_dir(task: TaskConfig, title: str, what: str) -> Path:
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

_IDX_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
_IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS = 0x00000801  # unsigned bytes, 1 dimension
_IDX_SIDE = 28


def _idx_set(folder: Path, title: str) -> tuple[_Split, _Split]:
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


def _cifar10(folder: Path) -> tuple[_Split, _Split]:
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
