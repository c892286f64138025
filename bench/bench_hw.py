"""Benchmark: the bit-exact model's fast paths against bare Verilator RTL, N = 1024.

Issue requirement: for N = 1024 the bit-exact model's throughput is at least the
Verilator RTL's for the same block, the RTL run without per-cycle Python. Every top the
bare harness runs (``gateware.tops``: its record's ``bare.bench`` config and cycles):

- ``perturb_gen``: PerturbGen, code kind, 24-bit LFSR, tau_p = 1, step on half the
  cycles;
- ``weight_update``: the fully parallel unit (hw.lanes = 0), default widths.

Both sides run the same stimulus (sim.bare: a counter-based generator the C++ main
and NumPy both compute) and must agree on the outputs after the last edge and on the
digest of every cycle's outputs; the benchmark says whether they do (exit status 1
if not). Figures, all from this run:

- model: cycles/s of ``sim.bare.model_run`` - stimulus generation, the fast path and
  the per-cycle digest all included;
- rtl: cycles/s of the executable's cycle loop with the digest (the run compared);
  its startup (process wall time minus the loop) is reported apart;
- rtl_raw: the same loop without the digest, the plain simulation;
- ratio: model / the faster of rtl and rtl_raw;
- tick: the per-cycle model (``tick`` only) over a short stretch, for scale.

Build time (Verilog and C++; cached under sim.runner.build_root(), the 1024-parameter
weight-update unit takes ~10 minutes the first time) is reported and excluded.

Run: ``python bench/bench_hw.py [--quick] [--json] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from gateware import tops
from golden_model.config import build_config
from sim import bare


def bench_block(top: str, cycles: int, seed: int, tick_cycles: int) -> dict:
    record = tops.get(top)
    cfg = build_config(record.bare.bench)
    folder = bare.build_folder(cfg, top)
    cached = (folder / "obj" / f"{record.module}_bare").exists()
    start = time.perf_counter()
    exe = bare.build(cfg, top)
    build_s = time.perf_counter() - start

    rtl = bare.run(exe, cycles, seed, digest=True)
    model = bare.model_run(cfg, top, cycles, seed, digest=True)
    raw = bare.run(exe, cycles, seed, digest=False)
    diff = bare.first_difference(rtl, model, cfg)
    if diff is None and raw.outputs != rtl.outputs:
        diff = "the RTL run without the digest ended elsewhere"
    best_rtl = max(rtl.rate, raw.rate)
    return {
        "n_params": cfg.hw.n_params,
        "cycles": cycles,
        "seed": seed,
        "build_seconds": round(build_s, 1),
        "build_cached": cached,
        "model_cycles_per_s": round(model.rate),
        "rtl_cycles_per_s": round(rtl.rate),
        "rtl_raw_cycles_per_s": round(raw.rate),
        "rtl_startup_seconds": round(rtl.wall_seconds - rtl.seconds, 4),
        "tick_cycles_per_s": round(
            tops.resolve(record.bare.harness).tick_rate(cfg, tick_cycles, seed)),
        "ratio_model_over_rtl": round(model.rate / best_rtl, 2),
        "equal": diff is None,
        "difference": diff,
        "digest": f"{model.digest:016x}",
        "sat_counts": {k: v for k, v in model.outputs.items() if k.startswith("sat")},
        "build_dir": str(folder),
    }


def run(quick: bool = False, seed: int = 1, cycles: dict | None = None) -> dict:
    out = {}
    for record in tops.bare_tops("block"):
        top = record.name
        k = (cycles or {}).get(top) or record.bare.bench_cycles[1 if quick else 0]
        tick = record.bare.bench_tick_cycles // (5 if quick else 1)
        out[top] = bench_block(top, k, seed, tick)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    parser.add_argument("--cycles-gen", type=int, default=0, help="cycles of perturb_gen")
    parser.add_argument("--cycles-wu", type=int, default=0, help="cycles of weight_update")
    args = parser.parse_args()
    res = run(args.quick, args.seed,
              {"perturb_gen": args.cycles_gen, "weight_update": args.cycles_wu})
    if args.json:
        print(json.dumps(res))
    else:
        for top, r in res.items():
            built = "cached" if r["build_cached"] else f"built in {r['build_seconds']} s"
            print(f"{top}, N = {r['n_params']}, {r['cycles']:,} cycles, seed {r['seed']} "
                  f"({built}, excluded):")
            print(f"  model fast path  {r['model_cycles_per_s']:>12,} cycles/s "
                  "(stimulus + run + per-cycle digest)")
            print(f"  bare RTL         {r['rtl_cycles_per_s']:>12,} cycles/s (with digest; "
                  f"startup {r['rtl_startup_seconds']} s, excluded)")
            print(f"  bare RTL, raw    {r['rtl_raw_cycles_per_s']:>12,} cycles/s (no digest)")
            print(f"  per-cycle tick   {r['tick_cycles_per_s']:>12,} cycles/s (for scale)")
            print(f"  model / RTL      {r['ratio_model_over_rtl']}x (requirement: >= 1)")
            state = "agree" if r["equal"] else f"DIFFER: {r['difference']}"
            print(f"  final outputs and per-cycle digest {r['digest']}: {state}")
    if not all(r["equal"] for r in res.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
