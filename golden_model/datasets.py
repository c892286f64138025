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

This module is the front door: the :class:`Dataset` type and :func:`load_dataset`, which
picks the source and shapes its raw splits. The generated and bundled sets are built in
:mod:`golden_model.dataset_tasks`, the file formats read in
:mod:`golden_model.dataset_files` (where :class:`DataError` is defined, as the readers
raise it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TASKS, TaskConfig
from .dataset_files import IDX_TITLES, DataError, cifar10, data_dir, idx_set
from .dataset_tasks import IMAGES7_PROTOTYPES, digits, images7, parity_table

__all__ = ["DataError", "Dataset", "load_dataset"]


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
        Class labels, shape ``(n_samples,)``, int64; -1 for value (regression) targets.
    target : str
        ``"class"`` (labels and one-hot or 0/1 targets) or ``"value"`` (float targets;
        the accuracy figures are then R^2, the coefficient of determination).
    columns : tuple of str
        Names of the input columns (a CSV file's header), for messages; may be empty.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_test: np.ndarray
    target: str = "class"
    columns: tuple[str, ...] = ()

    @classmethod
    def from_arrays(cls, x_train, y_train, x_test=None, y_test=None, *,
                    target: str = "auto", scale: str = "none", name: str = "arrays",
                    test_fraction: float = 0.2, split_seed: int = 0,
                    columns: list[str] | None = None) -> Dataset:
        """A data set from arrays: inputs (samples x features) and targets (integer
        class labels, or float values with ``target="value"``), with a test split
        given or split off (``test_fraction``, seeded by ``split_seed``). ``scale``
        (``"none"``, ``"minmax"``, ``"standard"``) is fitted on the training split.
        Bad arrays raise :class:`DataError` (one line); see
        :mod:`golden_model.dataset_user`."""
        from .dataset_user import from_arrays

        return from_arrays(x_train, y_train, x_test, y_test, target=target, scale=scale,
                           name=name, test_fraction=test_fraction, split_seed=split_seed,
                           columns=columns)

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
        x, labels = parity_table(bits)
        tr = te = (x, labels)
        n_classes = 2
    elif name == "images7":
        tr, te = images7(task.images_per_class, task.image_noise, seed)
        n_classes = len(IMAGES7_PROTOTYPES)
    elif name == "digits":
        tr, te = digits()
        n_classes = 10
    elif name in ("mnist", "fashion_mnist"):
        tr, te = idx_set(data_dir(task, IDX_TITLES[name], "IDX files"), IDX_TITLES[name])
        n_classes = 10
    elif name == "cifar10":
        tr, te = cifar10(data_dir(task, "CIFAR-10", "binary batches"))
        n_classes = 10
    elif name == "file":
        from .dataset_user import load_file

        return _limited(load_file(task), task)
    elif name == "arrays":
        raise DataError(
            "task 'arrays' holds its data in memory, not in a file: pass the Dataset "
            "(mgd_hw.api takes it), or use task.name = 'file' with task.path"
        )
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

def _limited(data: Dataset, task: TaskConfig) -> Dataset:
    """``data`` with ``task.train_limit``/``test_limit`` applied."""
    if not task.train_limit and not task.test_limit:
        return data
    import dataclasses

    cut = {}
    for split, limit in (("train", task.train_limit), ("test", task.test_limit)):
        for k in ("x", "y", "labels"):
            a = getattr(data, f"{k}_{split}")
            cut[f"{k}_{split}"] = a[:limit] if limit > 0 else a
    return dataclasses.replace(data, **cut)


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
