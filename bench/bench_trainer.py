"""Benchmark: the trainer in RTL, autonomous cocotb vs bare Verilator vs the model.

For one trainer config, in this process and on the same machine state:

1. bare Verilator: the trainer's Verilog (with its verification taps) under a C++ main
   holding ``run`` high, no Python (sim/bare_trainer.py); its final state is checked
   against the model;
2. autonomous cocotb: the same Verilog under cocotb (sim/tb_trainer.py), the model in
   a worker process, everything compared; its rate is the simulation loop's;
3. the bit-exact model alone (``HwTrainer``), as cycles of the schedule per second.

Printed: the three rates and the ratios the issue asks for (cocotb / bare >= 0.3;
model / RTL >= 1), and the peak memory of the cocotb run (simulator and model worker).

Run: ``python bench/bench_trainer.py [--config FILE] [--steps N] [--json]`` (default:
examples/hw_digits.toml, 100,000 steps: 17.6 M cycles).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gateware.tops import load_data
from golden_model.config import load_config
from golden_model.hw_spec import hw_spec
from golden_model.trainer import HwTrainer
from sim import bare_trainer
from sim.trainer_run import TRACE_DEPTH, run_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(config: Path, steps: int) -> dict:
    cfg = load_config(config, {"steps": steps})
    cycles = hw_spec(cfg).step_cycles(steps)

    data = load_data(cfg)  # once: the bare build, both checks and the model share it
    exe = bare_trainer.build(cfg, TRACE_DEPTH, data=data)
    bare = bare_trainer.run(exe, steps)
    bare_diff = bare_trainer.check_against_model(cfg, bare, steps, data=data)

    sim = run_trainer(cfg, data=data)
    if not sim.passed:
        raise SystemExit(f"cocotb run failed: {sim.message}")
    cocotb_rate = sim.result["cycles_per_second"]

    model = HwTrainer(cfg, data, 0)
    start = time.perf_counter()
    model.advance(steps)
    model_seconds = time.perf_counter() - start
    model_rate = cycles / model_seconds
    return {
        "config": str(config),
        "steps": steps,
        "cycles": cycles,
        "bare_cycles_per_s": round(bare.rate),
        "bare_bit_exact": bare_diff is None,
        "cocotb_cycles_per_s": cocotb_rate,
        "model_cycles_per_s": round(model_rate),
        "model_steps_per_s": round(steps / model_seconds),
        "cocotb_over_bare": round(cocotb_rate / bare.rate, 3),
        "model_over_cocotb": round(model_rate / cocotb_rate, 2),
        "model_over_bare": round(model_rate / bare.rate, 2),
        "peak_rss_mb": sim.result["peak_rss_mb"],
        "test_acc": sim.result["test_acc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLES / "hw_digits.toml")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = run(args.config, args.steps)
    if args.json:
        print(json.dumps(res))
        return
    print(f"{res['config']}: {res['steps']:,} steps = {res['cycles']:,} cycles")
    print(f"  bare Verilator      {res['bare_cycles_per_s'] / 1e6:7.3f} M cycles/s "
          f"(final state bit-exact: {res['bare_bit_exact']})")
    print(f"  autonomous cocotb   {res['cocotb_cycles_per_s'] / 1e6:7.3f} M cycles/s -> "
          f"{res['cocotb_over_bare']:.2f} of bare (target >= 0.30)")
    print(f"  bit-exact model     {res['model_cycles_per_s'] / 1e6:7.3f} M cycles/s "
          f"({res['model_steps_per_s']:,} steps/s) -> {res['model_over_cocotb']:.1f}x the "
          f"cocotb run, {res['model_over_bare']:.1f}x bare (target >= 1)")
    rss = res["peak_rss_mb"]
    print(f"  peak memory of the cocotb run: simulator {rss['simulator']} MB, model worker "
          f"{rss['model_worker']} MB (target < 1 GB for 100 M cycles)")


if __name__ == "__main__":
    main()
