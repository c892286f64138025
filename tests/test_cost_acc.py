"""CostAcc against its bit-exact model CostAccModel (golden_model.cost_acc).

(a) Amaranth-simulator tests: every output compared with the model on every cycle, a
    few thousand cycles per configuration.
(b) cocotb under Verilator (sim.runner.run_cocotb, sim/tb_cost_acc.py): 100k+ cycles
    per configuration; a larger matrix is marked slow.
(c) saturation: runs that must saturate C~ (and its counter), with sat_count compared
    every cycle.

Builds go to a per-session temporary MGD_BUILD_ROOT (per xdist worker), one build
directory per (top, config) hash, so nothing is written to the working tree and
parallel workers never share a build.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned
from amaranth.lib.wiring import In

from gateware.cost_acc import CostAcc
from golden_model.config import build_config
from golden_model.cost_acc import CostAccModel
from golden_model.fixed import smax, smin
from sim.amaranth_bench import run_testbench


def acc_config(**hw):
    return build_config({"hw": hw})


# ---------------------------------------------------------------------------------
# (a) Amaranth simulator
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

    run_testbench(dut, bench)
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
# (b)-(c) cocotb under Verilator
CYCLES = 100_000


def run_tb(cfg, top: str, cycles: int = CYCLES, stim_seed: int = 1, extra=None):
    from sim.runner import run_cocotb

    return run_cocotb(cfg, top, f"sim.tb_{top}", cycles=cycles, stim_seed=stim_seed,
                      extra=extra)


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
