"""cocotb testbench: MGDCore against MGDCoreModel, every output on every cycle.

The outside network is a fixed-point L1 bowl, cost = sum_i |p_i - t_i| >> shift
(saturated to the cost format), answered after a random delay, with random
enable gaps and parameter loads while idle. With the bowl the core must also learn:
the test checks that the cost fell (``MGD_EXTRA`` ``{"expect_learning": true}``).

:class:`CoreStimulus` holds everything but the simulator (the model, the bowl, the
random inputs and the comparison), so the Amaranth-simulator tests in
tests/test_core.py drive the same stimulus.
"""

from __future__ import annotations

from collections.abc import Callable

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden_model.config import MGDConfig
from golden_model.core import IDLE, MGDCoreModel
from golden_model.fixed import pack_signed, sat
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


class Bowl:
    """The outside network: a seeded L1 bowl, cost = sum_i |p_i - t_i| >> shift.

    L1 keeps the cost change of one perturbation (about 2^amp_log2 sqrt(N) >> shift
    LSBs) resolvable at any distance from the target.
    """

    def __init__(self, cfg: MGDConfig, rng: np.random.Generator):
        h = cfg.hw
        self.cost_bits = h.cost_bits
        lim = 1 << (h.theta_bits - 3)
        self.target = rng.integers(-lim, lim, h.n_params)
        self.shift = max(0, (h.theta_bits - 1) + h.n_params.bit_length() - (h.cost_bits - 2))

    def cost(self, params: np.ndarray, sample: int) -> int:
        raw = int(np.sum(np.abs(params.astype(np.int64) - self.target))) >> self.shift
        return sat(raw + (sample % 3), self.cost_bits)[0]


class CoreStimulus:
    """Seeded inputs for MGDCore, the model beside it, and the per-cycle comparison.

    Use: drive every dict of :meth:`loads` (one per cycle), then per cycle
    ``inputs = next_inputs()``, drive them, ``compare(cycle, read)`` where ``read(name)``
    returns the DUT's output as an int (``signed=True`` for the read port), then
    ``advance(inputs)`` and clock the DUT.
    """

    def __init__(self, cfg: MGDConfig, seed: int, extra: dict | None = None):
        extra = extra or {}
        h = cfg.hw
        self.rng = np.random.default_rng(seed)
        self.n, self.tb = h.n_params, h.theta_bits
        self.lim = 1 << (self.tb - 2)
        self.theta0 = self.rng.integers(-self.lim, self.lim, self.n)
        self.model = MGDCoreModel(cfg)
        self.bowl = Bowl(cfg, self.rng)
        self.parallel = h.lanes == 0
        self.expect_learning = bool(extra.get("expect_learning"))
        # random parameter loads exercise the load port but undo learning
        self.load_rate = 0.0 if self.expect_learning else extra.get("load_rate", 0.01)
        self.pending: list[int] | None = None  # (cost, cycles to wait) being prepared
        self.sample = 0
        self.costs: list[int] = []  # every perturbed cost the outside network answered
        self.prev_safe = False
        self._exp: dict = {}
        self._accepted = False

    def loads(self) -> list[dict]:
        """The initial parameters through the load port, as a user would (one per
        cycle, enable low); the model is already advanced past them."""
        seq = []
        for i, v in enumerate(self.theta0.tolist()):
            inputs = dict(enable=0, cost_valid=0, cost=0, load_en=1, load_addr=i,
                          load_data=v)
            if not self.parallel:
                inputs["param_addr"] = 0
            self.model.tick(**inputs)
            seq.append(inputs)
        return seq

    def next_inputs(self) -> dict:
        rng, model = self.rng, self.model
        out_prev = model.outputs()
        enable = int(rng.random() < 0.95)
        load_en = int(rng.random() < self.load_rate)
        load_addr = int(rng.integers(0, self.n))
        load_data = int(rng.integers(-self.lim, self.lim))
        param_addr = int(rng.integers(0, self.n))
        # the outside network answers a request after 0..3 cycles
        cost_valid, cost = 0, 0
        if out_prev["param_valid"]:
            if self.pending is None:
                value = self.bowl.cost(model.params(), self.sample)
                self.pending = [value, int(rng.integers(0, 4))]
                if not out_prev["param_baseline"]:
                    self.costs.append(value)
            if self.pending[1] == 0:
                cost_valid, cost = 1, self.pending[0]
            else:
                self.pending[1] -= 1
        inputs = dict(enable=enable, cost_valid=cost_valid, cost=cost, load_en=load_en,
                      load_addr=load_addr, load_data=load_data)
        if not self.parallel:
            inputs["param_addr"] = param_addr
        self._exp = model.outputs(**inputs)
        return inputs

    def compare(self, cycle: int, read: Callable[..., int]) -> None:
        """Check the DUT's outputs for this cycle against the model's."""
        exp, n, tb = self._exp, self.n, self.tb
        for name in SCALAR_OUTPUTS:
            check(cycle, name, exp[name], read(name))
        if self.parallel:
            for name, width in (("params", tb + 1), ("theta", tb)):
                actual = read(name)
                if actual != pack_signed(exp[name], width):
                    got = unpack_signed(actual, n, width)
                    i = next(i for i in range(n) if got[i] != exp[name][i])
                    check(cycle, f"{name}[{i}]", int(exp[name][i]), got[i])
        elif self.prev_safe:
            # the read port is defined while the unit is not sweeping or loading
            check(cycle, "theta_data", exp["theta_data"], read("theta_data", signed=True))
            check(cycle, "param_data", exp["param_data"], read("param_data", signed=True))

    def advance(self, inputs: dict) -> None:
        """The rising edge, in the model."""
        model = self.model
        accepted = inputs["cost_valid"] and self._exp["cost_ready"]
        # no write to the parameter memory at this edge (sweep row or load)
        self.prev_safe = model.wu.busy == 0 and not (inputs["load_en"] and model.state == IDLE)
        model.tick(**inputs)
        if accepted:
            self.pending = None
            self.sample += 1

    def finish(self) -> None:
        """End-of-run checks: the core stepped, and (if asked) the bowl's cost fell."""
        assert self.model.step_count > 0, "the core never completed a step"
        if self.expect_learning:
            k = max(1, len(self.costs) // 10)
            before = float(np.mean(self.costs[:k]))
            after = float(np.mean(self.costs[-k:]))
            assert after < 0.8 * before, f"the bowl's cost did not fall: {before} -> {after}"


@cocotb.test()
async def core_matches_model(dut):
    cfg, cycles, seed, extra = config_from_env()
    stim = CoreStimulus(cfg, seed, extra)

    def read(name: str, signed: bool = False) -> int:
        value = getattr(dut, name).value
        return value.to_signed() if signed else int(value)

    await start(dut)
    for inputs in stim.loads():
        for name, value in inputs.items():
            getattr(dut, name).value = value
        await FallingEdge(dut.clk)
    dut.load_en.value = 0

    for cycle in range(cycles):
        inputs = stim.next_inputs()
        for name, value in inputs.items():
            getattr(dut, name).value = value
        await settle()
        stim.compare(cycle, read)
        stim.advance(inputs)
        await FallingEdge(dut.clk)
    stim.finish()
