"""Bit-exact, cycle-level models of the MGD hardware blocks: the specification.

Every model has the same shape:

- ``outputs(**inputs)`` returns the values the block shows during the current cycle
  (registered state, plus the few combinational outputs documented per block);
- ``tick(**inputs)`` is the rising clock edge: it samples the inputs and updates the
  registers.

A testbench drives inputs for cycle t, compares ``outputs`` with the DUT before the
edge, then calls ``tick``. Reset puts every register at the value ``__init__`` gives
it. The formats, rounding and saturation rules are in docs/hardware_contract.md; the
gateware in gateware/ takes its constants from here and from golden_model.lfsr.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .config import MGDConfig
from .fixed import sat, shift_round, smax
from .lfsr import code_masks, lfsr_next, mask_taps, tap_mask


def pack_bits(bits: np.ndarray) -> int:
    """A bool array as an int, element i at bit i (how an N-bit port reads)."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8), bitorder="little").tobytes(), "little")


def pack_signed(values: np.ndarray, width: int) -> int:
    """Signed ints as one flat bus, element i in bits [i*width, (i+1)*width)."""
    out = 0
    mask = (1 << width) - 1
    for i, v in enumerate(values.tolist()):
        out |= (v & mask) << (i * width)
    return out


def counter_add(count: int, inc: int, bits: int) -> int:
    """Status counters saturate at 2^bits - 1 instead of wrapping."""
    return min(count + inc, (1 << bits) - 1)


def walsh_size(n: int) -> int:
    """The Walsh counter period M: the power of two above n (rows 1..n are used)."""
    return 1 << n.bit_length()


# --------------------------------------------------------------------------------
class PerturbGenModel:
    """Perturbation generator: N codes s_i in {-1, 0, +1}, held for tau_p steps.

    Inputs: ``step`` (1 bit): one MGD step is done. Every tau_p-th step ends the
    perturbation period and the next period's codes appear on the following cycle.
    Outputs: ``neg`` (N bits) and ``active`` (N bits): s_i = 0 if not active_i,
    else -1 if neg_i, else +1. Combinational from the registers (latency 0 after the
    period's last step edge).

    Kinds (mgd.perturbation): ``code``: neg_i = parity(lfsr & mask_i), all active;
    ``walsh``: neg_i = parity((i + 1) & k), k the period counter mod M; ``time``:
    active only for i == k mod N, never neg; ``frequency``: square wave, neg_i flips
    every i + 1 periods (period 2 (i + 1)), all active. Reset: lfsr = lfsr_seed,
    k = 0, sub-step counter 0, square-wave phases 0 and counters 0.
    """

    def __init__(self, cfg: MGDConfig):
        h = cfg.hw
        self.kind = cfg.mgd.perturbation
        self.n = h.n_params
        self.tau_p = cfg.mgd.tau_p
        self.lfsr_bits = h.lfsr_bits
        self.tap = tap_mask(h.lfsr_bits)
        self.masks = np.array(code_masks(self.n, h.lfsr_bits), dtype=np.uint64) if (
            self.kind == "code"
        ) else None
        self.rows = np.arange(1, self.n + 1, dtype=np.uint64)
        self.period_mod = walsh_size(self.n) if self.kind == "walsh" else self.n
        self.lfsr = h.lfsr_seed
        self.k = 0
        self.sub = 0
        self.cnt = np.zeros(self.n, dtype=np.int64)
        self.phase = np.zeros(self.n, dtype=bool)
        self.idx = np.arange(self.n)

    def code(self) -> np.ndarray:
        """The current codes s (N,) as int64."""
        if self.kind == "code":
            neg = np.bitwise_count(self.masks & np.uint64(self.lfsr)) & 1
            return 1 - 2 * neg.astype(np.int64)
        if self.kind == "walsh":
            neg = np.bitwise_count(self.rows & np.uint64(self.k)) & 1
            return 1 - 2 * neg.astype(np.int64)
        if self.kind == "time":
            return (self.idx == self.k).astype(np.int64)
        return np.where(self.phase, -1, 1).astype(np.int64)

    def outputs(self) -> dict:
        s = self.code()
        return {"neg": pack_bits(s < 0), "active": pack_bits(s != 0)}

    def tick(self, step: int = 0) -> None:
        if not step:
            return
        if self.sub < self.tau_p - 1:
            self.sub += 1
            return
        self.sub = 0
        self.lfsr = lfsr_next(self.lfsr, self.lfsr_bits, self.tap)
        self.k = (self.k + 1) % self.period_mod
        wrap = self.cnt == self.idx
        self.phase ^= wrap
        self.cnt = np.where(wrap, 0, self.cnt + 1)

    def run(self, step: np.ndarray) -> GenRun:
        """K clock edges at once: the state ``for s in step: self.tick(s)`` leaves.

        Parameters
        ----------
        step : (K,) array of 0/1
            The ``step`` input of cycles 0 .. K-1.

        Returns
        -------
        GenRun
            ``period[t]``: periods completed since the call began, after edge t (the
            codes of cycle t + 1 are those of that period); ``lfsr`` (code kind, else
            None): the LFSR state of periods 0 .. period[-1], ``lfsr[0]`` the state
            before the call. :func:`code_neg_words` turns states into the ``neg`` bus.
        """
        steps = np.cumsum(np.asarray(step, dtype=bool).ravel(), dtype=np.int64)
        period = (self.sub + steps) // self.tau_p
        total = int(steps[-1]) if len(steps) else 0
        adv = int(period[-1]) if len(period) else 0
        # Every register moves as `adv` period strobes move it, whatever the kind
        # (tick updates them all): the LFSR by a GF(2) jump, the counters in closed form.
        seq = None
        if self.kind == "code":
            seq = lfsr_sequence(self.lfsr, adv + 1, self.lfsr_bits)
            self.lfsr = int(seq[-1])
        else:
            self.lfsr = lfsr_jump(self.lfsr, adv, self.lfsr_bits)
        self.sub = (self.sub + total) % self.tau_p
        self.k = (self.k + adv) % self.period_mod
        # Square waves: counter i runs 0 .. i and flips the phase each time it wraps.
        count = self.cnt + adv
        span = self.idx + 1
        self.phase ^= (count // span) % 2 == 1
        self.cnt = count % span
        return GenRun(period, seq)


# --------------------------------------------------------------------------------
class CostAccModel:
    """Cost accumulator: baseline capture, C~ = sat(C - C0), minibatch mean, high-pass.

    Input stream: ``in_valid``, ``in_cost`` (signed cost_bits), with sideband
    ``in_baseline`` (this sample is unperturbed) and ``in_restart`` (a new training
    sample starts; high-pass only). ``in_ready`` = not out_valid or out_ready
    (combinational). Output stream: ``out_valid``, ``out_ctilde`` (signed
    ctilde_bits), held until ``out_ready``. ``sat_count`` counts saturated C~ values.

    On an accepted sample: sum += cost; on the 2^batch_log2-th sample of a batch,
    avg = sum >> batch_log2 (floor; the sideband flags of that last sample count) and:
    discrete (highpass_shift = 0): baseline -> C0 = avg, no output; else output
    C~ = clamp(sat(avg - C0)). High-pass (k = highpass_shift > 0): restart -> C~ = 0,
    else C~ = clamp(sat(C~' - (C~' >> k) + avg - C')), with C~', C' the previous values;
    every batch gives an output. Latency: out_valid rises the cycle after the edge that
    accepted the batch's last sample.
    """

    def __init__(self, cfg: MGDConfig):
        h = cfg.hw
        self.bits = h.ctilde_bits
        self.batch = h.batch_log2
        self.hp = h.highpass_shift
        self.clamp = h.clamp
        self.counter_bits = h.counter_bits
        self.sum = 0
        self.count = 0
        self.c0 = 0
        self.c_prev = 0
        self.ct_prev = 0
        self.out_valid = 0
        self.out_ctilde = 0
        self.sat_count = 0

    def outputs(self, out_ready: int = 1) -> dict:
        return {
            "in_ready": int(not self.out_valid or out_ready),
            "out_valid": self.out_valid,
            "out_ctilde": self.out_ctilde,
            "sat_count": self.sat_count,
        }

    def tick(
        self,
        in_valid: int = 0,
        in_cost: int = 0,
        in_baseline: int = 0,
        in_restart: int = 0,
        out_ready: int = 1,
    ) -> None:
        accept = in_valid and (not self.out_valid or out_ready)
        if self.out_valid and out_ready:
            self.out_valid = 0
        if not accept:
            return
        total = self.sum + in_cost
        if self.count < (1 << self.batch) - 1:
            self.sum, self.count = total, self.count + 1
            return
        self.sum, self.count = 0, 0
        avg = total >> self.batch
        if self.hp == 0:
            if in_baseline:
                self.c0 = avg
                return
            raw = avg - self.c0
        elif in_restart:
            raw = 0
        else:
            raw = self.ct_prev - (self.ct_prev >> self.hp) + avg - self.c_prev
        ct, saturated = sat(raw, self.bits)
        if self.clamp:
            ct = min(max(ct, -self.clamp), self.clamp)
        self.c_prev, self.ct_prev = avg, ct
        self.sat_count = counter_add(self.sat_count, int(saturated), self.counter_bits)
        self.out_valid, self.out_ctilde = 1, ct


# --------------------------------------------------------------------------------
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
# Fast multi-cycle paths.
#
# PerturbGenModel.run and WeightUpdateModel.run apply K clock edges at once and leave
# the model exactly where K calls of tick would. They are faster ways to evaluate the
# specification above, not a second one: tests/test_model_fast_path.py compares them
# with the per-cycle loop on random stimulus, saturation included.


class GenRun(NamedTuple):
    """What :meth:`PerturbGenModel.run` returns (see there)."""

    period: np.ndarray
    lfsr: np.ndarray | None


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


# -- the LFSR as a GF(2)-linear map --------------------------------------------------
# One Galois step is linear over GF(2): column j of its matrix is the step applied to
# state bit j alone. k steps are the k-th matrix power (repeated squaring), and a
# linear map of a whole array of states is a few byte-indexed table lookups.
def _gf2_apply(cols: list[int], x: int) -> int:
    out, j = 0, 0
    while x:
        if x & 1:
            out ^= cols[j]
        x >>= 1
        j += 1
    return out


def _gf2_compose(a: list[int], b: list[int]) -> list[int]:
    """Columns of the map ``a after b``."""
    return [_gf2_apply(a, col) for col in b]


def _lfsr_power(bits: int, steps: int) -> list[int]:
    """Columns of ``steps`` LFSR steps."""
    tap = tap_mask(bits)
    base = [lfsr_next(1 << j, bits, tap) for j in range(bits)]
    out = [1 << j for j in range(bits)]
    while steps:
        if steps & 1:
            out = _gf2_compose(base, out)
        base = _gf2_compose(base, base)
        steps >>= 1
    return out


def _byte_tables(cols: np.ndarray) -> np.ndarray:
    """Lookup tables of a GF(2)-linear map from ``len(cols)`` input bits.

    cols: (L, W) unsigned words, row j the image of input bit j. Returns
    (ceil(L / 8), 256, W): table[b, v] is the image of byte value v at byte b.
    """
    n_in, width = cols.shape
    tables = np.zeros(((n_in + 7) // 8, 256, width), cols.dtype)
    for b in range(len(tables)):
        for j in range(8):
            lo = 1 << j
            col = cols[8 * b + j] if 8 * b + j < n_in else 0
            tables[b, lo:2 * lo] = tables[b, :lo] ^ col
    return tables


def _apply_tables(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The images (M, W) of the uint64 inputs ``x`` (M,)."""
    out = tables[0][(x & np.uint64(255)).astype(np.intp)]
    for b in range(1, len(tables)):
        out ^= tables[b][((x >> np.uint64(8 * b)) & np.uint64(255)).astype(np.intp)]
    return out


def lfsr_jump(state: int, steps: int, bits: int) -> int:
    """The LFSR state ``steps`` steps after ``state`` (``lfsr_next`` applied steps times)."""
    if steps < 64:  # a few steps are cheaper stepped than as a matrix power
        tap = tap_mask(bits)
        for _ in range(steps):
            state = lfsr_next(state, bits, tap)
        return state
    return _gf2_apply(_lfsr_power(bits, steps), state)


def lfsr_sequence(state: int, count: int, bits: int) -> np.ndarray:
    """The first ``count`` states from ``state`` (that one first), as uint64.

    A short sequence is stepped directly; then each pass maps the states known so far
    through the jump by their number, doubling them, so the cost is a few table
    lookups per state.
    """
    out = np.empty(count, np.uint64)
    tap = tap_mask(bits)
    filled = min(count, 64)
    for i in range(filled):
        out[i] = state
        state = lfsr_next(state, bits, tap)
    if filled == count:  # short: no jump needed (its matrix power is the costly part)
        return out
    jump = _lfsr_power(bits, filled)
    while filled < count:
        take = min(filled, count - filled)
        tables = _byte_tables(np.array(jump, np.uint64)[:, None])
        out[filled:filled + take] = _apply_tables(tables, out[:take])[:, 0]
        filled += take
        jump = _gf2_compose(jump, jump)
    return out


@lru_cache(maxsize=8)
def _neg_tables(n: int, bits: int) -> np.ndarray:
    # The code kind's neg bus is linear in the state: bit i is the XOR of the state
    # bits of mask_i, so state bit j contributes every parameter whose mask holds j.
    cols = np.zeros((bits, (n + 63) // 64), np.uint64)
    for i, trip in enumerate(mask_taps(n, bits)):
        for j in trip:
            cols[j, i // 64] |= np.uint64(1 << (i % 64))
    return _byte_tables(cols)


def code_neg_words(states: np.ndarray, n: int, bits: int) -> np.ndarray:
    """The code kind's ``neg`` bus for each LFSR state: (M, ceil(n / 64)) uint64.

    Word w holds parameters 64 w .. 64 w + 63 (bus bit i = parameter i), the words of
    ``pack_bits(code() < 0)``; ``active`` is all ones for this kind. Blocks of states
    at a time, so the lookups stay in cache.
    """
    states = np.asarray(states, np.uint64)
    tables = _neg_tables(n, bits)
    out = np.empty((len(states), tables.shape[2]), np.uint64)
    block = 1 << 14
    for lo in range(0, len(states), block):
        out[lo:lo + block] = _apply_tables(tables, states[lo:lo + block])
    return out


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
