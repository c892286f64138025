"""Memory layout and cycle schedule of the on-chip trainer (gateware.trainer.Trainer).

The arithmetic of the trainer is ``trainer.HwTrainer``; this module says where each
number lives in the hardware and on which cycle it appears. Both are pure functions of
the config, so the testbench, the CLI and the gateware share them.

Layout (docs/hardware_network.md, "Trainer gateware"). Layer l has P MAC units (P
neurons at a time) taking Q inputs each per cycle (``config.layer_parallelism``).
Its parameters sit in one memory of ``rows`` rows of P * Q lanes:

- row r = g * (C + 1) + c, with g the neuron group (neurons g P .. g P + P - 1), C =
  n_in / Q the input columns and c the column;
- lane k * Q + q of a weight row (c < C) holds W[g P + k, c Q + q];
- the bias row (c = C) holds b[g P + k] in lane k * Q; its other lanes are unused
  (always zero). The bias is the weight of a constant input 1.0 (2^in_frac), so the
  MAC treats both alike: acc = sum_j W_ij h_j + b_i 2^in_frac.

Schedule (every phase has a fixed length, so the trainer's timing never depends on
the data):

- after reset, CLEAR sweeps every row once (G and V are zeroed): S cycles, S =
  sum_l rows_l + 1; then one IDLE cycle, then steps run back to back while ``run``;
- a forward pass takes sum_l (rows_l + 2) cycles, then COST (1 cycle: C is
  registered); a baseline pass (segment start) comes first when the segment starts;
- CT (1 cycle) registers C~ (node perturbation: D += s C~ at its edge);
- SWEEP (S cycles): weight perturbation every step (G += s C~, and the update at
  the window's last step); node perturbation at a segment's last step (G += D h0,
  and the update at the window's last step);
- NEXT (1 cycle): counters, code generator and sample address move on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MGDConfig, layer_parallelism, network_sizes


@dataclass(frozen=True)
class LayerLayout:
    """Where layer ``index``'s parameters live (see the module docstring)."""

    index: int
    n_in: int
    n_out: int
    p: int  # MAC units: neurons per group
    q: int  # inputs per MAC per cycle
    w_offset: int  # float-layout index of W[0, 0]
    b_offset: int  # float-layout index of b[0]
    node_offset: int  # index of the layer's first neuron in network order
    # The streaming trainer's order: every weight row (g C + c) first, then the bias
    # rows (G C + g); its weights and biases sit in separate memories.
    stream: bool = False

    @property
    def groups(self) -> int:
        return self.n_out // self.p

    @property
    def cols(self) -> int:
        """Input columns C of a group (its weight rows); the bias row follows."""
        return self.n_in // self.q

    @property
    def rows(self) -> int:
        return self.groups * (self.cols + 1)

    @property
    def lanes(self) -> int:
        return self.p * self.q

    def row_of(self, g: int, c: int) -> int:
        """The memory row of group g's column c (c = C: its bias row)."""
        if not self.stream:
            return g * (self.cols + 1) + c
        return self.groups * self.cols + g if c == self.cols else g * self.cols + c

    def param_map(self) -> np.ndarray:
        """(rows, lanes) float-layout parameter index of every lane, -1 where unused."""
        out = np.full((self.rows, self.lanes), -1, np.int64)
        for g in range(self.groups):
            for k in range(self.p):
                i = g * self.p + k
                for c in range(self.cols):
                    j = c * self.q + np.arange(self.q)
                    out[self.row_of(g, c), k * self.q:(k + 1) * self.q] = (
                        self.w_offset + i * self.n_in + j)
                out[self.row_of(g, self.cols), k * self.q] = self.b_offset + i
        return out

    def input_map(self) -> np.ndarray:
        """(rows, lanes) input index j of every lane: n_in for the bias input, -1 unused."""
        out = np.full((self.rows, self.lanes), -1, np.int64)
        for g in range(self.groups):
            for c in range(self.cols + 1):
                r = self.row_of(g, c)
                for k in range(self.p):
                    if c < self.cols:
                        out[r, k * self.q:(k + 1) * self.q] = c * self.q + np.arange(self.q)
                    else:
                        out[r, k * self.q] = self.n_in
        return out


class TrainerLayout:
    """Every layer's :class:`LayerLayout` and conversions between the float-layout
    parameter vector and the memory contents."""

    def __init__(self, cfg: MGDConfig):
        sizes = network_sizes(cfg)
        self.sizes = sizes
        stream = cfg.hw.pipeline == "stream"
        self.layers: list[LayerLayout] = []
        pos = node = 0
        for l, ((n_in, n_out), (p, q)) in enumerate(
            zip(zip(sizes[:-1], sizes[1:], strict=True), layer_parallelism(cfg), strict=True)
        ):
            self.layers.append(LayerLayout(l, n_in, n_out, p, q, pos, pos + n_in * n_out, node,
                                           stream))
            pos += (n_in + 1) * n_out
            node += n_out
        self.n_params, self.n_nodes = pos, node
        self._maps = [layer.param_map() for layer in self.layers]

    @property
    def total_rows(self) -> int:
        return sum(layer.rows for layer in self.layers)

    def to_memory(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per layer, the (rows, lanes) contents holding ``theta`` (unused lanes 0)."""
        theta = np.asarray(theta, np.int64)
        return [np.where(m >= 0, theta[np.maximum(m, 0)], 0) for m in self._maps]

    def from_memory(self, contents: list[np.ndarray]) -> np.ndarray:
        """The float-layout vector held by per-layer (rows, lanes) contents."""
        theta = np.zeros(self.n_params, np.int64)
        for m, c in zip(self._maps, contents, strict=True):
            used = m >= 0
            theta[m[used]] = np.asarray(c)[used]
        return theta

    def memory_order(self) -> np.ndarray:
        """Float-layout index of every parameter in memory order (layer, row, lane),
        unused lanes left out: the order of the ``param_addr`` read port."""
        return np.concatenate([m[m >= 0] for m in self._maps])


@dataclass(frozen=True)
class TrainerTiming:
    """Cycle counts of the trainer's phases (see the module docstring)."""

    pass_cycles: int  # one forward pass, COST included
    sweep_cycles: int  # one sweep over every parameter row
    node: bool

    @classmethod
    def from_config(cls, cfg: MGDConfig) -> TrainerTiming:
        layout = TrainerLayout(cfg)
        passes = sum(layer.rows + 2 for layer in layout.layers) + 1
        return cls(passes, layout.total_rows + 1, cfg.mgd.mode == "node")

    @property
    def first_step_cycle(self) -> int:
        """The cycle the first step begins on, counted from the first cycle after reset
        (CLEAR, then one IDLE cycle)."""
        return self.sweep_cycles + 1


class Schedule:
    """Which phases each step has, and on which cycles its results appear.

    Step n starts a segment (baseline pass) when n % tau_x == 0 or n % tau_theta == 0;
    it ends a segment when n + 1 starts one; it updates when (n + 1) % tau_theta == 0.
    """

    def __init__(self, cfg: MGDConfig):
        m = cfg.mgd
        self.tau_x, self.tau_theta = m.tau_x, m.tau_theta
        self.t = TrainerTiming.from_config(cfg)

    def flags(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(baseline, segment end, update) of steps (bool arrays)."""
        n = np.asarray(steps, np.int64)
        base = (n % self.tau_x == 0) | (n % self.tau_theta == 0)
        nxt = n + 1
        end = (nxt % self.tau_x == 0) | (nxt % self.tau_theta == 0)
        return base, end, nxt % self.tau_theta == 0

    def step_cycles(self, steps: np.ndarray) -> np.ndarray:
        """Cycles each step takes, from its first cycle to the end of its NEXT cycle."""
        base, end, _ = self.flags(steps)
        t = self.t
        sweep = end if t.node else np.ones_like(end)
        return base * t.pass_cycles + t.pass_cycles + 1 + sweep * t.sweep_cycles + 1

    def step_start(self, steps: np.ndarray) -> np.ndarray:
        """First cycle of each step (from the first cycle after reset), run held high.

        A closed form: every step costs the same except for its baseline pass and
        (node perturbation) its sweep, and both flags are periodic.
        """
        n = np.asarray(steps, np.int64)
        t = self.t
        plain = t.pass_cycles + 2 + (0 if t.node else t.sweep_cycles)
        starts = _count_multiples(n, self.tau_x, self.tau_theta)  # baselines before n
        cycles = t.first_step_cycle + n * plain + starts * t.pass_cycles
        if t.node:
            # segment ends before n: steps k < n whose k + 1 starts a segment
            ends = _count_multiples(n + 1, self.tau_x, self.tau_theta) - 1
            cycles = cycles + ends * t.sweep_cycles
        return cycles

    def cost_cycle(self, steps: np.ndarray) -> np.ndarray:
        """The cycle on which ``cost`` first shows step n's (perturbed) cost."""
        base, _, _ = self.flags(steps)
        return self.step_start(steps) + base * self.t.pass_cycles + self.t.pass_cycles

    def next_cycle(self, steps: np.ndarray) -> np.ndarray:
        """The NEXT cycle of step n: an update's new parameters are all in memory, and
        ``updated`` pulses, on this cycle."""
        return self.step_start(np.asarray(steps) + 1) - 1


def _count_multiples(n: np.ndarray, a: int, b: int) -> np.ndarray:
    """How many k in [0, n) are multiples of a or of b (inclusion-exclusion)."""
    lcm = a * b // int(np.gcd(a, b))
    return -(-n // a) + -(-n // b) - -(-n // lcm)
