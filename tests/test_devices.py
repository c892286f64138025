"""Pulsed crosspoint devices (golden_model/devices.py): the device equations, the
pulse grid, seeded device-to-device spread, Tiki-Taka's transfer, the config rules,
and the plain per-device restatement in reference.py against the vectorized one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, build_config
from golden_model.datasets import load_dataset
from golden_model.devices import PulsedParams, SoftBoundsArray, pulse_counts
from golden_model.hw_spec import hw_spec
from golden_model.mgd import MGDEnsemble, compiled_kernels
from golden_model.network import MLP
from golden_model.reference import _PlainPulsedParams, reference_run
from golden_model.streams import PULSE_ROUNDING, run_rng
from golden_model.train import initial_params, make_network

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def _cfg(nonideal: dict, mgd: dict | None = None, runs: int = 1, seed: int = 0):
    return build_config(
        {"task": {"name": "xor"}, "runs": runs, "seed": seed,
         "nonideal": {"device": "softbounds", **nonideal}, "mgd": mgd or {}}
    )


def _array(nonideal: dict, w0: np.ndarray) -> SoftBoundsArray:
    q = _cfg(nonideal).nonideal
    return SoftBoundsArray(q, w0, np.zeros((w0.shape[0], 2, w0.shape[1])))


def test_zero_mean_pulse_train_drifts_to_the_symmetry_point() -> None:
    # beta = 0.2, gamma = 0.5, w_max = 1: up and down steps equal at w* = 0.2 / 0.5.
    arr = _array({"dw_min": 0.01, "asymmetry": 0.5, "up_down": 0.2, "w_max": 1.0},
                 np.array([[-0.8, 0.0, 0.8]]))
    np.testing.assert_allclose(arr.symmetry_point(), 0.4, rtol=1e-12)
    up, down = np.ones((1, 3), dtype=np.int64), -np.ones((1, 3), dtype=np.int64)
    for _ in range(3000):  # +1, -1, +1, -1, ...: a zero-mean pulse train
        arr.apply(up)
        arr.apply(down)
    # After a down pulse w sits within half a step (dw+ (1 - w*/2) / 2 = 0.0048) below
    # w*, wherever it started.
    assert np.all(arr.w < 0.4) and np.all(arr.w > 0.4 - 0.0048)
    assert np.ptp(arr.w) < 1e-9


def test_zero_shift_reads_each_device_less_its_symmetry_point() -> None:
    """The same devices as above with a reference at w* = 0.4: they start at w0 + w*
    (read w0) and a zero-mean pulse train drifts the read value to 0, not to w*."""
    w0 = np.array([[-0.5, 0.0, 0.5]])
    arr = _array({"dw_min": 0.01, "asymmetry": 0.5, "up_down": 0.2, "w_max": 1.0,
                  "zero_shift": True}, w0)
    np.testing.assert_allclose(arr.reference, 0.4, rtol=1e-12)
    np.testing.assert_allclose(arr.value, w0, atol=1e-15)
    np.testing.assert_allclose(arr.w, w0 + 0.4, atol=1e-15)
    up, down = np.ones((1, 3), dtype=np.int64), -np.ones((1, 3), dtype=np.int64)
    for _ in range(3000):
        arr.apply(up)
        arr.apply(down)
    assert np.all(np.abs(arr.value) < 0.0048)
    # a reference programmed with an error (seeded, per device) reads off by it
    cfg = _cfg({"dw_min": 0.01, "asymmetry": 0.5, "up_down": 0.2, "w_max": 1.0,
                "zero_shift": True, "zero_shift_error": 0.05}, runs=2, seed=3)
    params = PulsedParams(cfg, np.zeros((2, 400)))
    err = params.visible.reference - 0.4
    assert 0.04 < err.std() < 0.06 and abs(err.mean()) < 0.01
    np.testing.assert_array_equal(PulsedParams(cfg, np.zeros((2, 400))).visible.reference,
                                  params.visible.reference)
    np.testing.assert_allclose(params.theta, 0.0, atol=1e-15)  # it still reads w0
    # without asymmetry there is no symmetry point: the reference is 0
    flat = _array({"dw_min": 0.01, "asymmetry": 0.0, "up_down": 0.2, "zero_shift": True}, w0)
    np.testing.assert_array_equal(flat.reference, 0.0)


def test_symmetric_constant_steps_do_not_drift() -> None:
    arr = _array({"dw_min": 0.01, "asymmetry": 0.0}, np.array([[-0.5, 0.3]]))
    for _ in range(500):
        arr.apply(np.ones((1, 2), dtype=np.int64))
        arr.apply(-np.ones((1, 2), dtype=np.int64))
    np.testing.assert_allclose(arr.w, [[-0.5, 0.3]], atol=1e-12)
    assert np.isnan(arr.symmetry_point()).all()


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_soft_bounds_never_exceed_w_max(noise: float) -> None:
    cfg = _cfg({"dw_min": 0.05, "asymmetry": 1.0, "w_max": 0.5, "pulse_noise": noise,
                "dw_min_dtod": 0.5, "max_pulses": 1000}, runs=2)
    params = PulsedParams(cfg, np.zeros((2, 200)))
    arr = params.visible
    highest = lowest = 0.0
    for sign in (1, -1):
        for _ in range(20):
            arr.apply(sign * np.full((2, 200), 25, dtype=np.int64), params.noise)
            highest, lowest = max(highest, arr.w.max()), min(lowest, arr.w.min())
    assert highest <= 0.5 and lowest >= -0.5
    assert highest > 0.49 and lowest < -0.49  # driven hard into both bounds


def test_soft_bounds_step_shrinks_toward_the_bound() -> None:
    """Full soft bounds: each up pulse closes a fraction dw / w_max of the distance to
    w_max, so after k pulses from 0, w = w_max (1 - (1 - dw / w_max)^k)."""
    arr = _array({"dw_min": 0.05, "asymmetry": 1.0, "w_max": 0.5}, np.zeros((1, 1)))
    for k in range(1, 31):
        arr.apply(np.ones((1, 1), dtype=np.int64))
        np.testing.assert_allclose(arr.w[0, 0], 0.5 * (1 - 0.9**k), rtol=1e-12)
    assert arr.w[0, 0] < 0.5


def test_asymmetry_zero_without_noise_is_sgd_on_the_pulse_grid() -> None:
    """Every update moves theta by dw_min times the stochastically rounded pulse count
    of the SGD step, and theta stays on theta0 + dw_min * integers."""
    dw = 1.0 / 64  # exact in binary, so the grid is exact too
    cfg = _cfg({"dw_min": dw, "asymmetry": 0.0, "w_max": 100.0, "max_pulses": 3},
               {"eta": 2.0}, runs=2)
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    theta0 = np.round(initial_params(cfg, net) / dw) * dw
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, theta0)
    for _ in range(40):
        theta = engine.theta.copy()
        engine.advance(1)  # tau_theta = 1: one update a step
        k = (engine.theta - theta) / dw
        np.testing.assert_array_equal(k, np.round(k))
        assert np.all(np.abs(k) <= 3)
    offsets = (engine.theta - theta0) / dw
    np.testing.assert_array_equal(offsets, np.round(offsets))
    assert np.abs(offsets).sum() > 20, "the run must move theta by many pulses"


def test_pulsed_update_is_the_rounded_desired_step() -> None:
    """asymmetry 0, no noise: update(delta) = theta + dw * clip(floor(delta/dw + U))."""
    dw = 1.0 / 128
    cfg = _cfg({"dw_min": dw, "asymmetry": 0.0, "w_max": 100.0, "max_pulses": 4}, runs=3)
    rng = np.random.default_rng(5)
    theta0 = np.round(rng.normal(size=(3, 50)) * 64) / 64
    params = PulsedParams(cfg, theta0)
    rounding = [run_rng(cfg.seed, r, PULSE_ROUNDING) for r in range(3)]
    theta = theta0.copy()
    for _ in range(10):
        delta = rng.normal(scale=0.02, size=(3, 50))
        u = np.stack([r.random(50) for r in rounding])
        n = np.clip(np.floor(delta / dw + u), -4, 4)
        params.update(delta)
        theta = theta + n * dw
        np.testing.assert_array_equal(params.theta, theta)


def test_stochastic_rounding_is_unbiased_and_clipped() -> None:
    u = np.random.default_rng(1).random(200_000)
    n = pulse_counts(np.full(u.shape, 0.3 * 0.01), 0.01, u, 10)
    assert abs(n.mean() - 0.3) < 0.005 and set(np.unique(n)) == {0, 1}
    n = pulse_counts(np.full(u.shape, -2.6 * 0.01), 0.01, u, 10)
    assert abs(n.mean() + 2.6) < 0.005
    np.testing.assert_array_equal(pulse_counts(np.array([1.0, -1.0]), 0.01, u[:2], 7), [7, -7])


def test_device_to_device_spread_is_seeded() -> None:
    spread = {"dw_min": 0.01, "dw_min_dtod": 0.2, "up_down_dtod": 0.1}
    theta0 = np.zeros((1, 20000))
    a = PulsedParams(_cfg(spread, seed=3), theta0).visible
    b = PulsedParams(_cfg(spread, seed=3), theta0).visible
    c = PulsedParams(_cfg(spread, seed=4), theta0).visible
    np.testing.assert_array_equal(a.up, b.up)
    np.testing.assert_array_equal(a.down, b.down)
    assert not np.array_equal(a.up, c.up)
    dw = (a.up + a.down) / 2  # dw (1 + beta) and dw (1 - beta) average to dw
    beta = (a.up - a.down) / (a.up + a.down)
    assert abs(dw.mean() / 0.01 - 1) < 0.01 and abs(dw.std() / 0.01 - 0.2) < 0.01
    assert abs(beta.mean()) < 0.005 and abs(beta.std() - 0.1) < 0.005
    # Run r of an ensemble has the devices of the single run of seed s + r.
    two = PulsedParams(_cfg(spread, runs=2, seed=3), np.zeros((2, 20000))).visible
    np.testing.assert_array_equal(two.up[1], c.up[0])


def test_tiki_taka_transfers_every_transfer_every_updates() -> None:
    cfg = _cfg({"dw_min": 0.01, "asymmetry": 0.5, "w_max": 1.0},
               {"optimizer": "tiki_taka", "transfer_every": 3, "transfer_lr": 0.5})
    theta0 = np.full((1, 10), 0.2)
    params = PulsedParams(cfg, theta0)
    delta = np.full((1, 10), 0.05)  # 5 pulses up into A each update
    for k in range(1, 7):
        params.update(delta)
        assert np.all(params.fast.w > 0)
        if k < 3:  # no transfer yet: C (what the network sees, gamma 0) is theta0
            np.testing.assert_array_equal(params.theta, theta0)
        else:
            assert np.all(params.theta > theta0)
    moved_at_3 = params.theta.copy()
    params.update(delta)
    np.testing.assert_array_equal(params.theta, moved_at_3)  # update 7: no transfer


@pytest.mark.parametrize(
    "nonideal, mgd",
    [
        ({"dw_min": 0.01, "pulse_noise": 0.3, "dw_min_dtod": 0.3, "up_down": 0.1,
          "up_down_dtod": 0.2, "max_pulses": 5}, {}),
        ({"dw_min": 0.02, "asymmetry": 0.3, "pulse_noise": 0.5},
         {"optimizer": "tiki_taka", "transfer_every": 2, "transfer_gamma": 0.5}),
        ({"dw_min": 0.01, "asymmetry": 0.5, "up_down": 0.3, "up_down_dtod": 0.3,
          "dw_min_dtod": 0.5, "pulse_noise": 0.3, "zero_shift": True}, {}),
        ({"dw_min": 0.02, "asymmetry": 0.3, "up_down": -0.1, "up_down_dtod": 0.2,
          "zero_shift": True},
         {"optimizer": "tiki_taka", "transfer_every": 2, "transfer_gamma": 0.5}),
        ({"dw_min": 0.01, "asymmetry": 0.0, "up_down": 0.2, "zero_shift": True}, {}),
        ({"dw_min": 0.01, "asymmetry": 0.5, "up_down": 0.3, "up_down_dtod": 0.3,
          "zero_shift": True, "zero_shift_error": 0.4, "w_max": 1.0}, {}),
        ({"dw_min": 0.02, "asymmetry": 0.3, "zero_shift": True, "zero_shift_error": 0.1},
         {"optimizer": "tiki_taka", "transfer_every": 2, "transfer_gamma": 0.5}),
    ],
)
def test_plain_devices_equal_the_vectorized_ones_bit_for_bit(nonideal, mgd) -> None:
    """The per-device, per-pulse loop of reference.py gives the vectorized devices'
    numbers exactly for the same desired steps (same seed, same streams)."""
    cfg = _cfg(nonideal, mgd, runs=3, seed=7)
    rng = np.random.default_rng(0)
    theta0 = rng.normal(scale=0.5, size=(3, 30))
    params = PulsedParams(cfg, theta0)
    plain = [_PlainPulsedParams(cfg, r, theta0[r]) for r in range(3)]
    for _ in range(12):
        delta = rng.normal(scale=0.03, size=(3, 30))
        params.update(delta)
        for r in range(3):
            np.testing.assert_array_equal(params.theta[r], plain[r].update(delta[r]))


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"device": "memristor"},
         "nonideal.device must be one of 'none', 'softbounds', not 'memristor'"),
        ({"dw_min": 0}, "nonideal.dw_min must be a number > 0.0, not 0"),
        ({"asymmetry": 1.5}, "nonideal.asymmetry must be a number >= 0.0 and <= 1.0, not 1.5"),
        ({"up_down": 1.0}, "nonideal.up_down must be between -1 and 1 (exclusive: a step of 0 "
                           "in one direction), not 1.0"),
        ({"w_max": -1.0}, "nonideal.w_max must be a number > 0.0, not -1.0"),
        ({"pulse_noise": -0.1}, "nonideal.pulse_noise must be a number >= 0.0 and <= 1.0, "
                                "not -0.1"),
        ({"dw_min_dtod": 2}, "nonideal.dw_min_dtod must be a number >= 0.0 and <= 1.0, not 2"),
        ({"up_down_dtod": "x"}, "nonideal.up_down_dtod must be a number >= 0.0 and <= 1.0, "
                                "not 'x'"),
        ({"max_pulses": 0}, "nonideal.max_pulses must be an integer from 1 to 1000, not 0"),
        ({"dw_min": 0.5, "w_max": 0.5},
         "nonideal.dw_min must be less than nonideal.w_max (0.5), not 0.5"),
        ({"device": "softbounds", "weight_bits": 8, "weight_frac": 4},
         "nonideal.weight_bits must be 0 with nonideal.device 'softbounds' (the pulse step "
         "dw_min is the weight grid), not 8"),
        ({"device": "softbounds", "update_noise": 0.01},
         "nonideal.update_noise must be 0 with nonideal.device 'softbounds' (use "
         "nonideal.pulse_noise), not 0.01"),
        ({"device": "softbounds", "zero_shift": 1},
         "nonideal.zero_shift must be true or false, not 1"),
        ({"zero_shift": True},
         "nonideal.zero_shift needs nonideal.device 'softbounds' (it reads each device less "
         "its symmetry point), not 'none'"),
        ({"device": "softbounds", "zero_shift_error": 0.1},
         "nonideal.zero_shift_error needs nonideal.zero_shift = true (it is the "
         "reference's error), not 0.1"),
        ({"device": "softbounds", "zero_shift": True, "zero_shift_error": -0.1},
         "nonideal.zero_shift_error must be a number >= 0.0, not -0.1"),
    ],
)
def test_device_config_errors_are_one_line(layer: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"task": {"name": "xor"}, "nonideal": layer})
    assert str(err.value) == message


def test_tiki_taka_needs_pulsed_devices() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"task": {"name": "xor"}, "mgd": {"optimizer": "tiki_taka"}})
    assert str(err.value) == (
        "mgd.optimizer 'tiki_taka' needs nonideal.device 'softbounds' (its arrays are pulsed "
        "devices), not 'none'")
    with pytest.raises(ConfigError) as err:
        _cfg({}, {"optimizer": "tiki_taka", "transfer_every": 0})
    assert str(err.value) == "mgd.transfer_every must be a positive integer, not 0"


def test_hardware_refuses_pulsed_devices() -> None:
    cfg = _cfg({})
    with pytest.raises(ConfigError) as err:
        hw_spec(cfg)
    assert str(err.value) == (
        "nonideal.device must be 'none' in hardware (pulsed devices are float-only), "
        "not 'softbounds'")


def test_devices_off_by_default_change_nothing() -> None:
    cfg = build_config({"task": {"name": "xor"}, "runs": 2})
    assert cfg.nonideal.device == "none"
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
    assert engine.pulsed is None


@pytest.mark.parametrize("optimizer", ["sgd", "tiki_taka"])
def test_digits_with_devices_matches_the_loop(optimizer: str) -> None:
    """On digits (the compiled segment kernel when numba is there, which runs between
    updates only) the pulsed model equals reference.py's per-step loop."""
    cfg = build_config({
        "task": {"name": "digits"}, "runs": 1,
        "mgd": {"tau_x": 50, "tau_theta": 50, "eta": 5.0, "optimizer": optimizer,
                "transfer_every": 2},
        "nonideal": {"device": "softbounds", "dw_min": 0.002, "asymmetry": 0.5,
                     "pulse_noise": 0.3, "dw_min_dtod": 0.3}})
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    theta0 = initial_params(cfg, net)
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0)
    assert (engine.kernel is not None) == compiled_kernels()
    engine.advance(300)
    theta, _, _ = reference_run(cfg, net, data.x_train, data.y_train, theta0[0], 0, 300)
    np.testing.assert_allclose(engine.theta[0], theta, rtol=1e-9, atol=1e-12)
    assert np.count_nonzero(engine.theta[0] != np.clip(theta0[0], -1, 1)) > 100


def test_devices_plot_reads_the_sweeps_and_prints_medians(tmp_path) -> None:
    """bench/devices_plot.py: medians of each (perturbation, optimizer, asymmetry)."""
    header = "nonideal.asymmetry,run,seed,model,status,final_test_acc,best_test_acc\n"
    for mode in ("weight", "node"):
        for opt, accs in (("sgd", (0.9, 0.5, 0.7)), ("tiki_taka", (0.2, 0.8, 0.6))):
            folder = tmp_path / f"{mode}_{opt}"
            folder.mkdir()
            rows = [f"0.5,{r},{r},float,ok,{a},{a + 0.01}\n" for r, a in enumerate(accs)]
            rows.append("0.5,3,3,float,failed,,\n")  # failed runs are left out
            (folder / "results.csv").write_text(header + "".join(rows))
    script = Path(__file__).resolve().parents[1] / "bench" / "devices_plot.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout
    assert "| weight | 0.5 | 0.700 (0.710) | 0.600 (0.610) | 3/3 |" in out
    assert (tmp_path / "devices.png").stat().st_size > 1000
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"devices_plot: error: no sweep results at {tmp_path / 'none' / 'weight_sgd'}"
        "/results.csv")


def test_devices_plot_groups_by_another_field_under_a_prefix(tmp_path) -> None:
    """``--field nonideal.up_down --prefix zs_``: the zero-shift sweeps' table."""
    header = "nonideal.up_down,run,seed,model,status,final_test_acc,best_test_acc\n"
    for mode in ("weight", "node"):
        for opt in ("sgd", "tiki_taka"):
            folder = tmp_path / f"zs_{mode}_{opt}"
            folder.mkdir()
            rows = [f"{ud},{r},{r},float,ok,{0.5 + r / 10 + ud},{0.9}\n"
                    for ud in (0.1, 0.3) for r in range(3)]
            (folder / "results.csv").write_text(header + "".join(rows))
    script = Path(__file__).resolve().parents[1] / "bench" / "devices_plot.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--field",
                          "nonideal.up_down", "--prefix", "zs_"],
                         capture_output=True, text=True, check=True).stdout
    assert "| perturbation | up_down |" in out
    assert "| node | 0.3 | 0.900 (0.900) | 0.900 (0.900) | 3/3 |" in out
