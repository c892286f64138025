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
from sim.tb_trainer import TrainerRun, shadow_to_theta


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
    if spec.stream is not None:
        return _check_stream(dut, spec, data, steps, run)
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


def _check_stream(dut, spec, data: HwData, steps: int, run: int) -> dict:
    """``check_trainer`` for the streaming trainer: every perturbed cost on its
    evaluation's cost cycle, every update's parameters on its commit cycle, the
    counters and the done cycle at the end (its counters run ahead of its updates)."""
    model = HwTrainer(spec.cfg, data, run, record_theta_every=1)
    trace = model.advance(steps, record=True)
    st, counters = spec.stream, spec.counter_names
    cost_at = dict(zip(st.cost_cycle(trace.evals).tolist(), enumerate(trace.cost.tolist()),
                       strict=True))
    commits = [int(st.commit_cycle(e)) for e in model.update_evals]
    thetas = [theta for _, theta in model.thetas]
    done_cycle = int(st.done_cycle(trace.evals[-1]))
    out: dict = {}

    async def bench(ctx) -> None:
        ctx.set(dut.run, 1)
        ctx.set(dut.step_limit, steps)
        u = 0
        for cycle in range(done_cycle + 1):
            check(cycle, "cycle", cycle, ctx.get(dut.cycle))
            if cycle in cost_at:
                n, want = cost_at[cycle]
                check(cycle, f"cost (step {n})", want, ctx.get(dut.cost))
            if ctx.get(dut.updated):
                check(cycle, f"updated (update {u + 1})", commits[u] if u < len(commits)
                      else -1, cycle)
                theta = shadow_to_theta(spec.layout, ctx.get(dut.theta_shadow),
                                        spec.cfg.hw.theta_bits)
                bad = np.flatnonzero(theta != thetas[u])
                if len(bad):
                    raise Mismatch(cycle, f"theta[{int(bad[0])}] (update {u + 1})",
                                   int(thetas[u][bad[0]]), int(theta[bad[0]]))
                u += 1
            if ctx.get(dut.done):
                break
            await ctx.tick()
        check(cycle, "done cycle", done_cycle, cycle)
        check(cycle, "step_count", steps, ctx.get(dut.step_count))
        check(cycle, "update_count", model.updates, ctx.get(dut.update_count))
        check(cycle, "updates compared", model.updates, u)
        want = model.counters()
        for name in counters:
            check(cycle, f"sat_{name}", want[name], ctx.get(getattr(dut, f"sat_{name}")))
        out.update(want | {"cycle": cycle, "updates": model.updates})

    run_testbench(dut, bench)
    return out
