"""Fixed-point primitives shared by the bit-exact models and the gateware.

All hardware numbers are two's complement integers. Every narrowing saturates (never
wraps) and says how it rounds. These helpers work on Python ints and on NumPy int64
arrays alike. gateware/fixed.py is the hardware twin of this module.
"""

from __future__ import annotations

import numpy as np

ROUNDINGS = ("floor", "half_up")


def smin(bits: int) -> int:
    """Most negative value of a signed ``bits``-bit integer."""
    return -(1 << (bits - 1))


def smax(bits: int) -> int:
    """Most positive value of a signed ``bits``-bit integer."""
    return (1 << (bits - 1)) - 1


def sat(x, bits: int):
    """Saturate to signed ``bits`` bits; returns (value, saturated) with ``saturated`` a
    bool (int input) or a bool array."""
    lo, hi = smin(bits), smax(bits)
    if isinstance(x, np.ndarray):
        # minimum/maximum rather than np.clip: the same values, without clip's
        # per-call overhead (the trainer model calls this on small arrays)
        return np.minimum(np.maximum(x, lo), hi), (x < lo) | (x > hi)
    return min(max(x, lo), hi), (x < lo or x > hi)


def shift_round(x, k: int, rounding: str):
    """x / 2^k rounded: ``floor`` is an arithmetic shift right; ``half_up`` adds
    2^(k-1) first (round half toward +infinity)."""
    if k == 0:
        return x
    if rounding == "half_up":
        x = x + (1 << (k - 1))
    return x >> k


def to_signed(value: int, bits: int) -> int:
    """Read a ``bits``-bit two's complement pattern as a signed int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def ctilde(diff, bits: int, clamp: int):
    """C~ from the cost difference: saturate to signed ``bits`` bits, then clamp to
    [-clamp, clamp] when ``clamp`` is non-zero. Returns (C~, saturated) as :func:`sat`
    does; the clamp does not count as a saturation."""
    ct, saturated = sat(diff, bits)
    if clamp:
        if isinstance(ct, np.ndarray):
            ct = np.minimum(np.maximum(ct, -clamp), clamp)
        else:
            ct = min(max(ct, -clamp), clamp)
    return ct, saturated


def counter_add(count: int, inc: int, bits: int) -> int:
    """Status counters saturate at 2^bits - 1 instead of wrapping."""
    return min(count + inc, (1 << bits) - 1)


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
