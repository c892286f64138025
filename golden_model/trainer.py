"""Integer MGD training of the on-chip network, at the algorithm level (not cycles).

The trainer the gateware will be: the network datapath of ``datapath`` measures costs,
and the block models (``perturb_gen``, ``cost_acc``, ``weight_update``) do the rest with
exactly their arithmetic.
docs/hardware_network.md restates the schedule; in short, step n (discrete baseline):

1. sample: training-memory address (n // tau_x) mod S. The memory holds the training
   set in one seeded order (``trainer_image.sample_order``), loaded by the host; the hardware only
   counts addresses, so every epoch walks the same order.
2. code: the codes ``PerturbGenModel`` shows in period n // tau_p (``CodeSequence``),
   over the N parameters (weight perturbation) or the neurons (node perturbation).
3. baseline: when n starts a segment (n % tau_x == 0 or n % tau_theta == 0, i.e. the
   sample changed or theta was updated) the unperturbed cost C0 is measured first; it
   is a measurement, not a step.
4. C~ = sat(C - C0, ctilde_bits), then the optional clamp (``fixed.ctilde``, as
   ``CostAccModel``).
5. weight perturbation: G_i <- sat(G_i + s_i C~, g_bits) (``WeightUpdateModel``).
   Node perturbation: per neuron, D_j <- sat(D_j + s_j C~, g_bits); when the segment
   ends (its last step), G_p <- sat(G_p + D_j h_p, g_bits + act_bits) for every
   parameter p of neuron j, h_p the input of that weight in the segment's baseline pass
   (layer 0's x shifted left to the act LSB; 2^act_frac, i.e. 1.0, for the bias), and
   D = 0.
6. every tau_theta steps, the ``WeightUpdateModel`` update: theta -= round(G >>
   eta_shift) (node perturbation: eta_shift + act_frac, since G carries the act LSB),
   with optional momentum, then G = 0.

Fast and exact: theta is fixed within an update window, so the window's baselines and
perturbed passes are one batched forward pass; the accumulations are one matrix
product whenever a bound proves no partial sum can saturate, else a per-step loop.
Where numba imports, a compiled kernel (``trainer_kernel``) runs the steps one by one
instead, with the same integers: it avoids NumPy's per-call overhead, which dominates
small networks with short windows, and was faster on every network measured (2-2-1
to 64-256-10, docs/hardware_network.md). ``HwTrainer``'s ``compiled`` argument and
MGD_NUMBA=0 choose the NumPy path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from .config import MGDConfig
from .datapath import HwData, HwMLP
from .datasets import DataError
from .fixed import counter_add, ctilde, sat, shift_round, smax
from .hw_spec import trainer_spec
from .lfsr import lfsr_jump
from .mgd import NUMBA_ENV
from .perturb_gen import CodeSequence
from .trainer_image import initial_theta, sample_order
from .trainer_stream import StreamState, advance_compiled, advance_reference
from .weight_update import WeightUpdateModel

# Rows of one batched window evaluation, times the perturbed count, kept below this.
ROW_BUDGET = 1 << 18


@functools.cache
def _kernels_module():
    """golden_model.trainer_compiled, or None when numba is missing or fails to import.
    Imported on first need: numba takes some 0.2 s to import."""
    if importlib.util.find_spec("numba") is None:
        return None
    try:
        from . import trainer_compiled
    except ImportError:
        return None
    return trainer_compiled


def numba_enabled() -> bool:
    """Whether the compiled trainer kernel may be chosen by default: numba imports and
    MGD_NUMBA is not 0 (or false/no/off), the float model's switch."""
    if os.environ.get(NUMBA_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _kernels_module() is not None


def accumulate(acc: np.ndarray, codes: np.ndarray, ct: np.ndarray, bits: int):
    """acc <- sat(acc + codes[k] * ct[k], bits) for k in order; returns (acc, saturated).

    When max|acc| + sum|ct| fits, no partial sum can saturate, and the loop is one
    product ct @ codes (codes are in {-1, 0, +1}); below 2^53 float64 BLAS does it
    exactly.
    """
    bound = int(np.abs(acc).max(initial=0)) + int(np.abs(ct).sum())
    if bound <= smax(bits):
        if bound < 1 << 53:
            return acc + (ct.astype(np.float64) @ codes.astype(np.float64)).astype(np.int64), 0
        return acc + ct @ codes.astype(np.int64), 0
    count = 0
    for k in range(len(ct)):
        acc, s = sat(acc + codes[k] * ct[k], bits)
        count += int(np.count_nonzero(s))
    return acc, count


@dataclass
class SubLsbCount:
    """Totals over the updates of a run: how many parameters had a non-zero step source
    (G, or V with momentum) and how many of those moved by nothing because
    round(source >> eta_shift) is zero, i.e. their update was below one theta LSB."""

    updates: int = 0
    nonzero: int = 0
    below_lsb: int = 0

    def add(self, source: np.ndarray, eta_shift: int, rounding: str) -> None:
        """Count one update whose step source is ``source`` (the unit's shift)."""
        nonzero = source != 0
        step = shift_round(source, eta_shift, rounding)
        self.updates += 1
        self.nonzero += int(np.count_nonzero(nonzero))
        self.below_lsb += int(np.count_nonzero(nonzero & (step == 0)))


@dataclass
class Trace:
    """Per-step record of one ``advance`` chunk: step, sample index, measured cost C,
    its baseline C0, C~ (cost LSBs) and ``evals``, the index of the step's perturbed
    pass among all forward passes (evaluations) of the run, baselines included: the
    stream's evaluation (slot) of the step; sequential, n + the baselines up to
    step n."""

    step: np.ndarray
    sample: np.ndarray
    cost: np.ndarray
    c0: np.ndarray
    ctilde: np.ndarray
    evals: np.ndarray


class HwTrainer:
    """One run of the integer MGD trainer (see the module docstring).

    Parameters
    ----------
    cfg : a config with ``hw.datapath = "mlp"`` (checked by ``hw_spec.trainer_spec``)
    data : the task in the hardware formats
    run : run index: initial weights and sample order use seed ``cfg.seed + run``
    theta0 : optional initial parameters (theta LSBs) instead of the float draw
    record_theta_every : keep theta after every k-th update (0: never)
    compiled : run ``advance`` in the compiled kernel (``trainer_compiled``, numba) instead of
        the batched NumPy path; None uses it when numba imports and MGD_NUMBA is not
        0 (the kernel was the faster path on every network measured) and no update
        count is asked for; True requires it, False asks for the NumPy path. Both give
        the same integers.
    count_sub_lsb : count the updates below one theta LSB in ``sub_lsb`` (a
        :class:`SubLsbCount`; off by default, the numbers are the same either way; it
        is counted on the NumPy path, so None for ``compiled`` then means False)
    """

    def __init__(
        self,
        cfg: MGDConfig,
        data: HwData,
        run: int = 0,
        theta0: np.ndarray | None = None,
        record_theta_every: int = 0,
        compiled: bool | None = None,
        count_sub_lsb: bool = False,
    ):
        self.spec = spec = trainer_spec(cfg, gateware=False)
        h, m = cfg.hw, cfg.mgd
        self.cfg, self.hw, self.m, self.data = cfg, h, m, data
        self.net = net = HwMLP.from_config(cfg)
        if data.x_train.shape[1] != net.sizes[0] or data.t_train.shape[1] != net.sizes[-1]:
            raise DataError(
                f"data has {data.x_train.shape[1]} inputs and {data.t_train.shape[1]} "
                f"targets, the network {net.sizes[0]} and {net.sizes[-1]}"
            )
        self.node = m.mode == "node"
        self.n_pert = net.n_nodes if self.node else net.n_params
        self.codes = CodeSequence(m.perturbation, self.n_pert, h.lfsr_bits, h.lfsr_seed)
        self.order = sample_order(len(data.x_train), cfg.seed + run)
        self.init_saturations = 0
        if theta0 is None:
            theta0, self.init_saturations = initial_theta(cfg, run)
        # The spec's update format (node perturbation: G carries the activation LSB
        # too). The model is the parallel unit: lanes change when parameters are
        # written, not the numbers.
        self.wu = WeightUpdateModel(spec.update_cfg, theta0)
        self.D = np.zeros(net.n_nodes, dtype=np.int64)
        self.n = 0
        self.updates = 0
        self.passes = 0  # forward passes (evaluations): steps plus baselines
        # The streaming schedule's state (hw.pipeline = "stream"), else None; the
        # evaluation of each update's last C~ (stream only: the testbench's
        # StreamTiming.commit_cycle).
        self.stream = (StreamState(spec.stream.delay, self.wu.theta.copy())
                       if spec.stream is not None else None)
        self.update_evals: list[int] = []
        self.sat = {"z": 0, "act": 0, "cost": 0, "ctilde": 0, "d": 0}
        self.record_theta_every = record_theta_every
        self.thetas: list[tuple[int, np.ndarray]] = []
        self.sub_lsb = SubLsbCount() if count_sub_lsb else None
        self._c0 = 0  # the current segment's baseline cost and layer inputs
        self._h0: list[np.ndarray] = []
        self.block = max(1, min(m.tau_theta, ROW_BUDGET // max(self.n_pert, 64)))
        if count_sub_lsb and compiled is None:
            compiled = False  # the kernel does not count sub-LSB updates
        if count_sub_lsb and compiled:
            raise ValueError("count_sub_lsb needs the NumPy path (compiled=False)")
        self.kernel = self._compiled_kernel(compiled, spec.update_cfg.hw)

    def _compiled_kernel(self, compiled: bool | None, wu_hw):
        """The compiled trainer (trainer_compiled.TrainerKernel), or None for the NumPy path."""
        if compiled is None:
            compiled = numba_enabled() and _kernels_module().supports(self.cfg)
        if not compiled:
            return None
        kernels = _kernels_module()
        if kernels is None:
            raise ImportError("the compiled trainer kernel needs numba, which does not import")
        if not kernels.supports(self.cfg):
            raise ValueError("the compiled trainer kernel does not cover this config")
        # The kernel reads the data as contiguous int64 and updates the trainer's
        # arrays in place.
        self._kdata = {
            "x": np.ascontiguousarray(self.data.x_train, np.int64),
            "t": np.ascontiguousarray(self.data.t_train, np.int64),
            "order": np.ascontiguousarray(self.order, np.int64),
        }
        return kernels.TrainerKernel(self.cfg, self.net, wu_hw)

    @property
    def theta(self) -> np.ndarray:
        """The current parameters (theta LSBs), held by the weight-update unit (the
        stream's G frame; the forward passes see ``stream.theta_fwd``)."""
        return self.wu.theta

    def counters(self) -> dict[str, int]:
        """Saturation counters: datapath (z, act, cost), C~, D, G (+V), theta."""
        return self.sat | {"g": self.wu.sat_g, "theta": self.wu.sat_theta}

    def _count(self, name: str, inc: int) -> None:
        self.sat[name] = counter_add(self.sat[name], int(inc), self.hw.counter_bits)

    # --- the schedule ---------------------------------------------------------------
    def advance(self, steps: int, record: bool = False) -> Trace | None:
        """Run ``steps`` more steps; with ``record``, return their per-step Trace."""
        if self.stream is not None:
            if self.kernel is not None and steps > 0:
                cols = advance_compiled(self, steps, record)
            else:
                cols = advance_reference(self, steps, record)
            return None if cols is None else Trace(*cols)
        if self.kernel is not None and steps > 0:
            return self._advance_compiled(steps, record)
        target = self.n + steps
        tt = self.m.tau_theta
        parts = []
        while self.n < target:
            n0 = self.n
            n1 = min(target, (n0 // tt + 1) * tt, n0 + self.block)
            parts.append(self._window(n0, n1))
            self.n = n1
            if n1 % tt == 0:
                self._update()
        if not record:
            return None
        return self._evals(Trace(*(np.concatenate([p[i] for p in parts]) for i in range(5)),
                                 None))

    def _advance_compiled(self, steps: int, record: bool) -> Trace | None:
        """``advance`` in the compiled kernel: the same state afterwards, the same Trace.

        The kernel works on the trainer's own arrays and returns raw counts, which
        ``counter_add`` adds once (a saturating sum of non-negative increments does
        not depend on how they are grouped)."""
        k, h, m = self.kernel, self.hw, self.m
        n0, n1 = self.n, self.n + steps
        # The LFSR state of the first period, from the last one CodeSequence holds.
        state = self.codes._state
        if m.perturbation == "code":
            state = lfsr_jump(state, n0 // m.tau_p - self.codes._k, h.lfsr_bits)
        wu = self.wu
        wu.theta = np.ascontiguousarray(wu.theta, np.int64)
        wu.G = np.ascontiguousarray(wu.G, np.int64)
        wu.V = np.ascontiguousarray(wu.V, np.int64)
        self.D = np.ascontiguousarray(self.D, np.int64)
        h0 = np.concatenate(self._h0) if self._h0 else np.zeros(k.h0_size, np.int64)
        arrays = self._kdata | {"theta": wu.theta, "G": wu.G, "V": wu.V, "D": self.D,
                                "h0": h0}
        res = k.run(n0, n1, arrays, state, self._c0, self.record_theta_every,
                    self.updates, record)
        self.n = n1
        self.updates += res.updates
        self.thetas.extend(res.thetas)
        c = res.counts
        for name in self.sat:
            self._count(name, c[name])
        wu.sat_g = counter_add(wu.sat_g, c["g"], h.counter_bits)
        wu.sat_theta = counter_add(wu.sat_theta, c["theta"], h.counter_bits)
        self.passes += c["passes"]
        self._c0 = res.c0
        self._h0 = [h0[sl].copy() for sl in k.input_slices]
        if m.perturbation == "code":
            self.codes._k, self.codes._state = (n1 - 1) // m.tau_p, res.state
        if not record:
            return None
        step = np.arange(n0, n1)
        sample = self.order[(step // m.tau_x) % len(self.order)]
        return self._evals(Trace(step, sample, res.rec[0], res.rec[1], res.rec[2], None))

    def _evals(self, trace: Trace) -> Trace:
        """A sequential Trace with ``evals``: step n's perturbed pass follows the n
        steps before it and the baselines of the segment starts k <= n."""
        n, tx, tt = trace.step, self.m.tau_x, self.m.tau_theta
        both = tx * tt // np.gcd(tx, tt)
        trace.evals = n + n // tx + n // tt - n // both + 1
        return trace

    def _update(self) -> None:
        # The step's source is G as it stands before the update (which clears it), or
        # with momentum the new V the update computes; only read here, never changed.
        wu, count = self.wu, self.sub_lsb
        if count is not None and not self.hw.momentum_shift:
            count.add(wu.G, wu.h.eta_shift, wu.h.rounding)
        wu.tick(update=1)
        if count is not None and self.hw.momentum_shift:
            count.add(wu.V, wu.h.eta_shift, wu.h.rounding)
        self.updates += 1
        if self.record_theta_every and self.updates % self.record_theta_every == 0:
            self.thetas.append((self.n, self.wu.theta.copy()))

    def _window(self, n0: int, n1: int) -> tuple:
        """Steps n0..n1-1, all with the same theta: one batched forward pass."""
        m, h, net, data = self.m, self.hw, self.net, self.data
        steps = np.arange(n0, n1)
        is_start = (steps % m.tau_x == 0) | (steps % m.tau_theta == 0)
        starts = steps[is_start]
        count = len(data.x_train)
        samples = self.order[(steps // m.tau_x) % count]
        base = self.order[(starts // m.tau_x) % count]
        codes = self.codes.steps(n0, n1, m.tau_p)
        rows = np.concatenate([base, samples])
        pert = np.concatenate([np.zeros((len(base), self.n_pert), codes.dtype), codes])
        # One sample for the whole window (tau_x a multiple of tau_theta): one input row,
        # which the forward pass broadcasts.
        x = data.x_train[rows[:1] if (rows == rows[0]).all() else rows]
        out = net.forward(
            self.wu.theta, x,
            node_codes=pert if self.node else None, codes=None if self.node else pert,
        )
        c, c_sat = net.cost(out.y, data.t_train[rows])
        self.passes += len(rows)
        self._count("z", out.sat_z.sum())
        self._count("act", out.sat_act.sum())
        self._count("cost", c_sat.sum())
        # Each step's baseline: the segment that started last at or before it; -1 is
        # the segment the previous window left open.
        seg = np.searchsorted(starts, steps, side="right") - 1
        c0 = np.concatenate([[self._c0], c[: len(base)]])[seg + 1]
        ct, ct_sat = ctilde(c[len(base):] - c0, h.ctilde_bits, h.clamp)
        self._count("ctilde", np.count_nonzero(ct_sat))
        # Layer inputs per row (layer 0 may be one broadcast row).
        inputs = [np.broadcast_to(v, (len(rows), v.shape[-1])) for v in out.inputs]
        if self.node:
            self._node_window(steps, seg, codes, ct, [v[: len(base)] for v in inputs])
        else:
            self.wu.G, n_sat = accumulate(self.wu.G, codes, ct, h.g_bits)
            self.wu.sat_g = counter_add(self.wu.sat_g, n_sat, h.counter_bits)
        if len(base):
            self._c0 = int(c[len(base) - 1])
            self._h0 = [v[len(base) - 1].copy() for v in inputs]
        return steps, samples, c[len(base):], c0, ct

    def _node_window(self, steps, seg, codes, ct, inputs) -> None:
        """Node perturbation: D per segment, flushed into G where a segment ends."""
        m, h = self.m, self.hw
        for s in np.unique(seg):
            sel = seg == s
            self.D, n_sat = accumulate(self.D, codes[sel], ct[sel], h.g_bits)
            self._count("d", n_sat)
            end = int(steps[sel][-1]) + 1
            if end % m.tau_x and end % m.tau_theta:
                continue  # the segment goes on in the next window
            h_in = self._h0 if s < 0 else [x[s] for x in inputs]
            self._flush(h_in)

    def _flush(self, h_in: list[np.ndarray]) -> None:
        """G_p <- sat(G_p + D_j h_p) for every parameter, then D = 0."""
        h, net = self.hw, self.net
        inc = np.empty(net.n_params, dtype=np.int64)
        for l in range(net.n_layers):
            d = self.D[net.node_slices[l]]
            x = h_in[l] << (h.act_frac - h.x_frac) if l == 0 else h_in[l]
            inc[net.w_slices[l]] = np.outer(d, x).ravel()
            inc[net.b_slices[l]] = d << h.act_frac
        self.wu.G, s = sat(self.wu.G + inc, self.spec.update_hw.g_bits)
        self.wu.sat_g = counter_add(self.wu.sat_g, int(np.count_nonzero(s)), h.counter_bits)
        self.D[:] = 0
