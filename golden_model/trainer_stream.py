"""The streaming trainer's schedule (``hw.pipeline = "stream"``) in ``HwTrainer``.

The arithmetic of every pass, C~, G and D accumulation, node perturbation's flush and
the update is the sequential trainer's (``trainer``, ``trainer_kernel``); what
changes is which parameters each evaluation sees and when baselines are taken.
docs/hardware_network.md ("Streaming trainer: the contract") states the rule; in
short, evaluations e = 0, 1, ... enter one per slot, and for each:

1. an update computed from the C~ of evaluation E arrives at e = E + D + 1
   (D = ``StreamTiming.delay``): the forward parameters theta_fwd become that
   update's result and the segment ends (a FIFO holds the updates on their way);
2. the sample is order[(n // tau_x) % S] for the next step n;
3. without a valid baseline, e is a baseline: C0 and the layer inputs h0;
4. else e is step n's perturbed evaluation with theta_fwd; in the G frame (the
   weight-update unit's own theta) C~ is accumulated at once; n += 1; a sample
   change (n % tau_x == 0) ends the segment; node perturbation flushes D into G at a
   segment end (the next evaluation is a baseline) or a window end; at a window end
   (n % tau_theta == 0) the update runs on the G-frame theta and is queued for
   e + D + 1.

A run ends after the last step's perturbed evaluation. Two paths give the same
integers: :func:`advance_reference`, one evaluation at a time with the NumPy
datapath (``HwMLP.forward``), and :func:`advance_compiled`, the numba kernel
``trainer_kernel.run_stream``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .fixed import counter_add, ctilde, sat
from .lfsr import lfsr_jump


@dataclass
class StreamState:
    """Where the stream stands between ``advance`` calls.

    Attributes
    ----------
    delay : D, evaluations an update is late (``StreamTiming.delay``)
    theta_fwd : the parameters the forward passes see
    e : the next evaluation's index (= evaluations so far)
    seg_ok : a baseline valid for the current sample and theta_fwd exists
    fifo : the updates on their way, (apply_at, theta after the update), in order
    """

    delay: int
    theta_fwd: np.ndarray
    e: int = 0
    seg_ok: bool = False
    fifo: deque = field(default_factory=deque)

    def arrives(self, e: int) -> bool:
        """Whether an update reaches the stream at evaluation e."""
        return bool(self.fifo) and self.fifo[0][0] == e


def advance_reference(tr, steps: int, record: bool):
    """``HwTrainer.advance`` of a stream config, one evaluation at a time (NumPy);
    returns the Trace columns (step, sample, cost, c0, ctilde, evals) or None."""
    st, m, h, net, data = tr.stream, tr.m, tr.hw, tr.net, tr.data
    target = tr.n + steps
    rows = []
    while tr.n < target:
        e = st.e
        if st.arrives(e):
            st.theta_fwd = st.fifo.popleft()[1]
            st.seg_ok = False
        sample = int(tr.order[(tr.n // m.tau_x) % len(tr.order)])
        x, t = data.x_train[sample][None], data.t_train[sample][None]
        if not st.seg_ok:
            out = net.forward(st.theta_fwd, x)
            c = _pass(tr, out, t)
            tr._c0 = c
            tr._h0 = [v[0].copy() for v in out.inputs]
            st.seg_ok = True
            st.e += 1
            continue
        n = tr.n
        s = tr.codes.steps(n, n + 1, m.tau_p)
        out = net.forward(st.theta_fwd, x, codes=None if tr.node else s,
                          node_codes=s if tr.node else None)
        c = _pass(tr, out, t)
        ct, ct_sat = ctilde(c - tr._c0, h.ctilde_bits, h.clamp)
        tr._count("ctilde", int(ct_sat))
        s = s[0].astype(np.int64)
        if tr.node:
            tr.D, d_sat = sat(tr.D + s * ct, h.g_bits)
            tr._count("d", np.count_nonzero(d_sat))
        else:
            tr.wu.G, g_sat = sat(tr.wu.G + s * ct, h.g_bits)
            tr.wu.sat_g = counter_add(tr.wu.sat_g, int(np.count_nonzero(g_sat)),
                                      h.counter_bits)
        if record:
            rows.append((n, sample, c, tr._c0, int(ct), e))
        tr.n += 1
        if tr.n % m.tau_x == 0:
            st.seg_ok = False
        window_end = tr.n % m.tau_theta == 0
        if tr.node and (window_end or not st.seg_ok or st.arrives(e + 1)):
            tr._flush(tr._h0)
        if window_end:
            tr._update()
            st.fifo.append((e + st.delay + 1, tr.wu.theta.copy()))
            tr.update_evals.append(e)
        st.e += 1
    if not record:
        return None
    cols = np.array(rows, np.int64).reshape(-1, 6).T
    return tuple(cols)


def _pass(tr, out, t) -> int:
    """Count one forward pass (an evaluation) and its saturations; returns its cost."""
    c, c_sat = tr.net.cost(out.y, t)
    tr.passes += 1
    tr._count("z", out.sat_z.sum())
    tr._count("act", out.sat_act.sum())
    tr._count("cost", c_sat.sum())
    return int(c[0])


def advance_compiled(tr, steps: int, record: bool):
    """``advance_reference`` in the compiled kernel (``TrainerKernel.run_stream``):
    the same state afterwards, the same Trace columns."""
    k, h, m, st, wu = tr.kernel, tr.hw, tr.m, tr.stream, tr.wu
    n0, n1 = tr.n, tr.n + steps
    state = tr.codes._state
    if m.perturbation == "code":
        state = lfsr_jump(state, n0 // m.tau_p - tr.codes._k, h.lfsr_bits)
    wu.theta = np.ascontiguousarray(wu.theta, np.int64)
    wu.G = np.ascontiguousarray(wu.G, np.int64)
    wu.V = np.ascontiguousarray(wu.V, np.int64)
    tr.D = np.ascontiguousarray(tr.D, np.int64)
    st.theta_fwd = np.array(st.theta_fwd, np.int64)
    h0 = np.concatenate(tr._h0) if tr._h0 else np.zeros(k.h0_size, np.int64)
    arrays = tr._kdata | {"theta": wu.theta, "G": wu.G, "V": wu.V, "D": tr.D, "h0": h0,
                          "theta_fwd": st.theta_fwd}
    res = k.run_stream(n0, n1, arrays, state, tr._c0, tr.record_theta_every, tr.updates,
                       record, st)
    tr.n = n1
    tr.updates += res.updates
    tr.thetas.extend(res.thetas)
    tr.update_evals.extend(res.update_evals)
    c = res.counts
    for name in tr.sat:
        tr._count(name, c[name])
    wu.sat_g = counter_add(wu.sat_g, c["g"], h.counter_bits)
    wu.sat_theta = counter_add(wu.sat_theta, c["theta"], h.counter_bits)
    tr.passes += c["passes"]
    tr._c0 = res.c0
    tr._h0 = [h0[sl].copy() for sl in k.input_slices]
    if m.perturbation == "code":
        tr.codes._k, tr.codes._state = (n1 - 1) // m.tau_p, res.state
    if not record:
        return None
    step = np.arange(n0, n1)
    sample = tr.order[(step // m.tau_x) % len(tr.order)]
    return step, sample, res.rec[0], res.rec[1], res.rec[2], res.rec[3]
