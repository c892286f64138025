"""PerturbGen: the perturbation-code generator (code, walsh, time and frequency kinds).

The bit-exact, cycle-level specification is golden_model.perturb_gen.PerturbGenModel;
every constant (LFSR length, taps, seed, code masks, Walsh period) is taken from the
golden model, nothing is copied by hand.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.lfsr import mask_taps, tap_mask
from golden_model.perturb_gen import walsh_size


def _parity(bits: list) -> object:
    """XOR of a list of 1-bit values (Const(0) for an empty list)."""
    out = Const(0, 1)
    for b in bits:
        out = out ^ b
    return out


class PerturbGen(wiring.Component):
    """Perturbation generator: N codes s_i in {-1, 0, +1}, held for tau_p steps.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware (``cfg.validate_hardware()`` is called here).
        N = ``cfg.hw.n_params``; the kind is ``cfg.mgd.perturbation`` (``code``,
        ``walsh``, ``time`` or ``frequency``); ``cfg.mgd.tau_p`` is the number of
        steps per perturbation period; ``cfg.hw.lfsr_bits`` / ``cfg.hw.lfsr_seed`` set
        the LFSR of the ``code`` kind.

    Ports
    -----
    step : In(1)
        Strobe: one MGD step is done. Every tau_p-th strobe ends the perturbation
        period.
    neg : Out(N)
        Bit i set: s_i = -1 (only meaningful where ``active`` is set).
    active : Out(N)
        Bit i set: s_i != 0. All ones except for the ``time`` kind (one-hot).

    Latency
    -------
    ``neg`` and ``active`` are combinational from registers: the next period's codes
    appear on the cycle after the rising edge that sampled the period's last ``step``.
    Reset (synchronous ``rst``) restores the first period: LFSR = lfsr_seed, period
    counter k = 0, sub-step counter 0, square-wave counters and phases 0.
    """

    def __init__(self, cfg: MGDConfig):
        cfg.validate_hardware()
        self.cfg = cfg
        self.n = cfg.hw.n_params
        self.kind = cfg.mgd.perturbation
        self.tau_p = cfg.mgd.tau_p
        super().__init__({
            "step": In(1),
            "neg": Out(self.n),
            "active": Out(self.n),
        })

    def elaborate(self, platform):
        m = Module()
        h = self.cfg.hw
        n = self.n

        # --- period strobe -------------------------------------------------------
        # A sub-step counter (0 .. tau_p - 1) divides the step strobe down to one
        # `advance` pulse per perturbation period; with tau_p = 1 every step advances
        # and no counter is built.
        advance = Signal()
        if self.tau_p > 1:
            sub = Signal(range(self.tau_p))
            last = sub == self.tau_p - 1
            with m.If(self.step):
                m.d.sync += sub.eq(Mux(last, 0, sub + 1))
            m.d.comb += advance.eq(self.step & last)
        else:
            m.d.comb += advance.eq(self.step)

        # --- the code state of each kind -----------------------------------------
        if self.kind == "code":
            # One Galois LFSR shared by all N parameters: shift right, XOR the tap
            # mask when the bit shifted out is 1. neg_i is the XOR of the three state
            # bits of parameter i's mask (two XOR gates per parameter).
            bits = h.lfsr_bits
            lfsr = Signal(bits, init=h.lfsr_seed)
            taps = Const(tap_mask(bits), bits)
            with m.If(advance):
                m.d.sync += lfsr.eq((lfsr >> 1) ^ Mux(lfsr[0], taps, 0))
            m.d.comb += [
                self.neg.eq(Cat(lfsr[a] ^ lfsr[b] ^ lfsr[c] for a, b, c in mask_taps(n, bits))),
                self.active.eq(Const((1 << n) - 1, n)),
            ]

        elif self.kind == "walsh":
            # k counts periods modulo M = walsh_size(N), a power of two, so the
            # counter is log2(M) bits wide and wraps by itself. Parameter i uses
            # Hadamard row i + 1: neg_i = parity((i + 1) & k), a constant selection of
            # k's bits XORed together.
            period = walsh_size(n)
            kbits = period.bit_length() - 1
            assert 1 << kbits == period
            k = Signal(kbits)
            with m.If(advance):
                m.d.sync += k.eq(k + 1)
            m.d.comb += [
                self.neg.eq(Cat(
                    _parity([k[j] for j in range(kbits) if (i + 1) >> j & 1])
                    for i in range(n)
                )),
                self.active.eq(Const((1 << n) - 1, n)),
            ]

        elif self.kind == "time":
            # A walking one-hot: k counts periods modulo N; only parameter k is active
            # (+1), nothing is ever negative.
            k = Signal(range(n))
            with m.If(advance):
                m.d.sync += k.eq(Mux(k == n - 1, 0, k + 1))
            m.d.comb += [
                self.neg.eq(0),
                self.active.eq(Cat(k == i for i in range(n))),
            ]

        else:  # frequency
            # Square waves: parameter i has a counter 0 .. i and a phase bit; at the
            # period strobe where its counter is at i the counter restarts and the
            # phase flips, so s_i changes sign every i + 1 periods. Parameter 0 needs
            # no counter (it flips every period).
            # All N counters and the phase vector update in one If, so the strobe
            # and the phase register are shared, not rebuilt per parameter.
            phase = Signal(n)
            wraps = []
            with m.If(advance):
                for i in range(n):
                    if i == 0:
                        wraps.append(Const(1, 1))
                        continue
                    cnt = Signal(range(i + 1), name=f"cnt{i}")
                    wrap = Signal(name=f"wrap{i}")
                    m.d.comb += wrap.eq(cnt == i)
                    m.d.sync += cnt.eq(Mux(wrap, 0, cnt + 1))
                    wraps.append(wrap)
                m.d.sync += phase.eq(phase ^ Cat(wraps))
            m.d.comb += [
                self.neg.eq(phase),
                self.active.eq(Const((1 << n) - 1, n)),
            ]

        return m
