"""Gradient diagnostic: how well does the MGD estimate G point along the true gradient?

With theta and the training sample held fixed, G integrates the error signal for T
steps; we report the cosine between G and the exact (backprop) gradient of the same
network on the same sample, against T. With stochastic hidden neurons G estimates the
gradient of the expected cost; the reference is then the gradient of the network whose
hidden neurons give their mean output E[h | z] (:func:`reference_gradient`). For weight
perturbation the estimate needs O(number of weights) steps to converge; node
perturbation needs O(number of neurons), which is why it converges sooner (paper 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MGDConfig, derive
from .datasets import Dataset
from .mgd import MGDEnsemble
from .network import MLP, Variation
from .neurons import NeuronSampler, neuron_model
from .train import device_variation, initial_params, make_network

# central differences of the mean-neuron network: the step, and the perturbed networks
# evaluated at once (runs x this many x parameters floats of directions)
FD_STEP = 1e-5
FD_BATCH_FLOATS = 1 << 22


@dataclass
class CosineCurve:
    """Cosine of G with the true gradient at each checkpoint: ``cosine`` is (T, R)."""

    steps: list[int]
    cosine: np.ndarray

    def median(self) -> np.ndarray:
        return np.median(self.cosine, axis=1)

    def steps_to(self, level: float) -> int | None:
        """First checkpoint where the median cosine reaches ``level``."""
        hit = np.nonzero(self.median() >= level)[0]
        return self.steps[hit[0]] if len(hit) else None

    def steps_each(self, level: float) -> list[int | None]:
        """Per run, the first checkpoint where its cosine reaches ``level`` (None: never)."""
        out: list[int | None] = []
        for r in range(self.cosine.shape[1]):
            hit = np.nonzero(self.cosine[:, r] >= level)[0]
            out.append(self.steps[hit[0]] if len(hit) else None)
        return out


def log_checkpoints(max_steps: int, per_decade: int = 8) -> list[int]:
    """Roughly log-spaced integers from 1 to max_steps (inclusive)."""
    pts = np.unique(np.round(np.logspace(0, np.log10(max_steps), per_decade * 6)).astype(int))
    pts = pts[pts <= max_steps]
    return sorted({*pts.tolist(), max_steps})


def gradient_cosine(cfg: MGDConfig, data: Dataset, checkpoints: list[int],
                    stop_at: float | None = None) -> CosineCurve:
    """Integrate G at fixed theta (the runs' initial weights) and a fixed sample per run.

    Uses the config's perturbation, mode, amplitude and baseline; tau_x and tau_theta
    are set past the last checkpoint so neither the sample nor theta changes. With
    ``stop_at``, the integration ends at the first checkpoint by which every run's
    cosine has reached that level (the curve is shorter than ``checkpoints``).
    """
    horizon = max(checkpoints) + 1
    cfg = derive(cfg, {"mgd": {"tau_x": horizon, "tau_theta": horizon}})
    net = make_network(cfg, data)
    variation = device_variation(cfg, net)
    theta0 = initial_params(cfg, net)
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0, variation)
    cosines = []
    true_grad = norms = None
    for step in checkpoints:
        engine.advance(step - engine.n)
        if true_grad is None:  # the sample is drawn on the first step
            idx = engine.sample
            true_grad = reference_gradient(cfg, net, engine.theta, data.x_train[idx][:, None],
                                           data.y_train[idx][:, None], variation)
            norms = np.linalg.norm(true_grad, axis=1)
        g = engine.G
        cos = np.einsum("rn,rn->r", g, true_grad) / (np.linalg.norm(g, axis=1) * norms + 1e-300)
        cosines.append(cos)
        if stop_at is not None and (np.array(cosines) >= stop_at).any(axis=0).all():
            break
    return CosineCurve(list(checkpoints[:len(cosines)]), np.array(cosines))


def reference_gradient(cfg: MGDConfig, net: MLP, theta: np.ndarray, x: np.ndarray,
                       t: np.ndarray, variation: list[Variation] | None) -> np.ndarray:
    """The gradient G is measured against, (R, N) at theta (R, N) on x (R, 1, n_in).

    Backprop for deterministic neurons, and for Gaussian neurons, whose mean output is
    the activation f(z). Other stochastic neurons' mean is not f: Bernoulli's is
    clip(f(z), 0, 1) (f itself only for a sigmoid), a device neuron's the fitted
    device's mixture mean, which backprop through the activation does not see. Their
    reference is the central difference of the cost of the network with every hidden
    neuron at its mean. That is the gradient of the cost at the mean outputs, not
    quite of the expected cost G estimates (the two differ by the noise's curvature
    term): on a made-up noisy device on XOR, in a one-off check (20,000-draw Monte
    Carlo central differences of the expected cost), their cosine was 0.96 to 0.98,
    and G (node perturbation, 400k steps) reached 0.91-0.996 against either, where
    backprop through the activation stayed at 0.73-0.88; tests/test_neurons.py checks
    100k steps (0.957 against the mean network, 0.794 against backprop).
    """
    model = neuron_model(cfg.nonideal)
    if model is None or model.kind == "gaussian":
        grad, _ = net.gradient(theta, x, t, variation)
        return grad
    return central_difference_gradient(net, theta, x, t, variation,
                                       NeuronSampler(model, net.n_hidden, None))


def central_difference_gradient(net: MLP, theta: np.ndarray, x: np.ndarray, t: np.ndarray,
                                variation: list[Variation] | None,
                                neurons: NeuronSampler | None = None) -> np.ndarray:
    """d cost / d theta (R, N) by central differences ``FD_STEP`` apart, the 2N
    perturbed networks of each run evaluated together (``MLP.forward``'s weight
    perturbation rows), in batches of at most ``FD_BATCH_FLOATS`` direction floats.
    ``neurons``: hidden neurons to evaluate with (a mean sampler for
    :func:`reference_gradient`). ``x`` is one sample a run, (R, 1, n_in): the rows
    of the forward pass are the perturbed networks."""
    if x.shape[1] != 1:
        raise ValueError(f"central differences take one sample a run, not {x.shape[1]}")
    runs, n = theta.shape
    grad = np.empty_like(theta)
    batch = max(1, FD_BATCH_FLOATS // (2 * runs * n))
    amp = np.full(runs, FD_STEP)
    for lo in range(0, n, batch):
        idx = np.arange(lo, min(n, lo + batch))
        rows = 2 * np.arange(len(idx))
        u = np.zeros((runs, 2 * len(idx), n))
        u[:, rows, idx] = 1.0  # theta + h e_i in the even rows, theta - h e_i in the odd
        u[:, rows + 1, idx] = -1.0
        y, _ = net.forward(theta, x, variation, weight_pert=(amp, u), neurons=neurons)
        c = net.cost(y, t)  # (R, 2k)
        grad[:, idx] = (c[:, 0::2] - c[:, 1::2]) / (2 * FD_STEP)
    return grad
