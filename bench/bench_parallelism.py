"""The trainer at several parallelism settings, in RTL: same numbers, other cycles.

Each setting is a whole autonomous cocotb/Verilator run (sim/trainer_run.py), checked
against the bit-exact model at every update and every step; the table shows the
SHA-256 of the final parameters (equal for every setting), the cycles the run took,
cycles per step and the simulation's rate.

Run: ``python bench/bench_parallelism.py [--config FILE] [--steps N] [--json]``
(default examples/hw_digits.toml, 20,000 steps, settings below).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from golden_model.config import load_config
from sim.trainer_run import run_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SETTINGS = {
    "digits": [
        {"macs": [4, 2], "mac_inputs": 1},
        {"macs": [8, 5], "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 4},
        {"macs": 0, "mac_inputs": [16, 8]},
    ],
    "default": [
        {"macs": 1, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 0},
    ],
}


def run(config: Path, steps: int) -> list[dict]:
    base = load_config(config, {"steps": steps})
    rows = []
    for setting in SETTINGS.get(base.task.name, SETTINGS["default"]):
        cfg = load_config(config, {"steps": steps, "hw": setting})
        res = run_trainer(cfg)
        r = res.result
        rows.append({
            "macs": setting["macs"], "mac_inputs": setting["mac_inputs"],
            "bit_exact": res.passed, "message": res.message,
            "cycles": r.get("cycles"), "cycles_per_step": round(r["cycles"] / steps, 2)
            if r else None, "sim_cycles_per_s": r.get("cycles_per_second"),
            "theta_sha256": r.get("theta_sha256"), "test_acc": r.get("test_acc"),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLES / "hw_digits.toml")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.config, args.steps)
    if args.json:
        print(json.dumps(rows))
        return
    same = len({r["theta_sha256"] for r in rows}) == 1 and all(r["bit_exact"] for r in rows)
    print(f"{args.config.name}, {args.steps:,} steps in RTL; final parameters identical "
          f"across settings: {same}")
    print(f"  {'macs':>8} {'mac_inputs':>10} {'cycles':>12} {'cycles/step':>11} "
          f"{'sim Mcyc/s':>10} {'test acc':>8}  theta sha256")
    for r in rows:
        if not r["bit_exact"]:
            print(f"  {str(r['macs']):>8} {str(r['mac_inputs']):>10}  MISMATCH: {r['message']}")
            continue
        print(f"  {str(r['macs']):>8} {str(r['mac_inputs']):>10} {r['cycles']:>12,} "
              f"{r['cycles_per_step']:>11.1f} {r['sim_cycles_per_s'] / 1e6:>10.2f} "
              f"{r['test_acc']:>8.3f}  {r['theta_sha256'][:16]}")


if __name__ == "__main__":
    main()
