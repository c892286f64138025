"""Dense unit codes held as bits, and the exact float32 products that make that pay.

:class:`BitCodes` holds the +-1 weight codes of K steps of R runs as their bits, so weight
perturbation and the MGD estimate (``network.MLP.forward``, ``mgd.MGDEnsemble``) use
float32 products of 0/1 matrices; :class:`DigitSplit` cuts float64 vectors into float32
integer digits whose products with them are exact, so the results agree with float64
codes to the last bits.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .network import MLP

# --- exact float32 products ---------------------------------------------------------
# float32 holds every integer up to 2^24 exactly, so a float32 matrix product of a 0/1
# matrix with small integers is exact in any summation order (BLAS blocking, FMA,
# threads). DigitSplit writes a float64 vector as a few such integer "digits" times
# powers of two; the digit products, scaled and added in float64, give sum_i b_i v_i
# rounded once per digit, where a float64 dot product rounds once per term (the
# vector is first cut to a grid 62 bits below its largest entry, far below that
# rounding). So bit-held codes (BitCodes) can use float32 products, half the memory
# traffic of float64, and still agree with float64 codes to the last bits.

F32_EXACT_BITS = 24  # float32 represents every integer of magnitude <= 2^24
FIXED_BITS = 62  # resolution of a split below the largest magnitude (int64 headroom)


class DigitSplit:
    """Splits vectors into float32 integer digits whose sums of ``terms`` are exact.

    ``split(v)`` of v (R, n) returns (d, s): d (R, D, n) float32 integers and s (R, D)
    float64 powers of two with v = sum_c d[:, c] s[:, c] up to 2^-62 of the largest
    |v| of the run (v is cut to a fixed-point grid 62 bits below that). Every digit
    has |d| <= 2^24 / terms, so any float32 sum of up to ``terms`` digits (times 0 or
    1) is an exact integer.

    exponent : a fixed e with |v| < 2^e for every v to be split (then the scales are
        shared by all runs); None takes each run's own from its largest |v|
    lowest_bit : bits of the fixed-point values below this are known to be zero, so
        the digits holding only those are skipped (see ``for_values``)
    """

    def __init__(self, terms: int, exponent: int | None = None, lowest_bit: int = 0):
        width = F32_EXACT_BITS - int(np.ceil(np.log2(max(terms, 1))))  # bits per digit
        count = -(-FIXED_BITS // width)
        self.shifts = np.arange(min(lowest_bit // width, count - 1), count) * width
        self.masks = np.full(len(self.shifts), (1 << width) - 1)
        self.masks[-1] = -1  # the top digit keeps the sign: |q >> shift| <= 2^width
        self.pow2 = np.ldexp(1.0, self.shifts)
        self.exponent = exponent
        if exponent is not None:
            self.factor = 2.0 ** (FIXED_BITS - exponent)
            self.scales = self.pow2[None, :] / self.factor

    @staticmethod
    def _run_factors(v: np.ndarray) -> np.ndarray | float | None:
        """2^(62 - e) per run (R, 1), with |v| < 2^e; None if v is not finite."""
        top = np.abs(v).max(axis=1)
        if not math.isfinite(top.sum()):
            return None
        if len(top) == 1:  # one run: Python scalars are cheaper than array calls
            return math.ldexp(1.0, FIXED_BITS - math.frexp(top[0])[1])
        return np.ldexp(1.0, FIXED_BITS - np.frexp(top)[1])[:, None]

    @classmethod
    def for_values(cls, values: np.ndarray, terms: int) -> DigitSplit:
        """A fixed split for (any rows of) ``values``, using as few digits as their
        fixed-point grid allows: data on a coarse grid, such as 4-bit pixels, needs one."""
        _, e = np.frexp(np.abs(values).max(initial=0.0))
        q = np.ldexp(values, FIXED_BITS - int(e)).astype(np.int64)
        low = int(np.bitwise_or.reduce(q, axis=None))
        return cls(terms, int(e), (low & -low).bit_length() - 1 if low else FIXED_BITS)

    def split(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The digits and scales of v (R, n), or None if v is not finite."""
        if self.exponent is None:
            factor = self._run_factors(v)
            if factor is None:
                return None
            scales = self.pow2 / factor
        else:
            factor, scales = self.factor, self.scales
        scales = np.broadcast_to(scales, (len(v), len(self.shifts)))
        if len(self.shifts) == 1:  # the top digit alone: v * factor / 2^shift, cut
            d = np.trunc(v * (factor / self.pow2[0])).astype(np.float32)
            return d[:, None, :], scales
        q = (v * factor).astype(np.int64)[:, None, :]  # cut toward 0, |q| < 2^62
        d = (q >> self.shifts[:, None]) & self.masks[:, None]
        return d.astype(np.float32), scales


@functools.lru_cache(maxsize=64)
def _weight_split(terms: int) -> DigitSplit:
    """The per-run split of estimate weights summed over ``terms`` steps (cached)."""
    return DigitSplit(terms)


class BitCodes:
    """Dense unit codes u = 1 - 2 b of K steps of R runs, held as their bits b.

    words : (R, K, W) uint64 raw code words (streams.CodeStream.fill_words); bit j of
        word w is the code of parameter 64 w + j
    net : the network whose parameters the codes perturb
    inputs : how to split the first layer's inputs into digits (DigitSplit.for_values
        of the training inputs); by default each input vector is split on its own

    Weight perturbation and the MGD estimate only need sums of codes times float
    vectors, sum_i u_i v_i = sum_i v_i - 2 sum_i b_i v_i, so the +-1 codes are never
    formed. The first layer's weight bits (most parameters) are float32 and summed
    exactly with DigitSplit; the remaining bits are float64.
    """

    def __init__(self, net: MLP, words: np.ndarray, inputs: DigitSplit | None = None):
        bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")
        self.net = net
        self.inputs = inputs or DigitSplit(net.sizes[0])
        self.p0 = net.w_slices[0].stop
        self.shape = (*words.shape[:2], net.n_params)
        self.first = bits[..., : self.p0].astype(np.float32)
        self.rest = bits[..., self.p0 : net.n_params].astype(np.float64)

    def _bits(self, sl: slice) -> np.ndarray:
        """float64 bits of parameters sl, (R, K, len)."""
        if sl.start >= self.p0:
            return self.rest[..., sl.start - self.p0 : sl.stop - self.p0]
        return self.first[..., sl].astype(np.float64)

    def _first_dot(self, x: np.ndarray) -> np.ndarray | None:
        """B_W x of the first layer for a shared input x (R, in): (R, K, out), exact
        up to the final rounding; None if x is not finite."""
        runs, k, _ = self.shape
        n_in, n_out = self.net.sizes[0], self.net.sizes[1]
        split = self.inputs.split(x)
        if split is None:
            return None
        d, s = split
        b = self.first.reshape(runs, k * n_out, n_in)
        if d.shape[1] == 1:
            p = b @ d.reshape(runs, n_in, 1)  # exact integers
            return (p[..., 0] * s).reshape(runs, k, n_out)
        # (BLAS needs the digits contiguous along the inputs, not a transposed view)
        p = b @ np.ascontiguousarray(d.transpose(0, 2, 1))
        return (p @ s[:, :, None]).reshape(runs, k, n_out)

    def perturbation(self, l: int, h: np.ndarray, amp: np.ndarray) -> np.ndarray:
        """amp (U_W h + U_b) of layer l for inputs h (R, K or 1, in): (R, K, out).

        With u = 1 - 2 b that is -2 amp (B_W h + B_b - (sum(h) + 1) / 2).
        """
        runs, k, _ = self.shape
        n_in, n_out = self.net.sizes[l], self.net.sizes[l + 1]
        bh = self._first_dot(h[:, 0]) if l == 0 and h.shape[1] == 1 else None
        if bh is None:
            b_w = self._bits(self.net.w_slices[l]).reshape(runs, k, n_out, n_in)
            bh = (b_w @ h[..., None])[..., 0]
        bh += self._bits(self.net.b_slices[l])
        half = h.sum(axis=-1, keepdims=True)
        half += 1.0
        half *= 0.5
        bh -= half
        bh *= (-2.0 * amp)[:, None, None]
        return bh

    def correlate(self, w: np.ndarray) -> np.ndarray:
        """sum_k w_k u_k for weights w (R, K): (R, N); u = 1 - 2 b gives
        sum(w) - 2 w^T B."""
        runs, k, n = self.shape
        out = np.empty((runs, 1, n))
        split = _weight_split(k).split(w)
        if split is None:  # not finite: plain float64 products carry the NaN or inf
            np.matmul(w[:, None, :], self.first.astype(np.float64), out=out[..., : self.p0])
            out[..., : self.p0] *= -2.0
        else:
            d, s = split
            p = d @ self.first  # (R, D, p0), exact integers
            np.matmul(-2.0 * s[:, None, :], p, out=out[..., : self.p0])
        np.matmul(-2.0 * w[:, None, :], self.rest, out=out[..., self.p0 :])
        out += w.sum(axis=1)[:, None, None]
        return out[:, 0]
