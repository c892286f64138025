"""Seeded random streams of the float reference model.

Every random choice of run r comes from its own generator,
``np.random.default_rng([seed + r, PURPOSE])``, one generator per purpose, so run r of
an ensemble started at seed s is exactly the single run started at seed s + r.

Each stream's output does not depend on how it is chunked: asking for 1000 periods at
once or one at a time gives the same values. That is what lets the vectorized model
(which draws blocks) and the plain per-step loop (which draws one step at a time)
agree number for number. Element-wise float draws (``random``, ``standard_normal``)
and raw 64-bit words have that property; permutations are drawn at fixed points
(one per cycle of N), never per request.
"""

from __future__ import annotations

import numpy as np

# Purposes: the second word of every run's seed.
INIT, CODES, SAMPLES, COST_NOISE, UPDATE_NOISE, DEVICE, BACKPROP_SAMPLES = range(7)


def run_rng(seed: int, run: int, purpose: int) -> np.random.Generator:
    """The generator of one run for one purpose."""
    return np.random.default_rng([seed + run, purpose])


def run_rngs(seed: int, runs: int, purpose: int) -> list[np.random.Generator]:
    return [run_rng(seed, r, purpose) for r in range(runs)]


class CodeStream:
    """Unit perturbation codes u (one row per perturbation period) for one run.

    The perturbation is theta~ = a * u with a = dtheta / sqrt(n), so that
    E|theta~|^2 = dtheta^2 for every kind:

    - ``code``: u_i = +-1 from the bits of raw 64-bit words (64 codes a word, the
      software twin of an LFSR); with sparsity p, u_i = 0 with probability p,
      else +-1 (one uniform draw per entry);
    - ``time``: u = sqrt(n) on one entry, 0 elsewhere; the active entry walks through
      a fresh random permutation of 0..n-1 each cycle of n periods (so theta~ = dtheta
      on one parameter: a forward finite difference);
    - ``frequency``: u_i(k) = sqrt(2) sin(2 pi f_i k + phi_i), f_i evenly spaced over
      [freq_min, freq_max] cycles per period and shuffled, phi_i uniform;
    - ``walsh``: u_i(k) = (-1)^popcount(row_i AND (k mod M)), Hadamard rows 1..M-1
      (row 0, the constant, is excluded) with M the power of two > n, shuffled.
    """

    def __init__(
        self,
        kind: str,
        n: int,
        rng: np.random.Generator,
        sparsity: float = 0.0,
        freq_min: float = 0.01,
        freq_max: float = 0.49,
    ):
        self.kind = kind
        self.n = n
        self.rng = rng
        self.sparsity = sparsity
        self.k = 0  # next period index
        if kind == "time":
            self._perm = np.empty(0, dtype=np.int64)
        elif kind == "walsh":
            m = 1 << int(n).bit_length()  # power of two > n
            self.walsh_size = m
            self.rows = (rng.permutation(m - 1)[:n] + 1).astype(np.uint64)
        elif kind == "frequency":
            self.freqs = np.linspace(freq_min, freq_max, n)[rng.permutation(n)]
            self.phases = rng.uniform(0.0, 2 * np.pi, n)
        elif kind != "code":
            raise ValueError(f"unknown perturbation kind {kind!r}")

    def block(self, count: int) -> np.ndarray:
        """The codes of the next ``count`` periods, (count, n) float64."""
        ks = np.arange(self.k, self.k + count)
        self.k += count
        if self.kind == "code":
            return self._code(count)
        if self.kind == "time":
            return self._time(count)
        if self.kind == "walsh":
            bits = np.bitwise_count(
                self.rows[None, :] & (ks[:, None] % self.walsh_size).astype(np.uint64)
            )
            return 1.0 - 2.0 * (bits & 1)
        return np.sqrt(2.0) * np.sin(2 * np.pi * self.freqs[None, :] * ks[:, None] + self.phases)

    def _code(self, count: int) -> np.ndarray:
        if self.sparsity > 0:
            u = self.rng.random((count, self.n))
            half = (1.0 - self.sparsity) / 2
            return np.where(u < half, 1.0, np.where(u < 2 * half, -1.0, 0.0))
        words = (self.n + 63) // 64
        raw = self.rng.bit_generator.random_raw(count * words).astype("<u8")
        bits = np.unpackbits(raw.view(np.uint8), bitorder="little")
        bits = bits.reshape(count, words * 64)[:, : self.n]
        return 1.0 - 2.0 * bits

    def _time(self, count: int) -> np.ndarray:
        active = np.empty(count, dtype=np.int64)
        for j in range(count):
            pos = (self.k - count + j) % self.n
            if pos == 0:
                self._perm = self.rng.permutation(self.n)
            active[j] = self._perm[pos]
        out = np.zeros((count, self.n))
        out[np.arange(count), active] = np.sqrt(self.n)
        return out


class SampleOrder:
    """Training-sample indices for one run: a fresh permutation each epoch."""

    def __init__(self, n_samples: int, rng: np.random.Generator):
        self.n = n_samples
        self.rng = rng
        self.j = 0
        self._perm = np.empty(0, dtype=np.int64)

    def block(self, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        for i in range(count):
            pos = self.j % self.n
            if pos == 0:
                self._perm = self.rng.permutation(self.n)
            out[i] = self._perm[pos]
            self.j += 1
        return out


class NormalStream:
    """Standard normal draws for one run (cost or update noise)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def block(self, count: int) -> np.ndarray:
        return self.rng.standard_normal(count)


class EnsembleBuffer:
    """Serves R per-run streams in lockstep, refilling in blocks.

    ``take(count)`` returns (R, count, ...): the next ``count`` items of every run.
    Refilling ``block`` items at a time makes the per-step cost of R streams a
    fraction of one Python call. ``block`` is chosen so a refill holds about
    ``budget`` numbers.
    """

    def __init__(self, streams: list, item_size: int = 1, budget: int = 1 << 20):
        self.streams = streams
        self.block = int(max(1, min(4096, budget // max(1, len(streams) * item_size))))
        self.buf: np.ndarray | None = None
        self.pos = 0

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            if self.buf is None or self.pos == self.buf.shape[1]:
                self.buf = np.stack([s.block(max(self.block, count)) for s in self.streams])
                self.pos = 0
            n = min(count, self.buf.shape[1] - self.pos)
            parts.append(self.buf[:, self.pos : self.pos + n])
            self.pos += n
            count -= n
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class PeriodCodes:
    """Codes of an ensemble indexed by perturbation period, for monotone requests.

    ``get(k0, k1)`` returns (R, k1 - k0, n) for periods k0..k1-1; a request may
    start inside the previous one (a segment boundary inside a period) but never
    before it.
    """

    def __init__(self, streams: list[CodeStream]):
        n = streams[0].n
        self.buffer = EnsembleBuffer(streams, item_size=n)
        self.cache = np.zeros((len(streams), 0, n))
        self.base = 0  # period index of cache[:, 0]

    def get(self, k0: int, k1: int) -> np.ndarray:
        if k0 < self.base:
            raise ValueError(f"period {k0} was already released (now at {self.base})")
        end = self.base + self.cache.shape[1]
        if k0 >= end:
            if k0 > end:
                self.buffer.take(k0 - end)
            self.cache = self.buffer.take(k1 - k0)
        else:
            keep = self.cache[:, k0 - self.base :]
            more = k1 - end
            self.cache = (
                np.concatenate([keep, self.buffer.take(more)], axis=1) if more > 0 else keep
            )
        self.base = k0
        return self.cache[:, : k1 - k0]
