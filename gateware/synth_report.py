"""What Yosys and nextpnr report, read into plain figures: cells per block, device use,
Fmax, the critical path.

Nothing here runs a tool (``gateware.synth`` does), so every function works on report
text a test can write by hand. Resource names are the same on both targets:

- ``lut``: 4-input LUTs. iCE40: ``SB_LUT4``. ECP5: ``LUT4`` plus two for each
  ``CCU2C`` carry cell, which occupies the two LUT4s of a slice half.
- ``ff``: flip-flops (``SB_DFF*``, ``TRELLIS_FF``).
- ``dsp``: multipliers (``SB_MAC16``, only mapped on devices that have them;
  ``MULT18X18D``).
- ``bram``: block RAMs (``SB_RAM40_4K``, ``DP16KD``).
- ``dram``: ECP5 distributed RAM (``TRELLIS_DPR16X4``, 16x4 bits in a slice's LUTs;
  not counted in ``lut``). Always 0 on iCE40.
"""

from __future__ import annotations

import json
import re
from typing import Any

RESOURCES: tuple[str, ...] = ("lut", "ff", "dsp", "bram", "dram")

# Yosys cell type -> (resource, how many of it one cell is). Types not listed (muxes
# such as PFUMX/L6MUX21 that live beside the LUTs of a slice, SB_CARRY which rides
# on the LUT of its logic cell, IO buffers) are kept in the raw cell list only.
_CELL_RESOURCE: dict[str, dict[str, tuple[str, int]]] = {
    "ecp5": {
        "LUT4": ("lut", 1),
        "CCU2C": ("lut", 2),
        "TRELLIS_FF": ("ff", 1),
        "MULT18X18D": ("dsp", 1),
        "DP16KD": ("bram", 1),
        "TRELLIS_DPR16X4": ("dram", 1),
    },
    "ice40": {
        "SB_LUT4": ("lut", 1),
        "SB_MAC16": ("dsp", 1),
    },
}
# iCE40 flip-flops and block RAMs come in many variants (SB_DFFESR, SB_RAM40_4KNR...).
_CELL_PREFIX: dict[str, tuple[tuple[str, str], ...]] = {
    "ecp5": (),
    "ice40": (("SB_DFF", "ff"), ("SB_RAM40_4K", "bram")),
}
# nextpnr bel types shown in the terminal's device-use line (JSON keeps them all).
_LOGIC_BELS = frozenset({
    "TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD", "MULT18X18D",
    "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "ICESTORM_SPRAM",
})
# Yosys bookkeeping cells that are no hardware.
_IGNORED_CELLS = frozenset({"$scopeinfo"})


class ReportError(ValueError):
    """A tool report is missing or not in the expected form (one-line message)."""


def resources(target: str, cells: dict[str, int]) -> dict[str, int]:
    """Resource counts of a set of mapped cells.

    Parameters
    ----------
    target : str
        ``"ecp5"`` or ``"ice40"``.
    cells : dict of str to int
        Yosys cell type -> count.

    Returns
    -------
    dict of str to int
        One count per name in :data:`RESOURCES`.
    """
    out = dict.fromkeys(RESOURCES, 0)
    table = _CELL_RESOURCE[target]
    for cell, n in cells.items():
        if cell in table:
            name, weight = table[cell]
            out[name] += weight * n
            continue
        for prefix, name in _CELL_PREFIX[target]:
            if cell.startswith(prefix):
                out[name] += n
                break
    return out


def _module_name(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def block_cells(
    stat_json: str, design: str, label: str | None = None
) -> dict[str, dict[str, int]]:
    """Cells of every block under ``design``, from Yosys' ``stat -json``.

    The design must have been synthesized without flattening, so each Amaranth
    submodule is still a Yosys module. A block is a module's own cells (its
    submodules are blocks of their own), multiplied by how often it is instantiated.

    Parameters
    ----------
    stat_json : str
        The text ``tee -o FILE stat -json`` wrote.
    design : str
        Verilog name of the design's top module, e.g. ``"mgd_core"``.
    label : str, optional
        Block name of the design's own logic (default: ``design``).

    Returns
    -------
    dict of str to dict
        Block name -> cell type -> count, the design's own logic first. A block is
        named by its module name without the ``design.`` prefix (``gen``, ``wu``); the
        design's own logic is named ``label``.
    """
    try:
        modules = {
            _module_name(name): dict(info["num_cells_by_type"])
            for name, info in json.loads(stat_json)["modules"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError(f"Yosys stat report is not in the expected form ({exc})") from None
    if design not in modules:
        raise ReportError(f"Yosys stat report has no module {design!r}")

    blocks: dict[str, dict[str, int]] = {}

    # Depth-first from the design: a submodule cell names another module of the stat.
    def visit(module: str, copies: int) -> None:
        if module == design:
            name = label or design
        else:
            name = module[len(design) + 1:] if module.startswith(design + ".") else module
        own = blocks.setdefault(name, {})
        subs = []
        for cell, n in modules[module].items():
            if cell in modules:
                subs.append((cell, n))
            elif cell not in _IGNORED_CELLS:
                own[cell] = own.get(cell, 0) + n * copies
        for sub, n in subs:
            visit(sub, copies * n)

    visit(design, 1)
    return blocks


def harness_cells(stat_json: str, harness: str) -> dict[str, int]:
    """The harness module's own cells (the design instance left out)."""
    modules = {_module_name(k): v for k, v in json.loads(stat_json)["modules"].items()}
    cells = modules.get(harness, {}).get("num_cells_by_type", {})
    return {c: n for c, n in cells.items() if c not in modules and c not in _IGNORED_CELLS}


# One row of nextpnr's "Device utilisation:" table: "Info:   ICESTORM_LC:  5437/  7680  70%".
_UTIL_ROW = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")


def utilisation_from_log(log: str) -> dict[str, tuple[int, int]]:
    """nextpnr's first "Device utilisation" table: bel type -> (used, available).

    nextpnr prints this table after packing, before it tries to place anything, so it
    is there even when the design does not fit and placement fails.
    """
    table: dict[str, tuple[int, int]] = {}
    rows = iter(log.splitlines())
    for line in rows:
        if line.strip().startswith("Info: Device utilisation"):
            break
    else:
        return table
    for line in rows:
        m = _UTIL_ROW.match(line.strip())
        if not m:
            break
        table[m[1]] = (int(m[2]), int(m[3]))
    return table


def overflow(table: dict[str, tuple[int, int]]) -> list[tuple[str, int, int]]:
    """The bel types a design needs more of than the device has: (type, used, available)."""
    return [(t, used, avail) for t, (used, avail) in table.items() if used > avail]


def first_error(log: str) -> str | None:
    """The first ``ERROR:`` line of a Yosys or nextpnr log, without the prefix."""
    for line in log.splitlines():
        if line.startswith("ERROR:"):
            return line[len("ERROR:"):].strip()
    return None


# A mapped cell's name is the register or net it came from plus what techmapping
# appended (dut.wu.theta_0_SB_DFFESR_Q_10_D_SB_LUT4_O_LC); keep the readable part.
_MAPPED_SUFFIX = re.compile(r"_(?:TRELLIS_|SB_|LUT4|CCU2C|PFUMX|L6MUX21|DP16KD|MULT18X18D)|\$")


def _readable(cell: str, net: str | None = None) -> str:
    """The register a mapped cell came from; ``net`` names it when Yosys left the
    register anonymous (``dut.wu.\\$15_SB_DFFESR_Q_DFFLC``)."""
    name = _MAPPED_SUFFIX.split(cell, maxsplit=1)[0]
    if net and (not name or name.endswith(("\\", "."))):
        name = net
    return name[len("dut."):] if name.startswith("dut.") else f"{name} (harness)"


def critical_path(report: dict[str, Any]) -> dict[str, Any] | None:
    """The slowest register-to-register path of nextpnr's JSON report.

    Returns
    -------
    dict or None
        ``from`` and ``to`` (register names below the design top, e.g.
        ``acc.out_ctilde``), ``logic_cells`` (LUTs and carry cells on the path) and
        ``delay_ns``; None when the report has no clocked path.
    """
    best = None
    for path in report.get("critical_paths", []):
        src, dst = path.get("from", ""), path.get("to", "")
        # Paths from or to the pins ("<async>") say nothing about the design.
        if not (src.startswith("posedge") and src == dst) or not path.get("path"):
            continue
        delay = sum(step["delay"] for step in path["path"])
        if best is None or delay > best[0]:
            best = (delay, path["path"])
    if best is None:
        return None
    delay, steps = best
    nets = [step["net"] for step in steps if step.get("net")]
    return {
        "from": _readable(steps[0]["from"]["cell"], nets[0] if nets else None),
        "to": _readable(steps[-1]["to"]["cell"], nets[-1] if nets else None),
        "logic_cells": sum(step["type"] == "logic" for step in steps),
        "delay_ns": round(delay, 2),
    }


def nextpnr_figures(report_json: str) -> dict[str, Any]:
    """Fmax, used bels and the critical path from ``nextpnr --report FILE``.

    Returns
    -------
    dict
        ``fmax_mhz`` (the slowest clock's achieved frequency, None without a clock),
        ``device_use`` (bel type -> ``{"used", "available"}``, used types only) and
        ``critical_path`` (see :func:`critical_path`).
    """
    try:
        report = json.loads(report_json)
        clocks = [float(c["achieved"]) for c in report.get("fmax", {}).values()]
        use = {
            bel: {"used": int(u["used"]), "available": int(u["available"])}
            for bel, u in report["utilization"].items()
            if u["used"]
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError(f"nextpnr report is not in the expected form ({exc})") from None
    return {
        "fmax_mhz": round(min(clocks), 2) if clocks else None,
        "device_use": use,
        "critical_path": critical_path(report),
    }


def summarize(
    target: str, blocks: dict[str, dict[str, int]], n_params: int
) -> dict[str, Any]:
    """Per-block resources, their totals and the totals per trained parameter."""
    rows = [{"block": name, **resources(target, cells)} for name, cells in blocks.items()]
    totals = {r: sum(row[r] for row in rows) for r in RESOURCES}
    cells: dict[str, int] = {}
    for block in blocks.values():
        for cell, n in block.items():
            cells[cell] = cells.get(cell, 0) + n
    return {
        "blocks": rows,
        "totals": totals,
        "per_param": {r: round(totals[r] / n_params, 3) for r in RESOURCES},
        "cells": dict(sorted(cells.items())),
    }


def format_table(result: dict[str, Any]) -> str:
    """The terminal report: a row per block, totals, per parameter, Fmax, device use."""
    cols = [r for r in RESOURCES if r != "dram" or result["target"] == "ecp5"]
    head = f"{'block':<14}" + "".join(f"{c.upper():>9}" for c in cols)
    lines = [
        f"{result['module']} on {result['part']} ({result['package']}): "
        f"Yosys {result['yosys_pass']}, nextpnr-{result['target']} seed {result['seed']}"
        f"{', ' + result['router'] if result.get('router') else ''}",
        head,
    ]
    for row in result["blocks"]:
        lines.append(f"{row['block']:<14}" + "".join(f"{row[c]:>9}" for c in cols))
    lines.append("-" * len(head))
    lines.append(f"{'total':<14}" + "".join(f"{result['totals'][c]:>9}" for c in cols))
    lines.append(
        f"{'per param':<14}" + "".join(f"{result['per_param'][c]:>9.2f}" for c in cols)
        + f"   ({result['n_params']} parameters)"
    )
    fmax = result["fmax_mhz"]
    line = f"Fmax {fmax:.1f} MHz" if fmax is not None else "Fmax: no clocked path"
    path = result.get("critical_path")
    if path:
        line += (f" (critical path {path['from']} -> {path['to']}, "
                 f"{path['logic_cells']} logic cells, {path['delay_ns']} ns)")
    lines.append(line)
    use = ", ".join(
        f"{bel} {u['used']}/{u['available']} ({100 * u['used'] / u['available']:.0f}%)"
        for bel, u in result["device_use"].items()
        if bel in _LOGIC_BELS and u["available"]
    )
    h = result["harness"]
    lines.append(f"device use (with the scan harness: {h['lut']} LUT, {h['ff']} FF): {use}")
    return "\n".join(lines)


def regressions(
    current: dict[str, Any], baseline: dict[str, Any], limit: float = 0.10
) -> list[str]:
    """What got worse than a baseline by more than ``limit`` (a fraction).

    Resources (totals) count as worse when they grow, Fmax when it drops. A resource
    the baseline did not use at all is worse as soon as it is used.

    Returns
    -------
    list of str
        One line per regression, e.g. ``"LUT 4512 -> 5100 (+13.0%)"``; empty when
        nothing regressed.
    """
    out = []
    for r in RESOURCES:
        old, new = baseline["totals"].get(r, 0), current["totals"].get(r, 0)
        if new > old * (1 + limit) and new > old:
            grow = f"+{100 * (new - old) / old:.1f}%" if old else "was 0"
            out.append(f"{r.upper()} {old} -> {new} ({grow})")
    old_f, new_f = baseline.get("fmax_mhz"), current.get("fmax_mhz")
    if old_f and (new_f is None or new_f < old_f * (1 - limit)):
        drop = f"{100 * ((new_f or 0) - old_f) / old_f:.1f}%"
        out.append(f"Fmax {old_f} -> {new_f} MHz ({drop})")
    return out
