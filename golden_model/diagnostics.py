"""Gradient diagnostic: how well does the MGD estimate G point along the true gradient?

With theta and the training sample held fixed, G integrates the error signal for T
steps; we report the cosine between G and the exact (backprop) gradient of the same
network on the same sample, against T. For weight perturbation the estimate needs
O(number of weights) steps to converge; node perturbation needs O(number of neurons),
which is why it converges sooner (paper 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MGDConfig, derive
from .datasets import Dataset
from .mgd import MGDEnsemble
from .train import device_variation, initial_params, make_network


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
            true_grad, _ = net.gradient(
                engine.theta, data.x_train[idx][:, None], data.y_train[idx][:, None], variation
            )
            norms = np.linalg.norm(true_grad, axis=1)
        g = engine.G
        cos = np.einsum("rn,rn->r", g, true_grad) / (np.linalg.norm(g, axis=1) * norms + 1e-300)
        cosines.append(cos)
        if stop_at is not None and (np.array(cosines) >= stop_at).any(axis=0).all():
            break
    return CosineCurve(list(checkpoints[:len(cosines)]), np.array(cosines))
