"""Fit a device model (an MDN) to switching data, and measure the fit on held-out data.

:func:`fit_device` splits the samples (seeded), standardizes x and y on the training
part, trains the MDN (NumPy by default, PyTorch when asked) and scores it on the
held-out part:

- held-out NLL: mean -log p(y | x) in nats per sample, in the data's units;
- switching-probability MAE (:func:`switching_mae`): the held-out inputs are cut into
  ``bins`` equal-width bins over their range; in each bin with at least
  :data:`MIN_BIN` samples, the empirical switching fraction is the share of held-out
  outputs above the threshold and the predicted one is the mean over the same samples
  of the MDN's P(y > threshold | x); the MAE is the mean over those bins of the
  absolute difference. A finite sample makes the empirical fraction itself noisy, so
  the floor the MAE cannot beat is reported beside it: the mean over bins of the
  expected |binomial error|, sqrt(2 / pi) sqrt(p (1 - p) / n) with p the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import mdn
from .device_model import DeviceModel

BACKENDS = ("numpy", "torch")
MIN_BIN = 10


@dataclass
class SwitchingError:
    """What :func:`switching_mae` measured: the bins used, their empirical and
    predicted fractions, the MAE and the sampling-noise floor."""

    centers: np.ndarray
    counts: np.ndarray
    empirical: np.ndarray
    predicted: np.ndarray
    mae: float
    floor: float


@dataclass
class FitResult:
    """The fitted device, the held-out scores and the split used."""

    device: DeviceModel
    heldout_nll: float
    switching: SwitchingError
    x_test: np.ndarray
    y_test: np.ndarray


def switching_mae(device: DeviceModel, x: np.ndarray, y: np.ndarray, bins: int = 20,
                  threshold: float | None = None) -> SwitchingError:
    """The switching-probability error of ``device`` on samples (x, y) (module doc)."""
    t = device.threshold if threshold is None else threshold
    edges = np.linspace(x.min(), x.max(), bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    p = device.prob_above(x, t)
    rows = []
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        if n >= MIN_BIN:
            rows.append((0.5 * (edges[b] + edges[b + 1]), n, float((y[sel] > t).mean()),
                         float(p[sel].mean())))
    if not rows:
        raise ValueError(f"no bin holds {MIN_BIN} held-out samples; use fewer bins")
    c, n, e, q = (np.array(v) for v in zip(*rows, strict=True))
    floor = float(np.mean(np.sqrt(2 / np.pi) * np.sqrt(q * (1 - q) / n)))
    return SwitchingError(c, n, e, q, float(np.mean(np.abs(q - e))), floor)


def split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices: a seeded permutation, the last ``fraction`` held out."""
    perm = rng.permutation(n)
    cut = n - max(1, int(round(fraction * n)))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def fit_device(
    x: np.ndarray,
    y: np.ndarray,
    components: int = 3,
    hidden: tuple[int, ...] = (32, 32),
    seed: int = 0,
    threshold: float = 0.5,
    heldout: float = 0.2,
    bins: int = 20,
    settings: mdn.FitSettings | None = None,
    backend: str = "numpy",
    progress=None,
) -> FitResult:
    """Fit a K-component MDN to samples (x, y) and score it on a held-out split.

    The split, the initial weights and the minibatch order come from
    ``np.random.default_rng([seed, 0])``, ``[seed, 1]`` and ``[seed, 2]``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    settings = settings or mdn.FitSettings()
    train, test = split(len(x), heldout, np.random.default_rng([seed, 0]))
    xt, yt = x[train], y[train]
    meta = {
        "components": components, "hidden": list(hidden),
        "x_mean": float(xt.mean()), "x_std": float(xt.std()) or 1.0,
        "y_mean": float(yt.mean()), "y_std": float(yt.std()) or 1.0,
        "x_min": float(xt.min()), "x_max": float(xt.max()), "threshold": float(threshold),
    }
    xn = (xt - meta["x_mean"]) / meta["x_std"]
    yn = (yt - meta["y_mean"]) / meta["y_std"]
    params0 = mdn.init_params(list(hidden), components, np.random.default_rng([seed, 1]))
    order = np.random.default_rng([seed, 2])
    if backend == "torch":
        from .mdn_torch import fit_torch

        params = fit_torch(params0, xn, yn, settings, order, progress)
    else:
        params = mdn.fit(params0, xn, yn, settings, order, progress)
    device = DeviceModel(params, meta)
    x_test, y_test = x[test], y[test]
    heldout_nll = device.nll(x_test, y_test)
    err = switching_mae(device, x_test, y_test, bins, threshold)
    device.meta.update({
        "backend": backend, "seed": seed, "samples": len(x), "heldout_samples": len(test),
        "heldout_nll": heldout_nll, "heldout_switching_mae": err.mae,
        "heldout_mae_floor": err.floor, "bins": bins, "fit_steps": settings.steps,
    })
    return FitResult(device, heldout_nll, err, x_test, y_test)
