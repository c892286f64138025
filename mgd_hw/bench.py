"""``mgd-hw bench``: every performance figure the issues ask for, as ratios measured in
one run on this machine.

The benchmarks live in the checkout's ``bench/`` folder (each also runs alone); this
runs each with ``--json`` in a child process, one after another (so they do not share
the CPU), and prints one table:

- float model vs the plain per-step loop (bench/bench_model.py);
- bit-exact block models vs bare-Verilator RTL (bench/bench_hw.py);
- the trainer: autonomous cocotb vs bare Verilator, the bit-exact model vs both, and
  the memory of the cocotb run (bench/bench_trainer.py);
- the same cocotb runs (XOR trainer, per-cycle MGDCore testbench) under Verilator
  and Icarus Verilog, cycles/s and their ratio (bench/bench_simulators.py; without
  iverilog, the reason instead);
- time-to-train of the digits and XOR trainers per setting against tuned CPU
  backprop (mgd_hw.time_to_train).
- the task engine of ``mgd-hw sweep``: its overhead a point in a sweep of 10k-step
  digits points (``--chunk auto``), a lone point's beside it, and two local Dask
  workers against one (bench/bench_sweep.py);
- fit and Fmax per device of each measured fold of the example trainers: the
  committed table bench/synth_fits.json (``mgd-hw synth --fit --record``; reading it
  runs no tool).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateware import synth_fits

BENCH = Path(__file__).resolve().parent.parent / "bench"
EXAMPLES = BENCH.parent / "examples"


class BenchError(RuntimeError):
    """A benchmark could not run (one-line message)."""


def _script(name: str, *args: str) -> dict:
    path = BENCH / name
    if not path.exists():
        raise BenchError(f"{path} not found: mgd-hw bench runs the benchmarks of a checkout")
    proc = subprocess.run([sys.executable, str(path), *args, "--json"], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"{name} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# The time-to-train reports of the bench: (example, target test accuracy).
TIME_TO_TRAIN = (("hw_digits.toml", 0.9), ("hw_xor.toml", 1.0))


def _time_to_train(example: str, target: float, fmax: float, grid: str) -> dict:
    from golden_model.config import load_config
    from golden_model.datasets import load_dataset

    from .time_to_train import project

    cfg = load_config(EXAMPLES / example)
    name = Path(example).stem
    proj = project(cfg, load_dataset(cfg.task, cfg.seed), target, fmax, name, grid)
    return proj.to_dict()


def run(quick: bool = False, trainer_steps: int = 50_000, fmax: float = 50.0,
        grid: str = "quick") -> dict:
    """All figures (see the module docstring)."""
    q = ["--quick"] if quick else []
    return {
        "model": _script("bench_model.py", *q),
        "blocks": _script("bench_hw.py", *q),
        "trainer": _script("bench_trainer.py", "--steps", str(trainer_steps)),
        "simulators": _script("bench_simulators.py",
                              *(["--steps", "1000", "--cycles", "3000"] if quick else [])),
        "sweep": _script("bench_sweep.py", *q),
        "time_to_train": [_time_to_train(ex, target, fmax, grid)
                          for ex, target in TIME_TO_TRAIN],
        "fits": synth_fits.load_fits(BENCH / "synth_fits.json"),
    }


def report(res: dict) -> str:
    m, b, t, p = res["model"], res["blocks"], res["trainer"], res["time_to_train"]
    x, d = m["xor_ensemble_256"], m["digits_64_32_10_tau100"]
    lines = [
        "figure                                        measured                  ratio  target",
        f"float model, XOR ensemble of 256 vs loop       "
        f"{x['vectorized_run_steps_per_s']:>10,} run-steps/s {x['ratio']:>8.1f}x  >= 20x",
        f"float model, digits tau 100 vs loop            "
        f"{d['vectorized_steps_per_s']:>10,} steps/s     {d['ratio']:>8.1f}x  >= 20x",
    ]
    for top, r in b.items():
        lines.append(f"bit-exact {top:<14} model vs bare RTL    "
                     f"{r['model_cycles_per_s']:>10,} cycles/s    "
                     f"{r['ratio_model_over_rtl']:>8.2f}x  (equal: {r['equal']})")
    lines += [
        f"trainer: autonomous cocotb vs bare Verilator   "
        f"{t['cocotb_cycles_per_s']:>10,} cycles/s    {t['cocotb_over_bare']:>8.2f}   >= 0.30"
        f"  (bare {t['bare_cycles_per_s']:,}; final state bit-exact: {t['bare_bit_exact']})",
        f"trainer: bit-exact model vs cocotb RTL         "
        f"{t['model_cycles_per_s']:>10,} cycles/s    {t['model_over_cocotb']:>8.1f}x  >= 1x",
        f"trainer: peak memory of the cocotb run         "
        f"{t['peak_rss_mb']['simulator']:>7.0f} MB sim, {t['peak_rss_mb']['model_worker']:.0f} MB "
        f"model ({t['cycles']:,} cycles)",
    ]
    sims = res["simulators"]
    for name, label in (("trainer_xor", "XOR trainer, autonomous"),
                        ("core_per_cycle", "MGDCore, per-cycle")):
        f = sims[name]
        if "icarus" in f:
            lines.append(f"icarus vs verilator, {label:<24} {f['icarus']['cycles_per_s']:>10,} "
                         f"cycles/s    {f['icarus_over_verilator']:>8.3f}   (verilator "
                         f"{f['verilator']['cycles_per_s']:,}; same {f['verilator']['cycles']:,}"
                         f" cycles)")
    if sims["icarus_missing"]:
        lines.append(f"icarus vs verilator: not measured: {sims['icarus_missing']}")
    if res.get("sweep"):
        lines += sweep_lines(res["sweep"])
    for proj in p:
        lines += time_to_train_lines(proj)
    fits = synth_fits.format_rows(res["fits"]) if res.get("fits") else []
    if fits:
        lines.append("fit and Fmax per device (measured, bench/synth_fits.json; "
                     "mgd-hw synth --fit):")
        lines += [f"  {line}" for line in fits]
    return "\n".join(lines)


def sweep_lines(r: dict) -> list[str]:
    """The engine's figures (bench/bench_sweep.py), with the machine's load: on a
    shared machine the second worker may find no free core."""
    o, s = r["overhead"], r["scaling"]
    return [
        f"sweep engine: {o['batch_points']} 10k-step digits points, --chunk auto "
        f"{o['batch_direct_s']:>6.2f} s direct     {o['batch_auto_ratio']:>8.3f}   < 1.05  "
        f"(one lone point: {o['ratio']:.3f}, Dask round trip "
        f"{o['noop_bare_dask_ms']:.1f} ms)",
        f"sweep engine: two local workers vs one         {s['one_worker_s']:>9.2f} s one "
        f"worker {s['speedup']:>8.2f}x  >= 1.8x  ({s['points']} points; load average "
        f"{r['load_before'][0]:.1f} on {r['cpus']} CPUs)",
    ]


def time_to_train_lines(p: dict) -> list[str]:
    """The time-to-train table of one report (``time_to_train.Projection.to_dict``):
    per setting, cycles per step against the MAC-bound limit, Fmax (measured on a
    device or assumed), the FPGA time, the multiplier-bound limit and the analog
    projection against tuned backprop."""
    from .time_to_train import _t

    best = p["backprop"]["best"]
    bp = (f"{_t(best['seconds'])} ({best['engine']}, batch {best['batch']}, rate "
          f"{best['rate']:g}; best of {p['backprop']['size']})" if best else "never")
    steps = f"{p['steps_to_target']:,} steps" if p["steps_to_target"] else "never"
    lines = [f"time-to-train {p['task']} {p['target']:.0%}: MGD {steps}, tuned CPU backprop "
             f"{bp}; per setting: cycles/step (MAC-bound: the fold's multipliers all busy), FPGA "
             f"time at Fmax, multiplier-bound limit on the device, "
             f"analog projection (1 ns per evaluation)"]
    for s in p["settings"]:
        if s["invalid"]:
            lines.append(f"  {s['name']:<21} not valid: {s['invalid']}")
            continue
        fmax = (f"{s['fmax_mhz']:.1f} MHz {'on ' + s['device'] if s['device'] else 'assumed'}"
                if s["fmax_mhz"] else "no fit")
        cps = f"{s['cycles_per_step']:.1f}" if s["cycles_per_step"] else "-"
        bound = s.get("mac_bound_cycles_per_step")
        cps += f" (MAC-bound {bound:.1f})" if bound else ""
        lines.append(f"  {s['name']:<21} {cps:>7} cyc/step {_t(s['fpga_seconds']):>9} at "
                     f"{fmax}; limit {_t(s['limit_seconds'])}, analog "
                     f"{_t(s['analog_seconds'])}; {_verdict(s['ratio'])}")
        if s.get("fit_note"):
            lines.append(f"  {'':<21} {s['fit_note']}")
    return lines


def _verdict(ratio: float | None) -> str:
    """FPGA time against tuned CPU backprop, in words (a loss is said as a loss)."""
    from .time_to_train import _times

    if ratio is None:
        return "no comparison"
    if ratio > 1:
        return f"MGD {_times(ratio)} SLOWER than tuned CPU backprop"
    return f"MGD {_times(1 / ratio)} faster than tuned CPU backprop"
