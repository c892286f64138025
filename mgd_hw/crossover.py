"""The crossover across widths: projected hardware MGD time to a target accuracy
against the best tuned CPU backprop time, per hidden width (issue 14, item 4).

For each width h of a one-hidden-layer network (``network.hidden = [h]``):

1. MGD's steps to the target: the median over the runs of a finished ``mgd-hw sweep``
   of the float model over ``network.hidden`` (its ``results.csv``; a run that never
   reached the target counts as infinite), per perturbation mode. A sweep over more
   fields than the width (``mgd.eta``, say) is MGD's own search: at each width the
   point with the fewest median steps is taken (as backprop's best grid point is),
   its config (time constants included) is the one projected, and the table names it;
2. the hardware time of those steps, by ``time_to_train.project_setting`` at every
   parallelism setting: the trainer config (``examples/hw_digits.toml`` for weight
   perturbation, ``hw_digits_node.toml`` for node) at width h with the sweep's own
   tau_x, tau_p and tau_theta, so the cycles count the algorithm that made the steps;
   the Fmax MEASURED where the synthesis tables hold that fold (only at the width the
   example was synthesised at), else the assumed ``fmax``; the multiplier-bound limit
   line and the analog projection (one evaluation per ns) beside it;
3. tuned CPU backprop: ``backprop_grid.search`` on the sweep's float network at width
   h (same network, cost, initial weights and split), training time only.

The steps come from the float model, not the bit-exact trainer (which at width 16
needs a similar count: docs/time_to_train.md); the cycles are the trainer's.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from golden_model.config import MGDConfig, build_config, derive, load_config, network_sizes
from golden_model.lfsr import LFSR_TAPS, max_params
from golden_model.shapes import acc_bits_needed, network_param_count

from . import backprop_grid, fpga_figures
from . import time_to_train as ttt
from .sweep import point_config

TRAINERS = {"weight": "hw_digits", "node": "hw_digits_node"}  # examples/<name>.toml


@dataclass
class ModeRow:
    """One width and mode: MGD's median steps and the fastest hardware row."""

    mode: str
    steps: float | None
    reached: int
    runs: int
    settings: list[dict] = field(default_factory=list)  # project_setting rows
    best_setting: str = ""
    best_seconds: float | None = None  # fastest FPGA time over the settings
    best_fmax_source: str = ""
    limit_seconds: float | None = None  # the multiplier-bound limit of that setting
    analog_seconds: float | None = None
    point: str = ""  # the chosen sweep point beyond the width ("mgd.eta=20"), if any
    points: int = 1  # the sweep's points at this width it was chosen from


@dataclass
class WidthRow:
    width: int
    params: int
    backprop_seconds: float | None
    backprop_setting: str
    backprop_search: dict
    modes: list[ModeRow] = field(default_factory=list)


class CrossoverError(Exception):
    """A sweep folder that cannot be read; the message says why, in one line."""


@dataclass(frozen=True)
class SweepPoint:
    """MGD at one width: the best point of the sweep there (the fewest median steps)."""

    steps: float | None  # median steps to the target (None: the median run never got there)
    reached: int  # runs that reached it
    runs: int
    point: tuple[tuple[str, str], ...] = ()  # its swept fields beyond the width
    points: int = 1  # the points at this width it was chosen from


def read_sweep(folders: list[Path], target: float) -> tuple[dict, dict[int, SweepPoint]]:
    """(the sweeps' base config as data, {width: its best point}) of finished
    float-model sweeps over ``network.hidden`` of one config (several folders: e.g.
    the wide widths swept later, or more values of another swept field)."""
    config = None
    by_point: dict[tuple[int, tuple[tuple[str, str], ...]], list[float]] = {}
    for folder in folders:
        ident, table = folder / "sweep.json", folder / "results.csv"
        if not ident.is_file() or not table.is_file():
            raise CrossoverError(f"{folder}: not a finished mgd-hw sweep (no sweep.json "
                                 "and results.csv)")
        stored = json.loads(ident.read_text())
        this = stored["config"]
        if config is not None and this != config:
            raise CrossoverError(f"{folder}: another config than {folders[0]}")
        config = this
        fields = [f for f, _ in stored.get("grid", []) if f != "network.hidden"]
        _read_table(table, target, fields, by_point)
    by_width: dict[int, list[SweepPoint]] = {}
    for (w, point), vals in sorted(by_point.items()):
        med = float(np.median(vals))
        by_width.setdefault(w, []).append(SweepPoint(
            None if math.isinf(med) else med, sum(not math.isinf(v) for v in vals),
            len(vals), point))
    # the fewest median steps (never: last; a tie keeps the first point in sort order)
    best = {w: replace(min(pts, key=lambda p: math.inf if p.steps is None else p.steps),
                       points=len(pts))
            for w, pts in by_width.items()}
    return config, best


def _read_table(table: Path, target: float, fields: list[str],
                by_point: dict[tuple[int, tuple[tuple[str, str], ...]], list[float]]) -> None:
    column = f"steps_to_{target:g}"
    with table.open() as f:
        for row in csv.DictReader(f):
            if "network.hidden" not in row:
                raise CrossoverError(f"{table}: the sweep does not sweep network.hidden")
            if column not in row:
                raise CrossoverError(f"{table}: no column {column} (rerun the sweep with "
                                     f"--targets {target:g})")
            if row["status"] != "ok" or row.get("model", "float") != "float":
                continue
            hidden = json.loads(row["network.hidden"])
            if len(hidden) != 1:
                raise CrossoverError(f"{table}: network.hidden {hidden} is not one layer")
            v = row[column]
            point = tuple((f, row[f]) for f in fields)
            by_point.setdefault((int(hidden[0]), point), []).append(
                float(v) if v else math.inf)


def trainer_config(examples: Path, mode: str, float_cfg: MGDConfig) -> MGDConfig:
    """The mode's trainer example with the float config's task, hidden widths and time
    constants, the parameter count that follows, and an LFSR long enough to give that
    many parameters distinct codes (the example's, or the shortest longer one that
    does: the LFSR's length changes no cycle count)."""
    m = float_cfg.mgd
    base = load_config(examples / f"{TRAINERS[mode]}.toml")
    layers = {"task": float_cfg.to_dict()["task"],
              "network": {"hidden": list(float_cfg.network.hidden)},
              "mgd": {"tau_x": m.tau_x, "tau_p": m.tau_p, "tau_theta": m.tau_theta}}
    plain = derive(base, layers, {"hw": {"datapath": "none"}})
    sizes = network_sizes(plain)
    count = network_param_count(sizes)
    h = base.hw
    bits = h.lfsr_bits
    if base.mgd.perturbation == "code" and count > max_params(bits):
        bits = min((b for b in LFSR_TAPS if b > bits and max_params(b) >= count),
                   default=bits)  # none long enough: the config's own error says so
    # a wider layer needs a wider accumulator for its exact sums of products
    acc = max([h.acc_bits] + [acc_bits_needed(h, fan_in, *(
        (h.x_bits, h.x_frac) if layer == 0 else (h.act_bits, h.act_frac)))
        for layer, fan_in in enumerate(sizes[:-1])])
    return derive(base, layers, {"hw": {"n_params": count, "lfsr_bits": bits,
                                        "acc_bits": acc}})


def mode_row(mode: str, steps: float | None, reached: int, runs: int, hw: MGDConfig,
             measured: list, fmax: float, bp_seconds: float | None,
             bp_setting: str) -> ModeRow:
    """Every parallelism setting's projection of ``steps`` and the fastest."""
    row = ModeRow(mode, steps, reached, runs)
    n = None if steps is None else int(round(steps))
    for name, setting in ttt.SETTINGS.items():
        s = ttt.project_setting(hw, name, setting, n, fmax, measured, bp_seconds, bp_setting)
        row.settings.append(asdict(s))
        if s.fpga_seconds is not None and (row.best_seconds is None
                                           or s.fpga_seconds < row.best_seconds):
            row.best_setting, row.best_seconds = name, s.fpga_seconds
            row.best_fmax_source = s.fmax_source
            row.limit_seconds, row.analog_seconds = s.limit_seconds, s.analog_seconds
    return row


def crossover(sweeps: dict[str, list[Path]], examples: Path, target: float = 0.9,
              fmax: float = 50.0, grid: str = "quick", widths: list[int] | None = None,
              fits: Path | None = None, progress=None) -> list[WidthRow]:
    """The table (module docstring) over the widths the sweeps share (or ``widths``),
    on the sweeps' task (they must share it)."""
    from golden_model.datasets import load_dataset

    if not sweeps:
        raise CrossoverError("give at least one sweep (MODE=DIR)")
    bad = [m for m in sweeps if m not in TRAINERS]
    if bad:
        raise CrossoverError(f"mode {bad[0]!r} is not one of {', '.join(TRAINERS)}")
    read = {mode: read_sweep(folder, target) for mode, folder in sweeps.items()}
    tasks = {json.dumps(r[0]["task"], sort_keys=True) for r in read.values()}
    if len(tasks) != 1:
        raise CrossoverError("the sweeps were run on different tasks")
    for mode, (config, _) in read.items():
        if config["mgd"]["mode"] != mode:
            raise CrossoverError(f"the {mode} sweep was run with mgd.mode = "
                                 f"{config['mgd']['mode']!r}")
    first = build_config(next(iter(read.values()))[0], preset=False)
    data = load_dataset(first.task, first.seed)
    shared = sorted(set.intersection(*(set(r[1]) for r in read.values())))
    if widths is not None:
        missing = [w for w in widths if w not in shared]
        if missing:
            raise CrossoverError(f"width(s) {missing} not in every sweep (they share "
                                 f"{shared})")
        shared = widths
    out = []
    for width in shared:
        rows = []
        bp = None
        for mode, (config, points) in read.items():
            chosen = points[width]
            fcfg = point_config(build_config(config, preset=False),
                                (*chosen.point, ("network.hidden", f"[{width}]")))
            if bp is None:
                if progress:
                    progress(f"width {width}: searching the backprop grid")
                bp = backprop_grid.search(fcfg, data, target, grid)
            hw = trainer_config(examples, mode, fcfg)
            base_width = load_config(examples / f"{TRAINERS[mode]}.toml").network.hidden
            # synthesis figures belong to the width the example was synthesised at
            measured = (fpga_figures.read_measured(hw, TRAINERS[mode], *(
                (fits, None) if fits else ())) if [width] == list(base_width) else [])
            best = bp.best
            row = mode_row(mode, chosen.steps, chosen.reached, chosen.runs, hw, measured,
                           fmax, best.seconds if best else None, ttt._backprop_setting(best))
            row.point = " ".join(f"{f}={v}" for f, v in chosen.point)
            row.points = chosen.points
            rows.append(row)
        best = bp.best
        params = network_param_count([data.n_inputs, width, data.n_outputs])
        out.append(WidthRow(width, params, best.seconds if best else None,
                            ttt._backprop_setting(best), bp.to_dict(), rows))
    return out


def rows_from_dicts(data: list[dict]) -> list[WidthRow]:
    """The rows back from their JSON (``bench/scaling_crossover.py --json``)."""
    return [WidthRow(**{**d, "modes": [ModeRow(**m) for m in d["modes"]]}) for d in data]


def wins(rows: list[WidthRow]) -> dict[str, dict[str, list[int]]]:
    """Per mode, the widths where each hardware figure beats tuned backprop: the FPGA
    time at a measured Fmax, at the assumed one (fit not checked), the multiplier-bound
    limit and the analog projection."""
    out: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        for m in r.modes:
            d = out.setdefault(m.mode, {"measured": [], "assumed": [], "limit": [],
                                        "analog": []})
            if r.backprop_seconds is None:
                continue
            fpga = "measured" if m.best_fmax_source == "measured" else "assumed"
            for key, secs in ((fpga, m.best_seconds), ("limit", m.limit_seconds),
                              ("analog", m.analog_seconds)):
                if secs is not None and secs < r.backprop_seconds:
                    d[key].append(r.width)
    return out


def format_table(rows: list[WidthRow], target: float) -> str:
    """One line per width and mode, then the widths where hardware MGD wins."""
    t = ttt._t
    lines = [f"target test accuracy {target:g}: MGD steps (median of the sweep's runs) in "
             "the fastest hardware setting vs tuned CPU backprop at each width",
             f"{'width':>5} {'params':>7} {'mode':>6} {'MGD steps':>10} {'best setting':>21} "
             f"{'Fmax':>8} {'FPGA time':>10} {'mult. limit':>11} {'analog 1ns':>10} "
             f"{'backprop':>9} {'FPGA/bp':>8}"]
    for r in rows:
        for m in r.modes:
            steps = "never" if m.steps is None else f"{m.steps:,.0f}"
            ratio = ("-" if m.best_seconds is None or r.backprop_seconds is None
                     else f"{m.best_seconds / r.backprop_seconds:.3g}")
            src = {"measured": "meas.", "assumed": "assumed"}.get(m.best_fmax_source, "-")
            lines.append(f"{r.width:>5} {r.params:>7,} {m.mode:>6} {steps:>10} "
                         f"{m.best_setting or '-':>21} {src:>8} {t(m.best_seconds):>10} "
                         f"{t(m.limit_seconds):>11} {t(m.analog_seconds):>10} "
                         f"{t(r.backprop_seconds):>9} {ratio:>8}")
        for m in r.modes:
            if m.point:
                lines.append(f"      {m.mode} perturbation at width {r.width}: {m.point} "
                             f"(the fewest median steps of {m.points} sweep points)")
        load = r.backprop_search.get("load") or (0.0, 0.0)
        lines.append(f"      tuned backprop at width {r.width}: "
                     f"{r.backprop_setting or 'did not reach it'} (best of "
                     f"{len(r.backprop_search['points'])} grid points; load average "
                     f"{load[0]:.1f} -> {load[1]:.1f})")
    for mode, d in wins(rows).items():
        said = "; ".join(f"{what}: {', '.join(map(str, ws)) if ws else 'none'}"
                         for what, ws in (("FPGA time at a measured Fmax", d["measured"]),
                                          ("FPGA time at the assumed Fmax", d["assumed"]),
                                          ("multiplier-bound limit", d["limit"]),
                                          ("analog 1 ns projection", d["analog"])))
        lines.append(f"{mode} perturbation beats tuned CPU backprop at widths: {said}")
    return "\n".join(lines)
