"""The C++ main of a bare Verilator run of a block: the harness around a top's own
stimulus (its harness module's ``SETUP`` and ``DRIVE`` snippets, see
``gateware.tops.Bare``) that draws inputs from the generator of :mod:`sim.bare_protocol`,
gathers the outputs after every edge into the digest and prints the final outputs.
"""

from __future__ import annotations

from gateware import tops
from golden_model.config import MGDConfig
from golden_model.hw_spec import hw_spec
from sim.bare_protocol import DIGEST_SALT, GAMMA, KEY_SALT

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


def check_supported(cfg: MGDConfig, top: str):
    """The harness module of ``top`` for ``cfg``; a one-line ValueError when the bare
    harness does not run that top or that config."""
    supported = [t.name for t in tops.bare_tops("block")]
    if top not in supported:
        raise ValueError(f"top must be one of {', '.join(supported)}, not {top!r}")
    bare = tops.get(top).bare
    refusal = bare.refusal(hw_spec(cfg), top)
    if refusal:
        raise ValueError(refusal)
    return tops.resolve(bare.harness)


def output_ports(cfg: MGDConfig, top: str) -> list[tuple[str, int]]:
    """(name, width) of every output of ``top``, in port order (the digest's order)."""
    from gateware.generate import build, port_list

    component = build(cfg, top)
    component._MustUse__silence = True  # inspected, never elaborated
    return [(p["name"], p["width"]) for p in port_list(component) if p["direction"] == "output"]


def harness_source(cfg: MGDConfig, top: str) -> str:
    """The C++ main of a bare run of ``top`` for this config."""
    harness = check_supported(cfg, top)
    gather, prints, offset = [], [], 0
    for port, width in output_ports(cfg, top):
        nw = (width + 63) // 64
        gather.append(f"    get(top.{port}, words + {offset});")
        hexes = "".join("%016\" PRIx64 \"" for _ in range(nw))
        args = ", ".join(f"words[{offset + i}]" for i in reversed(range(nw)))
        prints.append(f'    printf("out {port} {hexes}\\n", {args});')
        offset += nw
    subs = {
        "@SETUP@": harness.SETUP, "@DRIVE@": harness.DRIVE,
        "@GATHER@": "\n".join("    " + g for g in gather), "@PRINT@": "\n".join(prints),
        "@NAME@": tops.get(top).module, "@NWORDS@": str(offset),
        "@GAMMA@": hex(GAMMA), "@KEY_SALT@": hex(KEY_SALT), "@DIGEST_SALT@": hex(DIGEST_SALT),
        **harness.substitutions(cfg),
    }
    text = _CPP
    for _ in range(2):  # the block snippets hold placeholders too
        for key, value in subs.items():
            text = text.replace(key, value)
    return text
