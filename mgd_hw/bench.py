"""``mgd-hw bench``: every performance figure the issues ask for, as ratios measured in
one run on this machine.

The benchmarks live in the checkout's ``bench/`` folder (each also runs alone); this
runs each with ``--json`` in a child process, one after another (so they do not share
the CPU), and prints one table:

- float model vs the plain per-step loop (bench/bench_model.py);
- bit-exact block models vs bare-Verilator RTL (bench/bench_hw.py);
- the trainer: autonomous cocotb vs bare Verilator, the bit-exact model vs both, and
  the memory of the cocotb run (bench/bench_trainer.py);
- projected FPGA time-to-train vs backprop on this CPU (mgd_hw.time_to_train);
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


def _time_to_train(example: str, target: float, fmax: float) -> dict:
    from golden_model.config import load_config
    from golden_model.datasets import load_dataset

    from .time_to_train import SETTINGS, project

    cfg = load_config(EXAMPLES / example)
    proj = project(cfg, load_dataset(cfg.task, cfg.seed), target,
                   {name: (fmax, "given") for name in SETTINGS})
    return proj.to_dict()


def run(quick: bool = False, trainer_steps: int = 50_000, fmax: float = 50.0) -> dict:
    """All figures (see the module docstring)."""
    q = ["--quick"] if quick else []
    return {
        "model": _script("bench_model.py", *q),
        "blocks": _script("bench_hw.py", *q),
        "trainer": _script("bench_trainer.py", "--steps", str(trainer_steps)),
        "time_to_train": _time_to_train("hw_digits.toml", 0.9, fmax),
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
    for s in p["settings"]:
        sp = f"{s['speedup']:.2g}x" if s["speedup"] else "-"
        fpga = f"{s['fpga_seconds'] * 1e3:.1f} ms" if s["fpga_seconds"] else "never"
        lines.append(f"time-to-train {p['task']} {p['target']:.0%}, {s['name']:<17} "
                     f"{fpga:>10} at {s['fmax_mhz']:.0f} MHz vs backprop "
                     f"({p['backprop_engine']}) {p['backprop_seconds'] or float('nan'):.2f} s  "
                     f"{sp:>6}")
    fits = synth_fits.format_rows(res["fits"]) if res.get("fits") else []
    if fits:
        lines.append("fit and Fmax per device (measured, bench/synth_fits.json; "
                     "mgd-hw synth --fit):")
        lines += [f"  {line}" for line in fits]
    return "\n".join(lines)
