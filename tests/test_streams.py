"""Seeded random streams: chunk independence and the properties of each code kind."""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.streams import (
    CodeStream,
    EnsembleBuffer,
    NormalStream,
    PeriodCodes,
    SampleOrder,
    run_rng,
)

KINDS = [("code", 0.0), ("code", 0.3), ("time", 0.0), ("frequency", 0.0), ("walsh", 0.0)]


def _stream(kind: str, sparsity: float, n: int = 13, seed: int = 1) -> CodeStream:
    return CodeStream(kind, n, run_rng(seed, 0, 1), sparsity=sparsity)


@pytest.mark.parametrize("kind,sparsity", KINDS)
def test_codes_do_not_depend_on_chunking(kind: str, sparsity: float) -> None:
    whole = _stream(kind, sparsity).block(100)
    s = _stream(kind, sparsity)
    parts = np.concatenate([s.block(1), s.block(30), s.block(2), s.block(67)])
    np.testing.assert_array_equal(whole, parts)


@pytest.mark.parametrize("kind,sparsity", KINDS)
def test_fill_matches_block(kind: str, sparsity: float) -> None:
    s = _stream(kind, sparsity)
    out = np.full((40, s.width), np.nan)
    s.fill(out[:25])
    s.fill(out[25:])
    np.testing.assert_array_equal(out[:, :13], _stream(kind, sparsity).block(40))


@pytest.mark.parametrize("kind,sparsity", KINDS)
def test_unit_codes_have_unit_mean_square(kind: str, sparsity: float) -> None:
    """E|theta~|^2 = dtheta^2 with theta~ = (dtheta / sqrt(n)) u."""
    u = _stream(kind, sparsity, n=16).block(4096)
    mean_sq = np.mean(np.sum(u**2, axis=1)) / 16
    assert mean_sq == pytest.approx(1.0 - sparsity, rel=0.05)


def test_code_signs_are_balanced_and_independent() -> None:
    u = _stream("code", 0.0, n=64).block(20_000)
    assert set(np.unique(u)) == {-1.0, 1.0}
    assert abs(u.mean()) < 0.01
    corr = (u.T @ u) / len(u)
    off = corr[~np.eye(64, dtype=bool)]
    assert np.abs(off).max() < 0.05


def test_sparse_codes_zero_fraction() -> None:
    u = _stream("code", 0.3, n=50).block(4000)
    assert np.mean(u == 0) == pytest.approx(0.3, abs=0.01)


def test_time_multiplexing_walks_every_parameter_once_per_cycle() -> None:
    n = 7
    u = _stream("time", 0.0, n=n).block(3 * n)
    assert np.all(np.count_nonzero(u, axis=1) == 1)
    np.testing.assert_allclose(u.sum(axis=1), np.sqrt(n))
    for cycle in range(3):
        active = np.argmax(u[cycle * n : (cycle + 1) * n], axis=1)
        assert sorted(active) == list(range(n))


def test_walsh_codes_are_orthogonal_over_a_period() -> None:
    s = _stream("walsh", 0.0, n=13)
    m = s.walsh_size
    assert m == 16
    u = s.block(m)
    np.testing.assert_array_equal(u.T @ u, m * np.eye(13))
    # the bit is the parity of (row AND counter)
    k, i = 5, 3
    expected = 1 - 2 * (bin(int(s.rows[i]) & k).count("1") % 2)
    assert u[k, i] == expected


def test_frequency_codes_use_distinct_frequencies() -> None:
    s = _stream("frequency", 0.0, n=10)
    assert len(np.unique(s.freqs)) == 10
    assert s.freqs.min() >= 0.01 and s.freqs.max() <= 0.49


def test_sample_order_is_an_epoch_permutation_and_chunk_free() -> None:
    a = SampleOrder(5, run_rng(0, 0, 2)).block(15)
    for e in range(3):
        assert sorted(a[e * 5 : (e + 1) * 5]) == list(range(5))
    s = SampleOrder(5, run_rng(0, 0, 2))
    np.testing.assert_array_equal(a, np.concatenate([s.block(4), s.block(11)]))


def test_normal_stream_is_chunk_free() -> None:
    a = NormalStream(run_rng(0, 0, 3)).block(50)
    s = NormalStream(run_rng(0, 0, 3))
    out = np.empty(30)
    s.fill(out)
    np.testing.assert_array_equal(a, np.concatenate([out, s.block(20)]))


def test_ensemble_buffer_serves_each_run_its_own_stream() -> None:
    streams = [NormalStream(run_rng(s, 0, 3)) for s in range(3)]
    buf = EnsembleBuffer(streams, budget=12)  # tiny blocks force many refills
    got = np.concatenate([buf.take(c).copy() for c in (1, 5, 2, 9, 3)], axis=1)
    for s in range(3):
        np.testing.assert_array_equal(got[s], NormalStream(run_rng(s, 0, 3)).block(20))


def test_period_codes_serve_overlapping_requests() -> None:
    """Segments that split a perturbation period ask for the same period twice."""
    streams = [_stream("code", 0.0, n=9, seed=s) for s in range(2)]
    pc = PeriodCodes(streams)
    first = pc.get(0, 3).copy()
    again = pc.get(2, 5).copy()  # period 2 again, then 3 and 4
    reference = [_stream("code", 0.0, n=9, seed=s).block(5) for s in range(2)]
    for s in range(2):
        np.testing.assert_array_equal(first[s], reference[s][:3])
        np.testing.assert_array_equal(again[s], reference[s][2:5])
    with pytest.raises(ValueError, match="already released"):
        pc.get(1, 6)


def test_raw_words_are_the_bits_of_the_codes() -> None:
    """fill_words draws the same stream as fill/block; bit j of word w is entry 64 w + j."""
    s = _stream("code", 0.0, n=70)
    words = np.empty((9, s.words_per_period), dtype=np.uint64)
    s.fill_words(words[:4])
    s.fill_words(words[4:])
    bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")[:, :70]
    np.testing.assert_array_equal(1.0 - 2.0 * bits, _stream("code", 0.0, n=70).block(9))
    with pytest.raises(ValueError, match="raw words"):
        _stream("code", 0.3).fill_words(words)


def test_packed_period_codes_serve_the_same_words_with_overlap() -> None:
    streams = [_stream("code", 0.0, n=70, seed=s) for s in range(2)]
    pc = PeriodCodes(streams, packed=True)
    first = pc.get(0, 3).copy()
    again = pc.get(2, 5).copy()
    for s in range(2):
        ref = np.empty((5, 2), dtype=np.uint64)
        _stream("code", 0.0, n=70, seed=s).fill_words(ref)
        np.testing.assert_array_equal(first[s], ref[:3])
        np.testing.assert_array_equal(again[s], ref[2:5])
