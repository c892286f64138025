"""A plain, readable per-step MGD loop for one run.

This is the check on :class:`golden_model.mgd.MGDEnsemble`: it restates
shared/MGD.md one step at a time with its own forward pass, cost and optimizer
arithmetic, sharing only the seeded random streams, so for the same seed both give
the same numbers (up to float rounding order). It does one step, one sample and one
run at a time; the benchmark measures the vectorized model against it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from .activations import ACTIVATION_FUNCTIONS
from .config import MGDConfig
from .network import MLP
from .neurons import neuron_model
from .optim import quantize
from .streams import (
    CODES,
    COST_NOISE,
    CROSSPOINTS,
    NEURON,
    PULSE_NOISE,
    PULSE_ROUNDING,
    REFERENCES,
    SAMPLES,
    UPDATE_NOISE,
    CodeStream,
    NormalStream,
    SampleOrder,
    run_rng,
)


def _plain_forward(net, weights, biases, x, variation, node_pert=None, neuron=None):
    """Layer by layer for one sample; returns the output and each layer's input.
    ``neuron`` (a _PlainNeurons) draws the hidden layers' outputs."""
    h = x
    inputs = []
    draws = neuron.next_pass() if neuron is not None else None
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
        if neuron is not None and l < net.n_layers - 1:
            h = neuron.output(z, h, draws[net.node_slices[l]])
    return h, inputs


class _PlainNeurons:
    """Stochastic hidden neurons of one run (nonideal.neuron_noise), one neuron at a
    time: each forward pass takes the next n_hidden x draws standard normals of the
    run's NEURON stream (draws = 2 for a device: component pick, then the Gaussian)."""

    def __init__(self, cfg: MGDConfig, net: MLP, run: int):
        self.q = cfg.nonideal
        self.model = neuron_model(self.q)  # the device file, read once
        self.draws = 2 if self.q.neuron_noise == "device" else 1
        self.n_hidden = net.n_hidden
        self.stream = NormalStream(run_rng(cfg.seed, run, NEURON))

    def next_pass(self) -> np.ndarray:
        return self.stream.block(self.n_hidden * self.draws).reshape(self.n_hidden, self.draws)

    def output(self, z: np.ndarray, fz: np.ndarray, draws: np.ndarray) -> np.ndarray:
        q = self.q
        h = np.empty_like(z)
        for j in range(len(z)):
            n = draws[j]
            if q.neuron_noise == "gaussian":
                h[j] = fz[j] + q.neuron_std * n[0]
            elif q.neuron_noise == "bernoulli":
                p = min(max(fz[j], 0.0), 1.0)
                h[j] = 1.0 if ndtr(n[0]) < p else 0.0
            else:  # device: pick a component with u = Phi(n0), then mu + sigma * n1
                pi, mu, sigma = self.model.device.mixture(
                    np.array([q.neuron_scale * z[j] + q.neuron_offset]))
                u, k, acc = ndtr(n[0]), 0, pi[0, 0]
                while u >= acc and k < pi.shape[1] - 1:
                    k += 1
                    acc += pi[0, k]
                h[j] = mu[0, k] + sigma[0, k] * n[1]
        return h


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


class _PlainOptimizer:
    """The optimizer step with G for one run, then the update noise and the weight
    quantization of the non-idealities (``mgd`` and ``nonideal`` sections)."""

    def __init__(self, cfg: MGDConfig, n_params: int, update_noise: NormalStream):
        self.m, self.q = cfg.mgd, cfg.nonideal
        self.n_params = n_params
        self.update_noise = update_noise
        self.velocity = np.zeros(n_params)
        self.adam_m = np.zeros(n_params)
        self.adam_v = np.zeros(n_params)
        self.adam_t = 0

    def step(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        theta = self._move(theta, g)
        if self.q.update_noise > 0:
            theta = theta + self.q.update_noise * self.update_noise.block(self.n_params)
        return self.quantize(theta)

    def desired_step(self, g: np.ndarray) -> np.ndarray:
        """The change the optimizer asks for (what pulsed devices are told to do)."""
        return self._move(np.zeros(self.n_params), g)

    def _move(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        m = self.m
        if m.optimizer in ("sgd", "tiki_taka"):  # Tiki-Taka: plain SGD into array A
            theta = theta - m.eta * g
        elif m.optimizer == "momentum":
            self.velocity[:] = m.momentum * self.velocity + g
            theta = theta - m.eta * self.velocity
        else:
            self.adam_t += 1
            self.adam_m[:] = m.adam_beta1 * self.adam_m + (1 - m.adam_beta1) * g
            self.adam_v[:] = m.adam_beta2 * self.adam_v + (1 - m.adam_beta2) * g * g
            m_hat = self.adam_m / (1 - m.adam_beta1**self.adam_t)
            v_hat = self.adam_v / (1 - m.adam_beta2**self.adam_t)
            theta = theta - m.eta * m_hat / (np.sqrt(v_hat) + m.adam_eps)
        return theta

    def quantize(self, theta: np.ndarray) -> np.ndarray:
        """theta on the weight grid of ``nonideal.weight_bits`` (as is when 0)."""
        q = self.q
        if q.weight_bits:
            theta, _ = quantize(theta, q.weight_bits, q.weight_frac)
        return theta


class _PlainCrosspoints:
    """One run's pulsed soft-bounds devices, one device and one pulse at a time
    (docs/devices.md): up moves w by dw+ (1 - gamma w / w_max), down by
    dw- (1 + gamma w / w_max), each times (1 + s xi), then clipped to +-w_max. With
    zero shifting each device is read less its symmetry point (its reference)."""

    def __init__(self, q, w0: np.ndarray, d2d: np.random.Generator,
                 refs: np.random.Generator):
        n = len(w0)
        xi = d2d.standard_normal(2 * n)  # dw draws, then up/down-bias draws
        erring = q.zero_shift and q.zero_shift_error > 0
        err = refs.standard_normal(n) if erring else None  # each reference's error
        self.q = q
        self.up, self.down, self.ref = [], [], []
        slope = q.asymmetry / q.w_max
        for i in range(n):
            dw = q.dw_min * max(1.0 + q.dw_min_dtod * xi[i], 0.0)
            beta = min(max(q.up_down + q.up_down_dtod * xi[n + i], -1.0), 1.0)
            up, down = dw * (1.0 + beta), dw * (1.0 - beta)
            self.up.append(up)
            self.down.append(down)
            # where up and down steps are equal; none without asymmetry (read as 0)
            star = 0.0
            if q.zero_shift and slope and up + down > 0:
                star = min(max((up - down) / (slope * (up + down)), -q.w_max), q.w_max)
            if erring:
                star = min(max(star + q.zero_shift_error * err[i], -q.w_max), q.w_max)
            self.ref.append(star)
        start = ([float(v) + r for v, r in zip(w0, self.ref, strict=True)] if q.zero_shift
                 else [float(v) for v in w0])
        self.w = [min(max(v, -q.w_max), q.w_max) for v in start]

    def read(self) -> np.ndarray:
        """What the circuit reads: w less the reference."""
        return np.array(self.w) - np.array(self.ref)

    def pulse(self, counts: list[int], noise: NormalStream) -> None:
        """Pulse k of every device with |count| > k, for k = 0, 1, ..."""
        q = self.q
        slope = q.asymmetry / q.w_max
        for k in range(max((abs(c) for c in counts), default=0)):
            for i, c in enumerate(counts):
                if abs(c) <= k:
                    continue
                w = self.w[i]
                if c > 0:
                    step = self.up[i] * (1.0 - slope * w)
                else:
                    step = -(self.down[i] * (1.0 + slope * w))
                if q.pulse_noise > 0:
                    step = step * (1.0 + q.pulse_noise * noise.block(1)[0])
                self.w[i] = min(max(w + step, -q.w_max), q.w_max)


class _PlainPulsedParams:
    """One run's parameters in pulsed devices: plain (one array) or Tiki-Taka (fast A
    receives the updates, every transfer_every updates transfer_lr * A goes to C)."""

    def __init__(self, cfg: MGDConfig, run: int, theta0: np.ndarray):
        self.q, self.m = cfg.nonideal, cfg.mgd
        d2d = run_rng(cfg.seed, run, CROSSPOINTS)
        refs = run_rng(cfg.seed, run, REFERENCES)
        self.rounding = run_rng(cfg.seed, run, PULSE_ROUNDING)
        self.noise = NormalStream(run_rng(cfg.seed, run, PULSE_NOISE))
        self.c = _PlainCrosspoints(self.q, theta0, d2d, refs)
        self.a = (
            _PlainCrosspoints(self.q, np.zeros_like(theta0), d2d, refs)
            if self.m.optimizer == "tiki_taka" else None
        )
        self.updates = 0

    def theta(self) -> np.ndarray:
        c = self.c.read()
        return c if self.a is None else c + self.m.transfer_gamma * self.a.read()

    def counts(self, delta) -> list[int]:
        """Stochastic rounding to whole pulses, clipped to +-max_pulses."""
        q = self.q
        u = self.rounding.random(len(delta))
        return [min(max(math.floor(d / q.dw_min + u[i]), -q.max_pulses), q.max_pulses)
                for i, d in enumerate(delta)]

    def update(self, delta: np.ndarray) -> np.ndarray:
        self.updates += 1
        if self.a is None:
            self.c.pulse(self.counts(delta), self.noise)
        else:
            self.a.pulse(self.counts(delta), self.noise)
            if self.updates % self.m.transfer_every == 0:
                self.c.pulse(self.counts([self.m.transfer_lr * w for w in self.a.read()]),
                             self.noise)
        return self.theta()


def _clamp(c_tilde: float, limit: float) -> float:
    """C~ clamped to +-limit (no clamp when limit is 0)."""
    return min(max(c_tilde, -limit), limit) if limit > 0 else c_tilde


def _node_gradient(net: MLP, e: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """Node perturbation: neuron j's error e_j becomes G_W += e x^T, G_b += e."""
    g = np.zeros(net.n_params)
    for l, s in enumerate(net.node_slices):
        g[net.w_slices[l]] = np.outer(e[s], inputs[l]).ravel()
        g[net.b_slices[l]] = e[s]
    return g


def _streams(
    cfg: MGDConfig, run: int, n_pert: int, n_samples: int
) -> tuple[CodeStream, SampleOrder, NormalStream, NormalStream]:
    """Run ``run``'s codes, sample order, cost noise and update noise (the model's own)."""
    m, seed = cfg.mgd, cfg.seed
    return (
        CodeStream(m.perturbation, n_pert, run_rng(seed, run, CODES), m.sparsity,
                   m.freq_min, m.freq_max),
        SampleOrder(n_samples, run_rng(seed, run, SAMPLES)),
        NormalStream(run_rng(seed, run, COST_NOISE)),
        NormalStream(run_rng(seed, run, UPDATE_NOISE)),
    )


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
    node = m.mode == "node"
    n_pert = net.n_nodes if node else net.n_params
    a = m.dtheta / np.sqrt(n_pert)
    codes, order, cost_noise, update_noise = _streams(cfg, run, n_pert, len(x_train))
    optimizer = _PlainOptimizer(cfg, net.n_params, update_noise)
    alpha = m.tau_hp / (m.tau_hp + 1.0)
    neuron = _PlainNeurons(cfg, net, run) if q.neuron_noise != "none" else None

    theta = optimizer.quantize(np.array(theta0, dtype=float))
    pulsed = _PlainPulsedParams(cfg, run, theta) if q.device != "none" else None
    if pulsed is not None:
        theta = pulsed.theta()

    def update(theta, G):
        if pulsed is None:
            return optimizer.step(theta, G)
        return pulsed.update(optimizer.desired_step(G))
    G = np.zeros_like(theta)
    costs: list[float] = []
    baselines: list[float] = []
    c0, c0_valid = 0.0, False
    ct = c_prev = 0.0  # the analog high-pass state

    def measure(weights, biases, x, node_pert=None):
        y, inputs = _plain_forward(net, weights, biases, x, variation, node_pert, neuron)
        c = _plain_cost(net, y, t)
        if q.cost_noise > 0:
            c += q.cost_noise * cost_noise.block(1)[0]
        return c, inputs

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

        if node:  # the perturbation rides on the pre-activations
            pert = [a * u[s] for s in net.node_slices]
            c, inputs = measure(weights, biases, x, pert)
        else:
            c, inputs = measure(*_split(net, theta + a * u), x)
        costs.append(c)

        if m.baseline == "discrete":
            c_tilde = _clamp(c - c0, m.clamp)
        else:  # the analog high-pass, reset by a new sample; it keeps the clamped C~
            ct = _clamp(0.0 if new_sample else alpha * (ct + c - c_prev), m.clamp)
            c_prev = c
            c_tilde = ct

        # Error signal e = C~ * theta~ / dtheta^2, mapped onto the parameters.
        e = c_tilde * (a * u) / m.dtheta**2
        g = _node_gradient(net, e, inputs) if node else e

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
