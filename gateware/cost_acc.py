"""CostAcc: the cost accumulator (minibatch mean, baseline, C~, high-pass, saturation).

The bit-exact, cycle-level specification is golden_model.cost_acc.CostAccModel; the
formats and saturation rules are in docs/hardware_contract.md.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.fixed import smax, smin


class CostAcc(wiring.Component):
    """Cost accumulator: baseline capture, C~ = sat(C - C0), minibatch mean, high-pass.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware (``cfg.validate_hardware()`` is called here). Uses
        ``cfg.hw``: ``cost_bits`` (CB), ``ctilde_bits`` (TB), ``batch_log2`` (b),
        ``highpass_shift`` (k; 0 = discrete baseline), ``clamp`` (0 = off) and
        ``counter_bits``.

    Ports
    -----
    in_valid : In(1); in_ready : Out(1); in_cost : In(signed(CB))
        Input stream of cost samples. ``in_ready`` = not out_valid or out_ready
        (combinational).
    in_baseline : In(1)
        Sideband: the sample is unperturbed (discrete mode: the batch sets C0).
    in_restart : In(1)
        Sideband: a new training sample starts (high-pass mode: C~ = 0).
    out_valid : Out(1); out_ready : In(1); out_ctilde : Out(signed(TB))
        Output stream of C~, held until ``out_ready``.
    sat_count : Out(counter_bits)
        Number of saturated C~ values; saturates at its maximum.

    Latency
    -------
    ``out_valid`` rises the cycle after the rising edge that accepted the last
    (2^b-th) sample of a minibatch; the sideband flags of that last sample count.
    In discrete mode a baseline batch gives no output.
    """

    def __init__(self, cfg: MGDConfig):
        cfg.validate_hardware()
        self.cfg = cfg
        h = cfg.hw
        super().__init__({
            "in_valid": In(1),
            "in_ready": Out(1),
            "in_cost": In(signed(h.cost_bits)),
            "in_baseline": In(1),
            "in_restart": In(1),
            "out_valid": Out(1),
            "out_ready": In(1),
            "out_ctilde": Out(signed(h.ctilde_bits)),
            "sat_count": Out(h.counter_bits),
        })

    def elaborate(self, platform):
        m = Module()
        h = self.cfg.hw
        cb, tb, b, hp = h.cost_bits, h.ctilde_bits, h.batch_log2, h.highpass_shift

        # --- handshake -----------------------------------------------------------
        # The output register is a one-deep skid-free buffer: a sample is accepted
        # whenever the output is empty or being emptied at this edge.
        accept = Signal()
        m.d.comb += [
            self.in_ready.eq(~self.out_valid | self.out_ready),
            accept.eq(self.in_valid & self.in_ready),
        ]
        with m.If(self.out_valid & self.out_ready):
            m.d.sync += self.out_valid.eq(0)

        # --- minibatch sum -------------------------------------------------------
        # The running sum holds at most 2^b - 1 samples; with the last one added the
        # total of 2^b samples fits in CB + b bits, so it never wraps. The mean is an
        # arithmetic shift right (floor) back to CB bits. With b = 0 every sample is
        # a batch and no counter or sum register is built.
        if b:
            # (not named `acc`: in MGDCore this block is the submodule `acc`, and a
            # register of the same name inside it would shadow the instance name in
            # the generated Verilog, Verilator's VARHIDDEN)
            batch_sum = Signal(signed(cb + b))
            count = Signal(b)
            total = Signal(signed(cb + b))
            m.d.comb += total.eq(batch_sum + self.in_cost)
            last = count == (1 << b) - 1
            with m.If(accept):
                m.d.sync += count.eq(count + 1)  # wraps to 0 after the last sample
                m.d.sync += batch_sum.eq(Mux(last, 0, total))
        else:
            total = self.in_cost
            last = 1
        avg = Signal(signed(cb))
        m.d.comb += avg.eq(total >> b)

        # --- C~ before saturation ----------------------------------------------------
        # `raw` is computed exactly in a width that holds every case:
        # discrete: avg - C0 needs CB + 1 bits; high-pass: (C~' - (C~' >> k)) needs
        # TB + 1 and (avg - C') CB + 1, their sum one more.
        raw = Signal(signed(max(cb, tb) + 3))
        emit = Signal()  # this edge produces an output
        if hp == 0:
            c0 = Signal(signed(cb))
            m.d.comb += [
                raw.eq(avg - c0),
                emit.eq(accept & last & ~self.in_baseline),
            ]
            with m.If(accept & last & self.in_baseline):
                m.d.sync += c0.eq(avg)
        else:
            c_prev = Signal(signed(cb))
            ct_prev = Signal(signed(tb))
            m.d.comb += [
                raw.eq(Mux(self.in_restart, 0,
                           ct_prev - (ct_prev >> hp) + (avg - c_prev))),
                emit.eq(accept & last),
            ]

        # --- saturate, clamp, count ---------------------------------------------------
        # Saturation to TB bits is counted; the optional clamp to +-clamp (which is
        # inside the TB range) is a separate limit and is not counted.
        lo, hi = smin(tb), smax(tb)
        over, under = raw > hi, raw < lo
        ct_sat = Signal(signed(tb))
        m.d.comb += ct_sat.eq(Mux(over, hi, Mux(under, lo, raw)))
        ct = Signal(signed(tb))
        if h.clamp:
            m.d.comb += ct.eq(Mux(ct_sat > h.clamp, h.clamp,
                                  Mux(ct_sat < -h.clamp, -h.clamp, ct_sat)))
        else:
            m.d.comb += ct.eq(ct_sat)

        top = (1 << h.counter_bits) - 1
        with m.If(emit):
            m.d.sync += [
                self.out_valid.eq(1),
                self.out_ctilde.eq(ct),
            ]
            if hp:
                m.d.sync += [c_prev.eq(avg), ct_prev.eq(ct)]
            with m.If((over | under) & (self.sat_count != top)):
                m.d.sync += self.sat_count.eq(self.sat_count + 1)

        return m
