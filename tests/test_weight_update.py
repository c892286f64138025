"""The weight-update units against WeightUpdateModel (golden_model.weight_update).

(a) Amaranth-simulator tests: ready, the counters and the parameters compared with
    the model on every cycle, a few thousand cycles per configuration, over N in
    {1, 4, 24}, lanes in {0, 1, 4, N}, both roundings, momentum on and off, and narrow
    widths that saturate G, V, theta and the counters themselves.
(b) cocotb under Verilator (sim.runner.run_cocotb, sim/tb_weight_update.py): 100k
    cycles per configuration over a small matrix; a larger one is marked slow.
(c) saturation: runs that must saturate; the model's counters are non-zero and the
    DUT's equal them every cycle.
(d) the runner reports a real mismatch (model-only eta_shift + 1).
(e) identical numerics: parallel and serial units (models and hardware) given the
    same command sequence, one command per N/P + 1 cycles, end with the same theta.

Both the Amaranth benches and the cocotb testbench take their stimulus from
sim.tb_weight_update.stimulus. Builds go to a per-session temporary MGD_BUILD_ROOT
(one per xdist worker), so nothing is written to the working tree and parallel
workers never share a build.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import warnings

import numpy as np
import pytest
from amaranth import Fragment, Shape, signed, unsigned
from amaranth.hdl import UnusedElaboratable

from gateware.weight_update import WeightUpdateParallel, WeightUpdateSerial, weight_update
from golden_model.config import ConfigError, build_config
from golden_model.fixed import pack_signed
from golden_model.weight_update import WeightUpdateModel
from sim.amaranth_bench import run_testbench
from sim.tb_common import check, unpack_signed
from sim.tb_weight_update import edge_writes_theta, model_config, stimulus

CYCLES = 100_000
NARROW = {"ctilde_bits": 6, "g_bits": 8, "v_bits": 9, "theta_bits": 6, "theta_frac": 3,
          "amp_log2": 1, "eta_shift": 1, "counter_bits": 16}


def wu_config(n: int, lanes: int, rounding: str = "half_up", momentum: int = 0, **hw):
    return build_config({"hw": {"n_params": n, "lanes": lanes, "rounding": rounding,
                                "momentum_shift": momentum, **hw}})


# ---------------------------------------------------------------------------------
# (a) Amaranth simulator
def rtl_weight_update(cfg, cycles: int, seed: int, extra: dict | None = None):
    """Run the unit beside WeightUpdateModel on the testbench's stimulus, comparing
    every cycle; returns (model, final theta read from the DUT)."""
    extra = extra or {}
    h = cfg.hw
    n, tb = h.n_params, h.theta_bits
    parallel = h.lanes == 0
    dut = weight_update(cfg)
    model = WeightUpdateModel(model_config(cfg, extra))
    st = stimulus(cfg, cycles, seed, extra)
    ports = ("ct_valid", "ct", "update", "load_en", "load_addr", "load_data")
    final: list[int] = []

    def compare(ctx, cycle, exp_rd):
        check(cycle, "ready", int(model.busy == 0), ctx.get(dut.ready))
        check(cycle, "sat_g", model.sat_g, ctx.get(dut.sat_g))
        check(cycle, "sat_theta", model.sat_theta, ctx.get(dut.sat_theta))
        if parallel:
            actual = ctx.get(dut.theta)
            if actual != pack_signed(model.theta, tb):
                got = unpack_signed(actual, n, tb)
                for i in range(n):
                    check(cycle, f"theta[{i}]", int(model.theta[i]), got[i])
        elif exp_rd is not None:
            check(cycle, "rd_data", exp_rd, ctx.get(dut.rd_data))

    async def bench(ctx):
        exp_rd = None
        period = extra.get("command_period", 0)
        for cycle in range(cycles):
            compare(ctx, cycle, exp_rd)
            k = st["code_idx"][cycle]
            ctx.set(dut.neg, st["neg_pool"][k])
            ctx.set(dut.active, st["active_pool"][k])
            vals = [st[p][cycle] for p in ports]
            for p, v in zip(ports, vals, strict=True):
                ctx.set(getattr(dut, p), v)
            ct_valid, _, update, load_en, _, _ = vals
            if period and (ct_valid or update):
                assert model.busy == 0, f"cycle {cycle}: a command met a busy unit"
            if not parallel:
                a = st["rd_addr"][cycle]
                ctx.set(dut.rd_addr, a)
                exp_rd = None if edge_writes_theta(model, ct_valid, update, load_en) else int(
                    model.theta[a])
            model.tick(st["code_pool"][k], *vals)
            await ctx.tick()
        for p in ports:
            ctx.set(getattr(dut, p), 0)
        cycle = cycles
        while True:  # let a sweep finish, then read theta back
            compare(ctx, cycle, exp_rd)
            exp_rd = None
            if model.busy == 0:
                break
            model.tick(None)
            cycle += 1
            await ctx.tick()
        if parallel:
            final.extend(unpack_signed(ctx.get(dut.theta), n, tb))
            return
        for i in range(n):
            ctx.set(dut.rd_addr, i)
            await ctx.tick()
            final.append(ctx.get(dut.rd_data))

    run_testbench(dut, bench)
    if not extra.get("model_eta_shift_offset"):
        assert final == model.theta.tolist()
    return model, final


def _amaranth_cases():
    combos = (("floor", 0), ("half_up", 2), ("half_up", 0), ("floor", 3))
    cases = []
    k = 0
    for n, lanes_set in ((1, (0, 1)), (4, (0, 1, 4)), (24, (0, 1, 4, 24))):
        for lanes in lanes_set:
            # two (rounding, momentum) pairs per structure, rotating through all four;
            # default and narrow (saturating) widths alternate
            for j in range(2):
                rounding, momentum = combos[(2 * k + j) % 4]
                narrow = (k + j) % 2 == 1
                cases.append(pytest.param(
                    n, lanes, rounding, momentum, narrow,
                    id=f"N{n}-P{lanes}-{rounding}-m{momentum}{'-narrow' if narrow else ''}",
                ))
            k += 1
    return cases


@pytest.mark.parametrize("n, lanes, rounding, momentum, narrow", _amaranth_cases())
def test_weight_update_amaranth(n, lanes, rounding, momentum, narrow):
    hw = dict(NARROW) if narrow else {}
    cfg = wu_config(n, lanes, rounding, momentum, **hw)
    extra = {"expect_saturation": True} if narrow else {}
    cycles = 1500 if n == 24 else 2000
    model, _ = rtl_weight_update(cfg, cycles, seed=100 * n + 10 * lanes + momentum, extra=extra)
    if narrow and n > 1:
        assert model.sat_g > 0 and model.sat_theta > 0


def test_weight_update_amaranth_counters_saturate():
    """8-bit status counters stop at 255 in model and hardware."""
    cfg = wu_config(8, 0, "floor", 1, **{**NARROW, "counter_bits": 8, "eta_shift": 0})
    model, _ = rtl_weight_update(cfg, 2000, seed=5, extra={"expect_saturation": True})
    assert model.sat_g == 255 and model.sat_theta == 255


def test_weight_update_amaranth_non_power_of_two_lanes():
    """P = 3: row and lane of an address by constant division."""
    cfg = wu_config(12, 3, "half_up", 2)
    rtl_weight_update(cfg, 3000, seed=9)


def test_weight_update_amaranth_wide():
    """Widest C~ and G (48/62 bits) and V at 62 bits: no intermediate overflow."""
    cfg = wu_config(4, 2, "half_up", 16, ctilde_bits=48, g_bits=62, v_bits=62, theta_bits=48,
                    eta_shift=40)
    rtl_weight_update(cfg, 2000, seed=3, extra={"expect_saturation": True})


@pytest.mark.parametrize("lanes", [1, 4, 24])
def test_weight_update_amaranth_same_numerics(lanes):
    """(e) One command per N/P + 1 cycles: parallel and serial end with equal theta."""
    n = 24
    extra = {"command_period": n // lanes + 1}
    cycles = 40 * (n // lanes + 1) + n
    par_model, par = rtl_weight_update(wu_config(n, 0, "half_up", 2), cycles, 4, extra)
    ser_model, ser = rtl_weight_update(wu_config(n, lanes, "half_up", 2), cycles, 4, extra)
    assert par == ser
    np.testing.assert_array_equal(par_model.G, ser_model.G)
    np.testing.assert_array_equal(par_model.V, ser_model.V)
    assert (par_model.sat_g, par_model.sat_theta) == (ser_model.sat_g, ser_model.sat_theta)
    assert any(par)  # loads and updates moved theta


@pytest.mark.parametrize("lanes, signal", [(0, r"theta\[\d+\]"), (2, "rd_data")])
def test_weight_update_amaranth_catches_mismatch(lanes, signal):
    cfg = wu_config(4, lanes)
    with pytest.raises(AssertionError, match=rf"cycle \d+: signal {signal}: expected"):
        rtl_weight_update(cfg, 3000, seed=1, extra={"model_eta_shift_offset": 1})


def test_weight_update_ports():
    par = weight_update(wu_config(6, 0))
    ser = weight_update(wu_config(6, 3, theta_bits=12))
    assert isinstance(par, WeightUpdateParallel) and isinstance(ser, WeightUpdateSerial)
    common = {"neg", "active", "ct_valid", "ct", "update", "load_en", "load_addr",
              "load_data", "ready", "sat_g", "sat_theta"}
    assert set(par.signature.members) == common | {"theta"}
    assert set(ser.signature.members) == common | {"rd_addr", "rd_data"}
    assert Shape.cast(par.signature.members["theta"].shape) == unsigned(6 * 16)
    assert Shape.cast(ser.signature.members["rd_data"].shape) == signed(12)
    one = weight_update(wu_config(1, 1))
    assert Shape.cast(one.signature.members["load_addr"].shape).width >= 1
    for dut in (par, ser, one):
        Fragment.get(dut, None)  # elaborates


def test_weight_update_validates_config():
    cfg = wu_config(8, 0)
    # an invalid config built on purpose (derive would refuse it): the block must check
    cfg = dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, lanes=3))
    with pytest.raises(ConfigError, match="hw.lanes must divide hw.n_params"):
        weight_update(cfg)
    with warnings.catch_warnings():
        # the half-built components are never elaborated, and that is the point
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match="needs hw.lanes > 0"):
            WeightUpdateSerial(wu_config(8, 0))
        with pytest.raises(ValueError, match="needs hw.lanes = 0"):
            WeightUpdateParallel(wu_config(8, 2))
        gc.collect()


# ---------------------------------------------------------------------------------
# cocotb under Verilator
def run_tb(cfg, cycles: int = CYCLES, stim_seed: int = 1, extra=None):
    from sim.runner import run_cocotb

    return run_cocotb(cfg, "weight_update", "sim.tb_weight_update", cycles=cycles,
                      stim_seed=stim_seed, extra=extra)


NARROW_T8 = {**NARROW, "theta_bits": 8, "eta_shift": 0}

# name -> (n, lanes, rounding, momentum, hw widths, saturates). The saturation,
# mismatch and same-numerics tests reuse these configurations (hence their builds).
MATRIX = {
    "par-N16-halfup": (16, 0, "half_up", 0, {}, False),
    "ser-N16-P4-halfup": (16, 4, "half_up", 0, {}, False),
    "par-N32-floor-mom-narrow": (32, 0, "floor", 3, NARROW, True),
    "ser-N48-P4-floor-mom-narrow": (48, 4, "floor", 2, NARROW, True),
    "ser-N24-P3-halfup-narrow": (24, 3, "half_up", 0, NARROW_T8, True),
}

SLOW_MATRIX = {
    "ser-N64-P8-halfup-mom": (64, 8, "half_up", 2, {}, False),
    "par-N1": (1, 0, "floor", 0, {}, False),
    "ser-N1-P1-mom-narrow": (1, 1, "half_up", 1, NARROW, False),
    "par-N64-floor-mom": (64, 0, "floor", 4, {"theta_bits": 12, "g_bits": 20}, False),
    "ser-N64-P1-halfup": (64, 1, "half_up", 0, {}, False),
    "ser-N64-P64-floor-mom-narrow": (64, 64, "floor", 5, NARROW, True),
    "par-N40-halfup-mom-narrow": (40, 0, "half_up", 1, NARROW_T8, True),
    "ser-N60-P5-floor-mom": (60, 5, "floor", 2, {"ctilde_bits": 12, "g_bits": 16}, False),
    "par-N16-wide-mom": (16, 0, "half_up", 8, {"ctilde_bits": 40, "g_bits": 60, "v_bits": 62,
                                               "theta_bits": 40, "eta_shift": 30}, False),
}


def matrix_config(name: str):
    n, lanes, rounding, momentum, hw, _ = {**MATRIX, **SLOW_MATRIX}[name]
    return wu_config(n, lanes, rounding, momentum, **hw)


def _run_matrix_case(name: str, cycles: int, seed: int):
    saturates = {**MATRIX, **SLOW_MATRIX}[name][-1]
    extra = {"expect_saturation": True} if saturates else {}
    result = run_tb(matrix_config(name), cycles=cycles, stim_seed=seed, extra=extra)
    assert result.passed, result.message


@pytest.mark.parametrize("name", list(MATRIX))
def test_weight_update_cocotb(build_root, name):
    _run_matrix_case(name, CYCLES, seed=len(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MATRIX) + list(SLOW_MATRIX))
def test_weight_update_cocotb_slow(build_root, name):
    _run_matrix_case(name, 300_000, seed=7 * len(name) + 1)


# (c) saturation
@pytest.mark.parametrize("name", ["par-N32-floor-mom-narrow", "ser-N48-P4-floor-mom-narrow"])
def test_weight_update_cocotb_saturation(build_root, tmp_path, name):
    """Counters compared every cycle (and once more at the end); the model's, hence
    the DUT's, end non-zero."""
    out = tmp_path / "final.json"
    result = run_tb(matrix_config(name), cycles=CYCLES, stim_seed=11,
                    extra={"expect_saturation": True, "theta_out": str(out)})
    assert result.passed, result.message
    final = json.loads(out.read_text())
    assert final["sat_g"] > 0 and final["sat_theta"] > 0


# (d) mismatch
def test_weight_update_cocotb_reports_mismatch(build_root):
    result = run_tb(matrix_config("par-N16-halfup"), cycles=20_000,
                    extra={"model_eta_shift_offset": 1})
    assert not result.passed
    assert re.search(r"cycle \d+: signal \w+", result.message), result.message


# (e) identical numerics
def test_weight_update_cocotb_same_numerics(build_root, tmp_path):
    """Parallel and serial hardware, the same commands (one per N/P + 1 cycles)."""
    par_cfg, ser_cfg = matrix_config("par-N16-halfup"), matrix_config("ser-N16-P4-halfup")
    n, lanes = ser_cfg.hw.n_params, ser_cfg.hw.lanes
    extra = {"command_period": n // lanes + 1}
    cycles = 50_000
    finals = []
    for cfg in (par_cfg, ser_cfg):
        out = tmp_path / f"theta_{cfg.hw.lanes}.json"
        result = run_tb(cfg, cycles=cycles, stim_seed=21, extra={**extra, "theta_out": str(out)})
        assert result.passed, result.message
        finals.append(json.loads(out.read_text()))
    assert finals[0] == finals[1]
    # and both equal the parallel model run on the same stimulus
    st = stimulus(par_cfg, cycles, 21, extra)
    model = WeightUpdateModel(par_cfg)
    ports = ("ct_valid", "ct", "update", "load_en", "load_addr", "load_data")
    for t in range(cycles):
        model.tick(st["code_pool"][st["code_idx"][t]], *(st[p][t] for p in ports))
    assert finals[0]["theta"] == model.theta.tolist()
    assert any(finals[0]["theta"])


def test_build_root_is_temporary(build_root):
    from sim.runner import build_root as runner_root

    assert runner_root() == build_root
    assert os.path.commonpath([str(build_root), os.getcwd()]) != os.getcwd()


@pytest.mark.parametrize("lanes", [0, 1])
def test_weight_update_ignores_load_address_past_n(lanes):
    """N = 3 has a 2-bit load address: address 3 writes nothing, in model and RTL."""
    cfg = wu_config(3, lanes)
    dut = weight_update(cfg)
    model = WeightUpdateModel(cfg)
    seen: list[int] = []

    async def bench(ctx):
        for addr, data in ((0, 5), (3, 7), (2, -4), (3, 9)):
            ctx.set(dut.load_en, 1)
            ctx.set(dut.load_addr, addr)
            ctx.set(dut.load_data, data)
            model.tick(load_en=1, load_addr=addr, load_data=data)
            await ctx.tick()
        ctx.set(dut.load_en, 0)
        if lanes == 0:
            seen.extend(unpack_signed(ctx.get(dut.theta), 3, cfg.hw.theta_bits))
            return
        for i in range(3):
            ctx.set(dut.rd_addr, i)
            await ctx.tick()
            seen.append(ctx.get(dut.rd_data))

    run_testbench(dut, bench)
    assert seen == model.theta.tolist() == [5, 0, -4]
