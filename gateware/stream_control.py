"""Control of the streaming trainer: the slot clock, the row counters, the evaluation
record that travels with each evaluation, and the issue rule.

Time after CLEAR is cut into slots of II cycles (``StreamTiming``); ``ph`` is the
cycle within the slot. At the last cycle of every slot the issue rule decides what
enters layer 0 in the next slot (a baseline, a perturbed evaluation of the next step,
or nothing) and every evaluation's record moves one place down a shift register:
during a slot, ``meta[k]`` is the record of the evaluation that entered k slots ago.
Layer l's forward stage reads ``meta[starts[l]]``; its G frame (accumulation, node
perturbation's flush, the update) reads ``meta[delay + starts[l]]``; the cost stage
writes each C~ into its record. The issue rule is the contract's
(docs/hardware_network.md, "Streaming trainer"): a baseline whenever the sample
changed or an update reached the stream since the segment's baseline.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data

from golden_model.hw_spec import HwSpec

from .fixed import CodeGen

__all__ = ["RowCounter", "StreamControl", "delayed"]

CYCLE_BITS = 48


def delayed(m: Module, value, n: int, name: str):
    """``value`` delayed by ``n`` registers (itself for n = 0)."""
    for i in range(n):
        reg = Signal.like(value, name=f"{name}_d{i + 1}") if isinstance(value, Signal) \
            else Signal(value.shape(), name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class RowCounter:
    """The parameter row a layer's stages handle on each cycle of the slot.

    ``r``, ``c``, ``g``, ``last_c``, ``valid`` are row r = ph of the slot (the forward
    stage's issue and the G frame's write): its column, its group, whether it is the
    group's last column (its bias row goes with it) and whether r < rows (and the
    clock runs). ``ahead_*`` are the same one cycle earlier: row r on cycle r - 1, row
    0 on the previous slot's last cycle (the G frame's read addresses).
    """

    def __init__(self, m: Module, ctl: StreamControl, rows: int, cols: int, groups: int,
                 name: str):
        self.r = Signal(range(max(ctl.ii, 2)), name=f"{name}_r")
        self.c = Signal(range(max(cols, 2)), name=f"{name}_c")
        self.g = Signal(range(max(groups, 2)), name=f"{name}_g")
        self.last_c = Signal(name=f"{name}_lastc")
        self.valid = Signal(name=f"{name}_valid")
        m.d.comb += [self.last_c.eq(self.c == cols - 1),
                     self.valid.eq(ctl.running & (self.r < rows))]
        wrap = ctl.issue_edge
        self.ahead_r = Mux(wrap, 0, self.r + 1)
        self.ahead_c = Mux(wrap | self.last_c, 0, self.c + 1)
        self.ahead_g = Mux(wrap, 0, Mux(self.last_c, self.g + 1, self.g))
        ahead_c = Signal.like(self.c, name=f"{name}_c_ahead")
        self.ahead_valid = Signal(name=f"{name}_valid_ahead")
        self.ahead_last_c = Signal(name=f"{name}_lastc_ahead")
        m.d.comb += [ahead_c.eq(self.ahead_c), self.ahead_last_c.eq(ahead_c == cols - 1),
                     self.ahead_valid.eq(self.ahead_r < rows)]
        with m.If(ctl.running | wrap):
            m.d.sync += [self.r.eq(self.ahead_r), self.c.eq(self.ahead_c),
                         self.g.eq(self.ahead_g)]


class StreamControl:
    """The slot clock, the evaluation records and the issue rule (module docstring).

    Attributes the datapath reads: ``ii``, ``ph`` (cycle of the slot), ``slot_end``
    (the slot's last cycle), ``running`` (CLEAR is over), ``clear_row`` /
    ``clearing`` (CLEAR's row), ``meta`` (the records, a list of views of
    ``record_layout``), ``cycle``; the issue state ``step`` (steps issued),
    ``update_count`` and the code generator ``codes`` (the state of the next step).
    """

    def __init__(self, m: Module, spec: HwSpec, n_samples: int, trainer):
        cfg, st, lay = spec.cfg, spec.stream, spec.layout
        h = cfg.hw
        self.spec, self.st = spec, st
        self.ii = ii = st.ii
        self.n_layers = len(lay.layers)
        self.cycle = Signal(CYCLE_BITS, name="cycle")
        m.d.sync += self.cycle.eq(self.cycle + 1)

        # CLEAR: zero G and V (every layer's rows and bias rows at once).
        clear_len = max(x.rows for x in lay.layers)
        self.clear_row = Signal(range(clear_len + 1), name="clear_row")
        self.clearing = Signal(name="clearing")
        self.running = Signal(name="running")
        m.d.comb += self.clearing.eq(self.clear_row < clear_len)
        # The slot clock starts on cycle first_cycle (ph 0 of slot 0); slot 0's
        # evaluation is issued on the cycle before, like every later one.
        prestart = Signal(name="prestart")
        m.d.comb += prestart.eq(~self.running & (self.cycle == st.first_cycle - 1))
        with m.If(~self.running):
            m.d.sync += self.clear_row.eq(Mux(self.clearing, self.clear_row + 1,
                                              self.clear_row))
            with m.If(prestart):
                m.d.sync += self.running.eq(1)

        self.ph = Signal(range(max(ii, 2)), name="ph")
        self.slot_end = Signal(name="slot_end")
        self.issue_edge = Signal(name="issue_edge")  # the cycle a new slot is decided
        m.d.comb += [self.slot_end.eq(self.running & (self.ph == ii - 1)),
                     self.issue_edge.eq(self.slot_end | prestart)]
        with m.If(self.running):
            m.d.sync += self.ph.eq(Mux(self.ph == ii - 1, 0, self.ph + 1))

        # The evaluation record.
        self.codes = codes = CodeGen(m, cfg, spec.n_perturbed)
        self.seg_ring = max(2, st.delay + 2)  # node perturbation's h0 ring depth
        self.record_layout = data.StructLayout({
            "valid": 1, "base": 1, "pert": 1, "seg_end": 1, "win_end": 1,
            "code": len(codes.state),
            "sample": range(max(n_samples, 2)),
            "seg": range(self.seg_ring),
            "ct": signed(h.ctilde_bits),
        })
        # the C~ register of the cost stage: it joins the record reaching depth `delay`
        self.ct_in = Signal(signed(h.ctilde_bits), name="ct_in")
        depth = st.delay + st.starts[-1] + 1
        self.meta = [Signal(self.record_layout, name=f"meta{k}") for k in range(depth)]
        self._issue(m, spec, n_samples, trainer)

    def _issue(self, m: Module, spec: HwSpec, n_samples: int, trainer) -> None:
        """The issue rule, evaluated on every slot's last cycle for the next slot."""
        mg, st = spec.cfg.mgd, self.st
        cb = spec.cfg.hw.counter_bits
        self.step = Signal(cb, name="step")  # steps issued (perturbed evaluations)
        self.seg_ok = Signal(name="seg_ok")
        self.x_cnt = Signal(range(max(mg.tau_x, 2)), name="x_cnt")
        self.th_cnt = Signal(range(max(mg.tau_theta, 2)), name="th_cnt")
        self.sample = Signal(range(max(n_samples, 2)), name="sample")
        self.seg = Signal(range(self.seg_ring), name="seg")

        limit = trainer.step_limit
        self.at_limit = Signal(name="at_limit")
        m.d.comb += self.at_limit.eq((limit != 0) & (self.step >= limit))
        d = st.delay
        arrives = Signal(name="theta_arrives")  # an update reaches the next slot
        arrives_after = Signal(name="theta_arrives_after")  # ... the slot after it
        m.d.comb += [arrives.eq(self.meta[d].valid & self.meta[d].win_end),
                     arrives_after.eq(self.meta[d - 1].valid & self.meta[d - 1].win_end)]
        issue = Signal(name="issue")
        base = Signal(name="issue_base")
        m.d.comb += [issue.eq(trainer.run & ~self.at_limit),
                     base.eq(~self.seg_ok | arrives)]
        x_last = self.x_cnt == mg.tau_x - 1
        th_last = self.th_cnt == mg.tau_theta - 1
        new = Signal(self.record_layout, name="meta_new")
        m.d.comb += [
            new.valid.eq(issue),
            new.base.eq(issue & base),
            new.pert.eq(issue & ~base),
            new.seg_end.eq(x_last | arrives_after),
            new.win_end.eq(issue & ~base & th_last),
            new.code.eq(self.codes.state),
            new.sample.eq(self.sample),
            new.seg.eq(Mux(base, Mux(self.seg == self.seg_ring - 1, 0, self.seg + 1),
                           self.seg)),
        ]
        self.issue_pert = Signal(name="issue_pert")
        m.d.comb += self.issue_pert.eq(self.issue_edge & new.pert)
        with m.If(self.issue_edge):
            m.d.sync += self.meta[0].eq(new)
            for k in range(1, len(self.meta)):
                m.d.sync += self.meta[k].eq(self.meta[k - 1])
            with m.If(arrives):
                m.d.sync += self.seg_ok.eq(0)
            with m.If(new.base):
                m.d.sync += [self.seg_ok.eq(1), self.seg.eq(new.seg)]
            with m.If(new.pert):
                m.d.sync += [
                    self.step.eq(self.step + 1),
                    self.x_cnt.eq(Mux(x_last, 0, self.x_cnt + 1)),
                    self.th_cnt.eq(Mux(th_last, 0, self.th_cnt + 1)),
                ]
                with m.If(x_last):
                    m.d.sync += [
                        self.sample.eq(Mux(self.sample == n_samples - 1, 0,
                                           self.sample + 1)),
                        self.seg_ok.eq(0),
                    ]
        self.codes.advance(m, self.issue_pert)
        self.busy = Signal(name="busy_any")
        m.d.comb += self.busy.eq(_any([r.valid for r in self.meta]))


def _any(bits: list):
    out = bits[0]
    for b in bits[1:]:
        out = out | b
    return out
