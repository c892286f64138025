"""The bare harness's protocol, shared by the C++ main and NumPy: the counter-based
stimulus generator and the per-cycle output digest.

Generator: draw(seed, stream, t) = splitmix64 finalizer of t * GAMMA + key(seed,
stream), so NumPy computes any stretch of a stream without stepping through it.

Digest: the outputs after edge t, in port order, each cut into 64-bit words (low word
first), give d(t) = sum_i word_i * C_i mod 2^64 with odd constants C_i; the run's
digest is h <- h * P + d(t) from h = 0 (P odd), so it depends on every cycle's outputs
and on their order. The reset edge before cycle 0 is not counted.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # cycle increment of the generator, and the digest's P
KEY_SALT = 0x5851F42D4C957F2D
DIGEST_SALT = 0x2545F4914F6CDD1D


# -- the counter-based generator (mirrored by the C++ main) ---------------------------
def mix64(z: int) -> int:
    """The splitmix64 finalizer of a 64-bit int."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` of a uint64 array (NumPy array arithmetic wraps modulo 2^64)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int) -> int:
    """The key of one stimulus stream."""
    return mix64(seed * 256 + stream + KEY_SALT)


def draws(seed: int, stream: int, start: int, count: int) -> np.ndarray:
    """Draws of cycles start .. start + count - 1 of a stream (uint64)."""
    t = np.arange(start, start + count, dtype=np.uint64)
    return mix64_array(t * np.uint64(GAMMA) + np.uint64(stream_key(seed, stream)))


def signed_field(r: np.ndarray, shift: int, bits: int) -> np.ndarray:
    v = ((r >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
    return np.where(v >> (bits - 1) != 0, v - (1 << bits), v)


# -- digest ------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def word_constants(count: int) -> np.ndarray:
    """C_0 .. C_{count-1}: the odd per-word multipliers of the per-cycle digest."""
    return mix64_array(np.arange(count, dtype=np.uint64) + np.uint64(DIGEST_SALT)) | np.uint64(1)


@lru_cache(maxsize=4)
def _powers(count: int) -> np.ndarray:
    p = np.full(count, GAMMA, np.uint64)
    p[0] = 1
    return np.cumprod(p, dtype=np.uint64)


def fold(h: int, d: np.ndarray) -> int:
    """The digest after cycles with per-cycle digests ``d``: h <- h * P + d[t] each."""
    n = len(d)
    if not n:
        return h
    tail = int(np.sum(d * _powers(n)[::-1], dtype=np.uint64))
    return (h * pow(GAMMA, n, 1 << 64) + tail) & MASK


def row_digests(port_words: list[np.ndarray]) -> np.ndarray:
    """d for each row: port_words are (M, W_port) uint64 (or (1, W_port)), in port order."""
    const = word_constants(sum(w.shape[1] for w in port_words))
    out, i = None, 0
    for w in port_words:
        part = (w * const[i:i + w.shape[1]]).sum(axis=1, dtype=np.uint64)
        out = part if out is None else out + part
        i += w.shape[1]
    return out


def field_words(values: np.ndarray, width: int) -> np.ndarray:
    """A flat bus of signed ``width``-bit fields (M, N) as (M, ceil(N width / 64)) words."""
    m, n = values.shape
    nw = (n * width + 63) // 64
    u = values.astype(np.int64).view(np.uint64) & np.uint64((1 << width) - 1 if width < 64
                                                             else MASK)
    if width in (8, 16, 32, 64):
        raw = u.astype(f"<u{width // 8}").view(np.uint8).reshape(m, -1)
    else:  # general widths: through single bits
        nbytes = (width + 7) // 8
        b = u.astype("<u8").view(np.uint8).reshape(m, n, 8)[:, :, :nbytes]
        bits = np.unpackbits(b, axis=2, bitorder="little")[:, :, :width].reshape(m, n * width)
        raw = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((m, nw * 8), np.uint8)
    out[:, :raw.shape[1]] = raw
    return out.view("<u8").astype(np.uint64)


def int_words(value: int, width: int) -> np.ndarray:
    """One output value as a (1, ceil(width / 64)) row of words."""
    nw = (width + 63) // 64
    return np.array([[(value >> (64 * i)) & MASK for i in range(nw)]], np.uint64)
