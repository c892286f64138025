"""A user's own data: arrays from Python, or an ``.npz`` / ``.csv`` file.

* :func:`from_arrays` shapes arrays a caller holds (``Dataset.from_arrays``);
* :func:`load_file` reads the file of ``task.path`` (``[task] name = "file"``):

  - ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``, or ``x`` and ``y``
    split by ``task.test_fraction`` (seeded by ``task.split_seed``);
  - ``.csv`` with a header row; the column named ``label`` (else the last column) is
    the target, every other column an input; split like ``x``/``y``.

Targets (``task.target``): ``"class"`` (integer labels 0..K-1; one 0/1 output for two
classes, else one-hot rows), ``"value"`` (float targets, one column each, for
regression; the labels are then -1 and the accuracy figures are R^2), or ``"auto"``
(class when every target is a whole number >= 0 and there is one target column, else
value). Inputs are scaled by ``task.scale``, fitted on the training split:
``"minmax"`` to [0, 1], ``"standard"`` to zero mean and unit variance, ``"none"`` as
given. Every problem raises :class:`DataError` with one line naming the file (or the
array) and what is wrong.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dataset_files import DataError

if TYPE_CHECKING:
    from .config import TaskConfig
    from .datasets import Dataset

TARGETS = ("auto", "class", "value")
SCALES = ("none", "minmax", "standard")
FILE_KINDS = (".npz", ".csv")
_NPZ_SPLIT = ("x_train", "y_train", "x_test", "y_test")


def from_arrays(x_train, y_train, x_test=None, y_test=None, *, target: str = "auto",
                scale: str = "none", name: str = "arrays", test_fraction: float = 0.2,
                split_seed: int = 0, columns: list[str] | None = None,
                where: str = "the arrays") -> Dataset:
    """A :class:`~golden_model.datasets.Dataset` from NumPy arrays (see module doc).

    Without ``x_test``/``y_test`` the arrays are split by ``test_fraction`` (0 = test
    on the training set). ``columns`` names the input columns in error messages.
    """
    if target not in TARGETS:
        raise DataError(f"target must be one of {', '.join(map(repr, TARGETS))}, not {target!r}")
    if scale not in SCALES:
        raise DataError(f"scale must be one of {', '.join(map(repr, SCALES))}, not {scale!r}")
    if (x_test is None) != (y_test is None):
        raise DataError(f"{where}: give both x_test and y_test, or neither")
    x_tr = _matrix(x_train, "x_train", where)
    y_tr = _targets_array(y_train, "y_train", where)
    _same_length(x_tr, y_tr, "x_train", "y_train", where)
    if x_test is None:
        x_tr, y_tr, x_te, y_te = _split(x_tr, y_tr, test_fraction, split_seed, where)
    else:
        x_te = _matrix(x_test, "x_test", where)
        y_te = _targets_array(y_test, "y_test", where)
        _same_length(x_te, y_te, "x_test", "y_test", where)
        if x_te.shape[1] != x_tr.shape[1]:
            raise DataError(f"{where}: x_train has {x_tr.shape[1]} columns but x_test "
                            f"{x_te.shape[1]}")
        if y_te.shape[1] != y_tr.shape[1]:
            raise DataError(f"{where}: y_train has {y_tr.shape[1]} columns but y_test "
                            f"{y_te.shape[1]}")
    kind = _target_kind(target, y_tr, y_te)
    x_tr, x_te = _scale(x_tr, x_te, scale)
    names = tuple(columns) if columns else tuple(f"column {i}" for i in range(x_tr.shape[1]))
    from .datasets import Dataset

    if kind == "class":
        l_tr, l_te = (y[:, 0].astype(np.int64) for y in (y_tr, y_te))
        n_classes = int(max(l_tr.max(initial=0), l_te.max(initial=0))) + 1
        if n_classes < 2:
            raise DataError(f"{where}: class targets need at least two classes (labels "
                            "0 and 1), found only label 0; use target 'value' for regression")
        onehot = (lambda labels: labels.astype(np.float64).reshape(-1, 1)) if n_classes == 2 \
            else (lambda labels: np.eye(n_classes)[labels])
        return Dataset(name, x_tr, onehot(l_tr), l_tr, x_te, onehot(l_te), l_te,
                       target="class", columns=names)
    no_labels = (np.full(len(y), -1, np.int64) for y in (y_tr, y_te))
    l_tr, l_te = no_labels
    return Dataset(name, x_tr, y_tr, l_tr, x_te, y_te, l_te, target="value", columns=names)


def load_file(task: TaskConfig) -> Dataset:
    """The data set of ``task.path`` (an .npz or .csv file), shaped by ``task``.

    Cached by path, modification time, size and the shaping fields, so the config's
    validation (which needs the sizes) and the run read the file once.
    """
    path = Path(task.path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"task.path '{path}' {what}; it must name an .npz or .csv file")
    st = path.stat()
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size, str(path),
                        task.target, task.scale, float(task.test_fraction),
                        int(task.split_seed))


def file_shape(task: TaskConfig) -> tuple[int, int]:
    """(inputs, outputs) of the file's data set, as :func:`load_file` shapes it."""
    data = load_file(task)
    return data.n_inputs, data.n_outputs


@functools.lru_cache(maxsize=8)
def _load_cached(resolved: str, mtime: int, size: int, shown: str, target: str,
                 scale: str, test_fraction: float, split_seed: int) -> Dataset:
    path = Path(resolved)
    where = f"'{shown}'"
    common = {"target": target, "scale": scale, "name": path.stem,
              "test_fraction": test_fraction, "split_seed": split_seed, "where": where}
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path, where)
        return from_arrays(*arrays, **common)
    if suffix == ".csv":
        x, y, columns = _read_csv(path, where)
        return from_arrays(x, y, columns=columns, **common)
    raise DataError(f"task.path {where} must end in .npz or .csv, not {path.suffix!r}")


def _read_npz(path: Path, where: str) -> tuple:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if set(_NPZ_SPLIT) <= keys:
                names = _NPZ_SPLIT
            elif {"x", "y"} <= keys:
                names = ("x", "y")
            else:
                found = ", ".join(sorted(keys)) or "no arrays"
                raise DataError(f"{where} must hold x_train, y_train, x_test and y_test (or "
                                f"x and y), not {found}")
            return tuple(_loaded(npz, k, where) for k in names)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npz file: "
                        f"{' '.join(str(exc).split())}") from None


def _loaded(npz, key: str, where: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError:  # object arrays need pickle, which we refuse
        raise DataError(f"{where}: array {key!r} holds Python objects, not numbers") from None


def _read_csv(path: Path, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"{where} is not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{where} could not be read: {' '.join(str(exc).split())}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{where} is empty; it needs a header row and data rows")
    header = [c.strip() for c in rows[0]]
    if len(header) < 2:
        raise DataError(f"{where} has {len(header)} column; it needs input columns and a "
                        "target column (named 'label', or the last one)")
    if all(_is_number(c) for c in header):
        raise DataError(f"{where} has no header row: its first row is numbers; add a row "
                        "of column names")
    target = header.index("label") if "label" in header else len(header) - 1
    values = np.empty((len(rows) - 1, len(header)))
    if len(values) == 0:
        raise DataError(f"{where} has a header row but no data rows")
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise DataError(f"{where} line {line} has {len(row)} cells, the header "
                            f"{len(header)}")
        for j, cell in enumerate(row):
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{where} line {line}, column '{header[j]}': {cell.strip()!r} "
                                "is not a number") from None
            if not np.isfinite(v):
                raise DataError(f"{where} line {line}, column '{header[j]}': {cell.strip()!r} "
                                "is not a finite number")
            values[i, j] = v
    inputs = [j for j in range(len(header)) if j != target]
    return values[:, inputs], values[:, target], [header[j] for j in inputs]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric(a, name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} must hold numbers") from None
    if arr.size and not np.isfinite(arr).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise DataError(f"{where}: {name} has {arr[idx]} at index {idx}; every value must "
                        "be a finite number")
    return arr


def _matrix(a, name: str, where: str) -> np.ndarray:
    arr = _numeric(a, name, where)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(f"{where}: {name} must be 2-D (samples x features), not {arr.ndim}-D")
    if len(arr) == 0 or arr.shape[1] == 0:
        raise DataError(f"{where}: {name} is empty (shape {arr.shape})")
    return np.ascontiguousarray(arr)


def _targets_array(a, name: str, where: str) -> np.ndarray:
    arr = _numeric(a, name, where)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(f"{where}: {name} must be 1-D (one target per sample) or 2-D, "
                        f"not {arr.ndim}-D")
    return np.ascontiguousarray(arr)


def _same_length(x, y, xn: str, yn: str, where: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{where}: {xn} has {len(x)} rows but {yn} {len(y)}")


def _split(x, y, fraction: float, seed: int, where: str):
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"task.test_fraction must be a number >= 0 and < 1, not {fraction}")
    if fraction == 0:
        return x, y, x, y
    n_test = int(round(len(x) * fraction))
    if n_test < 1 or n_test >= len(x):
        raise DataError(f"{where}: {len(x)} samples are too few to split off a test "
                        f"fraction of {fraction}")
    order = np.random.default_rng([seed, 0x5E7]).permutation(len(x))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return x[train], y[train], x[test], y[test]


def _is_class(y: np.ndarray) -> bool:
    return y.shape[1] == 1 and bool(np.all(y == np.round(y))) and bool(np.all(y >= 0))


def _target_kind(target: str, y_tr: np.ndarray, y_te: np.ndarray) -> str:
    if target == "value":
        return "value"
    whole = _is_class(y_tr) and _is_class(y_te)
    if target == "class" and not whole:
        bad = y_tr if not _is_class(y_tr) else y_te
        if bad.shape[1] != 1:
            raise DataError(f"class targets must be one column of labels, not {bad.shape[1]}")
        flat = bad[:, 0]
        v = flat[(flat != np.round(flat)) | (flat < 0)][0]
        raise DataError(f"class targets must be whole numbers >= 0 (labels 0..K-1), not {v}; "
                        "use task.target = 'value' for regression")
    if target == "class" and max(y_tr.max(), y_te.max()) > 1 << 16:
        raise DataError(f"class label {int(max(y_tr.max(), y_te.max()))} is too large "
                        "(labels are 0..K-1)")
    return "class" if whole and max(y_tr.max(), y_te.max()) <= 1 << 16 else "value"


def _scale(x_tr: np.ndarray, x_te: np.ndarray, scale: str):
    if scale == "none":
        return x_tr, x_te
    if scale == "minmax":
        lo, span = x_tr.min(axis=0), np.ptp(x_tr, axis=0)
    else:
        lo, span = x_tr.mean(axis=0), x_tr.std(axis=0)
    span = np.where(span > 0, span, 1.0)
    return (x_tr - lo) / span, (x_te - lo) / span


def check_data_fits(task: TaskConfig, data: Dataset) -> None:
    """One line when ``task.inputs``/``task.outputs`` (set) disagree with the data."""
    for field, have, what in (("inputs", data.n_inputs, "input columns"),
                              ("outputs", data.n_outputs, "target columns")):
        want = getattr(task, field)
        if want and want != have:
            raise DataError(f"task.{field} must be {have} (the data has {have} {what}), "
                            f"not {want}")
