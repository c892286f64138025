"""Pulsed crosspoint devices of the float model (docs/devices.md, "Asymmetric
crosspoint devices"), vectorized over R runs and N parameters.

Each parameter is one device whose value w moves only by whole pulses. One pulse up or
down moves it by (soft bounds with an up/down bias, after the pulsed-device models of
IBM's aihwkit; restated here, not copied):

    up:   w <- clip(w + dw+ (1 - gamma w / w_max) (1 + s xi), -w_max, w_max)
    down: w <- clip(w - dw- (1 + gamma w / w_max) (1 + s xi), -w_max, w_max)

with dw+- = dw (1 +- beta), gamma = ``nonideal.asymmetry``, s = ``pulse_noise`` and xi
a fresh standard normal per pulse (cycle-to-cycle noise). Each device has its own
dw = dw_min max(0, 1 + dw_min_dtod xi1) and beta = clip(up_down + up_down_dtod xi2,
-1, 1) (device-to-device spread, drawn once). Up and down steps are equal at the
symmetry point w* = w_max (dw+ - dw-) / (gamma (dw+ + dw-)) = w_max beta / gamma; a
zero-mean train of pulses drifts toward it.

An update asks for a change delta of every parameter; it becomes
n = clip(floor(delta / dw_min + U), -max_pulses, max_pulses) pulses with U uniform in
[0, 1) (stochastic rounding: E[n] = delta / dw_min inside the clip), applied one after
another: pulse k of every device with |n| > k, for k = 0, 1, ... The controller knows
the nominal dw_min only, never a device's own step.

Random streams of run r (streams.py): CROSSPOINTS (2N normals per array, visible
array first: the dw draws, then the beta draws), PULSE_ROUNDING (N uniforms per
conversion to pulses), PULSE_NOISE (one normal per applied pulse, in the order the
pulses are applied: pulse index, then parameter index; drawn only when s > 0).

Zero shifting (``nonideal.zero_shift``; Kim et al. 2019, the reference array that
Tiki-Taka's later versions subtract): every device has a reference device holding
its own symmetry point w* (0 where the steps do not depend on w), and the
circuit reads w - w*. An array starts at w0 + w* (clipped), so it reads w0, and a
zero-mean train of pulses then drifts its read value toward 0 instead of toward w*.
How w* is found on a chip (many alternating up/down pulses until the device rests) is
not modelled; its result is: each reference holds w* + ``zero_shift_error`` xi
(clipped to +-w_max), xi a standard normal per device drawn once (stream REFERENCES,
N per array, visible array first; drawn only when the error is > 0).
"""

from __future__ import annotations

import numpy as np

from .config import MGDConfig, NonIdealConfig
from .streams import (
    CROSSPOINTS,
    PULSE_NOISE,
    PULSE_ROUNDING,
    REFERENCES,
    NormalStream,
    run_rng,
)


def pulse_counts(
    delta: np.ndarray, dw_min: float, uniforms: np.ndarray, max_pulses: int
) -> np.ndarray:
    """Whole pulses for a desired change: clip(floor(delta / dw_min + U), +-max_pulses)."""
    n = np.floor(delta / dw_min + uniforms)
    return np.clip(n, -max_pulses, max_pulses).astype(np.int64)


class SoftBoundsArray:
    """R x N soft-bounds devices (the module docstring has the equations).

    Parameters
    ----------
    q : the ``nonideal`` section (device fields)
    w0 : initial read values (R, N), programmed exactly (clipped to +-w_max)
    draws : each device's two device-to-device normals, (R, 2, N)
    reference_draws : each reference's error normal, (R, N) (with ``q.zero_shift``
        and ``q.zero_shift_error`` > 0)

    ``value`` is what the circuit reads: w, or w less its reference with
    ``q.zero_shift``.
    """

    def __init__(self, q: NonIdealConfig, w0: np.ndarray, draws: np.ndarray,
                 reference_draws: np.ndarray | None = None):
        dw = q.dw_min * np.maximum(1.0 + q.dw_min_dtod * draws[:, 0], 0.0)
        beta = np.clip(q.up_down + q.up_down_dtod * draws[:, 1], -1.0, 1.0)
        self.up = dw * (1.0 + beta)
        self.down = dw * (1.0 - beta)
        self.slope = q.asymmetry / q.w_max
        self.bound = q.w_max
        self.noise = q.pulse_noise
        w0 = np.asarray(w0, dtype=float)
        self.reference = None
        if q.zero_shift:
            # no symmetry point without asymmetry, or for a device that does not move:
            # a reference of 0
            self.reference = (np.zeros_like(w0) if self.slope == 0
                              else np.nan_to_num(self.symmetry_point(), nan=0.0))
            if q.zero_shift_error > 0:
                self.reference = np.clip(self.reference + q.zero_shift_error * reference_draws,
                                         -q.w_max, q.w_max)
            w0 = w0 + self.reference
        self.w = np.clip(w0, -q.w_max, q.w_max)

    @property
    def value(self) -> np.ndarray:
        """The read value (R, N): w, less the reference with zero shifting."""
        return self.w if self.reference is None else self.w - self.reference

    def symmetry_point(self) -> np.ndarray:
        """Where up and down steps are equal, (R, N), clipped to the bounds; NaN where
        the steps do not depend on w (asymmetry 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (self.up - self.down) / (self.slope * (self.up + self.down))
        return np.clip(w, -self.bound, self.bound)

    def apply(self, counts: np.ndarray, noise: list[NormalStream] | None = None) -> None:
        """Apply ``counts`` (R, N) signed pulses; ``noise``: each run's PULSE_NOISE
        stream (needed when pulse_noise > 0)."""
        steps = np.abs(counts)
        up = counts > 0
        # up: dw+ (1 - gamma' w); down: -(dw- (1 + gamma' w)) = (-dw-) (1 - (-gamma') w),
        # the same numbers, so one expression serves both directions.
        coef = np.where(up, self.up, -self.down)
        slope = np.where(up, self.slope, -self.slope)
        w = self.w
        for k in range(int(steps.max(initial=0))):
            active = steps > k
            step = coef * (1.0 - slope * w)
            if self.noise > 0:
                xi = np.zeros_like(w)
                for r, stream in enumerate(noise):
                    xi[r, active[r]] = stream.block(int(np.count_nonzero(active[r])))
                step = step * (1.0 + self.noise * xi)
            w = np.where(active, np.minimum(np.maximum(w + step, -self.bound), self.bound), w)
        self.w = w


def crosspoint_draws(rngs: list[np.random.Generator], n: int) -> np.ndarray:
    """The next array's device-to-device normals of every run, (R, 2, N)."""
    return np.stack([rng.standard_normal(2 * n).reshape(2, n) for rng in rngs])


def reference_draws(q: NonIdealConfig, rngs: list[np.random.Generator],
                    n: int) -> np.ndarray | None:
    """The next array's reference error normals of every run, (R, N); None (nothing
    drawn) without a reference error."""
    if not (q.zero_shift and q.zero_shift_error > 0):
        return None
    return np.stack([rng.standard_normal(n) for rng in rngs])


class PulsedParams:
    """The parameters of an ensemble held in pulsed devices, and their update.

    Plain MGD (any ``mgd.optimizer`` but "tiki_taka"): one array holds theta; an update
    asks it for the optimizer's step. Tiki-Taka (Gokmen & Haensch 2020; the method
    Onen et al. 2022 compare with): the update is pulsed into a fast array A (started
    at 0); every ``mgd.transfer_every`` updates A is read and ``transfer_lr`` * A is
    pulsed into the slow array C (started at theta0); A is not reset, its own
    asymmetry pulls it toward its symmetry point. The network sees
    C + ``transfer_gamma`` * A. With ``nonideal.zero_shift`` every array is read
    less its reference (module docstring), A's transfers included.
    """

    def __init__(self, cfg: MGDConfig, theta0: np.ndarray):
        q, m = cfg.nonideal, cfg.mgd
        runs, n = theta0.shape
        self.q, self.m = q, m
        d2d = [run_rng(cfg.seed, r, CROSSPOINTS) for r in range(runs)]
        refs = [run_rng(cfg.seed, r, REFERENCES) for r in range(runs)]
        self.rounding = [run_rng(cfg.seed, r, PULSE_ROUNDING) for r in range(runs)]
        self.noise = (
            [NormalStream(run_rng(cfg.seed, r, PULSE_NOISE)) for r in range(runs)]
            if q.pulse_noise > 0 else None
        )
        self.visible = SoftBoundsArray(q, theta0, crosspoint_draws(d2d, n),
                                       reference_draws(q, refs, n))
        self.tiki_taka = m.optimizer == "tiki_taka"
        self.fast = (
            SoftBoundsArray(q, np.zeros_like(theta0), crosspoint_draws(d2d, n),
                            reference_draws(q, refs, n))
            if self.tiki_taka else None
        )
        self.updates = 0

    @property
    def theta(self) -> np.ndarray:
        """The parameters the network sees, (R, N)."""
        if self.fast is None:
            return self.visible.value.copy()
        return self.visible.value + self.m.transfer_gamma * self.fast.value

    def _counts(self, delta: np.ndarray) -> np.ndarray:
        u = np.stack([rng.random(delta.shape[1]) for rng in self.rounding])
        return pulse_counts(delta, self.q.dw_min, u, self.q.max_pulses)

    def update(self, delta: np.ndarray) -> None:
        """Pulse the desired change ``delta`` (R, N) in (into A with Tiki-Taka, then
        transfer when due)."""
        self.updates += 1
        if self.fast is None:
            self.visible.apply(self._counts(delta), self.noise)
            return
        self.fast.apply(self._counts(delta), self.noise)
        if self.updates % self.m.transfer_every == 0:
            self.visible.apply(self._counts(self.m.transfer_lr * self.fast.value), self.noise)
