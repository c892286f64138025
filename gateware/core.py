"""MGDCore: perturbation generator, cost accumulator and weight-update unit wired
together for chip-in-the-loop training. The bit-exact specification, including the
handshake and every cycle of the scheduler, is golden_model.core.MGDCoreModel."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.core import STATE_NAMES
from golden_model.hw_spec import HwSpec, as_spec

from .cost_acc import CostAcc
from .fixed import counter_add, lanes
from .perturb_gen import PerturbGen
from .weight_update import weight_update


class MGDCore(wiring.Component):
    """MGD for an outside network: parameters out, costs in, updates on chip.

    Parameters
    ----------
    cfg : MGDConfig
        Validated for hardware. N = hw.n_params, TB = hw.theta_bits,
        CB = hw.counter_bits.

    Ports
    -----
    enable : In(1)
        Run steps; sampled when idle, so a step in progress always completes.
    param_valid, param_baseline : Out(1)
        A measurement is requested; baseline = the unperturbed parameters.
    params : Out(N * (TB + 1))
        (hw.lanes = 0) theta_i + s_i 2^amp_log2 (or theta_i), field i at
        [i (TB + 1), (i + 1)(TB + 1)); one bit wider than theta, so never saturated.
    theta : Out(N * TB)
        (hw.lanes = 0) the parameters.
    param_addr : In(range(N)); param_data : Out(signed(TB + 1)); theta_data :
        Out(signed(TB))
        (hw.lanes > 0) read port, data one cycle after the address.
    cost : In(stream.Signature(signed(hw.cost_bits)))
        The cost stream (Verilog ``cost__valid``, ``cost__ready``, ``cost__payload``):
        2^batch_log2 samples answer one measurement.
    sample_next : Out(1)
        One-cycle pulse after the step that ends a training sample.
    load_en, load_addr, load_data : In
        Write one parameter; honoured only while idle.
    busy : Out(1); step_count, update_count, sat_ctilde, sat_g, sat_theta : Out(CB)
        Status; all counters saturate.

    Latency: a measurement ends at the edge that accepts its last cost sample; C~ is
    handed over one cycle later, and that edge also steps the generator and (every
    tau_theta steps) updates theta. The scheduler then idles for one cycle
    (parallel unit) or for the N / lanes cycles of the sweep plus one.
    """

    def __init__(self, cfg: MGDConfig | HwSpec):
        self.spec = as_spec(cfg)
        cfg = self.spec.cfg
        self.cfg = cfg
        h = cfg.hw
        n, tb, cb = h.n_params, h.theta_bits, h.counter_bits
        ports = {
            "enable": In(1),
            "param_valid": Out(1),
            "param_baseline": Out(1),
            "cost": In(stream.Signature(signed(h.cost_bits))),
            "sample_next": Out(1),
            "load_en": In(1),
            "load_addr": In(range(max(n, 2))),
            "load_data": In(signed(tb)),
            "busy": Out(1),
            "step_count": Out(cb),
            "update_count": Out(cb),
            "sat_ctilde": Out(cb),
            "sat_g": Out(cb),
            "sat_theta": Out(cb),
        }
        if h.lanes == 0:
            ports["params"] = Out(n * (tb + 1))
            ports["theta"] = Out(n * tb)
        else:
            ports["param_addr"] = In(range(max(n, 2)))
            ports["param_data"] = Out(signed(tb + 1))
            ports["theta_data"] = Out(signed(tb))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.gen = gen = PerturbGen(self.cfg)
        m.submodules.acc = acc = CostAcc(self.cfg)
        m.submodules.wu = wu = weight_update(self.cfg)
        with m.FSM(init="IDLE") as fsm:
            # MGDCoreModel's states, named in its order (so encoded 0, 1, 2, 3)
            for state in STATE_NAMES:
                fsm.ongoing(state)
            ctl = self._control(fsm, acc, wu)
            self._states(m, ctl, wu)
        self._wiring(m, fsm, ctl, gen, acc, wu)
        self._params_out(m, gen, wu, ctl.baseline)
        return m

    def _control(self, fsm, acc, wu) -> SimpleNamespace:
        """The scheduler's registers and the handshake expressions of MGDCoreModel.tick."""
        h, mg = self.cfg.hw, self.cfg.mgd
        batch = 1 << h.batch_log2
        ctl = SimpleNamespace(
            # the sideband of the measurement in progress
            baseline=Signal(init=int(h.highpass_shift == 0), name="baseline"),
            restart=Signal(init=1, name="restart"),
            got=Signal(range(max(batch, 2)), name="got"),
            x_cnt=Signal(range(max(mg.tau_x, 2)), name="x_cnt"),
            th_cnt=Signal(range(max(mg.tau_theta, 2)), name="th_cnt"),
            sample_next=Signal(name="sample_next"),
            step_count=Signal.like(self.step_count, name="step_count"),
            update_count=Signal.like(self.update_count, name="update_count"),
        )
        ctl.measuring = fsm.ongoing("MEASURE")
        ctl.accept = ctl.measuring & self.cost.valid & acc.cost.ready
        ctl.last = ctl.accept & (ctl.got == batch - 1)
        ctl.handoff = fsm.ongoing("WAIT_CT") & acc.ctilde.valid & wu.ready
        ctl.update = ctl.handoff & (ctl.th_cnt == mg.tau_theta - 1)
        ctl.new_sample = ctl.handoff & (ctl.x_cnt == mg.tau_x - 1)
        return ctl

    def _wiring(self, m: Module, fsm, ctl, gen, acc, wu) -> None:
        """The blocks' handshakes and the status outputs."""
        m.d.comb += [
            acc.cost.valid.eq(ctl.measuring & self.cost.valid),
            acc.cost.payload.value.eq(self.cost.payload),
            acc.cost.payload.baseline.eq(ctl.baseline),
            acc.cost.payload.restart.eq(ctl.restart),
            acc.ctilde.ready.eq(fsm.ongoing("WAIT_CT") & wu.ready),
            wu.neg.eq(gen.neg),
            wu.active.eq(gen.active),
            wu.ct_valid.eq(ctl.handoff),
            wu.ct.eq(acc.ctilde.payload),
            wu.update.eq(ctl.update),
            wu.load_en.eq(self.load_en & fsm.ongoing("IDLE")),
            wu.load_addr.eq(self.load_addr),
            wu.load_data.eq(self.load_data),
            gen.step.eq(ctl.handoff),
            self.param_valid.eq(ctl.measuring),
            self.param_baseline.eq(ctl.baseline),
            self.cost.ready.eq(ctl.measuring & acc.cost.ready),
            self.sample_next.eq(ctl.sample_next),
            self.busy.eq(~fsm.ongoing("IDLE")),
            self.step_count.eq(ctl.step_count),
            self.update_count.eq(ctl.update_count),
            self.sat_ctilde.eq(acc.sat_count),
            self.sat_g.eq(wu.sat_g),
            self.sat_theta.eq(wu.sat_theta),
        ]
        m.d.sync += ctl.sample_next.eq(ctl.new_sample)
        with m.If(ctl.accept):
            m.d.sync += ctl.got.eq(Mux(ctl.last, 0, ctl.got + 1))

    def _params_out(self, m: Module, gen, wu, baseline) -> None:
        """theta + s * amp (one bit wider, so it cannot overflow) and theta: flat buses
        (parallel unit) or the read port (time-multiplexed unit)."""
        h = self.cfg.hw
        tb, amp = h.theta_bits, 1 << h.amp_log2

        def offset(active, neg):
            s = Mux(active, Mux(neg, Const(-amp, signed(tb + 1)), Const(amp, signed(tb + 1))),
                    0)
            return Mux(baseline, 0, s)

        if h.lanes == 0:
            fields = []
            for i, theta_i in enumerate(lanes(wu.theta, tb, h.n_params)):
                p = Signal(signed(tb + 1), name=f"param_{i}")
                m.d.comb += p.eq(theta_i + offset(gen.active[i], gen.neg[i]))
                fields.append(p)
            m.d.comb += [self.params.eq(Cat(*fields)), self.theta.eq(wu.theta)]
        else:
            addr_d = Signal.like(self.param_addr)
            m.d.sync += addr_d.eq(self.param_addr)
            m.d.comb += [
                wu.rd_addr.eq(self.param_addr),
                self.theta_data.eq(wu.rd_data),
                self.param_data.eq(wu.rd_data + offset(gen.active.bit_select(addr_d, 1),
                                                       gen.neg.bit_select(addr_d, 1))),
            ]

    def _states(self, m: Module, ctl, wu) -> None:
        """The scheduler FSM: measure (baseline first when due), hand C~ over, step."""
        h = self.cfg.hw
        with m.State("IDLE"):
            with m.If(self.enable):
                m.next = "MEASURE"
        with m.State("MEASURE"):
            with m.If(ctl.last):
                with m.If(ctl.baseline):
                    m.d.sync += ctl.baseline.eq(0)
                with m.Else():
                    m.d.sync += ctl.restart.eq(0)
                    m.next = "WAIT_CT"
        with m.State("WAIT_CT"):
            with m.If(ctl.handoff):
                m.d.sync += [
                    ctl.step_count.eq(counter_add(ctl.step_count, 1)),
                    ctl.th_cnt.eq(Mux(ctl.update, 0, ctl.th_cnt + 1)),
                    ctl.x_cnt.eq(Mux(ctl.new_sample, 0, ctl.x_cnt + 1)),
                ]
                m.next = "WAIT_WU" if h.lanes else "IDLE"
                with m.If(ctl.update):
                    m.d.sync += ctl.update_count.eq(counter_add(ctl.update_count, 1))
                with m.If(ctl.new_sample):
                    m.d.sync += ctl.restart.eq(1)
                if h.highpass_shift == 0:  # discrete: a new baseline after either
                    with m.If(ctl.update | ctl.new_sample):
                        m.d.sync += ctl.baseline.eq(1)
        with m.State("WAIT_WU"):
            with m.If(wu.ready):
                m.next = "IDLE"
