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
the reference and the NumPy path by rounding order only: the dot products are
reassociated so that they vectorize, and the sigmoid is 1 / (1 + exp(-z)) instead of
0.5 (1 + tanh(z / 2)) (libm's scalar tanh is some 2.5x slower than exp; both are
within a few ulp of the logistic). Every run is computed on its own, so run r of an
ensemble is still the single run of seed s + r, bit for bit.

The random streams are untouched: the kernel reads the raw words that
``streams.CodeStream.fill_words`` serves (the words ``fill`` expands).

This module imports numba; ``mgd`` imports it only when the compiled path is chosen
(``mgd.compiled_kernels``). Compiled code is cached (``cache=True``) in the package's
``__pycache__``, so a process after the first skips most of the compile time.
"""

from __future__ import annotations

import sys

import numba
import numpy as np

from .network import MLP, Variation

# Activation and cost kinds as the integers the kernel branches on.
ACTIVATIONS = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "hard_sigmoid": 4}
COSTS = {"mse": 0, "cross_entropy": 1}

# Reassociated float sums (and fused multiply-adds) vectorize; NaN and inf still
# propagate (no "nnan"/"ninf"), so a diverged run still shows its NaN.
_REDUCE = {"reassoc", "contract"}

# The first layer is summed by table look-up (see _sign_tables) when a segment has at
# least this many first-layer rows to sum (steps x outputs): building the tables
# costs about as much as summing 256 rows directly.
TABLE_MIN_WORK = 256


# --- compiled pieces ------------------------------------------------------------------
@numba.njit(cache=True, fastmath=_REDUCE)
def _dot(p, start, h, n):
    """sum_i p[start + i] h[i] over i < n."""
    # (indexing a slice, not p[start + i]: numba cannot prove start + i >= 0, and its
    # negative-index check on every element stops the loop from vectorizing well)
    q = p[start : start + n]
    acc = 0.0
    for i in range(n):
        acc += q[i] * h[i]
    return acc


@numba.njit(cache=True)
def _act(z, kind):
    """Activation ``kind`` (ACTIVATIONS) of one pre-activation; NaN stays NaN."""
    if kind == 1:
        return 1.0 / (1.0 + np.exp(-z))
    if kind == 2:
        return np.tanh(z)
    if kind == 3:
        return 0.0 if z < 0.0 else z
    if kind == 4:
        v = 0.25 * z + 0.5
        if v < 0.0:
            return 0.0
        if v > 1.0:
            return 1.0
        return v
    return z


@numba.njit(cache=True)
def _activate(z, kind, var, r, node0):
    """Activation in place of a layer's pre-activations z (its neurons node0.. of run
    r), with their device variation if any (var (R, 4, nodes): gain, steep, mid,
    offset; empty without variation). One loop a layer: per-neuron calls cost more
    than the activations themselves."""
    if var.shape[0] == 0:
        for j in range(z.shape[0]):
            z[j] = _act(z[j], kind)
        return
    for j in range(z.shape[0]):
        i = node0 + j
        z[j] = var[r, 0, i] * _act(var[r, 1, i] * (z[j] - var[r, 2, i]), kind) + var[r, 3, i]


@numba.njit(cache=True)
def _forward(p, h, layout, var, r, buf, first):
    """Output of layers first.. of the network with parameters p (N,) for their input h.
    ``layout`` rows are (n_in, n_out, weight offset, bias offset, node offset,
    activation) per layer; layer l writes buf[l % 2] (buf (2, width) scratch)."""
    for l in range(first, layout.shape[0]):
        n_in, n_out, w0, b0, node0, kind = layout[l]
        out = buf[l % 2, :n_out]
        for j in range(n_out):
            out[j] = _dot(p, w0 + j * n_in, h, n_in) + p[b0 + j]
        _activate(out, kind, var, r, node0)
        h = out
    return h


@numba.njit(cache=True)
def _cost(y, t, kind):
    """MSE (mean over outputs) or cross-entropy of softmax(y) against t."""
    n = y.shape[0]
    if kind == 0:
        s = 0.0
        for o in range(n):
            d = y[o] - t[o]
            s += d * d
        return s / n
    top = y[0]
    for o in range(1, n):
        top = max(top, y[o])
    s = 0.0
    for o in range(n):
        s += np.exp(y[o] - top)
    log_s = np.log(s)
    c = 0.0
    for o in range(n):
        c += t[o] * ((y[o] - top) - log_s)
    return -c


@numba.njit(cache=True)
def _perturb(th, words, a, lo, hi, u, p):
    """p[i] = th[i] + a u_i for parameters lo <= i < hi, u_i = +1 or -1 for bit i of
    the words = 0 or 1; u (64 W) receives the +-1 codes of the words covering them."""
    one = np.uint64(1)
    for w in range(lo // 64, (hi + 63) // 64):
        word = words[w]
        uw = u[64 * w : 64 * w + 64]
        for j in range(64):
            uw[j] = 1.0 - 2.0 * ((word >> np.uint64(j)) & one)
    pp, tt, uu = p[lo:hi], th[lo:hi], u[lo:hi]  # (slices: see _dot)
    for i in range(hi - lo):
        pp[i] = tt[i] + a * uu[i]


# --- the first layer by table look-up ---------------------------------------------------
# The first layer's input x is the same for all K steps of a segment, and its weight
# codes are most of all the codes (2048 of 2410 on digits). With n_in a multiple of 8,
# every byte of a weight row's code bits covers 8 inputs at a fixed place in the row,
# so sum_i u_i x_i over the row is a sum of n_in / 8 look-ups in tables, built once a
# segment, of the 256 signed sums +-x_8g +- ... +- x_8g+7 (instead of n_in
# multiply-adds on expanded codes).


@numba.njit(cache=True)
def _sign_tables(x, tables):
    """tables[g, b] = sum_j (-1)^(bit j of b) x[8 g + j], j < 8."""
    low = np.empty(16)
    high = np.empty(16)
    for g in range(tables.shape[0]):
        xs = x[8 * g : 8 * g + 8]
        for b in range(16):
            sl = 0.0
            sh = 0.0
            for j in range(4):
                sl += -xs[j] if (b >> j) & 1 else xs[j]
                sh += -xs[4 + j] if (b >> j) & 1 else xs[4 + j]
            low[b] = sl
            high[b] = sh
        row = tables[g]
        for b in range(256):
            row[b] = low[b & 15] + high[b >> 4]


@numba.njit(cache=True)
def _first_layer(zw, tables, code_bytes, a, p, row, var, r, out):
    """Activated first layer: z_j = W_j x + a U_j x + b_j + a u_bj, with W x (zw)
    precomputed, U x from the tables and the perturbed biases in p."""
    n_in, n_out, _, b0, node0, kind = row
    per_row = n_in // 8
    for j in range(n_out):
        ux = 0.0
        codes = code_bytes[j * per_row : (j + 1) * per_row]
        for g in range(per_row):
            ux += tables[g, codes[g]]
        out[j] = zw[j] + a * ux + p[b0 + j]
    _activate(out, kind, var, r, node0)
    return out


# --- G += sum_k e_k ----------------------------------------------------------------------
@numba.njit(cache=True)
def _correlate(words, period, w, g, pad):
    """g[i] += w[k] u_ki for k = 0, 1, ... in turn (the reference loop's order), with
    u_ki = -1 where bit i of the step's words is set, else +1; pad (64 W) scratch."""
    n = g.shape[0]
    pad[:n] = g
    pad[n:] = 0.0
    one = np.uint64(1)
    # Word by word, all steps: the 64 sums stay in the first-level cache.
    for wi in range(words.shape[1]):
        gw = pad[64 * wi : 64 * wi + 64]
        for k in range(period.shape[0]):
            word = words[period[k], wi]
            wk = w[k]
            neg = -wk
            for j in range(64):
                gw[j] += neg if (word >> np.uint64(j)) & one else wk
    g[:] = pad[:n]


@numba.njit(cache=True)
def _clamp(c, lim):
    """c clipped to [-lim, lim] when lim > 0; NaN stays NaN."""
    if lim > 0.0:
        if c < -lim:
            return -lim
        if c > lim:
            return lim
    return c


@numba.njit(cache=True)
def _segment(theta, x, t, words, code_bytes, period, amp, dtheta2, c0, baseline, noise,
             clamp, layout, cost_kind, var, tables, costs, g):
    """K steps of every run; writes costs (R, K) (and c0 (R,) with ``baseline``),
    adds the error signals to g (R, N). noise (R, baseline + K) or (R, 0);
    code_bytes the words as bytes; ``tables`` the first layer by look-up."""
    runs, n = theta.shape
    steps = period.shape[0]
    width = 0
    for l in range(layout.shape[0]):
        width = max(width, layout[l, 1])
    buf = np.empty((2, width))
    u = np.empty(64 * words.shape[2])
    p = np.empty(n)
    wk = np.empty(steps)
    n_in0, n_out0 = layout[0, 0], layout[0, 1]
    sign = np.empty((n_in0 // 8 if tables else 0, 256))
    zw = np.empty(n_out0)
    lo = layout[0, 3] if tables else 0  # parameters perturbed in p
    first = 1 if baseline else 0
    for r in range(runs):
        th, a, xr = theta[r], amp[r], x[r]
        if baseline:
            c = _cost(_forward(th, xr, layout, var, r, buf, 0), t[r], cost_kind)
            c0[r] = c + noise[r, 0] if noise.shape[1] else c
        if tables:
            _sign_tables(xr, sign)
            for j in range(n_out0):
                zw[j] = _dot(th, j * n_in0, xr, n_in0)
        for k in range(steps):
            _perturb(th, words[r, period[k]], a, lo, n, u, p)
            if tables:
                h = _first_layer(zw, sign, code_bytes[r, period[k]], a, p, layout[0], var,
                                 r, buf[0, :n_out0])
                y = _forward(p, h, layout, var, r, buf, 1)
            else:
                y = _forward(p, xr, layout, var, r, buf, 0)
            c = _cost(y, t[r], cost_kind)
            if noise.shape[1]:
                c += noise[r, first + k]
            costs[r, k] = c
            wk[k] = (_clamp(c - c0[r], clamp) * a) / dtheta2[r]
        _correlate(words[r], period, wk, g[r], u)


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
        _segment(
            theta, np.ascontiguousarray(x, dtype=np.float64),
            np.ascontiguousarray(t, dtype=np.float64), words, words.view(np.uint8),
            period, amp, dtheta2, c0, baseline, self._empty if noise is None else noise,
            float(clamp), self.layout, self.cost_kind, self.var,
            self.tables and len(period) * self.layout[0, 1] >= TABLE_MIN_WORK, costs, g,
        )
        return costs
