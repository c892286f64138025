"""PerturbGen against its bit-exact model PerturbGenModel (golden_model.perturb_gen), and
the model's CodeSequence against the model itself.

(a) Amaranth-simulator tests: every output compared with the model on every cycle, a
    few thousand cycles per configuration.
(b) cocotb under Verilator (sim.runner.run_cocotb, sim/tb_perturb_gen.py): 100k+ cycles
    per configuration; a larger matrix is marked slow.
(c) the runner reports a real mismatch (model-only wrong LFSR seed).

Builds go to a per-session temporary MGD_BUILD_ROOT (per xdist worker), one build
directory per (top, config) hash, so nothing is written to the working tree and
parallel workers never share a build.
"""

from __future__ import annotations

import dataclasses
import gc
import re
import warnings

import numpy as np
import pytest
from amaranth import Shape, unsigned
from amaranth.hdl import UnusedElaboratable
from amaranth.lib.wiring import In, Out

from gateware.perturb_gen import PerturbGen
from golden_model.config import ConfigError, build_config
from golden_model.perturb_gen import CodeSequence, PerturbGenModel
from sim.amaranth_bench import run_testbench

KINDS = ("code", "walsh", "time", "frequency")


def gen_config(kind: str, n: int, tau_p: int, **hw):
    return build_config({
        "mgd": {"perturbation": kind, "tau_p": tau_p, "tau_theta": tau_p},
        "hw": {"n_params": n, **hw},
    })


# ---------------------------------------------------------------------------------
# (a) Amaranth simulator
def rtl_perturb_gen(cfg, cycles: int, seed: int) -> int:
    """Run PerturbGen beside PerturbGenModel; returns how often the codes changed."""
    dut = PerturbGen(cfg)
    model = PerturbGenModel(cfg)
    rng = np.random.default_rng(seed)
    steps = (rng.random(cycles) < 0.5).tolist()
    changes = [0]

    async def bench(ctx):
        prev = None
        for cycle, step in enumerate(steps):
            ctx.set(dut.step, step)
            exp = model.outputs()
            for name in ("neg", "active"):
                got = ctx.get(getattr(dut, name))
                assert got == exp[name], (
                    f"cycle {cycle}: signal {name}: expected {exp[name]:#x}, got {got:#x}"
                )
            changes[0] += prev is not None and prev != exp
            prev = exp
            model.tick(step=step)
            await ctx.tick()

    run_testbench(dut, bench)
    return changes[0]


@pytest.mark.parametrize("tau_p", [1, 3])
@pytest.mark.parametrize("n", [1, 5, 40])
@pytest.mark.parametrize("kind", KINDS)
def test_perturb_gen_amaranth(kind, n, tau_p):
    cfg = gen_config(kind, n, tau_p)
    changes = rtl_perturb_gen(cfg, cycles=2000, seed=n * 10 + tau_p)
    if not (kind == "time" and n == 1):
        assert changes > 0


def test_perturb_gen_amaranth_short_lfsr():
    """An 8-bit LFSR (other taps, wraps its whole period) and a non-default seed."""
    cfg = gen_config("code", 56, 2, lfsr_bits=8, lfsr_seed=0x5A)
    assert rtl_perturb_gen(cfg, cycles=3000, seed=7) > 0


def test_perturb_gen_ports():
    dut = PerturbGen(gen_config("walsh", 5, 1))
    dut._MustUse__silence = True  # inspected, never elaborated
    members = dut.signature.members
    assert set(members) == {"step", "neg", "active"}
    shapes = {name: Shape.cast(m.shape) for name, m in members.items()}
    assert shapes == {"step": unsigned(1), "neg": unsigned(5), "active": unsigned(5)}
    assert members["step"].flow == In and members["neg"].flow == Out


def test_perturb_gen_validates_config():
    cfg = gen_config("code", 16, 1)
    # an invalid config built on purpose (derive would refuse it): the block must check
    # (at most C(8, 3) = 56 codes with an 8-bit LFSR)
    cfg = dataclasses.replace(
        cfg, hw=dataclasses.replace(cfg.hw, n_params=100, lfsr_bits=8, lfsr_seed=1))
    with warnings.catch_warnings():
        # the half-built component is never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ConfigError, match="hw.n_params must be at most 56"):
            PerturbGen(cfg)
        gc.collect()


# ---------------------------------------------------------------------------------
# the model's code sequence
@pytest.mark.parametrize("kind", ["code", "walsh", "time", "frequency"])
def test_code_sequence_equals_the_perturbation_generator(kind) -> None:
    n = 13
    cfg = build_config({"mgd": {"perturbation": kind}, "hw": {"n_params": n, "lfsr_bits": 16}})
    gen = PerturbGenModel(cfg)
    want = []
    for _ in range(70):
        want.append(gen.code())
        gen.tick(step=1)
    seq = CodeSequence(kind, n, 16, cfg.hw.lfsr_seed)
    got = np.concatenate([seq.block(0, 5), seq.block(4, 33), seq.block(33, 70)])
    assert np.array_equal(np.delete(got, 5, axis=0), np.array(want))


# ---------------------------------------------------------------------------------
# (b), (c) cocotb under Verilator
CYCLES = 100_000


def run_tb(cfg, top: str, cycles: int = CYCLES, stim_seed: int = 1, extra=None):
    from sim.runner import run_cocotb

    return run_cocotb(cfg, top, f"sim.tb_{top}", cycles=cycles, stim_seed=stim_seed,
                      extra=extra)


GEN_MATRIX = [
    ("code", 16, 1),
    ("code", 100, 3),
    ("walsh", 16, 3),
    ("walsh", 100, 1),
    ("time", 100, 3),
    ("frequency", 100, 1),
]
GEN_SLOW = [
    (kind, n, tau_p)
    for kind in KINDS
    for n in (16, 100)
    for tau_p in (1, 3)
    if (kind, n, tau_p) not in GEN_MATRIX
]


@pytest.mark.parametrize(("kind", "n", "tau_p"), GEN_MATRIX)
def test_perturb_gen_cocotb(build_root, kind, n, tau_p):
    result = run_tb(gen_config(kind, n, tau_p), "perturb_gen", stim_seed=n + tau_p)
    assert result.passed, result.message


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "n", "tau_p"), GEN_SLOW)
def test_perturb_gen_cocotb_slow(build_root, kind, n, tau_p):
    result = run_tb(gen_config(kind, n, tau_p), "perturb_gen", cycles=300_000)
    assert result.passed, result.message


def test_runner_reports_mismatch(build_root):
    """A model-only wrong LFSR seed must fail with the first mismatch named."""
    cfg = gen_config(*GEN_MATRIX[0])  # same build as a matrix entry (reused per worker)
    result = run_tb(cfg, "perturb_gen", cycles=1000,
                    extra={"model_lfsr_seed_offset": 1})
    assert not result.passed
    assert re.search(r"cycle \d+: signal \w+", result.message), result.message
