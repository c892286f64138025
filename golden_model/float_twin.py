"""The float-model config that matches a hardware trainer config."""

from __future__ import annotations

import numpy as np

from .config import MGDConfig, derive
from .datapath import HwMLP


def float_twin(cfg: MGDConfig) -> MGDConfig:
    """The float-model config that matches a hardware trainer config.

    Same task, network, mode, code kind, schedule, steps and seeds; the shifts map to
    dtheta = a sqrt(P) and eta = P a LSB_theta n_out / (2^(eta_shift + cost_shift)
    LSB_cost), with a the amplitude as a real number (theta LSBs for weight, z LSBs for
    node perturbation) and P the perturbed count; n_out / 2^cost_shift converts the
    float model's mean squared error to the hardware's scaled sum. Momentum k maps to
    the momentum optimizer with mu = 1 - 2^-k. The float sigmoid and tanh are the
    true curves, the hardware's their PLAN approximations.
    """
    h = cfg.hw
    net = HwMLP.from_config(cfg)
    node = cfg.mgd.mode == "node"
    p = net.n_nodes if node else net.n_params
    a = 2.0 ** (h.amp_log2 - (h.z_frac if node else h.theta_frac))
    n_out = net.sizes[-1]
    lsb_c = 2.0**-h.cost_frac
    eta = p * a * 2.0**-h.theta_frac * n_out / (2.0 ** (h.eta_shift + h.cost_shift) * lsb_c)
    mgd = {"eta": eta, "dtheta": a * float(np.sqrt(p))}
    if h.momentum_shift:
        mgd |= {"optimizer": "momentum", "momentum": 1.0 - 2.0**-h.momentum_shift}
    if h.clamp:
        mgd["clamp"] = h.clamp * lsb_c * 2.0**h.cost_shift / n_out
    return derive(cfg, {"mgd": mgd})
