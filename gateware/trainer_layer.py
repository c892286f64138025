"""One layer of the on-chip trainer: its memories, its pass pipeline and its sweep.

Each layer has its own parameter memory (rows of P * Q lanes, ``hw_layout``), a G
memory (and V with momentum), for weight perturbation a key ROM of the same shape, and
P MAC units of Q multipliers. :class:`LayerUnit` builds them for layer l of
:class:`gateware.trainer.Trainer`; the control signals come from
:class:`gateware.trainer_control.TrainerControl`, the shared values (input registers,
codes, C~, D) from the trainer through :class:`Shared`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory

from golden_model.fixed import pack_signed

from .datapath import activation, rescale
from .fixed import CodeGen, lanes, saturate, tree_sum
from .trainer_control import TrainerControl
from .weight_update import lane_update

__all__ = ["LayerUnit", "Shared", "pack_lanes"]


def pack_lanes(values, width: int) -> int:
    """Lane values as one memory word, lane i at bits [i w, (i + 1) w)."""
    return pack_signed(np.asarray(values, np.int64).ravel(), width)


@dataclass
class Shared:
    """What every layer reads: the config sections, the code generator, the sample
    memory read ports, the input registers h (this pass) and h0 (the segment's
    baseline, node perturbation), the node codes, D and the latched C~; and the
    saturation flags and cost terms every layer appends to."""

    h: object  # cfg.hw
    h_wu: object  # cfg.hw as the update sees it (node: G carries the act LSB too)
    node: bool
    acts: list
    codes: CodeGen
    x_rd: object
    t_rd: object
    h_regs: list
    h0_regs: list | None
    node_codes: list
    D: list
    ct_reg: Signal
    z_flags: list
    act_flags: list
    g_flags: list
    t_flags: list
    cost_terms: list


class LayerUnit:
    """Layer ``l``: memories, stage 1 (MAC), stage 2 (z, activation, outputs), sweep.

    After construction: ``user_read`` is the theta memory's parameter read port,
    ``shadow`` the verification copy of the layer's parameters (None without taps).
    """

    def __init__(self, m: Module, l: int, lx, mem_init, ctl: TrainerControl, sh: Shared,
                 shadow: bool):
        self.l, self.lx, self.ctl, self.sh = l, lx, ctl, sh
        self._memories(m, mem_init)
        self.s1_here = ctl.s1_valid & (ctl.s1_layer == l)
        self.lane_codes = self._lane_codes()
        self._pass(m)
        self._sweep(m, mem_init if shadow else None)

    def _memories(self, m: Module, mem_init) -> None:
        """theta, G (V) and key memories; every sweep/pass port reads row ``t``."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        h, n_lanes = sh.h, lx.lanes
        tb, gb, vb = h.theta_bits, sh.h_wu.g_bits, sh.h_wu.v_bits
        m.submodules[f"theta{l}"] = theta_mem = memory.Memory(
            shape=unsigned(n_lanes * tb), depth=lx.rows,
            init=[pack_lanes(r, tb) for r in mem_init])
        m.submodules[f"g{l}"] = g_mem = memory.Memory(
            shape=unsigned(n_lanes * gb), depth=lx.rows, init=[])
        th_rd, th_user, th_wr = (theta_mem.read_port(), theta_mem.read_port(),
                                 theta_mem.write_port())
        g_rd, g_wr = g_mem.read_port(), g_mem.write_port()
        self.th_rd, self.th_wr, self.g_rd, self.g_wr = th_rd, th_wr, g_rd, g_wr
        self.user_read = th_user
        self.theta = lanes(th_rd.data, tb, n_lanes)
        self.g = lanes(g_rd.data, gb, n_lanes)
        m.d.comb += [th_rd.addr.eq(ctl.t), g_rd.addr.eq(ctl.t)]
        self.v_rd = self.v_wr = self.v = None
        if h.momentum_shift:
            m.submodules[f"v{l}"] = v_mem = memory.Memory(
                shape=unsigned(n_lanes * vb), depth=lx.rows, init=[])
            v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
            self.v_rd, self.v_wr, self.v = v_rd, v_wr, lanes(v_rd.data, vb, n_lanes)
            m.d.comb += v_rd.addr.eq(ctl.t)
        self.key_rd = None
        if not sh.node:
            codes, kb = sh.codes, sh.codes.key_bits
            keys = [pack_lanes([(codes.key(p) << 1) | 1 if p >= 0 else 0 for p in row], kb + 1)
                    for row in lx.param_map()]
            m.submodules[f"key{l}"] = key_mem = memory.Memory(
                shape=unsigned(n_lanes * (kb + 1)), depth=lx.rows, init=keys)
            key_rd = key_mem.read_port()
            self.key_rd = key_rd
            m.d.comb += key_rd.addr.eq(ctl.t)

    def _lane_codes(self) -> list:
        """(active, neg) of every lane of the row read at the previous edge (weight
        perturbation: its key field, valid bit first; node: none)."""
        if self.key_rd is None:
            return [(Const(0, 1), Const(0, 1))] * self.lx.lanes
        kb = self.sh.codes.key_bits
        fields = lanes(self.key_rd.data, kb + 1, self.lx.lanes)
        return [self.sh.codes.bits(fields[i][1:], fields[i][0]) for i in range(self.lx.lanes)]

    def row_inputs(self, regs, q_lane: int):
        """Input q of the row's lanes: layer 0 from the sample memory, others from the
        registers ``regs`` (h in a pass, h0 in a node-perturbation sweep)."""
        sh, lx = self.sh, self.lx
        if self.l == 0:
            return lanes(sh.x_rd.data, sh.h.x_bits, lx.q)[q_lane]
        cols = Array([Cat(*regs[c * lx.q:(c + 1) * lx.q]) for c in range(lx.cols)])
        return lanes(cols[self.ctl.s1_c], sh.h.act_bits, lx.q)[q_lane]

    def _pass(self, m: Module) -> None:
        """Stage 1: acc_k = sum over rows of sum_q (theta + a s) h, restarting at column
        0 (the bias row's lane q = 0 input is 1.0). Stage 2: the layer's outputs."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        h = sh.h
        in_bits, in_frac = (h.x_bits, h.x_frac) if l == 0 else (h.act_bits, h.act_frac)
        amp, tb = 1 << h.amp_log2, h.theta_bits
        one_in = Const(1 << in_frac, signed(in_bits + 1))
        pass_in = []
        for q in range(lx.q):
            v = Signal(signed(in_bits + 1), name=f"l{l}_in{q}")
            m.d.comb += v.eq(Mux(ctl.s1_last, one_in if q == 0 else 0,
                                 self.row_inputs(sh.h_regs[l], q)))
            pass_in.append(v)
        accs = []
        for k in range(lx.p):
            acc = Signal(signed(h.acc_bits), name=f"l{l}_acc{k}")
            terms = []
            for q in range(lx.q):
                lane = k * lx.q + q
                act_bit, neg_bit = self.lane_codes[lane]
                pert = Mux(ctl.perturbed & act_bit,
                           Mux(neg_bit, Const(-amp, signed(tb + 1)),
                               Const(amp, signed(tb + 1))), 0)
                w = Signal(signed(tb + 1), name=f"l{l}_w{lane}")
                m.d.comb += w.eq(self.theta[lane] + pert)
                terms.append(w * pass_in[q])
            with m.If(self.s1_here & ctl.in_pass):
                m.d.sync += acc.eq(Mux(ctl.s1_c == 0, 0, acc) + tree_sum(terms))
            accs.append(acc)
        self._outputs(m, accs, in_frac)

    def _outputs(self, m: Module, accs: list, in_frac: int) -> None:
        """Stage 2: z, node code, activation; write the next layer's inputs (the output
        layer adds (y - t)^2 to the cost)."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        h, ab = sh.h, sh.h.act_bits
        s2_here = ctl.s2_valid & (ctl.s2_layer == l)
        zk = h.theta_frac + in_frac - h.z_frac
        outs = []
        for k, acc in enumerate(accs):
            wide = Signal(signed(h.acc_bits + 1), name=f"l{l}_zw{k}")
            m.d.comb += wide.eq(rescale(acc, zk, h.z_rounding))
            z, zf = saturate(m, wide, h.z_bits, f"l{l}_z{k}")
            sh.z_flags.append(s2_here & zf)
            zp = Signal(signed(h.z_bits + 1), name=f"l{l}_zp{k}")
            if sh.node:
                amp = 1 << h.amp_log2
                group = Array([Cat(*sh.node_codes[lx.node_offset + g * lx.p + k])
                               for g in range(lx.groups)])[ctl.s2_g]
                n_act, n_neg = group[0], group[1]
                m.d.comb += zp.eq(z + Mux(ctl.perturbed & n_act, Mux(n_neg, -amp, amp), 0))
            else:
                m.d.comb += zp.eq(z)
            y, af = activation(m, sh.acts[l], zp, h, f"l{l}_h{k}")
            sh.act_flags.append(s2_here & af)
            outs.append(y)
        if l + 1 < ctl.n_layers:
            for i in range(lx.n_out):
                g, k = divmod(i, lx.p)
                with m.If(s2_here & (ctl.s2_g == g)):
                    m.d.sync += sh.h_regs[l + 1][i].eq(outs[k])
                    if sh.node:
                        with m.If(ctl.is_base):
                            m.d.sync += sh.h0_regs[l + 1][i].eq(outs[k])
            return
        targets = lanes(sh.t_rd.data, ab, lx.n_out)
        group = Array([Cat(*[targets[g * lx.p + k] for k in range(lx.p)])
                       for g in range(lx.groups)])[ctl.s2_g]
        for k, y in enumerate(outs):
            e = Signal(signed(ab + 1), name=f"err{k}")
            m.d.comb += e.eq(y - lanes(group, ab, lx.p)[k])
            sh.cost_terms.append(e * e)

    def _increment(self, m: Module, lane: int):
        """What G accumulates in lane ``lane``: s C~ (weight perturbation) or D_j h0_p
        (node perturbation; h0 in act LSBs, layer 0: x shifted, bias: 1.0)."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        h, ab = sh.h, sh.h.act_bits
        k, q = divmod(lane, lx.q)
        if not sh.node:
            act_bit, neg_bit = self.lane_codes[lane]
            inc = Signal(signed(h.ctilde_bits + 1), name=f"l{l}_sct{lane}")
            m.d.comb += inc.eq(Mux(act_bit, Mux(neg_bit, -sh.ct_reg, sh.ct_reg), 0))
            return inc
        dsel = Array([sh.D[lx.node_offset + gg * lx.p + k] for gg in range(lx.groups)])[ctl.s1_g]
        if l == 0:
            x_in = self.row_inputs(None, q) << (h.act_frac - h.x_frac)
        else:
            x_in = self.row_inputs(sh.h0_regs[l], q)
        hin = Signal(signed(ab + 1), name=f"l{l}_fin{lane}")
        bias_in = Const(1 << h.act_frac, signed(ab + 1)) if q == 0 else 0
        m.d.comb += hin.eq(Mux(ctl.s1_last, bias_in, x_in))
        inc = Signal(signed(sh.h_wu.g_bits + 1), name=f"l{l}_inc{lane}")  # D h: G's width
        m.d.comb += inc.eq(dsel * hin)
        return inc

    def _sweep(self, m: Module, shadow_init) -> None:
        """SWEEP write stage: the lane datapath of the weight-update unit writes the row
        read at the previous edge back (CLEAR writes zero G and V)."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        s1_sweep = self.s1_here & ctl.in_sweep
        clearing = ctl.clearing
        new_theta, new_g, new_v = [], [], []
        for lane in range(lx.lanes):
            v = self.v[lane] if self.v is not None else None
            t_next, g_next, v_next, gf, tf = lane_update(
                m, sh.h_wu, f"l{l}_u{lane}", self.theta[lane], self.g[lane], v,
                self._increment(m, lane), ~clearing, ctl.upd & ~clearing)
            sh.g_flags.extend(s1_sweep & f for f in gf)
            sh.t_flags.append(s1_sweep & tf)
            new_theta.append(t_next)
            new_g.append(Mux(clearing, 0, g_next))
            if v is not None:
                new_v.append(Mux(clearing, 0, v_next))
        m.d.comb += [
            self.th_wr.addr.eq(ctl.s1_row), self.th_wr.data.eq(Cat(*new_theta)),
            self.th_wr.en.eq(s1_sweep),
            self.g_wr.addr.eq(ctl.s1_row), self.g_wr.data.eq(Cat(*new_g)),
            self.g_wr.en.eq(s1_sweep),
        ]
        if self.v_wr is not None:
            m.d.comb += [self.v_wr.addr.eq(ctl.s1_row), self.v_wr.data.eq(Cat(*new_v)),
                         self.v_wr.en.eq(s1_sweep)]
        self.shadow = None
        if shadow_init is not None:
            tb = sh.h.theta_bits
            self.shadow = Signal(lx.rows * lx.lanes * tb, name=f"theta_shadow{l}",
                                 init=pack_lanes(np.asarray(shadow_init).ravel(), tb))
            with m.If(s1_sweep & ctl.upd & ~clearing):
                m.d.sync += self.shadow.word_select(ctl.s1_row, lx.lanes * tb).eq(
                    Cat(*new_theta))
