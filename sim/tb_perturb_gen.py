"""cocotb testbench: PerturbGen against PerturbGenModel, every output on every cycle.

Stimulus: ``step`` is a seeded random strobe (probability ``step_prob`` from
``MGD_EXTRA``, default 0.5). On every cycle ``neg`` and ``active`` are compared with the
model as packed integers; on a mismatch the lowest differing parameter is named
(``neg[i]``).

``MGD_EXTRA`` may also hold ``model_lfsr_seed_offset`` (default 0): added to the
model's LFSR seed only (not to the design's), so a test can check that a real
mismatch is caught and reported.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden_model.perturb_gen import PerturbGenModel
from sim.tb_common import check, config_from_env, start

OUTPUTS = ("neg", "active")


def first_bit_mismatch(cycle: int, signal: str, expected: int, actual: int, n: int) -> None:
    """Raise the Mismatch of the lowest differing bit of two packed N-bit buses."""
    diff = expected ^ actual
    if not diff:
        return
    i = (diff & -diff).bit_length() - 1
    if i >= n:  # cannot happen with an N-bit port, but report it anyway
        check(cycle, signal, expected, actual)
    check(cycle, f"{signal}[{i}]", expected >> i & 1, actual >> i & 1)


@cocotb.test()
async def perturb_gen_matches_model(dut):
    cfg, cycles, seed, extra = config_from_env()
    n = cfg.hw.n_params
    dut._log.info(
        "perturb_gen: kind=%s N=%d tau_p=%d cycles=%d stim_seed=%d",
        cfg.mgd.perturbation, n, cfg.mgd.tau_p, cycles, seed,
    )
    # read the sizes back from the design
    for name in OUTPUTS:
        assert len(getattr(dut, name)) == n, f"{name} is {len(getattr(dut, name))} bits, not {n}"

    model = PerturbGenModel(cfg)
    offset = int(extra.get("model_lfsr_seed_offset", 0))
    if offset:
        model.lfsr = (model.lfsr + offset) % (1 << cfg.hw.lfsr_bits)

    rng = np.random.default_rng(seed)
    steps = (rng.random(cycles) < float(extra.get("step_prob", 0.5))).tolist()

    await start(dut)
    # Timing: ``neg`` and ``active`` are combinational from registers only (no path
    # from ``step``; the Amaranth-simulator tests read them after every input change
    # and would see one), so they are sampled at the falling edge, before the new
    # ``step`` is driven: one trigger per cycle instead of the drive/settle/compare
    # pair of sim.tb_common.
    step_h, neg_h, active_h = dut.step, dut.neg, dut.active
    falling = FallingEdge(dut.clk)
    exp = model.outputs()
    exp_neg, exp_active = exp["neg"], exp["active"]
    periods = 0
    prev_step = None
    for cycle, step in enumerate(steps):
        neg = int(neg_h.value)
        active = int(active_h.value)
        if neg != exp_neg:
            first_bit_mismatch(cycle, "neg", exp_neg, neg, n)
        if active != exp_active:
            first_bit_mismatch(cycle, "active", exp_active, active, n)
        if step != prev_step:  # a write costs about as much as a trigger
            step_h.value = prev_step = step
        if step:
            model.tick(step=1)
        if step and model.sub == 0:
            # A period ended. The codes are a function of the period registers only,
            # which move only when the sub-step counter wraps, so outputs() (the
            # costly part of the model) is recomputed only then.
            exp = model.outputs()
            if exp["neg"] != exp_neg or exp["active"] != exp_active:
                periods += 1
            exp_neg, exp_active = exp["neg"], exp["active"]
        await falling

    dut._log.info("compared %d cycles, %d code changes", cycles, periods)
    if cycles >= 100 * cfg.mgd.tau_p and n > 1:
        assert periods > 0, "the codes never changed"
