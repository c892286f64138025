"""Trainer: the on-chip network and its MGD training loop, with no host in the loop.

The arithmetic is ``golden_model.trainer.HwTrainer`` (the bit-exact model), the memory
layout and the cycle schedule ``golden_model.hw_layout`` (docs/hardware_network.md,
"Trainer gateware"). Every width, shift, segment table, code key and memory image
comes from those modules and the config; nothing is copied by hand.
"""

from __future__ import annotations

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.datapath import HwData
from golden_model.hw_spec import HwSpec, trainer_spec

from .datapath import rescale
from .fixed import CodeGen, counter_add, ctilde, lanes, popcount, saturate, tree_sum
from .trainer_control import CYCLE_BITS, TrainerControl
from .trainer_layer import LayerUnit, Shared, pack_lanes

# The update trace holds this many bits of parameter snapshots at most (the testbench
# wakes once per full trace, so small networks batch many updates, large ones few).
THETA_TRACE_BITS = 1 << 16


def theta_trace_depth(shadow_bits: int, trace_depth: int) -> int:
    """Updates per update-trace chunk: as many snapshots as fit THETA_TRACE_BITS
    (at least 1, at most ``trace_depth``)."""
    return max(1, min(trace_depth, THETA_TRACE_BITS // shadow_bits))


def trainer_ports(spec: HwSpec, n_samples: int, trace_depth: int) -> tuple[dict, int]:
    """The trainer's port signature (``Trainer``'s docstring; the streaming trainer has
    the same) and the update trace's depth (0 without taps)."""
    h, lay = spec.cfg.hw, spec.layout
    cb = h.counter_bits
    first, last = lay.layers[0], lay.layers[-1]
    ports = {
        "run": In(1),
        "step_limit": In(cb),
        "busy": Out(1),
        "done": Out(1),
        "updated": Out(1),
        "step_count": Out(cb),
        "update_count": Out(cb),
        "cost": Out(signed(h.cost_bits)),
        "cost0": Out(signed(h.cost_bits)),
        "ctilde": Out(signed(h.ctilde_bits)),
        "cycle": Out(CYCLE_BITS),
        "param_row": In(range(max(lay.total_rows, 2))),
        "param_lane": In(range(max(max(x.lanes for x in lay.layers), 2))),
        "param_data": Out(signed(h.theta_bits)),
        "ld_x_en": In(1),
        "ld_t_en": In(1),
        "ld_addr": In(range(max(n_samples * first.cols, 2))),
        "ld_data": In(max(first.q * h.x_bits, last.n_out * h.act_bits)),
    }
    for name in ("z", "act", "cost", "ctilde", "d", "g", "theta"):
        ports[f"sat_{name}"] = Out(cb)
    if trace_depth:
        shadow_bits = sum(x.rows * x.lanes for x in lay.layers) * h.theta_bits
        theta_depth = theta_trace_depth(shadow_bits, trace_depth)
        ports["trace_valid"] = Out(1)
        ports["trace_count"] = Out(range(trace_depth + 1))
        ports["trace_costs"] = Out(trace_depth * h.cost_bits)
        ports["trace_cycles"] = Out(trace_depth * CYCLE_BITS)
        ports["theta_shadow"] = Out(shadow_bits)
        ports["upd_valid"] = Out(1)
        ports["upd_count"] = Out(range(theta_depth + 1))
        ports["upd_thetas"] = Out(theta_depth * shadow_bits)
        ports["upd_cycles"] = Out(theta_depth * CYCLE_BITS)
    return ports, (theta_depth if trace_depth else 0)


class Trainer(wiring.Component):
    """The on-chip MGD trainer: network datapath, sample memory, scheduler, updates.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware with ``hw.datapath = "mlp"``. L layers, parallelism
        (P, Q) per layer from ``hw.macs`` / ``hw.mac_inputs``; CB = hw.counter_bits.
    theta0 : array of int
        Initial parameters (float layout, theta LSBs): the theta memories' contents.
    x_train, t_train : arrays of int
        The training set in memory order (inputs in the x format, targets in the act
        format): the sample memories' contents. S = len(x_train).
    trace_depth : int
        0 for the product. K > 0 adds the verification taps ``trace_*`` and
        ``theta_shadow`` used by the autonomous testbench.

    Ports
    -----
    run : In(1)
        Run steps; sampled between steps, so a step in progress always completes.
    step_limit : In(CB)
        Stop (``done``) once ``step_count`` reaches it; 0 = no limit.
    busy, done, updated : Out(1)
        A step is in progress; idle at the step limit; the NEXT cycle of a step that
        updated theta (every new parameter is in memory).
    step_count, update_count : Out(CB)
    cost, cost0, ctilde : Out(signed)
        The last perturbed cost C, the baseline C0 and C~ (cost LSBs).
    sat_z, sat_act, sat_cost, sat_ctilde, sat_d, sat_g, sat_theta : Out(CB)
        Saturating counts of saturated values (``HwTrainer.counters``).
    cycle : Out(48)
        Cycles since reset.
    param_row : In; param_lane : In; param_data : Out(signed(theta_bits))
        Parameter read port: row of the concatenated layer memories and lane; data one
        cycle later (``hw_layout.TrainerLayout.memory_order`` maps to parameters).
    ld_x_en, ld_t_en : In(1); ld_addr : In; ld_data : In
        Write one sample-memory row while idle: an input row (Q_0 inputs; row s C_0 +
        c holds inputs c Q_0 .. of sample s) or a target row (row s).

    Latency: fixed phase lengths (``hw_layout.Schedule``); after reset CLEAR zeroes G
    and V (theta keeps its contents), then the trainer idles until ``run``.
    """

    def __init__(self, cfg: MGDConfig | HwSpec, theta0, x_train, t_train,
                 trace_depth: int = 0):
        self.spec = spec = cfg if isinstance(cfg, HwSpec) else trainer_spec(cfg)
        self.cfg = spec.cfg
        self.layout = spec.layout
        self.theta0 = np.asarray(theta0, np.int64)
        self.x_train = np.asarray(x_train, np.int64)
        self.t_train = np.asarray(t_train, np.int64)
        self.trace_depth = trace_depth
        ports, self.theta_depth = trainer_ports(spec, len(self.x_train), trace_depth)
        super().__init__(ports)

    # Microarchitecture
    # -----------------
    # Each layer has its own parameter memory (rows of P * Q lanes, hw_layout), a G
    # memory (and V with momentum), for weight perturbation a key ROM of the same
    # shape, and P MAC units of Q multipliers. One FSM runs the phases in order.
    #
    # PASS, layer l: the row counter t issues row t to the theta and key memories (and
    # for layer 0 the sample row) for t < rows; stage 1 (t - 1) multiplies the row's
    # (perturbed) weights by the inputs and accumulates per MAC (restarting at column
    # 0); stage 2 (t - 2), after a group's bias row, narrows each accumulator to z,
    # adds the node code, applies the activation and writes the next layer's input
    # registers (the output layer adds (y - t)^2 to the cost). A stage-2 read of an
    # accumulator and the next group's stage-1 restart happen at the same edge, so
    # groups follow back to back; a layer takes rows + 2 cycles.
    #
    # SWEEP walks every row of every layer: issue reads theta, G, V and the key (and
    # the sample row, for node perturbation's layer-0 inputs); one cycle later the
    # lane datapath of gateware.weight_update writes the row back. Rows of a memory
    # are read one cycle before the previous one is written, never the same row.
    def elaborate(self, platform):
        cfg, h, lay = self.cfg, self.cfg.hw, self.layout
        m = Module()
        ctl = TrainerControl(m, cfg, lay, len(self.x_train))
        sh = self._shared(m, ctl)
        images = lay.to_memory(self.theta0)
        units = [LayerUnit(m, l, lx, images[l], ctl, sh, bool(self.trace_depth))
                 for l, lx in enumerate(lay.layers)]
        c_val, c_flag, cost_acc = self._cost(m, ctl, sh)
        ct_wide = Signal(signed(h.cost_bits + 1))
        m.d.comb += ct_wide.eq(self.cost - self.cost0)
        ct_val, ct_flag = ctilde(m, ct_wide, h.ctilde_bits, h.clamp, "ct")
        d_flags = self._node_deltas(m, ctl, sh, ct_val) if sh.node else []
        self._status(m, ctl, sh, d_flags, c_flag, ct_flag)
        ctl.scheduler(m, self, c_val, cost_acc, sh.ct_reg, ct_val)
        sh.codes.advance(m, ctl.in_next)
        m.d.comb += [
            self.busy.eq(~ctl.in_idle & ~ctl.in_clear),
            self.done.eq(ctl.in_idle & ctl.at_limit(self)),
            self.updated.eq(ctl.in_next & ctl.upd),
            self.ctilde.eq(sh.ct_reg),
            self.cycle.eq(ctl.cycle),
        ]
        self._param_port(m, units)
        if self.trace_depth:
            self._taps(m, ctl, c_val, Cat(*[u.shadow for u in units]))
        return m

    def _shared(self, m: Module, ctl: TrainerControl) -> Shared:
        """The code generator, the sample memories, the input registers h and h0, the
        node codes, D and C~: what every layer reads."""
        cfg, h, lay = self.cfg, self.cfg.hw, self.layout
        node = cfg.mgd.mode == "node"
        ab = h.act_bits
        # Node perturbation: G carries the act LSB too (D_j h_p), as in HwTrainer; the
        # spec holds the update format of the lanes.
        h_wu = self.spec.update_hw
        codes = CodeGen(m, cfg, lay.n_nodes if node else lay.n_params)
        x_rd, t_rd = self._sample_memories(m, ctl)
        h_regs = [None] + [[Signal(signed(ab), name=f"h{l}_{j}") for j in range(x.n_in)]
                           for l, x in enumerate(lay.layers) if l > 0]
        h0_regs = [None] + [[Signal(signed(ab), name=f"h0{l}_{j}") for j in range(x.n_in)]
                            for l, x in enumerate(lay.layers) if l > 0] if node else None
        # node codes (all neurons at once: D update and the pass's z perturbation)
        node_codes = [codes.bits(codes.key(j)) for j in range(lay.n_nodes)] if node else []
        D = [Signal(signed(h.g_bits), name=f"d_{j}") for j in range(lay.n_nodes)] if node else []
        acts = ([cfg.network.activation] * (len(lay.layers) - 1)
                + [cfg.network.output_activation])
        return Shared(h=h, h_wu=h_wu, node=node, acts=acts, codes=codes, x_rd=x_rd,
                      t_rd=t_rd, h_regs=h_regs, h0_regs=h0_regs, node_codes=node_codes, D=D,
                      ct_reg=Signal(signed(h.ctilde_bits), name="ct_reg"), z_flags=[],
                      act_flags=[], g_flags=[], t_flags=[], cost_terms=[])

    def _sample_memories(self, m: Module, ctl: TrainerControl):
        """The training set in memory order; written through ld_* while idle."""
        h, first = self.cfg.hw, self.layout.layers[0]
        xb, ab = h.x_bits, h.act_bits
        x_rows = []
        for s in range(len(self.x_train)):
            for c in range(first.cols):
                x_rows.append(pack_lanes(self.x_train[s, c * first.q:(c + 1) * first.q], xb))
        m.submodules.x_mem = x_mem = memory.Memory(
            shape=unsigned(first.q * xb), depth=max(len(x_rows), 1), init=x_rows)
        n_out = self.layout.layers[-1].n_out
        m.submodules.t_mem = t_mem = memory.Memory(
            shape=unsigned(n_out * ab), depth=max(len(self.x_train), 1),
            init=[pack_lanes(r, ab) for r in self.t_train])
        x_rd, t_rd = x_mem.read_port(), t_mem.read_port()
        x_wr, t_wr = x_mem.write_port(), t_mem.write_port()
        m.d.comb += [
            x_rd.addr.eq(ctl.x_base + ctl.ic),  # layer 0's row of the issued column
            t_rd.addr.eq(ctl.sample),
            x_wr.addr.eq(self.ld_addr), x_wr.data.eq(self.ld_data),
            x_wr.en.eq(self.ld_x_en & ctl.in_idle),
            t_wr.addr.eq(self.ld_addr), t_wr.data.eq(self.ld_data),
            t_wr.en.eq(self.ld_t_en & ctl.in_idle),
        ]
        return x_rd, t_rd

    def _cost(self, m: Module, ctl: TrainerControl, sh: Shared):
        """The cost of a pass: the output layer's squared errors summed over its
        groups, narrowed to the cost format. Returns (C, saturated, the sum)."""
        h, n_out = self.cfg.hw, self.layout.layers[-1].n_out
        cost_acc_w = 2 * h.act_bits + 3 + n_out.bit_length()
        cost_acc = Signal(signed(cost_acc_w))
        if sh.cost_terms:
            total = tree_sum(sh.cost_terms)
            with m.If(ctl.s2_valid & (ctl.s2_layer == ctl.n_layers - 1)):
                m.d.sync += cost_acc.eq(cost_acc + total)
        c_wide = Signal(signed(cost_acc_w + 1))
        m.d.comb += c_wide.eq(rescale(cost_acc, 2 * h.act_frac + h.cost_shift - h.cost_frac,
                                      h.z_rounding))
        c_val, c_flag = saturate(m, c_wide, h.cost_bits, "c_val")
        return c_val, c_flag, cost_acc

    def _node_deltas(self, m: Module, ctl: TrainerControl, sh: Shared, ct_val) -> list:
        """Node perturbation: D_j <- sat(D_j + s_j C~) in CT, cleared at a segment's
        end. Returns the saturation flags."""
        h = self.cfg.hw
        d_flags = []
        for j, (n_act, n_neg) in enumerate(sh.node_codes):
            dsum = Signal(signed(max(h.g_bits, h.ctilde_bits + 1) + 1), name=f"dsum{j}")
            m.d.comb += dsum.eq(sh.D[j] + Mux(n_act, Mux(n_neg, -ct_val, ct_val), 0))
            dv, df = saturate(m, dsum, h.g_bits, f"dsat{j}")
            with m.If(ctl.in_ct):
                m.d.sync += sh.D[j].eq(dv)
            with m.If(ctl.in_next & ctl.seg_end):
                m.d.sync += sh.D[j].eq(0)
            d_flags.append(ctl.in_ct & df)
        return d_flags

    def _status(self, m: Module, ctl: TrainerControl, sh: Shared, d_flags, c_flag,
                ct_flag) -> None:
        """The saturation counters (``HwTrainer.counters``)."""
        m.d.sync += [
            self.sat_z.eq(counter_add(self.sat_z, popcount(sh.z_flags))),
            self.sat_act.eq(counter_add(self.sat_act, popcount(sh.act_flags))),
            self.sat_g.eq(counter_add(self.sat_g, popcount(sh.g_flags))),
            self.sat_theta.eq(counter_add(self.sat_theta, popcount(sh.t_flags))),
        ]
        if sh.node:
            m.d.sync += self.sat_d.eq(counter_add(self.sat_d, popcount(d_flags)))
        with m.If(ctl.in_cost):
            m.d.sync += self.sat_cost.eq(counter_add(self.sat_cost, c_flag))
        with m.If(ctl.in_ct):
            m.d.sync += self.sat_ctilde.eq(counter_add(self.sat_ctilde, ct_flag))

    def _param_port(self, m: Module, units: list) -> None:
        """Parameter read port: row of the concatenated layer memories, then lane; one
        cycle of latency."""
        tb = self.cfg.hw.theta_bits
        lane_d = Signal.like(self.param_lane)
        sel_d = Signal(range(max(len(units), 2)))
        m.d.sync += lane_d.eq(self.param_lane)
        datas, off = [], 0
        for l, unit in enumerate(units):
            port, lx = unit.user_read, unit.lx
            m.d.comb += port.addr.eq(self.param_row - off)
            inside = self.param_row < off + lx.rows
            if off:
                inside = inside & (self.param_row >= off)
            with m.If(inside):
                m.d.sync += sel_d.eq(l)
            datas.append(lanes(port.data, tb, lx.lanes)[lane_d] if lx.lanes > 1
                         else port.data.as_signed())
            off += lx.rows
        m.d.comb += self.param_data.eq(Array(datas)[sel_d])

    def _taps(self, m: Module, ctl: TrainerControl, c_val, shadow) -> None:
        """The verification taps.

        Two shift-register traces, each pulsing *_valid for one cycle when full, so the
        testbench wakes once per chunk: the perturbed costs with the cycle each first
        shows on ``cost``, and the parameters after each update with the cycle of its
        NEXT. The oldest entry is in the lowest bits; a partial chunk's *_count newest
        entries are at the top.
        """
        m.d.comb += self.theta_shadow.eq(shadow)
        self._trace(m, ctl.in_cost & ~ctl.is_base, [(c_val, self.trace_costs),
                                                     (ctl.cycle + 1, self.trace_cycles)],
                    self.trace_count, self.trace_valid, self.trace_depth)
        self._trace(m, self.updated, [(shadow, self.upd_thetas), (ctl.cycle, self.upd_cycles)],
                    self.upd_count, self.upd_valid, self.theta_depth)

    @staticmethod
    def _trace(m: Module, push, fields, count_port, valid_port, depth: int) -> None:
        count = Signal(range(depth + 1))
        valid = Signal()
        bufs = []
        for value, port in fields:
            buf = Signal(len(port), name=f"{port.name}_buf")
            m.d.comb += port.eq(buf)
            bufs.append((buf, value, len(port) // depth))
        m.d.sync += valid.eq(0)
        with m.If(push):
            for buf, value, width in bufs:
                m.d.sync += buf.eq(Cat(buf[width:], value[:width]))
            with m.If(count >= depth - 1):
                m.d.sync += [count.eq(0), valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        m.d.comb += [count_port.eq(count), valid_port.eq(valid)]


def trainer_for_config(cfg: MGDConfig, data: HwData, trace_depth: int = 0,
                       run: int = 0) -> wiring.Component:
    """The trainer of ``cfg`` (the ``Trainer``, or the ``StreamTrainer`` when
    ``hw.pipeline = "stream"``) with the memory images of run ``run``: ``data`` (the task
    in the hardware formats, loaded once by the caller) in the model's sample order,
    and the model's initial parameters.

    Raises ``DataError`` (one line) when the data set does not fit the sample memory
    or the network.
    """
    from golden_model.trainer_image import trainer_image

    image = trainer_image(cfg, data, run)
    cls = Trainer
    if cfg.hw.pipeline == "stream":
        from .stream_trainer import StreamTrainer as cls  # imports this module
    return cls(cfg, image.theta0, image.x_train, image.t_train, trace_depth=trace_depth)
