"""CostAcc: the cost accumulator (minibatch mean, baseline, C~, high-pass, saturation).

The bit-exact, cycle-level specification is golden_model.cost_acc.CostAccModel; the
formats and saturation rules are in docs/hardware_contract.md.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.hw_spec import HwSpec, as_spec

from .fixed import counter_add, ctilde

__all__ = ["CostAcc", "cost_sample_layout"]


def cost_sample_layout(cost_bits: int) -> data.StructLayout:
    """The payload of CostAcc's input stream: a cost and its two sideband flags.

    ``value`` (signed cost_bits) is at the low bits, then ``baseline``, then ``restart``.
    """
    return data.StructLayout({"value": signed(cost_bits), "baseline": 1, "restart": 1})


class CostAcc(wiring.Component):
    """Cost accumulator: baseline capture, C~ = sat(C - C0), minibatch mean, high-pass.

    Parameters
    ----------
    cfg : MGDConfig
        Or its :class:`~golden_model.hw_spec.HwSpec` (``hw_spec`` validates it once). Uses
        ``cfg.hw``: ``cost_bits`` (CB), ``ctilde_bits`` (TB), ``batch_log2`` (b),
        ``highpass_shift`` (k; 0 = discrete baseline), ``clamp`` (0 = off) and
        ``counter_bits``.

    Ports
    -----
    cost : In(stream.Signature(cost_sample_layout(CB)))
        Input stream of cost samples (Verilog ``cost__valid``, ``cost__ready``,
        ``cost__payload``). ``cost.ready`` = not ctilde.valid or ctilde.ready
        (combinational). Payload fields: ``value`` (signed CB), ``baseline`` (the
        sample is unperturbed: in discrete mode the batch sets C0) and ``restart`` (a
        new training sample starts: in high-pass mode C~ = 0).
    ctilde : Out(stream.Signature(signed(TB)))
        Output stream of C~ (``ctilde__valid``, ``ctilde__ready``,
        ``ctilde__payload``), held until ``ctilde.ready``.
    sat_count : Out(counter_bits)
        Number of saturated C~ values; saturates at its maximum.

    Latency
    -------
    ``ctilde.valid`` rises the cycle after the rising edge that accepted the last
    (2^b-th) sample of a minibatch; the sideband flags of that last sample count.
    In discrete mode a baseline batch gives no output.
    """

    def __init__(self, cfg: MGDConfig | HwSpec):
        self.spec = as_spec(cfg)
        cfg = self.spec.cfg
        self.cfg = cfg
        h = cfg.hw
        super().__init__({
            "cost": In(stream.Signature(cost_sample_layout(h.cost_bits))),
            "ctilde": Out(stream.Signature(signed(h.ctilde_bits))),
            "sat_count": Out(h.counter_bits),
        })

    def elaborate(self, platform):
        m = Module()
        h = self.cfg.hw
        # --- handshake -----------------------------------------------------------
        # The output register is a one-deep skid-free buffer: a sample is accepted
        # whenever the output is empty or being emptied at this edge.
        accept = Signal()
        m.d.comb += [
            self.cost.ready.eq(~self.ctilde.valid | self.ctilde.ready),
            accept.eq(self.cost.valid & self.cost.ready),
        ]
        with m.If(self.ctilde.valid & self.ctilde.ready):
            m.d.sync += self.ctilde.valid.eq(0)

        avg, last = self._batch_mean(m, accept)
        raw, emit, hp_regs = self._raw_ctilde(m, accept, last, avg)

        # --- saturate, clamp, count ---------------------------------------------------
        # Saturation to TB bits is counted; the optional clamp to +-clamp (which is
        # inside the TB range) is a separate limit and is not counted.
        ct, saturated = ctilde(m, raw, h.ctilde_bits, h.clamp, "ct")
        with m.If(emit):
            m.d.sync += [
                self.ctilde.valid.eq(1),
                self.ctilde.payload.eq(ct),
                self.sat_count.eq(counter_add(self.sat_count, saturated)),
            ]
            if hp_regs:
                c_prev, ct_prev = hp_regs
                m.d.sync += [c_prev.eq(avg), ct_prev.eq(ct)]
        return m

    def _batch_mean(self, m: Module, accept) -> tuple[Signal, object]:
        """(mean of the minibatch so far, the accepted sample is its last).

        The running sum holds at most 2^b - 1 samples; with the last one added the
        total of 2^b samples fits in CB + b bits, so it never wraps. The mean is an
        arithmetic shift right (floor) back to CB bits. With b = 0 every sample is a
        batch and no counter or sum register is built.
        """
        cb, b = self.cfg.hw.cost_bits, self.cfg.hw.batch_log2
        if b:
            # (not named `acc`: in MGDCore this block is the submodule `acc`, and a
            # register of the same name inside it would shadow the instance name in
            # the generated Verilog, Verilator's VARHIDDEN)
            batch_sum = Signal(signed(cb + b))
            count = Signal(b)
            total = Signal(signed(cb + b))
            m.d.comb += total.eq(batch_sum + self.cost.payload.value)
            last = count == (1 << b) - 1
            with m.If(accept):
                m.d.sync += count.eq(count + 1)  # wraps to 0 after the last sample
                m.d.sync += batch_sum.eq(Mux(last, 0, total))
        else:
            total = self.cost.payload.value
            last = 1
        avg = Signal(signed(cb))
        m.d.comb += avg.eq(total >> b)
        return avg, last

    def _raw_ctilde(self, m: Module, accept, last, avg) -> tuple[Signal, Signal, tuple]:
        """(C~ before saturation, this edge emits a C~, the high-pass registers).

        ``raw`` is computed exactly in a width that holds every case: discrete:
        avg - C0 needs CB + 1 bits; high-pass: (C~' - (C~' >> k)) needs TB + 1 and
        (avg - C') CB + 1, their sum one more. The high-pass registers (C', C~') are
        returned for the caller to load at an emitting edge; () in discrete mode.
        """
        h = self.cfg.hw
        cb, tb, hp = h.cost_bits, h.ctilde_bits, h.highpass_shift
        sample = self.cost.payload
        raw = Signal(signed(max(cb, tb) + 3))
        emit = Signal()  # this edge produces an output
        if hp == 0:
            c0 = Signal(signed(cb))
            m.d.comb += [
                raw.eq(avg - c0),
                emit.eq(accept & last & ~sample.baseline),
            ]
            with m.If(accept & last & sample.baseline):
                m.d.sync += c0.eq(avg)
            return raw, emit, ()
        c_prev = Signal(signed(cb))
        ct_prev = Signal(signed(tb))
        m.d.comb += [
            raw.eq(Mux(sample.restart, 0, ct_prev - (ct_prev >> hp) + (avg - c_prev))),
            emit.eq(accept & last),
        ]
        return raw, emit, (c_prev, ct_prev)
