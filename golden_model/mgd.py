"""The float MGD reference model, vectorized over an ensemble of R runs.

One step n (dt = 1) of shared/MGD.md:

- a new training sample every ``tau_x`` steps (n % tau_x == 0);
- a new perturbation every ``tau_p`` steps, theta~ = a * u, a = dtheta / sqrt(N);
- the cost of the perturbed network is measured; the baseline is removed:
  discrete: C~ = C - C0 with C0 the unperturbed cost, measured again when the
  sample changes or theta is updated (that measurement is not counted as a step);
  analog: C~[n] = alpha (C~[n-1] + C[n] - C[n-1]), alpha = tau_hp / (tau_hp + 1),
  reset to 0 when the sample changes; either is optionally clamped to +-clamp;
- the error signal e_i = C~ theta~_i / dtheta^2 is integrated:
  discrete: G += e and every ``tau_theta`` steps the optimizer steps with G, G = 0;
  analog: G += (e - G) / tau_theta and the optimizer steps with G every step.

Node perturbation perturbs the pre-activations of all N neurons instead; the error
e_j of neuron j becomes weight updates through its layer's input x:
G_W += e x^T, G_b += e.

Stochastic hidden neurons (``nonideal.neuron_noise``, :mod:`golden_model.neurons`) draw
each hidden output afresh on every forward pass, C0's included, pass by pass in the
order the passes are measured; that path never uses the compiled kernel.

Why it is fast: between two segment boundaries (sample change, update) theta and the
sample are fixed, so all perturbed forward passes of a segment are one batched
evaluation, (R, K, ...) at once, with K bounded to keep memory at
O(N * R + window). Nothing per step is kept unless ``record_costs`` asks for it.
Discrete-baseline weight perturbation with dense +-1 codes runs such segments in a
compiled kernel instead (kernels.py, with numba) when numba is there.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from .activations import Variation
from .bit_codes import BitCodes, DigitSplit
from .config import MGDConfig
from .devices import PulsedParams
from .network import MLP
from .neurons import train_sampler
from .optim import Optimizer, quantize
from .streams import (
    CODES,
    COST_NOISE,
    SAMPLES,
    UPDATE_NOISE,
    CodeStream,
    EnsembleBuffer,
    NormalStream,
    PeriodCodes,
    SampleOrder,
    run_rng,
)

# Numbers held by one batched segment evaluation, at most (R * K * width): about
# 2 MB, so a chunk's codes stay in cache between the forward pass and the estimate.
# Bit-held codes (float32 for most of them) get twice the numbers for the same bytes.
WINDOW_BUDGET = 1 << 18

# Bit-held codes (BitCodes) cost some 50 us more per batched evaluation (splitting
# vectors into digits, more calls) and save about 1.5 ns per first-layer weight code;
# they pay off once an evaluation covers this many (runs x steps x weights). Measured
# on the digits network: break-even near 2^15, about 2x faster at 2^18 (tau = 100).
BIT_CODES_MIN_WORK = 1 << 15


# MGD_NUMBA=0 (or false/no/off) keeps engines on the NumPy path unless they ask for
# the compiled kernel explicitly: for comparisons, and for tests of the NumPy path.
NUMBA_ENV = "MGD_NUMBA"


@functools.cache
def _kernels_module():
    """golden_model.kernels, or None when numba is missing or fails to import. Imported
    on first need: numba takes some 0.2 s to import."""
    if importlib.util.find_spec("numba") is None:
        return None
    try:
        from . import kernels
    except ImportError:
        return None
    return kernels


def compiled_kernels() -> bool:
    """Whether engines use the compiled kernel by default (numba there, not turned off)."""
    if os.environ.get(NUMBA_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _kernels_module() is not None


def _per_run(value: float | np.ndarray | None, default: float, runs: int) -> np.ndarray:
    v = default if value is None else value
    return np.broadcast_to(np.asarray(v, dtype=float), (runs,)).copy()


class MGDEnsemble:
    """R independent MGD runs advancing in lockstep.

    Parameters
    ----------
    cfg : the validated config (the ``mgd`` and ``nonideal`` sections drive it)
    net : the network
    x_train, y_train : the training set, (S, n_in) and (S, n_out)
    theta0 : initial parameters, (R, N)
    variation : per-neuron device variation, or None
    eta, dtheta : optional per-run values (R,) overriding the config (sweeps)
    record_costs : keep every measured cost (tests and traces)
    bit_codes : on the NumPy path, hold dense +-1 weight codes as bits (BitCodes)
        instead of float64; None chooses by network size. Both give the same numbers.
        Giving it asks for the NumPy path (``compiled`` None then means False).
    compiled : run discrete-baseline weight perturbation with dense +-1 codes in the
        compiled kernel (kernels.py, numba) instead of NumPy array calls; None uses it
        where it applies and numba imports, unless MGD_NUMBA=0 is set; True requires
        it. Both paths give the same numbers up to rounding order.
    """

    def __init__(
        self,
        cfg: MGDConfig,
        net: MLP,
        x_train: np.ndarray,
        y_train: np.ndarray,
        theta0: np.ndarray,
        variation: list[Variation] | None = None,
        eta: np.ndarray | None = None,
        dtheta: np.ndarray | None = None,
        record_costs: bool = False,
        bit_codes: bool | None = None,
        compiled: bool | None = None,
    ):
        m, q = cfg.mgd, cfg.nonideal
        self.cfg, self.m, self.q, self.net = cfg, m, q, net
        self.x, self.y = x_train, y_train
        self.variation = variation
        runs = theta0.shape[0]
        self.runs = runs
        # Stochastic hidden neurons (nonideal.neuron_noise): their draws, pass by pass.
        self.neurons = train_sampler(cfg, net.n_hidden, runs)
        self.node = m.mode == "node"
        self.n_pert = net.n_nodes if self.node else net.n_params
        self.dtheta = _per_run(dtheta, m.dtheta, runs)
        self.eta = _per_run(eta, m.eta, runs)
        self.amp = self.dtheta / np.sqrt(self.n_pert)
        # e = C~ * theta~ / dtheta^2 = C~ * u * (a / dtheta^2)
        self.e_scale = self.amp / self.dtheta**2
        seed = cfg.seed
        streams = [
            CodeStream(
                m.perturbation, self.n_pert, run_rng(seed, r, CODES), m.sparsity,
                m.freq_min, m.freq_max,
            )
            for r in range(runs)
        ]
        self.bit_codes = not self.node and streams[0].packed and (
            bit_codes if bit_codes is not None else self._bit_codes_pay()
        )
        self.kernel = self._compiled_kernel(compiled, bit_codes, streams[0], variation)
        # Steps per batched evaluation (a segment is cut into chunks of this many).
        width = max(self.n_pert, net.n_params)
        self.chunk = max(1, (2 if self.bit_codes else 1) * WINDOW_BUDGET // (runs * width))
        self.codes = PeriodCodes(streams, packed=self.bit_codes or self.kernel is not None)
        if self.bit_codes and self.kernel is None:
            self._inputs = DigitSplit.for_values(x_train, net.sizes[0])
        self._sample_and_noise_streams()
        self.theta = np.array(theta0, dtype=float, copy=True)
        self.saturations = 0
        self._quantize()
        # Pulsed crosspoint devices (devices.py): theta is read from the devices.
        self.pulsed = PulsedParams(cfg, self.theta) if q.device != "none" else None
        if self.pulsed is not None:
            self.theta = self.pulsed.theta
        self.G = np.zeros_like(self.theta)
        self.opt = Optimizer(
            "sgd" if m.optimizer == "tiki_taka" else m.optimizer,
            self.theta.shape,
            self.eta,
            m.momentum,
            m.adam_beta1,
            m.adam_beta2,
            m.adam_eps,
        )
        self.n = 0  # steps done
        self.updates = 0
        self.sample = np.zeros(runs, dtype=np.int64)
        self._xs = self._ts = None
        self.c0 = np.zeros(runs)
        self.c0_valid = False
        self.ct = np.zeros(runs)  # analog high-pass state
        self.c_prev = np.zeros(runs)
        self.alpha = m.tau_hp / (m.tau_hp + 1.0)
        self.record = record_costs
        self.costs: list[np.ndarray] = []  # measured perturbed costs, (R, k) chunks
        self.baselines: list[np.ndarray] = []  # measured C0, (R,) each

    def _sample_and_noise_streams(self) -> None:
        """Every run's sample order, and its cost and update noise where there is any."""
        seed, runs, q = self.cfg.seed, self.runs, self.q
        self.order = EnsembleBuffer(
            [SampleOrder(len(self.x), run_rng(seed, r, SAMPLES)) for r in range(runs)],
            dtype=np.int64,
        )
        self.cost_noise = (
            EnsembleBuffer([NormalStream(run_rng(seed, r, COST_NOISE)) for r in range(runs)])
            if q.cost_noise > 0
            else None
        )
        self.update_noise = (
            EnsembleBuffer(
                [NormalStream(run_rng(seed, r, UPDATE_NOISE)) for r in range(runs)],
                budget=max(1 << 20, 4 * runs * self.net.n_params),
            )
            if q.update_noise > 0
            else None
        )

    def _bit_codes_pay(self) -> bool:
        """Whether one batched evaluation holds enough weight codes for BitCodes."""
        m = self.m
        steps = 1 if m.baseline == "analog" else min(m.tau_x, m.tau_theta)
        steps = min(steps, 2 * WINDOW_BUDGET // (self.runs * self.net.n_params))
        return self.runs * steps * self.net.w_slices[0].stop >= BIT_CODES_MIN_WORK

    def _compiled_kernel(
        self, compiled: bool | None, bit_codes: bool | None, stream: CodeStream, variation
    ):
        """The compiled segment kernel (kernels.WeightPertKernel), or None for the NumPy
        path. It covers discrete-baseline weight perturbation with dense +-1 codes and
        deterministic neurons."""
        fits = (not self.node and stream.packed and self.m.baseline == "discrete"
                and self.neurons is None)
        if compiled is None:
            compiled = fits and bit_codes is None and compiled_kernels()
        if not compiled:
            return None
        if not fits:
            raise ValueError(
                "the compiled kernel covers discrete-baseline weight perturbation with dense"
                " +-1 codes (perturbation 'code', no sparsity) and deterministic neurons"
                " (nonideal.neuron_noise 'none') only"
            )
        kernels = _kernels_module()
        if kernels is None:
            raise ImportError("the compiled kernel needs numba, which does not import")
        return kernels.WeightPertKernel(self.net, variation, self.runs)

    # --- public ----------------------------------------------------------------
    def advance(self, steps: int) -> None:
        """Run ``steps`` more MGD steps for every run."""
        target = self.n + steps
        m = self.m
        while self.n < target:
            n = self.n
            if n % m.tau_x == 0:
                self._next_sample()
            if m.baseline == "analog":
                self._analog_step()
                self.n += 1
                continue
            end = min(target, (n // m.tau_x + 1) * m.tau_x, (n // m.tau_theta + 1) * m.tau_theta)
            self._discrete_segment(n, end)
            self.n = end
            if end % m.tau_theta == 0:
                self._update(self.G)
                self.G[:] = 0.0

    # --- steps -----------------------------------------------------------------
    def _next_sample(self) -> None:
        self.sample = self.order.take(1)[:, 0]
        self._xs = self.x[self.sample][:, None, :]
        self._ts = self.y[self.sample][:, None, :]
        self.c0_valid = False

    def _noise(self, count: int) -> np.ndarray | float:
        if self.cost_noise is None:
            return 0.0
        return self.q.cost_noise * self.cost_noise.take(count)

    def _codes(self, n0: int, n1: int) -> np.ndarray | BitCodes:
        """Unit codes of steps n0..n1-1, (R, n1 - n0, n_pert), float or BitCodes."""
        tp = self.m.tau_p
        k0, k1 = n0 // tp, (n1 - 1) // tp + 1
        c = self.codes.get(k0, k1)
        if tp > 1:
            c = c[:, np.arange(n0, n1) // tp - k0]
        return BitCodes(self.net, c, self._inputs) if self.bit_codes else c

    def _measure(
        self, u: np.ndarray | BitCodes, baseline: bool = False
    ) -> tuple[np.ndarray, list]:
        """Perturbed costs (R, k) for unit codes u (R, k, n_pert), plus layer inputs.

        With ``baseline`` the unperturbed cost C0 is measured in the same batched
        forward pass (as row 0) and stored; its noise is drawn first.
        """
        if self.node:
            if baseline:
                u = np.concatenate([np.zeros_like(u[:, :1]), u], axis=1)
            y, kept = self.net.forward(
                self.theta, self._xs, self.variation, node_pert=self.amp[:, None, None] * u,
                keep=True, neurons=self.neurons,
            )
        else:
            y, kept = self.net.forward(
                self.theta, self._xs, self.variation, weight_pert=(self.amp, u),
                baseline=baseline, neurons=self.neurons,
            )
        c = self.net.cost(y, self._ts) + self._noise(y.shape[1])
        if baseline:
            self.c0, c = c[:, 0], c[:, 1:]
            self.c0_valid = True
            kept = [(h[:, 1:] if h.shape[1] > 1 else h, z) for h, z in kept]
            if self.record:
                self.baselines.append(self.c0.copy())
        if self.record:
            self.costs.append(c.copy())
        return c, kept

    def _estimate(self, ct: np.ndarray, u: np.ndarray | BitCodes, kept: list) -> np.ndarray:
        """Sum over k of the error signal mapped to parameters, (R, N)."""
        w = ct * self.e_scale[:, None]  # (R, k)
        if self.bit_codes:
            return u.correlate(w)
        if not self.node:
            return (w[:, None, :] @ u)[:, 0]
        g = np.empty_like(self.theta)
        e = w[:, :, None] * u  # (R, k, n_nodes)
        for l, (h_in, _) in enumerate(kept):
            e_l = e[..., self.net.node_slices[l]]
            h_in = np.broadcast_to(h_in, e_l.shape[:2] + h_in.shape[-1:])
            g[:, self.net.w_slices[l]] = np.einsum("rko,rki->roi", e_l, h_in).reshape(
                self.runs, -1
            )
            g[:, self.net.b_slices[l]] = e_l.sum(axis=1)
        return g

    def _clamp(self, ct: np.ndarray) -> np.ndarray:
        lim = self.m.clamp
        return np.clip(ct, -lim, lim) if lim > 0 else ct

    def _discrete_segment(self, n0: int, n1: int) -> None:
        if self.kernel is not None:
            self._compiled_segment(n0, n1)
            return
        for s in range(n0, n1, self.chunk):
            u = self._codes(s, min(n1, s + self.chunk))
            c, kept = self._measure(u, baseline=not self.c0_valid)
            ct = self._clamp(c - self.c0[:, None])
            self.G += self._estimate(ct, u, kept)

    def _compiled_segment(self, n0: int, n1: int) -> None:
        """Steps n0..n1-1 of a discrete segment in the compiled kernel: the costs, C0
        (when not valid) and the error signals added to G, one run and step at a time.
        Cut into chunks like the NumPy path, so the codes held stay bounded."""
        tp = self.m.tau_p
        for s in range(n0, n1, self.chunk):
            e = min(n1, s + self.chunk)
            k0, k1 = s // tp, (e - 1) // tp + 1
            words = self.codes.get(k0, k1)  # (R, k1 - k0, W) raw words
            period = np.arange(s, e) // tp - k0 if tp > 1 else np.arange(e - s)
            baseline = not self.c0_valid
            noise = self._noise(e - s + baseline) if self.cost_noise is not None else None
            c = self.kernel.segment(
                self.theta, self._xs[:, 0], self._ts[:, 0], words, period, self.amp,
                self.dtheta**2, self.c0, baseline, noise, self.m.clamp, self.G,
            )
            if baseline:
                self.c0_valid = True
                if self.record:
                    self.baselines.append(self.c0.copy())
            if self.record:
                self.costs.append(c)

    def _analog_step(self) -> None:
        n = self.n
        u = self._codes(n, n + 1)
        c, kept = self._measure(u)
        c = c[:, 0]
        if n % self.m.tau_x == 0:
            self.ct[:] = 0.0
        else:
            self.ct = self.alpha * (self.ct + c - self.c_prev)
        self.c_prev = c
        self.ct = self._clamp(self.ct)
        e = self._estimate(self.ct[:, None], u, kept)
        self.G += (e - self.G) / self.m.tau_theta
        self._update(self.G)

    def _update(self, g: np.ndarray) -> None:
        if self.pulsed is not None:
            # the devices take the optimizer's step as pulses (no noise, no grid: the
            # config rules refuse update_noise and weight_bits with a device)
            self.pulsed.update(self.opt.desired(g))
            self.theta = self.pulsed.theta
        else:
            self.opt.step(self.theta, g)
            if self.update_noise is not None:
                self.theta += self.q.update_noise * self.update_noise.take(self.net.n_params)
            self._quantize()
        self.updates += 1
        self.c0_valid = False

    def _quantize(self) -> None:
        if self.q.weight_bits:
            self.theta, sat = quantize(self.theta, self.q.weight_bits, self.q.weight_frac)
            self.saturations += sat
