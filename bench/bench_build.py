"""Benchmark: the Verilator build of a trainer under the two flag sets of the build policy.

``sim.runner.build_flags`` builds small designs with ``FAST_SIM`` (verilated.mk's
defaults, gcc -Os on the per-cycle code) and large ones with ``FAST_BUILD`` (functions
split at ~1,000 statements, gcc -O1 there). This builds the same trainer under both,
in this process, one after the other, each in a fresh build folder (nothing reused
between them), then trains it, and prints for each flag set:

- build: seconds from the call to the end of the C++ build (Verilog generation,
  Verilator and gcc; the run's own seconds subtracted, model start-up included);
- cycles/s: the simulation's rate on the training run (build excluded);

and the ratios FAST_BUILD / FAST_SIM of both. The machines are shared and noisy:
read the ratios, not the absolute figures. Both runs are bit-exact checks; a failed
one stops the benchmark.

Run: ``python bench/bench_build.py [--config examples/hw_xor.toml] [--set k=v ...]
[--steps N] [--json]`` (default: the XOR trainer, 30,000 steps). The fully parallel
digits trainer (``--config examples/hw_digits.toml --set hw.pipeline=stream --set
hw.mac_inputs=0 --steps 100000``) takes about 5 + 3.5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from golden_model.config import load_config, parse_assignment
from sim.runner import BUILD_ROOT_ENV, FAST_BUILD, FAST_SIM, BuildFlags
from sim.trainer_run import run_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _one(cfg, flags: BuildFlags) -> dict:
    """Build ``cfg``'s trainer with ``flags`` in a fresh build root, train, time both."""
    old = os.environ.get(BUILD_ROOT_ENV)
    with tempfile.TemporaryDirectory(prefix="bench_build_") as root:
        os.environ[BUILD_ROOT_ENV] = root
        try:
            start = time.perf_counter()
            res = run_trainer(cfg, flags=flags)
            total = time.perf_counter() - start
        finally:
            if old is None:
                os.environ.pop(BUILD_ROOT_ENV, None)
            else:
                os.environ[BUILD_ROOT_ENV] = old
    if not res.passed:
        raise SystemExit(f"build with {flags.name} failed: {res.message}")
    sim_s = res.result["seconds"]
    return {"flags": flags.name, "build_s": round(total - sim_s, 2), "sim_s": sim_s,
            "cycles": res.result["cycles"], "cycles_per_s": res.result["cycles_per_second"]}


def run(config: Path, sets: list[str], steps: int) -> dict:
    """Both flag sets on the same trainer (``sets``: ``--set`` assignments), and their
    ratios (FAST_BUILD / FAST_SIM)."""
    cfg = load_config(config, *(parse_assignment(s) for s in sets), {"steps": steps})
    old, new = _one(cfg, FAST_SIM), _one(cfg, FAST_BUILD)
    return {"config": str(config), "sets": sets, "steps": steps, "load_avg": os.getloadavg(),
            "fast_sim": old, "fast_build": new,
            "build_ratio": round(new["build_s"] / old["build_s"], 3),
            "speed_ratio": round(new["cycles_per_s"] / old["cycles_per_s"], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=EXAMPLES / "hw_xor.toml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(args.config, args.set, args.steps)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['config']} {' '.join(out['sets'])}, {steps_text(out)}, "
          f"load {out['load_avg'][0]:.1f}")
    for key in ("fast_sim", "fast_build"):
        f = out[key]
        print(f"  {f['flags']:<10} build {f['build_s']:7.1f} s   {f['cycles_per_s']:>10,} cycles/s")
    print(f"  fast_build / fast_sim: build time x{out['build_ratio']:.2f}, "
          f"simulation speed x{out['speed_ratio']:.2f}")
    return 0


def steps_text(out: dict) -> str:
    """``N steps (C cycles)`` of the runs."""
    return f"{out['steps']:,} steps ({out['fast_sim']['cycles']:,} cycles)"


if __name__ == "__main__":
    raise SystemExit(main())
