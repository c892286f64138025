"""Mutation check: one wrong rounding, LFSR tap, code order or saturation bound in the
gateware must make the cocotb regression fail.

Each mutation is applied in this process by patching a name the gateware uses while it
elaborates (sim/mutation.py; sim/mutation_run.py runs the cases; no source file is
touched, the golden model keeps the true definitions). For every case the mutated
Verilog is checked to differ from the original, built with Verilator in its own
directory under the build root ($MGD_BUILD_ROOT, else a temp dir) and run through the
block's existing testbench with the regression's configuration and seed. A mutant is
killed when the testbench fails with its first-mismatch report; the unmutated
configurations run first as controls and must pass.

Run: ``python bench/mutation_check.py [--cycles N] [--json] [--only NAME ...]``.
Exit status 1 if any mutant survives (or a control fails, or a mutation is a no-op).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sim.mutation import CASES, MUTATIONS
from sim.mutation_run import CaseResult, all_good, run_all

COLUMNS = ("mutation", "block", "config", "killed", "cycles to detect", "first mismatch")


def _row(r: CaseResult) -> tuple[str, ...]:
    killed = {"killed": "yes", "pass": "control", "FAIL": "CONTROL FAILED"}.get(
        r.status, f"NO ({r.status})")
    cycles = "" if r.detect_cycle is None else str(r.detect_cycle + 1)
    return (r.mutation, r.top, r.config, killed, cycles, r.message.splitlines()[0][:90])


def table(results: list[CaseResult]) -> str:
    """A plain-text table, one row per control or mutant."""
    rows = [COLUMNS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                     + "  " + row[-1])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 14)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the mutation check; print the table (or JSON); 0 if every mutant was killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100_000,
                        help="cycles per testbench run (default: 100000, as the regression)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(MUTATIONS),
                        help="run only these mutations")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the unmutated control runs")
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error(f"--cycles must be a positive integer, not {args.cycles}")
    cases = [c for c in CASES if not args.only or c.mutation.name in args.only]

    def progress(r: CaseResult) -> None:
        if not args.json:
            print(f"  {r.mutation}@{r.config}: {r.status} ({r.seconds:.1f} s)",
                  file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    results = run_all(args.cycles, cases, controls=not args.no_control, progress=progress)
    ok = all_good(results)
    if args.json:
        print(json.dumps({"cycles": args.cycles, "ok": ok,
                          "seconds": time.perf_counter() - t0,
                          "results": [r.to_dict() for r in results]}, indent=1))
    else:
        print(table(results))
        mutants = [r for r in results if r.mutation != "(none)"]
        killed = sum(r.killed for r in mutants)
        print(f"\n{killed}/{len(mutants)} mutants killed, "
              f"{sum(r.status == 'pass' for r in results)}/"
              f"{sum(r.mutation == '(none)' for r in results)} controls passed, "
              f"{args.cycles} cycles per run, {time.perf_counter() - t0:.0f} s")
        for r in results:
            if r.status not in ("pass", "killed"):
                print(f"NOT OK: {r.mutation}@{r.config}: {r.status}: {r.message}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
