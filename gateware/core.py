"""MGDCore: perturbation generator, cost accumulator and weight-update unit wired
together for chip-in-the-loop training. The bit-exact specification, including the
handshake and every cycle of the scheduler, is golden_model.core.MGDCoreModel."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import MGDConfig
from golden_model.core import IDLE, MEASURE, WAIT_CT, WAIT_WU

from .cost_acc import CostAcc
from .perturb_gen import PerturbGen
from .weight_update import weight_update


def _sat_inc(counter: Signal, inc) -> object:
    """counter + inc, saturating at the counter's maximum."""
    top = (1 << len(counter)) - 1
    return Mux(counter == top, counter, counter + inc)


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
    cost_valid : In(1); cost_ready : Out(1); cost : In(signed(hw.cost_bits))
        The cost stream: 2^batch_log2 samples answer one measurement.
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

    def __init__(self, cfg: MGDConfig):
        cfg.validate_hardware()
        self.cfg = cfg
        h = cfg.hw
        n, tb, cb = h.n_params, h.theta_bits, h.counter_bits
        ports = {
            "enable": In(1),
            "param_valid": Out(1),
            "param_baseline": Out(1),
            "cost_valid": In(1),
            "cost_ready": Out(1),
            "cost": In(signed(h.cost_bits)),
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
        cfg, h, mg = self.cfg, self.cfg.hw, self.cfg.mgd
        n, tb = h.n_params, h.theta_bits
        amp = 1 << h.amp_log2
        batch = 1 << h.batch_log2
        discrete = h.highpass_shift == 0
        m = Module()
        m.submodules.gen = gen = PerturbGen(cfg)
        m.submodules.acc = acc = CostAcc(cfg)
        m.submodules.wu = wu = weight_update(cfg)

        state = Signal(range(4), init=IDLE)
        baseline = Signal(init=int(discrete))
        restart = Signal(init=1)
        got = Signal(range(max(batch, 2)))
        x_cnt = Signal(range(max(mg.tau_x, 2)))
        th_cnt = Signal(range(max(mg.tau_theta, 2)))
        sample_next = Signal()
        step_count = Signal.like(self.step_count)
        update_count = Signal.like(self.update_count)

        # -- handshakes: the same expressions as MGDCoreModel.tick --
        measuring = state == MEASURE
        wu_ready = wu.ready
        accept = measuring & self.cost_valid & acc.in_ready
        last = accept & (got == batch - 1)
        handoff = (state == WAIT_CT) & acc.out_valid & wu_ready
        update = handoff & (th_cnt == mg.tau_theta - 1)
        new_sample = handoff & (x_cnt == mg.tau_x - 1)

        m.d.comb += [
            acc.in_valid.eq(measuring & self.cost_valid),
            acc.in_cost.eq(self.cost),
            acc.in_baseline.eq(baseline),
            acc.in_restart.eq(restart),
            acc.out_ready.eq((state == WAIT_CT) & wu_ready),
            wu.neg.eq(gen.neg),
            wu.active.eq(gen.active),
            wu.ct_valid.eq(handoff),
            wu.ct.eq(acc.out_ctilde),
            wu.update.eq(update),
            wu.load_en.eq(self.load_en & (state == IDLE)),
            wu.load_addr.eq(self.load_addr),
            wu.load_data.eq(self.load_data),
            gen.step.eq(handoff),
            self.param_valid.eq(measuring),
            self.param_baseline.eq(baseline),
            self.cost_ready.eq(measuring & acc.in_ready),
            self.sample_next.eq(sample_next),
            self.busy.eq(state != IDLE),
            self.step_count.eq(step_count),
            self.update_count.eq(update_count),
            self.sat_ctilde.eq(acc.sat_count),
            self.sat_g.eq(wu.sat_g),
            self.sat_theta.eq(wu.sat_theta),
        ]

        # -- parameters out: theta + s * amp, one bit wider so it cannot overflow --
        def perturbed(theta_i, i):
            s = Mux(gen.active[i], Mux(gen.neg[i], Const(-amp, signed(tb + 1)),
                                       Const(amp, signed(tb + 1))), 0)
            return theta_i + Mux(baseline, 0, s)

        if h.lanes == 0:
            fields = []
            for i in range(n):
                theta_i = wu.theta[i * tb : (i + 1) * tb].as_signed()
                p = Signal(signed(tb + 1), name=f"param_{i}")
                m.d.comb += p.eq(perturbed(theta_i, i))
                fields.append(p)
            m.d.comb += [self.params.eq(Cat(*fields)), self.theta.eq(wu.theta)]
        else:
            addr_d = Signal.like(self.param_addr)
            m.d.sync += addr_d.eq(self.param_addr)
            m.d.comb += wu.rd_addr.eq(self.param_addr)
            s = Mux(gen.active.bit_select(addr_d, 1),
                    Mux(gen.neg.bit_select(addr_d, 1), Const(-amp, signed(tb + 1)),
                        Const(amp, signed(tb + 1))), 0)
            m.d.comb += [
                self.theta_data.eq(wu.rd_data),
                self.param_data.eq(wu.rd_data + Mux(baseline, 0, s)),
            ]

        # -- scheduler --
        m.d.sync += sample_next.eq(new_sample)
        with m.If(accept):
            m.d.sync += got.eq(Mux(last, 0, got + 1))
        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(self.enable):
                    m.d.sync += state.eq(MEASURE)
            with m.Case(MEASURE):
                with m.If(last):
                    with m.If(baseline):
                        m.d.sync += baseline.eq(0)
                    with m.Else():
                        m.d.sync += [state.eq(WAIT_CT), restart.eq(0)]
            with m.Case(WAIT_CT):
                with m.If(handoff):
                    m.d.sync += [
                        step_count.eq(_sat_inc(step_count, 1)),
                        th_cnt.eq(Mux(update, 0, th_cnt + 1)),
                        x_cnt.eq(Mux(new_sample, 0, x_cnt + 1)),
                        state.eq(WAIT_WU if h.lanes else IDLE),
                    ]
                    with m.If(update):
                        m.d.sync += update_count.eq(_sat_inc(update_count, 1))
                    with m.If(new_sample):
                        m.d.sync += restart.eq(1)
                    if discrete:
                        with m.If(update | new_sample):
                            m.d.sync += baseline.eq(1)
            with m.Case(WAIT_WU):
                with m.If(wu_ready):
                    m.d.sync += state.eq(IDLE)
        return m
