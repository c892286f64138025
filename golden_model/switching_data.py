"""Switching data of a stochastic device: a SYNTHETIC generator, and reading a CSV.

No measurements ship with the toolkit. :func:`synthesize` makes data shaped like a
heater-cryotron measurement (a heater current switches a superconducting channel):

- input ``bias``: the heater bias current, normalized to [0, 1], drawn uniformly;
- the channel switches when the bias exceeds a threshold that jitters from trial to
  trial, threshold ~ N(SWITCH_MID, SWITCH_JITTER^2), so the switching probability is
  the smooth sigmoid-like P(x) = Phi((x - SWITCH_MID) / SWITCH_JITTER)
  (:func:`true_switch_probability`);
- output ``output``: a measured voltage level. Not switched: N(0, OFF_STD^2).
  Switched: N(ON_LEVEL + ON_SLOPE (x - SWITCH_MID), (ON_STD + ON_STD_SLOPE x)^2), a
  level that rises with the bias and whose spread grows with it. The output is
  therefore bimodal near the threshold, which is what a mixture captures and a single
  Gaussian does not;
- ``switched``: 0/1, the hidden state (for checks; a fit uses ``output``).

These numbers are made up to look plausible, not measured from any device.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from .dataset_files import DataError

SWITCH_MID = 0.5
SWITCH_JITTER = 0.07
OFF_STD = 0.02
ON_LEVEL = 0.8
ON_SLOPE = 0.3
ON_STD = 0.03
ON_STD_SLOPE = 0.06
COLUMNS = ("bias", "switched", "output")
# A fit needs at least this many rows (it holds some out, and bins them).
MIN_ROWS = 50


def true_switch_probability(x: np.ndarray) -> np.ndarray:
    """The generator's switching probability at bias x."""
    return ndtr((np.asarray(x, dtype=float) - SWITCH_MID) / SWITCH_JITTER)


def true_prob_above(x: np.ndarray, threshold: float) -> np.ndarray:
    """The generator's P(output > threshold | x), from its two output levels."""
    x = np.asarray(x, dtype=float)
    p = true_switch_probability(x)
    on_mu = ON_LEVEL + ON_SLOPE * (x - SWITCH_MID)
    on_sd = ON_STD + ON_STD_SLOPE * x
    return p * ndtr((on_mu - threshold) / on_sd) + (1 - p) * ndtr(-threshold / OFF_STD)


def synthesize(samples: int, seed: int) -> dict[str, np.ndarray]:
    """``samples`` synthetic trials from ``np.random.default_rng(seed)``: the columns
    of :data:`COLUMNS`."""
    rng = np.random.default_rng(seed)
    bias = rng.uniform(0.0, 1.0, samples)
    threshold = SWITCH_MID + SWITCH_JITTER * rng.standard_normal(samples)
    switched = bias > threshold
    noise = rng.standard_normal(samples)
    on = ON_LEVEL + ON_SLOPE * (bias - SWITCH_MID) + (ON_STD + ON_STD_SLOPE * bias) * noise
    off = OFF_STD * noise
    return {"bias": bias, "switched": switched.astype(np.int64),
            "output": np.where(switched, on, off)}


def write_csv(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """The columns of ``data`` as a CSV with a header row."""
    names = list(data)
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in zip(*(data[n] for n in names), strict=True):
            w.writerow([f"{v:.6g}" if isinstance(v, float | np.floating) else int(v)
                        for v in row])


def read_columns(path: str | Path, x_col: str, y_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``x_col`` and ``y_col`` of a CSV with a header row, as floats; a missing
    file or column, a cell that is not a number, or fewer than :data:`MIN_ROWS` rows is
    a :class:`DataError` of one line naming the file."""
    p = Path(path)
    name = repr(str(p))
    if not p.is_file():
        raise DataError(f"data file {name} does not exist")
    try:
        with p.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"data file {name} cannot be read as CSV: {exc}") from None
    if not rows:
        raise DataError(f"data file {name} is empty")
    header = [h.strip() for h in rows[0]]
    for col in (x_col, y_col):
        if col not in header:
            raise DataError(f"data file {name} has no column {col!r} (columns: "
                            f"{', '.join(header)})")
    ix, iy = header.index(x_col), header.index(y_col)
    body = [r for r in rows[1:] if r and any(c.strip() for c in r)]
    if len(body) < MIN_ROWS:
        raise DataError(f"data file {name} has {len(body)} data rows; a fit needs at "
                        f"least {MIN_ROWS}")
    out = np.empty((len(body), 2))
    for n, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DataError(f"data file {name} line {n} has {len(r)} fields, not "
                            f"{len(header)}")
        try:
            out[n - 2] = float(r[ix]), float(r[iy])
        except ValueError:
            raise DataError(f"data file {name} line {n}: {x_col!r} and {y_col!r} must be "
                            f"numbers, not {r[ix]!r}, {r[iy]!r}") from None
    if not np.isfinite(out).all():
        raise DataError(f"data file {name} has values that are not finite")
    if np.ptp(out[:, 0]) == 0 or np.ptp(out[:, 1]) == 0:
        raise DataError(f"data file {name}: {x_col!r} and {y_col!r} must each take more "
                        "than one value")
    return out[:, 0], out[:, 1]
