"""cocotb testbench: a whole training run of the Trainer against the bit-exact model.

Autonomous: Python drives nothing per cycle. The clock runs in the simulator (cocotb's
GPI clock), ``run`` is held high with ``step_limit`` = the run's steps, and the
testbench sleeps until one of three events of the design's verification taps
(gateware.trainer, "verification taps"):

- ``trace_valid``: K more perturbed costs, each with the cycle on which it first
  showed on ``cost``, are in ``trace_costs``/``trace_cycles``; both are compared with
  the model's costs and the spec's ``Schedule.cost_cycle``;
- ``upd_valid``: U more updates, each with the parameters it left and the cycle of its
  NEXT, are in ``upd_thetas``/``upd_cycles``; each is compared with the model's
  parameters after that update and ``Schedule.next_cycle``, and every saturation
  counter with the model's after the chunk's last update;
- ``done``: the step limit is reached; the partial chunks, the final counters, the
  update count and the final cycle are compared.

The model runs in a worker process (sim/model_worker.py) on the other core and
streams its results through a pipe, so the simulator does not wait for it and memory
stays bounded however long the run. The first mismatch fails the test with ``cycle
C: signal S: expected E, got A``. The outcome (accuracy of the trained parameters,
cycles, rates) goes to a JSON file in the build folder for ``mgd-hw sim`` to print.

MGD_EXTRA: ``steps``, ``run`` (run index: the images' seed), ``trace_depth`` (K, as
the design was built with), ``result`` (the JSON file), ``python`` (the interpreter
for the worker). MGD_DATA: the data file the design was built from (sim.data_file),
read here for the final accuracy and by the model worker.
"""

from __future__ import annotations

import hashlib
import json
import resource
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from gateware.trainer import CYCLE_BITS
from golden_model.datapath import HwData, HwMLP, evaluate
from golden_model.hw_layout import TrainerLayout
from golden_model.hw_spec import HwSpec, hw_spec
from golden_model.trainer import HwTrainer
from sim.data_file import read_data
from sim.model_worker import ModelStream
from sim.tb_common import CLOCK_NS, Mismatch, check, config_from_env, data_path_from_env


def unpack_fields(bus: int, count: int, width: int, signed: bool = True) -> np.ndarray:
    """``count`` fields of ``width`` bits (two's complement unless ``signed`` is False)
    of a flat bus, field 0 lowest."""
    raw = bus.to_bytes((count * width + 7) // 8 + 1, "little")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:count * width]
    weights = (1 << np.arange(width, dtype=np.int64))
    vals = bits.reshape(count, width).astype(np.int64) @ weights
    if not signed:
        return vals
    return np.where(vals >> (width - 1) != 0, vals - (1 << width), vals)


class TrainerRun:
    """An in-process model of one run, advanced on demand (the Amaranth-simulator check
    and the bare run's final check; the cocotb testbench streams from a worker)."""

    def __init__(self, spec: HwSpec, data: HwData, run: int):
        self.cfg = spec.cfg
        self.model = HwTrainer(spec.cfg, data, run)
        self.layout = spec.layout

    def ensure(self, n: int) -> None:
        """Advance the model to step n (exclusive) if it is not there yet."""
        if self.model.n < n:
            self.model.advance(n - self.model.n)

    def theta_from_shadow(self, bus: int) -> np.ndarray:
        return shadow_to_theta(self.layout, bus, self.cfg.hw.theta_bits)


def shadow_to_theta(layout: TrainerLayout, bus: int, theta_bits: int) -> np.ndarray:
    """The float-layout parameters held by a ``theta_shadow`` value (memory order)."""
    vals = unpack_fields(bus, sum(x.rows * x.lanes for x in layout.layers), theta_bits)
    parts, pos = [], 0
    for x in layout.layers:
        parts.append(vals[pos:pos + x.rows * x.lanes].reshape(x.rows, x.lanes))
        pos += x.rows * x.lanes
    return layout.from_memory(parts)


def _check_counters(dut, names: tuple[str, ...], want: dict[str, int], cycle: int) -> None:
    for name in names:
        check(cycle, f"sat_{name}", want[name], getattr(dut, f"sat_{name}").value.to_unsigned())


def _chunk(dut, prefix: str, depth: int, fields: list[tuple[str, int]], full: bool):
    """The entries of a trace chunk, oldest first: a full chunk (``*_valid``) or the
    ``*_count`` newest entries of a partial one. Returns one array per field."""
    count = depth if full else getattr(dut, f"{prefix}_count").value.to_unsigned()
    out = []
    for name, width in fields:
        bus = getattr(dut, name).value.to_unsigned() >> ((depth - count) * width)
        out.append(bus)
    return count, out


class Checker:
    """Compares the design's trace chunks with the model stream, in order.

    The two traces fill at different rates, so when one chunk shows a mismatch the
    other trace's pending (partial) entries are checked too, and the earlier of the
    two mismatches is reported: the first divergence, not the first chunk to fill.
    """

    def __init__(self, dut, spec: HwSpec, stream: ModelStream):
        self.dut, self.spec, self.stream = dut, spec, stream
        self.cfg, self.layout, self.sched = spec.cfg, spec.layout, spec.schedule
        self.steps_done = 0  # costs compared
        self.last_eval = 0  # streaming: the evaluation of the last cost compared
        self.updates_done = 0  # updates compared
        self.k = len(dut.trace_costs) // self.cfg.hw.cost_bits
        self.shadow_bits = len(dut.theta_shadow)
        self.u = len(dut.upd_thetas) // self.shadow_bits

    def costs(self, full: bool, cycle: int) -> None:
        self._first_of(self._costs, self._updates, full, cycle)

    def updates(self, full: bool, cycle: int) -> None:
        self._first_of(self._updates, self._costs, full, cycle)

    @staticmethod
    def _first_of(check_chunk, check_pending, full: bool, cycle: int) -> None:
        try:
            check_chunk(full, cycle)
        except Mismatch as first:
            try:
                check_pending(False, cycle)
            except Mismatch as other:
                if other.cycle < first.cycle:
                    raise other from None
            raise

    def _costs(self, full: bool, cycle: int) -> None:
        cb = self.cfg.hw.cost_bits
        count, (costs, cycles) = _chunk(self.dut, "trace", self.k,
                                        [("trace_costs", cb), ("trace_cycles", CYCLE_BITS)], full)
        if not count:
            return
        got = unpack_fields(costs, count, cb)
        got_cycles = unpack_fields(cycles, count, CYCLE_BITS, signed=False)
        steps = np.arange(self.steps_done, self.steps_done + count)
        want, evals = self.stream.costs(self.steps_done, count)
        if evals is not None:
            self.last_eval = int(evals[-1])
            want_cycles = self.spec.stream.cost_cycle(evals)
        else:
            want_cycles = self.sched.cost_cycle(steps)
        bad = np.flatnonzero(got_cycles != want_cycles)
        if len(bad):
            i = int(bad[0])
            raise Mismatch(int(got_cycles[i]), f"cost cycle (step {steps[i]})",
                           int(want_cycles[i]), int(got_cycles[i]))
        bad = np.flatnonzero(want != got)
        if len(bad):
            i = int(bad[0])
            raise Mismatch(int(want_cycles[i]), f"cost (step {steps[i]})", int(want[i]),
                           int(got[i]))
        self.steps_done += count

    def _updates(self, full: bool, cycle: int) -> None:
        count, (thetas, cycles) = _chunk(self.dut, "upd", self.u,
                                         [("upd_thetas", self.shadow_bits),
                                          ("upd_cycles", CYCLE_BITS)], full)
        if not count:
            return
        got_cycles = unpack_fields(cycles, count, CYCLE_BITS, signed=False)
        mask = (1 << self.shadow_bits) - 1
        tau = self.cfg.mgd.tau_theta
        counters = None
        for i in range(count):
            u = self.updates_done + i
            want, counters, e = self.stream.update(u)
            if e is not None:  # streaming: the update meets the stream late
                want_cycle = int(self.spec.stream.commit_cycle(e))
            else:
                n = (u + 1) * tau - 1  # the step of update u
                want_cycle = int(self.sched.next_cycle(np.array([n]))[0])
            check(int(got_cycles[i]), f"update cycle (update {u + 1})", want_cycle,
                  int(got_cycles[i]))
            theta = shadow_to_theta(self.layout, (thetas >> (i * self.shadow_bits)) & mask,
                                    self.cfg.hw.theta_bits)
            bad = np.flatnonzero(theta != want)
            if len(bad):
                j = int(bad[0])
                raise Mismatch(want_cycle, f"theta[{j}] (update {u + 1})", int(want[j]),
                               int(theta[j]))
        # the counters now are those after the chunk's last update (the streaming
        # trainer's counters run ahead of its updates: they are checked at the end)
        if self.spec.stream is None:
            _check_counters(self.dut, self.spec.counter_names, counters, cycle)
        self.updates_done += count


@cocotb.test()
async def trainer_training_run(dut):
    cfg, _, _, extra = config_from_env()
    spec = hw_spec(cfg)
    steps = int(extra["steps"])
    h = cfg.hw
    layout = spec.layout
    # sizes read back from the design must be the model's
    shadow_bits = spec.shadow_bits
    assert len(dut.theta_shadow) == shadow_bits
    assert len(dut.trace_costs) == int(extra["trace_depth"]) * h.cost_bits
    assert len(dut.cost) == h.cost_bits
    per_batch = len(dut.upd_thetas) // shadow_bits
    data_path = data_path_from_env()
    stream = ModelStream(cfg, data_path, int(extra.get("run", 0)), steps, per_batch,
                         extra["python"])
    checker = Checker(dut, spec, stream)

    # The clock: generated in the HDL wrapper of sim.runner (ports-only builds), else
    # cocotb's GPI clock. Reset covers the first two rising edges either way.
    if hasattr(dut, "clk"):
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    for port in ("run", "ld_x_en", "ld_t_en", "param_row", "param_lane"):
        getattr(dut, port).value = 0
    dut.step_limit.value = steps
    dut.rst.value = 1
    await Timer(2 * CLOCK_NS, unit="ns")
    dut.rst.value = 0
    dut.run.value = 1

    start = time.perf_counter()
    wakes = 0
    while True:
        await First(RisingEdge(dut.trace_valid), RisingEdge(dut.upd_valid), RisingEdge(dut.done))
        await ReadOnly()
        wakes += 1
        cycle = dut.cycle.value.to_unsigned()
        if dut.trace_valid.value:
            checker.costs(True, cycle)
        if dut.upd_valid.value:
            checker.updates(True, cycle)
        if dut.done.value:
            break
    seconds = time.perf_counter() - start

    # the tails: partial chunks, then the final state
    checker.costs(False, cycle)
    checker.updates(False, cycle)
    last = stream.finish()
    check(cycle, "step_count", steps, dut.step_count.value.to_unsigned())
    check(cycle, "update_count", last.updates, dut.update_count.value.to_unsigned())
    check(cycle, "steps compared", steps, checker.steps_done)
    check(cycle, "updates compared", last.updates, checker.updates_done)
    _check_counters(dut, spec.counter_names, last.end_counters, cycle)
    done_cycle = (spec.stream.done_cycle(checker.last_eval) if spec.stream is not None
                  else spec.step_cycles(steps))
    check(cycle, "cycle (done)", done_cycle, cycle)

    data = read_data(data_path)
    theta = shadow_to_theta(layout, dut.theta_shadow.value.to_unsigned(), h.theta_bits)
    net = HwMLP.from_config(cfg)
    cost, train_acc = evaluate(net, theta, data.x_train, data.t_train, data.labels_train)
    _, test_acc = evaluate(net, theta, data.x_test, data.t_test, data.labels_test)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "peak_rss_mb": {"simulator": round(own / 1024, 1), "model_worker": round(worker / 1024, 1)},
        "steps": steps,
        "evaluations": last.passes,
        "updates": checker.updates_done,
        "cycles": cycle,
        "wakes": wakes,
        "seconds": round(seconds, 3),
        "cycles_per_second": round(cycle / max(seconds, 1e-9)),
        "train_cost": cost,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "counters": last.end_counters,
        "theta_sha256": hashlib.sha256(theta.astype("<i8").tobytes()).hexdigest(),
    }
    with open(extra["result"], "w") as f:
        json.dump(result, f)
