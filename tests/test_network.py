"""Network maths: backprop against finite differences, the decomposed weight-perturbed
forward pass, optimizers, quantization and the gradient diagnostic."""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.activations import draw_variation
from golden_model.config import build_config, derive
from golden_model.datasets import load_dataset
from golden_model.diagnostics import gradient_cosine, log_checkpoints
from golden_model.network import MLP, predict_labels
from golden_model.optim import Optimizer, quantize
from golden_model.streams import run_rngs

ACTS = ["sigmoid", "tanh", "relu", "hard_sigmoid"]


def _net_and_theta(act: str, out_act: str, cost: str, runs: int = 2):
    net = MLP([4, 5, 3, 2], act, out_act, cost)
    rng = np.random.default_rng(7)
    theta = np.stack([net.init_params(rng, 1.5) for _ in range(runs)])
    x = rng.random((runs, 6, 4))
    t = np.eye(2)[rng.integers(0, 2, (runs, 6))]
    return net, theta, x, t


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("cost", ["mse", "cross_entropy"])
@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_backprop_matches_finite_differences(act: str, cost: str, sigma: float) -> None:
    out_act = "linear" if cost == "cross_entropy" else "sigmoid"
    net, theta, x, t = _net_and_theta(act, out_act, cost)
    variation = draw_variation(net.sizes, sigma, run_rngs(3, 2, 5))
    grad, _ = net.gradient(theta, x, t, variation)
    eps = 1e-6
    numeric = np.zeros_like(theta)
    for i in range(net.n_params):
        d = np.zeros(net.n_params)
        d[i] = eps
        plus = net.loss(theta + d, x, t, variation).mean(axis=1)
        minus = net.loss(theta - d, x, t, variation).mean(axis=1)
        numeric[:, i] = (plus - minus) / (2 * eps)
    # relu/hard_sigmoid kinks: allow the rare sample sitting on a kink
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("baseline", [False, True])
def test_decomposed_weight_perturbation_equals_explicit_theta(baseline: bool) -> None:
    net, theta, x, _ = _net_and_theta("tanh", "sigmoid", "mse")
    rng = np.random.default_rng(1)
    u = np.sign(rng.standard_normal((2, 5, net.n_params)))
    amp = np.array([0.01, 0.03])
    y, _ = net.forward(theta, x[:, :1], weight_pert=(amp, u), baseline=baseline)
    explicit = []
    if baseline:
        explicit.append(net.forward(theta, x[:, :1])[0][:, 0])
    for k in range(5):
        explicit.append(net.forward(theta + amp[:, None] * u[:, k], x[:, :1])[0][:, 0])
    np.testing.assert_allclose(y, np.stack(explicit, axis=1), rtol=1e-12, atol=1e-14)


def test_predict_labels() -> None:
    assert predict_labels(np.array([[0.2], [0.7]])).tolist() == [0, 1]
    assert predict_labels(np.array([[0.1, 0.5, 0.2]])).tolist() == [1]


def test_optimizers_one_step() -> None:
    g = np.array([[0.5, -1.0]])
    theta = np.zeros((1, 2))
    Optimizer("sgd", (1, 2), np.array([0.1])).step(theta, g)
    np.testing.assert_allclose(theta, [[-0.05, 0.1]])

    opt = Optimizer("momentum", (1, 2), np.array([0.1]), momentum=0.5)
    theta = np.zeros((1, 2))
    opt.step(theta, g)
    opt.step(theta, g)  # v = g, then 1.5 g
    np.testing.assert_allclose(theta, -0.1 * 2.5 * g)

    opt = Optimizer("adam", (1, 2), np.array([0.01]))
    theta = np.zeros((1, 2))
    opt.step(theta, g)  # first Adam step moves each weight by ~eta against the sign
    np.testing.assert_allclose(theta, [[-0.01, 0.01]], rtol=1e-6)


def test_quantize_rounds_half_up_and_saturates() -> None:
    q, sat = quantize(np.array([0.125, -0.125, 0.1, 3.0, -3.0]), bits=4, frac=2)
    # LSB 0.25; 0.125 -> 0.25 (half up), -0.125 -> 0.0, 0.1 -> 0, range [-2, 1.75]
    np.testing.assert_array_equal(q, [0.25, 0.0, 0.0, 1.75, -2.0])
    assert sat == 2


def test_gradient_cosine_rises_and_node_beats_weight() -> None:
    cfg = build_config(
        {"task": {"name": "images7", "images_per_class": 5}, "runs": 3,
         "network": {"hidden": [12]}}
    )
    data = load_dataset(cfg.task, cfg.seed)
    checkpoints = log_checkpoints(4000, per_decade=4)
    wp = gradient_cosine(derive(cfg, {"mgd": {"mode": "weight"}}), data, checkpoints)
    np_ = gradient_cosine(derive(cfg, {"mgd": {"mode": "node"}}), data, checkpoints)
    for curve in (wp, np_):
        med = curve.median()
        assert med[-1] > 0.9
        assert med[-1] > med[0] + 0.3
    assert np_.steps_to(0.9) is not None
    assert wp.steps_to(0.9) is None or np_.steps_to(0.9) < wp.steps_to(0.9)


def test_log_checkpoints() -> None:
    pts = log_checkpoints(1000, per_decade=3)
    assert pts[0] == 1 and pts[-1] == 1000 and pts == sorted(set(pts))
