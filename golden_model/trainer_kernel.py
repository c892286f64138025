"""Compiled (numba) kernel of the bit-exact trainer model (``trainer.HwTrainer``).

``HwTrainer``'s NumPy path batches an update window into a few array calls, which is
fast for wide networks and long windows but pays some 100 us of NumPy overhead per
window: a 2-2-1 network with tau_theta = 4 spends nearly all its time there. This
kernel runs the same schedule as plain integer loops, one step at a time, for a whole
``advance`` call: the codes of each period, the sample, the baseline pass at a segment
start, the perturbed pass, C~, the accumulation (G, or D and its outer-product flush),
the update, and the saturation counts. Every number is the NumPy path's (the same
int64 integers, not an approximation; tests/test_trainer_kernel.py compares them).

Why the integers are equal, piece by piece:

- codes: ``CodeSequence`` / ``PerturbGenModel``, recomputed per period from the same
  state (the Galois LFSR of ``golden_model.lfsr`` for the code kind, the period
  counter for the others);
- forward pass: the sums are exact (validation bounds acc_bits), so the order of the
  multiply-accumulate does not matter; weight perturbation forms theta + a s, which
  is the integer the NumPy path gets as theta h + a (s h); rescale, saturation and the
  activations follow ``datapath`` rule for rule;
- accumulation: G and D saturate at every step, which is what ``accumulate`` does
  (its one-product shortcut is taken only when no step can saturate);
- counters: the kernel returns raw counts and the caller adds them with
  ``counter_add``; a saturating sum of non-negative increments is the same whether it
  is taken per step or once per call: min(min(c + a, M) + b, M) = min(c + a + b, M).

The kernel keeps no state of its own: the trainer's arrays (theta, G, V, D, the
baseline inputs) are updated in place, so the NumPy path, ``counters()`` and the
trainer's helpers see the same state whichever path ran.

Compiled code is cached (``cache=True``) in the package's ``__pycache__``. numba checks
a cached function against its own source file only, not against the files of the
functions it calls, so every compiled function (and every constant they read) lives in
this one module: an edit anywhere in it recompiles the kernel. ``trainer_compiled``
builds the kernel's integers from a config and calls :func:`run_steps`; the trainer
imports it (and so numba) only when the compiled path is chosen.
"""

from __future__ import annotations

import numba
import numpy as np

from .datapath import HARD_SEGMENTS, PLAN_SEGMENTS

# Activation and code kinds as the integers the kernel branches on.
LINEAR, SIGMOID, TANH, RELU, HARD_SIGMOID = range(5)
ACTIVATIONS = {"linear": LINEAR, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
               "hard_sigmoid": HARD_SIGMOID}
CODE, WALSH, TIME, FREQUENCY = range(4)
CODE_KINDS = {"code": CODE, "walsh": WALSH, "time": TIME, "frequency": FREQUENCY}

# Columns of the layout array, one row per layer: fan-in, width, offsets of W and b in
# theta, of the layer's first neuron among the nodes, and of its input in the
# activation buffer (layer l's input is at H_IN, its output at H_IN + N_IN), the
# activation kind and the input's fraction bits.
N_IN, N_OUT, W0, B0, NODE0, H_IN, ACT, IN_FRAC = range(8)

# Fields of the spec tuple (the config's integers).
(TAU_X, TAU_P, TAU_THETA, NODE, KIND, AMP, THETA_FRAC, THETA_BITS, Z_BITS, Z_FRAC,
 ACT_BITS, ACT_FRAC, X_FRAC, Z_HALF_UP, COST_K, COST_BITS, CTILDE_BITS, CLAMP,
 G_BITS, GW_BITS, MOMENTUM, V_BITS, ETA, UPD_HALF_UP, WALSH_M, SPEC_LEN) = range(26)

# Slots of the counts array: the saturation counters and the forward passes.
C_Z, C_ACT, C_COST, C_CTILDE, C_D, C_G, C_THETA, C_PASSES = range(8)
COUNT_NAMES = ("z", "act", "cost", "ctilde", "d", "g", "theta", "passes")

# Every compiled function is cached on disk; NumPy's error model drops the division
# checks (every divisor is a tau, at least 1). Helpers that take arrays are inlined
# by numba: passing an array costs some ten scalars, more than a small layer's work.
_top = numba.njit(cache=True, error_model="numpy")
_inline = numba.njit(cache=True, error_model="numpy", inline="always")


# --- fixed point ------------------------------------------------------------------------
@_top
def _sat(x, bits):
    """(x saturated to signed ``bits`` bits, 1 if it saturated else 0)."""
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    if x > hi:
        return hi, 1
    if x < lo:
        return lo, 1
    return x, 0


@_top
def _rescale(x, k, half_up):
    """x 2^-k: rounded shift right for k > 0 (``fixed.shift_round``), else exact left."""
    if k > 0:
        if half_up:
            x += np.int64(1) << (k - 1)
        return x >> k
    return x << (-k)


@_top
def _segments(u, z_frac, table):
    """The segment value of u = |z| >= 0 in units of 2^-(z_frac + 5) (``sigmoid_like``)."""
    for seg in table:
        num, den_log2, slope_log2, offset = seg
        if (u << den_log2) < (np.int64(num) << z_frac):
            return (u << (5 - slope_log2)) + (np.int64(offset) << z_frac)
    return np.int64(32) << z_frac


@_top
def _sigmoid_like(z, z_frac, out_frac, hard, half_up):
    """``datapath.sigmoid_like`` of one value with the PLAN or the hard table."""
    u = -z if z < 0 else z
    v = _segments(u, z_frac, HARD_SEGMENTS) if hard else _segments(u, z_frac, PLAN_SEGMENTS)
    f = _rescale(v, z_frac + 5 - out_frac, half_up)
    return (np.int64(1) << out_frac) - f if z < 0 else f


@_top
def _activation(kind, z, z_frac, act_bits, act_frac, half_up):
    """``datapath.activation`` of one value: (h, 1 if it saturated else 0)."""
    if kind == SIGMOID:
        return _sigmoid_like(z, z_frac, act_frac, False, half_up), 0
    if kind == HARD_SIGMOID:
        return _sigmoid_like(z, z_frac, act_frac, True, half_up), 0
    if kind == TANH:
        s = _sigmoid_like(2 * z, z_frac, act_frac + 1, False, half_up)
        return s - (np.int64(1) << act_frac), 0
    if kind == RELU and z < 0:
        z = 0
    return _sat(_rescale(z, z_frac - act_frac, half_up), act_bits)


# --- codes ----------------------------------------------------------------------------
@_top
def _parity(x):
    """Parity of the bits of a non-negative int64."""
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    x ^= x >> 4
    x ^= x >> 2
    x ^= x >> 1
    return x & 1


@_top
def _lfsr_next(state, tap):
    """One Galois step (``lfsr.lfsr_next``) of a uint64 state."""
    out = state & np.uint64(1)
    state = state >> np.uint64(1)
    return state ^ tap if out else state


@_inline
def _period_codes(kind, k, state, taps, walsh_m, s):
    """s[i] = the code of element i in period k (``CodeSequence.block``); ``state`` is
    the LFSR state of period k (code kind), taps (n, 3) the bits of each mask."""
    n = s.shape[0]
    if kind == CODE:
        one = np.uint64(1)
        for i in range(n):
            a = state >> np.uint64(taps[i, 0])
            b = state >> np.uint64(taps[i, 1])
            c = state >> np.uint64(taps[i, 2])
            s[i] = 1 - 2 * np.int64((a ^ b ^ c) & one)
    elif kind == WALSH:
        km = k % walsh_m
        for i in range(n):
            s[i] = 1 - 2 * _parity(km & (i + 1))
    elif kind == TIME:
        on = k % n
        for i in range(n):
            s[i] = 1 if i == on else 0
    else:
        for i in range(n):
            s[i] = 1 - 2 * ((k // (i + 1)) & 1)


# --- the forward pass -------------------------------------------------------------------
@_inline
def _layer_z(p, h, layout, l, spec, z):
    """z[i] = sat(rescale(acc_i)) of layer l with parameters p on its input in h;
    returns the saturated count. acc_i = sum_j W_ij h_j + (b_i << in_frac), exact."""
    n_in, n_out = layout[l, N_IN], layout[l, N_OUT]
    w0, b0, h0, in_frac = layout[l, W0], layout[l, B0], layout[l, H_IN], layout[l, IN_FRAC]
    k = spec[THETA_FRAC] + in_frac - spec[Z_FRAC]
    count = 0
    for i in range(n_out):
        acc = p[b0 + i] << in_frac
        row = w0 + i * n_in
        for j in range(n_in):
            acc += p[row + j] * h[h0 + j]
        z[i], s = _sat(_rescale(acc, k, spec[Z_HALF_UP]), spec[Z_BITS])
        count += s
    return count


@_inline
def _layer_out(z, codes, amp, h, layout, l, spec):
    """Layer l's activations into h from z, each z_i + amp s_i first (node codes s of
    the network, amp 0 for none); returns the saturated count."""
    n_in, n_out = layout[l, N_IN], layout[l, N_OUT]
    node0, out0, kind = layout[l, NODE0], layout[l, H_IN] + n_in, layout[l, ACT]
    count = 0
    for i in range(n_out):
        v, s = _activation(kind, z[i] + amp * codes[node0 + i], spec[Z_FRAC],
                           spec[ACT_BITS], spec[ACT_FRAC], spec[Z_HALF_UP])
        h[out0 + i] = v
        count += s
    return count


@_inline
def _cost(h, t, sample, spec):
    """The cost of the output at the end of h against target row ``sample``:
    (C, 1 if it saturated else 0), as ``HwMLP.cost``."""
    n_out = t.shape[1]
    y0 = h.shape[0] - n_out
    wide = np.int64(0)
    for o in range(n_out):
        e = h[y0 + o] - t[sample, o]
        wide += e * e
    return _sat(_rescale(wide, spec[COST_K], spec[Z_HALF_UP]), spec[COST_BITS])


@_inline
def _forward(p, h, layout, spec, z, first, codes, amp):
    """Layers first.. with parameters p (node codes with amp, 0 for none), each
    layer's input at its place in h and the output at the end of h; returns the
    (z, act) saturated counts."""
    count_z = 0
    count_act = 0
    for l in range(first, layout.shape[0]):
        count_z += _layer_z(p, h, layout, l, spec, z)
        count_act += _layer_out(z, codes, amp, h, layout, l, spec)
    return count_z, count_act


# --- accumulation and update --------------------------------------------------------
@_inline
def _accumulate(acc, s, ct, bits):
    """acc_i <- sat(acc_i + s_i C~, bits); returns the saturated count."""
    count = 0
    for i in range(acc.shape[0]):
        acc[i], c = _sat(acc[i] + s[i] * ct, bits)
        count += c
    return count


@_inline
def _flush(D, h0, layout, spec, G):
    """Node perturbation's segment end (``HwTrainer._flush``): G_p <- sat(G_p + D_j
    h_p) for the weights (layer 0's x aligned to the act LSB) and G_b <- sat(G_b +
    (D_j << act_frac)) for the biases, then D = 0; returns the saturated count."""
    bits, act_frac = spec[GW_BITS], spec[ACT_FRAC]
    count = 0
    for l in range(layout.shape[0]):
        n_in, n_out, w0, b0 = layout[l, N_IN], layout[l, N_OUT], layout[l, W0], layout[l, B0]
        node0, hin = layout[l, NODE0], layout[l, H_IN]
        shift = act_frac - spec[X_FRAC] if l == 0 else 0
        for i in range(n_out):
            d = D[node0 + i]
            row = w0 + i * n_in
            for j in range(n_in):
                G[row + j], c = _sat(G[row + j] + d * (h0[hin + j] << shift), bits)
                count += c
            G[b0 + i], c = _sat(G[b0 + i] + (d << act_frac), bits)
            count += c
            D[node0 + i] = 0
    return count


@_inline
def _update(theta, G, V, spec):
    """``WeightUpdateModel._apply`` with update: optional momentum V <- sat(V - (V >> k)
    + G), theta <- sat(theta - round(src >> eta_shift)), G = 0; returns the (G and V,
    theta) saturated counts."""
    momentum, eta, half_up = spec[MOMENTUM], spec[ETA], spec[UPD_HALF_UP]
    count_g = 0
    count_t = 0
    for i in range(theta.shape[0]):
        src = G[i]
        if momentum:
            V[i], c = _sat(V[i] - (V[i] >> momentum) + src, spec[V_BITS])
            count_g += c
            src = V[i]
        theta[i], c = _sat(theta[i] - _rescale(src, eta, half_up), spec[THETA_BITS])
        count_t += c
        G[i] = 0
    return count_g, count_t


# --- the schedule ---------------------------------------------------------------------
@_inline
def _starts(n, spec):
    """Whether step n starts a segment (the sample changed or theta was updated)."""
    return n % spec[TAU_X] == 0 or n % spec[TAU_THETA] == 0


@_inline
def _load(x, sample, h):
    """Training sample ``sample``'s input into h, layer 0's input."""
    for j in range(x.shape[1]):
        h[j] = x[sample, j]


@_inline
def _count_pass(counts, n_z, n_act, n_cost):
    """One forward pass and its saturations."""
    counts[C_Z] += n_z
    counts[C_ACT] += n_act
    counts[C_COST] += n_cost
    counts[C_PASSES] += 1


@_inline
def _baseline(theta, h, layout, spec, z, z0, no_codes, t, sample, counts):
    """The unperturbed pass of a segment start on the input in h, counted; layer 0's z
    stays in z0. Returns (C0, layer 0's z saturations)."""
    z0_sat = _layer_z(theta, h, layout, 0, spec, z0)
    n_act = _layer_out(z0, no_codes, 0, h, layout, 0, spec)
    n_z, n_act1 = _forward(theta, h, layout, spec, z, 1, no_codes, 0)
    c, n_cost = _cost(h, t, sample, spec)
    _count_pass(counts, z0_sat + n_z, n_act + n_act1, n_cost)
    return c, z0_sat


@_inline
def _perturbed(p, theta, h, layout, spec, z, z0, z0_sat, s, no_codes, t, sample, counts):
    """The step's perturbed pass on the input in h, counted; returns C. Weight
    perturbation: parameters p = theta + a s. Node perturbation: theta, with the
    segment's layer-0 z (z0, z0_sat saturations) and every z_i + a s_i."""
    if spec[NODE]:
        amp = spec[AMP]
        n_act = _layer_out(z0, s, amp, h, layout, 0, spec)
        n_z, n_act1 = _forward(theta, h, layout, spec, z, 1, s, amp)
        n_z += z0_sat
    else:
        n_act = 0
        n_z, n_act1 = _forward(p, h, layout, spec, z, 0, no_codes, 0)
    c, n_cost = _cost(h, t, sample, spec)
    _count_pass(counts, n_z, n_act + n_act1, n_cost)
    return c


@_inline
def _ctilde(c, c0, spec, counts):
    """C~ = sat(C - C0, ctilde_bits), counted, then the optional clamp."""
    ct, n_ct = _sat(c - c0, spec[CTILDE_BITS])
    counts[C_CTILDE] += n_ct
    lim = spec[CLAMP]
    if lim:
        ct = min(max(ct, -lim), lim)
    return ct


@_inline
def _gradient(end, s, ct, D, h0, layout, spec, G, counts):
    """Weight perturbation: G += s C~. Node perturbation: D += s C~, and at a
    segment's end (the step before ``end`` starts a new one) the flush into G."""
    if spec[NODE]:
        counts[C_D] += _accumulate(D, s, ct, spec[G_BITS])
        if _starts(end, spec):
            counts[C_G] += _flush(D, h0, layout, spec, G)
    else:
        counts[C_G] += _accumulate(G, s, ct, spec[G_BITS])


@_top
def run_steps(n0, n1, spec, layout, taps, lfsr, theta, G, V, D, h0, c0, x, t, order, counts,
        rec, every, updates0, snap, snap_n):
    """Steps n0..n1-1 of the trainer (``HwTrainer.advance``); returns the updates done.

    In place: theta, G, V, D (node accumulators), h0 (the segment's baseline layer
    inputs, flat), c0[0] (its baseline cost), lfsr[0] (the state of period
    (n1 - 1) // tau_p; enter with that of n0 // tau_p, lfsr[1] the tap mask), counts
    (raw increments, ``C_*`` slots). rec (3, n1 - n0) receives each step's C, C0 and
    C~ (or is (3, 0)); with every > 0, snap[r] / snap_n[r] receive theta and the step
    count after each update whose number (from updates0 + 1) is a multiple of every.
    """
    tau_x, tau_p, amp = spec[TAU_X], spec[TAU_P], spec[AMP]
    last = layout.shape[0] - 1
    h = np.zeros(layout[last, H_IN] + layout[last, N_IN] + layout[last, N_OUT], np.int64)
    z = np.zeros(np.max(layout[:, N_OUT]), np.int64)
    # Layer 0's z is the same in every pass of a node-perturbation segment (theta and
    # the sample are fixed, the codes come after z): the baseline's is kept.
    z0 = np.zeros(layout[0, N_OUT], np.int64)
    s = np.zeros(D.shape[0] if spec[NODE] else theta.shape[0], np.int64)
    no_codes = np.zeros(D.shape[0], np.int64)
    p = theta.copy()  # weight perturbation: theta + a s of the period
    state, tap = lfsr[0], lfsr[1]
    base = c0[0]
    z0_sat = 0
    if spec[NODE] and not _starts(n0, spec):
        # The segment began in an earlier call: its layer-0 z again (not a pass).
        _load(x, order[(n0 // tau_x) % order.shape[0]], h)
        z0_sat = _layer_z(theta, h, layout, 0, spec, z0)
    stale = True  # p needs forming: new codes or a new theta
    updates = 0
    for n in range(n0, n1):
        if n == n0 or n % tau_p == 0:
            if n != n0:
                state = _lfsr_next(state, tap)
            _period_codes(spec[KIND], n // tau_p, state, taps, spec[WALSH_M], s)
            stale = True
        if stale and not spec[NODE]:
            for i in range(theta.shape[0]):
                p[i] = theta[i] + amp * s[i]
            stale = False
        sample = order[(n // tau_x) % order.shape[0]]
        _load(x, sample, h)
        if _starts(n, spec):
            base, z0_sat = _baseline(theta, h, layout, spec, z, z0, no_codes, t, sample,
                                     counts)
            for j in range(h0.shape[0]):
                h0[j] = h[j]
        c = _perturbed(p, theta, h, layout, spec, z, z0, z0_sat, s, no_codes, t, sample,
                       counts)
        ct = _ctilde(c, base, spec, counts)
        _gradient(n + 1, s, ct, D, h0, layout, spec, G, counts)
        if rec.shape[1]:
            rec[0, n - n0] = c
            rec[1, n - n0] = base
            rec[2, n - n0] = ct
        if (n + 1) % spec[TAU_THETA] == 0:
            n_g, n_theta = _update(theta, G, V, spec)
            counts[C_G] += n_g
            counts[C_THETA] += n_theta
            stale = True
            updates += 1
            done = updates0 + updates
            if every > 0 and done % every == 0:
                r = done // every - updates0 // every - 1
                snap[r, :] = theta
                snap_n[r] = n + 1
    lfsr[0] = state
    c0[0] = base
    return updates


# --- the streaming schedule (hw.pipeline = "stream", ``trainer_stream``) ----------------
# Slots of the stream's state array: the next evaluation, whether a baseline is valid,
# the updates queued, the update delay D.
S_E, S_SEG_OK, S_QUEUED, S_DELAY = range(4)


@_top
def run_stream(n0, n1, spec, layout, taps, lfsr, theta, theta_fwd, G, V, D, h0, c0, x, t,
               order, counts, rec, every, updates0, snap, snap_n, st, fifo_at, fifo_theta,
               update_evals):
    """Steps n0..n1-1 of the streaming trainer (``trainer_stream.advance_reference``),
    one evaluation per loop; returns the updates done.

    As :func:`run_steps`, plus: theta_fwd (the forward passes' parameters; theta is
    the G frame's), st (``S_*`` slots, in place), the FIFO of queued updates
    (fifo_at[i], fifo_theta[i] for i < st[S_QUEUED], oldest first, in place),
    update_evals[u] (the evaluation of each update's last C~), and rec (4, n1 - n0)
    also receives each step's perturbed evaluation.
    """
    tau_x, tau_p, tau_theta, amp = spec[TAU_X], spec[TAU_P], spec[TAU_THETA], spec[AMP]
    last = layout.shape[0] - 1
    h = np.zeros(layout[last, H_IN] + layout[last, N_IN] + layout[last, N_OUT], np.int64)
    z = np.zeros(np.max(layout[:, N_OUT]), np.int64)
    z0 = np.zeros(layout[0, N_OUT], np.int64)
    s = np.zeros(D.shape[0] if spec[NODE] else theta.shape[0], np.int64)
    no_codes = np.zeros(D.shape[0], np.int64)
    p = theta_fwd.copy()
    state, tap = lfsr[0], lfsr[1]
    base = c0[0]
    e, seg_ok, queued, delay = st[S_E], st[S_SEG_OK], st[S_QUEUED], st[S_DELAY]
    z0_sat = 0
    if spec[NODE] and seg_ok:
        # The segment began in an earlier call: its layer-0 z again (not a pass).
        _load(x, order[(n0 // tau_x) % order.shape[0]], h)
        z0_sat = _layer_z(theta_fwd, h, layout, 0, spec, z0)
    stale = True  # p needs forming: new codes or a new theta_fwd
    updates = 0
    n = n0
    while n < n1:
        if queued > 0 and fifo_at[0] == e:
            # The oldest queued update reaches the stream; it ends the segment.
            theta_fwd[:] = fifo_theta[0]
            for q in range(1, queued):
                fifo_at[q - 1] = fifo_at[q]
                fifo_theta[q - 1, :] = fifo_theta[q]
            queued -= 1
            seg_ok = 0
            stale = True
        sample = order[(n // tau_x) % order.shape[0]]
        _load(x, sample, h)
        if not seg_ok:
            base, z0_sat = _baseline(theta_fwd, h, layout, spec, z, z0, no_codes, t, sample,
                                     counts)
            for j in range(h0.shape[0]):
                h0[j] = h[j]
            seg_ok = 1
            e += 1
            continue
        # Step n's perturbed evaluation (each step has exactly one).
        if n == n0 or n % tau_p == 0:
            if n != n0:
                state = _lfsr_next(state, tap)
            _period_codes(spec[KIND], n // tau_p, state, taps, spec[WALSH_M], s)
            stale = True
        if stale and not spec[NODE]:
            for i in range(theta.shape[0]):
                p[i] = theta_fwd[i] + amp * s[i]
            stale = False
        c = _perturbed(p, theta_fwd, h, layout, spec, z, z0, z0_sat, s, no_codes, t, sample,
                       counts)
        ct = _ctilde(c, base, spec, counts)
        # The G frame, at once.
        if spec[NODE]:
            counts[C_D] += _accumulate(D, s, ct, spec[G_BITS])
        else:
            counts[C_G] += _accumulate(G, s, ct, spec[G_BITS])
        if rec.shape[1]:
            rec[0, n - n0] = c
            rec[1, n - n0] = base
            rec[2, n - n0] = ct
            rec[3, n - n0] = e
        n += 1
        if n % tau_x == 0:
            seg_ok = 0
        window_end = n % tau_theta == 0
        if spec[NODE] and (window_end or not seg_ok or (queued > 0 and fifo_at[0] == e + 1)):
            counts[C_G] += _flush(D, h0, layout, spec, G)
        if window_end:
            n_g, n_theta = _update(theta, G, V, spec)
            counts[C_G] += n_g
            counts[C_THETA] += n_theta
            fifo_at[queued] = e + delay + 1
            fifo_theta[queued, :] = theta
            queued += 1
            update_evals[updates] = e
            updates += 1
            done = updates0 + updates
            if every > 0 and done % every == 0:
                r = done // every - updates0 // every - 1
                snap[r, :] = theta
                snap_n[r] = n
        e += 1
    lfsr[0] = state
    c0[0] = base
    st[S_E], st[S_SEG_OK], st[S_QUEUED] = e, seg_ok, queued
    return updates
