"""StreamTrainer: the on-chip trainer as a pipeline that takes a new evaluation every
II cycles (``hw.pipeline = "stream"``).

Layers are pipeline stages (``gateware.stream_layer``); the G/D accumulation, node
perturbation's flush and the update run beside the stream in each layer's G frame,
never as a sweep that stops it; baselines are evaluations of the stream like any
other (``gateware.stream_control``: the issue rule). The arithmetic is the bit-exact
model's (``golden_model.trainer.HwTrainer`` on a stream config), the timing
``golden_model.stream_timing``: the contract in docs/hardware_network.md, "Streaming
trainer".
"""

from __future__ import annotations

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring

from golden_model.config import MGDConfig
from golden_model.hw_spec import HwSpec, trainer_spec

from .datapath import rescale
from .fixed import counter_add, ctilde, lanes, popcount, saturate, tree_sum
from .stream_control import StreamControl
from .stream_layer import StreamLayer, StreamShared
from .trainer import Trainer, trainer_ports
from .trainer_layer import pack_lanes

__all__ = ["StreamTrainer"]


class StreamTrainer(wiring.Component):
    """The streaming on-chip MGD trainer.

    Parameters and ports are :class:`gateware.trainer.Trainer`'s (``trainer_ports``),
    with these differences:

    - ``run`` is sampled once per slot: while it is high (and the step limit is not
      reached) an evaluation enters every II cycles; held high from reset, the
      numbers are the model's (a pause inserts empty slots, which move where updates
      meet the stream);
    - ``busy``: evaluations are in flight; ``done``: the step limit is reached and the
      pipeline is empty (every update written);
    - ``updated`` pulses on the first cycle every parameter of an update is in
      memory (``StreamTiming.commit_cycle``); ``step_count`` counts steps issued;
    - the parameter read port's rows are the stream layout's (per layer the weight
      rows, then the bias rows; ``hw_layout.TrainerLayout.memory_order``).

    Latency: CLEAR, then slot 0 starts on ``StreamTiming.first_cycle``; evaluation e's
    cost shows on ``cost`` at ``StreamTiming.cost_cycle(e)``.
    """

    def __init__(self, cfg: MGDConfig | HwSpec, theta0, x_train, t_train,
                 trace_depth: int = 0):
        self.spec = spec = cfg if isinstance(cfg, HwSpec) else trainer_spec(cfg)
        if spec.stream is None:
            raise ValueError("StreamTrainer needs hw.pipeline = 'stream'")
        self.cfg = spec.cfg
        self.layout = spec.layout
        self.theta0 = np.asarray(theta0, np.int64)
        self.x_train = np.asarray(x_train, np.int64)
        self.t_train = np.asarray(t_train, np.int64)
        self.trace_depth = trace_depth
        ports, self.theta_depth = trainer_ports(spec, len(self.x_train), trace_depth)
        super().__init__(ports)

    def elaborate(self, platform):
        spec, cfg = self.spec, self.cfg
        h, lay = cfg.hw, self.layout
        m = Module()
        ctl = StreamControl(m, spec, len(self.x_train), self)
        sh = self._shared(m, ctl)
        images = lay.to_memory(self.theta0)
        units = [StreamLayer(m, l, lx, images[l], ctl, sh, bool(self.trace_depth))
                 for l, lx in enumerate(lay.layers)]
        c_val, c_flag, is_base, c_valid = self._cost(m, sh)
        cost_valid = Signal()
        cost_base = Signal()
        m.d.sync += [cost_valid.eq(c_valid), cost_base.eq(is_base)]
        with m.If(c_valid):
            with m.If(is_base):
                m.d.sync += self.cost0.eq(c_val)
            with m.Else():
                m.d.sync += self.cost.eq(c_val)
        ct_wide = Signal(signed(h.cost_bits + 1))
        m.d.comb += ct_wide.eq(self.cost - self.cost0)
        ct_val, ct_flag = ctilde(m, ct_wide, h.ctilde_bits, h.clamp, "ct")
        ct_push = cost_valid & ~cost_base
        with m.If(ct_push):
            m.d.sync += self.ctilde.eq(ct_val)
        # C~ joins its evaluation's record as the record reaches depth `delay`
        d = spec.stream.delay
        m.d.comb += ctl.ct_in.eq(self.ctilde)
        with m.If(ctl.issue_edge):
            m.d.sync += ctl.meta[d].ct.eq(ctl.ct_in)

        # The saturation flags are registered before they are counted, so no count
        # sits behind a datapath (the counters settle a cycle later; done waits).
        def flags_q(flags: list, name: str) -> list:
            reg = Signal(max(len(flags), 1), name=f"{name}_flags_q")
            m.d.sync += reg.eq(Cat(*flags) if flags else 0)
            return [reg[i] for i in range(len(flags))]

        m.d.sync += [
            self.sat_z.eq(counter_add(self.sat_z, popcount(flags_q(sh.z_flags, "z")))),
            self.sat_act.eq(counter_add(self.sat_act, popcount(flags_q(sh.act_flags, "act")))),
            self.sat_g.eq(counter_add(self.sat_g, popcount(flags_q(sh.g_flags, "g")))),
            self.sat_theta.eq(counter_add(self.sat_theta, popcount(flags_q(sh.t_flags, "t")))),
            self.sat_cost.eq(counter_add(self.sat_cost,
                                         popcount(flags_q([c_valid & c_flag], "cost")))),
            self.sat_ctilde.eq(counter_add(self.sat_ctilde,
                                           popcount(flags_q([ct_push & ct_flag], "ct")))),
        ]
        if sh.d_flags:
            m.d.sync += self.sat_d.eq(counter_add(self.sat_d,
                                                  popcount(flags_q(sh.d_flags, "d"))))
        updated = Signal()
        # done waits two more cycles: the last update's trace entry is in and the
        # counters have counted the last flags
        busy_d, busy_d2 = Signal(), Signal()
        m.d.sync += [busy_d.eq(ctl.busy), busy_d2.eq(busy_d)]
        m.d.sync += updated.eq(units[-1].update_done)
        with m.If(units[-1].update_done):
            m.d.sync += self.update_count.eq(self.update_count + 1)
        m.d.comb += [
            self.busy.eq(ctl.busy),
            self.done.eq(ctl.running & ctl.at_limit & ~ctl.busy & ~busy_d & ~busy_d2),
            self.updated.eq(updated),
            self.step_count.eq(ctl.step),
            self.cycle.eq(ctl.cycle),
        ]
        self._sample_loads(m, sh, ctl)
        self._param_port(m, units)
        if self.trace_depth:
            m.d.comb += self.theta_shadow.eq(Cat(*[u.shadow for u in units]))
            Trainer._trace(m, ct_push, [(self.cost, self.trace_costs),
                                        (ctl.cycle, self.trace_cycles)],
                           self.trace_count, self.trace_valid, self.trace_depth)
            Trainer._trace(m, updated, [(self.theta_shadow, self.upd_thetas),
                                        (ctl.cycle, self.upd_cycles)],
                           self.upd_count, self.upd_valid, self.theta_depth)
        return m

    def _shared(self, m: Module, ctl: StreamControl) -> StreamShared:
        """The sample memories, input buffers, baseline-input rings and the code
        generator's shape (its state travels in the evaluation records)."""
        spec, cfg = self.spec, self.cfg
        h, lay, st = cfg.hw, self.layout, spec.stream
        first = lay.layers[0]
        xb, ab = h.x_bits, h.act_bits
        x_rows = []
        for s in range(len(self.x_train)):
            for c in range(first.cols):
                x_rows.append(pack_lanes(self.x_train[s, c * first.q:(c + 1) * first.q], xb))
        m.submodules.x_mem = x_mem = memory.Memory(
            shape=unsigned(first.q * xb), depth=max(len(x_rows), 1), init=x_rows)
        n_out = lay.layers[-1].n_out
        m.submodules.t_mem = t_mem = memory.Memory(
            shape=unsigned(n_out * ab), depth=max(len(self.x_train), 1),
            init=[pack_lanes(r, ab) for r in self.t_train])
        self._x_wr, self._t_wr = x_mem.write_port(), t_mem.write_port()
        x_rd, t_rd = x_mem.read_port(), t_mem.read_port()
        x_rd_g = x_mem.read_port() if spec.node else None
        bufs = [None] + [[[Signal(signed(ab), name=f"buf{l}_{b}_{j}") for j in range(lx.n_in)]
                          for b in range(st.hops[l - 1] + 1)]
                         for l, lx in enumerate(lay.layers) if l > 0]
        ring = [None] + [[[Signal(signed(ab), name=f"h0_{l}_{i}_{j}") for j in range(lx.n_in)]
                          for i in range(ctl.seg_ring)] if spec.node else None
                         for l, lx in enumerate(lay.layers) if l > 0]
        acts = ([cfg.network.activation] * (len(lay.layers) - 1)
                + [cfg.network.output_activation])
        return StreamShared(h=h, h_wu=spec.update_hw, node=spec.node, acts=acts,
                            codes=ctl.codes, x_rd=x_rd, x_rd_g=x_rd_g, t_rd=t_rd, bufs=bufs,
                            h0_ring=ring, z_flags=[], act_flags=[], g_flags=[], t_flags=[],
                            d_flags=[], outputs=[])

    def _cost(self, m: Module, sh: StreamShared):
        """Square, then sum, each output group; accumulated over the groups, narrowed to
        C. Returns (C, saturated, baseline, valid) on the cycle C is formed.

        Two registered stages before the accumulator (``COST_CYCLES``): the squares
        (from the target registered out of its memory), then their sum. Unregistered,
        the target memory's clock-to-out, the squares and the sum tree were the digits
        trainer's critical path (31 ns on the ECP5). The squares stay on the device's
        multipliers: built from LUTs (shifted partial products) one took 16.8 ns on
        the ECP5 and was the XOR trainer's critical path (59.5 MHz against 69.6)."""
        h, last = self.cfg.hw, self.layout.layers[-1]
        ab = h.act_bits
        v_y, g_y, ys, base_y = sh.outputs[0]
        t_q = Signal.like(sh.t_rd.data, name="target_q")
        m.d.sync += t_q.eq(sh.t_rd.data)  # its address was issued a cycle early
        targets = lanes(t_q, ab, last.n_out)
        group = (Array([Cat(*[targets[g * last.p + k] for k in range(last.p)])
                        for g in range(last.groups)])[g_y] if last.groups > 1
                 else t_q)
        squares = []
        for k, y in enumerate(ys):
            e = Signal(signed(ab + 1), name=f"err{k}")
            m.d.comb += e.eq(y - lanes(group, ab, last.p)[k])
            sq_k = Signal(unsigned(2 * ab + 2), name=f"sq{k}")
            m.d.sync += sq_k.eq(e * e)
            squares.append(sq_k)
        v_e, first_e, last_e, base_e = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [v_e.eq(v_y), first_e.eq(g_y == 0), last_e.eq(g_y == last.groups - 1),
                     base_e.eq(base_y)]
        width = 2 * ab + 3 + last.n_out.bit_length()
        sq = Signal(signed(width), name="sq_sum")
        v_sq, first_sq, last_sq, base_sq = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [sq.eq(tree_sum(squares)), v_sq.eq(v_e), first_sq.eq(first_e),
                     last_sq.eq(last_e), base_sq.eq(base_e)]
        cacc = Signal(signed(width), name="cost_acc")
        v_c, base_c = Signal(), Signal()
        with m.If(v_sq):
            m.d.sync += cacc.eq(Mux(first_sq, 0, cacc) + sq)
        m.d.sync += [v_c.eq(v_sq & last_sq), base_c.eq(base_sq)]
        c_wide = Signal(signed(width + 1))
        m.d.comb += c_wide.eq(rescale(cacc, 2 * h.act_frac + h.cost_shift - h.cost_frac,
                                      h.z_rounding))
        c_val, c_flag = saturate(m, c_wide, h.cost_bits, "c_val")
        return c_val, c_flag, base_c, v_c

    def _sample_loads(self, m: Module, sh: StreamShared, ctl: StreamControl) -> None:
        """The sample-memory load port, while nothing is in flight."""
        idle = ~ctl.busy
        m.d.comb += [
            self._x_wr.addr.eq(self.ld_addr), self._x_wr.data.eq(self.ld_data),
            self._x_wr.en.eq(self.ld_x_en & idle),
            self._t_wr.addr.eq(self.ld_addr), self._t_wr.data.eq(self.ld_data),
            self._t_wr.en.eq(self.ld_t_en & idle),
        ]

    def _param_port(self, m: Module, units: list) -> None:
        """Parameter read port: a row of the layers' stream-layout rows (weights, then
        biases) and a lane; one cycle of latency."""
        lane_d = Signal.like(self.param_lane)
        sel_d = Signal(range(max(len(units), 2)))
        bias_d = Signal()
        m.d.sync += lane_d.eq(self.param_lane)
        datas, off = [], 0
        for l, unit in enumerate(units):
            lx = unit.lx
            w_rows = lx.groups * lx.cols
            local = self.param_row - off
            m.d.comb += [unit.user_w.addr.eq(local), unit.user_b.addr.eq(local - w_rows)]
            inside = (self.param_row >= off) & (self.param_row < off + lx.rows)
            with m.If(inside):
                m.d.sync += [sel_d.eq(l), bias_d.eq(local >= w_rows)]
            datas.append(unit.user_data(m, local, lane_d, bias_d))
            off += lx.rows
        m.d.comb += self.param_data.eq(Array(datas)[sel_d])

