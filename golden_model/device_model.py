"""A stochastic switching device as a fitted mixture density network, and its file.

:class:`DeviceModel` holds an MDN (:mod:`golden_model.mdn`) with the normalization of
its data: the device input x (e.g. a normalized bias current) is clipped to the range
the fit saw, standardized, and the MDN's mixture is mapped back to output units. It
answers the mixture at any input, the mean output, the probability that the output
exceeds a threshold (the switching probability) and a sample from standard normal
draws, so a caller that owns the random streams decides every random choice.

The device file (``mgd-hw device fit --out``) is an ``.npz`` (arrays ``w0``, ``b0``,
``w1``, ... and ``meta``, a JSON string) or a ``.json`` (the same, arrays as lists).
``meta`` holds ``format`` (:data:`FORMAT`), the components K, the hidden widths, the
normalization (``x_mean``, ``x_std``, ``y_mean``, ``y_std``), the input range
(``x_min``, ``x_max``), the column names, the switching ``threshold`` and what the fit
printed (held-out errors, seed, backend).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from . import mdn

FORMAT = "mgd-hw-device-mdn-1"
_META_KEYS = ("components", "hidden", "x_mean", "x_std", "y_mean", "y_std", "x_min",
              "x_max", "threshold")


class DeviceError(ValueError):
    """A device file is missing or malformed; the message is one line naming it."""


@dataclass
class DeviceModel:
    """An MDN device: ``params`` in normalized units, ``meta`` as in the module doc."""

    params: mdn.Params
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def components(self) -> int:
        return int(self.meta["components"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def mixture(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pi, mu, sigma (x.shape + (K,)) in output units at device inputs x (any
        shape); x is clipped to [x_min, x_max] first."""
        m = self.meta
        x = np.asarray(x, dtype=float)
        xn = (np.clip(x, m["x_min"], m["x_max"]) - m["x_mean"]) / m["x_std"]
        pi, mu, sigma = mdn.mixture(self.params, xn.reshape(-1))
        shape = x.shape + (pi.shape[-1],)
        mu = mu * m["y_std"] + m["y_mean"]
        sigma = sigma * m["y_std"]
        return pi.reshape(shape), mu.reshape(shape), sigma.reshape(shape)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """The expected output at inputs x: sum_k pi_k mu_k."""
        pi, mu, _ = self.mixture(x)
        return (pi * mu).sum(axis=-1)

    def prob_above(self, x: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """P(output > threshold | x) (the switching probability; the file's threshold
        unless given): sum_k pi_k Phi((mu_k - threshold) / sigma_k)."""
        t = self.threshold if threshold is None else threshold
        pi, mu, sigma = self.mixture(x)
        return (pi * ndtr((mu - t) / sigma)).sum(axis=-1)

    def sample(self, x: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """One output per input from two standard normal draws each, ``normals``
        (x.shape + (2,)): the component is the first k with u < pi_1 + ... + pi_k,
        u = Phi(normals[..., 0]) (a uniform draw), and the output is
        mu_k + sigma_k * normals[..., 1]."""
        pi, mu, sigma = self.mixture(x)
        u = ndtr(normals[..., 0])
        cum = np.cumsum(pi, axis=-1)
        k = np.minimum((u[..., None] >= cum).sum(axis=-1), pi.shape[-1] - 1)[..., None]
        pick = np.take_along_axis
        return pick(mu, k, axis=-1)[..., 0] + pick(sigma, k, axis=-1)[..., 0] * normals[..., 1]

    def nll(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean negative log-likelihood (nats a sample) of samples in data units."""
        m = self.meta
        xn = (np.clip(x, m["x_min"], m["x_max"]) - m["x_mean"]) / m["x_std"]
        return mdn.nll(self.params, xn, (y - m["y_mean"]) / m["y_std"]) + float(
            np.log(m["y_std"])
        )

    # --- the file ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the device file (``.npz`` or ``.json``, by the name's ending)."""
        p = Path(path)
        meta = {"format": FORMAT, **self.meta}
        if p.suffix == ".json":
            layers = [{"w": w.tolist(), "b": b.tolist()} for w, b in self.params]
            p.write_text(json.dumps({"meta": meta, "layers": layers}, indent=1) + "\n")
        elif p.suffix == ".npz":
            arrays = {}
            for i, (w, b) in enumerate(self.params):
                arrays[f"w{i}"], arrays[f"b{i}"] = w, b
            with p.open("wb") as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        else:
            raise DeviceError(f"device file {str(p)!r} must end in .npz or .json")


def load_device(path: str | Path) -> DeviceModel:
    """Read a device file; anything wrong is a :class:`DeviceError` of one line."""
    p = Path(path)
    name = repr(str(p))
    if p.suffix not in (".npz", ".json"):
        raise DeviceError(f"device file {name} must end in .npz or .json")
    if not p.is_file():
        raise DeviceError(f"device file {name} does not exist")
    try:
        if p.suffix == ".json":
            doc = json.loads(p.read_text())
            meta = doc["meta"]
            params = [(np.array(lay["w"], dtype=float), np.array(lay["b"], dtype=float))
                      for lay in doc["layers"]]
        else:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                count = sum(1 for k in z.files if k.startswith("w"))
                params = [(z[f"w{i}"].astype(float), z[f"b{i}"].astype(float))
                          for i in range(count)]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DeviceError(f"device file {name} cannot be read as a device: "
                          f"{' '.join(str(exc).split())}") from None
    _check(meta, params, name)
    return DeviceModel(params, meta)


def _check(meta: Any, params: mdn.Params, name: str) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DeviceError(f"device file {name} is not an MGD device file (format "
                          f"{FORMAT!r} expected)")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise DeviceError(f"device file {name} lacks {', '.join(missing)} in its meta")
    k = meta["components"]
    sizes = [1, *meta["hidden"], 3 * k]
    shapes = [(w.shape, b.shape) for w, b in params]
    want = [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    if shapes != want:
        raise DeviceError(f"device file {name} has layer shapes {shapes}, not those of a "
                          f"1-{'-'.join(map(str, sizes[1:]))} MDN")
    if not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in params):
        raise DeviceError(f"device file {name} has weights that are not finite")
