"""Bit-held weight codes (BitCodes) and the exact float32 digit products behind them.

The MGD model must give the same numbers whether it keeps dense +-1 codes as float64
or as bits, so everything here is checked against plain float64 arithmetic on the
expanded codes, and the whole engine against the per-step reference loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.bit_codes import BitCodes, DigitSplit
from golden_model.config import build_config
from golden_model.mgd import MGDEnsemble
from golden_model.network import MLP
from golden_model.reference import reference_run
from golden_model.streams import CODES, CodeStream, run_rng
from golden_model.train import initial_params

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def _values(kind: str, runs: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "pixels":  # a coarse grid: 4-bit pixels scaled to [0, 1]
        return rng.integers(0, 17, (runs, n)) / 16
    # wide dynamic range, both signs, per run magnitudes from 1e-6 to 1e6
    return rng.standard_normal((runs, n)) * 10.0 ** rng.integers(-6, 7, (runs, 1))


@pytest.mark.parametrize("kind", ["pixels", "wide"])
@pytest.mark.parametrize("terms", [1, 64, 100, 256, 1000])
def test_digits_are_small_integers_that_rebuild_the_vector(kind: str, terms: int) -> None:
    v = _values(kind, 3, 50)
    for split in (DigitSplit(terms), DigitSplit.for_values(v, terms)):
        d, s = split.split(v)
        assert d.dtype == np.float32 and np.array_equal(d, np.round(d))
        assert np.abs(d).max() * terms <= 2**24  # every float32 sum of `terms` is exact
        # rebuild exactly (Python integers on the grid of the lowest digit)
        low = s[:, :1]
        q = np.rint(v / low).astype(np.int64)  # v on that grid, exact here
        ints = np.rint(s / low).astype(np.int64)  # 2^(shift - lowest shift)
        rebuilt = np.einsum("rcn,rc->rn", d.astype(np.int64), ints)
        top = np.abs(v).max() if split.exponent is not None else np.abs(v).max(axis=1)
        err = np.abs(rebuilt - q).max(axis=1) * low[:, 0] / top  # the cut to the grid
        assert np.all(err <= 2.0**-61)


def test_coarse_data_needs_one_digit_and_non_finite_values_are_refused() -> None:
    pixels = _values("pixels", 4, 64)
    assert DigitSplit.for_values(pixels, 64).split(pixels)[0].shape == (4, 1, 64)
    w = np.array([[0.5, np.nan, 1.0]])
    assert DigitSplit(3).split(w) is None
    assert DigitSplit(3).split(np.array([[np.inf, 1.0]])) is None


def test_float32_products_of_digits_are_exact() -> None:
    """sum_i b_i v_i from float32 digit products equals the exact (rational) sum."""
    rng = np.random.default_rng(5)
    v = rng.standard_normal((1, 100))
    b = rng.integers(0, 2, (200, 100)).astype(np.float32)
    d, s = DigitSplit(100).split(v)
    got = (b @ d[0].T.astype(np.float32)).astype(np.float64) @ s[0]
    # exact reference on the same fixed-point grid, in Python integers
    q = np.round(v[0] / s[0, 0]).astype(object)  # v on the grid of the lowest digit
    exact = [sum(int(qi) for qi, bi in zip(q, row, strict=True) if bi) for row in b]
    np.testing.assert_allclose(got, np.array(exact, dtype=float) * s[0, 0], rtol=1e-15)


def _codes(net: MLP, runs: int, steps: int, seed: int = 0):
    """The same random codes as raw words and as float64 +-1 codes."""
    streams = [CodeStream("code", net.n_params, run_rng(seed, r, CODES)) for r in range(runs)]
    words = np.empty((runs, steps, streams[0].words_per_period), dtype=np.uint64)
    for r, s in enumerate(streams):
        s.fill_words(words[r])
    again = [CodeStream("code", net.n_params, run_rng(seed, r, CODES)) for r in range(runs)]
    u = np.stack([s.block(steps) for s in again])
    return words, u


@pytest.mark.parametrize("shared_input", [True, False])
def test_bit_codes_perturb_like_float_codes(shared_input: bool) -> None:
    net = MLP([70, 9, 3], "tanh", "sigmoid", "mse")  # rows straddle 64-bit words
    runs, k = 2, 7
    words, u = _codes(net, runs, k)
    rng = np.random.default_rng(1)
    amp = np.array([0.01, 0.03])
    codes = BitCodes(net, words)
    for l in range(net.n_layers):
        n_in, n_out = net.sizes[l], net.sizes[l + 1]
        h = rng.random((runs, 1 if shared_input and l == 0 else k, n_in))
        u_w = u[..., net.w_slices[l]].reshape(runs, k, n_out, n_in)
        want = amp[:, None, None] * ((u_w @ h[..., None])[..., 0] + u[..., net.b_slices[l]])
        np.testing.assert_allclose(codes.perturbation(l, h, amp), want, rtol=1e-13, atol=1e-16)


def test_bit_codes_correlate_like_float_codes() -> None:
    net = MLP([70, 9, 3], "tanh", "sigmoid", "mse")
    words, u = _codes(net, 2, 7)
    w = np.random.default_rng(2).standard_normal((2, 7)) * np.array([[1e-3], [10.0]])
    got = BitCodes(net, words).correlate(w)
    np.testing.assert_allclose(got, (w[:, None, :] @ u)[:, 0], rtol=1e-13, atol=1e-15)
    w[1, 3] = np.nan  # a diverged run keeps its NaN, the other run is untouched
    got = BitCodes(net, words).correlate(w)
    assert np.isnan(got[1]).all() and np.isfinite(got[0]).all()


@pytest.mark.parametrize("baseline", [False, True])
def test_forward_with_bit_codes_equals_float_codes(baseline: bool) -> None:
    net = MLP([70, 9, 3], "sigmoid", "sigmoid", "mse")
    runs, k = 2, 5
    words, u = _codes(net, runs, k)
    rng = np.random.default_rng(4)
    theta = np.stack([net.init_params(rng, 1.0) for _ in range(runs)])
    x = rng.random((runs, 1, 70))
    amp = np.array([0.02, 0.05])
    want, _ = net.forward(theta, x, weight_pert=(amp, u), baseline=baseline)
    got, _ = net.forward(theta, x, weight_pert=(amp, BitCodes(net, words)), baseline=baseline)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


# Cases with dense +-1 weight codes (the ones bit codes serve), on top of an xor base.
DENSE_CASES = {
    "discrete": {},
    "analog": {"mgd": {"baseline": "analog", "tau_theta": 3, "tau_x": 4}},
    "adam-clamp": {"mgd": {"optimizer": "adam", "clamp": 0.01, "tau_theta": 5, "tau_x": 2}},
    "noise-quantized": {
        "nonideal": {"cost_noise": 0.01, "update_noise": 0.001, "weight_bits": 12,
                     "weight_frac": 8}
    },
    "tau_p-inside-window": {"mgd": {"tau_p": 3, "tau_theta": 5, "tau_x": 7}},
    "long-window": {"mgd": {"tau_x": 50, "tau_theta": 50}},
}


@pytest.mark.parametrize("case", sorted(DENSE_CASES))
def test_engine_with_bit_codes_matches_plain_loop(case: str) -> None:
    cfg = build_config({"task": {"name": "xor"}, "runs": 3}, DENSE_CASES[case])
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    theta0 = initial_params(cfg, net)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, theta0, record_costs=True, bit_codes=True)
    assert engine.bit_codes
    for chunk in (37, 1, 62):  # uneven advances must not change any number
        engine.advance(chunk)
    costs = np.concatenate(engine.costs, axis=1)
    for r in range(cfg.runs):
        theta, ref_costs, _ = reference_run(cfg, net, XOR_X, XOR_Y, theta0[r], r, 100)
        np.testing.assert_allclose(engine.theta[r], theta, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(costs[r], ref_costs, rtol=1e-10, atol=1e-15)


def test_bit_codes_keep_run_r_of_an_ensemble_equal_to_seed_plus_r() -> None:
    layers = {"mgd": {"tau_x": 20, "tau_theta": 20}}
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    cfg = build_config({"task": {"name": "xor"}, "runs": 4}, layers)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net), bit_codes=True)
    engine.advance(400)
    single_cfg = build_config({"task": {"name": "xor"}, "runs": 1, "seed": 3}, layers)
    single = MGDEnsemble(
        single_cfg, net, XOR_X, XOR_Y, initial_params(single_cfg, net), bit_codes=True
    )
    single.advance(400)
    np.testing.assert_array_equal(engine.theta[3], single.theta[0])


def test_bit_codes_are_chosen_only_where_they_pay() -> None:
    net = MLP([64, 32, 10], "sigmoid", "sigmoid", "mse")
    x, y = np.zeros((5, 64)), np.zeros((5, 10))

    def chosen(**mgd) -> bool:
        cfg = build_config({"task": {"name": "xor"}, "runs": 1, "mgd": mgd})
        return MGDEnsemble(cfg, net, x, y, np.zeros((1, net.n_params))).bit_codes

    assert chosen(tau_x=100, tau_theta=100)  # the digits benchmark window
    assert not chosen()  # one step per evaluation
    assert not chosen(tau_x=100, tau_theta=100, mode="node")
    assert not chosen(tau_x=100, tau_theta=100, sparsity=0.5)
