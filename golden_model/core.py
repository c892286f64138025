"""Bit-exact, cycle-level model of MGDCore: the three blocks and the step scheduler,
for chip-in-the-loop training (the cost comes from outside).

Handshake with the outside network, per measurement:

1. the core raises ``param_valid`` with ``params`` (N fields of theta_bits + 1 bits,
   so theta + s * 2^amp_log2 never saturates) and ``param_baseline`` (1: these are the
   unperturbed parameters);
2. the outside answers with 2^batch_log2 cost samples on the ``cost_valid``/
   ``cost_ready``/``cost`` stream (a minibatch; one sample when batch_log2 = 0);
3. after the last sample ``param_valid`` drops; C~ reaches the weight-update unit, the
   generator steps, and every tau_theta steps theta is updated in the same edge.

``sample_next`` pulses for one cycle after the step that ends a training sample
(every tau_x steps): the outside moves to its next sample before answering again.
The discrete baseline (C0) is measured at the start of each sample and after every
update; with the high-pass cost filter there are no baseline measurements, and the
first measurement of a sample restarts the filter.

The scheduler states (``state``): IDLE (waits for ``enable``), MEASURE (parameters
out, costs in), WAIT_CT (C~ is handed to the weight-update unit), WAIT_WU
(time-multiplexed unit sweeping). Every transition takes one edge.
"""

from __future__ import annotations

import numpy as np

from .config import MGDConfig
from .cost_acc import CostAccModel
from .fixed import counter_add
from .perturb_gen import PerturbGenModel
from .weight_update import WeightUpdateModel

IDLE, MEASURE, WAIT_CT, WAIT_WU = range(4)
STATE_NAMES = ("IDLE", "MEASURE", "WAIT_CT", "WAIT_WU")


class MGDCoreModel:
    """Cycle model of gateware.core.MGDCore (see the module docstring).

    Inputs of ``tick``/``outputs``: ``enable``, ``cost_valid``, ``cost``,
    ``load_en``/``load_addr``/``load_data`` (parameter load, honoured in IDLE only),
    and with a time-multiplexed unit ``param_addr``.

    Outputs: with the parallel unit ``params`` and ``theta`` (all N); with the
    time-multiplexed one ``param_data`` and ``theta_data`` for the ``param_addr`` of
    the previous cycle (one cycle of read latency).
    """

    def __init__(self, cfg: MGDConfig, theta0: np.ndarray | None = None):
        self.cfg = cfg
        h, m = cfg.hw, cfg.mgd
        self.n = h.n_params
        self.amp = 1 << h.amp_log2
        self.batch = 1 << h.batch_log2
        self.discrete = h.highpass_shift == 0
        self.tau_x, self.tau_theta = m.tau_x, m.tau_theta
        self.counter_bits = h.counter_bits
        self.gen = PerturbGenModel(cfg)
        self.acc = CostAccModel(cfg)
        self.wu = WeightUpdateModel(cfg, theta0)
        self.state = IDLE
        self.baseline = 1 if self.discrete else 0  # the next measurement is unperturbed
        self.restart = 1  # the next measurement starts a sample (high-pass)
        self.got = 0  # cost samples received in this measurement
        self.x_cnt = 0  # steps done in this training sample
        self.th_cnt = 0  # steps since the last update
        self.sample_next = 0
        self.step_count = 0
        self.update_count = 0
        # time-multiplexed unit: the parameter read port (one cycle of latency)
        self.addr_d = 0
        self.theta_rd = 0

    # -- combinational --------------------------------------------------------
    def params(self) -> np.ndarray:
        """What ``params`` shows: theta, or theta + s * amp (no saturation needed)."""
        theta = self.wu.theta
        return theta.copy() if self.baseline else theta + self.gen.code() * self.amp

    def outputs(self, cost_valid: int = 0, **_) -> dict:
        measuring = self.state == MEASURE
        acc = self.acc.outputs(out_ready=int(self.state == WAIT_CT and self.wu.busy == 0))
        if self.wu.lanes == 0:
            ports = {"params": self.params(), "theta": self.wu.theta.copy()}
        else:
            s = 0 if self.baseline else int(self.gen.code()[self.addr_d]) * self.amp
            ports = {"param_data": self.theta_rd + s, "theta_data": self.theta_rd}
        return ports | {
            "param_valid": int(measuring),
            "param_baseline": int(self.baseline),
            "cost_ready": int(measuring and acc["in_ready"]),
            "sample_next": self.sample_next,
            "busy": int(self.state != IDLE),
            "step_count": self.step_count,
            "update_count": self.update_count,
            "sat_ctilde": acc["sat_count"],
            "sat_g": self.wu.sat_g,
            "sat_theta": self.wu.sat_theta,
        }

    # -- clock edge --------------------------------------------------------------
    def tick(
        self,
        enable: int = 0,
        cost_valid: int = 0,
        cost: int = 0,
        load_en: int = 0,
        load_addr: int = 0,
        load_data: int = 0,
        param_addr: int = 0,
    ) -> None:
        state = self.state
        if self.wu.lanes:
            self.addr_d = param_addr
            self.theta_rd = int(self.wu.theta[param_addr])
        wu_ready = self.wu.busy == 0
        acc_out = self.acc.outputs(out_ready=wu_ready)
        accept = state == MEASURE and cost_valid and acc_out["in_ready"]
        last = accept and self.got == self.batch - 1
        handoff = state == WAIT_CT and acc_out["out_valid"] and wu_ready
        step_done = handoff
        update = step_done and self.th_cnt == self.tau_theta - 1
        new_sample = step_done and self.x_cnt == self.tau_x - 1
        code = self.gen.code()

        # blocks (their inputs are this cycle's values)
        self.acc.tick(
            in_valid=int(state == MEASURE and cost_valid),
            in_cost=cost,
            in_baseline=int(self.baseline),
            in_restart=int(self.restart),
            out_ready=int(state == WAIT_CT and wu_ready),
        )
        self.wu.tick(
            code=code,
            ct_valid=int(handoff),
            ct=acc_out["out_ctilde"],
            update=int(update),
            load_en=int(load_en and state == IDLE),
            load_addr=load_addr,
            load_data=load_data,
        )
        self.gen.tick(step=int(step_done))

        # scheduler
        self.sample_next = int(new_sample)
        if accept:
            self.got = 0 if last else self.got + 1
        if state == IDLE:
            if enable:
                self.state = MEASURE
        elif state == MEASURE:
            if last:
                if self.baseline:
                    self.baseline = 0  # C0 captured: measure the perturbed cost next
                else:
                    self.state = WAIT_CT
                    self.restart = 0
        elif state == WAIT_CT and step_done:
            self.step_count = counter_add(self.step_count, 1, self.counter_bits)
            self.th_cnt = 0 if update else self.th_cnt + 1
            self.x_cnt = 0 if new_sample else self.x_cnt + 1
            if update:
                self.update_count = counter_add(self.update_count, 1, self.counter_bits)
            if new_sample:
                self.restart = 1
            if self.discrete and (update or new_sample):
                self.baseline = 1
            self.state = WAIT_WU if self.wu.lanes else IDLE
        elif state == WAIT_WU and wu_ready:
            self.state = IDLE
