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
# Stochastic hidden neurons (golden_model.neurons): the draws of training passes, and
# those of evaluation when it samples. Numbered apart from the list above, so purposes
# added there never collide with them.
NEURON, NEURON_EVAL = 32, 33
# Pulsed crosspoint devices (devices.py): each crosspoint's device-to-device draws, the
# stochastic rounding of pulse counts, the cycle-to-cycle noise of every pulse, and
# the programming error of each zero-shift reference device. Numbered apart from the
# list above so other purposes can be added there.
CROSSPOINTS, PULSE_ROUNDING, PULSE_NOISE, REFERENCES = 16, 17, 18, 19



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

    @property
    def width(self) -> int:
        """Row width of :meth:`fill`'s output: n, padded to 64 for bit-derived codes."""
        return self._words * 64 if self._packed else self.n

    @property
    def _packed(self) -> bool:
        return self.kind == "code" and self.sparsity == 0

    @property
    def _words(self) -> int:
        return (self.n + 63) // 64

    @property
    def words_per_period(self) -> int:
        """Raw 64-bit words drawn per period by dense +-1 codes (``packed``)."""
        return self._words

    @property
    def packed(self) -> bool:
        """Dense +-1 codes: each period is ``words_per_period`` raw 64-bit words."""
        return self._packed

    def fill_words(self, out: np.ndarray) -> None:
        """Write the raw words of the next len(out) periods into out (count, words),
        uint64; bit j of word w of a period is the code of entry 64 w + j
        (0 -> +1, 1 -> -1). Only for ``packed`` streams."""
        if not self._packed:
            raise ValueError("only dense +-1 codes come as raw words")
        count = out.shape[0]
        out[...] = self.rng.bit_generator.random_raw(count * self._words).reshape(out.shape)
        self.k += count

    def fill(self, out: np.ndarray) -> None:
        """Write the next len(out) periods into out (count, width); entries past n are
        padding. Bit-derived codes are expanded straight into out (see fill_words)."""
        if self._packed:
            raw = np.empty((out.shape[0], self._words), dtype="<u8")
            self.fill_words(raw)
            bits = np.unpackbits(raw.view(np.uint8), bitorder="little")
            flat = out.reshape(-1)
            np.multiply(bits, -2.0, out=flat)  # bit 0 -> +1, bit 1 -> -1
            flat += 1.0
        else:
            out[:, : self.n] = self.block(out.shape[0])

    def block(self, count: int) -> np.ndarray:
        """The codes of the next ``count`` periods, (count, n) float64."""
        if self._packed:
            out = np.empty((count, self.width))
            self.fill(out)
            return out[:, : self.n]
        ks = np.arange(self.k, self.k + count)
        self.k += count
        if self.kind == "code":
            return self._sparse(count)
        if self.kind == "time":
            return self._time(count)
        if self.kind == "walsh":
            bits = np.bitwise_count(
                self.rows[None, :] & (ks[:, None] % self.walsh_size).astype(np.uint64)
            )
            return 1.0 - 2.0 * (bits & 1)
        return np.sqrt(2.0) * np.sin(2 * np.pi * self.freqs[None, :] * ks[:, None] + self.phases)

    def _sparse(self, count: int) -> np.ndarray:
        u = self.rng.random((count, self.n))
        half = (1.0 - self.sparsity) / 2
        return np.where(u < half, 1.0, np.where(u < 2 * half, -1.0, 0.0))

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

    def fill(self, out: np.ndarray) -> None:
        out[:] = self.block(len(out))


class NormalStream:
    """Standard normal draws for one run (cost or update noise)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def block(self, count: int) -> np.ndarray:
        return self.rng.standard_normal(count)

    def fill(self, out: np.ndarray) -> None:
        self.rng.standard_normal(out=out)


class EnsembleBuffer:
    """Serves R per-run streams in lockstep from one persistent buffer.

    ``take(count)`` returns (R, count, ...), the next ``count`` items of every run, as
    a view that stays valid until the next ``take``. Refilling ``block`` items at a
    time makes the per-step cost of R streams a fraction of one Python call, and
    reusing one buffer avoids fresh multi-megabyte allocations (page faults) in the
    hot loop. ``block`` is chosen so the buffer holds about ``budget`` numbers.
    """

    def __init__(
        self,
        streams: list,
        item_shape: tuple[int, ...] = (),
        budget: int = 1 << 20,
        dtype: type = np.float64,
    ):
        self.streams = streams
        size = int(np.prod(item_shape, dtype=np.int64)) if item_shape else 1
        block = int(max(1, min(4096, budget // max(1, len(streams) * size))))
        self.buf = np.zeros((len(streams), block, *item_shape), dtype=dtype)
        self.pos = self.end = 0

    def take(self, count: int) -> np.ndarray:
        if self.end - self.pos < count:
            rem = self.end - self.pos
            if count > self.buf.shape[1]:
                grown = np.zeros((self.buf.shape[0], count, *self.buf.shape[2:]), self.buf.dtype)
                grown[:, :rem] = self.buf[:, self.pos : self.end]
                self.buf = grown
            else:
                self.buf[:, :rem] = self.buf[:, self.pos : self.end].copy()
            for r, stream in enumerate(self.streams):
                stream.fill(self.buf[r, rem:])
            self.pos, self.end = 0, self.buf.shape[1]
        out = self.buf[:, self.pos : self.pos + count]
        self.pos += count
        return out


class _RawWords:
    """A packed CodeStream seen as a stream of raw words (for EnsembleBuffer)."""

    def __init__(self, stream: CodeStream):
        self.stream = stream

    def fill(self, out: np.ndarray) -> None:
        self.stream.fill_words(out)


class PeriodCodes:
    """Codes of an ensemble indexed by perturbation period, for monotone requests.

    ``get(k0, k1)`` returns (R, k1 - k0, n) for periods k0..k1-1, float codes; with
    ``packed`` (dense +-1 codes only) it returns their raw words instead,
    (R, k1 - k0, words) uint64. Consecutive step ranges can share at most one period
    (a segment boundary inside a period), so the last period served is kept to answer
    that overlap.
    """

    def __init__(self, streams: list[CodeStream], packed: bool = False):
        self.n = streams[0].n
        self.packed = packed
        if packed:
            width = streams[0].words_per_period
            sources: list = [_RawWords(s) for s in streams]
            dtype: type = np.uint64
        else:
            width = streams[0].width
            sources, dtype = streams, np.float64
        # Refill in blocks that stay in cache for one run (~2 MB) but amortize the
        # per-run Python calls of a large ensemble (at least 64 periods when it fits).
        per_run = max(1, min((1 << 18) // width, (1 << 22) // (len(streams) * width)))
        self.buffer = EnsembleBuffer(
            sources, item_shape=(width,), budget=per_run * len(streams) * width, dtype=dtype
        )
        self.next = 0  # first period not yet served
        self.last: np.ndarray | None = None  # codes of period next - 1, (R, width)

    def get(self, k0: int, k1: int) -> np.ndarray:
        if k0 < self.next - 1:
            raise ValueError(f"period {k0} was already released (next is {self.next})")
        if k0 == self.next - 1:
            fresh = self.buffer.take(k1 - self.next) if k1 > self.next else None
            head = self.last[:, None]
            out = head if fresh is None else np.concatenate([head, fresh], axis=1)
        else:
            if k0 > self.next:
                self.buffer.take(k0 - self.next)
            out = self.buffer.take(k1 - k0)
        self.next = max(self.next, k1)
        self.last = out[:, -1].copy()
        return out if self.packed else out[:, :, : self.n]
