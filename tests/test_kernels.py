"""The compiled (numba) segment kernel against the plain per-step loop and the NumPy path.

The kernel serves discrete-baseline weight perturbation with dense +-1 codes. It must
give the reference loop's numbers for the same seed (to the tolerances of
test_model.py), and so the NumPy path's, on XOR-like networks (no first-layer tables)
and digits-like ones (inputs a multiple of 8: the first layer by table look-up), with
every activation, both costs, device variation, clamp, noise and quantization, and tau
settings that put segment and code-period boundaries anywhere. Nothing here relies on
a warm compile cache: the last test compiles from scratch in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from golden_model import kernel_jit, kernels  # noqa: E402
from golden_model.activations import draw_variation  # noqa: E402
from golden_model.config import build_config  # noqa: E402
from golden_model.datasets import load_dataset  # noqa: E402
from golden_model.mgd import NUMBA_ENV, MGDEnsemble  # noqa: E402
from golden_model.network import MLP  # noqa: E402
from golden_model.reference import reference_run  # noqa: E402
from golden_model.streams import DEVICE, run_rngs  # noqa: E402
from golden_model.train import device_variation, initial_params, make_network  # noqa: E402

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)

# Config layers over an xor base (2-2-1, sigmoid, MSE): the dense-code cases the
# kernel serves.
XOR_CASES = {
    "tau1": {},
    "window": {"mgd": {"tau_x": 10, "tau_theta": 10}},
    "tau_x-below-tau_theta": {"mgd": {"tau_x": 3, "tau_theta": 7}},
    "tau_theta-below-tau_x": {"mgd": {"tau_x": 9, "tau_theta": 4}},
    "tau_p-inside-window": {"mgd": {"tau_p": 3, "tau_theta": 5, "tau_x": 7}},
    "adam-clamp": {"mgd": {"optimizer": "adam", "clamp": 0.01, "tau_theta": 5, "tau_x": 2}},
    "momentum": {"mgd": {"optimizer": "momentum", "tau_theta": 4, "tau_x": 4}},
    "noise-quantized": {
        "nonideal": {"cost_noise": 0.01, "update_noise": 0.001, "weight_bits": 12,
                     "weight_frac": 8}
    },
    "device-variation": {"nonideal": {"device_variation": 0.2}, "mgd": {"tau_x": 5}},
}


def _variation_of_run(variation, r):
    if variation is None:
        return None
    return [(v.gain[r], v.steep[r], v.mid[r], v.offset[r]) for v in variation]


def _engine(cfg, net, x, y, compiled: bool, record: bool = True) -> MGDEnsemble:
    theta0 = initial_params(cfg, net)
    variation = device_variation(cfg, net)
    engine = MGDEnsemble(
        cfg, net, x, y, theta0, variation, record_costs=record, compiled=compiled
    )
    assert (engine.kernel is not None) == compiled
    return engine


def _check_against_loop(cfg, net, x, y, steps: int, chunks=(37, 1, 62)) -> MGDEnsemble:
    """A compiled engine advanced unevenly against reference_run, run by run."""
    engine = _engine(cfg, net, x, y, compiled=True)
    for chunk in chunks:
        engine.advance(chunk)
    assert engine.n == steps
    costs = np.concatenate(engine.costs, axis=1)
    baselines = np.array(engine.baselines).T
    theta0, variation = initial_params(cfg, net), device_variation(cfg, net)
    for r in range(cfg.runs):
        theta, ref_costs, ref_baselines = reference_run(
            cfg, net, x, y, theta0[r], r, steps, _variation_of_run(variation, r)
        )
        np.testing.assert_allclose(engine.theta[r], theta, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(costs[r], ref_costs, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(baselines[r], ref_baselines, rtol=1e-10, atol=1e-15)
    assert not np.allclose(engine.theta, theta0), "the run must actually move theta"
    return engine


@pytest.mark.parametrize("case", sorted(XOR_CASES))
def test_compiled_xor_matches_plain_loop(case: str) -> None:
    cfg = build_config({"task": {"name": "xor"}, "runs": 3}, XOR_CASES[case])
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    _check_against_loop(cfg, net, XOR_X, XOR_Y, 100)


@pytest.mark.parametrize("case", sorted(XOR_CASES))
def test_compiled_xor_matches_numpy_path(case: str) -> None:
    cfg = build_config({"task": {"name": "xor"}, "runs": 3}, XOR_CASES[case])
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    fast = _engine(cfg, net, XOR_X, XOR_Y, compiled=True)
    slow = _engine(cfg, net, XOR_X, XOR_Y, compiled=False)
    for engine in (fast, slow):
        engine.advance(300)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(
        np.concatenate(fast.costs, axis=1), np.concatenate(slow.costs, axis=1),
        rtol=1e-10, atol=1e-15,
    )


# Digits-like networks: 64 inputs, so the first layer goes by table look-up once a
# segment has 256 first-layer rows (steps x hidden units) to sum; fewer go directly.
DIGITS_CASES = {
    "sigmoid-tables": ({"hidden": [32]}, {"tau_x": 20, "tau_theta": 20}),
    "sigmoid-direct": ({"hidden": [32]}, {"tau_x": 4, "tau_theta": 4}),
    "tanh-cross-entropy": (
        {"hidden": [16], "activation": "tanh", "output_activation": "linear",
         "cost": "cross_entropy"},
        {"tau_x": 25, "tau_theta": 25, "eta": 0.5},
    ),
    "relu-two-hidden": ({"hidden": [16, 8], "activation": "relu"}, {"tau_x": 40,
                                                                     "tau_theta": 20}),
    "hard-sigmoid-tau_p": ({"hidden": [16], "activation": "hard_sigmoid"},
                           {"tau_x": 40, "tau_theta": 40, "tau_p": 3}),
}


@pytest.mark.parametrize("case", sorted(DIGITS_CASES))
def test_compiled_digits_like_matches_plain_loop(case: str) -> None:
    network, mgd = DIGITS_CASES[case]
    nonideal = {"device_variation": 0.1} if case == "hard-sigmoid-tau_p" else {}
    cfg = build_config({
        "task": {"name": "digits", "train_limit": 60}, "runs": 2, "network": network,
        "mgd": {"dtheta": 0.05, **mgd}, "nonideal": nonideal,
    })
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    _check_against_loop(cfg, net, data.x_train, data.y_train, 200, chunks=(77, 3, 120))


def test_compiled_digits_matches_numpy_bit_codes() -> None:
    """The benchmark's window (64-32-10, tau = 100) against the NumPy path's bit codes."""
    cfg = build_config({"task": {"name": "digits"}, "runs": 2,
                        "mgd": {"tau_x": 100, "tau_theta": 100}})
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    theta0 = initial_params(cfg, net)
    fast = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0, compiled=True)
    slow = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0, bit_codes=True)
    assert fast.kernel is not None and slow.kernel is None and slow.bit_codes
    for engine in (fast, slow):
        engine.advance(1000)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variation", [False, True])
def test_first_layer_tables_equal_the_direct_sums(variation: bool) -> None:
    net = MLP([24, 16, 3], "sigmoid", "sigmoid", "mse")  # 24 inputs: 3 bytes a row
    runs, steps = 2, 30
    rng = np.random.default_rng(7)
    var = draw_variation(net.sizes, 0.2, run_rngs(1, runs, DEVICE)) if variation else None
    theta = rng.standard_normal((runs, net.n_params))
    words = rng.integers(0, 2**64, (runs, steps, (net.n_params + 63) // 64), dtype=np.uint64)
    x, t = rng.integers(0, 17, (runs, 24)) / 16, rng.random((runs, 3))
    noise = 0.01 * rng.standard_normal((runs, steps + 1))
    out = []
    for tables in (True, False):
        kern = kernels.WeightPertKernel(net, var, runs)
        kern.tables = tables
        g, c0 = np.zeros_like(theta), np.zeros(2)
        c = kern.segment(theta, x, t, words, np.arange(steps), np.full(runs, 0.02),
                         np.full(runs, 4e-4), c0, True, noise, 0.05, g)
        out.append((c, c0, g))
    assert steps * 16 >= kernels.TABLE_MIN_WORK  # the first pass used the tables
    for a, b in zip(*out, strict=True):  # (G sums +-terms of size ~1: atol for the
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)  # ones that cancel)


def test_chunks_inside_a_window_change_no_number() -> None:
    cfg = build_config({"task": {"name": "xor"}, "runs": 2,
                        "mgd": {"tau_x": 50, "tau_theta": 50}})
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    whole = _engine(cfg, net, XOR_X, XOR_Y, compiled=True)
    cut = _engine(cfg, net, XOR_X, XOR_Y, compiled=True)
    cut.chunk = 7  # a window of 50 steps in 8 kernel calls
    for engine in (whole, cut):
        engine.advance(200)
    np.testing.assert_array_equal(whole.theta, cut.theta)
    np.testing.assert_array_equal(np.concatenate(whole.costs, 1), np.concatenate(cut.costs, 1))


def test_compiled_run_r_of_an_ensemble_is_the_single_run_of_seed_plus_r() -> None:
    layers = {"mgd": {"tau_x": 20, "tau_theta": 20}}
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    cfg = build_config({"task": {"name": "xor"}, "runs": 4}, layers)
    engine = _engine(cfg, net, XOR_X, XOR_Y, compiled=True, record=False)
    engine.advance(400)
    single_cfg = build_config({"task": {"name": "xor"}, "runs": 1, "seed": 3}, layers)
    single = _engine(single_cfg, net, XOR_X, XOR_Y, compiled=True, record=False)
    single.advance(400)
    np.testing.assert_array_equal(engine.theta[3], single.theta[0])


def test_a_diverged_run_keeps_its_nan_and_leaves_the_others_alone() -> None:
    net = MLP([8, 4, 2], "sigmoid", "sigmoid", "mse")
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((2, net.n_params))
    theta[1, 5] = np.nan
    words = rng.integers(0, 2**64, (2, 40, 1), dtype=np.uint64)
    x, t = rng.random((2, 8)), rng.random((2, 2))
    period, amp, d2 = np.arange(40), np.full(2, 0.01), np.full(2, 1e-4)
    g, c0 = np.zeros_like(theta), np.zeros(2)
    costs = kernels.WeightPertKernel(net, None, 2).segment(
        theta, x, t, words, period, amp, d2, c0, True, None, 0.0, g
    )
    assert np.isnan(costs[1]).all() and np.isnan(g[1]).all() and np.isnan(c0[1])
    assert np.isfinite(costs[0]).all() and np.isfinite(g[0]).all()
    g0, c00 = np.zeros((1, net.n_params)), np.zeros(1)
    costs0 = kernels.WeightPertKernel(net, None, 1).segment(
        theta[:1], x[:1], t[:1], words[:1], period, amp[:1], d2[:1], c00, True, None, 0.0, g0
    )
    np.testing.assert_array_equal(costs0[0], costs[0])  # run 0 alone: the same numbers
    np.testing.assert_array_equal(g0[0], g[0])


@numba.njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = kernel_jit._exp(x[i])


def test_kernel_exp_is_within_one_ulp_of_numpy() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([
        rng.uniform(-708, 709, 100_000), rng.standard_normal(100_000) * 5,
        rng.uniform(-1e-6, 1e-6, 1000), [0.0, -0.0, 709.0, -708.0, 5e-324],
    ])
    got = np.empty_like(x)
    _exp_all(x, got)
    want = np.exp(x)
    assert np.max(np.abs(got - want) / np.spacing(want)) <= 1.0
    special = np.empty(2)
    _exp_all(np.array([np.nan, 800.0]), special)
    assert np.isnan(special[0]) and special[1] == np.exp(709.0)  # clipped, finite


def test_switches_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")

    def engine(layers: dict | None = None, **kw) -> MGDEnsemble:
        cfg = build_config({"task": {"name": "xor"}, "runs": 1}, layers or {})
        return MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net), **kw)

    assert engine().kernel is not None  # by default where it applies
    assert engine(bit_codes=False).kernel is None  # asking for a NumPy form of codes
    assert engine({"mgd": {"mode": "node"}}).kernel is None
    monkeypatch.setenv(NUMBA_ENV, "0")
    assert engine().kernel is None
    assert engine(compiled=True).kernel is not None  # asking for it wins
    for layers in ({"mgd": {"mode": "node"}}, {"mgd": {"baseline": "analog", "tau_x": 2}},
                   {"mgd": {"sparsity": 0.5}}, {"mgd": {"perturbation": "walsh"}}):
        with pytest.raises(ValueError, match="compiled kernel"):
            engine(layers, compiled=True)


_COLD_RUN = """
import json, numpy as np
from golden_model.config import build_config
from golden_model.mgd import MGDEnsemble
from golden_model.network import MLP
from golden_model.train import initial_params
x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([[0], [1], [1], [0]], dtype=float)
cfg = build_config({"task": {"name": "xor"}, "runs": 2, "mgd": {"tau_x": 8, "tau_theta": 8}})
net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
engine = MGDEnsemble(cfg, net, x, y, initial_params(cfg, net), compiled=True)
engine.advance(200)
print(json.dumps(engine.theta.tolist()))
"""


def test_cold_compile_in_a_fresh_process_gives_the_same_numbers(tmp_path: Path) -> None:
    """No warm cache needed: an empty NUMBA_CACHE_DIR compiles from scratch (and the
    cache goes there, not into the source tree)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop(NUMBA_ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", _COLD_RUN], env=env, capture_output=True, text=True,
        check=True, cwd=Path(__file__).resolve().parents[1],
    )
    cold = np.array(json.loads(out.stdout))
    cfg = build_config({"task": {"name": "xor"}, "runs": 2,
                        "mgd": {"tau_x": 8, "tau_theta": 8}})
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net), compiled=True)
    engine.advance(200)
    np.testing.assert_array_equal(cold, engine.theta)
    assert any((tmp_path / "cache").rglob("*.nbi")), "the compiled code was cached there"
