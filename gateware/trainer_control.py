"""The trainer's control: step and row counters, the pass pipeline's registers and the
scheduler FSM (the phases of ``golden_model.hw_layout.Schedule``).

:class:`TrainerControl` holds every control register of :class:`gateware.trainer.Trainer`
and the per-phase flags the datapath reads; :meth:`TrainerControl.scheduler` builds the
FSM once the values it latches (the cost, C~) exist.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal
from amaranth.hdl import Value

from golden_model.config import MGDConfig
from golden_model.hw_layout import TrainerLayout

from .fixed import counter_add

__all__ = ["CYCLE_BITS", "STATES", "TrainerControl"]

CYCLE_BITS = 48
# The phases in encoding order (CLEAR, the reset state, is 0).
STATES = ("CLEAR", "IDLE", "PASS", "COST", "CT", "SWEEP", "NEXT")


class TrainerControl:
    """Control registers, phase flags and the row issue stage of the trainer.

    Phase flags (1-bit signals driven from the FSM): ``in_clear``, ``in_idle``,
    ``in_pass``, ``in_cost``, ``in_ct``, ``in_sweep`` (SWEEP or CLEAR), ``in_next``.
    The row issue counters (``layer``, ``t``, ``ic``, ``ig``) are shared by PASS and
    SWEEP, which never run at once; stage 1 (``s1_*``) is the row read at the
    previous edge, stage 2 (``s2_*``) the group whose accumulators are complete.
    """

    def __init__(self, m: Module, cfg: MGDConfig, layout: TrainerLayout, n_samples: int):
        mg = cfg.mgd
        layers = layout.layers
        self.cfg, self.layout, self.n_samples = cfg, layout, n_samples
        self.n_layers = len(layers)
        for name in ("clear", "idle", "pass", "cost", "ct", "sweep_only", "next"):
            setattr(self, f"in_{name}", Signal(name=f"in_{name}"))
        self.layer = Signal(range(max(self.n_layers, 2)), name="layer")
        self.t = Signal(range(max(x.rows for x in layers) + 2), name="t")
        # column and group of the issued row
        self.ic = Signal(range(max(x.cols for x in layers) + 1), name="ic")
        self.ig = Signal(range(max(x.groups for x in layers)), name="ig")
        self.base_pending = Signal(init=1, name="base_pending")
        self.x_cnt = Signal(range(max(mg.tau_x, 2)), name="x_cnt")
        self.th_cnt = Signal(range(max(mg.tau_theta, 2)), name="th_cnt")
        self.sample = Signal(range(max(n_samples, 2)), name="sample")
        self.x_base = Signal(range(max(n_samples * layers[0].cols, 2)), name="x_base")
        self.clearing = Signal(init=1, name="clearing")  # the sweep in progress is CLEAR
        self.cycle = Signal(CYCLE_BITS, name="cycle")
        m.d.sync += self.cycle.eq(self.cycle + 1)

        self.is_base = self.base_pending  # the pass in progress is a baseline pass
        self.upd = self.th_cnt == mg.tau_theta - 1
        self.seg_end = (self.x_cnt == mg.tau_x - 1) | self.upd
        self.in_sweep = self.in_sweep_only | self.in_clear
        self.perturbed = self.in_pass & ~self.is_base
        self._issue(m)

    def _issue(self, m: Module) -> None:
        """The row issue counters and the stage-1 / stage-2 pipeline registers.

        Per layer the limits differ, so they come from constant Arrays indexed by
        ``layer``.
        """
        layers = self.layout.layers
        self.rows_of = Array([Const(x.rows, len(self.t)) for x in layers])
        cols_of = Array([Const(x.cols, len(self.ic)) for x in layers])
        issuing = Signal(name="issuing")
        m.d.comb += issuing.eq((self.in_pass | self.in_sweep)
                               & (self.t < self.rows_of[self.layer]))
        col_last = self.ic == cols_of[self.layer]
        with m.If(issuing):
            m.d.sync += [self.ic.eq(Mux(col_last, 0, self.ic + 1)),
                         self.ig.eq(Mux(col_last, self.ig + 1, self.ig))]

        # stage-1 and stage-2 pipeline registers (layer, row, column, group, flags)
        self.s1_valid, self.s1_last = Signal(name="s1_valid"), Signal(name="s1_last")
        self.s1_layer = Signal.like(self.layer, name="s1_layer")
        self.s1_row = Signal.like(self.t, name="s1_row")
        self.s1_c = Signal.like(self.ic, name="s1_c")
        self.s1_g = Signal.like(self.ig, name="s1_g")
        self.s2_valid = Signal(name="s2_valid")
        self.s2_layer = Signal.like(self.layer, name="s2_layer")
        self.s2_g = Signal.like(self.ig, name="s2_g")
        m.d.sync += [
            self.s1_valid.eq(issuing), self.s1_last.eq(col_last),
            self.s1_layer.eq(self.layer), self.s1_row.eq(self.t), self.s1_c.eq(self.ic),
            self.s1_g.eq(self.ig),
            self.s2_valid.eq(self.s1_valid & self.s1_last & self.in_pass),
            self.s2_layer.eq(self.s1_layer), self.s2_g.eq(self.s1_g),
        ]

    def _start_layer(self, layer) -> list:
        return [self.layer.eq(layer), self.t.eq(0), self.ic.eq(0), self.ig.eq(0)]

    def scheduler(self, m: Module, trainer, c_val: Value, cost_acc: Signal,
                  ct_reg: Signal, ct_val: Value) -> None:
        """The FSM: CLEAR, then per step PASS (baseline when due) .. COST, CT, SWEEP
        (when the step updates or node perturbation ends a segment), NEXT."""
        with m.FSM(init="CLEAR") as fsm:
            for state in STATES:  # fix the encoding order: CLEAR = 0 .. NEXT = 6
                fsm.ongoing(state)
            self._sweep_state(m, "CLEAR", "IDLE")
            with m.State("IDLE"):
                with m.If(trainer.run & ~self.at_limit(trainer)):
                    m.d.sync += self._start_layer(0)
                    m.next = "PASS"
            self._pass_states(m, trainer, c_val, cost_acc, ct_reg, ct_val)
            self._sweep_state(m, "SWEEP", "NEXT")
            self._next_state(m, trainer)
        m.d.comb += [getattr(self, f"in_{name}").eq(fsm.ongoing(state)) for name, state in (
            ("clear", "CLEAR"), ("idle", "IDLE"), ("pass", "PASS"), ("cost", "COST"),
            ("ct", "CT"), ("sweep_only", "SWEEP"), ("next", "NEXT"))]

    def at_limit(self, trainer) -> Value:
        return (trainer.step_limit != 0) & (trainer.step_count >= trainer.step_limit)

    def _sweep_state(self, m: Module, state: str, then: str) -> None:
        """CLEAR / SWEEP: the issue stage walks every row of every layer, then one
        write cycle."""
        last_layer = self.layer == self.n_layers - 1
        with m.State(state):
            with m.If(last_layer & (self.t == self.rows_of[self.layer])):
                m.d.sync += self.clearing.eq(0)
                m.next = then
            with m.Elif(self.t == self.rows_of[self.layer] - 1):
                with m.If(~last_layer):
                    m.d.sync += self._start_layer(self.layer + 1)
                with m.Else():
                    m.d.sync += self.t.eq(self.t + 1)
            with m.Else():
                m.d.sync += self.t.eq(self.t + 1)

    def _pass_states(self, m: Module, trainer, c_val, cost_acc, ct_reg, ct_val) -> None:
        """PASS (layer by layer), COST (latch C or C0), CT (latch C~)."""
        with m.State("PASS"):
            with m.If(self.t == self.rows_of[self.layer] + 1):
                with m.If(self.layer == self.n_layers - 1):
                    m.next = "COST"
                with m.Else():
                    m.d.sync += self._start_layer(self.layer + 1)
            with m.Else():
                m.d.sync += self.t.eq(self.t + 1)
        with m.State("COST"):
            m.d.sync += cost_acc.eq(0)
            with m.If(self.is_base):
                m.d.sync += [trainer.cost0.eq(c_val), self.base_pending.eq(0),
                             *self._start_layer(0)]
                m.next = "PASS"
            with m.Else():
                m.d.sync += trainer.cost.eq(c_val)
                m.next = "CT"
        with m.State("CT"):
            m.d.sync += ct_reg.eq(ct_val)
            if self.cfg.mgd.mode == "node":
                with m.If(self.seg_end):
                    m.d.sync += self._start_layer(0)
                    m.next = "SWEEP"
                with m.Else():
                    m.next = "NEXT"
            else:
                m.d.sync += self._start_layer(0)
                m.next = "SWEEP"

    def _next_state(self, m: Module, trainer) -> None:
        """NEXT: count the step, move to the next sample / segment, run on or stop."""
        mg = self.cfg.mgd
        first = self.layout.layers[0]
        step_count = trainer.step_count
        next_count = counter_add(step_count, 1)
        stop_after = (trainer.step_limit != 0) & (next_count >= trainer.step_limit)
        with m.State("NEXT"):
            new_sample = self.x_cnt == mg.tau_x - 1
            m.d.sync += [
                step_count.eq(next_count),
                self.x_cnt.eq(Mux(new_sample, 0, self.x_cnt + 1)),
                self.th_cnt.eq(Mux(self.upd, 0, self.th_cnt + 1)),
                self.base_pending.eq(new_sample | self.upd),
            ]
            with m.If(self.upd):
                m.d.sync += trainer.update_count.eq(counter_add(trainer.update_count, 1))
            with m.If(new_sample):
                wrap = self.sample == self.n_samples - 1
                m.d.sync += [self.sample.eq(Mux(wrap, 0, self.sample + 1)),
                             self.x_base.eq(Mux(wrap, 0, self.x_base + first.cols))]
            with m.If(trainer.run & ~stop_after):
                m.d.sync += self._start_layer(0)
                m.next = "PASS"
            with m.Else():
                m.next = "IDLE"
