"""``mgd-hw compare``: one trainer config in the float model, the bit-exact model and
the RTL, and where they part.

- **float vs fixed**: the float twin (``float_twin.float_twin``, trained with
  ``train.train_mgd``) against the fixed-point model (``train_hw.train_hw``): accuracy
  and cost at every evaluation. The float twin has its own codes and sample order, so
  its parameters cannot be compared one by one with the fixed-point model's.
- **parameter error**: that is what the high-precision twin is for
  (``formats.wide_twin``): an ``HwTrainer`` with about 10 more fraction bits in every
  format, the same real-valued amplitude and learning rate, the same codes, sample
  order and initial parameters. It walks beside each fixed-point run, and at every
  evaluation the RMS and max of |theta_fixed - theta_wide| (real units) say how far
  the rounding has moved the parameters.
- **numerics**: updates below one LSB (``HwTrainer(count_sub_lsb=True)``) and the
  saturation counters.
- **fixed vs RTL**: ``sim.trainer_run.run_trainer`` (every step's cost and every
  update compared by the testbench), plus the final parameters' SHA-256 against the
  model's own run of the same steps.
- **widths**: the fixed-point model's test accuracy for each width of a ``--widths``
  sweep (``formats.width_config``).

:func:`prepare` builds and validates every config first, so a bad option fails before
any training; :func:`run_compare` runs them and returns plain data (``compare.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from golden_model.config import ConfigError, MGDConfig, derive, network_sizes
from golden_model.datapath import HwData, evaluate
from golden_model.datasets import Dataset
from golden_model.float_twin import float_twin
from golden_model.hw_spec import hw_spec, trainer_spec
from golden_model.train import EVAL_TRAIN_SAMPLES, History, RunResult, train_mgd
from golden_model.train_hw import train_hw
from golden_model.trainer import HwTrainer
from golden_model.trainer_image import initial_theta

from .formats import WIDE_EXTRA, Shift, wide_twin, width_config
from .report import summarize

# Runs per point of a width sweep unless asked otherwise (a sweep trains every point).
SWEEP_RUNS = 5

Progress = Callable[[str], None]


@dataclass
class CompareSettings:
    """What :func:`prepare` sets up beside the float and fixed-point runs.

    ``rtl_steps``: steps of the RTL run of run 0 (None: no RTL); ``widths``: sweeps as
    (field, values); ``sweep_runs``/``sweep_steps``: runs and steps per sweep point
    (0: min(runs, SWEEP_RUNS) and the config's steps); ``extra``: the fraction bits the
    high-precision twin adds.
    """

    rtl_steps: int | None = None
    widths: list[tuple[str, list[int]]] = field(default_factory=list)
    sweep_runs: int = 0
    sweep_steps: int = 0
    extra: int = WIDE_EXTRA


@dataclass
class Plan:
    """Every config of one comparison, validated."""

    cfg: MGDConfig
    wide: MGDConfig
    shift: Shift
    rtl: MGDConfig | None
    sweeps: list[tuple[str, list[tuple[int, MGDConfig]]]]


def prepare(cfg: MGDConfig, settings: CompareSettings) -> Plan:
    """Build the high-precision twin, the RTL config and every sweep config.

    Raises
    ------
    ConfigError
        One line, for a config that is not a trainer's, an ``rtl_steps`` outside 1 ..
        steps, sweep runs or steps below 1, or a width that does not give a valid config.
    """
    if cfg.hw.datapath != "mlp":
        raise ConfigError(
            "mgd-hw compare needs a trainer config (hw.datapath = 'mlp', e.g. "
            f"examples/hw_xor.toml), not hw.datapath {cfg.hw.datapath!r}"
        )
    hw_spec(cfg, gateware=False)
    wide, shift = wide_twin(cfg, settings.extra)
    rtl = None
    if settings.rtl_steps is not None:
        if not 1 <= settings.rtl_steps <= cfg.steps:
            raise ConfigError(
                f"--rtl-steps must be from 1 to the config's steps ({cfg.steps}), not "
                f"{settings.rtl_steps}"
            )
        rtl = trainer_spec(derive(cfg, {"steps": settings.rtl_steps})).cfg
    runs = settings.sweep_runs or min(cfg.runs, SWEEP_RUNS)
    steps = settings.sweep_steps or cfg.steps
    for name, value in (("--sweep-runs", runs), ("--sweep-steps", steps)):
        if value < 1:
            raise ConfigError(f"{name} must be a positive integer, not {value}")
    base = derive(cfg, {"runs": runs, "steps": steps})
    sweeps = [(name, [(bits, width_config(base, name, bits)) for bits in values])
              for name, values in settings.widths]
    return Plan(cfg, wide, shift, rtl, sweeps)


# --- the runs ------------------------------------------------------------------------


def _history(runs: list[History], cost_scale: float) -> History:
    """Single-run histories (same steps) as one (E, R) history, the cost times
    ``cost_scale``."""
    out = History()
    for e, step in enumerate(runs[0].steps):
        cost, train, test = (np.concatenate([getattr(h, name)[e] for h in runs])
                             for name in ("cost", "train_acc", "test_acc"))
        out.add(step, cost * cost_scale, train, test)
    return out


def _fixed_and_wide(plan: Plan, data: Dataset, run: int) -> dict[str, Any]:
    """Run ``run`` of the fixed-point model with its high-precision twin beside it."""
    s = plan.shift.theta
    wide_data = HwData.from_dataset(data, plan.wide.hw)
    theta0, _ = initial_theta(plan.cfg, run)
    # The same initial parameters, exactly: the wide format only has more LSBs.
    wide = HwTrainer(plan.wide, wide_data, run, theta0=theta0 << s, count_sub_lsb=True)
    k = min(len(wide_data.x_train), EVAL_TRAIN_SAMPLES)
    scale = 2.0 ** -plan.wide.hw.theta_frac
    rec: dict[str, list] = {"rms": [], "max": [], "moved": [], "sub_lsb": [], "wide_sub_lsb": []}
    wide_hist = History()
    wide_seconds = [0.0]

    def on_eval(trainer: HwTrainer) -> None:
        start = time.perf_counter()
        wide.advance(trainer.n - wide.n)
        # Exact integers in the wide LSB, then real units.
        diff = ((trainer.theta << s) - wide.theta) * scale
        rec["rms"].append(float(np.sqrt(np.mean(diff**2))))
        rec["max"].append(float(np.abs(diff).max()))
        # How far the twin has gone, to read the error against.
        moved = (wide.theta - (theta0 << s)) * scale
        rec["moved"].append(float(np.sqrt(np.mean(moved**2))))
        rec["sub_lsb"].append(dataclasses.astuple(trainer.sub_lsb))
        rec["wide_sub_lsb"].append(dataclasses.astuple(wide.sub_lsb))
        d = wide_data
        cost, train_acc = evaluate(wide.net, wide.theta, d.x_train[:k], d.t_train[:k],
                                   d.labels_train[:k])
        _, test_acc = evaluate(wide.net, wide.theta, d.x_test, d.t_test, d.labels_test)
        wide_hist.add(wide.n, *(np.array([v]) for v in (cost, train_acc, test_acc)))
        wide_seconds[0] += time.perf_counter() - start

    res = train_hw(plan.cfg, data, run, count_sub_lsb=True, on_eval=on_eval)
    # train_hw's clock ran through the twin's steps too: keep the fixed point's own time.
    res.seconds -= wide_seconds[0]
    return {"fixed": res, "wide": wide_hist, "wide_counters": wide.counters(),
            "wide_seconds": wide_seconds[0], **rec}


def _sub_lsb(snapshots: list[list[tuple[int, int, int]]], n_params: int) -> dict[str, Any]:
    """Updates below one LSB from cumulative (updates, nonzero, below) snapshots per run:
    per evaluation interval (median over runs) and over the whole run (all runs)."""
    a = np.array(snapshots, dtype=np.float64)  # (R, E, 3)
    d = np.diff(a, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        of_params = d[..., 2] / (d[..., 0] * n_params)
        of_nonzero = d[..., 2] / d[..., 1]
    total = a[:, -1].sum(axis=0)
    return {
        "interval_fraction": _nan_list(np.nanmedian(of_params, axis=0)),
        "interval_of_nonzero": _nan_list(np.nanmedian(of_nonzero, axis=0)),
        "updates": int(total[0]),
        "nonzero": int(total[1]),
        "below_lsb": int(total[2]),
        "fraction": float(total[2] / (total[0] * n_params)) if total[0] else 0.0,
        "of_nonzero": float(total[2] / total[1]) if total[1] else 0.0,
    }


def _nan_list(v: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(x) else float(x) for x in v]


def _curves(history: History) -> dict[str, Any]:
    return {name: history.array(name).tolist() for name in ("test_acc", "train_acc", "cost")}


def _counters(per_run: list[dict[str, int]]) -> dict[str, int]:
    return {k: int(sum(c[k] for c in per_run)) for k in per_run[0]}


def _rtl(plan: Plan, data: Dataset) -> dict[str, Any]:
    """Run 0 in RTL for ``plan.rtl.steps`` steps; the testbench compares every step's
    cost and every update; the final theta is checked once more against the model."""
    from sim.trainer_run import run_trainer

    cfg = plan.rtl
    hd = HwData.from_dataset(data, cfg.hw)
    sim = run_trainer(cfg, data=hd)  # the data given, never reloaded by task name
    model = HwTrainer(cfg, hd, 0)
    model.advance(cfg.steps)
    sha = hashlib.sha256(model.theta.astype("<i8").tobytes()).hexdigest()
    _, model_acc = evaluate(model.net, model.theta, hd.x_test, hd.t_test, hd.labels_test)
    r = sim.result
    hash_match = r.get("theta_sha256") == sha
    message = sim.message
    if sim.passed and not hash_match:
        message = f"final theta sha256 {r.get('theta_sha256')}, the model's {sha}"
    return {
        "steps": cfg.steps,
        "run": 0,
        "identical": bool(sim.passed and hash_match),
        "testbench_passed": bool(sim.passed),
        "message": message,
        "updates": r.get("updates"),
        "cycles": r.get("cycles"),
        "rtl_test_acc": r.get("test_acc"),
        "model_test_acc": model_acc,
        "theta_sha256_rtl": r.get("theta_sha256"),
        "theta_sha256_model": sha,
        "counters": r.get("counters"),
        "sim_seconds": r.get("seconds"),
        "seconds_with_build": round(sim.seconds, 2),
        "build_dir": sim.build_dir,
    }


def _sweep(plan: Plan, data: Dataset, fixed: list[History], progress: Progress) -> list:
    """Final and best test accuracy of the fixed-point model at every sweep width."""
    out = []
    for name, points in plan.sweeps:
        rows = []
        for bits, cfg in points:
            # The config's own width is the main run again (the same config exactly):
            # reuse its runs when they cover the sweep's.
            same = (cfg.hw == plan.cfg.hw and cfg.steps == plan.cfg.steps
                    and cfg.runs <= plan.cfg.runs)
            final, best = [], []
            for r in range(cfg.runs):
                if same:
                    acc = fixed[r].array("test_acc")[:, 0]
                else:
                    progress(f"widths {name}={bits}: run {r + 1}/{cfg.runs}")
                    acc = train_hw(cfg, data, r).history.array("test_acc")[:, 0]
                final.append(float(acc[-1]))
                best.append(float(acc.max()))
            frac = {"theta_bits": "theta_frac", "act_bits": "act_frac", "z_bits": "z_frac",
                    "cost_bits": "cost_frac"}[name]
            rows.append({
                "bits": bits, frac: getattr(cfg.hw, frac), "final_test_acc": final,
                "max_test_acc": best, "median_final_test_acc": float(np.median(final)),
                "median_max_test_acc": float(np.median(best)),
            })
        first = points[0][1]
        out.append({"field": name, "config_bits": getattr(plan.cfg.hw, name),
                    "runs": first.runs, "steps": first.steps, "points": rows})
    return out


def run_compare(plan: Plan, data: Dataset, progress: Progress | None = None) -> dict[str, Any]:
    """Run every part of a comparison (see the module docstring).

    Parameters
    ----------
    plan : from :func:`prepare`
    data : the task (``load_dataset(cfg.task, cfg.seed)``)
    progress : called with a short message before each long part

    Returns
    -------
    dict
        JSON-ready: ``summary``, ``config``, ``wide_twin``, ``float_twin``, ``curves``
        (steps; float, fixed and wide test_acc, train_acc, cost as (E, R) lists, cost
        in the float model's units), ``param_error`` (rms and max, (E, R); and
        ``moved_rms``, the twin's RMS distance from its initial parameters),
        ``numerics`` (updates below one LSB, saturation counters), ``rtl`` (or None),
        ``widths`` (one entry per sweep).
    """
    say = progress or (lambda message: None)
    cfg = plan.cfg
    start = time.perf_counter()
    say(f"float twin: {cfg.runs} run(s) of {cfg.steps:,} steps")
    twin = float_twin(cfg)
    flt = train_mgd(twin, data)
    runs = []
    for r in range(cfg.runs):
        say(f"fixed point and high-precision twin: run {r + 1}/{cfg.runs}")
        runs.append(_fixed_and_wide(plan, data, r))
    sizes = network_sizes(cfg)
    # The hardware cost is sum_o (y - t)^2 / 2^cost_shift; the float model's the mean.
    cost_scale = 2.0**cfg.hw.cost_shift / sizes[-1]
    fixed = [x["fixed"] for x in runs]
    fixed_hist = _history([f.history for f in fixed], cost_scale)
    wide_hist = _history([x["wide"] for x in runs], cost_scale)
    rtl = None
    if plan.rtl is not None:
        say(f"RTL: build and {plan.rtl.steps:,} steps under Verilator")
        rtl = _rtl(plan, data)
    widths = _sweep(plan, data, [f.history for f in fixed], say)

    seconds = round(time.perf_counter() - start, 2)
    results = {
        "float": RunResult("float", "steps", flt.history, flt.theta, flt.seconds),
        "fixed": RunResult("fixed", "steps", fixed_hist, np.array([f.theta for f in fixed]),
                           sum(f.seconds for f in fixed)),
        "wide": RunResult("wide", "steps", wide_hist, np.zeros(0),
                          sum(x["wide_seconds"] for x in runs)),
    }
    out = {
        "config": cfg.to_dict(),
        "wide_twin": {"shift": dataclasses.asdict(plan.shift),
                      "hw": _changed(cfg.hw, plan.wide.hw)},
        "float_twin": {"eta": twin.mgd.eta, "dtheta": twin.mgd.dtheta,
                       "optimizer": twin.mgd.optimizer},
        "curves": {
            "steps": fixed_hist.steps,
            "float": _curves(flt.history),
            "fixed": _curves(fixed_hist),
            "wide": _curves(wide_hist),
        },
        "param_error": _param_error(runs, fixed_hist.steps, cfg.hw.theta_frac),
        "numerics": _numerics(runs),
        "rtl": rtl,
        "widths": widths,
    }
    out["summary"] = _summary(cfg, sizes, results, out, seconds)
    return out


def _numerics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Updates below one LSB and saturation counters of both bit-exact models."""
    fixed = [x["fixed"] for x in runs]
    n_params = fixed[0].theta.size
    return {
        "sub_lsb": _sub_lsb([x["sub_lsb"] for x in runs], n_params),
        "wide_sub_lsb": _sub_lsb([x["wide_sub_lsb"] for x in runs], n_params),
        "saturations": _counters([f.counters for f in fixed]),
        "wide_saturations": _counters([x["wide_counters"] for x in runs]),
        "init_saturations": int(sum(f.init_saturations for f in fixed)),
        # forward passes of all runs: the z and act counters count values of every
        # neuron of every pass, the cost counter one value a pass
        "passes": int(sum(f.passes for f in fixed)),
    }


def _param_error(runs: list[dict[str, Any]], steps: list[int], theta_frac: int) -> dict:
    """Fixed point against the high-precision twin at each evaluation, (E, R) lists."""
    return {
        "steps": steps,
        "rms": np.array([x["rms"] for x in runs]).T.tolist(),
        "max": np.array([x["max"] for x in runs]).T.tolist(),
        "moved_rms": np.array([x["moved"] for x in runs]).T.tolist(),
        "theta_lsb": 2.0**-theta_frac,
    }


def _changed(a, b) -> dict[str, list]:
    """Fields of two hw sections that differ, as name -> [a, b]."""
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return {k: [da[k], db[k]] for k in da if da[k] != db[k]}


def _summary(cfg: MGDConfig, sizes: list[int], results: dict[str, RunResult],
             out: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The headline figures (medians over runs)."""
    pe = out["param_error"]
    s = {
        "task": cfg.task.name,
        "network": sizes,
        "mode": cfg.mgd.mode,
        "perturbation": cfg.mgd.perturbation,
        "seed": cfg.seed,
        "runs": cfg.runs,
        "steps": cfg.steps,
        **{name: summarize(r) for name, r in results.items()},
        "param_error_final": {"rms": float(np.median(pe["rms"][-1])),
                              "max": float(np.median(pe["max"][-1])),
                              "max_any_run": float(np.max(pe["max"][-1])),
                              "moved_rms": float(np.median(pe["moved_rms"][-1]))},
        "theta_lsb": pe["theta_lsb"],
        "sub_lsb_fraction": out["numerics"]["sub_lsb"]["fraction"],
        "sub_lsb_of_nonzero": out["numerics"]["sub_lsb"]["of_nonzero"],
        "saturations": out["numerics"]["saturations"],
        "seconds": seconds,
    }
    s["fixed_minus_float"] = (s["fixed"]["median_final_test_acc"]
                              - s["float"]["median_final_test_acc"])
    rtl = out["rtl"]
    s["rtl"] = None if rtl is None else {k: rtl[k] for k in (
        "steps", "identical", "message", "updates", "cycles", "rtl_test_acc",
        "model_test_acc")}
    s["widths"] = [{"field": w["field"], "bits": [p["bits"] for p in w["points"]],
                    "median_final_test_acc": [p["median_final_test_acc"] for p in w["points"]],
                    "median_max_test_acc": [p["median_max_test_acc"] for p in w["points"]],
                    "runs": w["runs"], "steps": w["steps"]} for w in out["widths"]]
    return s
