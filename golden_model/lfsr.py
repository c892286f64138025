"""LFSR definitions of the code-multiplexing perturbation generator.

One Galois LFSR of ``lfsr_bits`` bits is shared by all N parameters and stepped once
per perturbation period (right shift; when the bit shifted out is 1, XOR the tap mask).
Parameter i's code bit is the parity of the state ANDed with mask_i, where mask_i has
three bits set: the i-th 3-subset of the state bits in lexicographic order. Distinct
non-zero masks give pairwise independent, balanced bits, and each costs two XOR gates:
the random-number generator stays one register however large N grows.

Code bit 0 means +1, 1 means -1.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations, islice

# Maximal-length polynomials (exponents of the feedback taps, x^L first), from the
# standard tables (Xilinx XAPP052). The Galois tap mask has bit (t - 1) set for each t.
LFSR_TAPS: dict[int, tuple[int, ...]] = {
    8: (8, 6, 5, 4),
    12: (12, 6, 4, 1),
    16: (16, 15, 13, 4),
    20: (20, 17),
    24: (24, 23, 22, 17),
    31: (31, 28),
    32: (32, 22, 2, 1),
    48: (48, 47, 21, 20),
    64: (64, 63, 61, 60),
}


def tap_mask(bits: int) -> int:
    """The Galois feedback mask of an LFSR of ``bits`` bits."""
    return sum(1 << (t - 1) for t in LFSR_TAPS[bits])


def lfsr_next(state: int, bits: int, mask: int | None = None) -> int:
    """One step of the Galois LFSR."""
    mask = tap_mask(bits) if mask is None else mask
    out = state & 1
    state >>= 1
    return state ^ mask if out else state


def max_params(bits: int) -> int:
    """How many parameters an LFSR of ``bits`` bits can give distinct 3-bit masks."""
    return bits * (bits - 1) * (bits - 2) // 6


@lru_cache(maxsize=32)
def code_masks(n: int, bits: int) -> tuple[int, ...]:
    """mask_i for i < n: the first n 3-subsets of range(bits), lexicographic."""
    if n > max_params(bits):
        raise ValueError(f"an LFSR of {bits} bits gives at most {max_params(bits)} codes")
    return tuple(sum(1 << b for b in trip) for trip in islice(combinations(range(bits), 3), n))


def mask_taps(n: int, bits: int) -> tuple[tuple[int, int, int], ...]:
    """The three state-bit indices of each parameter's mask (what the gateware XORs)."""
    return tuple(islice(combinations(range(bits), 3), n))
