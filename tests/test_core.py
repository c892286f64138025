"""MGDCore against MGDCoreModel (golden_model.core), every output on every cycle.

(a) Amaranth simulator: a few thousand cycles per configuration, parallel and
    time-multiplexed weight update, every code kind, discrete and high-pass
    baselines, with random loads, enable gaps and cost-answer delays.
(b) cocotb under Verilator (sim/tb_core.py): the example configs in examples/ for
    100k cycles each, where the core must also learn the testbench's L1 bowl; a
    larger matrix is marked slow.
Both take their stimulus from sim.tb_core.CoreStimulus.
"""

from __future__ import annotations

import pathlib

import pytest
from amaranth import Shape, signed
from amaranth.lib.wiring import In, Out

from gateware.core import MGDCore
from golden_model.config import build_config, load_config
from sim.amaranth_bench import run_testbench
from sim.tb_common import Mismatch
from sim.tb_core import CoreStimulus, port_path

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
CYCLES = 100_000


def core_config(kind="code", n=8, lanes=0, tau_x=4, tau_p=1, tau_theta=4, **hw):
    return build_config({
        "mgd": {"perturbation": kind, "tau_x": tau_x, "tau_p": tau_p, "tau_theta": tau_theta},
        "hw": {"n_params": n, "lanes": lanes, "amp_log2": 6, "eta_shift": 2,
               "lfsr_bits": 16, **hw},
    })


def rtl_core(cfg, cycles: int, seed: int = 1, extra: dict | None = None) -> CoreStimulus:
    """Run MGDCore in the Amaranth simulator beside the model, comparing every cycle."""
    dut = MGDCore(cfg)
    stim = CoreStimulus(cfg, seed, extra)

    async def bench(ctx):
        def port(name: str):
            obj = dut
            for part in port_path(name):
                obj = getattr(obj, part)
            return obj

        def read(name: str, signed: bool = False) -> int:
            return ctx.get(port(name))  # ports carry their own signedness

        for inputs in stim.loads():
            for name, value in inputs.items():
                ctx.set(port(name), value)
            await ctx.tick()
        for cycle in range(cycles):
            inputs = stim.next_inputs()
            for name, value in inputs.items():
                ctx.set(port(name), value)
            stim.compare(cycle, read)
            stim.advance(inputs)
            await ctx.tick()

    run_testbench(dut, bench)
    return stim


AMARANTH_CASES = {
    "par-code": core_config(),
    "par-walsh-taup2": core_config("walsh", n=6, tau_p=2, tau_theta=4, tau_x=2),
    "par-time-highpass": core_config("time", n=5, highpass_shift=2, clamp=200),
    "par-freq-batch-mom": core_config("frequency", n=4, batch_log2=2, momentum_shift=2),
    "ser-code-P2": core_config(n=8, lanes=2),
    "ser-walsh-P4-mom-narrow": core_config("walsh", n=8, lanes=4, momentum_shift=1,
                                           theta_bits=8, theta_frac=4, amp_log2=2,
                                           g_bits=6, v_bits=7, ctilde_bits=5,
                                           counter_bits=8),
}


@pytest.mark.parametrize("name", list(AMARANTH_CASES))
def test_core_amaranth(name):
    stim = rtl_core(AMARANTH_CASES[name], cycles=3000)
    stim.finish()
    assert stim.model.update_count > 0


def test_core_amaranth_narrow_saturates():
    stim = rtl_core(AMARANTH_CASES["ser-walsh-P4-mom-narrow"], cycles=3000)
    m = stim.model
    # the compared counters ran into their own 8-bit limit, so saturation of C~ and
    # G, and of the counters themselves, was checked on every cycle
    assert m.wu.sat_g == m.acc.sat_count == 255


def test_core_amaranth_catches_mismatch(monkeypatch):
    cfg = AMARANTH_CASES["par-code"]
    stim = CoreStimulus(cfg, 1)
    original = type(stim.model).tick

    def off_by_one(self, **inputs):  # the model misses one update's parameter write
        original(self, **inputs)
        if self.update_count == 2 and not getattr(self, "_spoiled", False):
            self.wu.theta[3] += 1
            self._spoiled = True

    monkeypatch.setattr(type(stim.model), "tick", off_by_one)
    with pytest.raises(Mismatch, match=r"cycle \d+: signal (params|theta)\[3\]"):
        rtl_core(cfg, cycles=3000)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_core_ports():
    par = MGDCore(core_config(n=4)).signature.members
    assert par["params"].flow == Out and Shape.cast(par["params"].shape).width == 4 * 17
    assert Shape.cast(par["theta"].shape).width == 4 * 16
    assert "param_addr" not in par
    ser = MGDCore(core_config(n=8, lanes=2)).signature.members
    assert ser["param_addr"].flow == In
    assert Shape.cast(ser["param_data"].shape) == signed(17)
    assert "params" not in ser


# ---------------------------------------------------------------------------------
# cocotb under Verilator
def run_tb(cfg, cycles: int = CYCLES, stim_seed: int = 1, extra=None):
    from sim.runner import run_cocotb

    return run_cocotb(cfg, "core", "sim.tb_core", cycles=cycles, stim_seed=stim_seed,
                      extra=extra)


# The serial core's run is in the slow set (the default run keeps the lfsr core's and
# the serial core's Amaranth tests): its Verilator build is the default run's longest.
@pytest.mark.parametrize("example", ["hw_core_lfsr",
                                     pytest.param("hw_core_serial", marks=pytest.mark.slow)])
def test_core_cocotb_examples_learn(build_root, example):
    cfg = load_config(EXAMPLES / f"{example}.toml")
    result = run_tb(cfg, extra={"expect_learning": True})
    assert result.passed, result.message


SLOW_MATRIX = {
    "par-walsh-taup2-loads": (core_config("walsh", n=12, tau_p=2, tau_theta=8, tau_x=4), {}),
    "par-time-highpass-clamp": (core_config("time", n=10, highpass_shift=2, clamp=300), {}),
    "par-freq-batch": (core_config("frequency", n=6, batch_log2=1), {}),
    "ser-code-P1-mom": (core_config(n=16, lanes=1, momentum_shift=2), {}),
    "ser-narrow-saturating": (AMARANTH_CASES["ser-walsh-P4-mom-narrow"], {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_MATRIX))
def test_core_cocotb_matrix(build_root, name):
    cfg, extra = SLOW_MATRIX[name]
    result = run_tb(cfg, extra=extra)
    assert result.passed, result.message
