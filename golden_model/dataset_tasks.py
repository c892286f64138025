"""The built-in data sets that need no files: generated or bundled with a package.

* ``xor`` / ``parity``: :func:`parity_table`, the complete truth table.
* ``images7``: :func:`images7`, four 7x7 prototypes plus uniform pixel noise,
  deterministic for a given seed.
* ``digits``: :func:`digits`, scikit-learn's bundled 8x8 digits with a fixed,
  seed-independent, stratified 80/20 split.

Each returns raw splits ``(inputs, int64 labels)``; :func:`golden_model.datasets.load_dataset`
shapes them into a :class:`~golden_model.datasets.Dataset`.
"""

from __future__ import annotations

import numpy as np

_Split = tuple[np.ndarray, np.ndarray]


def parity_table(bits: int) -> _Split:
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


IMAGES7_PROTOTYPES = _images7_prototypes()


def images7(per_class: int, noise: float, seed: int) -> tuple[_Split, _Split]:
    """Prototypes plus U(-noise, noise) pixel noise, clipped to [0, 1], shuffled.

    One generator (``default_rng([seed, 7])``) draws the training split, then the test
    split, so the two never share a draw.
    """
    rng = np.random.default_rng([seed, 7])
    n_classes = len(IMAGES7_PROTOTYPES)

    def split() -> _Split:
        labels = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
        x = IMAGES7_PROTOTYPES[labels] + rng.uniform(-noise, noise, (len(labels), 49))
        order = rng.permutation(len(labels))
        return np.clip(x, 0.0, 1.0)[order], labels[order]

    train = split()
    return train, split()


def digits() -> tuple[_Split, _Split]:
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
