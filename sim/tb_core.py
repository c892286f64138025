"""cocotb testbench: MGDCore against MGDCoreModel, every output on every cycle.

The outside network is a fixed-point L1 bowl, cost = sum_i |p_i - t_i| >> shift
(saturated to the cost format), answered after a random delay, with random
enable gaps and parameter loads while idle. With the bowl the core must also learn:
the test checks that the cost fell (``MGD_EXTRA`` ``{"expect_learning": true}``).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden_model.fixed import sat
from golden_model.hw_core import IDLE, MGDCoreModel
from sim.tb_common import check, config_from_env, settle, start, unpack_signed

SCALAR_OUTPUTS = (
    "param_valid",
    "param_baseline",
    "cost_ready",
    "sample_next",
    "busy",
    "step_count",
    "update_count",
    "sat_ctilde",
    "sat_g",
    "sat_theta",
)


def pack_fields(values: np.ndarray, width: int) -> int:
    """Signed fields packed into one bus, field i at bits [i*width, (i+1)*width)."""
    v = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    bits = ((v[:, None] >> np.arange(width)) & 1).astype(np.uint8).ravel()
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


class Bowl:
    """The outside network: a seeded L1 bowl, cost = sum_i |p_i - t_i| >> shift.

    L1 keeps the cost change of one perturbation (about 2^amp_log2 sqrt(N) >> shift
    LSBs) resolvable at any distance from the target.
    """

    def __init__(self, cfg, rng):
        h = cfg.hw
        self.cost_bits = h.cost_bits
        lim = 1 << (h.theta_bits - 3)
        self.target = rng.integers(-lim, lim, h.n_params)
        self.shift = max(0, (h.theta_bits - 1) + h.n_params.bit_length() - (h.cost_bits - 2))

    def cost(self, params: np.ndarray, sample: int) -> int:
        raw = int(np.sum(np.abs(params.astype(np.int64) - self.target))) >> self.shift
        return sat(raw + (sample % 3), self.cost_bits)[0]


@cocotb.test()
async def core_matches_model(dut):
    cfg, cycles, seed, extra = config_from_env()
    h = cfg.hw
    rng = np.random.default_rng(seed)
    n, tb = h.n_params, h.theta_bits
    lim = 1 << (tb - 2)
    theta0 = rng.integers(-lim, lim, n)
    model = MGDCoreModel(cfg)
    bowl = Bowl(cfg, rng)
    parallel = h.lanes == 0
    # random parameter loads exercise the load port but undo learning
    load_rate = 0.0 if extra.get("expect_learning") else extra.get("load_rate", 0.01)

    await start(dut)
    # load the initial parameters through the load port, as a user would
    dut.enable.value = 0
    dut.cost_valid.value = 0
    dut.cost.value = 0
    if not parallel:
        dut.param_addr.value = 0
    for i, v in enumerate(theta0.tolist()):
        dut.load_en.value, dut.load_addr.value, dut.load_data.value = 1, i, v
        model.tick(load_en=1, load_addr=i, load_data=v)
        await FallingEdge(dut.clk)
    dut.load_en.value = 0

    pending = None  # (cost, cycles to wait) of the answer being prepared
    sample = 0
    costs: list[int] = []  # every perturbed cost the outside network answered
    prev_safe = False
    for cycle in range(cycles):
        out_prev = model.outputs()
        enable = int(rng.random() < 0.95)
        load_en = int(rng.random() < load_rate)
        load_addr = int(rng.integers(0, n))
        load_data = int(rng.integers(-lim, lim))
        param_addr = int(rng.integers(0, n))
        # the outside network answers a request after 0..3 cycles
        cost_valid, cost = 0, 0
        if out_prev["param_valid"]:
            if pending is None:
                value = bowl.cost(model.params(), sample)
                pending = [value, int(rng.integers(0, 4))]
                if not out_prev["param_baseline"]:
                    costs.append(value)
            if pending[1] == 0:
                cost_valid, cost = 1, pending[0]
            else:
                pending[1] -= 1
        inputs = dict(enable=enable, cost_valid=cost_valid, cost=cost, load_en=load_en,
                      load_addr=load_addr, load_data=load_data)
        if not parallel:
            inputs["param_addr"] = param_addr
        for name, value in inputs.items():
            getattr(dut, name).value = value
        await settle()
        exp = model.outputs(**inputs)
        for name in SCALAR_OUTPUTS:
            check(cycle, name, exp[name], int(getattr(dut, name).value))
        if parallel:
            for name, width in (("params", tb + 1), ("theta", tb)):
                actual = int(getattr(dut, name).value)
                if actual != pack_fields(exp[name], width):
                    got = unpack_signed(actual, n, width)
                    i = next(i for i in range(n) if got[i] != exp[name][i])
                    check(cycle, f"{name}[{i}]", int(exp[name][i]), got[i])
        elif prev_safe:
            # the read port is defined while the unit is not sweeping or loading
            check(cycle, "theta_data", exp["theta_data"], dut.theta_data.value.to_signed())
            check(cycle, "param_data", exp["param_data"], dut.param_data.value.to_signed())
        accepted = cost_valid and exp["cost_ready"]
        # no write to the parameter memory at this edge (sweep row or load)
        prev_safe = model.wu.busy == 0 and not (load_en and model.state == IDLE)
        model.tick(**inputs)
        if accepted:
            pending = None
            sample += 1
        await FallingEdge(dut.clk)

    assert model.step_count > 0, "the core never completed a step"
    if extra.get("expect_learning"):
        k = max(1, len(costs) // 10)
        before, after = float(np.mean(costs[:k])), float(np.mean(costs[-k:]))
        assert after < 0.8 * before, f"the bowl's cost did not fall: {before} -> {after}"
