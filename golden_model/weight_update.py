"""Bit-exact, cycle-level model of the weight-update unit (gateware.weight_update).

It follows the block-model protocol (``outputs`` during a cycle, ``tick`` at its edge)
stated in ``golden_model.perturb_gen``; formats, rounding and saturation are in
docs/hardware_contract.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import MGDConfig
from .fixed import counter_add, sat, shift_round, smax


class WeightUpdateModel:
    """Weight-update unit: gradient accumulators G, optional momentum V, parameters.

    Inputs: the codes (``neg``, ``active`` as from the generator, or ``code`` as an
    array), ``ct_valid``/``ct`` (signed ctilde_bits), ``update`` (strobe), and a load
    port ``load_en``/``load_addr``/``load_data`` (signed theta_bits).

    On an edge with ct_valid: G_i <- sat_g(G_i + s_i * C~). With update (after that
    accumulation, if both): momentum off: theta_i <- sat_t(theta_i -
    round(G_i >> eta_shift)); on: V_i <- sat_v(V_i - (V_i >> momentum_shift) + G_i),
    theta_i <- sat_t(theta_i - round(V_i >> eta_shift)); then G <- 0. A load writes
    theta[load_addr] after all that (it wins). ``sat_g``/``sat_theta`` count saturated
    elements (momentum saturations count in sat_g).

    Parallel (lanes = 0): ``ready`` = 1, every command takes
    effect at its edge, ``theta`` shows all N parameters.

    Time-multiplexed (lanes = P): the same numbers, P parameters per cycle. A command
    (ct_valid and/or update) is accepted at an edge where ``ready`` is 1; the unit is
    then busy (ready = 0) for the N / P cycles that follow, and the new values of
    parameters [rP, (r+1)P) are written at the r-th of those edges. Loads are accepted
    only when idle. ``theta`` here is the model's full array (the hardware reads it
    through a port, see the contract).
    """

    def __init__(self, cfg: MGDConfig, theta0: np.ndarray | None = None):
        h = cfg.hw
        self.n = h.n_params
        self.h = h
        self.lanes = h.lanes
        self.theta = np.zeros(self.n, np.int64) if theta0 is None else np.array(theta0, np.int64)
        self.G = np.zeros(self.n, np.int64)
        self.V = np.zeros(self.n, np.int64)
        self.sat_g = 0
        self.sat_theta = 0
        self.busy = 0  # cycles of sweep left (lanes > 0)
        self._pending: tuple | None = None  # (code, ct_valid, ct, update) of the sweep
        self._row = 0

    # -- the arithmetic of one group of parameters, shared by both versions --
    def _apply(self, sl: slice, code, ct_valid, ct, update) -> None:
        h = self.h
        g = self.G[sl]
        sat_g = 0
        if ct_valid:
            g, s = sat(g + code[sl] * ct, h.g_bits)
            sat_g += int(np.count_nonzero(s))
        sat_t = 0
        if update:
            step_src = g
            if h.momentum_shift:
                v, s = sat(self.V[sl] - (self.V[sl] >> h.momentum_shift) + g, h.v_bits)
                sat_g += int(np.count_nonzero(s))
                self.V[sl] = v
                step_src = v
            theta, s = sat(self.theta[sl] - shift_round(step_src, h.eta_shift, h.rounding),
                           h.theta_bits)
            sat_t = int(np.count_nonzero(s))
            self.theta[sl] = theta
            g = np.zeros_like(g)
        self.G[sl] = g
        self.sat_g = counter_add(self.sat_g, sat_g, h.counter_bits)
        self.sat_theta = counter_add(self.sat_theta, sat_t, h.counter_bits)

    @staticmethod
    def decode(neg: int, active: int, n: int) -> np.ndarray:
        """Codes from the generator's packed buses."""
        nb = np.frombuffer(neg.to_bytes((n + 7) // 8 + 1, "little"), np.uint8)
        ab = np.frombuffer(active.to_bytes((n + 7) // 8 + 1, "little"), np.uint8)
        nbits = np.unpackbits(nb, bitorder="little")[:n].astype(np.int64)
        abits = np.unpackbits(ab, bitorder="little")[:n].astype(np.int64)
        return abits * (1 - 2 * nbits)

    def outputs(self) -> dict:
        ready = int(self.busy == 0)
        return {
            "ready": ready,
            "theta": self.theta.copy(),
            "sat_g": self.sat_g,
            "sat_theta": self.sat_theta,
        }

    def tick(
        self,
        code: np.ndarray | None = None,
        ct_valid: int = 0,
        ct: int = 0,
        update: int = 0,
        load_en: int = 0,
        load_addr: int = 0,
        load_data: int = 0,
    ) -> None:
        if self.lanes == 0:
            if ct_valid or update:
                self._apply(slice(None), code, ct_valid, ct, update)
            if load_en and load_addr < self.n:  # the hardware ignores addresses >= N
                self.theta[load_addr] = load_data
            return
        if self.busy:
            p = self.lanes
            r = self._row
            self._apply(slice(r * p, (r + 1) * p), *self._pending)
            self._row += 1
            self.busy -= 1
            return
        if ct_valid or update:
            # The codes are sampled at acceptance: the sweep uses them even if the
            # generator moves on meanwhile.
            self._pending = (np.array(code, np.int64), ct_valid, ct, update)
            self._row = 0
            self.busy = self.n // self.lanes
        elif load_en and load_addr < self.n:
            self.theta[load_addr] = load_data

    def run(
        self,
        codes: np.ndarray,
        ct_valid: np.ndarray,
        ct: np.ndarray,
        update: np.ndarray,
        load_en: np.ndarray | None = None,
        load_addr: np.ndarray | None = None,
        load_data: np.ndarray | None = None,
        *,
        pool: np.ndarray | None = None,
        trace: bool = False,
        chunk: int = 1 << 12,
    ) -> UpdateTrace | None:
        """K clock edges at once: the state K calls of :meth:`tick` leave, bit for bit.

        Parameters
        ----------
        codes : array
            The codes of every cycle: (K, N) values in {-1, 0, +1}; or, with ``pool``,
            (K,) row indices into ``pool``.
        ct_valid, ct, update, load_en, load_addr, load_data : (K,) arrays
            The inputs of cycles 0 .. K-1, as :meth:`tick` takes them (the load port
            may be left out: no loads).
        pool : (P, N) array, optional
            Distinct code vectors; ``codes`` then indexes it.
        trace : bool
            Also return the outputs after every edge where they may have changed
            (parallel unit only); between those edges they hold.
        chunk : int
            Cycles handled per block: bounds the memory of the vectorized sums.

        The parallel unit (lanes = 0) sums s_i C~ between update/load edges with one
        reduction per window and falls back to the per-cycle :meth:`_apply` only in a
        window where G could saturate; the time-multiplexed unit runs :meth:`tick`.
        """
        k = len(ct_valid)
        zeros = np.zeros(k, np.int64)
        cols = [np.asarray(a).astype(np.int64) for a in (ct_valid, ct, update)] + [
            zeros if a is None else np.asarray(a).astype(np.int64)
            for a in (load_en, load_addr, load_data)
        ]
        idx = None if pool is None else np.asarray(codes).astype(np.intp)
        if self.lanes:
            if trace:
                raise ValueError("trace needs the parallel unit (hw.lanes = 0)")
            for t in range(k):
                code = np.asarray(codes[t]) if pool is None else pool[idx[t]]
                self.tick(code, *(int(c[t]) for c in cols))
            return None
        records: list | None = [] if trace else None
        for lo in range(0, k, chunk):
            hi = min(k, lo + chunk)
            if pool is None:
                blk_pool, blk_idx = _row_runs(np.asarray(codes[lo:hi]))
            else:
                blk_pool, blk_idx = np.asarray(pool, np.int64), idx[lo:hi]
            _run_parallel_block(self, blk_pool, blk_idx, [c[lo:hi] for c in cols], lo, records)
        if records is None:
            return None
        if not records:
            return UpdateTrace(np.zeros(0, np.int64), np.zeros((0, self.n), np.int64),
                               np.zeros(0, np.int64), np.zeros(0, np.int64))
        cyc, theta, sg, st = zip(*records, strict=True)
        return UpdateTrace(np.array(cyc, np.int64), np.stack(theta),
                           np.array(sg, np.int64), np.array(st, np.int64))


# --------------------------------------------------------------------------------
# Fast multi-cycle path.
#
# WeightUpdateModel.run applies K clock edges at once and leaves the model exactly
# where K calls of tick would. It is a faster way to evaluate the specification above, not a second
# one: tests/test_model_fast_path.py compares it with the per-cycle loop on random
# stimulus, saturation included.


class UpdateTrace(NamedTuple):
    """Outputs of the parallel weight-update unit after the edges in ``cycles``.

    ``cycles`` count from the first cycle of the ``run`` call. ``theta[e]`` (N,),
    ``sat_g[e]`` and ``sat_theta[e]`` hold from the edge of cycle ``cycles[e]`` until
    the next listed edge (before the first: the state the call began with); ``ready``
    is always 1.
    """

    cycles: np.ndarray
    theta: np.ndarray
    sat_g: np.ndarray
    sat_theta: np.ndarray


# -- the parallel weight-update unit over a block of cycles --------------------------
def _row_runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pool, idx): one pool row per run of equal consecutive code rows."""
    if not len(codes):
        return np.zeros((0, codes.shape[1]), np.int64), np.zeros(0, np.intp)
    new = np.ones(len(codes), bool)
    new[1:] = np.any(codes[1:] != codes[:-1], axis=1)
    return codes[new].astype(np.int64), np.cumsum(new) - 1


def _run_parallel_block(model: WeightUpdateModel, pool, idx, cols, t0: int, records) -> None:
    """Cycles t0 .. t0 + K - 1 of the parallel unit (see WeightUpdateModel.run).

    Windows: an edge with update or load ends a window (its own C~ included, as at
    that edge G accumulates first). Within a window G only accumulates; its sum is
    exact, and equal to the saturating per-cycle one, whenever no partial sum can
    leave the g_bits range: max|G| + sum |C~| <= smax(g_bits). Then one reduction adds
    the window; otherwise the window runs cycle by cycle through _apply.
    """
    valid, ct, upd, ld, addr, data = cols
    c = np.where(valid != 0, ct, 0)
    events = np.flatnonzero((upd != 0) | (ld != 0))
    nz = np.flatnonzero(c)
    win = np.searchsorted(events, nz, side="left")  # window of each non-zero C~
    rows = idx[nz]
    piece = np.ones(len(nz), bool)  # runs of equal (window, code) among them
    piece[1:] = (win[1:] != win[:-1]) | (rows[1:] != rows[:-1])
    p_start = np.flatnonzero(piece)
    w_first = np.ones(len(nz), bool)
    w_first[1:] = win[1:] != win[:-1]
    w_start = np.flatnonzero(w_first)
    if len(nz):
        weights = np.add.reduceat(c[nz], p_start)
        contrib = weights[:, None] * pool[rows[p_start]]
        gsum = np.add.reduceat(contrib, np.searchsorted(p_start, w_start), axis=0)
        abs_sum = np.add.reduceat(np.abs(c[nz]), w_start)
    w_ids = win[w_start]
    w_end = np.append(w_start[1:], len(nz))

    h = model.h
    gmax = smax(h.g_bits)
    bound = None  # an upper bound of max|G|, None = unknown
    row = 0
    for j in range(len(events) + 1):
        if row < len(w_ids) and w_ids[row] == j:
            a = int(abs_sum[row])
            if bound is None or bound + a > gmax:
                bound = int(np.abs(model.G).max()) if model.n else 0
            if bound + a <= gmax:
                model.G += gsum[row]
                bound += a
            else:
                for t in nz[w_start[row]:w_end[row]].tolist():
                    before = model.sat_g
                    model._apply(slice(None), pool[idx[t]], 1, int(c[t]), 0)
                    if records is not None and model.sat_g != before:
                        records.append((t0 + t, model.theta.copy(), model.sat_g,
                                        model.sat_theta))
                bound = None
            row += 1
        if j < len(events):
            e = int(events[j])
            if upd[e]:
                model._apply(slice(None), None, 0, 0, 1)
                bound = 0
            if ld[e] and addr[e] < model.n:
                model.theta[int(addr[e])] = int(data[e])
            if records is not None:
                records.append((t0 + e, model.theta.copy(), model.sat_g, model.sat_theta))
