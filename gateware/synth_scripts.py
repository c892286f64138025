"""What the synthesis tools are given: the scan harness around the design, the Yosys
script and nextpnr's arguments (``gateware.synth`` runs them; its docstring explains the
harness and the choices)."""

from __future__ import annotations

import re
from typing import Any

from .synth_devices import Device

HARNESS = "mgd_synth_harness"  # the scan harness's module name
SEED = 1  # nextpnr's placement seed
# nextpnr's router, chosen by the design's size in LUTs (Yosys' count, before
# nextpnr). router1 (nextpnr's default) gives the better Fmax on small designs (the
# XOR stream trainer on the LFE5U-85F: 69.6 MHz against router2's 61.2) but on the
# digits stream trainer (28k LUTs) it was still ripping up congested nets after 42 min;
# router2, congestion-driven, routed that netlist in 4 min 20 s.
ROUTER_SMALL, ROUTER_LARGE = "router1", "router2"
ROUTER_LARGE_LUTS = 15000


def router_for(luts: int) -> str:
    """nextpnr's router for a design of ``luts`` LUTs (see ``ROUTER_LARGE_LUTS``)."""
    return ROUTER_LARGE if luts > ROUTER_LARGE_LUTS else ROUTER_SMALL


def _identifier(name: str) -> str:
    """A Verilog identifier for a port name (escaped when it is not a plain one)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def harness_verilog(module: str, ports: list[dict[str, Any]]) -> str:
    """A top level around ``module`` that reaches all of its ports through four pins.

    Parameters
    ----------
    module : str
        The design's Verilog module name.
    ports : list of dict
        ``gateware.generate.port_list`` of the design (``clk`` is wired straight
        through; every other input, ``rst`` included, comes from the scan chain).

    Returns
    -------
    str
        Verilog of module :data:`HARNESS` with ports clk, scan_in, capture, scan_out.
    """
    ins = [p for p in ports if p["direction"] == "input" and p["name"] != "clk"]
    outs = [p for p in ports if p["direction"] == "output"]
    n_in = max(1, sum(p["width"] for p in ins))
    n_out = max(1, sum(p["width"] for p in outs))
    conns = [".clk(clk)"]
    for bus, group in (("in_chain", ins), ("dut_out", outs)):
        lo = 0
        for p in group:
            conns.append(f".{_identifier(p['name'])}({bus}[{lo + p['width'] - 1}:{lo}])")
            lo += p["width"]
    body = ",\n    ".join(conns)
    return f"""// Scan harness for synthesis estimates (gateware/synth.py): inputs shift in,
// outputs are captured and shift out, so the design needs four pins.
module {HARNESS}(input clk, input scan_in, input capture, output scan_out);
  reg [{n_in - 1}:0] in_chain;
  reg [{n_out - 1}:0] out_chain;
  wire [{n_out - 1}:0] dut_out;
  always @(posedge clk) in_chain <= (in_chain << 1) | scan_in;
  always @(posedge clk) out_chain <= capture ? dut_out : (out_chain << 1);
  assign scan_out = out_chain[{n_out - 1}];
  {module} dut (
    {body}
  );
endmodule
"""


def yosys_script(device: Device, design: str = "design.v") -> str:
    """The Yosys script: read the design (Verilog, or RTLIL when ``design`` ends in
    ``.il``) and harness.v, synthesize, write stat and netlist."""
    dsp = " -dsp" if device.dsp else ""
    reader = "read_rtlil" if design.endswith(".il") else "read_verilog"
    return (
        f"{reader} {design}\n"
        "read_verilog harness.v\n"
        f"{synth_pass(device)} -top {HARNESS} -noflatten{dsp} -json netlist.json\n"
        "tee -q -o stat.json stat -json\n"
    )


def synth_pass(device: Device) -> str:
    return f"synth_{device.target}"


def nextpnr_args(device: Device, router: str = ROUTER_SMALL) -> list[str]:
    """nextpnr's arguments (relative paths: it runs in the scratch folder)."""
    # No pin constraints: nextpnr places the harness's four pins where it likes.
    constraints = {"ecp5": "lpf", "ice40": "pcf"}[device.target]
    return [
        *device.nextpnr_args(), "--json", "netlist.json", "--report", "report.json",
        "--log", "nextpnr.log", "--seed", str(SEED), "--router", router,
        "--timing-allow-fail", "-q",
        f"--{constraints}-allow-unconstrained",
    ]
