"""Trainer: the on-chip network and its MGD training loop, with no host in the loop.

The arithmetic is ``golden_model.trainer.HwTrainer`` (the bit-exact model), the memory
layout and the cycle schedule ``golden_model.hw_layout`` (docs/hardware_network.md,
"Trainer gateware"). Every width, shift, segment table, code key and memory image
comes from those modules and the config; nothing is copied by hand.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.datapath import HwData
from golden_model.fixed import pack_signed
from golden_model.hw_layout import TrainerLayout
from golden_model.lfsr import code_masks, tap_mask
from golden_model.perturb_gen import walsh_size

from . import weight_update as wu_math
from .datapath_math import activation, rescale, saturate

CLEAR, IDLE, PASS, COST, CT, SWEEP, NEXT = range(7)
CYCLE_BITS = 48
# The update trace holds this many bits of parameter snapshots at most (the testbench
# wakes once per full trace, so small networks batch many updates, large ones few).
THETA_TRACE_BITS = 1 << 16


def theta_trace_depth(shadow_bits: int, trace_depth: int) -> int:
    """Updates per update-trace chunk: as many snapshots as fit THETA_TRACE_BITS
    (at least 1, at most ``trace_depth``)."""
    return max(1, min(trace_depth, THETA_TRACE_BITS // shadow_bits))


def _pack(values, width: int) -> int:
    """Lane values as one memory word, lane i at bits [i w, (i + 1) w)."""
    return pack_signed(np.asarray(values, np.int64).ravel(), width)


def _lane(word, i: int, width: int):
    return word[i * width:(i + 1) * width].as_signed()


class _Codes:
    """The perturbation code state shared by every lane: an LFSR (``code``), a period
    counter mod M (``walsh``) or mod N (``time``), and the tau_p sub-step counter.

    A lane's code comes from its constant key (``hw_layout`` keys): code: neg =
    parity(lfsr & mask_p); walsh: neg = parity(k & (p + 1)); time: active iff k == p.
    These are ``PerturbGenModel``'s codes over N = the perturbed count.
    """

    def __init__(self, m: Module, cfg: MGDConfig, n: int):
        h, self.kind = cfg.hw, cfg.mgd.perturbation
        self.n = n
        if self.kind == "code":
            self.state = Signal(h.lfsr_bits, init=h.lfsr_seed, name="code_lfsr")
            taps = Const(tap_mask(h.lfsr_bits), h.lfsr_bits)
            self.next = (self.state >> 1) ^ Mux(self.state[0], taps, 0)
            self.key_bits = h.lfsr_bits
        elif self.kind == "walsh":
            kbits = walsh_size(n).bit_length() - 1
            self.state = Signal(kbits, name="code_k")
            self.next = self.state + 1  # wraps mod M by its width
            self.key_bits = max(kbits, 1)
        else:  # time
            self.state = Signal(range(max(n, 2)), name="code_k")
            self.next = Mux(self.state == n - 1, 0, self.state + 1)
            self.key_bits = len(self.state)
        self.tau_p = cfg.mgd.tau_p
        self.sub = Signal(range(max(self.tau_p, 2)), name="code_sub")

    def key(self, p: int) -> int:
        if self.kind == "code":
            return code_masks(self.n, self.key_bits)[p]
        return p + 1 if self.kind == "walsh" else p

    def advance(self, m: Module, step) -> None:
        """Count one step; every tau_p-th moves to the next period."""
        last = self.sub == self.tau_p - 1
        with m.If(step):
            m.d.sync += self.sub.eq(Mux(last, 0, self.sub + 1))
            with m.If(last):
                m.d.sync += self.state.eq(self.next)

    def bits(self, key, valid) -> tuple[object, object]:
        """(active, neg) of a lane whose key is ``key`` (a constant or a ROM field)."""
        if self.kind == "time":
            return valid & (key == self.state), Const(0, 1)
        return valid, (self.state & key).xor()


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

    def __init__(self, cfg: MGDConfig, theta0, x_train, t_train, trace_depth: int = 0):
        cfg.validate_trainer()
        h = cfg.hw
        self.cfg = cfg
        self.layout = lay = TrainerLayout(cfg)
        self.theta0 = np.asarray(theta0, np.int64)
        self.x_train = np.asarray(x_train, np.int64)
        self.t_train = np.asarray(t_train, np.int64)
        self.trace_depth = trace_depth
        cb = h.counter_bits
        first, last = lay.layers[0], lay.layers[-1]
        n_samples = len(self.x_train)
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
            self.theta_depth = theta_trace_depth(shadow_bits, trace_depth)
            ports["trace_valid"] = Out(1)
            ports["trace_count"] = Out(range(trace_depth + 1))
            ports["trace_costs"] = Out(trace_depth * h.cost_bits)
            ports["trace_cycles"] = Out(trace_depth * CYCLE_BITS)
            ports["theta_shadow"] = Out(shadow_bits)
            ports["upd_valid"] = Out(1)
            ports["upd_count"] = Out(range(self.theta_depth + 1))
            ports["upd_thetas"] = Out(self.theta_depth * shadow_bits)
            ports["upd_cycles"] = Out(self.theta_depth * CYCLE_BITS)
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
        cfg, h, mg = self.cfg, self.cfg.hw, self.cfg.mgd
        lay = self.layout
        node = mg.mode == "node"
        acts = [cfg.network.activation] * (len(lay.layers) - 1) + [cfg.network.output_activation]
        n_layers = len(lay.layers)
        amp = 1 << h.amp_log2
        tb, xb, ab = h.theta_bits, h.x_bits, h.act_bits
        # Node perturbation: G carries the act LSB too (D_j h_p), as in HwTrainer.
        h_wu = h
        if node:
            h_wu = dataclasses.replace(h, g_bits=h.g_bits + ab, v_bits=h.v_bits + ab,
                                       eta_shift=h.eta_shift + h.act_frac)
        gb, vb = h_wu.g_bits, h_wu.v_bits
        momentum = h.momentum_shift > 0
        first = lay.layers[0]
        n_samples = len(self.x_train)
        m = Module()

        codes = _Codes(m, cfg, lay.n_nodes if node else lay.n_params)
        kb = codes.key_bits

        # -- control registers --
        state = Signal(range(7), init=CLEAR)
        layer = Signal(range(max(n_layers, 2)))
        t = Signal(range(max(x.rows for x in lay.layers) + 2))
        ic = Signal(range(max(x.cols for x in lay.layers) + 1))  # column of the issued row
        ig = Signal(range(max(x.groups for x in lay.layers)))  # group of the issued row
        base_pending = Signal(init=1)
        x_cnt = Signal(range(max(mg.tau_x, 2)))
        th_cnt = Signal(range(max(mg.tau_theta, 2)))
        sample = Signal(range(max(n_samples, 2)))
        x_base = Signal(range(max(n_samples * first.cols, 2)))
        clearing = Signal(init=1)  # the sweep in progress is CLEAR
        cycle = Signal(CYCLE_BITS)
        m.d.sync += cycle.eq(cycle + 1)

        is_base = base_pending  # the pass in progress is a baseline pass
        seg_end = (x_cnt == mg.tau_x - 1) | (th_cnt == mg.tau_theta - 1)
        upd = th_cnt == mg.tau_theta - 1
        in_pass = state == PASS
        in_sweep = (state == SWEEP) | (state == CLEAR)
        perturbed = in_pass & ~is_base

        # Row issue counters shared by PASS and SWEEP (never at once). Per layer the
        # limits differ, so they come from constant Arrays indexed by `layer`.
        rows_of = Array([Const(x.rows, len(t)) for x in lay.layers])
        cols_of = Array([Const(x.cols, len(ic)) for x in lay.layers])
        issuing = Signal()
        m.d.comb += issuing.eq((in_pass | in_sweep) & (t < rows_of[layer]))
        col_last = ic == cols_of[layer]
        with m.If(issuing):
            m.d.sync += [ic.eq(Mux(col_last, 0, ic + 1)), ig.eq(Mux(col_last, ig + 1, ig))]

        # stage-1 and stage-2 pipeline registers (layer, row, column, group, flags)
        s1_valid, s1_last = Signal(), Signal()
        s1_layer = Signal.like(layer)
        s1_row, s1_c, s1_g = Signal.like(t), Signal.like(ic), Signal.like(ig)
        s2_valid = Signal()
        s2_layer, s2_g = Signal.like(layer), Signal.like(ig)
        m.d.sync += [
            s1_valid.eq(issuing), s1_last.eq(col_last), s1_layer.eq(layer),
            s1_row.eq(t), s1_c.eq(ic), s1_g.eq(ig),
            s2_valid.eq(s1_valid & s1_last & in_pass), s2_layer.eq(s1_layer), s2_g.eq(s1_g),
        ]

        # -- sample memories (training set in memory order) --
        x_rows = []
        for s in range(n_samples):
            for c in range(first.cols):
                x_rows.append(_pack(self.x_train[s, c * first.q:(c + 1) * first.q], xb))
        m.submodules.x_mem = x_mem = memory.Memory(
            shape=unsigned(first.q * xb), depth=max(len(x_rows), 1), init=x_rows)
        n_out = lay.layers[-1].n_out
        m.submodules.t_mem = t_mem = memory.Memory(
            shape=unsigned(n_out * ab), depth=max(n_samples, 1),
            init=[_pack(r, ab) for r in self.t_train])
        x_rd, t_rd = x_mem.read_port(), t_mem.read_port()
        x_wr, t_wr = x_mem.write_port(), t_mem.write_port()
        m.d.comb += [
            x_rd.addr.eq(x_base + ic),  # layer 0's row of the issued column (pass, flush)
            t_rd.addr.eq(sample),
            x_wr.addr.eq(self.ld_addr), x_wr.data.eq(self.ld_data),
            x_wr.en.eq(self.ld_x_en & (state == IDLE)),
            t_wr.addr.eq(self.ld_addr), t_wr.data.eq(self.ld_data),
            t_wr.en.eq(self.ld_t_en & (state == IDLE)),
        ]

        # -- per-layer input registers: h (this pass) and h0 (the segment's baseline) --
        h_regs = [None] + [[Signal(signed(ab), name=f"h{l}_{j}") for j in range(x.n_in)]
                           for l, x in enumerate(lay.layers) if l > 0]
        h0_regs = [None] + [[Signal(signed(ab), name=f"h0{l}_{j}") for j in range(x.n_in)]
                            for l, x in enumerate(lay.layers) if l > 0] if node else None

        # node codes (all neurons at once: D update and the pass's z perturbation)
        node_codes = []
        if node:
            for j in range(lay.n_nodes):
                node_codes.append(codes.bits(Const(codes.key(j), kb), Const(1, 1)))
        D = [Signal(signed(h.g_bits), name=f"d_{j}") for j in range(lay.n_nodes)] if node else []

        cost_acc_w = 2 * ab + 3 + n_out.bit_length()
        cost_acc = Signal(signed(cost_acc_w))
        ct_reg = Signal(signed(h.ctilde_bits))
        sat = {k: getattr(self, f"sat_{k}") for k in ("z", "act", "cost", "ctilde", "d", "g",
                                                      "theta")}
        z_flags, act_flags, g_flags, t_flags = [], [], [], []
        cost_terms = []
        shadow_parts = []
        user_reads = []

        row_offset = 0
        for l, lx in enumerate(lay.layers):
            in_bits, in_frac = (xb, h.x_frac) if l == 0 else (ab, h.act_frac)
            lanes = lx.lanes
            pmap = lx.param_map()
            mem_init = lay.to_memory(self.theta0)[l]
            m.submodules[f"theta{l}"] = theta_mem = memory.Memory(
                shape=unsigned(lanes * tb), depth=lx.rows,
                init=[_pack(r, tb) for r in mem_init])
            m.submodules[f"g{l}"] = g_mem = memory.Memory(
                shape=unsigned(lanes * gb), depth=lx.rows, init=[])
            th_rd, th_user, th_wr = (theta_mem.read_port(), theta_mem.read_port(),
                                     theta_mem.write_port())
            g_rd, g_wr = g_mem.read_port(), g_mem.write_port()
            if momentum:
                m.submodules[f"v{l}"] = v_mem = memory.Memory(
                    shape=unsigned(lanes * vb), depth=lx.rows, init=[])
                v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
            key_rd = None
            if not node:
                keys = [_pack([(codes.key(p) << 1) | 1 if p >= 0 else 0 for p in row], kb + 1)
                        for row in pmap]
                m.submodules[f"key{l}"] = key_mem = memory.Memory(
                    shape=unsigned(lanes * (kb + 1)), depth=lx.rows, init=keys)
                key_rd = key_mem.read_port()
                m.d.comb += key_rd.addr.eq(t)
            m.d.comb += [th_rd.addr.eq(t), g_rd.addr.eq(t)]
            if momentum:
                m.d.comb += v_rd.addr.eq(t)
            user_reads.append((row_offset, lx, th_user))
            row_offset += lx.rows

            # stage 1: this layer's row data (read at the previous edge)
            s1_here = s1_valid & (s1_layer == l)
            lane_codes = []
            for lane in range(lanes):
                if key_rd is None:
                    lane_codes.append((Const(0, 1), Const(0, 1)))
                else:
                    f = key_rd.data[lane * (kb + 1):(lane + 1) * (kb + 1)]
                    lane_codes.append(codes.bits(f[1:], f[0]))

            # the inputs of the row's lanes: layer 0 from the sample memory, others from
            # the h registers (pass) or h0 (flush); the bias row's lane q = 0 is 1.0
            def row_inputs(regs, q_lane, *, lx=lx, l=l):
                if l == 0:
                    return _lane(x_rd.data, q_lane, xb)
                cols = Array([Cat(*regs[c * lx.q:(c + 1) * lx.q]) for c in range(lx.cols)])
                return _lane(cols[s1_c], q_lane, ab)

            one_in = Const(1 << in_frac, signed(in_bits + 1))
            pass_in = []
            for q in range(lx.q):
                v = Signal(signed(in_bits + 1), name=f"l{l}_in{q}")
                m.d.comb += v.eq(Mux(s1_last, one_in if q == 0 else 0,
                                     row_inputs(h_regs[l], q)))
                pass_in.append(v)

            # MAC: acc_k = sum over rows of sum_q (theta + a s) h, restarting at column 0
            accs = []
            for k in range(lx.p):
                acc = Signal(signed(h.acc_bits), name=f"l{l}_acc{k}")
                terms = []
                for q in range(lx.q):
                    lane = k * lx.q + q
                    theta = _lane(th_rd.data, lane, tb)
                    act_bit, neg_bit = lane_codes[lane]
                    pert = Mux(perturbed & act_bit,
                               Mux(neg_bit, Const(-amp, signed(tb + 1)),
                                   Const(amp, signed(tb + 1))), 0)
                    w = Signal(signed(tb + 1), name=f"l{l}_w{lane}")
                    m.d.comb += w.eq(theta + pert)
                    terms.append(w * pass_in[q])
                total = wu_math._tree_sum(terms)
                with m.If(s1_here & in_pass):
                    m.d.sync += acc.eq(Mux(s1_c == 0, 0, acc) + total)
                accs.append(acc)

            # stage 2: z, node code, activation, write the next layer's inputs
            s2_here = s2_valid & (s2_layer == l)
            zk = h.theta_frac + in_frac - h.z_frac
            outs = []
            for k, acc in enumerate(accs):
                wide = Signal(signed(h.acc_bits + 1), name=f"l{l}_zw{k}")
                m.d.comb += wide.eq(rescale(acc, zk, h.z_rounding))
                z, zf = saturate(m, wide, h.z_bits, f"l{l}_z{k}")
                z_flags.append(s2_here & zf)
                zp = Signal(signed(h.z_bits + 1), name=f"l{l}_zp{k}")
                if node:
                    group = Array([Cat(*node_codes[lx.node_offset + g * lx.p + k])
                                   for g in range(lx.groups)])[s2_g]
                    n_act, n_neg = group[0], group[1]
                    m.d.comb += zp.eq(z + Mux(in_pass & ~is_base & n_act,
                                              Mux(n_neg, -amp, amp), 0))
                else:
                    m.d.comb += zp.eq(z)
                y, af = activation(m, acts[l], zp, h, f"l{l}_h{k}")
                act_flags.append(s2_here & af)
                outs.append(y)
            if l + 1 < n_layers:
                for i in range(lx.n_out):
                    g, k = divmod(i, lx.p)
                    with m.If(s2_here & (s2_g == g)):
                        m.d.sync += h_regs[l + 1][i].eq(outs[k])
                        if node:
                            with m.If(is_base):
                                m.d.sync += h0_regs[l + 1][i].eq(outs[k])
            else:
                targets = Array([Cat(*[t_rd.data[(g * lx.p + k) * ab:(g * lx.p + k + 1) * ab]
                                       for k in range(lx.p)]) for g in range(lx.groups)])[s2_g]
                for k, y in enumerate(outs):
                    e = Signal(signed(ab + 1), name=f"err{k}")
                    m.d.comb += e.eq(y - _lane(targets, k, ab))
                    cost_terms.append(e * e)

            # SWEEP write stage: the lane datapath of the weight-update unit
            s1_sweep = s1_here & in_sweep
            new_theta, new_g, new_v = [], [], []
            for lane in range(lanes):
                k, q = divmod(lane, lx.q)
                theta = _lane(th_rd.data, lane, tb)
                g = _lane(g_rd.data, lane, gb)
                v = _lane(v_rd.data, lane, vb) if momentum else None
                if node:
                    # inc = D_j h0_p, h0 in act LSBs (layer 0: x shifted; bias: 1.0)
                    dsel = Array([D[lx.node_offset + gg * lx.p + k]
                                  for gg in range(lx.groups)])[s1_g]
                    if l == 0:
                        x_in = _lane(x_rd.data, q, xb) << (h.act_frac - h.x_frac)
                    else:
                        x_in = row_inputs(h0_regs[l], q)
                    hin = Signal(signed(ab + 1), name=f"l{l}_fin{lane}")
                    bias_in = Const(1 << h.act_frac, signed(ab + 1)) if q == 0 else 0
                    m.d.comb += hin.eq(Mux(s1_last, bias_in, x_in))
                    inc = Signal(signed(h.g_bits + ab + 1), name=f"l{l}_inc{lane}")
                    m.d.comb += inc.eq(dsel * hin)
                else:
                    act_bit, neg_bit = lane_codes[lane]
                    inc = Signal(signed(h.ctilde_bits + 1), name=f"l{l}_sct{lane}")
                    m.d.comb += inc.eq(Mux(act_bit, Mux(neg_bit, -ct_reg, ct_reg), 0))
                t_next, g_next, v_next, gf, tf = wu_math._lane_update(
                    m, h_wu, f"l{l}_u{lane}", theta, g, v, inc, ~clearing, upd & ~clearing)
                g_flags += [s1_sweep & f for f in gf]
                t_flags.append(s1_sweep & tf)
                new_theta.append(t_next)
                new_g.append(Mux(clearing, 0, g_next))
                if momentum:
                    new_v.append(Mux(clearing, 0, v_next))
            m.d.comb += [
                th_wr.addr.eq(s1_row), th_wr.data.eq(Cat(*new_theta)), th_wr.en.eq(s1_sweep),
                g_wr.addr.eq(s1_row), g_wr.data.eq(Cat(*new_g)), g_wr.en.eq(s1_sweep),
            ]
            if momentum:
                m.d.comb += [v_wr.addr.eq(s1_row), v_wr.data.eq(Cat(*new_v)),
                             v_wr.en.eq(s1_sweep)]
            if self.trace_depth:
                shadow = Signal(lx.rows * lanes * tb, name=f"theta_shadow{l}",
                                init=_pack(mem_init.ravel(), tb))
                with m.If(s1_sweep & upd & ~clearing):
                    m.d.sync += shadow.word_select(s1_row, lanes * tb).eq(Cat(*new_theta))
                shadow_parts.append(shadow)

        # -- the cost of a pass, C~, D --
        if cost_terms:
            total = wu_math._tree_sum(cost_terms)
            with m.If(s2_valid & (s2_layer == n_layers - 1)):
                m.d.sync += cost_acc.eq(cost_acc + total)
        c_wide = Signal(signed(cost_acc_w + 1))
        m.d.comb += c_wide.eq(rescale(cost_acc, 2 * h.act_frac + h.cost_shift - h.cost_frac,
                                      h.z_rounding))
        c_val, c_flag = saturate(m, c_wide, h.cost_bits, "c_val")
        ct_wide = Signal(signed(h.cost_bits + 1))
        m.d.comb += ct_wide.eq(self.cost - self.cost0)
        ct_sat, ct_flag = saturate(m, ct_wide, h.ctilde_bits, "ct_sat")
        ct_val = Signal(signed(h.ctilde_bits))
        if h.clamp:
            m.d.comb += ct_val.eq(Mux(ct_sat > h.clamp, h.clamp,
                                      Mux(ct_sat < -h.clamp, -h.clamp, ct_sat)))
        else:
            m.d.comb += ct_val.eq(ct_sat)
        d_flags = []
        if node:
            for j, (n_act, n_neg) in enumerate(node_codes):
                dsum = Signal(signed(max(h.g_bits, h.ctilde_bits + 1) + 1), name=f"dsum{j}")
                m.d.comb += dsum.eq(D[j] + Mux(n_act, Mux(n_neg, -ct_val, ct_val), 0))
                dv, df = saturate(m, dsum, h.g_bits, f"dsat{j}")
                with m.If(state == CT):
                    m.d.sync += D[j].eq(dv)
                with m.If((state == NEXT) & seg_end):
                    m.d.sync += D[j].eq(0)
                d_flags.append((state == CT) & df)

        # -- status counters --
        def popcount(flags):
            return wu_math._popcount(flags)

        m.d.sync += [
            sat["z"].eq(wu_math._counter_next(sat["z"], popcount(z_flags))),
            sat["act"].eq(wu_math._counter_next(sat["act"], popcount(act_flags))),
            sat["g"].eq(wu_math._counter_next(sat["g"], popcount(g_flags))),
            sat["theta"].eq(wu_math._counter_next(sat["theta"], popcount(t_flags))),
        ]
        if node:
            m.d.sync += sat["d"].eq(wu_math._counter_next(sat["d"], popcount(d_flags)))
        with m.If(state == COST):
            m.d.sync += sat["cost"].eq(wu_math._counter_next(sat["cost"], c_flag))
        with m.If(state == CT):
            m.d.sync += sat["ctilde"].eq(wu_math._counter_next(sat["ctilde"], ct_flag))

        # -- the FSM --
        step_count, update_count = self.step_count, self.update_count
        at_limit = (self.step_limit != 0) & (step_count >= self.step_limit)
        next_count = wu_math._counter_next(step_count, 1)
        stop_after = (self.step_limit != 0) & (next_count >= self.step_limit)
        layer_done = t == rows_of[layer] + 1
        sweep_done = (layer == n_layers - 1) & (t == rows_of[layer])

        def start_layer(l):
            return [layer.eq(l), t.eq(0), ic.eq(0), ig.eq(0)]

        with m.Switch(state):
            with m.Case(CLEAR, SWEEP):
                # the issue stage walks every row of every layer, then one write cycle
                with m.If(sweep_done):
                    m.d.sync += state.eq(Mux(state == CLEAR, IDLE, NEXT))
                    m.d.sync += clearing.eq(0)
                with m.Elif(t == rows_of[layer] - 1):
                    with m.If(layer != n_layers - 1):
                        m.d.sync += start_layer(layer + 1)
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
                with m.Else():
                    m.d.sync += t.eq(t + 1)
            with m.Case(IDLE):
                with m.If(self.run & ~at_limit):
                    m.d.sync += [state.eq(PASS), *start_layer(0)]
            with m.Case(PASS):
                with m.If(layer_done):
                    with m.If(layer == n_layers - 1):
                        m.d.sync += state.eq(COST)
                    with m.Else():
                        m.d.sync += start_layer(layer + 1)
                with m.Else():
                    m.d.sync += t.eq(t + 1)
            with m.Case(COST):
                m.d.sync += cost_acc.eq(0)
                with m.If(is_base):
                    m.d.sync += [self.cost0.eq(c_val), base_pending.eq(0), state.eq(PASS),
                                 *start_layer(0)]
                with m.Else():
                    m.d.sync += [self.cost.eq(c_val), state.eq(CT)]
            with m.Case(CT):
                m.d.sync += ct_reg.eq(ct_val)
                if node:
                    with m.If(seg_end):
                        m.d.sync += [state.eq(SWEEP), *start_layer(0)]
                    with m.Else():
                        m.d.sync += state.eq(NEXT)
                else:
                    m.d.sync += [state.eq(SWEEP), *start_layer(0)]
            with m.Case(NEXT):
                new_sample = x_cnt == mg.tau_x - 1
                m.d.sync += [
                    step_count.eq(next_count),
                    x_cnt.eq(Mux(new_sample, 0, x_cnt + 1)),
                    th_cnt.eq(Mux(upd, 0, th_cnt + 1)),
                    base_pending.eq(new_sample | upd),
                ]
                with m.If(upd):
                    m.d.sync += update_count.eq(wu_math._counter_next(update_count, 1))
                with m.If(new_sample):
                    wrap = sample == n_samples - 1
                    m.d.sync += [sample.eq(Mux(wrap, 0, sample + 1)),
                                 x_base.eq(Mux(wrap, 0, x_base + first.cols))]
                with m.If(self.run & ~stop_after):
                    m.d.sync += [state.eq(PASS), *start_layer(0)]
                with m.Else():
                    m.d.sync += state.eq(IDLE)
        codes.advance(m, state == NEXT)

        m.d.comb += [
            self.busy.eq((state != IDLE) & (state != CLEAR)),
            self.done.eq((state == IDLE) & at_limit),
            self.updated.eq((state == NEXT) & upd),
            self.ctilde.eq(ct_reg),
            self.cycle.eq(cycle),
        ]

        # -- parameter read port: one cycle of latency --
        lane_d = Signal.like(self.param_lane)
        sel_d = Signal(range(max(n_layers, 2)))
        m.d.sync += lane_d.eq(self.param_lane)
        datas = []
        for l, (off, lx, port) in enumerate(user_reads):
            m.d.comb += port.addr.eq(self.param_row - off)
            inside = self.param_row < off + lx.rows
            if off:
                inside = inside & (self.param_row >= off)
            with m.If(inside):
                m.d.sync += sel_d.eq(l)
            datas.append(port.data.word_select(lane_d, tb).as_signed()
                         if lx.lanes > 1 else port.data.as_signed())
        m.d.comb += self.param_data.eq(Array(datas)[sel_d])

        # -- verification taps --
        # Two shift-register traces, each pulsing *_valid for one cycle when full, so
        # the testbench wakes once per chunk: the perturbed costs with the cycle each
        # first shows on ``cost``, and the parameters after each update with the cycle
        # of its NEXT. The oldest entry is in the lowest bits; a partial chunk's
        # *_count newest entries are at the top.
        if self.trace_depth:
            shadow = Cat(*shadow_parts)
            m.d.comb += self.theta_shadow.eq(shadow)
            self._trace(m, (state == COST) & ~is_base, [(c_val, self.trace_costs),
                                                         (cycle + 1, self.trace_cycles)],
                        self.trace_count, self.trace_valid, self.trace_depth)
            self._trace(m, self.updated, [(shadow, self.upd_thetas), (cycle, self.upd_cycles)],
                        self.upd_count, self.upd_valid, self.theta_depth)
        return m

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
                       run: int = 0) -> Trainer:
    """The trainer of ``cfg`` with the memory images of run ``run``: ``data`` (the task
    in the hardware formats, loaded once by the caller) in the model's sample order,
    and the model's initial parameters.

    Raises ``DataError`` (one line) when the data set does not fit the sample memory
    or the network.
    """
    from golden_model.trainer_image import trainer_image

    image = trainer_image(cfg, data, run)
    return Trainer(cfg, image.theta0, image.x_train, image.t_train, trace_depth=trace_depth)
