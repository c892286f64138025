"""cocotb testbench: a whole training run of the Trainer against the bit-exact model.

Autonomous: Python drives nothing per cycle. The clock runs in the simulator (cocotb's
GPI clock), ``run`` is held high with ``step_limit`` = the run's steps, and the
testbench sleeps until one of three events of the design's verification taps:

- ``trace_valid``: K more perturbed costs are in ``trace_costs``; they are compared
  with the model's costs of those steps, and ``cycle`` with the cycle on which the
  last of them was due (``hw_layout.Schedule.cost_cycle``);
- ``updated``: an update has written every parameter; ``theta_shadow`` is compared
  with the model's parameters after that step, ``cycle`` with
  ``Schedule.next_cycle``, and every saturation counter with the model's;
- ``done``: the step limit is reached; the last partial chunk of costs, the final
  counters and parameters are compared.

The model (``hw_train.HwTrainer``) advances one window at a time as the events come,
so memory stays bounded however long the run. The first mismatch fails the test with
``cycle C: signal S: expected E, got A``. The outcome (accuracy of the trained
parameters, cycles, rates) goes to ``trainer_result.json`` in the test directory for
``mgd-hw sim`` to print.

MGD_EXTRA: ``steps``, ``run`` (run index: the image's seed), ``trace_depth`` (K, as
the design was built with), ``result`` (where to write the JSON).
"""

from __future__ import annotations

import hashlib
import json
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge

from golden_model.datasets import load_dataset
from golden_model.hw_layout import Schedule, TrainerLayout
from golden_model.hw_network import HwData, evaluate
from golden_model.hw_train import HwTrainer
from sim.tb_common import CLOCK_NS, Mismatch, check, config_from_env

COUNTERS = ("z", "act", "cost", "ctilde", "d", "g", "theta")


def unpack_fields(bus: int, count: int, width: int) -> np.ndarray:
    """``count`` signed fields of ``width`` bits of a flat bus, field 0 lowest."""
    raw = bus.to_bytes((count * width + 7) // 8 + 1, "little")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:count * width]
    weights = (1 << np.arange(width, dtype=np.int64))
    vals = bits.reshape(count, width).astype(np.int64) @ weights
    return np.where(vals >> (width - 1) != 0, vals - (1 << width), vals)


class TrainerRun:
    """The model side of one run: the model advanced on demand, its costs kept only
    until the testbench has compared them."""

    def __init__(self, cfg, data: HwData, run: int):
        self.cfg = cfg
        self.model = HwTrainer(cfg, data, run)
        self.sched = Schedule(cfg)
        self.layout = TrainerLayout(cfg)
        self.costs = np.zeros(0, np.int64)  # costs of steps cost_base .. model.n - 1
        self.cost_base = 0

    def ensure(self, n: int) -> None:
        """Advance the model to step n (exclusive) if it is not there yet."""
        if self.model.n < n:
            trace = self.model.advance(n - self.model.n, record=True)
            self.costs = np.concatenate([self.costs, trace.cost])

    def take_costs(self, first: int, count: int) -> np.ndarray:
        """The model's costs of steps first .. first + count - 1 (then forgotten)."""
        self.ensure(first + count)
        lo = first - self.cost_base
        out = self.costs[lo:lo + count]
        self.costs = self.costs[lo + count:]
        self.cost_base = first + count
        return out

    def theta_from_shadow(self, bus: int) -> np.ndarray:
        lay = self.layout
        tb = self.cfg.hw.theta_bits
        vals = unpack_fields(bus, sum(x.rows * x.lanes for x in lay.layers), tb)
        parts, pos = [], 0
        for x in lay.layers:
            parts.append(vals[pos:pos + x.rows * x.lanes].reshape(x.rows, x.lanes))
            pos += x.rows * x.lanes
        return lay.from_memory(parts)


def _check_counters(dut, run: TrainerRun, cycle: int) -> None:
    want = run.model.counters()
    for name in COUNTERS:
        check(cycle, f"sat_{name}", want[name], getattr(dut, f"sat_{name}").value.to_unsigned())


def _check_costs(dut, run: TrainerRun, first: int, got: np.ndarray, cycle: int) -> None:
    want = run.take_costs(first, len(got))
    bad = np.flatnonzero(want != got)
    if len(bad):
        i = int(bad[0])
        step_cycle = int(run.sched.cost_cycle(np.array([first + i]))[0])
        raise Mismatch(step_cycle, f"cost (step {first + i})", int(want[i]), int(got[i]))


@cocotb.test()
async def trainer_training_run(dut):
    cfg, _, _, extra = config_from_env()
    steps, k_depth = int(extra["steps"]), int(extra["trace_depth"])
    h = cfg.hw
    data = HwData.from_dataset(load_dataset(cfg.task, cfg.seed), h)
    run = TrainerRun(cfg, data, int(extra.get("run", 0)))
    lay = run.layout
    # sizes read back from the design must be the model's
    assert len(dut.theta_shadow) == sum(x.rows * x.lanes for x in lay.layers) * h.theta_bits
    assert len(dut.trace_costs) == k_depth * h.cost_bits
    assert len(dut.cost) == h.cost_bits

    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    dut.run.value = 0
    dut.step_limit.value = steps
    dut.ld_x_en.value = 0
    dut.ld_t_en.value = 0
    dut.param_row.value = 0
    dut.param_lane.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    dut.run.value = 1

    start = time.perf_counter()
    chunks = updates = 0
    while True:
        await First(RisingEdge(dut.trace_valid), RisingEdge(dut.updated), RisingEdge(dut.done))
        await ReadOnly()
        cycle = dut.cycle.value.to_unsigned()
        if dut.trace_valid.value:
            first = chunks * k_depth
            got = unpack_fields(dut.trace_costs.value.to_unsigned(), k_depth, h.cost_bits)
            check(cycle, "cycle (trace chunk)",
                  int(run.sched.cost_cycle(np.array([first + k_depth - 1]))[0]), cycle)
            _check_costs(dut, run, first, got, cycle)
            chunks += 1
        if dut.updated.value:
            n = dut.step_count.value.to_unsigned()
            check(cycle, "cycle (update)", int(run.sched.next_cycle(np.array([n]))[0]), cycle)
            run.ensure(n + 1)
            if run.model.n != n + 1:
                raise Mismatch(cycle, "step_count (update)", run.model.n - 1, n)
            got = run.theta_from_shadow(dut.theta_shadow.value.to_unsigned())
            want = run.model.theta
            bad = np.flatnonzero(got != want)
            if len(bad):
                raise Mismatch(cycle, f"theta[{int(bad[0])}] (update {updates + 1})",
                               int(want[bad[0]]), int(got[bad[0]]))
            _check_counters(dut, run, cycle)
            updates += 1
        if dut.done.value:
            break
    seconds = time.perf_counter() - start

    # the tail: a partial chunk of costs, then everything once more
    run.ensure(steps)
    rest = dut.trace_count.value.to_unsigned()
    if rest:
        bus = dut.trace_costs.value.to_unsigned() >> ((k_depth - rest) * h.cost_bits)
        _check_costs(dut, run, chunks * k_depth, unpack_fields(bus, rest, h.cost_bits), cycle)
    check(cycle, "step_count", steps, dut.step_count.value.to_unsigned())
    check(cycle, "update_count", run.model.updates, dut.update_count.value.to_unsigned())
    _check_counters(dut, run, cycle)
    theta = run.theta_from_shadow(dut.theta_shadow.value.to_unsigned())
    if run.model.updates and not np.array_equal(theta, run.model.theta):
        bad = int(np.flatnonzero(theta != run.model.theta)[0])
        raise Mismatch(cycle, f"theta[{bad}] (final)", int(run.model.theta[bad]), int(theta[bad]))
    end_cycle = int(run.sched.step_start(np.array([steps]))[0])
    check(cycle, "cycle (done)", end_cycle, cycle)

    net = run.model.net
    cost, train_acc = evaluate(net, theta, data.x_train, data.t_train, data.labels_train)
    _, test_acc = evaluate(net, theta, data.x_test, data.t_test, data.labels_test)
    result = {
        "steps": steps,
        "updates": updates,
        "cycles": cycle,
        "trace_chunks": chunks,
        "seconds": round(seconds, 3),
        "cycles_per_second": round(cycle / max(seconds, 1e-9)),
        "train_cost": cost,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "counters": run.model.counters(),
        "theta_sha256": hashlib.sha256(theta.astype("<i8").tobytes()).hexdigest(),
    }
    with open(extra["result"], "w") as f:
        json.dump(result, f)
