"""``mgd-hw regress``: the cocotb regression over the example configs, under Verilator
or Icarus Verilog (``--simulator``).

The matrix (:func:`jobs`): every block top of the registry (``gateware.tops``: perturb
generator, cost accumulator, weight update, MGDCore) on every
``examples/hw_core_*.toml``, for its record's cycles and stimulus seeds, compared with
the golden model on every cycle; and whole training runs of every trainer example
(``examples/hw_{xor,parity3,digits,digits_node}.toml``) for the trainer record's runs
(seeds), plus XOR at three parallelism settings. Jobs run on the task engine
(``mgd_hw.engine``): ``-n`` worker processes of this machine, or the workers of a
running Dask scheduler (``--scheduler``); each (top, config) has its own build folder,
so workers never share one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gateware import tops
from golden_model.config import load_config, parse_assignment

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRAINER_EXAMPLES = ("hw_xor", "hw_parity3", "hw_digits", "hw_digits_node")
XOR_PARALLELISM = (("hw.macs=1", "hw.mac_inputs=1"), ("hw.macs=1", "hw.mac_inputs=2"),
                   ("hw.mac_inputs=0",))


@dataclass(frozen=True)
class Job:
    """One regression entry: a block for ``cycles`` cycles of stimulus ``seed``, or a
    trainer run (``top`` = "trainer", ``seed`` = run index) of ``steps`` steps."""

    name: str
    example: str
    top: str
    seed: int
    sets: tuple[str, ...] = ()
    cycles: int = 0
    steps: int = 0


@dataclass
class Outcome:
    name: str
    passed: bool
    message: str
    seconds: float
    detail: str = ""


def jobs(max_steps: int = 0, examples: Path = EXAMPLES) -> list[Job]:
    """The regression matrix; ``max_steps`` > 0 caps every trainer run's steps."""
    out = []
    for path in sorted(examples.glob("hw_core_*.toml")):
        for top in tops.tops_of("none"):
            for seed in top.regress_seeds:
                out.append(Job(f"{path.stem}/{top.name}/seed{seed}", path.name, top.name,
                               seed, cycles=top.regress_cycles))
    for stem in TRAINER_EXAMPLES:
        cfg = load_config(examples / f"{stem}.toml")
        steps = min(cfg.steps, max_steps) if max_steps else cfg.steps
        for run in tops.get("trainer").regress_seeds:
            out.append(Job(f"{stem}/trainer/run{run}", f"{stem}.toml", "trainer", run,
                           steps=steps))
    cfg = load_config(examples / "hw_xor.toml")
    steps = min(cfg.steps, max_steps) if max_steps else cfg.steps
    for sets in XOR_PARALLELISM:
        label = ",".join(s.split(".")[1] for s in sets)
        out.append(Job(f"hw_xor/trainer/{label}", "hw_xor.toml", "trainer", 0, sets, steps=steps))
    return out


def run_job(job: Job, examples: str = str(EXAMPLES), simulator: str = "verilator") -> Outcome:
    """Run one job in this process (a pool worker) under ``simulator``."""
    start = time.perf_counter()
    layers = [parse_assignment(s) for s in job.sets]
    if tops.get(job.top).tier == "trainer":
        from sim.trainer_run import run_trainer

        cfg = load_config(Path(examples) / job.example, *layers, {"steps": job.steps})
        res = run_trainer(cfg, run=job.seed, simulator=simulator)
        detail = ""
        if res.passed:
            r = res.result
            detail = (f"{job.steps:,} steps, {r['cycles']:,} cycles, test acc "
                      f"{r['test_acc']:.3f}, theta {r['theta_sha256'][:12]}")
        return Outcome(job.name, res.passed, res.message, time.perf_counter() - start, detail)
    from sim.runner import run_cocotb

    cfg = load_config(Path(examples) / job.example, *layers)
    res = run_cocotb(cfg, job.top, cycles=job.cycles, stim_seed=job.seed, simulator=simulator)
    return Outcome(job.name, res.passed, res.message, time.perf_counter() - start,
                   f"{job.cycles:,} cycles")


def run_payload(payload: tuple[Job, str, str]) -> Outcome:
    """:func:`run_job` of (job, examples folder, simulator): the engine's one argument."""
    return run_job(*payload)


def run_all(selected: list[Job], workers: int, progress=None, simulator: str = "verilator",
            scheduler: str | None = None) -> list[Outcome]:
    """Run the jobs under ``simulator`` on ``workers`` local processes, or on the Dask
    cluster at ``scheduler``; ``progress(outcome)`` after each."""
    from . import engine

    outcomes = []
    payloads = [(job, str(EXAMPLES), simulator) for job in selected]
    # one job a Dask task: the jobs are long simulations of very different lengths, each
    # reported as it finishes
    for o in engine.run(run_payload, payloads, workers=workers, scheduler=scheduler,
                        backend="pool", chunk=1):
        # a build failure (an exception): reported as a failed job
        outcome = o.value if o.ok else Outcome(o.item[0].name, False, o.error, 0.0)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    order = {job.name: i for i, job in enumerate(selected)}
    return sorted(outcomes, key=lambda o: order[o.name])


def report(outcomes: list[Outcome], seconds: float) -> str:
    width = max(len(o.name) for o in outcomes)
    lines = [f"{o.name:<{width}}  {'PASS' if o.passed else 'FAIL'}  {o.seconds:7.1f} s  "
             + (o.detail if o.passed else o.message) for o in outcomes]
    failed = sum(not o.passed for o in outcomes)
    lines.append(f"{len(outcomes) - failed}/{len(outcomes)} passed in {seconds:.1f} s"
                 + (f"; {failed} FAILED" if failed else ""))
    return "\n".join(lines)


def as_json(outcomes: list[Outcome], seconds: float) -> str:
    return json.dumps({"passed": all(o.passed for o in outcomes), "seconds": round(seconds, 1),
                       "jobs": [asdict(o) for o in outcomes]})
