"""Stochastic hidden neurons (nonideal.neuron_noise): the vectorized model against the
plain loop with a device, what each kind draws, evaluation, and the config rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golden_model import mdn
from golden_model.config import ConfigError, build_config, derive
from golden_model.config_rules import check_hardware
from golden_model.datasets import load_dataset
from golden_model.device_model import DeviceModel
from golden_model.diagnostics import (
    central_difference_gradient,
    gradient_cosine,
    reference_gradient,
)
from golden_model.mgd import MGDEnsemble
from golden_model.network import MLP
from golden_model.neurons import NeuronModel, NeuronSampler, train_sampler
from golden_model.reference import reference_run
from golden_model.streams import NormalStream, run_rng
from golden_model.train import device_variation, initial_params, make_network, train_mgd

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def _device_file(tmp_path: Path) -> str:
    """A small made-up MDN device (no fit needed: any weights are a device)."""
    params = mdn.init_params([5], 3, np.random.default_rng(7))
    params = [(w + 0.5 * np.random.default_rng(i).standard_normal(w.shape), b)
              for i, (w, b) in enumerate(params)]
    meta = {"components": 3, "hidden": [5], "x_mean": 0.5, "x_std": 0.3, "y_mean": 0.4,
            "y_std": 0.4, "x_min": 0.0, "x_max": 1.0, "threshold": 0.5}
    path = tmp_path / "dev.npz"
    DeviceModel(params, meta).save(path)
    return str(path)


DEVICE_CASES = {
    "weight": {},
    "node": {"mgd": {"mode": "node", "tau_x": 3, "tau_theta": 3}},
    "analog-node": {"mgd": {"mode": "node", "baseline": "analog", "tau_x": 4, "tau_theta": 2}},
    "two-hidden-layers": {"network": {"hidden": [3, 2]}, "mgd": {"tau_x": 5, "tau_theta": 5}},
}


@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_device_neurons_match_the_plain_loop(tmp_path: Path, case: str) -> None:
    cfg = build_config(
        {"task": {"name": "xor"}, "runs": 2, "network": {"hidden": [2]},
         "nonideal": {"neuron_noise": "device", "neuron_device": _device_file(tmp_path),
                      "neuron_scale": 0.3, "neuron_offset": 0.5}},
        DEVICE_CASES[case],
    )
    net = MLP([2, *cfg.network.hidden, 1], "sigmoid", "sigmoid", "mse")
    theta0 = initial_params(cfg, net)
    engine = MGDEnsemble(cfg, net, XOR_X, XOR_Y, theta0, record_costs=True)
    for chunk in (23, 1, 36):
        engine.advance(chunk)
    costs = np.concatenate(engine.costs, axis=1)
    for r in range(cfg.runs):
        theta, ref_costs, _ = reference_run(cfg, net, XOR_X, XOR_Y, theta0[r], r, 60)
        np.testing.assert_allclose(costs[r], ref_costs, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(engine.theta[r], theta, rtol=1e-10, atol=1e-13)
    # the device's draws matter: another seed measures other costs
    other = MGDEnsemble(derive(cfg, {"seed": 1}), net, XOR_X, XOR_Y, theta0, record_costs=True)
    other.advance(60)
    assert not np.allclose(np.concatenate(other.costs, axis=1), costs)


def test_gaussian_std_zero_is_the_deterministic_model() -> None:
    base = {"task": {"name": "xor"}, "runs": 2, "mgd": {"tau_x": 4, "tau_theta": 4}}
    cfg0 = build_config(base)
    cfg1 = build_config(base, {"nonideal": {"neuron_noise": "gaussian", "neuron_std": 0.0}})
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    a = MGDEnsemble(cfg0, net, XOR_X, XOR_Y, initial_params(cfg0, net), compiled=False)
    b = MGDEnsemble(cfg1, net, XOR_X, XOR_Y, initial_params(cfg1, net))
    a.advance(200)
    b.advance(200)
    assert b.neurons is not None and b.kernel is None
    np.testing.assert_array_equal(a.theta, b.theta)
    c = MGDEnsemble(derive(cfg1, {"nonideal": {"neuron_std": 0.05}}), net, XOR_X, XOR_Y,
                    initial_params(cfg1, net))
    c.advance(200)
    assert np.abs(c.theta - a.theta).max() > 1e-3


def test_compiled_kernel_refuses_stochastic_neurons() -> None:
    cfg = build_config({"task": {"name": "xor"},
                        "nonideal": {"neuron_noise": "bernoulli"}})
    net = MLP([2, 2, 1], "sigmoid", "sigmoid", "mse")
    with pytest.raises(ValueError, match=r"and deterministic neurons \(nonideal.neuron_noise "
                       r"'none'\) only$"):
        MGDEnsemble(cfg, net, XOR_X, XOR_Y, initial_params(cfg, net), compiled=True)


def _hidden_outputs(kind: str, passes: int, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Hidden outputs of ``passes`` forward passes of one input, and f(z)."""
    net = MLP([2, 3, 1], "sigmoid", "sigmoid", "mse")
    theta = np.random.default_rng(0).standard_normal((1, net.n_params))
    model = NeuronModel(kind, **kw)
    sampler = NeuronSampler(model, 3, [NormalStream(run_rng(0, 0, 99))])
    x = np.tile(np.array([[0.3, -0.7]]), (1, passes, 1))
    _, kept = net.forward(theta, x, keep=True, neurons=sampler)
    w, b = net.unpack(theta)[0]
    fz = 1 / (1 + np.exp(-(w[0] @ x[0, 0] + b[0])))
    return kept[1][0][0], fz


def test_bernoulli_neurons_fire_with_the_activation_as_probability() -> None:
    h, fz = _hidden_outputs("bernoulli", 40000)
    assert set(np.unique(h)) <= {0.0, 1.0}
    np.testing.assert_allclose(h.mean(axis=0), fz, atol=0.01)


def test_gaussian_neurons_add_noise_of_their_std() -> None:
    h, fz = _hidden_outputs("gaussian", 40000, std=0.2)
    np.testing.assert_allclose(h.mean(axis=0), fz, atol=0.005)
    np.testing.assert_allclose(h.std(axis=0), 0.2, rtol=0.02)


def test_evaluation_uses_the_mean_or_seeded_samples(tmp_path: Path) -> None:
    base = build_config({"task": {"name": "images7", "images_per_class": 4}, "steps": 200,
                         "eval_every": 100, "mgd": {"tau_x": 10, "tau_theta": 10},
                         "nonideal": {"neuron_noise": "device",
                                      "neuron_device": _device_file(tmp_path)}})
    data = load_dataset(base.task, base.seed)
    mean = train_mgd(base, data).history
    sample_cfg = derive(base, {"nonideal": {"neuron_eval": "sample"}})
    s1 = train_mgd(sample_cfg, data).history
    s2 = train_mgd(sample_cfg, data).history
    # the training draws are the same (same stream), only the evaluation differs
    assert np.array_equal(s1.array("test_acc"), s2.array("test_acc"))
    assert not np.array_equal(s1.array("cost"), mean.array("cost"))
    assert train_sampler(base, 5, 1).sampling


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"neuron_noise": "spiky"}, "nonideal.neuron_noise must be one of 'none', 'gaussian', "
         "'bernoulli', 'device', not 'spiky'"),
        ({"neuron_noise": "gaussian", "neuron_std": -0.1},
         "nonideal.neuron_std must be a number >= 0.0, not -0.1"),
        ({"neuron_noise": "bernoulli", "neuron_std": 0.1},
         "nonideal.neuron_std applies to nonideal.neuron_noise 'gaussian' only, not "
         "'bernoulli' (set it to 0)"),
        ({"neuron_noise": "device", "neuron_device": "dev.txt"},
         "nonideal.neuron_device must name an .npz or .json device file with "
         "nonideal.neuron_noise 'device', not 'dev.txt'"),
        ({"neuron_noise": "gaussian", "neuron_device": "dev.npz"},
         "nonideal.neuron_device applies to nonideal.neuron_noise 'device' only, not "
         "'gaussian'"),
        ({"neuron_noise": "device", "neuron_device": "d.npz", "device_variation": 0.1},
         "nonideal.device_variation must be 0 with nonideal.neuron_noise 'device' (the device "
         "file is the neuron's whole curve)"),
        ({"neuron_eval": "median"},
         "nonideal.neuron_eval must be one of 'mean', 'sample', not 'median'"),
        ({"neuron_scale": "big"}, "nonideal.neuron_scale must be a finite number, not 'big'"),
    ],
)
def test_neuron_config_errors(layer: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"task": {"name": "xor"}, "nonideal": layer})
    assert str(err.value) == message


def test_neurons_need_a_hidden_layer_and_the_float_model() -> None:
    with pytest.raises(ConfigError, match=r"^nonideal.neuron_noise needs a hidden layer"):
        build_config({"task": {"name": "xor"}, "network": {"hidden": []},
                      "nonideal": {"neuron_noise": "gaussian"}})
    cfg = build_config({"task": {"name": "xor"}, "nonideal": {"neuron_noise": "gaussian"}})
    with pytest.raises(ConfigError, match=r"^nonideal.neuron_noise must be 'none' in hardware "
                       r"\(stochastic neurons are float-model only\), not 'gaussian'$"):
        check_hardware(cfg)


@pytest.mark.parametrize("batch_floats", [1 << 22, 2 * 2 * 13, 2 * 2 * 13 * 5])
def test_central_differences_match_backprop(monkeypatch, batch_floats: int) -> None:
    """Every batching of the perturbed networks (one parameter, five, all 13 at once)
    gives backprop's gradient."""
    import golden_model.diagnostics as diagnostics

    monkeypatch.setattr(diagnostics, "FD_BATCH_FLOATS", batch_floats)
    cfg = build_config({"task": {"name": "xor"}, "runs": 2, "network": {"hidden": [3]}})
    net = MLP([2, 3, 1], "sigmoid", "sigmoid", "mse")
    theta = initial_params(cfg, net)
    x, t = XOR_X[[1, 2]][:, None], XOR_Y[[1, 2]][:, None]
    grad, _ = net.gradient(theta, x, t)
    np.testing.assert_allclose(central_difference_gradient(net, theta, x, t, None), grad,
                               rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="one sample a run, not 4"):
        central_difference_gradient(net, theta, XOR_X[None].repeat(2, 0), t, None)


def test_bernoulli_reference_is_the_clipped_mean_network() -> None:
    """A Bernoulli neuron's mean is clip(f(z), 0, 1): f itself for a sigmoid, not for
    tanh (negative outputs clip to 0), so its reference is not backprop through f."""
    x, t = XOR_X[[1, 2]][:, None], XOR_Y[[1, 2]][:, None]
    refs = {}
    for act in ("sigmoid", "tanh"):
        cfg = build_config({"task": {"name": "xor"}, "runs": 2,
                            "network": {"hidden": [3], "activation": act},
                            "nonideal": {"neuron_noise": "bernoulli"}})
        net = MLP([2, 3, 1], act, "sigmoid", "mse")
        theta = initial_params(cfg, net)
        backprop, _ = net.gradient(theta, x, t)
        refs[act] = (reference_gradient(cfg, net, theta, x, t, None), backprop)
    np.testing.assert_allclose(*refs["sigmoid"], rtol=1e-6, atol=1e-10)
    assert not np.allclose(*refs["tanh"], rtol=1e-3, atol=1e-6)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_gradcheck_measures_device_neurons_against_their_mean_network(tmp_path: Path) -> None:
    """A device neuron's mean is not the activation: backprop through the activation
    is the wrong reference (G, node perturbation, reached 0.73-0.88 against it at 400k
    steps); the mean network's gradient is what G approaches."""
    cfg = build_config({"task": {"name": "xor"}, "runs": 3, "network": {"hidden": [4]},
                        "mgd": {"mode": "node"},
                        "nonideal": {"neuron_noise": "device",
                                     "neuron_device": _device_file(tmp_path),
                                     "neuron_scale": 0.3, "neuron_offset": 0.5}})
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    theta, variation = initial_params(cfg, net), device_variation(cfg, net)
    x, t = data.x_train[[0, 1, 2]][:, None], data.y_train[[0, 1, 2]][:, None]
    backprop, _ = net.gradient(theta, x, t, variation)
    mean_net = reference_gradient(cfg, net, theta, x, t, variation)
    assert (_cosines(mean_net, backprop) < 0.97).all()  # measured 0.89 to 0.93
    curve = gradient_cosine(cfg, data, [100_000])
    assert curve.median()[-1] > 0.9  # measured 0.957 (backprop reference: 0.794)
