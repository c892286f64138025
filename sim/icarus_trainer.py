"""A bare Icarus Verilog run of a generated trainer, checked against the bit-exact model.

For the Verilog a user takes (``mgd-hw generate`` output or the committed ``rtl/``):
no cocotb and no verification taps, only the trainer's ports as its manifest lists
them. A Verilog testbench (written here) drives the clock, holds ``rst`` for two
cycles, then ``run`` with ``step_limit`` = the run's steps until ``done``, prints the
status outputs and the saturation counters, and reads every parameter back through
the parameter read port (row, lane; data one cycle later). ``iverilog -g<std>``
compiles it in either language mode (``2005``: Verilog-2005; ``2012``: SystemVerilog,
cocotb's default), so one run shows that the generated Verilog behaves the same in
both (docs/hardware_contract.md, "Portable Verilog"). :func:`check` compares the final
state with the model (the same comparison as the bare Verilator run's).

Builds go to a folder under ``sim.runner.build_root()``, never next to the source.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import time
from dataclasses import dataclass

import numpy as np

from golden_model.config import MGDConfig, build_config
from golden_model.datapath import HwData
from golden_model.hw_spec import hw_spec

CLOCK_NS = 10


@dataclass
class IcarusTrainerRun:
    """One bare Icarus run: status outputs after ``done`` (unsigned), the parameters
    read back (float layout), the cycles simulated and the wall time of ``vvp``."""

    outputs: dict
    theta: np.ndarray
    cycles: int
    seconds: float
    done: bool


def _tb(ports: list[dict], module: str, steps: int, max_cycles: int,
        reads: list[tuple[int, int]]) -> str:
    """The Verilog testbench around ``module`` (``ports`` from the manifest)."""
    decl, conn, status = [], [], []
    for p in ports:
        w = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        conn.append(f"    .{p['name']}({p['name']})")
        if p["name"] == "clk":
            continue  # declared and driven below
        kind = "reg" if p["direction"] == "input" else "wire"
        init = " = 0" if kind == "reg" else ""
        decl.append(f"  {kind} {w}{p['name']}{init};")
        if p["direction"] == "output" and p["name"] not in ("param_data", "busy", "updated"):
            status.append(f'      $display("out {p["name"]} %h", {p["name"]});')
    read = "\n".join(
        f"    param_row = {row}; param_lane = {lane}; @(negedge clk);\n"
        f'    $display("theta {row} {lane} %h", param_data);' for row, lane in reads)
    return f"""// Written by sim/icarus_trainer.py: {module} run for {steps} steps.
`timescale 1ns/1ps
module tb;
  reg clk;
{chr(10).join(decl)}
  integer cycles;
  {module} dut (
{(',' + chr(10)).join(conn)}
  );
  initial clk = 1'b0;
  always #{CLOCK_NS // 2} clk = ~clk;
  initial begin
    rst = 1; step_limit = {steps};
    @(negedge clk); @(negedge clk);
    rst = 0; run = 1;
    cycles = 0;
    while (done !== 1'b1 && cycles < {max_cycles}) begin
      @(negedge clk); cycles = cycles + 1;
    end
    run = 0;
    $display("done %b", done);
    $display("cycles %0d", cycles);
{chr(10).join(status)}
{read}
    $finish;
  end
endmodule
"""


def _hex(text: str) -> int | None:
    """A ``%h`` value, None when any digit is X or Z."""
    return None if set(text.lower()) & set("xz") else int(text, 16)


def run(verilog: pathlib.Path, steps: int, std: str = "2012",
        root: pathlib.Path | None = None) -> tuple[MGDConfig, IcarusTrainerRun]:
    """Compile ``verilog`` (a trainer with its manifest ``<name>.json`` beside it) with
    ``iverilog -g<std>`` and run ``steps`` steps. Returns (the manifest's config, run).
    A run whose ``done`` never rises stops after twice the schedule's cycles."""
    from sim.runner import build_root

    verilog = pathlib.Path(verilog)
    manifest = json.loads(verilog.with_suffix(".json").read_text())
    cfg = build_config(manifest["config"])
    spec = hw_spec(cfg)
    module = manifest["module"]
    reads, row0 = [], 0
    for layer in spec.layout.layers:
        reads += [(row0 + r, lane) for r in range(layer.rows) for lane in range(layer.lanes)]
        row0 += layer.rows
    tb = _tb(manifest["ports"], module, steps, 2 * spec.step_cycles(steps) + 100, reads)
    text = verilog.read_text()
    key = hashlib.sha256(f"{std}\n{tb}\n{text}".encode()).hexdigest()[:12]
    folder = (root or build_root()) / f"icarus_trainer_{key}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tb.v").write_text(tb)
    (folder / verilog.name).write_text(text)
    compile_ = subprocess.run(["iverilog", f"-g{std}", "-s", "tb", "-o", "sim.vvp", "tb.v",
                               verilog.name], cwd=folder, capture_output=True, text=True)
    if compile_.returncode:
        raise RuntimeError(f"iverilog -g{std} failed: {compile_.stderr.strip()[-2000:]}")
    start = time.perf_counter()
    proc = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=folder, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"vvp exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    outputs, values, fields = {}, {}, {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["out"]:
            outputs[parts[1]] = _hex(parts[2])
        elif parts[:1] == ["theta"]:
            raw = _hex(parts[3])
            if raw is None:
                outputs["param_data"] = None
            values[(int(parts[1]), int(parts[2]))] = raw or 0
        elif len(parts) == 2:
            fields[parts[0]] = parts[1]
    tb_bits = cfg.hw.theta_bits
    parts_, row0 = [], 0
    for layer in spec.layout.layers:
        block = np.array([[values[(row0 + r, lane)] for lane in range(layer.lanes)]
                          for r in range(layer.rows)], np.int64)
        parts_.append(np.where(block >> (tb_bits - 1) != 0, block - (1 << tb_bits), block))
        row0 += layer.rows
    theta = spec.layout.from_memory(parts_)
    return cfg, IcarusTrainerRun(outputs, theta, int(fields["cycles"]), seconds,
                                 fields["done"] == "1")


def check(cfg: MGDConfig, result: IcarusTrainerRun, steps: int, run_index: int = 0,
          data: HwData | None = None) -> str | None:
    """None when the run finished with the model's final state; else what differs."""
    from gateware.tops import load_data
    from sim.bare_trainer import final_state_difference
    from sim.tb_trainer import TrainerRun

    if not result.done:
        return (f"done never rose in {result.cycles:,} cycles (the model needs "
                f"{hw_spec(cfg).step_cycles(steps):,}); status {result.outputs}")
    undefined = sorted(k for k, v in result.outputs.items() if v is None)
    if undefined:
        return f"undefined (X/Z) outputs after the run: {', '.join(undefined)}"
    ref = TrainerRun(hw_spec(cfg), load_data(cfg) if data is None else data, run_index)
    return final_state_difference(ref, result.outputs, result.theta, steps)
