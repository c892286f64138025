"""Bit-exact, cycle-level model of the perturbation generator (gateware.perturb_gen).

Like every block model it has two methods: ``outputs(**inputs)`` gives the values the
block shows during the current cycle, ``tick(**inputs)`` is the rising clock edge (it
samples the inputs and updates the registers). A testbench drives the inputs of cycle
t, compares ``outputs`` with the DUT before the edge, then calls ``tick``. Reset puts
every register at the value ``__init__`` gives it. The formats, rounding and saturation
rules are in docs/hardware_contract.md. The LFSR and its masks are golden_model.lfsr's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .config import MGDConfig
from .fixed import pack_bits
from .lfsr import (
    apply_tables,
    byte_tables,
    code_masks,
    lfsr_jump,
    lfsr_next,
    lfsr_sequence,
    mask_taps,
    tap_mask,
)


def walsh_size(n: int) -> int:
    """The Walsh counter period M: the power of two above n (rows 1..n are used)."""
    return 1 << n.bit_length()


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
# Fast multi-cycle path.
#
# PerturbGenModel.run applies K clock edges at once and leaves the model exactly where
# K calls of tick would. It is a faster way to evaluate the specification above, not a second
# one: tests/test_model_fast_path.py compares it with the per-cycle loop on random
# stimulus.


class GenRun(NamedTuple):
    """What :meth:`PerturbGenModel.run` returns (see there)."""

    period: np.ndarray
    lfsr: np.ndarray | None


@lru_cache(maxsize=8)
def _neg_tables(n: int, bits: int) -> np.ndarray:
    # The code kind's neg bus is linear in the state: bit i is the XOR of the state
    # bits of mask_i, so state bit j contributes every parameter whose mask holds j.
    cols = np.zeros((bits, (n + 63) // 64), np.uint64)
    for i, trip in enumerate(mask_taps(n, bits)):
        for j in trip:
            cols[j, i // 64] |= np.uint64(1 << (i % 64))
    return byte_tables(cols)


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
        out[lo:lo + block] = apply_tables(tables, states[lo:lo + block])
    return out


# --------------------------------------------------------------------------------
class CodeSequence:
    """The codes ``PerturbGenModel`` shows in each perturbation period, in blocks.

    Period k: ``code``: neg_i = parity(lfsr_k & mask_i), lfsr_k the LFSR state after k
    steps from ``lfsr_seed``; ``walsh``: neg_i = parity((i + 1) & (k mod M));
    ``time``: only i == k mod n active; ``frequency``: neg_i = floor(k / (i + 1)) mod 2.
    Periods are asked for in increasing order (the last block's last period may be
    asked for again).
    """

    def __init__(self, kind: str, n: int, lfsr_bits: int, lfsr_seed: int):
        self.kind, self.n, self.bits = kind, n, lfsr_bits
        self.idx = np.arange(n, dtype=np.int64)
        if kind == "code":
            # mask_i has three bits set: parity(state & mask_i) is the XOR of those three
            # state bits, gathered from a bit matrix (faster than popcounts).
            self.taps = np.array(mask_taps(n, lfsr_bits)).T
        self.walsh_m = walsh_size(n)
        self._k, self._state = 0, lfsr_seed

    def block(self, k0: int, k1: int) -> np.ndarray:
        """Codes of periods k0..k1-1, (k1 - k0, n) int8 in {-1, 0, +1}."""
        k = np.arange(k0, k1, dtype=np.int64)
        if self.kind == "code":
            if k0 < self._k:
                raise ValueError(f"period {k0} was passed already (now at {self._k})")
            states = lfsr_sequence(lfsr_jump(self._state, k0 - self._k, self.bits),
                                   k1 - k0, self.bits)
            self._k, self._state = k1 - 1, int(states[-1])
            bits = ((states[:, None] >> np.arange(self.bits, dtype=np.uint64)) & 1).astype(np.int8)
            a, b, c = self.taps
            return 1 - 2 * (bits[:, a] ^ bits[:, b] ^ bits[:, c])
        if self.kind == "walsh":
            rows = (self.idx + 1).astype(np.uint64)
            kk = (k % self.walsh_m).astype(np.uint64)
            neg = np.bitwise_count(kk[:, None] & rows[None, :]) & 1
            return 1 - 2 * neg.astype(np.int8)
        if self.kind == "time":
            return (self.idx[None, :] == (k % self.n)[:, None]).astype(np.int8)
        return 1 - 2 * ((k[:, None] // (self.idx[None, :] + 1)) & 1).astype(np.int8)

    def steps(self, n0: int, n1: int, tau_p: int) -> np.ndarray:
        """Codes of steps n0..n1-1 (period n // tau_p), (n1 - n0, n)."""
        k0, k1 = n0 // tau_p, (n1 - 1) // tau_p + 1
        c = self.block(k0, k1)
        return c if tau_p == 1 else c[np.arange(n0, n1) // tau_p - k0]
