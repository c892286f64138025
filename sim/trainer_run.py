"""A whole training run of the Trainer under cocotb/Verilator, compared with the model.

:func:`run_trainer` builds the trainer of a config (with its verification taps) and
runs ``sim/tb_trainer.py`` for ``cfg.steps`` steps; :class:`TrainerSimResult` is what
``mgd-hw sim`` prints.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from golden_model.config import MGDConfig
from golden_model.datapath import HwData
from golden_model.hw_spec import hw_spec, trainer_spec

if TYPE_CHECKING:
    from sim.runner import BuildFlags

# Costs per trace chunk: one Python wake-up per TRACE_DEPTH steps.
TRACE_DEPTH = 256
RESULT_FILE = "trainer_result.json"


@dataclass
class TrainerSimResult:
    """Outcome of one RTL training run (``result`` is the testbench's JSON)."""

    cfg: MGDConfig
    passed: bool
    message: str
    build_dir: str
    seconds: float
    waves: str | None = None
    result: dict = field(default_factory=dict)
    simulator: str = "verilator"

    def summary(self) -> dict:
        c = self.cfg
        return {
            "top": "trainer",
            "simulator": self.simulator,
            "task": c.task.name,
            "network": list(hw_spec(c).sizes),
            "mode": c.mgd.mode,
            "perturbation": c.mgd.perturbation,
            "macs": c.hw.macs,
            "mac_inputs": c.hw.mac_inputs,
            "steps": c.steps,
            "bit_exact": self.passed,
            "message": self.message,
            "seconds_with_build": round(self.seconds, 2),
            "build_dir": self.build_dir,
            "waves": self.waves,
            **self.result,
        }

    def describe(self) -> str:
        c, r = self.cfg, self.result
        net = "-".join(str(s) for s in hw_spec(c).sizes)
        head = (f"trainer {c.task.name} {net} {c.mgd.mode}/{c.mgd.perturbation} "
                f"({self.simulator})")
        if not self.passed:
            return (f"{head}: MISMATCH: {self.message} (build and logs in {self.build_dir})"
                    + (f"; waves in {self.waves}" if self.waves else ""))
        rate = r["cycles_per_second"]
        speed = f"{rate / 1e6:.2f} M" if rate >= 100_000 else f"{rate:,}"
        return (
            f"{head}, {c.steps:,} steps in RTL: test acc {r['test_acc']:.3f} (train "
            f"{r['train_acc']:.3f}); bit-exact with the golden model at all {r['updates']:,} "
            f"updates and every step's cost; {r['cycles']:,} cycles in {r['seconds']:.1f} s "
            f"({speed} cycles/s), {self.seconds:.1f} s with the build"
            + (f"; waves in {self.waves}" if self.waves else "")
        )


def run_trainer(cfg: MGDConfig, *, waves: bool = False, run: int = 0,
                trace_depth: int = TRACE_DEPTH, data: HwData | None = None,
                simulator: str = "verilator", icarus_std: str = "2012",
                flags: BuildFlags | None = None) -> TrainerSimResult:
    """Build the trainer of ``cfg`` (run ``run``'s memory images) and train ``cfg.steps``
    steps in RTL under ``simulator`` (``sim.runner.SIMULATORS``; Icarus in language
    mode ``icarus_std``), comparing with the bit-exact model (sim/tb_trainer.py).

    ``data``: the task in the hardware formats; loaded here (once) when not given. The
    design is built from it and the testbench and model worker read it from the build
    folder's data file. ``flags``: Verilator's build flags (``sim.runner.BuildFlags``),
    by default those the runner picks for the design's size.
    """
    from gateware import tops
    from sim.runner import run_cocotb

    trainer_spec(cfg)  # one line when cfg is no trainer config
    start = time.perf_counter()
    if data is None:
        data = tops.load_data(cfg)
    options = {"trace_depth": trace_depth, "run": run}
    # The testbench runs in the build folder and writes its result there (a stale one
    # from an earlier run is removed by the runner's fresh results.xml check below).
    sim = run_cocotb(cfg, "trainer", cycles=0, waves=waves,
                     extra={"steps": cfg.steps, "run": run, "trace_depth": trace_depth,
                            "result": RESULT_FILE, "python": sys.executable},
                     options=options, fresh=[RESULT_FILE], ports_only=True, data=data,
                     simulator=simulator, icarus_std=icarus_std, flags=flags)
    out = sim.build_dir / RESULT_FILE
    result = json.loads(out.read_text()) if sim.passed and out.exists() else {}
    return TrainerSimResult(cfg, sim.passed and bool(result), sim.message, str(sim.build_dir),
                            time.perf_counter() - start,
                            str(sim.waves) if sim.waves else None, result, simulator)
