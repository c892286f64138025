"""Optimizers that take the MGD gradient estimate G as a drop-in for a gradient,
and the float model's weight quantizer.

All arrays are (R, N): one row per ensemble run; learning rates are (R,) so an
ensemble can sweep them.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    """SGD, momentum or Adam over an (R, N) parameter array.

    - sgd: theta -= eta * g
    - momentum: v = mu * v + g; theta -= eta * v
    - adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; with bias correction,
      theta -= eta * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(
        self,
        kind: str,
        shape: tuple[int, int],
        eta: np.ndarray,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        self.kind = kind
        self.eta = np.asarray(eta, dtype=float).reshape(-1, 1)
        self.mu, self.b1, self.b2, self.eps = momentum, beta1, beta2, eps
        self.t = 0
        self.v = np.zeros(shape) if kind in ("momentum", "adam") else None
        self.m = np.zeros(shape) if kind == "adam" else None

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        """Update theta in place with gradient (estimate) g."""
        if self.kind == "sgd":
            theta -= self.eta * g
        elif self.kind == "momentum":
            self.v *= self.mu
            self.v += g
            theta -= self.eta * self.v
        else:
            self.t += 1
            self.m *= self.b1
            self.m += (1 - self.b1) * g
            self.v *= self.b2
            self.v += (1 - self.b2) * g * g
            m_hat = self.m / (1 - self.b1**self.t)
            v_hat = self.v / (1 - self.b2**self.t)
            theta -= self.eta * m_hat / (np.sqrt(v_hat) + self.eps)


    def desired(self, g: np.ndarray) -> np.ndarray:
        """The change this optimizer asks for with gradient (estimate) g, (R, N), and its
        state advanced as by :meth:`step` (what a pulsed device is asked to do)."""
        delta = np.zeros_like(g)
        self.step(delta, g)
        return delta


def quantize(theta: np.ndarray, bits: int, frac: int) -> tuple[np.ndarray, int]:
    """Round theta to signed fixed point with ``bits`` total and ``frac`` fraction bits.

    Rounds half up (floor(x * 2^frac + 1/2)) and saturates to
    [-2^(bits-1), 2^(bits-1) - 1] LSBs. Returns the values and how many saturated.
    """
    scale = float(1 << frac)
    q = np.floor(theta * scale + 0.5)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    saturated = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi) / scale, saturated
