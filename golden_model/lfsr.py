"""LFSR definitions of the code-multiplexing perturbation generator.

One Galois LFSR of ``lfsr_bits`` bits is shared by all N parameters and stepped once
per perturbation period (right shift; when the bit shifted out is 1, XOR the tap mask).
Parameter i's code bit is the parity of the state ANDed with mask_i, where mask_i has
three bits set: the i-th 3-subset of the state bits in lexicographic order. Distinct
non-zero masks give pairwise independent, balanced bits, and each costs two XOR gates:
the random-number generator stays one register however large N grows.

Code bit 0 means +1, 1 means -1.

The jump and sequence helpers (:func:`lfsr_jump`, :func:`lfsr_sequence`) step the LFSR
many periods at once, as GF(2) matrix powers and byte-indexed lookup tables
(:func:`byte_tables`, :func:`apply_tables`), for the models' multi-cycle fast paths.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations, islice

import numpy as np

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


# --------------------------------------------------------------------------------
# The LFSR as a GF(2)-linear map.
#
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


def byte_tables(cols: np.ndarray) -> np.ndarray:
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


def apply_tables(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
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
        tables = byte_tables(np.array(jump, np.uint64)[:, None])
        out[filled:filled + take] = apply_tables(tables, out[:take])[:, 0]
        filled += take
        jump = _gf2_compose(jump, jump)
    return out
