"""``mgd-hw gradcheck --widths``: steps until the MGD gradient estimate reaches a
cosine with the true gradient, against the network's size.

For each hidden width h (a 64-h-10 network on digits: ``network.hidden = [h]``) and
each perturbation mode, :func:`diagnostics.gradient_cosine` integrates G at fixed theta
and a fixed sample (tau_x = tau_theta past the horizon, as paper 2 measures it) in the
config's R runs; a run's figure is the first checkpoint (about 20 a decade, so within
12%) where its cosine reaches the level, and the width's figure is the median over the
runs (a run that never reaches it counts as infinite). :func:`fit_power` fits
steps = c x count^a on log-log axes, count being what the mode perturbs: the weights
and biases (weight perturbation) or the neurons (node perturbation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from golden_model.config import MGDConfig, derive
from golden_model.datasets import Dataset
from golden_model.diagnostics import gradient_cosine, log_checkpoints
from golden_model.shapes import network_param_count


@dataclass
class WidthPoint:
    """One width and mode: the perturbed count, each run's steps and their median."""

    width: int
    mode: str
    params: int
    neurons: int
    perturbed: int
    steps: list[int | None]
    median: float | None  # None: the median run never reached the level
    seconds: float


@dataclass
class PowerFit:
    """steps = c x count^a over the widths whose median reached the level."""

    mode: str
    exponent: float
    coefficient: float
    points: int


def median_steps(steps: list[int | None]) -> float | None:
    """The median with None (never) counted as infinite; None if the median is."""
    vals = sorted(math.inf if s is None else s for s in steps)
    med = float(np.median(vals))
    return None if math.isinf(med) else med


def width_config(cfg: MGDConfig, width: int, mode: str) -> MGDConfig:
    """``cfg`` with one hidden layer of ``width`` neurons and the perturbation ``mode``."""
    return derive(cfg, {"network": {"hidden": [width]}, "mgd": {"mode": mode}})


def measure(cfg: MGDConfig, data: Dataset, widths: list[int], modes: list[str],
            level: float, max_steps: int, per_decade: int = 20) -> list[WidthPoint]:
    """Every (width, mode) point, integrating each until all runs reach ``level`` or
    ``max_steps`` passed."""
    import time

    checkpoints = log_checkpoints(max_steps, per_decade)
    out = []
    for width in widths:
        for mode in modes:
            wcfg = width_config(cfg, width, mode)
            sizes = [data.n_inputs, width, data.n_outputs]
            params = network_param_count(sizes)
            neurons = sum(sizes[1:])
            start = time.perf_counter()
            curve = gradient_cosine(wcfg, data, checkpoints, stop_at=level)
            steps = curve.steps_each(level)
            out.append(WidthPoint(width, mode, params, neurons,
                                  neurons if mode == "node" else params, steps,
                                  median_steps(steps), time.perf_counter() - start))
    return out


def fit_power(points: list[WidthPoint], mode: str) -> PowerFit | None:
    """Least squares of log(steps) on log(perturbed count) for ``mode``'s points that
    reached the level; None with fewer than two."""
    pts = [p for p in points if p.mode == mode and p.median is not None]
    if len(pts) < 2:
        return None
    x = np.log([p.perturbed for p in pts])
    y = np.log([p.median for p in pts])
    a, b = np.polyfit(x, y, 1)
    return PowerFit(mode, float(a), float(math.exp(b)), len(pts))


def to_dict(points: list[WidthPoint], fits: list[PowerFit], level: float,
            runs: int) -> dict:
    return {"level": level, "runs": runs, "points": [asdict(p) for p in points],
            "fits": [asdict(f) for f in fits]}


def format_table(points: list[WidthPoint], fits: list[PowerFit], level: float,
                 runs: int) -> str:
    """The table the command prints, then one line per fit."""
    lines = [f"steps until the gradient estimate's cosine with the true gradient reaches "
             f"{level:g} (median of {runs} runs; fixed theta and sample)",
             f"{'width':>6} {'params':>7} {'neurons':>7} {'mode':>6} {'median steps':>13} "
             f"{'reached':>7} {'steps/count':>11}"]
    for p in points:
        med = "never" if p.median is None else f"{p.median:,.0f}"
        per = "-" if p.median is None else f"{p.median / p.perturbed:.2f}"
        got = sum(s is not None for s in p.steps)
        lines.append(f"{p.width:>6} {p.params:>7,} {p.neurons:>7} {p.mode:>6} {med:>13} "
                     f"{got:>3}/{len(p.steps):<3} {per:>11}")
    for f in fits:
        what = "neurons" if f.mode == "node" else "weights and biases"
        lines.append(f"fit {f.mode}: steps = {f.coefficient:.3g} x ({what})^{f.exponent:.2f} "
                     f"over {f.points} widths")
    return "\n".join(lines)
