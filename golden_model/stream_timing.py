"""Timing of the streaming trainer (``hw.pipeline = "stream"``): when each evaluation
enters the pipeline, when its cost appears, and how many evaluations late an update
reaches the forward passes.

The one place these facts live: the bit-exact model reads ``delay``, the gateware
builds its pipeline to these latencies, the testbench checks every cost and update
on the cycles given here (docs/hardware_network.md, "Streaming trainer").

Slots. Time after reset is cut into slots of ``ii`` cycles, slot s starting at cycle
``first_cycle + s * ii``; evaluation e enters layer 0 in slot e (``run`` held high,
no bubbles). Layer l works on evaluation e in slot e + ``starts[l]``: it issues its
``rows[l]`` parameter rows (groups x input columns) on the slot's first cycles, and
its last activation is written ``rows[l] + 4 + tree[l]`` cycles after the slot
starts (memory read, product, ``tree[l]`` registered adder levels, accumulate, z,
activation), so layer l + 1 takes it ``hops[l]`` slots later. After the last layer
the cost takes five more cycles (square, sum, accumulate, C, C~).

Update delay. The G frame of layer l (accumulation, node perturbation's flush and the
update, one row per cycle beside the stream) handles evaluation e's C~ in slot
e + delay + starts[l]: it accumulates row r on the cycle layer l reads row r for
evaluation e + delay and writes it ``G_FRAME_WRITE`` cycle later, before layer l
reads row r for evaluation e + delay + 1 (with II = 1 on that very edge, through a
transparent port). So an update computed from the C~ of evaluation E reaches every
layer at once: evaluations up to E + delay see the old parameters, from E + delay + 1
the new ones.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .config import MGDConfig, layer_parallelism, network_sizes

# Cycles of a layer stage beyond its rows and adder-tree levels: the parameter
# memory's read, the product register, the accumulator, z, the activation.
STAGE_CYCLES = 4
# Cycles from the last layer's output to C~: square, sum, accumulate, C, C~.
COST_CYCLES = 5
# The G frame writes row r this many cycles after the forward stage reads it: G is
# accumulated on the row's cycle, the update computed and written on the next.
G_FRAME_WRITE = 1


def tree_levels(q: int) -> int:
    """Registered adder levels that sum ``q`` products: ceil(log2 q)."""
    return max(0, (q - 1).bit_length())


@dataclass(frozen=True)
class StreamTiming:
    """The streaming trainer's schedule (see the module docstring).

    Attributes
    ----------
    ii : cycles per slot: the largest per-layer folded MAC count (fully parallel: 1)
    rows : per layer, parameter rows issued per evaluation (groups x input columns)
    groups : per layer, neuron groups (bias rows)
    tree : per layer, registered adder-tree levels (ceil(log2 Q))
    hops : per layer, slots until the next stage (the last: until C~ can be read by
        layer 0's G frame)
    starts : per layer, the slot offset of its stage (starts[0] = 0)
    delay : D, evaluations an update is late (see the module docstring)
    first_cycle : the cycle slot 0 starts on, counted from the first cycle after reset
        (CLEAR zeroes G and V first)
    """

    ii: int
    rows: tuple[int, ...]
    groups: tuple[int, ...]
    tree: tuple[int, ...]
    hops: tuple[int, ...]
    starts: tuple[int, ...]
    delay: int
    first_cycle: int

    @classmethod
    def from_config(cls, cfg: MGDConfig) -> StreamTiming:
        sizes = network_sizes(cfg)
        par = layer_parallelism(cfg)
        rows, groups, tree = [], [], []
        for (n_in, n_out), (p, q) in zip(zip(sizes[:-1], sizes[1:], strict=True), par,
                                         strict=True):
            groups.append(n_out // p)
            rows.append(n_out // p * (n_in // q))
            tree.append(tree_levels(q))
        ii = max(rows)
        hops, starts = [], [0]
        for l in range(len(rows)):
            latency = rows[l] + STAGE_CYCLES + tree[l]
            if l == len(rows) - 1:
                # C~ readable on cycle `latency + COST_CYCLES` of the slot; the G frame
                # reads row 0 one cycle before its slot starts.
                hops.append(-(-(latency + COST_CYCLES + 1) // ii))
            else:
                hops.append(-(-latency // ii))
                starts.append(starts[-1] + hops[-1])
        delay = starts[-1] + hops[-1]
        first = max(r + g for r, g in zip(rows, groups, strict=True)) + 2
        return cls(ii, tuple(rows), tuple(groups), tuple(tree), tuple(hops),
                   tuple(starts), delay, first)

    def slot_cycle(self, slot):
        """First cycle of slot ``slot`` (int or array)."""
        return self.first_cycle + slot * self.ii

    def cost_cycle(self, e):
        """The cycle on which ``cost`` first shows evaluation ``e``'s cost."""
        last = len(self.rows) - 1
        return (self.slot_cycle(e + self.starts[last]) + self.rows[last]
                + STAGE_CYCLES + self.tree[last] + COST_CYCLES - 1)

    def commit_cycle(self, e):
        """The first cycle on which every parameter holds the update computed from
        evaluation ``e``'s C~ (``updated`` pulses then): the last layer's G frame has
        written its last row."""
        last = len(self.rows) - 1
        return (self.slot_cycle(e + self.delay + self.starts[last]) + self.rows[last]
                + G_FRAME_WRITE)

    def done_cycle(self, e):
        """The first cycle ``done`` shows when evaluation ``e`` was the run's last: its
        record has left the pipeline (every C~ handled, every update written, the
        ``updated`` strobe of the last one past, the saturation counters settled) and
        two more cycles."""
        return self.slot_cycle(e + self.delay + self.starts[-1] + 1) + 2

    @property
    def min_tau_theta(self) -> int:
        """The smallest tau_theta (steps) for which one update has reached every layer
        before the next begins: the pipeline's depth in slots, plus one."""
        return self.starts[-1] + 1

    def step_evals(self, steps: int, tau_x: int, tau_theta: int) -> np.ndarray:
        """Each step's perturbed evaluation index (``stream_evals`` with this delay)."""
        return stream_evals(steps, tau_x, tau_theta, self.delay)


def stream_evals(steps: int, tau_x: int, tau_theta: int, delay: int) -> np.ndarray:
    """The evaluation index of the perturbed pass of steps 0..steps-1, (steps,) int64,
    from the stream's rule alone (docs/hardware_network.md, "Streaming trainer: the
    contract"): a baseline opens the run, follows every sample change (a step n with
    n % tau_x == 0) and takes the slot on which an update arrives (the update from
    the perturbed evaluation E of step k tau_theta - 1 arrives in slot E + delay + 1);
    every other slot is the next step's perturbed evaluation.

    The slots repeat: at a step n with n % lcm(tau_x, tau_theta) == 0 the schedule
    depends only on the pending updates' distances, so once those repeat the rest is
    the period shifted (one Python loop over a period or two, then NumPy)."""
    out = np.zeros(steps, np.int64)
    period = tau_x * tau_theta // math.gcd(tau_x, tau_theta)
    pending: deque[int] = deque()  # apply_at of the updates not arrived yet
    seen: dict[tuple[int, ...], tuple[int, int]] = {}
    e, n, seg_ok = 0, 0, False
    while n < steps:
        if n % period == 0 and not seg_ok:
            key = tuple(a - e for a in pending)
            if key in seen:
                n0, e0 = seen[key]
                rest = np.arange(n, steps)
                k, r = np.divmod(rest - n0, n - n0)
                out[n:] = out[n0 + r] + k * (e - e0)
                return out
            seen[key] = (n, e)
        if pending and pending[0] == e:
            pending.popleft()
            seg_ok = False
        if not seg_ok:
            seg_ok = True  # a baseline
        else:
            out[n] = e
            n += 1
            if n % tau_x == 0:
                seg_ok = False
            if n % tau_theta == 0:
                pending.append(e + delay + 1)
        e += 1
    return out
