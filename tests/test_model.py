"""The vectorized float MGD model against the plain per-step loop, and its parts."""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.activations import draw_variation
from golden_model.config import build_config
from golden_model.datasets import load_dataset
from golden_model.mgd import MGDEnsemble
from golden_model.network import MLP
from golden_model.reference import reference_run
from golden_model.streams import run_rng, run_rngs
from golden_model.train import device_variation, initial_params, make_network

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)

# Each case: config layers over an xor base. Together they cover every perturbation
# kind, both modes and baselines, every optimizer, clamp, sparsity, tau_p > 1,
# tau_x != tau_theta, and every non-ideality.
CASES = {
    "code-weight": {},
    "code-node": {"mgd": {"mode": "node"}},
    "analog": {"mgd": {"baseline": "analog", "tau_theta": 3, "tau_x": 4}},
    "analog-node-clamp": {
        "mgd": {"baseline": "analog", "mode": "node", "clamp": 0.001, "tau_hp": 3.0,
                "tau_x": 5}
    },
    "walsh-adam": {
        "mgd": {"perturbation": "walsh", "tau_theta": 5, "tau_x": 2, "optimizer": "adam"}
    },
    "time-momentum-clamp": {
        "mgd": {"perturbation": "time", "tau_p": 2, "tau_theta": 4, "optimizer": "momentum",
                "clamp": 0.01}
    },
    "frequency-node": {"mgd": {"perturbation": "frequency", "mode": "node", "tau_theta": 7}},
    "noise-quantized": {
        "nonideal": {"cost_noise": 0.01, "update_noise": 0.001, "weight_bits": 12,
                     "weight_frac": 8}
    },
    "sparse-codes": {"mgd": {"sparsity": 0.5, "tau_x": 3, "tau_theta": 6}},
    "device-variation": {"nonideal": {"device_variation": 0.2}, "mgd": {"mode": "node"}},
    "tau_p-inside-window": {"mgd": {"tau_p": 3, "tau_theta": 5, "tau_x": 7}},
    "neuron-gaussian": {"nonideal": {"neuron_noise": "gaussian", "neuron_std": 0.1,
                                     "cost_noise": 0.01}, "mgd": {"tau_x": 3, "tau_theta": 6}},
    "neuron-gaussian-node-variation": {
        "nonideal": {"neuron_noise": "gaussian", "neuron_std": 0.05, "device_variation": 0.2},
        "mgd": {"mode": "node", "tau_x": 4, "tau_theta": 4}},
    "neuron-bernoulli-analog": {"nonideal": {"neuron_noise": "bernoulli"},
                                "mgd": {"baseline": "analog", "tau_theta": 3, "tau_x": 4}},
    "neuron-bernoulli-node-walsh": {"nonideal": {"neuron_noise": "bernoulli"},
                                    "mgd": {"mode": "node", "perturbation": "walsh"}},
    "pulsed-devices": {
        "mgd": {"eta": 1.0},
        "nonideal": {"device": "softbounds", "dw_min": 0.01, "asymmetry": 0.7,
                     "up_down": 0.1, "pulse_noise": 0.3, "dw_min_dtod": 0.3,
                     "up_down_dtod": 0.2, "max_pulses": 5},
    },
    "pulsed-adam-analog": {
        "mgd": {"optimizer": "adam", "eta": 0.02, "baseline": "analog", "tau_x": 4},
        "nonideal": {"device": "softbounds", "dw_min": 0.005, "asymmetry": 0.5,
                     "pulse_noise": 0.2},
    },
    "pulsed-devices-gaussian-neurons": {
        "mgd": {"eta": 1.0, "mode": "node", "tau_x": 3, "tau_theta": 3},
        "nonideal": {"device": "softbounds", "dw_min": 0.01, "asymmetry": 0.5,
                     "pulse_noise": 0.2, "neuron_noise": "gaussian", "neuron_std": 0.05},
    },
    "tiki-taka-node": {
        "mgd": {"optimizer": "tiki_taka", "mode": "node", "eta": 2.0, "tau_theta": 2,
                "transfer_every": 3, "transfer_lr": 0.5, "transfer_gamma": 0.3},
        "nonideal": {"device": "softbounds", "dw_min": 0.01, "asymmetry": 0.5,
                     "pulse_noise": 0.2, "up_down_dtod": 0.2},
    },
    "tiki-taka-zero-shift": {
        "mgd": {"optimizer": "tiki_taka", "eta": 2.0, "transfer_every": 2,
                "transfer_lr": 0.5, "transfer_gamma": 0.3},
        "nonideal": {"device": "softbounds", "dw_min": 0.01, "asymmetry": 0.5,
                     "up_down": 0.2, "up_down_dtod": 0.2, "pulse_noise": 0.2,
                     "zero_shift": True, "zero_shift_error": 0.1},
    },
}


def _xor_case(layers: dict, runs: int = 3):
    cfg = build_config({"task": {"name": "xor"}, "runs": runs}, layers)
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    return cfg, net


def _variation_of_run(variation, r):
    if variation is None:
        return None
    return [(v.gain[r], v.steep[r], v.mid[r], v.offset[r]) for v in variation]


@pytest.mark.parametrize("case", sorted(CASES))
def test_vectorized_matches_plain_loop(case: str) -> None:
    cfg, net = _xor_case(CASES[case])
    theta0 = initial_params(cfg, net)
    variation = device_variation(cfg, net)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, theta0, variation, record_costs=True)
    # Uneven advances: chunk boundaries must not change any number.
    for chunk in (37, 1, 62):
        engine.advance(chunk)
    costs = np.concatenate(engine.costs, axis=1)
    baselines = np.array(engine.baselines).T if engine.baselines else None
    for r in range(cfg.runs):
        theta, ref_costs, ref_baselines = reference_run(
            cfg, net, XOR_X, XOR_Y, theta0[r], r, 100, _variation_of_run(variation, r)
        )
        np.testing.assert_allclose(engine.theta[r], theta, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(costs[r], ref_costs, rtol=1e-10, atol=1e-15)
        if baselines is not None:
            np.testing.assert_allclose(baselines[r], ref_baselines, rtol=1e-10, atol=1e-15)
    assert not np.allclose(engine.theta, theta0), "the run must actually move theta"


@pytest.mark.parametrize(
    "layers",
    [
        {"network": {"hidden": [5, 4], "activation": "tanh", "output_activation": "linear",
                     "cost": "cross_entropy"}},
        {"network": {"hidden": [6], "activation": "relu"}, "mgd": {"mode": "node"}},
        {"network": {"hidden": [6], "activation": "hard_sigmoid"},
         "nonideal": {"device_variation": 0.1}},
    ],
)
def test_vectorized_matches_loop_on_multiclass_images(layers: dict) -> None:
    cfg = build_config(
        {"task": {"name": "images7", "images_per_class": 5}, "runs": 2,
         "mgd": {"tau_x": 10, "tau_theta": 10, "eta": 0.5}},
        layers,
    )
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    theta0 = initial_params(cfg, net)
    variation = device_variation(cfg, net)
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0, variation)
    engine.advance(200)
    for r in range(cfg.runs):
        theta, _, _ = reference_run(
            cfg, net, data.x_train, data.y_train, theta0[r], r, 200,
            _variation_of_run(variation, r),
        )
        np.testing.assert_allclose(engine.theta[r], theta, rtol=1e-9, atol=1e-12)


def test_digits_window_matches_loop() -> None:
    """The batched update window of the benchmark case equals the step-by-step loop."""
    cfg = build_config({"task": {"name": "digits"}, "runs": 1})
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    theta0 = initial_params(cfg, net)
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0)
    engine.advance(300)
    theta, _, _ = reference_run(cfg, net, data.x_train, data.y_train, theta0[0], 0, 300)
    np.testing.assert_allclose(engine.theta[0], theta, rtol=1e-9, atol=1e-12)


def test_run_r_of_an_ensemble_is_the_single_run_of_seed_plus_r() -> None:
    cfg, net = _xor_case({}, runs=4)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
    engine.advance(500)
    single_cfg = build_config({"task": {"name": "xor"}, "runs": 1, "seed": 3})
    single = MGDEnsemble(single_cfg, net, XOR_X, XOR_Y, initial_params(single_cfg, net))
    single.advance(500)
    np.testing.assert_array_equal(engine.theta[3], single.theta[0])


def test_per_run_learning_rates_sweep_in_one_ensemble() -> None:
    cfg, net = _xor_case({}, runs=2)
    theta0 = initial_params(cfg, net)
    theta0[1] = theta0[0]
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, theta0, eta=np.array([0.0, 1.0]))
    engine.advance(50)
    np.testing.assert_array_equal(engine.theta[0], theta0[0])  # eta 0: no motion
    assert not np.allclose(engine.theta[1], theta0[1])


def test_no_per_step_history_unless_asked() -> None:
    cfg, net = _xor_case({})
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
    engine.advance(1000)
    assert engine.costs == [] and engine.baselines == []


def test_discrete_update_count_and_baseline_schedule() -> None:
    """C0 is measured whenever the sample changes or theta updates."""
    cfg, net = _xor_case({"mgd": {"tau_x": 4, "tau_theta": 6}}, runs=1)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net), record_costs=True)
    engine.advance(24)
    assert engine.updates == 4
    # boundaries at multiples of 4 or 6 below 24: 0,4,6,8,12,16,18,20
    assert len(engine.baselines) == 8


def test_quantized_weights_stay_on_the_grid() -> None:
    cfg, net = _xor_case({"nonideal": {"weight_bits": 8, "weight_frac": 5}})
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
    engine.advance(300)
    scaled = engine.theta * 32
    np.testing.assert_array_equal(scaled, np.round(scaled))
    assert np.all(scaled <= 127) and np.all(scaled >= -128)


def test_variation_is_seeded_and_changes_outputs() -> None:
    net = MLP([2, 3, 1], "sigmoid", "sigmoid", "mse")
    v1 = draw_variation(net.sizes, 0.2, run_rngs(5, 2, 5))
    v2 = draw_variation(net.sizes, 0.2, run_rngs(5, 2, 5))
    np.testing.assert_array_equal(v1[0].gain, v2[0].gain)
    assert draw_variation(net.sizes, 0.0, run_rngs(5, 2, 5)) is None
    theta = np.stack([net.init_params(run_rng(0, r, 0), 1.0) for r in range(2)])
    y_ideal, _ = net.forward(theta, XOR_X[None].repeat(2, 0))
    y_var, _ = net.forward(theta, XOR_X[None].repeat(2, 0), v1)
    assert not np.allclose(y_ideal, y_var)


def test_xor_trains_with_every_multiplexing() -> None:
    for kind in ("code", "time", "frequency", "walsh"):
        cfg, net = _xor_case({"mgd": {"perturbation": kind, "eta": 1.0},
                              "network": {"init_scale": 2.0}}, runs=8)
        engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
        start = net.loss(engine.theta, XOR_X[None].repeat(8, 0), XOR_Y[None].repeat(8, 0))
        engine.advance(30_000)
        end = net.loss(engine.theta, XOR_X[None].repeat(8, 0), XOR_Y[None].repeat(8, 0))
        solved = ((net.forward(engine.theta, XOR_X[None].repeat(8, 0))[0][..., 0] > 0.5)
                  == XOR_Y[None, :, 0].astype(bool)).all(axis=1)
        assert np.median(end.mean(axis=1)) < np.median(start.mean(axis=1)), kind
        assert solved.sum() >= 4, (kind, solved)


def test_analog_mode_trains_xor() -> None:
    cfg, net = _xor_case({"mgd": {"baseline": "analog", "eta": 0.1, "tau_theta": 1, "tau_x": 10},
                          "network": {"init_scale": 2.0}}, runs=8)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net))
    start = net.loss(engine.theta, XOR_X[None].repeat(8, 0), XOR_Y[None].repeat(8, 0)).mean()
    engine.advance(40_000)
    end = net.loss(engine.theta, XOR_X[None].repeat(8, 0), XOR_Y[None].repeat(8, 0)).mean()
    assert end < 0.6 * start
