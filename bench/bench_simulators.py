"""Benchmark: the same cocotb runs under Verilator and under Icarus Verilog.

Two runs, each under both simulators in this process, one after the other:

1. the XOR trainer (examples/hw_xor.toml), an autonomous training run
   (sim/tb_trainer.py: the clock in the HDL wrapper, Python wakes once per trace
   chunk); its rate is the testbench's own (cycles of the run over the seconds of
   the simulation loop, build excluded);
2. MGDCore (examples/hw_core_lfsr.toml), the per-cycle testbench (sim/tb_core.py:
   Python drives and compares every cycle); its rate is simulated cycles over the
   test's real time from cocotb's results.xml (build excluded).

Printed: cycles/s on each and the ratio Icarus / Verilator. Both runs are also
bit-exact checks; a run that fails stops the benchmark. Without iverilog the Icarus
figures are absent and the reason is given.

Run: ``python bench/bench_simulators.py [--steps N] [--cycles N] [--json]`` (default:
5,000 trainer steps = 155k cycles, 10,000 core cycles). Short runs are dominated
by the fixed start-up of the testbench and the model (both simulators pay it).
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from golden_model.config import load_config
from sim.runner import icarus_missing, run_cocotb
from sim.tb_common import CLOCK_NS
from sim.trainer_run import run_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _trainer(steps: int, simulator: str) -> dict:
    res = run_trainer(load_config(EXAMPLES / "hw_xor.toml", {"steps": steps}),
                      simulator=simulator)
    if not res.passed:
        raise SystemExit(f"trainer run under {simulator} failed: {res.message}")
    return {"cycles": res.result["cycles"], "cycles_per_s": res.result["cycles_per_second"]}


def _core(cycles: int, simulator: str) -> dict:
    res = run_cocotb(load_config(EXAMPLES / "hw_core_lfsr.toml"), "core", cycles=cycles,
                     simulator=simulator)
    if not res.passed:
        raise SystemExit(f"core run under {simulator} failed: {res.message}")
    case = next(ET.parse(res.build_dir / "results.xml").getroot().iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    simulated = float(props["sim_time_duration"]) / CLOCK_NS
    return {"cycles": round(simulated), "cycles_per_s": round(simulated / float(case.get("time")))}


def run(steps: int, cycles: int) -> dict:
    out = {"icarus_missing": icarus_missing()}
    for name, fn, size in (("trainer_xor", _trainer, steps), ("core_per_cycle", _core, cycles)):
        fig = {"verilator": fn(size, "verilator")}
        if out["icarus_missing"] is None:
            fig["icarus"] = fn(size, "icarus")
            fig["icarus_over_verilator"] = round(
                fig["icarus"]["cycles_per_s"] / fig["verilator"]["cycles_per_s"], 3)
        out[name] = fig
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=10000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = run(args.steps, args.cycles)
    if args.json:
        print(json.dumps(res))
        return
    for name in ("trainer_xor", "core_per_cycle"):
        fig = res[name]
        v = fig["verilator"]
        line = f"{name:<15} {v['cycles']:>9,} cycles  verilator {v['cycles_per_s']:>10,} cycles/s"
        if "icarus" in fig:
            line += (f"  icarus {fig['icarus']['cycles_per_s']:>9,} cycles/s  "
                     f"ratio {fig['icarus_over_verilator']:.3f}")
        print(line)
    if res["icarus_missing"]:
        print(f"no Icarus figures: {res['icarus_missing']}")


if __name__ == "__main__":
    main()
