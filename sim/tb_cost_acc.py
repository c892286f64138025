"""cocotb testbench: CostAcc against CostAccModel, every output on every cycle.

Stimulus (seeded, ``MGD_STIM_SEED``): ``in_valid`` with probability ``valid_prob``,
costs uniform over the whole signed ``cost_bits`` range (so C~ saturates whenever
``ctilde_bits`` is not much wider than ``cost_bits``), ``in_baseline`` and
``in_restart`` with probabilities ``baseline_prob`` / ``restart_prob``, and random
``out_ready`` backpressure (``ready_prob``). All probabilities can be set in
``MGD_EXTRA``. On every cycle ``in_ready``, ``out_valid``, ``out_ctilde`` and
``sat_count`` are compared with the model.

``MGD_EXTRA`` ``{"expect_saturation": true}`` also asserts that the run saturated C~
at least once (so the saturation path was really exercised).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, Timer

from golden_model.cost_acc import CostAccModel
from golden_model.fixed import smax, smin
from sim.tb_common import check, config_from_env, start


@cocotb.test()
async def cost_acc_matches_model(dut):
    cfg, cycles, seed, extra = config_from_env()
    h = cfg.hw
    dut._log.info(
        "cost_acc: cost_bits=%d ctilde_bits=%d batch_log2=%d highpass_shift=%d clamp=%d "
        "cycles=%d stim_seed=%d",
        h.cost_bits, h.ctilde_bits, h.batch_log2, h.highpass_shift, h.clamp, cycles, seed,
    )
    # read the sizes back from the design
    for name, width in (("in_cost", h.cost_bits), ("out_ctilde", h.ctilde_bits),
                        ("sat_count", h.counter_bits)):
        got = len(getattr(dut, name))
        assert got == width, f"{name} is {got} bits, not {width}"

    rng = np.random.default_rng(seed)
    valid = (rng.random(cycles) < float(extra.get("valid_prob", 0.8))).tolist()
    costs = rng.integers(smin(h.cost_bits), smax(h.cost_bits) + 1, cycles).tolist()
    baseline = (rng.random(cycles) < float(extra.get("baseline_prob", 0.3))).tolist()
    restart = (rng.random(cycles) < float(extra.get("restart_prob", 0.1))).tolist()
    ready = (rng.random(cycles) < float(extra.get("ready_prob", 0.6))).tolist()
    cost_mask = (1 << h.cost_bits) - 1

    model = CostAccModel(cfg)
    await start(dut)
    in_valid_h, in_cost_h = dut.in_valid, dut.in_cost
    in_baseline_h, in_restart_h, out_ready_h = dut.in_baseline, dut.in_restart, dut.out_ready
    in_ready_h, out_valid_h, out_ctilde_h, sat_h = (
        dut.in_ready, dut.out_valid, dut.out_ctilde, dut.sat_count
    )
    # Timing as in sim.tb_common: drive at the falling edge, let in_ready (a
    # combinational function of out_ready) settle, compare, tick. The two triggers
    # are created once and re-awaited every cycle, and the 1-bit inputs are written
    # only when they change (a write costs about as much as a trigger).
    settle_t, falling = Timer(1, unit="ns"), FallingEdge(dut.clk)
    pv = pbl = prs = pr = None
    outputs = 0
    for cycle in range(cycles):
        v, c, bl, rs, r = valid[cycle], costs[cycle], baseline[cycle], restart[cycle], ready[cycle]
        in_cost_h.value = c & cost_mask
        if v != pv:
            in_valid_h.value = pv = v
        if bl != pbl:
            in_baseline_h.value = pbl = bl
        if rs != prs:
            in_restart_h.value = prs = rs
        if r != pr:
            out_ready_h.value = pr = r
        await settle_t
        exp = model.outputs(out_ready=r)
        check(cycle, "in_ready", exp["in_ready"], int(in_ready_h.value))
        check(cycle, "out_valid", exp["out_valid"], int(out_valid_h.value))
        check(cycle, "out_ctilde", exp["out_ctilde"], out_ctilde_h.value.to_signed())
        check(cycle, "sat_count", exp["sat_count"], int(sat_h.value))
        outputs += exp["out_valid"] and r
        model.tick(in_valid=v, in_cost=c, in_baseline=bl, in_restart=rs, out_ready=r)
        await falling

    dut._log.info("compared %d cycles: %d outputs taken, sat_count %d",
                  cycles, outputs, model.sat_count)
    if cycles >= 1000:
        assert outputs > 0, "no C~ was ever output"
    if extra.get("expect_saturation"):
        assert model.sat_count > 0, "the stimulus never saturated C~ (sat_count is 0)"
