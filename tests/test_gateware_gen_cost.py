"""PerturbGen and CostAcc against their bit-exact models (golden_model.hw_blocks).

(a) Amaranth-simulator tests: every output compared with the model on every cycle, a
    few thousand cycles per configuration.
(b) cocotb under Verilator (sim.runner.run_cocotb, sim/tb_perturb_gen.py and
    sim/tb_cost_acc.py): 100k+ cycles per configuration; a larger matrix is marked slow.
(c) saturation: cost-accumulator runs that must saturate C~ (and its counter), with
    sat_count compared every cycle.
(d) the runner reports a real mismatch (model-only wrong LFSR seed).

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
from amaranth import Shape, signed, unsigned
from amaranth.hdl import UnusedElaboratable
from amaranth.lib.wiring import In, Out

from gateware.cost_acc import CostAcc
from gateware.perturb_gen import PerturbGen
from golden_model.config import ConfigError, build_config
from golden_model.fixed import smax, smin
from golden_model.hw_blocks import CostAccModel, PerturbGenModel
from sim.amaranth_bench import run_testbench

KINDS = ("code", "walsh", "time", "frequency")


def gen_config(kind: str, n: int, tau_p: int, **hw):
    return build_config({
        "mgd": {"perturbation": kind, "tau_p": tau_p, "tau_theta": tau_p},
        "hw": {"n_params": n, **hw},
    })


def acc_config(**hw):
    return build_config({"hw": hw})


# ---------------------------------------------------------------------------------
# (a) Amaranth simulator
def simulate(dut, bench) -> None:
    run_testbench(dut, bench)


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

    simulate(dut, bench)
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


def rtl_cost_acc(cfg, cycles: int, seed: int, valid_prob=0.8, ready_prob=0.6,
                 baseline_prob=0.3, restart_prob=0.1) -> CostAccModel:
    """Run CostAcc beside CostAccModel with random stimulus; returns the model."""
    h = cfg.hw
    dut = CostAcc(cfg)
    model = CostAccModel(cfg)
    rng = np.random.default_rng(seed)
    valid = (rng.random(cycles) < valid_prob).tolist()
    costs = rng.integers(smin(h.cost_bits), smax(h.cost_bits) + 1, cycles).tolist()
    baseline = (rng.random(cycles) < baseline_prob).tolist()
    restart = (rng.random(cycles) < restart_prob).tolist()
    ready = (rng.random(cycles) < ready_prob).tolist()

    async def bench(ctx):
        for cycle in range(cycles):
            inputs = dict(in_valid=valid[cycle], in_cost=costs[cycle],
                          in_baseline=baseline[cycle], in_restart=restart[cycle],
                          out_ready=ready[cycle])
            for name, value in inputs.items():
                ctx.set(getattr(dut, name), value)
            exp = model.outputs(out_ready=ready[cycle])
            for name in ("in_ready", "out_valid", "out_ctilde", "sat_count"):
                got = ctx.get(getattr(dut, name))
                assert got == exp[name], (
                    f"cycle {cycle}: signal {name}: expected {exp[name]}, got {got}"
                )
            model.tick(**inputs)
            await ctx.tick()

    simulate(dut, bench)
    return model


COST_CONFIGS = {
    "discrete": dict(),
    "discrete_batch4": dict(batch_log2=2),
    "highpass3_batch4": dict(batch_log2=2, highpass_shift=3),
    "discrete_clamp": dict(batch_log2=1, clamp=3000, ctilde_bits=14),
    "highpass1_clamp": dict(highpass_shift=1, clamp=20, cost_bits=10, cost_frac=8,
                            ctilde_bits=6),
    "narrow_wide_ctilde": dict(batch_log2=3, highpass_shift=4, cost_bits=12, cost_frac=8,
                               ctilde_bits=20),
}


@pytest.mark.parametrize("name", list(COST_CONFIGS))
def test_cost_acc_amaranth(name):
    cfg = acc_config(**COST_CONFIGS[name])
    rtl_cost_acc(cfg, cycles=3000, seed=len(name))  # raises on the first mismatch


def test_cost_acc_amaranth_saturates_counter():
    """Narrow C~ and an 8-bit counter: the counter itself must stop at 255."""
    cfg = acc_config(cost_bits=12, cost_frac=8, ctilde_bits=4, counter_bits=8)
    model = rtl_cost_acc(cfg, cycles=3000, seed=3, ready_prob=1.0)
    assert model.sat_count == 255


def test_cost_acc_amaranth_backpressure():
    """Rare out_ready: in_ready must follow it combinationally, nothing is lost."""
    cfg = acc_config(batch_log2=1, highpass_shift=2)
    rtl_cost_acc(cfg, cycles=2000, seed=5, valid_prob=1.0, ready_prob=0.1)


def test_cost_acc_ports():
    cfg = acc_config(cost_bits=10, cost_frac=8, ctilde_bits=6, counter_bits=12)
    dut = CostAcc(cfg)
    dut._MustUse__silence = True  # inspected, never elaborated
    members = dut.signature.members
    shapes = {name: Shape.cast(m.shape) for name, m in members.items()}
    assert shapes == {
        "in_valid": unsigned(1), "in_ready": unsigned(1), "in_cost": signed(10),
        "in_baseline": unsigned(1), "in_restart": unsigned(1), "out_valid": unsigned(1),
        "out_ready": unsigned(1), "out_ctilde": signed(6), "sat_count": unsigned(12),
    }
    flows = {name: m.flow for name, m in members.items()}
    assert [n for n, f in flows.items() if f == In] == [
        "in_valid", "in_cost", "in_baseline", "in_restart", "out_ready"]


# ---------------------------------------------------------------------------------
# (b)-(d) cocotb under Verilator
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


# (name, hw settings, must saturate)
ACC_MATRIX = [
    ("discrete", dict(), True),
    ("discrete_batch4_clamp", dict(batch_log2=2, ctilde_bits=12, clamp=1000), True),
    ("highpass3_batch4", dict(batch_log2=2, highpass_shift=3), True),
    # tiny C~ and an 8-bit status counter: the counter saturates too (c)
    ("highpass1_tiny", dict(highpass_shift=1, cost_bits=10, cost_frac=8, ctilde_bits=6,
                            counter_bits=8, clamp=20), True),
]
ACC_SLOW = [
    ("highpass4_batch8_wide", dict(batch_log2=3, highpass_shift=4, cost_bits=12,
                                   cost_frac=8, ctilde_bits=20), False),
    ("discrete_batch2_tiny", dict(batch_log2=1, cost_bits=8, cost_frac=4, ctilde_bits=3,
                                  counter_bits=8), True),
    ("highpass16_wide_cost", dict(highpass_shift=16, cost_bits=48, cost_frac=8,
                                  ctilde_bits=48, g_bits=62, v_bits=62,
                                  batch_log2=16), False),
]


@pytest.mark.parametrize(("name", "hw", "saturates"), ACC_MATRIX, ids=[a[0] for a in ACC_MATRIX])
def test_cost_acc_cocotb(build_root, name, hw, saturates):
    extra = {"expect_saturation": True} if saturates else {}
    result = run_tb(acc_config(**hw), "cost_acc", stim_seed=len(name), extra=extra)
    assert result.passed, result.message


@pytest.mark.slow
@pytest.mark.parametrize(("name", "hw", "saturates"), ACC_SLOW, ids=[a[0] for a in ACC_SLOW])
def test_cost_acc_cocotb_slow(build_root, name, hw, saturates):
    extra = {"expect_saturation": True} if saturates else {}
    result = run_tb(acc_config(**hw), "cost_acc", cycles=300_000, extra=extra)
    assert result.passed, result.message


def test_runner_reports_mismatch(build_root):
    """A model-only wrong LFSR seed must fail with the first mismatch named."""
    cfg = gen_config(*GEN_MATRIX[0])  # same build as a matrix entry (reused per worker)
    result = run_tb(cfg, "perturb_gen", cycles=1000,
                    extra={"model_lfsr_seed_offset": 1})
    assert not result.passed
    assert re.search(r"cycle \d+: signal \w+", result.message), result.message
