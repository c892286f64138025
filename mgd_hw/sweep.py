"""``mgd-hw sweep``: a grid of config points x runs, as independent tasks.

:func:`parse_grid` reads ``FIELD=V1,V2,...`` (values as in ``--set``: TOML, else a bare
string); :func:`plan` checks every point against the config rules before any task
runs and returns the :class:`Task` list, the product of the grids x the runs.
:func:`run_task` trains one (point, run) in a worker: run r of a sweep at config seed s
trains with seed s + r and one run (so it repeats run r of ``mgd-hw train --seed s``),
on the float model, the bit-exact trainer model or backprop (:func:`pick_model`). It
returns the evaluation history, from which the store (``sweep_store``) derives the final and best
accuracy and the steps to each target, so changing ``--targets`` needs no new run.

Steps of a backprop run (``--model backprop``: ``train.train_backprop`` on the float
model's network, initial weights and split, with the config's ``backprop`` section) are
sample presentations, updates x ``backprop.batch_size``, so a step is one training
sample seen, as an MGD step at tau_x = 1 is; the updates are recorded beside them. Its
test accuracy is evaluated at about 20 log-spaced update counts a decade.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from golden_model.config import (
    ConfigError,
    MGDConfig,
    derive,
    network_param_count,
    network_sizes,
    parse_assignment,
)

MODELS = ("auto", "float", "bitexact", "backprop")
# Fields a sweep sets itself: the runs are the sweep's --runs, each task one run.
RESERVED = ("runs",)


@dataclass(frozen=True)
class Task:
    """One (point, run): ``point`` the swept (field, value text) pairs in grid order."""

    point: tuple[tuple[str, str], ...]
    run: int

    @property
    def key(self) -> str:
        """A stable file name for the task: readable prefix + hash of point and run."""
        text = json.dumps([list(self.point), self.run])
        return f"run{self.run}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def label(self) -> str:
        return " ".join(f"{f}={v}" for f, v in self.point) + f" run {self.run}"


def split_values(text: str) -> list[str]:
    """``a,b,[1,2]`` -> ``["a", "b", "[1,2]"]``: commas inside brackets or quotes stay."""
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``["mgd.eta=0.5,1", "network.hidden=[8],[16]"]`` -> (field, value texts) pairs;
    a malformed entry is a ConfigError naming it."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        field, sep, values = spec.partition("=")
        field = field.strip()
        if not sep or not field or not all(field.split(".")):
            raise ConfigError(f"--grid expects FIELD=V1,V2,..., not {spec!r}")
        if field in RESERVED:
            raise ConfigError(f"--grid cannot sweep {field!r}: the sweep's --runs sets it")
        if field in (f for f, _ in grid):
            raise ConfigError(f"--grid names {field!r} twice")
        vals = split_values(values)
        if not all(vals):
            raise ConfigError(f"--grid {field}: empty value in {values!r}")
        if len(set(vals)) != len(vals):
            raise ConfigError(f"--grid {field}: a value appears twice in {values!r}")
        grid.append((field, vals))
    if not grid:
        raise ConfigError("--grid is required: FIELD=V1,V2,... (repeat for more fields)")
    return grid


def points(grid: list[tuple[str, list[str]]]) -> list[tuple[tuple[str, str], ...]]:
    """The product of the grids, the first field varying slowest."""
    fields = [f for f, _ in grid]
    combos = itertools.product(*(v for _, v in grid))
    return [tuple(zip(fields, combo, strict=True)) for combo in combos]


def point_config(base: MGDConfig, point: tuple[tuple[str, str], ...], run: int = 0) -> MGDConfig:
    """The validated config of a point and run: one run at seed = the point's seed (the
    base config's unless ``seed`` is swept) + run.

    A trainer config (``hw.datapath = "mlp"``) must state its parameter count
    (``hw.n_params``); when the point changes the network and does not sweep
    ``hw.n_params`` itself, the count follows the network, so ``network.hidden`` can
    be swept like any field."""
    layers = [parse_assignment(f"{f}={v}") for f, v in point]
    fields = dict(point)
    if base.hw.datapath == "mlp" and "hw.n_params" not in fields:
        try:
            plain = derive(base, *layers, {"hw": {"datapath": "none"}})
        except ConfigError:
            plain = None  # the error comes from the full config below
        if plain is not None and fields.get("hw.datapath", "mlp") == "mlp":
            layers.append({"hw": {"n_params": network_param_count(network_sizes(plain))}})
    cfg = derive(base, *layers)
    return derive(cfg, {"seed": cfg.seed + run, "runs": 1})


def pick_model(cfg: MGDConfig, model: str) -> str:
    """``float``, ``bitexact`` or ``backprop``: ``auto`` is the bit-exact trainer model
    for a trainer config (``hw.datapath = "mlp"``), the float model otherwise."""
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
    if model == "auto":
        return "bitexact" if cfg.hw.datapath == "mlp" else "float"
    if model == "bitexact" and cfg.hw.datapath != "mlp":
        raise ConfigError("--model bitexact needs a trainer config (hw.datapath = 'mlp'), "
                          f"not hw.datapath = {cfg.hw.datapath!r}")
    if model == "backprop" and cfg.hw.datapath != "none":
        raise ConfigError("--model backprop trains the float model's network: give a float "
                          f"config (hw.datapath = 'none'), not hw.datapath = "
                          f"{cfg.hw.datapath!r}")
    return model


def plan(base: MGDConfig, grid: list[tuple[str, list[str]]], runs: int,
         model: str = "auto") -> list[Task]:
    """Every task of the sweep, each point validated first (a ConfigError names the
    point and the field's problem)."""
    if runs < 1:
        raise ConfigError(f"--runs must be a positive integer, not {runs}")
    tasks = []
    for pt in points(grid):
        try:
            cfg = point_config(base, pt)
            pick_model(cfg, model)
        except ConfigError as exc:
            where = " ".join(f"{f}={v}" for f, v in pt)
            raise ConfigError(f"--grid point {where}: {exc}") from None
        tasks.extend(Task(pt, r) for r in range(runs))
    return tasks


def run_task(payload: tuple[dict[str, Any], Task, str]) -> dict[str, Any]:
    """Train one task in this process (a worker); ``payload`` is (base config as
    plain data, task, model). Returns the evaluation history and the wall time."""
    from golden_model.config import build_config
    from golden_model.datasets import load_dataset

    from . import api

    base_dict, task, model = payload
    base = build_config(base_dict, preset=False)
    cfg = point_config(base, task.point, task.run)
    model = pick_model(cfg, model)
    start = time.perf_counter()
    data = load_dataset(cfg.task, cfg.seed)
    if model == "backprop":
        return _run_backprop(cfg, data, start)
    if model == "bitexact":
        history = api.train_bitexact(cfg, data, runs=1).runs[0].history
    else:
        history = api.train_float(cfg, data, backprop=False).mgd.history
    return {
        "model": model,
        "seed": cfg.seed,
        "seconds": round(time.perf_counter() - start, 4),
        "steps": [int(s) for s in history.steps],
        "updates": [int(s) // cfg.mgd.tau_theta for s in history.steps],
        "test_acc": [float(v) for v in history.array("test_acc")[:, 0]],
        "train_acc": [float(v) for v in history.array("train_acc")[:, 0]],
        "cost": [float(v) for v in history.array("cost")[:, 0]],
    }


def _run_backprop(cfg: MGDConfig, data, start: float) -> dict[str, Any]:
    """One backprop run (module docstring): steps are updates x batch."""
    from golden_model.diagnostics import log_checkpoints
    from golden_model.train import backprop_updates, train_backprop

    updates = backprop_updates(cfg)
    history = train_backprop(cfg, data, checkpoints=log_checkpoints(updates, 20)).history
    batch = cfg.backprop.batch_size
    return {
        "model": "backprop",
        "seed": cfg.seed,
        "seconds": round(time.perf_counter() - start, 4),
        "steps": [int(u) * batch for u in history.steps],
        "updates": [int(u) for u in history.steps],
        "test_acc": [float(v) for v in history.array("test_acc")[:, 0]],
        "train_acc": [float(v) for v in history.array("train_acc")[:, 0]],
        "cost": [float(v) for v in history.array("cost")[:, 0]],
    }
