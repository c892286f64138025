"""The mixture density network: its hand-written gradient, a fit that recovers a known
mixture, the device file and the synthetic switching data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import ndtr

from golden_model import mdn
from golden_model.device_fit import fit_device, switching_mae
from golden_model.device_model import DeviceError, DeviceModel, load_device
from golden_model.switching_data import synthesize, true_prob_above, true_switch_probability


def _tiny():
    rng = np.random.default_rng(4)
    params = mdn.init_params([5, 4], 3, rng)
    # move off the symmetric start so every gradient entry is exercised
    params = [(w + 0.3 * rng.standard_normal(w.shape), b + 0.3 * rng.standard_normal(b.shape))
              for w, b in params]
    x = rng.standard_normal(7)
    y = rng.standard_normal(7)
    return params, x, y


def test_gradient_matches_finite_differences() -> None:
    params, x, y = _tiny()
    _, grads = mdn.nll_and_grad(params, x, y)
    h = 1e-6
    worst = 0.0
    for i, (w, b) in enumerate(params):
        for arr, g in ((w, grads[i][0]), (b, grads[i][1])):
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                up = mdn.nll(params, x, y)
                arr[idx] = old - h
                down = mdn.nll(params, x, y)
                arr[idx] = old
                num = (up - down) / (2 * h)
                worst = max(worst, abs(num - g[idx]) / max(1e-6, abs(num) + abs(g[idx])))
    assert worst < 1e-6


def test_nll_is_the_mixture_density() -> None:
    params, x, y = _tiny()
    pi, mu, sigma = mdn.mixture(params, x)
    dens = (pi * np.exp(-0.5 * ((y[:, None] - mu) / sigma) ** 2)
            / (sigma * np.sqrt(2 * np.pi))).sum(axis=1)
    assert mdn.nll(params, x, y) == pytest.approx(-np.log(dens).mean(), rel=1e-12)


def _known_mixture(n: int, seed: int):
    """x ~ U(-1, 1); y from two Gaussians whose weight moves with x."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    w1 = 1 / (1 + np.exp(-3 * x))  # weight of component 1
    first = rng.random(n) < w1
    y = np.where(first, 1.0 + 0.5 * x + 0.15 * rng.standard_normal(n),
                 -1.0 + 0.1 * rng.standard_normal(n))
    return x, y


def _true_prob_above(x, t):
    w1 = 1 / (1 + np.exp(-3 * x))
    return w1 * ndtr((1.0 + 0.5 * x - t) / 0.15) + (1 - w1) * ndtr((-1.0 - t) / 0.1)


def test_fit_recovers_a_known_mixture() -> None:
    """Tolerance: the fitted P(y > 0 | x) within 0.05 of the truth everywhere on
    [-0.9, 0.9] and within 0.02 on average, its mean within 0.1 (the weight error times the
    components' separation of 2), and the held-out NLL
    within 0.05 nats of the true mixture's (4000 samples, 2 components, 1500 Adam
    steps; with 3200 training samples the mixture weight's own sampling error is
    about 0.03 where x is binned to +-0.05)."""
    x, y = _known_mixture(4000, 1)
    r = fit_device(x, y, components=2, hidden=(16,), seed=0, threshold=0.0,
                   settings=mdn.FitSettings(steps=1500, batch=256, lr=0.02))
    grid = np.linspace(-0.9, 0.9, 37)
    err = np.abs(r.device.prob_above(grid) - _true_prob_above(grid, 0.0))
    assert err.max() < 0.05 and err.mean() < 0.02
    w1 = 1 / (1 + np.exp(-3 * grid))
    true_mean = w1 * (1.0 + 0.5 * grid) - (1 - w1)
    assert np.abs(r.device.mean(grid) - true_mean).max() < 0.1
    xt, yt = r.x_test, r.y_test
    w = 1 / (1 + np.exp(-3 * xt))
    dens = (w * np.exp(-0.5 * ((yt - 1 - 0.5 * xt) / 0.15) ** 2) / (0.15 * np.sqrt(2 * np.pi))
            + (1 - w) * np.exp(-0.5 * ((yt + 1) / 0.1) ** 2) / (0.1 * np.sqrt(2 * np.pi)))
    assert r.heldout_nll == pytest.approx(-np.log(dens).mean(), abs=0.05)
    # 40 held-out samples a bin: the MAE is limited by their own sampling noise
    assert r.switching.mae < 1.5 * r.switching.floor


def test_synthetic_switching_data_follows_its_probability() -> None:
    d = synthesize(20000, 3)
    assert set(d) == {"bias", "switched", "output"}
    near = np.abs(d["bias"] - 0.5) < 0.02
    assert d["switched"][near].mean() == pytest.approx(0.5, abs=0.06)
    assert true_switch_probability(0.5) == pytest.approx(0.5)
    # switched outputs sit high, the others near 0: output > 0.5 is the switch
    assert ((d["output"] > 0.5) == (d["switched"] == 1)).mean() > 0.999
    assert np.array_equal(synthesize(50, 3)["output"], synthesize(50, 3)["output"])


def test_fit_on_synthetic_device_and_its_error() -> None:
    d = synthesize(6000, 0)
    r = fit_device(d["bias"], d["output"], components=3, hidden=(16,), seed=1,
                   settings=mdn.FitSettings(steps=1200))
    grid = np.linspace(0.05, 0.95, 19)
    err = np.abs(r.device.prob_above(grid) - true_prob_above(grid, 0.5))
    assert err.max() < 0.08 and err.mean() < 0.015
    e = r.switching
    assert e.mae == pytest.approx(np.abs(e.predicted - e.empirical).mean())
    assert e.mae < 0.03
    # the empirical fraction of each bin, counted by hand
    again = switching_mae(r.device, r.x_test, r.y_test, bins=20)
    assert np.array_equal(again.empirical, e.empirical)
    first = (r.x_test >= e.centers[0] - 0.5 * (e.centers[1] - e.centers[0])) & (
        r.x_test < e.centers[0] + 0.5 * (e.centers[1] - e.centers[0]))
    assert e.empirical[0] == pytest.approx((r.y_test[first] > 0.5).mean())


@pytest.mark.parametrize("ending", [".npz", ".json"])
def test_device_file_round_trip(tmp_path, ending: str) -> None:
    params = mdn.init_params([6], 2, np.random.default_rng(0))
    meta = {"components": 2, "hidden": [6], "x_mean": 0.5, "x_std": 0.3, "y_mean": 0.2,
            "y_std": 0.4, "x_min": 0.0, "x_max": 1.0, "threshold": 0.5, "note": "x"}
    dev = DeviceModel(params, meta)
    path = tmp_path / f"dev{ending}"
    dev.save(path)
    back = load_device(path)
    assert back.meta["note"] == "x" and back.meta["format"] == "mgd-hw-device-mdn-1"
    for (w, b), (w2, b2) in zip(params, back.params, strict=True):
        assert np.array_equal(w, w2) and np.array_equal(b, b2)
    x = np.linspace(-0.5, 1.5, 9)
    n = np.random.default_rng(1).standard_normal((9, 2))
    assert np.array_equal(dev.sample(x, n), back.sample(x, n))
    # inputs outside the fitted range are clipped to it
    assert back.mean(np.array([-3.0]))[0] == back.mean(np.array([0.0]))[0]


def test_device_sample_picks_components_by_weight() -> None:
    params = mdn.init_params([4], 3, np.random.default_rng(2))
    meta = {"components": 3, "hidden": [4], "x_mean": 0.0, "x_std": 1.0, "y_mean": 0.0,
            "y_std": 1.0, "x_min": -1.0, "x_max": 1.0, "threshold": 0.0}
    dev = DeviceModel(params, meta)
    rng = np.random.default_rng(3)
    s = dev.sample(np.full(200000, 0.3), rng.standard_normal((200000, 2)))
    assert s.mean() == pytest.approx(dev.mean(np.array([0.3]))[0], abs=0.01)
    assert (s > 0).mean() == pytest.approx(dev.prob_above(np.array([0.3]), 0.0)[0], abs=0.005)


def test_bad_device_files_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(DeviceError, match=r"^device file '.*nope.npz' does not exist$"):
        load_device(tmp_path / "nope.npz")
    with pytest.raises(DeviceError, match=r"must end in .npz or .json$"):
        load_device(tmp_path / "dev.txt")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DeviceError, match=r"^device file '.*bad.json' cannot be read as a "
                       r"device: Expecting property name"):
        load_device(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"meta": {"format": "x"}, "layers": []}))
    with pytest.raises(DeviceError, match=r"is not an MGD device file \(format "
                       r"'mgd-hw-device-mdn-1' expected\)$"):
        load_device(other)
    dev = DeviceModel(mdn.init_params([3], 2, np.random.default_rng(0)),
                      {"components": 2, "hidden": [4], "x_mean": 0.0, "x_std": 1.0,
                       "y_mean": 0.0, "y_std": 1.0, "x_min": 0.0, "x_max": 1.0,
                       "threshold": 0.5})
    dev.save(tmp_path / "shape.npz")
    with pytest.raises(DeviceError, match=r"has layer shapes .* not those of a 1-4-6 MDN$"):
        load_device(tmp_path / "shape.npz")


@pytest.mark.slow  # importing torch alone takes 10 s or more here
def test_torch_fit_matches_numpy() -> None:
    pytest.importorskip("torch")
    x, y = _known_mixture(600, 2)
    s = mdn.FitSettings(steps=60, batch=100, lr=0.01)
    a = fit_device(x, y, components=2, hidden=(8,), seed=0, threshold=0.0, settings=s)
    b = fit_device(x, y, components=2, hidden=(8,), seed=0, threshold=0.0, settings=s,
                   backend="torch")
    for (w, bb), (w2, b2) in zip(a.device.params, b.device.params, strict=True):
        np.testing.assert_allclose(w, w2, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(bb, b2, rtol=1e-6, atol=1e-9)
