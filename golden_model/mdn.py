"""A mixture density network (MDN) in NumPy: forward, negative log-likelihood and its
gradient written out by hand, and an Adam fit.

The network maps a scalar input x to the parameters of a mixture of K Gaussians over a
scalar output y: a small tanh MLP whose last layer has 3K outputs, read as

- a_k (logits): mixture weights pi = softmax(a);
- m_k: the means mu_k;
- s_k: the widths sigma_k = exp(s_k) + SIGMA_FLOOR (the floor keeps the likelihood
  finite when the output takes a few discrete values, e.g. a 0/1 column).

The loss is the mean over samples of -log sum_k pi_k N(y; mu_k, sigma_k). With
L_k = log pi_k + log N(y; mu_k, sigma_k) and the posterior gamma = softmax(L), the
gradient of one sample's loss is dL/da_k = pi_k - gamma_k,
dL/dmu_k = -gamma_k (y - mu_k) / sigma_k^2 and
dL/dsigma_k = gamma_k (1 / sigma_k - (y - mu_k)^2 / sigma_k^3), times exp(s_k) for
s_k; backprop through the tanh layers does the rest (``tests/test_mdn.py`` checks it
against finite differences).

All of this works in normalized units (the fit standardizes x and y on its training
split); :mod:`golden_model.device_model` turns a fit into a device in the data's units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIGMA_FLOOR = 1e-3
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)

Params = list[tuple[np.ndarray, np.ndarray]]  # per layer (W (in, out), b (out,))


def init_params(hidden: list[int], components: int, rng: np.random.Generator) -> Params:
    """Weights of a 1 -> hidden... -> 3K MDN: W ~ N(0, 1 / fan_in), b = 0, except that
    the output biases of the K means start spread over [-1.5, 1.5] (distinct
    components from the first step) and the width biases at log 0.5."""
    sizes = [1, *hidden, 3 * components]
    params: Params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        params.append((w, np.zeros(n_out)))
    k = components
    w, b = params[-1]
    w *= 0.1
    b[k : 2 * k] = np.linspace(-1.5, 1.5, k) if k > 1 else 0.0
    b[2 * k :] = np.log(0.5)
    return params


def split_outputs(out: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 3K) last-layer outputs -> log pi, mu, sigma, each (..., K)."""
    a, mu, s = out[..., :k], out[..., k : 2 * k], out[..., 2 * k :]
    a = a - a.max(axis=-1, keepdims=True)
    log_pi = a - np.log(np.exp(a).sum(axis=-1, keepdims=True))
    return log_pi, mu, np.exp(s) + SIGMA_FLOOR


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Last-layer outputs (P, 3K) for inputs x (P,), and each layer's input (for
    backward)."""
    h = x.reshape(-1, 1)
    inputs = []
    for i, (w, b) in enumerate(params):
        inputs.append(h)
        h = h @ w + b
        if i < len(params) - 1:
            h = np.tanh(h)
    return h, inputs


def mixture(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixture weights pi, means mu and widths sigma, each (P, K), at inputs x (P,)."""
    out, _ = forward(params, x)
    k = out.shape[-1] // 3
    log_pi, mu, sigma = split_outputs(out, k)
    return np.exp(log_pi), mu, sigma


def nll_and_grad(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean negative log-likelihood of samples (x, y) (P,) each, and its gradient with
    respect to every parameter (same structure as ``params``)."""
    out, inputs = forward(params, x)
    k = out.shape[-1] // 3
    log_pi, mu, sigma = split_outputs(out, k)
    yy = y.reshape(-1, 1)
    r = (yy - mu) / sigma
    log_comp = log_pi - 0.5 * r * r - np.log(sigma) - _LOG_SQRT_2PI  # L_k, (P, K)
    top = log_comp.max(axis=-1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(log_comp - top).sum(axis=-1))
    loss = float(-lse.mean())
    gamma = np.exp(log_comp - lse[:, None])  # posterior of each component
    n = len(yy)
    d_a = (np.exp(log_pi) - gamma) / n
    d_mu = -gamma * r / sigma / n
    d_sigma = gamma * (1.0 - r * r) / sigma / n
    d_s = d_sigma * (sigma - SIGMA_FLOOR)  # d sigma / d s = exp(s)
    delta = np.concatenate([d_a, d_mu, d_s], axis=-1)
    grads: Params = []
    for i in range(len(params) - 1, -1, -1):
        w, _ = params[i]
        h_in = inputs[i]
        grads.append((h_in.T @ delta, delta.sum(axis=0)))
        if i:
            delta = (delta @ w.T) * (1.0 - h_in * h_in)  # h_in = tanh(previous z)
    return loss, grads[::-1]


def nll(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of samples (x, y), in the units of x and y."""
    return nll_and_grad(params, x, y)[0]


@dataclass
class FitSettings:
    """How :func:`fit` trains: Adam with learning rate ``lr`` decayed by a half cosine
    to ``lr / 10`` over ``steps`` minibatches of ``batch`` samples."""

    steps: int = 4000
    batch: int = 256
    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


def learning_rate(s: FitSettings, step: int) -> float:
    """The learning rate of step ``step`` (0-based)."""
    return s.lr * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * step / max(1, s.steps))))


def batches(n: int, s: FitSettings, rng: np.random.Generator) -> list[np.ndarray]:
    """The sample indices of every minibatch: a fresh permutation each epoch, drawn
    once up front (so the NumPy and PyTorch fits see the same batches)."""
    out: list[np.ndarray] = []
    perm = np.empty(0, dtype=np.int64)
    pos = 0
    size = min(s.batch, n)
    while len(out) < s.steps:
        if pos + size > len(perm):
            perm, pos = rng.permutation(n), 0
        out.append(perm[pos : pos + size])
        pos += size
    return out


def fit(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    settings: FitSettings,
    rng: np.random.Generator,
    progress: Callable[[int, float], None] | None = None,
) -> Params:
    """Train ``params`` (a copy) on normalized samples (x, y) with Adam; returns them.
    ``progress(step, minibatch loss)`` is called every 500 steps."""
    params = [(w.copy(), b.copy()) for w, b in params]
    flat = [p for layer in params for p in layer]
    m1 = [np.zeros_like(p) for p in flat]
    m2 = [np.zeros_like(p) for p in flat]
    s = settings
    for t, idx in enumerate(batches(len(x), s, rng)):
        loss, grads = nll_and_grad(params, x[idx], y[idx])
        lr = learning_rate(s, t)
        c1, c2 = 1.0 - s.beta1 ** (t + 1), 1.0 - s.beta2 ** (t + 1)
        for p, g, a, v in zip(flat, [g for layer in grads for g in layer], m1, m2, strict=True):
            a *= s.beta1
            a += (1.0 - s.beta1) * g
            v *= s.beta2
            v += (1.0 - s.beta2) * g * g
            p -= lr * (a / c1) / (np.sqrt(v / c2) + s.eps)
        if progress is not None and (t + 1) % 500 == 0:
            progress(t + 1, loss)
    return params
