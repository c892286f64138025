"""The trainer at several parallelism settings, in RTL: same numbers, other cycles.

Each setting is a whole autonomous cocotb/Verilator run (sim/trainer_run.py), checked
against the bit-exact model at every update and every step; the table shows the
SHA-256 of the final parameters (equal for every setting of one pipeline: the
streaming trainer's updates meet the stream later, so its numbers are its own), the
cycles the run took, cycles per step and the simulation's rate, and against them

- the MAC-bound limit: the weights' products per evaluation over the setting's
  multipliers, times the evaluations per step (baselines included): no design with
  those multipliers can take fewer cycles;
- for the streaming trainer, its target: 1.1 x II x evaluations per step (fill and
  drain counted, as the run's cycles include them).

Run: ``python bench/bench_parallelism.py [--config FILE] [--steps N] [--json]``
(default examples/hw_digits.toml, 20,000 steps, settings below).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from golden_model.config import ConfigError, load_config
from golden_model.hw_spec import hw_spec
from sim.trainer_run import run_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SETTINGS = {
    "digits": [
        {"macs": [4, 2], "mac_inputs": 1},
        {"macs": [8, 5], "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 4},
        {"macs": 0, "mac_inputs": [16, 8]},
        {"pipeline": "stream", "macs": [4, 2], "mac_inputs": 1},
        {"pipeline": "stream", "macs": 0, "mac_inputs": 1},
        {"pipeline": "stream", "macs": 0, "mac_inputs": 4},
        {"pipeline": "stream", "macs": 0, "mac_inputs": [16, 8]},
    ],
    "default": [
        {"macs": 1, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 1},
        {"macs": 0, "mac_inputs": 0},
        {"pipeline": "stream", "macs": 0, "mac_inputs": 1},
        {"pipeline": "stream", "macs": 0, "mac_inputs": 0},
    ],
}


def mac_limit(cfg) -> tuple[int, int]:
    """(weight products per evaluation, multipliers) of a trainer config."""
    from golden_model.config import layer_parallelism, network_sizes

    sizes = network_sizes(cfg)
    products = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return products, sum(p * q for p, q in layer_parallelism(cfg))


def run(config: Path, steps: int) -> list[dict]:
    base = load_config(config, {"steps": steps})
    rows = []
    for setting in SETTINGS.get(base.task.name, SETTINGS["default"]):
        cfg = load_config(config, {"steps": steps, "hw": setting})
        try:
            spec = hw_spec(cfg)
        except ConfigError as e:  # e.g. tau_theta below the stream's depth
            rows.append({"pipeline": cfg.hw.pipeline, "macs": setting["macs"],
                         "mac_inputs": setting["mac_inputs"], "bit_exact": None,
                         "message": str(e)})
            continue
        res = run_trainer(cfg)
        r = res.result
        products, mults = mac_limit(cfg)
        evals = r.get("evaluations") if r else None
        per_step = evals / steps if evals else None
        ii = spec.stream.ii if spec.stream else None
        rows.append({
            "pipeline": cfg.hw.pipeline,
            "macs": setting["macs"], "mac_inputs": setting["mac_inputs"],
            "multipliers": mults, "ii": ii, "evaluations_per_step": per_step,
            "mac_bound_cycles_per_step": round(products / mults * per_step, 2)
            if per_step else None,
            "target_cycles_per_step": round(1.1 * ii * per_step, 2) if ii and per_step
            else None,
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
    for pipeline in ("sequential", "stream"):
        part = [r for r in rows if r["pipeline"] == pipeline and r["bit_exact"] is not None]
        same = len({r["theta_sha256"] for r in part}) == 1 and all(r["bit_exact"] for r in part)
        print(f"{args.config.name}, {args.steps:,} steps in RTL, {pipeline} trainer; final "
              f"parameters identical across settings: {same}")
    print(f"  {'pipeline':>10} {'macs':>8} {'mac_inputs':>10} {'mults':>5} {'II':>4} "
          f"{'evals/step':>10} {'cycles/step':>11} {'MAC bound':>9} {'target':>7} "
          f"{'sim Mcyc/s':>10} {'test acc':>8}  theta sha256")
    for r in rows:
        head = f"  {r['pipeline']:>10} {str(r['macs']):>8} {str(r['mac_inputs']):>10}"
        if r["bit_exact"] is None:
            print(f"{head}  not built: {r['message']}")
            continue
        if not r["bit_exact"]:
            print(f"{head}  MISMATCH: {r['message']}")
            continue
        target = f"{r['target_cycles_per_step']:.1f}" if r["target_cycles_per_step"] else "-"
        print(f"{head} {r['multipliers']:>5} {r['ii'] or '-':>4} "
              f"{r['evaluations_per_step']:>10.3f} {r['cycles_per_step']:>11.1f} "
              f"{r['mac_bound_cycles_per_step']:>9.1f} {target:>7} "
              f"{r['sim_cycles_per_s'] / 1e6:>10.2f} {r['test_acc']:>8.3f}  "
              f"{r['theta_sha256'][:16]}")


if __name__ == "__main__":
    main()
