"""Weight-update units: gradient accumulators G, optional momentum V, parameters theta.

The bit-exact, cycle-level specification is ``golden_model.weight_update.WeightUpdateModel``;
the formats, rounding and saturation rules are in docs/hardware_contract.md. Every width
and shift comes from the config (``cfg.hw``), nothing is copied by hand.

Two versions share one datapath for a group of parameters (:func:`lane_datapath`):

- :class:`WeightUpdateParallel` (``hw.lanes == 0``): N copies of the datapath, every
  command takes effect at its own edge, all of theta on one flat bus;
- :class:`WeightUpdateSerial` (``hw.lanes == P``): P copies, state in memories of N/P
  rows of P lanes, one row per cycle; theta is read through a synchronous read port.

:func:`weight_update` picks the version from the config (the ``weight_update`` top of
gateware.generate).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.hw_spec import HwSpec, as_spec

from .fixed import counter_add, divmod_const, lanes, popcount, saturate, shift_round

__all__ = ["WeightUpdateParallel", "WeightUpdateSerial", "lane_accumulate", "lane_apply",
           "lane_datapath", "lane_update", "weight_update"]


def lane_datapath(m: Module, h, name: str, theta, g, v, neg, active, ct, ct_valid, update):
    """One parameter's next state: the arithmetic of ``WeightUpdateModel._apply``.

    ``theta``/``g``/``v`` are the current values (signed theta_bits, g_bits, v_bits; ``v``
    is None when momentum is off), ``neg``/``active`` its code bits, ``ct`` the signed
    C~, ``ct_valid``/``update`` the command. Returns (theta', g', v', g_flags,
    theta_flag): g_flags is the list of saturation flags counted in ``sat_g`` (the
    accumulation, and the momentum when on), each already gated by its command.
    """
    # accumulate: G + s * C~, s in {-1, 0, +1}; -C~ needs one more bit
    prod = Signal(signed(h.ctilde_bits + 1), name=f"{name}_sct")
    m.d.comb += prod.eq(Mux(active, Mux(neg, -ct, ct), 0))
    return lane_update(m, h, name, theta, g, v, prod, ct_valid, update)


def lane_update(m: Module, h, name: str, theta, g, v, inc, inc_valid, update):
    """G <- sat(G + inc) when ``inc_valid``, then the update when ``update``.

    The part of :func:`lane_datapath` after the increment is formed; the on-chip
    trainer's node perturbation uses it with inc = D_j h_p (and its wider ``h``).
    Returns (theta', g', v', g_flags, theta_flag) like :func:`lane_datapath`. It is
    :func:`lane_accumulate` then :func:`lane_apply` in one cycle; the streaming
    trainer registers between the two.
    """
    g_acc, g_flag = lane_accumulate(m, h, name, g, inc, inc_valid)
    theta_next, g_next, v_next, v_flags, t_flag = lane_apply(m, h, name, theta, g_acc, v,
                                                             update)
    return theta_next, g_next, v_next, [g_flag, *v_flags], t_flag


def lane_accumulate(m: Module, h, name: str, g, inc, inc_valid) -> tuple[Signal, Value]:
    """G + inc, saturated to ``h.g_bits``, when ``inc_valid`` (else G). Returns
    (G', saturated), the flag already gated by ``inc_valid``."""
    gb = h.g_bits
    g_sum = Signal(signed(max(gb, len(inc)) + 1), name=f"{name}_gsum")
    m.d.comb += g_sum.eq(g + inc)
    g_sat, g_ovf = saturate(m, g_sum, gb, f"{name}_gsat")
    g_acc = Signal(signed(gb), name=f"{name}_gacc")
    m.d.comb += g_acc.eq(Mux(inc_valid, g_sat, g))
    return g_acc, inc_valid & g_ovf


def lane_apply(m: Module, h, name: str, theta, g_acc, v, update):
    """The update from an accumulated G when ``update``: V <- sat(V - (V >> k) + G)
    with momentum, theta <- sat(theta - round(G or V >> eta_shift)), G <- 0. Returns
    (theta', G', V', momentum flags, theta flag), flags gated by ``update``."""
    gb, vb, tb = h.g_bits, h.v_bits, h.theta_bits
    # momentum: V - (V >> k) + G (V - (V >> k) fits in vb + 1 bits, + G one more)
    v_next = None
    v_flags = []
    step_src = g_acc
    if h.momentum_shift:
        v_sum = Signal(signed(vb + 2), name=f"{name}_vsum")
        m.d.comb += v_sum.eq(v - (v >> h.momentum_shift) + g_acc)
        v_sat, v_ovf = saturate(m, v_sum, vb, f"{name}_vsat")
        v_flags.append(update & v_ovf)
        v_next = Signal(signed(vb), name=f"{name}_vnext")
        m.d.comb += v_next.eq(Mux(update, v_sat, v))
        step_src = v_sat

    # update: theta - round(src >> eta_shift), saturated
    src_w = len(step_src)
    step = Signal(signed(src_w + 1), name=f"{name}_step")
    m.d.comb += step.eq(shift_round(step_src, h.eta_shift, h.rounding))
    t_diff = Signal(signed(max(tb, src_w + 1) + 1), name=f"{name}_tdiff")
    m.d.comb += t_diff.eq(theta - step)
    t_sat, t_ovf = saturate(m, t_diff, tb, f"{name}_tsat")
    theta_next = Signal(signed(tb), name=f"{name}_tnext")
    g_next = Signal(signed(gb), name=f"{name}_gnext")
    m.d.comb += [
        theta_next.eq(Mux(update, t_sat, theta)),
        g_next.eq(Mux(update, 0, g_acc)),
    ]
    return theta_next, g_next, v_next, v_flags, update & t_ovf


def _common_ports(h) -> dict:
    n = h.n_params
    return {
        "neg": In(n),
        "active": In(n),
        "ct_valid": In(1),
        "ct": In(signed(h.ctilde_bits)),
        "update": In(1),
        "load_en": In(1),
        "load_addr": In(range(max(n, 2))),
        "load_data": In(signed(h.theta_bits)),
        "ready": Out(1),
        "sat_g": Out(h.counter_bits),
        "sat_theta": Out(h.counter_bits),
    }


# --------------------------------------------------------------------------------------
class WeightUpdateParallel(wiring.Component):
    """Fully parallel weight-update unit (``hw.lanes == 0``): N datapaths in registers.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware with ``hw.lanes == 0``. N = hw.n_params, TB =
        hw.theta_bits, CB = hw.counter_bits; G is hw.g_bits wide, V (only when
        hw.momentum_shift > 0) hw.v_bits.

    Ports
    -----
    neg, active : In(N)
        The codes, s_i = 0 if not active_i, else -1 if neg_i, else +1.
    ct_valid : In(1); ct : In(signed(hw.ctilde_bits))
        Accumulate G_i <- sat(G_i + s_i C~) at this edge.
    update : In(1)
        Update theta from G (or V) at this edge, after the accumulation; then G <- 0.
    load_en : In(1); load_addr : In(range(N)); load_data : In(signed(TB))
        Write theta[load_addr] at this edge, after the update (the load wins).
        Addresses >= N are ignored.
    ready : Out(1)
        Always 1.
    theta : Out(N * TB)
        The parameters, element i at bits [i TB, (i + 1) TB), two's complement.
    sat_g, sat_theta : Out(CB)
        Saturating counts of saturated elements (momentum saturations count in sat_g).

    Latency: every command and load is visible on ``theta`` and the counters in the
    cycle after its edge. No output depends combinationally on an input.
    """

    def __init__(self, cfg: MGDConfig | HwSpec):
        self.spec = as_spec(cfg)
        cfg = self.spec.cfg
        h = cfg.hw
        if h.lanes != 0:
            raise ValueError(
                f"WeightUpdateParallel needs hw.lanes = 0, not {h.lanes}; "
                "use WeightUpdateSerial (or weight_update(cfg))"
            )
        self.cfg = cfg
        ports = _common_ports(h)
        ports["theta"] = Out(h.n_params * h.theta_bits)
        super().__init__(ports)

    def elaborate(self, platform):
        h = self.cfg.hw
        n, tb = h.n_params, h.theta_bits
        m = Module()
        g_flags, t_flags, fields = [], [], []
        for i in range(n):
            theta = Signal(signed(tb), name=f"theta_{i}")
            g = Signal(signed(h.g_bits), name=f"g_{i}")
            v = Signal(signed(h.v_bits), name=f"v_{i}") if h.momentum_shift else None
            t_next, g_next, v_next, gf, tf = lane_datapath(
                m, h, f"p{i}", theta, g, v, self.neg[i], self.active[i], self.ct,
                self.ct_valid, self.update,
            )
            load_here = self.load_en & (self.load_addr == i)
            m.d.sync += [
                theta.eq(Mux(load_here, self.load_data, t_next)),
                g.eq(g_next),
            ]
            if v is not None:
                m.d.sync += v.eq(v_next)
            g_flags += gf
            t_flags.append(tf)
            fields.append(theta)

        m.d.sync += [
            self.sat_g.eq(counter_add(self.sat_g, popcount(g_flags))),
            self.sat_theta.eq(counter_add(self.sat_theta, popcount(t_flags))),
        ]
        m.d.comb += [self.ready.eq(1), self.theta.eq(Cat(*fields))]
        return m


# --------------------------------------------------------------------------------------
class WeightUpdateSerial(wiring.Component):
    """Time-multiplexed weight-update unit (``hw.lanes == P``): P datapaths, N/P rows.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware with ``hw.lanes = P > 0`` (P divides N). R = N / P
        rows; TB = hw.theta_bits, CB = hw.counter_bits.

    Ports
    -----
    neg, active, ct_valid, ct, update : In
        As :class:`WeightUpdateParallel`, but a command (ct_valid and/or update) is
        accepted only at an edge where ``ready`` is 1; codes, C~ and the flags are
        latched there.
    load_en : In(1); load_addr : In(range(N)); load_data : In(signed(TB))
        Write theta[load_addr]; taken only at an idle edge that accepts no command.
        Addresses >= N are ignored.
    ready : Out(1)
        0 during the R cycles after an accepted command (the sweep), else 1.
    rd_addr : In(range(N)); rd_data : Out(signed(TB))
        Read port: rd_data in cycle t + 1 shows theta[rd_addr of cycle t] as it was
        before the edge. Defined when no write to that parameter happens at the edge
        (always true for an edge in an idle cycle).
    sat_g, sat_theta : Out(CB)
        Saturating counts of saturated elements, incremented by each row's count at
        that row's edge.

    Latency: a command accepted at edge e0 writes row r (parameters [rP, (r+1)P)) at
    edge e0 + r + 1; ``ready`` is 1 again in the cycle after edge e0 + R, so a new
    command can be accepted every R + 1 cycles. A load is readable one cycle later.

    Memory contents (theta, G, V) start at zero at power-up but are not cleared by
    ``rst``; only the control registers and counters are.
    """

    def __init__(self, cfg: MGDConfig | HwSpec):
        self.spec = as_spec(cfg)
        cfg = self.spec.cfg
        h = cfg.hw
        if h.lanes == 0:
            raise ValueError(
                "WeightUpdateSerial needs hw.lanes > 0, not 0; use WeightUpdateParallel "
                "(or weight_update(cfg))"
            )
        self.cfg = cfg
        ports = _common_ports(h)
        ports["rd_addr"] = In(range(max(h.n_params, 2)))
        ports["rd_data"] = Out(signed(h.theta_bits))
        super().__init__(ports)

    # Microarchitecture
    # -----------------
    # Row r of each memory holds parameters [rP, (r+1)P), lane j at bits [j w, (j+1) w).
    # The theta memory has one write port (granularity TB: the sweep writes all P lanes,
    # a load one lane) and two synchronous, non-transparent read ports: ``sweep`` for
    # the datapath and ``rd`` for the user's read port. G and V have one sync read and
    # one write port each.
    #
    # Read/write pipelining of the sweep. A sync read port presents, in cycle c + 1, the
    # row whose address it saw in cycle c. The row a sweep needs first is always row 0,
    # so while idle the sweep ports keep address 0: at the accepting edge e0 they
    # capture row 0 (no write can happen at that edge: a load is dropped when a
    # command is accepted, as in the model), and in busy cycle r = 0 the datapath sees
    # row 0. In busy cycle r the ports are given r + 1 (0 in the last cycle), so row
    # r + 1 is captured at edge e0 + r + 1 - the edge that writes row r. Read and write
    # rows differ at every edge where the read data is used, so no bypass is needed and
    # transparency does not matter. Row r's datapath output goes to the write port in
    # busy cycle r and is written at edge e0 + r + 1, as the model's timing says.
    #
    # The codes are latched at e0 into N-bit shift registers that move down by P bits
    # per busy edge, so lane j always takes bit j: no N-to-P multiplexer. C~, ct_valid
    # and update are latched at e0 too.
    #
    # The user port ``rd`` reads row rd_addr // P and registers the lane rd_addr % P;
    # rd_data is that lane of the row (one cycle of latency, no combinational path from
    # rd_addr). It shows the memory before the edge, so it is exact whenever nothing is
    # written to that row at the edge, in particular at every idle edge.
    def elaborate(self, platform):
        m = Module()
        mem = self._memories(m)
        ctl = self._control(m)
        self._sweep(m, mem, ctl)
        self._read_port(m, mem)
        return m

    def _memories(self, m: Module) -> dict:
        """theta, G (and V) memories, rows of P lanes; their ports by name."""
        h = self.cfg.hw
        p, rows = h.lanes, h.n_params // h.lanes
        tb, gb, vb = h.theta_bits, h.g_bits, h.v_bits
        # (each port is bound to a local name first: that name is the Verilog's)
        m.submodules.theta_mem = theta_mem = memory.Memory(
            shape=unsigned(p * tb), depth=rows, init=[])
        m.submodules.g_mem = g_mem = memory.Memory(shape=unsigned(p * gb), depth=rows, init=[])
        t_sweep = theta_mem.read_port(domain="sync")
        t_user = theta_mem.read_port(domain="sync")
        t_wr = theta_mem.write_port(granularity=tb)  # a load writes one lane
        g_rd = g_mem.read_port(domain="sync")
        g_wr = g_mem.write_port()
        # the rows as ArrayLayout views of signed lanes (flat memory words underneath)
        ports = {"theta_rd": t_sweep, "theta_lanes": lanes(t_sweep.data, tb, p),
                 "theta_user": t_user, "theta_user_lanes": lanes(t_user.data, tb, p),
                 "theta_wr": t_wr, "g_rd": g_rd, "g_lanes": lanes(g_rd.data, gb, p),
                 "g_wr": g_wr}
        if h.momentum_shift:
            m.submodules.v_mem = v_mem = memory.Memory(
                shape=unsigned(p * vb), depth=rows, init=[])
            v_rd = v_mem.read_port(domain="sync")
            v_wr = v_mem.write_port()
            ports.update(v_rd=v_rd, v_lanes=lanes(v_rd.data, vb, p), v_wr=v_wr)
        return ports

    def _control(self, m: Module) -> dict:
        """The sweep's row counter and the command latched at the accepting edge."""
        h = self.cfg.hw
        n, p, rows = h.n_params, h.lanes, h.n_params // h.lanes
        ctl = {
            "busy": Signal(name="busy"),
            "row": Signal(range(max(rows, 2)), name="row"),
            "last": Signal(name="last"),
            "neg": Signal(n, name="neg_l"),
            "active": Signal(n, name="active_l"),
            "ct": Signal(signed(h.ctilde_bits), name="ct_l"),
            "ct_valid": Signal(name="ctv_l"),
            "update": Signal(name="upd_l"),
            "accept": Signal(name="accept"),
        }
        busy, row, last = ctl["busy"], ctl["row"], ctl["last"]
        m.d.comb += [
            last.eq(row == rows - 1),
            ctl["accept"].eq(~busy & (self.ct_valid | self.update)),
            self.ready.eq(~busy),
        ]
        with m.If(ctl["accept"]):
            m.d.sync += [
                busy.eq(1),
                row.eq(0),
                ctl["neg"].eq(self.neg),
                ctl["active"].eq(self.active),
                ctl["ct"].eq(self.ct),
                ctl["ct_valid"].eq(self.ct_valid),
                ctl["update"].eq(self.update),
            ]
        with m.Elif(busy):
            m.d.sync += [
                ctl["neg"].eq(ctl["neg"] >> p),
                ctl["active"].eq(ctl["active"] >> p),
                row.eq(Mux(last, 0, row + 1)),
            ]
            with m.If(last):
                m.d.sync += busy.eq(0)
        return ctl

    def _sweep(self, m: Module, mem: dict, ctl: dict) -> None:
        """P datapaths on the swept row; its write-back, or a load while idle."""
        h = self.cfg.hw
        n, p = h.n_params, h.lanes
        momentum = "v_rd" in mem
        busy, row = ctl["busy"], ctl["row"]
        # sweep reads: row 0 while idle, row r + 1 in busy cycle r
        next_row = Mux(busy & ~ctl["last"], row + 1, 0)
        for name in ("theta", "g", "v"):
            if f"{name}_rd" in mem:
                m.d.comb += mem[f"{name}_rd"].addr.eq(next_row)

        g_flags, t_flags, t_new, g_new, v_new = [], [], [], [], []
        for j in range(p):
            v = mem["v_lanes"][j] if momentum else None
            t_next, g_next, v_next, gf, tf = lane_datapath(
                m, h, f"lane{j}", mem["theta_lanes"][j], mem["g_lanes"][j], v,
                ctl["neg"][j], ctl["active"][j], ctl["ct"], ctl["ct_valid"], ctl["update"],
            )
            t_new.append(t_next)
            g_new.append(g_next)
            v_new.append(v_next)
            g_flags += [busy & f for f in gf]
            t_flags.append(busy & tf)

        # writes: the swept row while busy, else a load (one lane)
        load_row, load_lane = divmod_const(self.load_addr, p)
        load_ok = ~busy & ~ctl["accept"] & self.load_en & (self.load_addr < n)
        t_wr, g_wr = mem["theta_wr"], mem["g_wr"]
        m.d.comb += [
            t_wr.addr.eq(Mux(busy, row, load_row)),
            t_wr.data.eq(Mux(busy, Cat(*t_new), Cat(*[self.load_data] * p))),
            t_wr.en.eq(Mux(busy, (1 << p) - 1,
                           Mux(load_ok, Cat(*[load_lane == j for j in range(p)]), 0))),
            g_wr.addr.eq(row),
            g_wr.data.eq(Cat(*g_new)),
            g_wr.en.eq(busy),
        ]
        if momentum:
            v_wr = mem["v_wr"]
            m.d.comb += [v_wr.addr.eq(row), v_wr.data.eq(Cat(*v_new)), v_wr.en.eq(busy)]

        m.d.sync += [
            self.sat_g.eq(counter_add(self.sat_g, popcount(g_flags))),
            self.sat_theta.eq(counter_add(self.sat_theta, popcount(t_flags))),
        ]

    def _read_port(self, m: Module, mem: dict) -> None:
        """The user read port: row rd_addr // P now, its lane rd_addr % P a cycle later."""
        rd_row, rd_lane = divmod_const(self.rd_addr, self.cfg.hw.lanes)
        lane_d = Signal(range(max(self.cfg.hw.lanes, 2)))
        m.d.comb += mem["theta_user"].addr.eq(rd_row)
        m.d.sync += lane_d.eq(rd_lane)
        m.d.comb += self.rd_data.eq(mem["theta_user_lanes"][lane_d])


def weight_update(cfg: MGDConfig | HwSpec) -> WeightUpdateParallel | WeightUpdateSerial:
    """The weight-update unit for ``cfg``: parallel when hw.lanes = 0, else serial.

    Parameters
    ----------
    cfg : MGDConfig
        The configuration (or its spec); validated once by ``hw_spec``.
    """
    spec = as_spec(cfg)
    if spec.hw.lanes == 0:
        return WeightUpdateParallel(spec)
    return WeightUpdateSerial(spec)
