"""A plain, readable per-step MGD loop for one run.

This is the check on :class:`golden_model.mgd.MGDEnsemble`: it restates
shared/MGD.md one step at a time with its own forward pass, cost and optimizer
arithmetic, sharing only the seeded random streams, so for the same seed both give
the same numbers (up to float rounding order). It does one step, one sample and one
run at a time; the benchmark measures the vectorized model against it.
"""

from __future__ import annotations

import numpy as np

from .activations import ACTIVATION_FUNCTIONS
from .config import MGDConfig
from .network import MLP
from .optim import quantize
from .streams import (
    CODES,
    COST_NOISE,
    SAMPLES,
    UPDATE_NOISE,
    CodeStream,
    NormalStream,
    SampleOrder,
    run_rng,
)


def _plain_forward(net, weights, biases, x, variation, node_pert=None):
    """Layer by layer for one sample; returns the output and each layer's input."""
    h = x
    inputs = []
    for l in range(net.n_layers):
        z = weights[l] @ h + biases[l]
        if node_pert is not None:
            z = z + node_pert[l]
        inputs.append(h)
        f = ACTIVATION_FUNCTIONS[net.activations[l]][0]
        if variation is None:
            h = f(z)
        else:
            gain, steep, mid, offset = variation[l]
            h = gain * f(steep * (z - mid)) + offset
    return h, inputs


def _plain_cost(net, y, t):
    if net.cost_name == "mse":
        return float(np.mean((y - t) ** 2))
    p = np.exp(y - np.max(y))
    p /= p.sum()
    return float(-np.sum(t * np.log(p)))


def _split(net, theta):
    weights, biases = [], []
    for l in range(net.n_layers):
        n_in, n_out = net.sizes[l], net.sizes[l + 1]
        weights.append(theta[net.w_slices[l]].reshape(n_out, n_in))
        biases.append(theta[net.b_slices[l]])
    return weights, biases


def reference_run(
    cfg: MGDConfig,
    net: MLP,
    x_train: np.ndarray,
    y_train: np.ndarray,
    theta0: np.ndarray,
    run: int,
    steps: int,
    variation: list[tuple[np.ndarray, ...]] | None = None,
) -> tuple[np.ndarray, list[float], list[float]]:
    """Run MGD for ``steps`` steps as run number ``run`` of seed ``cfg.seed``.

    ``variation`` is this run's per-layer (gain, steep, mid, offset). Returns the
    final theta (N,), every measured perturbed cost and every measured baseline C0.
    """
    m, q = cfg.mgd, cfg.nonideal
    seed = cfg.seed
    node = m.mode == "node"
    n_pert = net.n_nodes if node else net.n_params
    a = m.dtheta / np.sqrt(n_pert)
    codes = CodeStream(
        m.perturbation, n_pert, run_rng(seed, run, CODES), m.sparsity, m.freq_min, m.freq_max
    )
    order = SampleOrder(len(x_train), run_rng(seed, run, SAMPLES))
    cost_noise = NormalStream(run_rng(seed, run, COST_NOISE))
    update_noise = NormalStream(run_rng(seed, run, UPDATE_NOISE))
    alpha = m.tau_hp / (m.tau_hp + 1.0)

    theta = np.array(theta0, dtype=float)
    if q.weight_bits:
        theta, _ = quantize(theta, q.weight_bits, q.weight_frac)
    G = np.zeros_like(theta)
    velocity = np.zeros_like(theta)
    adam_m = np.zeros_like(theta)
    adam_v = np.zeros_like(theta)
    adam_t = 0
    costs: list[float] = []
    baselines: list[float] = []
    c0 = 0.0
    c0_valid = False
    ct = 0.0
    c_prev = 0.0

    def measure(weights, biases, x, node_pert=None):
        y, inputs = _plain_forward(net, weights, biases, x, variation, node_pert)
        c = _plain_cost(net, y, t)
        if q.cost_noise > 0:
            c += q.cost_noise * cost_noise.block(1)[0]
        return c, inputs

    def update(theta, g):
        nonlocal adam_t
        if m.optimizer == "sgd":
            theta = theta - m.eta * g
        elif m.optimizer == "momentum":
            velocity[:] = m.momentum * velocity + g
            theta = theta - m.eta * velocity
        else:
            adam_t += 1
            adam_m[:] = m.adam_beta1 * adam_m + (1 - m.adam_beta1) * g
            adam_v[:] = m.adam_beta2 * adam_v + (1 - m.adam_beta2) * g * g
            m_hat = adam_m / (1 - m.adam_beta1**adam_t)
            v_hat = adam_v / (1 - m.adam_beta2**adam_t)
            theta = theta - m.eta * m_hat / (np.sqrt(v_hat) + m.adam_eps)
        if q.update_noise > 0:
            theta = theta + q.update_noise * update_noise.block(net.n_params)
        if q.weight_bits:
            theta, _ = quantize(theta, q.weight_bits, q.weight_frac)
        return theta

    for n in range(steps):
        new_sample = n % m.tau_x == 0
        if new_sample:
            i = order.block(1)[0]
            x, t = x_train[i], y_train[i]
            c0_valid = False
        if n % m.tau_p == 0:
            u = codes.block(1)[0]
        weights, biases = _split(net, theta)

        if m.baseline == "discrete" and not c0_valid:
            c0, _ = measure(weights, biases, x)
            baselines.append(c0)
            c0_valid = True

        if node:
            pert = [a * u[s] for s in net.node_slices]
            c, inputs = measure(weights, biases, x, pert)
        else:
            w_p, b_p = _split(net, theta + a * u)
            c, inputs = measure(w_p, b_p, x)
        costs.append(c)

        if m.baseline == "discrete":
            c_tilde = c - c0
        else:
            ct = 0.0 if new_sample else alpha * (ct + c - c_prev)
            c_prev = c
            c_tilde = ct
        if m.clamp > 0:
            c_tilde = min(max(c_tilde, -m.clamp), m.clamp)
        if m.baseline == "analog":
            ct = c_tilde

        # Error signal e = C~ * theta~ / dtheta^2, mapped onto the parameters.
        e = c_tilde * (a * u) / m.dtheta**2
        if node:
            g = np.zeros_like(theta)
            for l, s in enumerate(net.node_slices):
                g[net.w_slices[l]] = np.outer(e[s], inputs[l]).ravel()
                g[net.b_slices[l]] = e[s]
        else:
            g = e

        if m.baseline == "discrete":
            G += g
            if (n + 1) % m.tau_theta == 0:
                theta = update(theta, G)
                G[:] = 0.0
                c0_valid = False
        else:
            G += (g - G) / m.tau_theta
            theta = update(theta, G)
    return theta, costs, baselines
