"""The Trainer in the Amaranth simulator against the bit-exact model (short runs).

The same comparisons as the cocotb testbench (sim/tb_trainer.py): every step's cost
on the cycle the schedule gives, the parameters and counters at every update, the
final state; here the testbench samples every cycle, which the Amaranth simulator
affords for a few hundred steps of a small network. It is the fast unit test of the
trainer; the cocotb one runs whole training runs under Verilator.
"""

from __future__ import annotations

import numpy as np

from gateware.tops import load_data
from golden_model.config import MGDConfig
from golden_model.datapath import HwData
from golden_model.hw_spec import trainer_spec
from golden_model.trainer import HwTrainer
from sim.amaranth_bench import run_testbench
from sim.tb_common import Mismatch, check
from sim.tb_trainer import TrainerRun


def check_trainer(cfg: MGDConfig, steps: int, run: int = 0, trace_depth: int = 4,
                  data: HwData | None = None) -> dict:
    """Simulate ``steps`` steps of the trainer of ``cfg``; raise :class:`Mismatch` at the
    first difference with the model. Returns the final counters and cycle.

    ``data``: the task in the hardware formats (loaded once here when not given).
    """
    from gateware.trainer import trainer_for_config

    spec = trainer_spec(cfg)
    data = load_data(cfg) if data is None else data
    dut = trainer_for_config(cfg, data, trace_depth=trace_depth, run=run)
    ref = TrainerRun(spec, data, run)
    # per-step costs of the whole (short) run from a second model
    costs = HwTrainer(cfg, data, run).advance(steps, record=True).cost
    sched, counters = spec.schedule, spec.counter_names
    cost_cycles = sched.cost_cycle(np.arange(steps))
    out: dict = {}

    async def bench(ctx) -> None:
        ctx.set(dut.run, 1)
        ctx.set(dut.step_limit, steps)
        step = 0
        for cycle in range(spec.step_cycles(steps) + 2):
            got_cycle = ctx.get(dut.cycle)
            check(cycle, "cycle", cycle, got_cycle)
            if step < steps and cycle == cost_cycles[step]:
                check(cycle, f"cost (step {step})", int(costs[step]), ctx.get(dut.cost))
                step += 1
            if ctx.get(dut.updated):
                n = ctx.get(dut.step_count)
                check(cycle, "updated (step)", int(sched.next_cycle(np.array([n]))[0]), cycle)
                ref.ensure(n + 1)
                theta = ref.theta_from_shadow(ctx.get(dut.theta_shadow))
                bad = np.flatnonzero(theta != ref.model.theta)
                if len(bad):
                    raise Mismatch(cycle, f"theta[{int(bad[0])}]", int(ref.model.theta[bad[0]]),
                                   int(theta[bad[0]]))
                want = ref.model.counters()
                for name in counters:
                    check(cycle, f"sat_{name}", want[name], ctx.get(getattr(dut, f"sat_{name}")))
            if ctx.get(dut.done):
                break
            await ctx.tick()
        ref.ensure(steps)
        check(cycle, "done", 1, ctx.get(dut.done))
        check(cycle, "step_count", steps, ctx.get(dut.step_count))
        check(cycle, "update_count", ref.model.updates, ctx.get(dut.update_count))
        check(cycle, "done cycle", spec.step_cycles(steps), cycle)
        want = ref.model.counters()
        for name in counters:
            check(cycle, f"sat_{name}", want[name], ctx.get(getattr(dut, f"sat_{name}")))
        out.update(want | {"cycle": cycle, "updates": ref.model.updates})

    run_testbench(dut, bench)
    return out
