"""One layer of the streaming trainer: its memories, its forward stage and its G frame.

Weights and biases sit in separate memories (theta, G, V and, for weight perturbation,
the key ROMs): row r = g C + c of the weight memory holds P * Q lanes (``hw_layout``,
stream order), row g of the bias memory P lanes. Both are read by two stages that run
at once, every slot:

- the forward stage issues row r on cycle r of the slot (the bias row with the
  group's last column), multiplies the (perturbed) weights by the inputs, sums each
  MAC's Q products in a registered adder tree, accumulates over the columns, adds the
  bias, narrows to z, adds the node code and applies the activation, writing the next
  layer's input buffer (``STAGE_CYCLES + tree`` cycles after the row; the timing is
  ``golden_model.stream_timing``);
- the G frame handles row r in two registered stages: on cycle r, G += s C~ (weight
  perturbation) or node perturbation's flush G += D h0 (``lane_accumulate``, G read
  on cycle r - 1); on cycle r + 1, at a window's end, the update (``lane_apply``,
  theta and V read on cycle r) and the write of the row. The forward stage reads row
  r on cycle r and r + II: the first read sees the old row, the second the new (with
  II = 1 the two meet on one edge and the forward port is transparent), so an update
  reaches every row between the same two evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory

from .datapath import activation, rescale
from .fixed import CodeGen, divmod_const, lanes, saturate
from .stream_control import RowCounter, StreamControl, delayed
from .trainer_layer import pack_lanes
from .weight_update import lane_accumulate, lane_apply

__all__ = ["StreamLayer", "StreamShared", "pipelined_sum"]


def pipelined_sum(m: Module, terms: list, name: str) -> Signal:
    """The sum of ``terms`` through a balanced adder tree with a register after every
    level: ceil(log2 len(terms)) cycles of latency (``stream_timing.tree_levels``)."""
    level = 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            s = Signal(signed(max(len(terms[i]), len(terms[i + 1])) + 1),
                       name=f"{name}_t{level}_{i // 2}")
            m.d.sync += s.eq(terms[i] + terms[i + 1])
            nxt.append(s)
        if len(terms) % 2:
            s = Signal(signed(len(terms[-1])), name=f"{name}_t{level}_{len(nxt)}")
            m.d.sync += s.eq(terms[-1])
            nxt.append(s)
        terms = nxt
        level += 1
    return terms[0]


@dataclass
class StreamShared:
    """What every layer reads or appends to: the config sections, the code generator,
    the sample memories' read ports (forward and G frame), the input buffers and the
    baseline-input rings, node perturbation's D registers, and the flags and output
    registers the trainer collects."""

    h: object
    h_wu: object
    node: bool
    acts: list
    codes: CodeGen
    x_rd: object
    x_rd_g: object | None
    t_rd: object
    bufs: list  # per layer: B buffers of n_in registers (layer 0: None)
    h0_ring: list  # per layer (node, l >= 1): ring entries of n_in registers
    z_flags: list
    act_flags: list
    g_flags: list
    t_flags: list
    d_flags: list
    outputs: list  # the last layer's (valid, group, y registers, sample)


class StreamLayer:
    """Layer ``l`` of :class:`gateware.stream_trainer.StreamTrainer` (module docstring).

    After construction: ``user_w`` / ``user_b`` are the parameter read ports (weights,
    biases), ``shadow`` the verification copy of the layer's parameters (rows in the
    stream layout, None without taps), ``update_done`` a 1-cycle strobe on the G
    frame's last write of an update.
    """

    def __init__(self, m: Module, l: int, lx, image, ctl: StreamControl, sh: StreamShared,
                 shadow: bool):
        self.l, self.lx, self.ctl, self.sh = l, lx, ctl, sh
        st = ctl.st
        self.rc = RowCounter(m, ctl, lx.groups * lx.cols, lx.cols, lx.groups, f"l{l}")
        self.F = ctl.meta[st.starts[l]]
        self.E = ctl.meta[st.delay + st.starts[l]]
        self.E_next = ctl.meta[st.delay + st.starts[l] - 1]
        self.tree = st.tree[l]
        self._memories(m, image)
        self._forward(m)
        self._g_frame(m, image if shadow else None)

    # --- memories -----------------------------------------------------------------
    def _memories(self, m: Module, image) -> None:
        l, lx, sh, rc = self.l, self.lx, self.sh, self.rc
        h = sh.h
        tb, gb, vb = h.theta_bits, sh.h_wu.g_bits, sh.h_wu.v_bits
        w_rows = lx.groups * lx.cols
        w_img = np.asarray(image)[:w_rows]
        b_img = np.asarray(image)[w_rows:][:, ::lx.q]  # the bias of lane k Q
        P, n = lx.p, lx.lanes

        def mem(name, width, depth, init=()):
            m.submodules[f"{name}{l}"] = mm = memory.Memory(
                shape=unsigned(width), depth=depth, init=list(init))
            return mm

        self.th_w = mem("theta_w", n * tb, w_rows, [pack_lanes(r, tb) for r in w_img])
        self.th_b = mem("theta_b", P * tb, lx.groups, [pack_lanes(r, tb) for r in b_img])
        self.g_w = mem("g_w", n * gb, w_rows)
        self.g_b = mem("g_b", P * gb, lx.groups)
        self.v_w = mem("v_w", n * vb, w_rows) if h.momentum_shift else None
        self.v_b = mem("v_b", P * vb, lx.groups) if h.momentum_shift else None
        # write ports first: the G frame's read ports are transparent for them
        self.wr = {}
        for key in ("th_w", "th_b", "g_w", "g_b", "v_w", "v_b"):
            mm = getattr(self, key)
            if mm is not None:
                self.wr[key] = mm.write_port()
        # The forward read ports: the G frame writes row r a cycle after the forward
        # stage reads it (stage B), so the evaluation reading then sees the old row.
        # With II = 1 that write falls on the edge the next evaluation reads row 0,
        # which must see it: transparent then (with II >= 2 the two never meet). The
        # user port is not transparent; the G frame's ports are, for its own writes
        # (a row written on the edge it is read again).
        tr = self.ctl.st.ii == 1
        self.fw_w = self.th_w.read_port(transparent_for=(self.wr["th_w"],) if tr else ())
        self.fw_b = self.th_b.read_port(transparent_for=(self.wr["th_b"],) if tr else ())
        self.user_w, self.user_b = self.th_w.read_port(), self.th_b.read_port()
        self.rd = {key: getattr(self, key).read_port(transparent_for=(self.wr[key],))
                   for key in self.wr}
        m.d.comb += [self.fw_w.addr.eq(rc.r), self.fw_b.addr.eq(rc.g)]
        # G is read a cycle ahead (stage A adds to it on the row's cycle), theta and V
        # on the row's cycle (stage B updates them on the next)
        for key, port in self.rd.items():
            ahead = key.startswith("g_")
            if key.endswith("_w"):
                m.d.comb += port.addr.eq(rc.ahead_r if ahead else rc.r)
            else:
                m.d.comb += port.addr.eq(rc.ahead_g if ahead else rc.g)
        self.keys_fw = self.keys_g = (None, None)
        if not sh.node:
            codes, kb = sh.codes, sh.codes.key_bits
            pmap = lx.param_map()

            def key_words(rows):
                return [pack_lanes([(codes.key(p) << 1) | 1 if p >= 0 else 0 for p in row],
                                   kb + 1) for row in rows]
            fw, gp = [], []
            for name, rows, addr, ahead in (
                    ("key_w", pmap[:w_rows], rc.r, rc.ahead_r),
                    ("key_b", pmap[w_rows:][:, ::lx.q], rc.g, rc.ahead_g)):
                if len(rows) == 1:
                    # one row (the layer fully parallel): constant keys, so a lane's
                    # code is an XOR of a few state bits instead of a masked parity
                    consts = [(codes.key(int(p)), 1) if p >= 0 else (0, 0) for p in rows[0]]
                    fw.append(consts)
                    gp.append(consts)
                    continue
                rom = mem(name, len(rows[0]) * (kb + 1), len(rows), key_words(rows))
                fw.append(rom.read_port())
                gp.append(rom.read_port())
                m.d.comb += [fw[-1].addr.eq(addr), gp[-1].addr.eq(ahead)]
            self.keys_fw, self.keys_g = tuple(fw), tuple(gp)

    def _lane_codes(self, port, count: int, state, valid) -> list:
        """(active, neg) of each lane of a key ROM word read on the previous cycle."""
        if port is None:
            return [(Const(0, 1), Const(0, 1))] * count
        if isinstance(port, list):  # constant (key, valid) per lane
            return [self.sh.codes.bits(key, Const(ok, 1) & valid, state) for key, ok in port]
        kb = self.sh.codes.key_bits
        fields = lanes(port.data, kb + 1, count)
        return [self.sh.codes.bits(fields[i][1:], fields[i][0] & valid, state)
                for i in range(count)]

    # --- forward stage ---------------------------------------------------------------
    def _inputs(self, m: Module):
        """The Q inputs of the issued row's column, registered (they arrive with the
        memory data): layer 0 from the sample memory, others from the input buffer of
        the evaluation in this stage."""
        l, lx, sh, rc = self.l, self.lx, self.sh, self.rc
        h = sh.h
        if l == 0:
            m.d.comb += sh.x_rd.addr.eq(self.F.sample * lx.cols + rc.c)
            return [lanes(sh.x_rd.data, h.x_bits, lx.q)[q] for q in range(lx.q)]
        bufs = sh.bufs[l]
        sel = self.rd_sel
        cols = Array([Cat(*buf[c * lx.q:(c + 1) * lx.q]) for buf in bufs
                      for c in range(lx.cols)])
        word = Signal(lx.q * h.act_bits, name=f"l{l}_in_word")
        m.d.sync += word.eq(cols[sel * lx.cols + rc.c])
        return [lanes(word, h.act_bits, lx.q)[q] for q in range(lx.q)]

    def buffer_index(self, m: Module, start: int, count: int, name: str) -> Signal:
        """Which of ``count`` buffers holds the evaluation a stage at slot offset
        ``start`` works on: its index mod count (the slot count minus ``start``)."""
        sel = Signal(range(max(count, 2)), name=f"l{self.l}_{name}_buf")
        ctl = self.ctl
        init = (-start - 1) % count  # becomes (0 - start) mod count at slot 0
        cnt = Signal(range(max(count, 2)), name=f"l{self.l}_{name}_cnt", init=init)
        with m.If(ctl.issue_edge):
            m.d.sync += cnt.eq(Mux(cnt == count - 1, 0, cnt + 1))
        m.d.comb += sel.eq(cnt)
        return sel

    def _forward(self, m: Module) -> None:
        l, lx, sh, rc, F = self.l, self.lx, self.sh, self.rc, self.F
        h, T = sh.h, self.tree
        in_frac = h.x_frac if l == 0 else h.act_frac
        amp, tb = 1 << h.amp_log2, h.theta_bits
        issue = Signal(name=f"l{l}_issue")
        m.d.comb += issue.eq(rc.valid & F.valid)
        pert = F.pert & ~Const(int(sh.node), 1)  # weight perturbation only
        if l > 0:
            bufs = sh.bufs[l]
            self.rd_sel = self.buffer_index(m, self.ctl.st.starts[l], len(bufs), "rd")
            if sh.node:
                # a baseline's inputs (complete when its slot starts) kept for the
                # segment's flush, in the ring entry of its segment
                ring = sh.h0_ring[l]
                cur = Array(Cat(*buf) for buf in bufs)[self.rd_sel]
                for i, entry in enumerate(ring):
                    with m.If(issue & (rc.r == 0) & F.base & (F.seg == i)):
                        m.d.sync += Cat(*entry).eq(cur)
        # cycle 1: memory data, inputs; the perturbed weights and the products
        pert1 = delayed(m, pert, 1, f"l{l}_pert")
        code1 = delayed(m, F.code, 1, f"l{l}_code")
        inputs = self._inputs(m)
        theta = lanes(self.fw_w.data, tb, lx.lanes)
        codes_w = self._lane_codes(self.keys_fw[0], lx.lanes, code1, pert1)
        rowsums = []
        for k in range(lx.p):
            prods = []
            for q in range(lx.q):
                lane = k * lx.q + q
                act_bit, neg_bit = codes_w[lane]
                w = Signal(signed(tb + 1), name=f"l{l}_w{lane}")
                m.d.comb += w.eq(theta[lane] + Mux(act_bit, Mux(neg_bit, -amp, amp), 0))
                p = Signal(signed(tb + 1 + len(inputs[q])), name=f"l{l}_p{lane}")
                m.d.sync += p.eq(w * inputs[q])
                prods.append(p)
            rowsums.append(pipelined_sum(m, prods, f"l{l}_m{k}"))
        # the bias (perturbed with weight perturbation), aligned with the accumulator
        bias = lanes(self.fw_b.data, tb, lx.p)
        codes_b = self._lane_codes(self.keys_fw[1], lx.p, code1, pert1)
        biases = []
        for k in range(lx.p):
            act_bit, neg_bit = codes_b[k]
            b = Signal(signed(tb + 1), name=f"l{l}_b{k}")
            m.d.comb += b.eq(bias[k] + Mux(act_bit, Mux(neg_bit, -amp, amp), 0))
            biases.append(delayed(m, b, T + 2, f"l{l}_b{k}"))
        # cycle 2 + T: accumulate over the group's columns
        v_acc = delayed(m, issue, 2 + T, f"l{l}_vacc")
        first_c = delayed(m, rc.c == 0, 2 + T, f"l{l}_first")
        last_c = delayed(m, rc.last_c, 2 + T, f"l{l}_last")
        accs = []
        for k in range(lx.p):
            acc = Signal(signed(h.acc_bits), name=f"l{l}_acc{k}")
            with m.If(v_acc):
                m.d.sync += acc.eq(Mux(first_c, 0, acc) + rowsums[k])
            accs.append(acc)
        # cycle 3 + T: z of a finished group
        v_z = Signal(name=f"l{l}_vz")
        m.d.sync += v_z.eq(v_acc & last_c)
        zk = h.theta_frac + in_frac - h.z_frac
        zs = []
        for k in range(lx.p):
            wide = Signal(signed(h.acc_bits + 2), name=f"l{l}_zw{k}")
            m.d.comb += wide.eq(rescale(accs[k] + (biases[k] << in_frac), zk, h.z_rounding))
            z, zf = saturate(m, wide, h.z_bits, f"l{l}_zs{k}")
            sh.z_flags.append(v_z & zf)
            zr = Signal(signed(h.z_bits), name=f"l{l}_z{k}")
            m.d.sync += zr.eq(z)
            zs.append(zr)
        # cycle 4 + T: node code, activation; the outputs register at its end
        v_h = delayed(m, v_z, 1, f"l{l}_vh")
        g_h = delayed(m, rc.g, 4 + T, f"l{l}_gh")
        outs = []
        if sh.node:
            pert_h = delayed(m, F.pert, 4 + T, f"l{l}_perth")
            code_h = delayed(m, F.code, 4 + T, f"l{l}_codeh")
        for k in range(lx.p):
            zp = Signal(signed(h.z_bits + 1), name=f"l{l}_zp{k}")
            if sh.node:
                bits = [sh.codes.bits(sh.codes.key(lx.node_offset + gg * lx.p + k),
                                      state=code_h) for gg in range(lx.groups)]
                sel = Array([Cat(a, ng) for a, ng in bits])[g_h] if lx.groups > 1 \
                    else Cat(*bits[0])
                m.d.comb += zp.eq(zs[k] + Mux(pert_h & sel[0], Mux(sel[1], -amp, amp), 0))
            else:
                m.d.comb += zp.eq(zs[k])
            y, af = activation(m, sh.acts[l], zp, h, f"l{l}_h{k}")
            sh.act_flags.append(v_h & af)
            outs.append(y)
        if l + 1 < self.ctl.n_layers:
            bufs = sh.bufs[l + 1]
            wsel = delayed(m, self.buffer_index(m, self.ctl.st.starts[l], len(bufs), "wr"),
                           4 + T, f"l{l}_wsel")
            for b, buf in enumerate(bufs):
                for g in range(lx.groups):
                    with m.If(v_h & (g_h == g) & (wsel == b)):
                        m.d.sync += [buf[g * lx.p + k].eq(outs[k]) for k in range(lx.p)]
            return
        ys = [Signal(signed(h.act_bits), name=f"y{k}") for k in range(lx.p)]
        v_y, g_y = Signal(name="y_valid"), Signal.like(g_h, name="y_group")
        m.d.sync += [v_y.eq(v_h), g_y.eq(g_h)] + [ys[k].eq(outs[k]) for k in range(lx.p)]
        # the target is read a cycle before y forms and registered (the cost's t_q)
        sample_h = delayed(m, F.sample, 3 + T, "sample_h")
        m.d.comb += sh.t_rd.addr.eq(sample_h)
        base_y = delayed(m, F.base, 5 + T, "base_y")
        sh.outputs.append((v_y, g_y, ys, base_y))

    # --- G frame ---------------------------------------------------------------------
    def _increments(self, m: Module, bias: bool) -> tuple[list, object, object]:
        """Each lane's increment, its valid and the update flag, for the weight rows or
        the bias rows of the row written on this cycle."""
        l, lx, sh, rc, E = self.l, self.lx, self.sh, self.rc, self.E
        h = sh.h
        count = lx.p if bias else lx.lanes
        valid = rc.valid & E.valid & E.pert & (rc.last_c if bias else Const(1, 1))
        update = valid & E.win_end
        if not sh.node:
            codes = self._lane_codes(self.keys_g[1 if bias else 0], count, E.code, 1)
            incs = []
            for i, (act_bit, neg_bit) in enumerate(codes):
                inc = Signal(signed(h.ctilde_bits + 1), name=f"l{l}_sct{'b' if bias else 'w'}{i}")
                m.d.comb += inc.eq(Mux(act_bit, Mux(neg_bit, -E.ct, E.ct), 0))
                incs.append(inc)
            return incs, valid, update
        flush = valid & (E.seg_end | E.win_end)
        dsel = [Array(self.D[g * lx.p + k] for g in range(lx.groups))[rc.g]
                if lx.groups > 1 else self.D[k] for k in range(lx.p)]
        incs = []
        gw = sh.h_wu.g_bits + 1
        if bias:
            for k in range(lx.p):
                inc = Signal(signed(gw), name=f"l{l}_fb{k}")
                m.d.comb += inc.eq(dsel[k] << h.act_frac)
                incs.append(inc)
            return incs, flush, update
        if l == 0:
            x = lanes(sh.x_rd_g.data, h.x_bits, lx.q)
            hin = [x[q] << (h.act_frac - h.x_frac) for q in range(lx.q)]
        else:
            ring = Array(Cat(*entry) for entry in sh.h0_ring[l])[E.seg]
            word = Array(ring[c * lx.q * h.act_bits:(c + 1) * lx.q * h.act_bits]
                         for c in range(lx.cols))[rc.c] if lx.cols > 1 else ring
            hin = [lanes(word, h.act_bits, lx.q)[q] for q in range(lx.q)]
        for k in range(lx.p):
            for q in range(lx.q):
                inc = Signal(signed(gw), name=f"l{l}_fw{k * lx.q + q}")
                m.d.comb += inc.eq(dsel[k] * hin[q])
                incs.append(inc)
        return incs, flush, update

    def _node_d(self, m: Module) -> None:
        """Node perturbation: D_j += s_j C~ of the evaluation the G frame takes next (at
        the slot's last cycle), after a flush clears it."""
        l, lx, sh, ctl = self.l, self.lx, self.sh, self.ctl
        h = sh.h
        self.D = [Signal(signed(h.g_bits), name=f"d{l}_{j}") for j in range(lx.n_out)]
        nxt, cur = self.E_next, self.E
        # C~ joins its record at depth `delay` on this very edge: layer 0's next record
        # (depth delay - 1) does not hold it yet, so read the register it comes from.
        nxt_ct = ctl.ct_in if self.ctl.st.starts[l] == 0 else nxt.ct
        flushed = cur.valid & cur.pert & (cur.seg_end | cur.win_end)
        add = ctl.issue_edge & nxt.valid & nxt.pert
        for j in range(lx.n_out):
            act_bit, neg_bit = sh.codes.bits(sh.codes.key(lx.node_offset + j), state=nxt.code)
            base = Mux(flushed, 0, self.D[j])
            dsum = Signal(signed(max(h.g_bits, h.ctilde_bits + 1) + 1), name=f"dsum{l}_{j}")
            m.d.comb += dsum.eq(base + Mux(act_bit, Mux(neg_bit, -nxt_ct, nxt_ct), 0))
            dv, df = saturate(m, dsum, h.g_bits, f"dsat{l}_{j}")
            with m.If(ctl.issue_edge):
                m.d.sync += self.D[j].eq(Mux(add, dv, base))
            sh.d_flags.append(add & df)

    def _g_frame(self, m: Module, shadow_image) -> None:
        """Two registered stages, one row per cycle. Stage A, on row r's cycle r: G +
        the increment, saturated (``lane_accumulate``; G read on cycle r - 1). Stage B,
        on cycle r + 1: the update from the registered G (``lane_apply``; theta and V
        read on cycle r), and the write of theta, G and V. Splitting the lane's one
        long path (increment, G, rounding, theta, saturations) halves it; the writes
        land a cycle later than the forward stage's read of row r, which the module
        docstring shows changes nothing an evaluation sees. With II = 1 the row stage
        A reads is the one stage B writes on the same cycle: G is forwarded."""
        l, lx, sh, rc, ctl = self.l, self.lx, self.sh, self.rc, self.ctl
        h = sh.h
        if sh.node:
            self._node_d(m)
            if l == 0:
                nxt_sample = Mux(ctl.issue_edge, self.E_next.sample, self.E.sample)
                m.d.comb += sh.x_rd_g.addr.eq(nxt_sample * lx.cols + rc.ahead_c)
        clearing = ctl.clearing & ~ctl.running
        forward_g = ctl.st.ii == 1
        new_rows = {}
        for part in ("w", "b"):
            bias = part == "b"
            count = lx.p if bias else lx.lanes
            addr = rc.g if bias else rc.r
            incs, inc_valid, update = self._increments(m, bias)
            th = lanes(self.rd[f"th_{part}"].data, h.theta_bits, count)
            g_mem = lanes(self.rd[f"g_{part}"].data, sh.h_wu.g_bits, count)
            v = (lanes(self.rd[f"v_{part}"].data, sh.h_wu.v_bits, count)
                 if h.momentum_shift else None)
            # stage A -> B registers
            write_q = Signal(name=f"l{l}{part}_write_q")
            update_q = Signal(name=f"l{l}{part}_update_q")
            addr_q = Signal.like(addr, name=f"l{l}{part}_addr_q")
            m.d.sync += [write_q.eq((inc_valid | update) & ~clearing),
                         update_q.eq(update & ~clearing), addr_q.eq(addr)]
            new_t, new_g, new_v = [], [], []
            for i in range(count):
                acc_q = Signal(signed(sh.h_wu.g_bits), name=f"l{l}{part}{i}_gacc_q")
                t_next, g_next, v_next, v_flags, tf = lane_apply(
                    m, sh.h_wu, f"l{l}{part}{i}", th[i], acc_q,
                    v[i] if v is not None else None, update_q)
                g_in = Mux(write_q, g_next, g_mem[i]) if forward_g else g_mem[i]
                g_acc, gf = lane_accumulate(m, sh.h_wu, f"l{l}{part}{i}", g_in, incs[i],
                                            inc_valid)
                m.d.sync += acc_q.eq(g_acc)
                sh.g_flags.extend([gf, *v_flags])
                sh.t_flags.append(tf)
                new_t.append(t_next)
                new_g.append(Mux(clearing, 0, g_next))
                if v is not None:
                    new_v.append(Mux(clearing, 0, v_next))
            clear_en = clearing & (ctl.clear_row < (lx.groups if bias else lx.groups * lx.cols))
            wr_addr = Mux(clearing, ctl.clear_row, addr_q)
            m.d.comb += [
                self.wr[f"th_{part}"].addr.eq(addr_q),
                self.wr[f"th_{part}"].data.eq(Cat(*new_t)),
                self.wr[f"th_{part}"].en.eq(update_q),
                self.wr[f"g_{part}"].addr.eq(wr_addr),
                self.wr[f"g_{part}"].data.eq(Cat(*new_g)),
                self.wr[f"g_{part}"].en.eq(write_q | clear_en),
            ]
            if v is not None:
                m.d.comb += [
                    self.wr[f"v_{part}"].addr.eq(wr_addr),
                    self.wr[f"v_{part}"].data.eq(Cat(*new_v)),
                    self.wr[f"v_{part}"].en.eq(update_q | clear_en),
                ]
            new_rows[part] = (new_t, update_q, addr_q)
        last_row_q = Signal(name=f"l{l}_last_row_q")
        m.d.sync += last_row_q.eq(rc.r == lx.groups * lx.cols - 1)
        self.update_done = Signal(name=f"l{l}_update_done")
        m.d.comb += self.update_done.eq(new_rows["w"][1] & last_row_q)
        self.shadow = None
        if shadow_image is not None:
            self._shadow(m, shadow_image, new_rows)

    def _shadow(self, m: Module, image, new_rows: dict) -> None:
        """The verification copy of the layer's parameters (stream layout rows, the
        bias of neuron g P + k in lane k Q of bias row g), written with the memories."""
        lx, tb = self.lx, self.sh.h.theta_bits
        w_rows = lx.groups * lx.cols
        self.shadow = Signal(lx.rows * lx.lanes * tb, name=f"theta_shadow{self.l}",
                             init=pack_lanes(np.asarray(image).ravel(), tb))
        new_t, update, addr = new_rows["w"]
        with m.If(update):
            m.d.sync += self.shadow.word_select(addr, lx.lanes * tb).eq(Cat(*new_t))
        new_b, update_b, addr_b = new_rows["b"]
        padded = []
        for k in range(lx.p):
            padded.append(new_b[k])
            padded.extend([Const(0, signed(tb))] * (lx.q - 1))
        with m.If(update_b):
            m.d.sync += self.shadow.word_select(w_rows + addr_b, lx.lanes * tb).eq(
                Cat(*padded))

    def user_data(self, m: Module, row, lane_d, is_bias_d):
        """The parameter read port's data: the weight lane or, in a bias row, the bias
        of lane k Q (0 elsewhere)."""
        tb, lx = self.sh.h.theta_bits, self.lx
        w = lanes(self.user_w.data, tb, lx.lanes)[lane_d] if lx.lanes > 1 \
            else self.user_w.data.as_signed()
        k, q = divmod_const(lane_d, lx.q)
        b = lanes(self.user_b.data, tb, lx.p)[k] if lx.p > 1 else self.user_b.data.as_signed()
        return Mux(is_bias_d, Mux(q == 0, b, 0), w)
