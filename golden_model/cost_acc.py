"""Bit-exact, cycle-level model of the cost accumulator (gateware.cost_acc).

It follows the block-model protocol (``outputs`` during a cycle, ``tick`` at its edge)
stated in ``golden_model.perturb_gen``; formats, rounding and saturation are in
docs/hardware_contract.md.
"""

from __future__ import annotations

from .config import MGDConfig
from .fixed import counter_add, ctilde


class CostAccModel:
    """Cost accumulator: baseline capture, C~ = sat(C - C0), minibatch mean, high-pass.

    Input stream: ``in_valid``, ``in_cost`` (signed cost_bits), with sideband
    ``in_baseline`` (this sample is unperturbed) and ``in_restart`` (a new training
    sample starts; high-pass only). ``in_ready`` = not out_valid or out_ready
    (combinational). Output stream: ``out_valid``, ``out_ctilde`` (signed
    ctilde_bits), held until ``out_ready``. ``sat_count`` counts saturated C~ values.

    On an accepted sample: sum += cost; on the 2^batch_log2-th sample of a batch,
    avg = sum >> batch_log2 (floor; the sideband flags of that last sample count) and:
    discrete (highpass_shift = 0): baseline -> C0 = avg, no output; else output
    C~ = clamp(sat(avg - C0)). High-pass (k = highpass_shift > 0): restart -> C~ = 0,
    else C~ = clamp(sat(C~' - (C~' >> k) + avg - C')), with C~', C' the previous values;
    every batch gives an output. Latency: out_valid rises the cycle after the edge that
    accepted the batch's last sample.
    """

    def __init__(self, cfg: MGDConfig):
        h = cfg.hw
        self.bits = h.ctilde_bits
        self.batch = h.batch_log2
        self.hp = h.highpass_shift
        self.clamp = h.clamp
        self.counter_bits = h.counter_bits
        self.sum = 0
        self.count = 0
        self.c0 = 0
        self.c_prev = 0
        self.ct_prev = 0
        self.out_valid = 0
        self.out_ctilde = 0
        self.sat_count = 0

    def outputs(self, out_ready: int = 1) -> dict:
        return {
            "in_ready": int(not self.out_valid or out_ready),
            "out_valid": self.out_valid,
            "out_ctilde": self.out_ctilde,
            "sat_count": self.sat_count,
        }

    def tick(
        self,
        in_valid: int = 0,
        in_cost: int = 0,
        in_baseline: int = 0,
        in_restart: int = 0,
        out_ready: int = 1,
    ) -> None:
        accept = in_valid and (not self.out_valid or out_ready)
        if self.out_valid and out_ready:
            self.out_valid = 0
        if not accept:
            return
        total = self.sum + in_cost
        if self.count < (1 << self.batch) - 1:
            self.sum, self.count = total, self.count + 1
            return
        self.sum, self.count = 0, 0
        avg = total >> self.batch
        if self.hp == 0:
            if in_baseline:
                self.c0 = avg
                return
            raw = avg - self.c0
        elif in_restart:
            raw = 0
        else:
            raw = self.ct_prev - (self.ct_prev >> self.hp) + avg - self.c_prev
        ct, saturated = ctilde(raw, self.bits, self.clamp)
        self.c_prev, self.ct_prev = avg, ct
        self.sat_count = counter_add(self.sat_count, int(saturated), self.counter_bits)
        self.out_valid, self.out_ctilde = 1, ct
