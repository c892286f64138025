"""Tests for golden_model.datasets: contents, shapes, determinism, file loaders, errors.

File-backed loaders are exercised on tiny IDX / CIFAR files written into pytest's
``tmp_path``; nothing is written anywhere else and nothing is downloaded.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import TaskConfig
from golden_model.datasets import DataError, Dataset, load_dataset

# ------------------------------------------------------------------------ helpers


def _check_layout(ds: Dataset) -> None:
    """Every array has the promised dtype, layout and range."""
    for split in ("train", "test"):
        x = getattr(ds, f"x_{split}")
        y = getattr(ds, f"y_{split}")
        labels = getattr(ds, f"labels_{split}")
        assert x.dtype == np.float64 and y.dtype == np.float64 and labels.dtype == np.int64
        assert x.flags.c_contiguous and y.flags.c_contiguous and labels.flags.c_contiguous
        assert x.ndim == 2 and y.ndim == 2 and labels.ndim == 1
        assert len(x) == len(y) == len(labels)
        assert x.shape[1] == ds.n_inputs and y.shape[1] == ds.n_outputs
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert labels.min() >= 0 and labels.max() < ds.n_classes
        if ds.n_outputs == 1:
            np.testing.assert_array_equal(y[:, 0], labels)
        else:
            np.testing.assert_array_equal(y, np.eye(ds.n_classes)[labels])


def _idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return head + payload


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _pixels(n: int, size: int, seed: int) -> np.ndarray:
    px = np.random.default_rng(seed).integers(0, 256, size=(n, size), dtype=np.uint8)
    px[0, 0], px[0, 1] = 0, 255  # make sure both ends of the scale occur
    return px


def _write_mnist(
    folder: Path, n_train: int = 5, n_test: int = 3, gz: bool = False
) -> dict[str, np.ndarray]:
    """Write a tiny, valid MNIST-format set; return the raw pixels and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = {
        "x_train": _pixels(n_train, 784, 1),
        "x_test": _pixels(n_test, 784, 2),
        "l_train": (np.arange(n_train) * 3 % 10).astype(np.uint8),
        "l_test": (np.arange(n_test) * 7 % 10).astype(np.uint8),
    }
    for prefix, split in (("train", "train"), ("t10k", "test")):
        x, lab = raw[f"x_{split}"], raw[f"l_{split}"]
        _write(
            folder / f"{prefix}-images-idx3-ubyte",
            _idx_bytes(0x803, (len(x), 28, 28), x.tobytes()),
            gz,
        )
        _write(
            folder / f"{prefix}-labels-idx1-ubyte",
            _idx_bytes(0x801, (len(lab),), lab.tobytes()),
            gz,
        )
    return raw


def _cifar_bytes(labels: np.ndarray, pixels: np.ndarray) -> bytes:
    return np.column_stack([labels.astype(np.uint8), pixels]).astype(np.uint8).tobytes()


def _write_cifar(folder: Path, batches: tuple[int, ...] = (1, 2)) -> dict[str, np.ndarray]:
    """Write tiny CIFAR-10 batch files (2 records each, 3 in the test batch)."""
    folder.mkdir(parents=True, exist_ok=True)
    xs, ls = [], []
    for b in batches:
        px, lab = _pixels(2, 3072, 10 + b), np.array([b % 10, (b + 5) % 10])
        (folder / f"data_batch_{b}.bin").write_bytes(_cifar_bytes(lab, px))
        xs.append(px)
        ls.append(lab)
    px_test, lab_test = _pixels(3, 3072, 99), np.array([9, 0, 4])
    (folder / "test_batch.bin").write_bytes(_cifar_bytes(lab_test, px_test))
    return {
        "x_train": np.concatenate(xs) if xs else np.zeros((0, 3072), np.uint8),
        "l_train": np.concatenate(ls) if ls else np.zeros(0, np.int64),
        "x_test": px_test,
        "l_test": lab_test,
    }


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _raises(match: str, task: TaskConfig) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        load_dataset(task)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return info.value


# ------------------------------------------------------------------ xor / parity


def test_xor_truth_table() -> None:
    ds = load_dataset(TaskConfig(name="xor"))
    _check_layout(ds)
    np.testing.assert_array_equal(ds.x_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.y_train, [[0], [1], [1], [0]])
    np.testing.assert_array_equal(ds.labels_train, [0, 1, 1, 0])
    np.testing.assert_array_equal(ds.x_test, ds.x_train)
    np.testing.assert_array_equal(ds.y_test, ds.y_train)
    assert (ds.name, ds.n_inputs, ds.n_outputs, ds.n_classes) == ("xor", 2, 1, 2)


@pytest.mark.parametrize("bits", [2, 3, 5])
def test_parity_truth_table(bits: int) -> None:
    ds = load_dataset(TaskConfig(name="parity", parity_bits=bits))
    _check_layout(ds)
    assert ds.x_train.shape == (2**bits, bits) and ds.y_train.shape == (2**bits, 1)
    assert set(np.unique(ds.x_train)) == {0.0, 1.0}
    patterns = {tuple(row) for row in ds.x_train.astype(int)}
    assert len(patterns) == 2**bits  # every pattern exactly once
    np.testing.assert_array_equal(ds.labels_train, ds.x_train.sum(axis=1).astype(int) % 2)
    np.testing.assert_array_equal(ds.y_train[:, 0], ds.labels_train)
    np.testing.assert_array_equal(ds.x_test, ds.x_train)
    np.testing.assert_array_equal(ds.labels_test, ds.labels_train)
    assert ds.n_classes == 2


def test_parity_3_bits_explicit() -> None:
    ds = load_dataset(TaskConfig(name="parity", parity_bits=3))
    np.testing.assert_array_equal(ds.x_train[3], [0, 1, 1])
    np.testing.assert_array_equal(ds.labels_train, [0, 1, 1, 0, 1, 0, 0, 1])


def test_seed_does_not_change_truth_tables() -> None:
    a = load_dataset(TaskConfig(name="parity", parity_bits=4), seed=0)
    b = load_dataset(TaskConfig(name="parity", parity_bits=4), seed=9)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)


# ------------------------------------------------------------------------ images7


def test_images7_shapes_and_balance() -> None:
    ds = load_dataset(TaskConfig(name="images7", images_per_class=12, image_noise=0.2))
    _check_layout(ds)
    assert ds.x_train.shape == (48, 49) and ds.x_test.shape == (48, 49)
    assert (ds.n_inputs, ds.n_outputs, ds.n_classes) == (49, 4, 4)
    np.testing.assert_array_equal(np.bincount(ds.labels_train), [12] * 4)
    np.testing.assert_array_equal(np.bincount(ds.labels_test), [12] * 4)
    assert len(set(ds.labels_train[:8])) > 1  # shuffled, not class by class


def test_images7_deterministic_per_seed() -> None:
    task = TaskConfig(name="images7", images_per_class=5)
    a, b, c = load_dataset(task, seed=3), load_dataset(task, seed=3), load_dataset(task, seed=4)
    for field in ("x_train", "y_train", "labels_train", "x_test", "labels_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train, a.x_test)  # test split is a separate draw


def test_images7_leaves_global_random_state_alone() -> None:
    _, keys, pos, *_ = np.random.get_state()  # noqa: NPY002 (the legacy state is the point)
    load_dataset(TaskConfig(name="images7", images_per_class=3))
    _, keys_after, pos_after, *_ = np.random.get_state()  # noqa: NPY002
    assert pos_after == pos and np.array_equal(keys_after, keys)


def test_images7_noise_amplitude() -> None:
    clean = load_dataset(TaskConfig(name="images7", images_per_class=4, image_noise=0.0))
    assert set(np.unique(clean.x_train)) == {0.0, 1.0}
    noisy = load_dataset(TaskConfig(name="images7", images_per_class=4, image_noise=0.3))
    protos = {lab: clean.x_train[clean.labels_train == lab][0] for lab in range(4)}
    deviation = np.abs(noisy.x_train - np.array([protos[lab] for lab in noisy.labels_train]))
    assert 0.0 < deviation.max() <= 0.3


@pytest.mark.parametrize("noise", [0.1, 0.4])
def test_images7_classes_distinguishable(noise: float) -> None:
    """Nearest class mean (from train) classifies the test split almost perfectly."""
    ds = load_dataset(TaskConfig(name="images7", images_per_class=40, image_noise=noise))
    means = np.stack([ds.x_train[ds.labels_train == k].mean(axis=0) for k in range(4)])
    dist = ((ds.x_test[:, None, :] - means[None]) ** 2).sum(axis=2)
    accuracy = np.mean(dist.argmin(axis=1) == ds.labels_test)
    assert accuracy >= 0.98
    # the four class means are far apart compared to the noise
    gaps = [np.abs(means[i] - means[j]).sum() for i in range(4) for j in range(i + 1, 4)]
    assert min(gaps) > 8.0


# ------------------------------------------------------------------------- digits


def test_digits_split_and_scaling() -> None:
    ds = load_dataset(TaskConfig(name="digits"))
    _check_layout(ds)
    assert ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert (ds.n_inputs, ds.n_outputs, ds.n_classes) == (64, 10, 10)
    assert ds.x_train.max() == 1.0
    assert np.all(np.isin(ds.x_train * 16, np.arange(17)))
    counts = np.bincount(ds.labels_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified


def test_digits_split_independent_of_seed() -> None:
    a = load_dataset(TaskConfig(name="digits"), seed=0)
    b = load_dataset(TaskConfig(name="digits"), seed=17)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.labels_test, b.labels_test)
    # train and test are disjoint parts of the 1797 samples
    train_rows = {row.tobytes() for row in a.x_train}
    assert sum(row.tobytes() in train_rows for row in a.x_test) < 5  # only exact duplicates


# ------------------------------------------------------------------------- limits


@pytest.mark.parametrize("name", ["xor", "parity", "images7", "digits"])
def test_limits_keep_first_samples(name: str) -> None:
    full = load_dataset(TaskConfig(name=name, images_per_class=6), seed=2)
    cut = load_dataset(
        TaskConfig(name=name, images_per_class=6, train_limit=3, test_limit=2), seed=2
    )
    _check_layout(cut)
    assert len(cut.x_train) == 3 and len(cut.x_test) == 2
    np.testing.assert_array_equal(cut.x_train, full.x_train[:3])
    np.testing.assert_array_equal(cut.y_train, full.y_train[:3])
    np.testing.assert_array_equal(cut.labels_test, full.labels_test[:2])
    assert cut.n_outputs == full.n_outputs


def test_limit_larger_than_set_keeps_all() -> None:
    ds = load_dataset(TaskConfig(name="xor", train_limit=100, test_limit=100))
    assert len(ds.x_train) == 4 and len(ds.x_test) == 4


def test_unknown_task() -> None:
    _raises("unknown task 'bogus'", TaskConfig(name="bogus"))


# ---------------------------------------------------------------------- MNIST (IDX)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader_values(tmp_path: Path, name: str, gz: bool) -> None:
    raw = _write_mnist(tmp_path, gz=gz)
    before = _files(tmp_path)
    ds = load_dataset(TaskConfig(name=name, data_dir=str(tmp_path)))
    assert _files(tmp_path) == before  # the loader writes nothing
    _check_layout(ds)
    assert ds.x_train.shape == (5, 784) and ds.x_test.shape == (3, 784)
    assert (ds.n_inputs, ds.n_outputs, ds.n_classes) == (784, 10, 10)
    np.testing.assert_array_equal(ds.x_train, raw["x_train"] / 255.0)
    np.testing.assert_array_equal(ds.x_test, raw["x_test"] / 255.0)
    np.testing.assert_array_equal(ds.labels_train, raw["l_train"])
    np.testing.assert_array_equal(ds.labels_test, raw["l_test"])
    assert ds.x_train[0, 0] == 0.0 and ds.x_train[0, 1] == 1.0


def test_idx_loader_mixed_plain_and_gz_and_limits(tmp_path: Path) -> None:
    raw = _write_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    _write(labels, labels.read_bytes(), gz=True)
    labels.unlink()
    ds = load_dataset(TaskConfig(name="mnist", data_dir=str(tmp_path), train_limit=2, test_limit=1))
    np.testing.assert_array_equal(ds.x_train, raw["x_train"][:2] / 255.0)
    np.testing.assert_array_equal(ds.labels_test, raw["l_test"][:1])


def test_idx_empty_data_dir() -> None:
    _raises(
        r"^task\.data_dir must name the folder holding the MNIST IDX files for task 'mnist'$",
        TaskConfig(name="mnist"),
    )
    _raises("Fashion-MNIST IDX files for task 'fashion_mnist'", TaskConfig(name="fashion_mnist"))


def test_idx_data_dir_not_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    _raises(
        f"'{re.escape(str(missing))}' is not a folder",
        TaskConfig(name="mnist", data_dir=str(missing)),
    )


def test_idx_missing_file(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    path = re.escape(str(tmp_path / "t10k-images-idx3-ubyte"))
    _raises(
        rf"^MNIST file '{path}' not found \(also tried \.gz\)$",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


def test_idx_wrong_magic(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    images = tmp_path / "train-images-idx3-ubyte"
    labels.write_bytes(images.read_bytes())  # an image file where labels belong
    _raises(
        rf"^'{re.escape(str(labels))}' is not an IDX label file: magic 0x00000803, "
        r"expected 0x00000801$",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )
    images.write_bytes(b"\x00\x00\x08\x01" + images.read_bytes()[4:])
    _raises(
        rf"'{re.escape(str(images))}' is not an IDX image file: magic 0x00000801",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_truncated(tmp_path: Path, gz: bool) -> None:
    _write_mnist(tmp_path, gz=gz)
    images = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    data = gzip.decompress(images.read_bytes()) if gz else images.read_bytes()
    _write(tmp_path / "train-images-idx3-ubyte", data[:-100], gz=gz)
    _raises(
        rf"^'{re.escape(str(images))}' is truncated: {16 + 5 * 784 - 100} bytes, "
        rf"expected {16 + 5 * 784} for shape 5x28x28$",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x08", b"\x00\x00\x08\x03\x00\x00"])
def test_idx_truncated_header(tmp_path: Path, data: bytes) -> None:
    _write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(data)
    _raises(
        rf"^'{re.escape(str(images))}' is truncated: {len(data)} bytes",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


def test_idx_trailing_bytes(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes() + b"\x01\x02")
    _raises(
        rf"'{re.escape(str(labels))}' has 2 trailing bytes",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


def test_idx_count_mismatch(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(0x801, (4,), bytes([1, 2, 3, 4])))
    images = tmp_path / "train-images-idx3-ubyte"
    _raises(
        rf"^'{re.escape(str(images))}' holds 5 images but '{re.escape(str(labels))}' "
        r"holds 4 labels$",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


def test_idx_bad_label_and_image_size(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(0x801, (3,), bytes([1, 12, 3])))
    _raises(
        rf"'{re.escape(str(labels))}' has label 12 at index 1, expected 0-9",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(_idx_bytes(0x803, (5, 8, 8), bytes(5 * 64)))
    _raises(
        rf"'{re.escape(str(images))}' holds 8x8 images, expected 28x28",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


def test_idx_corrupt_gzip(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    packed = tmp_path / "train-images-idx3-ubyte.gz"
    packed.write_bytes(b"this is not gzip data")
    _raises(
        rf"^'{re.escape(str(packed))}' is not a valid gzip file",
        TaskConfig(name="mnist", data_dir=str(tmp_path)),
    )


# ------------------------------------------------------------------------ CIFAR-10


@pytest.mark.parametrize("subfolder", [False, True], ids=["flat", "cifar-10-batches-bin"])
def test_cifar_loader_values(tmp_path: Path, subfolder: bool) -> None:
    folder = tmp_path / "cifar-10-batches-bin" if subfolder else tmp_path
    raw = _write_cifar(folder, batches=(1, 2, 5))
    before = _files(tmp_path)
    ds = load_dataset(TaskConfig(name="cifar10", data_dir=str(tmp_path)))
    assert _files(tmp_path) == before  # the loader writes nothing
    _check_layout(ds)
    assert ds.x_train.shape == (6, 3072) and ds.x_test.shape == (3, 3072)
    assert (ds.n_inputs, ds.n_outputs, ds.n_classes) == (3072, 10, 10)
    np.testing.assert_array_equal(ds.x_train, raw["x_train"] / 255.0)
    np.testing.assert_array_equal(ds.labels_train, [1, 6, 2, 7, 5, 0])
    np.testing.assert_array_equal(ds.x_test, raw["x_test"] / 255.0)
    np.testing.assert_array_equal(ds.labels_test, [9, 0, 4])


def test_cifar_limits(tmp_path: Path) -> None:
    raw = _write_cifar(tmp_path, batches=(1, 2))
    ds = load_dataset(
        TaskConfig(name="cifar10", data_dir=str(tmp_path), train_limit=3, test_limit=1)
    )
    np.testing.assert_array_equal(ds.x_train, raw["x_train"][:3] / 255.0)
    np.testing.assert_array_equal(ds.labels_test, [9])


def test_cifar_empty_data_dir() -> None:
    _raises(
        r"^task\.data_dir must name the folder holding the CIFAR-10 binary batches "
        r"for task 'cifar10'$",
        TaskConfig(name="cifar10"),
    )


def test_cifar_missing_test_batch(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    path = re.escape(str(tmp_path / "test_batch.bin"))
    _raises(
        rf"^CIFAR-10 file '{path}' not found$", TaskConfig(name="cifar10", data_dir=str(tmp_path))
    )


def test_cifar_missing_training_batches(tmp_path: Path) -> None:
    _write_cifar(tmp_path, batches=())
    _raises(
        rf"no CIFAR-10 training batch .* found in '{re.escape(str(tmp_path))}'$",
        TaskConfig(name="cifar10", data_dir=str(tmp_path)),
    )


def test_cifar_bad_size(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    test_batch = tmp_path / "test_batch.bin"
    test_batch.write_bytes(bytes(5000))
    _raises(
        rf"^'{re.escape(str(test_batch))}' is truncated: 5000 bytes is not a multiple of "
        r"3073-byte records$",
        TaskConfig(name="cifar10", data_dir=str(tmp_path)),
    )
    test_batch.write_bytes(b"")
    _raises(
        rf"'{re.escape(str(test_batch))}' is empty",
        TaskConfig(name="cifar10", data_dir=str(tmp_path)),
    )


def test_cifar_bad_label(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    batch = tmp_path / "data_batch_2.bin"
    batch.write_bytes(_cifar_bytes(np.array([3, 10]), _pixels(2, 3072, 0)))
    _raises(
        rf"^'{re.escape(str(batch))}' has label 10 at record 1, expected 0-9$",
        TaskConfig(name="cifar10", data_dir=str(tmp_path)),
    )
