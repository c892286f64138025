"""PerturbGen: the perturbation-code generator (code, walsh, time and frequency kinds).

The bit-exact, cycle-level specification is golden_model.perturb_gen.PerturbGenModel;
every constant (LFSR length, taps, seed, code masks, Walsh period) is taken from the
golden model, nothing is copied by hand. The code, walsh and time kinds are the shared
code generator of gateware.fixed (:class:`~gateware.fixed.CodeGen`, also the trainer's).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.hw_spec import HwSpec, as_spec

from .fixed import CodeGen, period_strobe


class PerturbGen(wiring.Component):
    """Perturbation generator: N codes s_i in {-1, 0, +1}, held for tau_p steps.

    Parameters
    ----------
    cfg : MGDConfig
        Or its :class:`~golden_model.hw_spec.HwSpec` (``hw_spec`` validates it once).
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

    def __init__(self, cfg: MGDConfig | HwSpec):
        self.spec = as_spec(cfg)
        cfg = self.spec.cfg
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
        if self.kind == "frequency":
            self._square_waves(m, period_strobe(m, self.step, self.tau_p, "code"))
            return m
        # --- code, walsh, time: one shared state, a constant key per parameter -----
        # code: neg_i is the XOR of the three LFSR bits of parameter i's mask (two XOR
        # gates per parameter); walsh: Hadamard row i + 1, neg_i = parity((i + 1) & k);
        # time: only parameter k is active (+1), nothing is ever negative.
        codes = CodeGen(m, self.cfg, self.n)
        codes.advance(m, self.step)
        lanes = [codes.bits(codes.key(i)) for i in range(self.n)]
        m.d.comb += [
            self.neg.eq(Cat(neg for _, neg in lanes)),
            self.active.eq(Cat(active for active, _ in lanes)),
        ]
        return m

    def _square_waves(self, m: Module, advance) -> None:
        """The ``frequency`` kind: parameter i has a counter 0 .. i and a phase bit; at
        the period strobe where its counter is at i the counter restarts and the phase
        flips, so s_i changes sign every i + 1 periods. Parameter 0 needs no counter
        (it flips every period). All N counters and the phase vector update in one If,
        so the strobe and the phase register are shared, not rebuilt per parameter."""
        n = self.n
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
