"""The numba-compiled functions of the float model's kernel (:mod:`golden_model.kernels`
has the handle that calls them and explains the numbers).

Every compiled function is in this one file on purpose: numba's on-disk cache
(``cache=True``) is invalidated per source file and does not notice a change to a
compiled function imported from another file, so a piece kept elsewhere could leave a
stale compiled segment in ``__pycache__``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

# Activation and cost kinds as the integers the kernel branches on.
LINEAR, SIGMOID, TANH, RELU, HARD_SIGMOID = range(5)
ACTIVATIONS = {"linear": LINEAR, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
               "hard_sigmoid": HARD_SIGMOID}
COSTS = {"mse": 0, "cross_entropy": 1}

# Every compiled function: cached on disk, and NumPy's float semantics (x / 0 is inf
# or NaN, not an exception: a division that may raise keeps a loop from vectorizing).
# The per-step pieces that take arrays are inlined by numba into their callers: a call
# passes each array as some ten numbers, which costs more than a small layer's
# arithmetic. Scalar helpers (_exp, _act, _dot, _clamp) stay separate functions, which
# LLVM inlines by itself: inlining them in numba too would double the compile time
# (and drop _dot's fast-math flags, which are the caller's after numba's inlining).
_top = numba.njit(cache=True, error_model="numpy")
_inline = numba.njit(cache=True, error_model="numpy", inline="always")
# Reassociated float sums (and fused multiply-adds) vectorize; NaN and inf still
# propagate (no "nnan"/"ninf"), so a diverged run still shows its NaN.
_sum = numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})

# --- exp that vectorizes -------------------------------------------------------------------
# libm's exp is a call per value; this one is plain arithmetic, so a layer's sigmoids
# become vector instructions (some 2.5x faster than with libm's exp). exp(x) = 2^n e^r with
# n = round(x / ln 2) and r = x - n ln 2 (ln 2 in two parts, the first with enough
# trailing zero bits that n ln2_hi is exact), |r| <= ln(2) / 2, and e^r by its Taylor
# series to r^13 (truncation below 1e-17 relative). Within 1 ulp of np.exp over the
# range used (tests/test_kernels.py); arguments are clipped to [-708, 709], which keeps
# 2^n a normal number (a sigmoid there is 1 or below 1e-307 either way).
_LOG2E = 1.4426950408889634
_LN2_HI = float.fromhex("0x1.62e42fee00000p-1")
_LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
_ROUND = 1.5 * 2.0**52  # x + _ROUND - _ROUND rounds x to an integer (|x| < 2^51)
_C = tuple(1.0 / math.factorial(k) for k in range(14))
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]


@intrinsic
def _as_float(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return numba.types.float64(numba.types.int64), codegen


@_top
def _exp(x):
    """e^x for x in [-708, 709] (clipped to it; NaN stays NaN)."""
    if x > 709.0:
        x = 709.0
    if x < -708.0:
        x = -708.0
    n = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = _C13
    for c in (_C12, _C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2, 1.0, 1.0):
        p = p * r + c
    return p * _as_float((np.int64(n) + 1023) << 52)


# --- compiled pieces ------------------------------------------------------------------
# Written with offsets into whole arrays, not slices: a slice is a new array whose
# reference count numba updates atomically, which costs more than the arithmetic of a
# small layer. Indices that run over a vector are unsigned: numba checks every signed
# index for wraparound (negative indices count from the end), and that check keeps a
# loop from vectorizing well.


@_sum
def _dot(p, start, h, h0, n):
    """sum_i p[start + i] h[h0 + i] over i < n."""
    s, t = np.uint64(start), np.uint64(h0)
    acc = 0.0
    for i in range(np.uint64(n)):
        acc += p[s + i] * h[t + i]
    return acc


@_top
def _act(z, kind):
    """Activation ``kind`` (ACTIVATIONS) of one pre-activation; NaN stays NaN."""
    if kind == SIGMOID:
        return 1.0 / (1.0 + _exp(-z))
    if kind == TANH:
        return np.tanh(z)
    if kind == RELU:
        return 0.0 if z < 0.0 else z
    if kind == HARD_SIGMOID:
        v = 0.25 * z + 0.5
        if v < 0.0:
            return 0.0
        if v > 1.0:
            return 1.0
        return v
    return z


@_inline
def _activate(z, z0, n, kind, var, r, node0):
    """Activation in place of z[z0:z0 + n], the pre-activations of neurons node0.. of
    run r, with their device variation if any (var (R, 4, nodes): gain, steep, mid,
    offset; empty without variation)."""
    if var.shape[0] == 0:
        if kind == SIGMOID:  # its own loop, which vectorizes
            for j in range(np.uint64(z0), np.uint64(z0 + n)):
                z[j] = 1.0 / (1.0 + _exp(-z[j]))
            return
        for j in range(z0, z0 + n):
            z[j] = _act(z[j], kind)
        return
    for j in range(n):
        i = node0 + j
        v = _act(var[r, 1, i] * (z[z0 + j] - var[r, 2, i]), kind)
        z[z0 + j] = var[r, 0, i] * v + var[r, 3, i]


@_inline
def _layer(p, layout, l, h, h0, out, o0, var, r):
    """Layer l with parameters p (N,) on the input h[h0:]: out[o0 + j], activated.
    ``layout`` rows are (n_in, n_out, weight offset, bias offset, node offset,
    activation) per layer."""
    n_in, n_out, w0, b0 = layout[l, 0], layout[l, 1], layout[l, 2], layout[l, 3]
    for j in range(n_out):
        out[o0 + j] = _dot(p, w0 + j * n_in, h, h0, n_in) + p[b0 + j]
    _activate(out, o0, n_out, layout[l, 5], var, r, layout[l, 4])


@_inline
def _forward(p, x, x0, layout, var, r, hb, first):
    """Layers first.. with parameters p; layer 0 reads x[x0:], layer l writes
    hb[(l % 2) w:] with w = len(hb) // 2. Returns the offset of the output in hb."""
    width = hb.shape[0] // 2
    for l in range(first, layout.shape[0]):
        if l == 0:
            _layer(p, layout, 0, x, x0, hb, 0, var, r)
        else:
            _layer(p, layout, l, hb, ((l - 1) % 2) * width, hb, (l % 2) * width, var, r)
    return ((layout.shape[0] - 1) % 2) * width


@_inline
def _cost(y, y0, t, t0, n, kind):
    """MSE (mean over outputs) or cross-entropy of softmax(y[y0:y0 + n]) against
    t[t0:t0 + n]."""
    if kind == 0:
        s = 0.0
        for o in range(n):
            d = y[y0 + o] - t[t0 + o]
            s += d * d
        return s / n
    top = y[y0]
    for o in range(1, n):
        top = max(top, y[y0 + o])
    s = 0.0
    for o in range(n):
        s += np.exp(y[y0 + o] - top)
    log_s = np.log(s)
    c = 0.0
    for o in range(n):
        c += t[t0 + o] * ((y[y0 + o] - top) - log_s)
    return -c


@_inline
def _perturb(theta, r, words, kk, a, lo, hi, u, p):
    """p[i] = theta[r, i] + a u_i for parameters lo <= i < hi, u_i = +1 or -1 for bit
    i of the words of period kk = 0 or 1; u (64 W) receives the +-1 codes of the
    words covering them."""
    one = np.uint64(1)
    for w in range(lo // 64, (hi + 63) // 64):
        word = words[r, kk, w]
        base = np.uint64(64 * w)
        for j in range(np.uint64(64)):
            u[base + j] = 1.0 - 2.0 * ((word >> j) & one)
    for i in range(np.uint64(lo), np.uint64(hi)):
        p[i] = theta[r, i] + a * u[i]


# --- the first layer by table look-up ---------------------------------------------------
# The first layer's input x is the same for all K steps of a segment, and its weight
# codes are most of all the codes (2048 of 2410 on digits). With n_in a multiple of 8,
# every byte of a weight row's code bits covers 8 inputs at a fixed place in the row,
# so sum_i u_i x_i over the row is a sum of n_in / 8 look-ups in tables, built once a
# segment, of the 256 signed sums +-x_8g +- ... +- x_8g+7 (instead of n_in
# multiply-adds on expanded codes).


@_top
def _sign_tables(x, x0, tables):
    """tables[g, b] = sum_j (-1)^(bit j of b) x[x0 + 8 g + j], j < 8."""
    low = np.empty(16)
    high = np.empty(16)
    for g in range(tables.shape[0]):
        at = x0 + 8 * g
        for b in range(16):
            sl = 0.0
            sh = 0.0
            for j in range(4):
                sl += -x[at + j] if (b >> j) & 1 else x[at + j]
                sh += -x[at + 4 + j] if (b >> j) & 1 else x[at + 4 + j]
            low[b] = sl
            high[b] = sh
        for b in range(256):
            tables[g, b] = low[b & 15] + high[b >> 4]


@_inline
def _first_layer(zw, tables, code_bytes, r, kk, a, p, layout, var, hb):
    """Activated first layer into hb: z_j = W_j x + a U_j x + b_j + a u_bj, with W x
    (zw) precomputed, U x from the tables and the code bytes of period kk, and the
    perturbed biases in p."""
    n_out, b0 = layout[0, 1], layout[0, 3]
    per_row = np.uint64(layout[0, 0] // 8)
    q = np.uint64(0)
    for j in range(n_out):
        ux = 0.0
        for g in range(per_row):
            ux += tables[g, code_bytes[r, kk, q + g]]
        q += per_row
        hb[j] = zw[j] + a * ux + p[b0 + j]
    _activate(hb, 0, n_out, layout[0, 5], var, r, layout[0, 4])


# --- G += sum_k e_k ----------------------------------------------------------------------
@_top
def _add_codes(pad, base, word, wk):
    """pad[base + j] += -wk where bit j of word is set, else +wk (j < 64)."""
    one = np.uint64(1)
    neg = -wk
    for j in range(np.uint64(64)):
        pad[base + j] += neg if (word >> j) & one else wk


@_inline
def _add_codes4(pad, base, words, r, wi, kk, w, k):
    """_add_codes for word wi of steps k..k+3 in turn, each sum loaded and stored
    once (kk the period of each step)."""
    one = np.uint64(1)
    b0, b1 = words[r, kk[k], wi], words[r, kk[k + 1], wi]
    b2, b3 = words[r, kk[k + 2], wi], words[r, kk[k + 3], wi]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    for j in range(np.uint64(64)):
        v = pad[base + j]
        v += -w0 if (b0 >> j) & one else w0
        v += -w1 if (b1 >> j) & one else w1
        v += -w2 if (b2 >> j) & one else w2
        v += -w3 if (b3 >> j) & one else w3
        pad[base + j] = v


@_top
def _correlate(words, r, period, w, g, pad):
    """g[r, i] += w[k] u_ki for k = 0, 1, ... in turn (the reference loop's order),
    u_ki = -1 where bit i of the words of period period[k] is set, else +1; pad
    (64 W) scratch."""
    n = g.shape[1]
    steps = period.shape[0]
    for i in range(n):
        pad[i] = g[r, i]
    # Word by word, all steps: the word's 64 sums stay in the first-level cache.
    for wi in range(words.shape[2]):
        base = np.uint64(64 * wi)
        quads = steps // 4 * 4
        for k in range(0, quads, 4):
            _add_codes4(pad, base, words, r, wi, period, w, k)
        for k in range(quads, steps):
            _add_codes(pad, base, words[r, period[k], wi], w[k])
    for i in range(n):
        g[r, i] = pad[i]


@_top
def _clamp(c, lim):
    """c clipped to [-lim, lim] when lim > 0; NaN stays NaN."""
    if lim > 0.0:
        if c < -lim:
            return -lim
        if c > lim:
            return lim
    return c


@_top
def segment(theta, x, t, words, code_bytes, period, amp, dtheta2, c0, baseline, noise,
             clamp, layout, cost_kind, var, tables, costs, g):
    """K steps of every run; writes costs (R, K) (and c0 (R,) with ``baseline``),
    adds the error signals to g (R, N). x, t the samples, flat (R n_in), (R n_out);
    noise (R, baseline + K) or (R, 0); code_bytes the words as bytes; ``tables``
    the first layer by look-up."""
    runs, n = theta.shape
    steps = period.shape[0]
    n_layers = layout.shape[0]
    n_in, n_hid, n_out = layout[0, 0], layout[0, 1], layout[n_layers - 1, 1]
    width = 0
    for l in range(n_layers):
        width = max(width, layout[l, 1])
    hb = np.empty(2 * width)
    u = np.zeros(64 * words.shape[2])
    p = np.empty(n)
    wk = np.empty(steps)
    sign = np.empty((n_in // 8 if tables else 0, 256))
    zw = np.empty(n_hid)
    lo = layout[0, 3] if tables else 0  # parameters perturbed in p
    rest = 1 if tables else 0  # the first layer that _forward evaluates
    first = 1 if baseline else 0
    for r in range(runs):
        a = amp[r]
        for i in range(n):
            p[i] = theta[r, i]
        if baseline:
            y0 = _forward(p, x, r * n_in, layout, var, r, hb, 0)
            c = _cost(hb, y0, t, r * n_out, n_out, cost_kind)
            c0[r] = c + noise[r, 0] if noise.shape[1] else c
        if tables:
            _sign_tables(x, r * n_in, sign)
            for j in range(n_hid):
                zw[j] = _dot(p, j * n_in, x, r * n_in, n_in)
        for k in range(steps):
            kk = period[k]
            _perturb(theta, r, words, kk, a, lo, n, u, p)
            if tables:
                _first_layer(zw, sign, code_bytes, r, kk, a, p, layout, var, hb)
            y0 = _forward(p, x, r * n_in, layout, var, r, hb, rest)
            c = _cost(hb, y0, t, r * n_out, n_out, cost_kind)
            if noise.shape[1]:
                c += noise[r, first + k]
            costs[r, k] = c
            wk[k] = (_clamp(c - c0[r], clamp) * a) / dtheta2[r]
        _correlate(words, r, period, wk, g, u)
