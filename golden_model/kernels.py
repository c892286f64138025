"""Compiled (numba) kernel of the float model's hottest case: a discrete-baseline
segment of weight perturbation with dense +-1 codes.

Between two segment boundaries theta and the sample are fixed, and every step k of the
segment is: expand the period's raw code words to u_k = +-1, evaluate the perturbed
network theta + a u_k, take C~_k = C_k - C0 (clamped), and add the error signal
e = C~_k a u_k / dtheta^2 to G. The NumPy path (``mgd.MGDEnsemble``) batches those K
steps into array calls; this kernel runs them as plain loops, one run and one step at a
time, like the reference loop but compiled. It keeps O(parameters) scratch per call and
nothing per step besides the costs it returns.

Numbers. The perturbed weights are formed as theta + a u, as the reference loop
(``reference.py``) forms them, and e = u (C~ a / dtheta^2) equals its
C~ (a u) / dtheta^2 exactly (u = +-1 only flips signs), added to G step by step in
the same order, so G is the reference's G given the same costs. The costs differ from
the reference and the NumPy path by rounding only: the dot products are reassociated
so that they vectorize, the first layer sums table entries (see kernel_jit._sign_tables), and the
sigmoid is 1 / (1 + exp(-z)) with an exp of its own (``_exp``, within 1 ulp) that
vectorizes, instead of 0.5 (1 + tanh(z / 2)). Every run is computed on its own, so run
r of an ensemble is still the single run of seed s + r, bit for bit.

The random streams are untouched: the kernel reads the raw words that
``streams.CodeStream.fill_words`` serves (the words ``fill`` expands).

This module holds the engine's handle; the compiled functions are in
:mod:`golden_model.kernel_jit`. It imports numba; ``mgd`` imports it only when the
compiled path is chosen (``mgd.compiled_kernels``). Compiled code is cached
(``cache=True``) in the package's ``__pycache__``, so a process after the first skips
most of the compile time.
"""

from __future__ import annotations

import sys

import numpy as np

from .activations import Variation
from .kernel_jit import ACTIVATIONS, COSTS, segment
from .network import MLP

# The first layer is summed by table look-up (see kernel_jit._sign_tables) when a
# segment has at least this many first-layer rows to sum (steps x outputs): building
# the tables costs about as much as summing 256 rows directly.
TABLE_MIN_WORK = 256


# --- the engine's handle ----------------------------------------------------------------
class WeightPertKernel:
    """The compiled segment of one network (and its device variation, if any)."""

    def __init__(self, net: MLP, variation: list[Variation] | None, runs: int):
        rows = []
        for l in range(net.n_layers):
            rows.append((
                net.sizes[l], net.sizes[l + 1], net.w_slices[l].start,
                net.b_slices[l].start, net.node_slices[l].start,
                ACTIVATIONS[net.activations[l]],
            ))
        self.layout = np.array(rows, dtype=np.int64)
        self.cost_kind = COSTS[net.cost_name]
        self.var = np.zeros((0, 4, 0))
        if variation is not None:
            self.var = np.zeros((runs, 4, net.n_nodes))
            for l, v in enumerate(variation):
                for i, part in enumerate((v.gain, v.steep, v.mid, v.offset)):
                    self.var[:, i, net.node_slices[l]] = part
        self._empty = np.zeros((runs, 0))
        # Byte-wise look-ups need whole bytes per weight row (and bytes in the order of
        # the code bits, which little-endian words give).
        self.tables = net.sizes[0] % 8 == 0 and sys.byteorder == "little"

    def segment(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
        words: np.ndarray,
        period: np.ndarray,
        amp: np.ndarray,
        dtheta2: np.ndarray,
        c0: np.ndarray,
        baseline: bool,
        noise: np.ndarray | None,
        clamp: float,
        g: np.ndarray,
    ) -> np.ndarray:
        """Run the K = len(period) steps of a segment for every run.

        theta (R, N); x (R, n_in) and t (R, n_out) the current samples; words
        (R, periods, W) uint64 raw code words and period (K,) the period of each step;
        amp, dtheta2 (R,); c0 (R,) the baselines, measured (into c0) first when
        ``baseline``; noise (R, baseline + K) the cost noise or None; clamp the limit
        of C~ (0: none). Adds the error signals to g (R, N) in place and returns the
        measured costs (R, K).
        """
        costs = np.empty((theta.shape[0], len(period)))
        words = np.ascontiguousarray(words)
        segment(
            theta, np.ascontiguousarray(x, dtype=np.float64).reshape(-1),
            np.ascontiguousarray(t, dtype=np.float64).reshape(-1), words,
            words.view(np.uint8),
            period, amp, dtheta2, c0, baseline, self._empty if noise is None else noise,
            float(clamp), self.layout, self.cost_kind, self.var,
            self.tables and len(period) * self.layout[0, 1] >= TABLE_MIN_WORK, costs, g,
        )
        return costs
