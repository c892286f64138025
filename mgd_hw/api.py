"""The toolkit from Python (notebooks, scripts): each step a function of (config, data).

>>> from mgd_hw import api
>>> data = api.Dataset.from_arrays(x_train, y_train, x_test, y_test, scale="minmax")
>>> cfg = api.config(data=data, network={"hidden": [8]}, steps=20_000,
...                  hw={"datapath": "mlp"})
>>> flt = api.train_float(cfg, data)          # float MGD and the backprop baseline
>>> fixed = api.train_bitexact(cfg, data)     # the bit-exact model of the trainer
>>> info = api.generate(cfg, data, "out/rtl") # Verilog with the data in its memories
>>> rtl = api.rtl_run(cfg, data)              # the trainer in RTL, checked bit-exact
>>> report = api.compare(cfg, data)           # float vs fixed point vs RTL

Every function returns a result object and prints nothing. The ``mgd-hw`` commands
``train``, ``generate``, ``sim`` (trainer) and ``compare`` are thin layers over
:func:`train_float`, :func:`generate`, :func:`rtl_run` and :func:`compare`.

:func:`config` builds a config with no task preset: the defaults of
``golden_model.config`` and what you pass, nothing else. With ``data`` it records the
data's sizes (``task.inputs``/``task.outputs``; task ``"arrays"`` unless the config
names a file) and, for a trainer config (``hw.datapath = "mlp"``) without
``hw.n_params``, the network's parameter count.

The data a function is given is the data used: the float and bit-exact models train
on it, :func:`generate` bakes it into the trainer's sample memories, and
:func:`rtl_run` builds the design from it and writes it once to the build folder, from
where the testbench and the model worker read it. Nothing reloads it by task name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from golden_model.config import (
    ConfigError,
    MGDConfig,
    build_config,
    derive,
    load_toml,
    network_param_count,
    network_sizes,
)
from golden_model.dataset_user import check_data_fits
from golden_model.datasets import DataError, Dataset, load_dataset
from golden_model.train import RunResult

__all__ = [
    "BitExactResult", "ConfigError", "DataError", "Dataset", "FloatResult", "MGDConfig",
    "bind", "compare", "config", "float_twin", "generate", "load", "rtl_run",
    "train_bitexact", "train_float",
]

Progress = Callable[[int, dict[str, float]], None]
USER_TASKS = ("file", "arrays")


def config(*layers: dict[str, Any], file: str | Path | None = None,
           data: Dataset | None = None, preset: bool = False, **fields: Any) -> MGDConfig:
    """A validated config: the defaults, then ``file`` (TOML), ``layers`` (plain data
    like ``{"mgd": {"eta": 0.5}}``) and ``fields`` (``steps=2000``,
    ``network={"hidden": [8]}``), later winning.

    ``preset=True`` lays the named built-in task's preset under them (as ``mgd-hw``
    does); by default none leaks in. ``data``: see the module doc.
    """
    all_layers = ([load_toml(file)] if file else []) + list(layers) + [fields]
    if data is not None:
        merged: dict[str, Any] = {}
        for layer in all_layers:
            for key, value in layer.items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                else:
                    merged[key] = value
        task = merged.get("task", {})
        name = task.get("name", "arrays")
        if name not in USER_TASKS:
            name = "arrays"
        all_layers.append({"task": {"name": name, "inputs": data.n_inputs,
                                    "outputs": data.n_outputs}})
        hw = merged.get("hw", {})
        if hw.get("datapath") == "mlp" and "n_params" not in hw:
            hidden = merged.get("network", {}).get("hidden", [2])
            sizes = [data.n_inputs, *hidden, data.n_outputs]
            all_layers.append({"hw": {"n_params": network_param_count(sizes)}})
    cfg = build_config(*all_layers, preset=preset)
    if data is not None:
        check_data_fits(cfg.task, data)
    return cfg


def float_twin(cfg: MGDConfig) -> MGDConfig:
    """The float-model config of a trainer config: its shifts turned into the float
    model's learning rate and amplitude (``golden_model.float_twin``)."""
    from golden_model.float_twin import float_twin as twin

    return twin(cfg)


def load(cfg: MGDConfig) -> Dataset:
    """The data set the config names (a built-in task or ``task.path``), loaded once."""
    return load_dataset(cfg.task, cfg.seed)


def bind(cfg: MGDConfig, data: Dataset) -> MGDConfig:
    """``cfg`` with the data's sizes recorded (a user's data: task "file" or "arrays"),
    so the hardware spec, the testbench and the model worker never read the file;
    one line when a size the config states disagrees with the data."""
    check_data_fits(cfg.task, data)
    if cfg.task.name not in USER_TASKS:
        sizes = network_sizes(cfg)
        if (sizes[0], sizes[-1]) != (data.n_inputs, data.n_outputs):
            raise DataError(
                f"the data has {data.n_inputs} inputs and {data.n_outputs} outputs, task "
                f"{cfg.task.name!r} {sizes[0]} and {sizes[-1]}: use task.name 'arrays' "
                "(mgd_hw.api.config(data=...)) for your own data")
        return cfg
    if (cfg.task.inputs, cfg.task.outputs) == (data.n_inputs, data.n_outputs):
        return cfg
    return derive(cfg, {"task": {"inputs": data.n_inputs, "outputs": data.n_outputs}})


def _hw_data(cfg: MGDConfig, data: Dataset):
    from golden_model.datapath import HwData

    return HwData.from_dataset(data, cfg.hw)


# --- float model -----------------------------------------------------------------------


@dataclass
class FloatResult:
    """Float MGD and (unless skipped) backprop on the same network and initial weights.

    ``summary``: the headline figures (``mgd-hw train --json`` prints it): accuracies
    and costs are medians over the runs, keys ``median_final_test_acc`` and so on.
    """

    cfg: MGDConfig
    mgd: RunResult
    backprop: RunResult | None
    summary: dict[str, Any]

    @property
    def results(self) -> list[RunResult]:
        return [self.mgd] + ([self.backprop] if self.backprop is not None else [])

    def write(self, out: str | Path) -> None:
        """metrics.json, metrics.csv and curves.png into ``out``."""
        from .report import write_outputs

        write_outputs(Path(out), self.cfg, self.results, self.summary)


def train_float(cfg: MGDConfig, data: Dataset, backprop: bool = True,
                progress: Progress | None = None,
                backprop_progress: Progress | None = None) -> FloatResult:
    """Train ``cfg.runs`` runs of float MGD and the backprop baseline on ``data``."""
    from golden_model.train import train_backprop, train_mgd

    from .report import summarize

    cfg = bind(cfg, data)
    results = {"mgd": train_mgd(cfg, data, progress)}
    bp = None
    if backprop and cfg.backprop.enabled:
        bp = train_backprop(cfg, data, backprop_progress)
        results["backprop"] = bp
    summary: dict[str, Any] = {
        "task": cfg.task.name,
        "data": data.name,
        "target": data.target,
        "network": [data.n_inputs, *cfg.network.hidden, data.n_outputs],
        "mode": cfg.mgd.mode,
        "perturbation": cfg.mgd.perturbation,
        "seed": cfg.seed,
        "runs": cfg.runs,
        "steps": cfg.steps,
    }
    for method, r in results.items():
        summary[method] = summarize(r)
    return FloatResult(cfg, results["mgd"], bp, summary)


# --- bit-exact model -------------------------------------------------------------------


@dataclass
class BitExactResult:
    """Runs of the bit-exact trainer model (``golden_model.train_hw.HwRunResult`` each).

    ``test_acc``: every run's final test accuracy (R^2 for value targets)."""

    cfg: MGDConfig
    runs: list
    cycles: int

    @property
    def test_acc(self) -> np.ndarray:
        return np.array([r.history.array("test_acc")[-1, 0] for r in self.runs])

    @property
    def thetas(self) -> list[np.ndarray]:
        return [r.theta for r in self.runs]


def train_bitexact(cfg: MGDConfig, data: Dataset, runs: int | None = None,
                   progress: Progress | None = None) -> BitExactResult:
    """Train ``runs`` (default ``cfg.runs``) runs of the bit-exact model of the on-chip
    trainer (``hw.datapath = "mlp"``) on ``data`` in the hardware formats."""
    from golden_model.hw_spec import hw_spec
    from golden_model.train_hw import train_hw

    cfg = bind(cfg, data)
    spec = hw_spec(cfg, gateware=False)
    if not spec.trainer:
        raise ConfigError("hw.datapath must be 'mlp' for the bit-exact trainer model, "
                          f"not {cfg.hw.datapath!r}")
    _hw_data(cfg, data)  # a value that does not fit the x format: one line, first
    out = [train_hw(cfg, data, r, progress) for r in range(runs or cfg.runs)]
    return BitExactResult(cfg, out, spec.step_cycles(cfg.steps))


# --- hardware --------------------------------------------------------------------------


def generate(cfg: MGDConfig, data: Dataset | None, out_dir: str | Path, top: str | None = None,
             force: bool = False) -> dict[str, Any]:
    """Write the Verilog of ``top`` (default: the config's) and its JSON manifest into
    ``out_dir``; a trainer's sample memories hold ``data`` (a block needs none: pass
    None). Returns the paths, module name, port count and SHA-256."""
    from gateware import tops
    from gateware.generate import write_verilog

    record = tops.get(top or tops.default_top(cfg))
    hw = None
    if record.needs_data:
        if data is None:
            raise DataError(f"--top {record.name} holds the data set: pass the data")
        cfg = bind(cfg, data)
        hw = _hw_data(cfg, data)
    record.spec(cfg)
    return write_verilog(cfg, record.name, Path(out_dir), force=force, data=hw)


def rtl_run(cfg: MGDConfig, data: Dataset, run: int = 0, waves: bool = False,
            simulator: str = "verilator"):
    """Train ``cfg.steps`` steps of run ``run`` in RTL (cocotb under ``simulator``,
    Verilator or Icarus) and compare every step's cost and every update with the
    bit-exact model; returns ``sim.trainer_run.TrainerSimResult`` (``passed``,
    ``result``, ``describe()``)."""
    from sim.trainer_run import run_trainer

    if run < 0:
        raise ConfigError(f"run must be a run index >= 0, not {run}")
    cfg = bind(cfg, data)
    return run_trainer(cfg, waves=waves, run=run, data=_hw_data(cfg, data),
                       simulator=simulator)


def compare(cfg: MGDConfig, data: Dataset, rtl_steps: int | None = 0,
            widths: list[tuple[str, list[int]]] | None = None, sweep_runs: int = 0,
            sweep_steps: int = 0, progress: Callable[[str], None] | None = None) -> dict:
    """Float twin vs fixed point vs RTL of a trainer config on ``data`` (what
    ``mgd-hw compare`` reports): ``rtl_steps`` 0 = all the config's steps in RTL, None
    = no RTL run. Returns the JSON-ready result (``compare.json``)."""
    from .compare import CompareSettings, prepare, run_compare

    cfg = bind(cfg, data)
    steps = None if rtl_steps is None else (rtl_steps or cfg.steps)
    plan = prepare(cfg, CompareSettings(steps, list(widths or []), sweep_runs, sweep_steps))
    _hw_data(cfg, data)
    return run_compare(plan, data, progress)

