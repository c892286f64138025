"""Mutation check, the runner: build each mutant, run its block's testbench, classify.

The mutations and the cases are in :mod:`sim.mutation`. Every generation of Verilog
happens inside :func:`gateware.generate.verilog_for`, which
:func:`sim.runner.run_cocotb` calls, so a mutation is applied around the whole
``run_cocotb`` call. The testbench runs in the simulator's own process with an
unpatched golden model.

:func:`run_case`:

1. generates the unmutated and the mutated Verilog and checks they differ
   (otherwise the mutation did not reach the design: status ``no-op``);
2. builds the mutant in its own directory under ``build_root()/mutants`` and runs
   the block's testbench;
3. calls the mutant *killed* when the run fails with the testbench's first-mismatch
   report ``cycle C: signal S: expected E, got A``; the cycle is kept as the
   detection latency.

:func:`run_control` runs the unmutated configuration (same seed, same cycles, the
regression's own build directory): it must pass, or a kill proves nothing.
:func:`run_all` does both for every case; bench/mutation_check.py is the command-line
front end.
"""

from __future__ import annotations

import difflib
import pathlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from golden_model.config import MGDConfig
from golden_model.hw_spec import hw_spec
from sim.mutation import CASES, CONFIGS, MutationCase

MISMATCH_RE = re.compile(r"cycle (\d+): signal (\S+): expected (.+?), got (.+)")

__all__ = [
    "CaseResult",
    "all_good",
    "mutant_build_dir",
    "mutant_verilog",
    "parse_mismatch",
    "run_all",
    "run_case",
    "run_control",
    "verilog_diff_lines",
]


@dataclass
class CaseResult:
    """Outcome of one mutant (or control) run.

    ``status``: ``killed`` (failed with a first-mismatch report), ``survived`` (the
    testbench passed), ``no-op`` (the Verilog did not change, nothing was run),
    ``failed`` (failed without a mismatch report, e.g. an end-of-run assertion),
    ``error`` (the build or run raised), and for controls ``pass``/``FAIL``.
    ``detect_cycle`` is the first mismatching cycle (0-based, after reset), so
    ``detect_cycle + 1`` cycles were compared up to the detection.
    """

    mutation: str
    block: str
    top: str
    config: str
    status: str
    killed: bool
    message: str
    detect_cycle: int | None
    signal: str | None
    verilog_lines_changed: int
    cycles: int
    stim_seed: int
    seconds: float
    build_dir: str

    def to_dict(self) -> dict:
        return asdict(self)


def parse_mismatch(message: str) -> tuple[int, str] | None:
    """(cycle, signal) of a ``cycle C: signal S: expected E, got A`` report, else None."""
    match = MISMATCH_RE.search(message)
    return (int(match.group(1)), match.group(2)) if match else None


def mutant_verilog(case: MutationCase) -> tuple[str, str]:
    """(unmutated, mutated) Verilog of the case's top and config."""
    from gateware.generate import verilog_for

    cfg = case.make_config()
    original = verilog_for(cfg, case.top)
    with case.mutation.apply():
        mutated = verilog_for(cfg, case.top)
    return original, mutated


def verilog_diff_lines(a: str, b: str) -> int:
    """How many lines were added or removed between two Verilog texts."""
    return sum(1 for line in difflib.unified_diff(a.splitlines(), b.splitlines(), n=0,
                                                  lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def mutant_build_dir(case: MutationCase) -> pathlib.Path:
    """The mutant's own build directory (never the regression's)."""
    from sim.runner import build_root, config_hash

    return (build_root() / "mutants"
            / f"{case.mutation.name}-{case.top}-{config_hash(case.make_config(), case.top)}")


def _run(cfg: MGDConfig, top: str, cycles: int, seed: int, extra: dict,
         build_dir: pathlib.Path | None) -> tuple[bool | None, str, str]:
    """(passed, message, build dir); passed is None if the build or run raised."""
    from sim.runner import run_cocotb

    try:
        res = run_cocotb(cfg, top, f"sim.tb_{top}", cycles, stim_seed=seed, extra=extra,
                         build_dir=build_dir)
    except (Exception, SystemExit) as exc:  # a failed build: report it, go on
        return None, f"{type(exc).__name__}: {exc}", str(build_dir or "")
    return res.passed, res.message, str(res.build_dir)


def run_case(case: MutationCase, cycles: int) -> CaseResult:
    """Build the mutant, run the block's testbench for ``cycles``, classify the outcome."""
    t0 = time.perf_counter()
    original, mutated = mutant_verilog(case)
    changed = verilog_diff_lines(original, mutated)
    if not changed:
        passed, message, build_dir = None, "the mutation did not change the Verilog", ""
    else:
        cfg = case.make_config()
        build_dir_path = mutant_build_dir(case)
        with case.mutation.apply():  # run_cocotb generates the Verilog inside
            passed, message, build_dir = _run(cfg, case.top, cycles, case.stim_seed,
                                              case.extra, build_dir_path)
        # the design really built was the mutant
        built = build_dir_path / f"mgd_{case.top}.v"
        if passed is not None and (not built.exists() or built.read_text() != mutated):
            passed, message = None, f"{built} is not the mutant's Verilog"
    mismatch = parse_mismatch(message)
    if not changed:
        status = "no-op"
    elif passed is None:
        status = "error"
    elif passed:
        status = "survived"
    else:
        status = "killed" if mismatch else "failed"
    return CaseResult(
        mutation=case.mutation.name, block=case.mutation.block, top=case.top,
        config=case.config, status=status, killed=status == "killed", message=message,
        detect_cycle=mismatch[0] if mismatch else None,
        signal=mismatch[1] if mismatch else None, verilog_lines_changed=changed,
        cycles=cycles, stim_seed=case.stim_seed, seconds=time.perf_counter() - t0,
        build_dir=build_dir,
    )


def run_control(config: str, cycles: int) -> CaseResult:
    """The unmutated configuration, same seed and cycles, in the regression's build dir."""
    t0 = time.perf_counter()
    top, make, seed, extra = CONFIGS[config]
    passed, message, build_dir = _run(hw_spec(make()).cfg, top, cycles, seed,
                                      dict(extra), None)
    return CaseResult(
        mutation="(none)", block=top, top=top, config=config,
        status="pass" if passed else "FAIL", killed=False, message=message,
        detect_cycle=None, signal=None, verilog_lines_changed=0, cycles=cycles,
        stim_seed=seed, seconds=time.perf_counter() - t0, build_dir=build_dir,
    )


def run_all(cycles: int = 100_000, cases: list[MutationCase] | None = None,
            controls: bool = True,
            progress: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Controls first (one per configuration used), then every mutant.

    ``progress`` is called with each result as it completes.
    """
    cases = CASES if cases is None else cases
    results: list[CaseResult] = []
    todo: list[Callable[[], CaseResult]] = []
    if controls:
        for config in dict.fromkeys(c.config for c in cases):
            todo.append(lambda config=config: run_control(config, cycles))
    todo += [lambda case=case: run_case(case, cycles) for case in cases]
    for job in todo:
        result = job()
        results.append(result)
        if progress:
            progress(result)
    return results


def all_good(results: list[CaseResult]) -> bool:
    """Every control passed and every mutant was killed by a first-mismatch report."""
    return all(r.status in ("pass", "killed") for r in results)
