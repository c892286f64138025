"""The neuron activations of the float MLP and their device-to-device variation.

Every neuron j may carry device-to-device variation (shared/MGD.md, "non-idealities"):
f_j(z) = gain_j * act(steep_j * (z - mid_j)) + offset_j. With no variation those are
(1, 1, 0, 0) and the transform is skipped (``network.MLP.activate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Each entry: (f, f') on pre-activations. hard_sigmoid has slope 1/4 (a shift in
# hardware) so it matches the logistic sigmoid's slope at 0.


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """0.5 (1 + tanh(z / 2)): the overflow-free logistic (in place on one temporary)."""
    s = np.multiply(z, 0.5)
    np.tanh(s, out=s)
    s += 1.0
    s *= 0.5
    return s


def _d_sigmoid(z: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)
    return s * (1.0 - s)


def _d_tanh(z: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(z) ** 2


def _hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(0.25 * z + 0.5, 0.0, 1.0)


def _d_hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.where(np.abs(z) < 2.0, 0.25, 0.0)


ACTIVATION_FUNCTIONS = {
    "sigmoid": (_sigmoid, _d_sigmoid),
    "tanh": (np.tanh, _d_tanh),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "hard_sigmoid": (_hard_sigmoid, _d_hard_sigmoid),
    "linear": (lambda z: z, np.ones_like),
}


@dataclass
class Variation:
    """Per-neuron device variation of one layer, each (R, out)."""

    gain: np.ndarray
    steep: np.ndarray
    mid: np.ndarray
    offset: np.ndarray


def draw_variation(
    sizes: list[int], sigma: float, rngs: list[np.random.Generator]
) -> list[Variation] | None:
    """Draw each run's per-neuron variation (None when sigma is 0).

    For each layer and run: gain, steepness ~ 1 + sigma*N(0,1); midpoint,
    offset ~ sigma*N(0,1), in that order from the run's own generator.
    """
    if sigma == 0:
        return None
    layers = []
    for out in sizes[1:]:
        draws = np.stack([rng.standard_normal((4, out)) for rng in rngs])  # (R, 4, out)
        layers.append(
            Variation(
                gain=1.0 + sigma * draws[:, 0],
                steep=1.0 + sigma * draws[:, 1],
                mid=sigma * draws[:, 2],
                offset=sigma * draws[:, 3],
            )
        )
    return layers
