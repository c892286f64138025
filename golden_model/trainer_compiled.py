"""The trainer's handle on the compiled kernel (``trainer_kernel``): which configs it
covers, the kernel's integers (the spec tuple, the layer layout, the code taps) built
from a config, and ``TrainerKernel.run``, one ``HwTrainer.advance`` call.

This module imports numba (through ``trainer_kernel``); ``trainer`` imports it only
when the compiled path is chosen.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import HardwareConfig, MGDConfig
from .datapath import HwMLP
from .lfsr import mask_taps, tap_mask
from .perturb_gen import walsh_size
from .trainer_kernel import (
    ACT_BITS,
    ACT_FRAC,
    ACTIVATIONS,
    AMP,
    CLAMP,
    CODE_KINDS,
    COST_BITS,
    COST_K,
    COUNT_NAMES,
    CTILDE_BITS,
    ETA,
    G_BITS,
    GW_BITS,
    H_IN,
    KIND,
    MOMENTUM,
    N_IN,
    NODE,
    SPEC_LEN,
    TAU_P,
    TAU_THETA,
    TAU_X,
    THETA_BITS,
    THETA_FRAC,
    UPD_HALF_UP,
    V_BITS,
    WALSH_M,
    X_FRAC,
    Z_BITS,
    Z_FRAC,
    Z_HALF_UP,
    run_steps,
    run_stream,
)


def supports(cfg: MGDConfig) -> bool:
    """Whether the kernel covers a (hardware-validated, ``datapath = "mlp"``) config:
    every activation and code kind of the model, LFSRs up to 64 bits."""
    n = cfg.network
    return (
        n.activation in ACTIVATIONS and n.output_activation in ACTIVATIONS
        and cfg.mgd.perturbation in CODE_KINDS and cfg.hw.lfsr_bits <= 64
    )


class TrainerKernel:
    """The compiled trainer of one config: its spec and layout, and ``run``.

    Parameters
    ----------
    cfg : the trainer's config
    net : its ``HwMLP``
    wu_hw : the ``hw`` section of its weight-update unit (node perturbation's wider G,
        V and larger eta_shift)
    """

    def __init__(self, cfg: MGDConfig, net: HwMLP, wu_hw: HardwareConfig):
        h, m = cfg.hw, cfg.mgd
        node = m.mode == "node"
        fields = {
            TAU_X: m.tau_x, TAU_P: m.tau_p, TAU_THETA: m.tau_theta, NODE: int(node),
            KIND: CODE_KINDS[m.perturbation], AMP: 1 << h.amp_log2,
            THETA_FRAC: h.theta_frac, THETA_BITS: wu_hw.theta_bits, Z_BITS: h.z_bits,
            Z_FRAC: h.z_frac, ACT_BITS: h.act_bits, ACT_FRAC: h.act_frac,
            X_FRAC: h.x_frac, Z_HALF_UP: int(h.z_rounding == "half_up"),
            COST_K: 2 * h.act_frac + h.cost_shift - h.cost_frac, COST_BITS: h.cost_bits,
            CTILDE_BITS: h.ctilde_bits, CLAMP: h.clamp, G_BITS: h.g_bits,
            GW_BITS: wu_hw.g_bits, MOMENTUM: wu_hw.momentum_shift, V_BITS: wu_hw.v_bits,
            ETA: wu_hw.eta_shift, UPD_HALF_UP: int(wu_hw.rounding == "half_up"),
            WALSH_M: walsh_size(net.n_nodes if node else net.n_params),
        }
        spec = [0] * SPEC_LEN
        for k, v in fields.items():
            spec[k] = int(v)
        # A tuple, not an array: the compiled code can keep its fields in registers
        # (an array might alias the arrays the kernel writes, so every read would be a
        # load).
        self.spec = tuple(spec)
        rows = []
        h_in = 0
        for l in range(net.n_layers):
            rows.append((
                net.sizes[l], net.sizes[l + 1], net.w_slices[l].start, net.b_slices[l].start,
                net.node_slices[l].start, h_in, ACTIVATIONS[net.activations[l]],
                h.x_frac if l == 0 else h.act_frac,
            ))
            h_in += net.sizes[l]
        self.layout = np.array(rows, np.int64)
        # The flat baseline inputs: every layer's input, in layer order.
        self.input_slices = [slice(r[H_IN], r[H_IN] + r[N_IN]) for r in rows]
        self.h0_size = h_in
        n_pert = net.n_nodes if node else net.n_params
        self.taps = (np.array(mask_taps(n_pert, h.lfsr_bits), np.int64).reshape(-1, 3)
                     if m.perturbation == "code" else np.zeros((0, 3), np.int64))
        self.tap = np.uint64(tap_mask(h.lfsr_bits))

    def run(self, n0: int, n1: int, arrays: dict, state: int, c0: int, every: int,
            updates0: int, record: bool) -> KernelRun:
        """Steps n0..n1-1; ``arrays`` holds the trainer's theta, G, V, D, h0 (flat),
        x, t and order (int64, contiguous; theta, G, V, D and h0 change in place);
        ``state`` is the LFSR state of period n0 // tau_p and ``c0`` the open
        segment's baseline cost."""
        a = arrays
        lfsr = np.array([state, self.tap], np.uint64)
        c0_buf = np.array([c0], np.int64)
        counts = np.zeros(len(COUNT_NAMES), np.int64)
        rec = np.zeros((3, n1 - n0 if record else 0), np.int64)
        n_snap = 0
        if every > 0:  # updates come at the multiples of tau_theta in (n0, n1]
            tt = self.spec[TAU_THETA]
            n_snap = (updates0 + n1 // tt - n0 // tt) // every - updates0 // every
        snap = np.zeros((n_snap, len(a["theta"])), np.int64)
        snap_n = np.zeros(n_snap, np.int64)
        updates = run_steps(n0, n1, self.spec, self.layout, self.taps, lfsr, a["theta"], a["G"],
                            a["V"], a["D"], a["h0"], c0_buf, a["x"], a["t"], a["order"],
                            counts, rec, every, updates0, snap, snap_n)
        return KernelRun(int(updates), int(lfsr[0]), int(c0_buf[0]),
                         dict(zip(COUNT_NAMES, counts.tolist(), strict=True)), rec,
                         list(zip(snap_n.tolist(), snap, strict=True)))

    def run_stream(self, n0: int, n1: int, arrays: dict, state: int, c0: int, every: int,
                   updates0: int, record: bool, stream) -> KernelRun:
        """``run`` for a stream config (``trainer_stream.advance_compiled``): arrays
        also holds theta_fwd (changed in place), ``stream`` is the trainer's
        ``StreamState`` (updated here: e, seg_ok, the FIFO); the record has a fourth
        row, each step's perturbed evaluation, and ``update_evals`` is filled."""
        a = arrays
        tt = self.spec[TAU_THETA]
        count = n1 // tt - n0 // tt  # updates: the multiples of tau_theta in (n0, n1]
        # Updates are at least tau_theta evaluations apart and wait D + 1 evaluations.
        cap = (stream.delay + 1) // tt + 2
        fifo_at = np.zeros(cap, np.int64)
        fifo_theta = np.zeros((cap, len(a["theta"])), np.int64)
        for i, (at, theta) in enumerate(stream.fifo):
            fifo_at[i], fifo_theta[i] = at, theta
        st = np.array([stream.e, int(stream.seg_ok), len(stream.fifo), stream.delay],
                      np.int64)
        lfsr = np.array([state, self.tap], np.uint64)
        c0_buf = np.array([c0], np.int64)
        counts = np.zeros(len(COUNT_NAMES), np.int64)
        rec = np.zeros((4, n1 - n0 if record else 0), np.int64)
        n_snap = 0
        if every > 0:
            n_snap = (updates0 + count) // every - updates0 // every
        snap = np.zeros((n_snap, len(a["theta"])), np.int64)
        snap_n = np.zeros(n_snap, np.int64)
        update_evals = np.zeros(count, np.int64)
        updates = run_stream(n0, n1, self.spec, self.layout, self.taps, lfsr, a["theta"],
                             a["theta_fwd"], a["G"], a["V"], a["D"], a["h0"], c0_buf, a["x"],
                             a["t"], a["order"], counts, rec, every, updates0, snap, snap_n,
                             st, fifo_at, fifo_theta, update_evals)
        stream.e, stream.seg_ok = int(st[0]), bool(st[1])
        stream.fifo.clear()
        stream.fifo.extend((int(fifo_at[i]), fifo_theta[i].copy()) for i in range(st[2]))
        return KernelRun(int(updates), int(lfsr[0]), int(c0_buf[0]),
                         dict(zip(COUNT_NAMES, counts.tolist(), strict=True)), rec,
                         list(zip(snap_n.tolist(), snap, strict=True)),
                         update_evals.tolist())


class KernelRun(NamedTuple):
    """What ``TrainerKernel.run`` returns: updates done, the LFSR state of the last
    period, the open segment's C0, the raw counts by name (``COUNT_NAMES``: the
    saturations and the forward passes), the (3, K) record of C, C0 and C~ (K = 0
    without ``record``), the (step, theta) snapshots and (stream) the evaluation of
    each update's last C~."""

    updates: int
    state: int
    c0: int
    counts: dict
    rec: np.ndarray
    thetas: list
    update_evals: list = []
