"""Stochastic hidden neurons (``nonideal.neuron_noise``): each hidden neuron's output is
drawn at random from its pre-activation z on every forward pass.

Kinds (the output layer always stays deterministic: the cost reads it):

- ``gaussian``: h = f(z) + neuron_std * n, n ~ N(0, 1) ("stochastic sigmoid" with
  Gaussian noise of a configurable std; f the layer's activation with its device
  variation);
- ``bernoulli``: h = 1 with probability clip(f(z), 0, 1), else 0, decided as
  Phi(n) < clip(f(z), 0, 1) (a binary switching neuron; f should be a sigmoid);
- ``device``: h is a sample of the fitted device (:mod:`golden_model.device_model`)
  at device input neuron_scale * z + neuron_offset; the device replaces the
  activation.

Every random number is a standard normal n from run r's own stream
``run_rng(seed, r, NEURON)``: one per hidden neuron and forward pass (two for
``device``: the component pick and the Gaussian), consumed pass by pass in the order
the passes are evaluated (for MGD's discrete baseline: C0 first, then the perturbed
passes step by step), so the vectorized model and the plain loop agree number for
number. Evaluation uses the expected output E[h | z] (``neuron_eval = "mean"``:
f(z), clip(f(z), 0, 1), the device's mixture mean) or fresh samples from the separate
stream ``NEURON_EVAL`` (``"sample"``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from .config import NEURON_EVALS, NEURON_KINDS, NonIdealConfig
from .device_model import DeviceModel, load_device
from .streams import NEURON, NEURON_EVAL, EnsembleBuffer, NormalStream, run_rng

__all__ = ["NEURON_EVALS", "NEURON_KINDS", "NeuronModel", "NeuronSampler", "neuron_model",
           "train_sampler", "eval_sampler"]


@dataclass
class NeuronModel:
    """How a stochastic hidden neuron turns z (and f(z)) into an output."""

    kind: str
    std: float = 0.0
    device: DeviceModel | None = None
    scale: float = 1.0
    offset: float = 0.0

    @property
    def draws(self) -> int:
        """Standard normal draws per neuron and forward pass."""
        return 2 if self.kind == "device" else 1

    @property
    def uses_activation(self) -> bool:
        """Whether the output builds on the layer's activation f(z)."""
        return self.kind != "device"

    def mean(self, z: np.ndarray, fz: np.ndarray | None) -> np.ndarray:
        """E[h | z]."""
        if self.kind == "gaussian":
            return fz
        if self.kind == "bernoulli":
            return np.clip(fz, 0.0, 1.0)
        return self.device.mean(self.scale * z + self.offset)

    def sample(self, z: np.ndarray, fz: np.ndarray | None, n: np.ndarray) -> np.ndarray:
        """One output per neuron from its draws n (z.shape + (draws,))."""
        if self.kind == "gaussian":
            return fz + self.std * n[..., 0]
        if self.kind == "bernoulli":
            return (ndtr(n[..., 0]) < np.clip(fz, 0.0, 1.0)).astype(float)
        return self.device.sample(self.scale * z + self.offset, n)


@functools.lru_cache(maxsize=8)
def _device(path: str, mtime: float) -> DeviceModel:
    return load_device(path)


def neuron_model(q: NonIdealConfig) -> NeuronModel | None:
    """The config's neuron model, or None for deterministic neurons. A device file is
    read once (cached by path and modification time); a bad one is a DeviceError."""
    if q.neuron_noise == "none":
        return None
    device = None
    if q.neuron_noise == "device":
        p = Path(q.neuron_device)
        device = _device(str(p), p.stat().st_mtime if p.is_file() else 0.0)
    return NeuronModel(q.neuron_noise, q.neuron_std, device, q.neuron_scale, q.neuron_offset)


class NeuronSampler:
    """A neuron model with R runs' draws: what ``MLP.forward`` takes as ``neurons``.

    ``streams`` (one :class:`NormalStream` a run) makes it sample; None makes it
    return the mean. ``n_hidden`` is the number of hidden neurons of the network.
    """

    def __init__(self, model: NeuronModel, n_hidden: int, streams: list | None):
        self.model = model
        self.n_hidden = n_hidden
        self.buffer = None
        if streams is not None:
            self.buffer = EnsembleBuffer(streams, item_shape=(n_hidden, model.draws),
                                         budget=1 << 18)
        self._draws: np.ndarray | None = None

    @property
    def sampling(self) -> bool:
        return self.buffer is not None

    def begin(self, passes: int) -> None:
        """Take the draws of the next ``passes`` forward passes of every run (called
        at the first hidden layer)."""
        if self.buffer is not None:
            self._draws = self.buffer.take(passes)  # (R, passes, n_hidden, draws)

    def output(self, z: np.ndarray, fz: np.ndarray | None, nodes: slice) -> np.ndarray:
        """Hidden outputs of one layer: z (R, M, out) of the hidden neurons ``nodes``."""
        if self.buffer is None:
            return self.model.mean(z, fz)
        n = self._draws[:, :, nodes]
        if n.shape[1] != z.shape[1]:
            raise ValueError(f"{n.shape[1]} passes drawn for {z.shape[1]} evaluated")
        return self.model.sample(z, fz, n)


def train_sampler(cfg, n_hidden: int, runs: int) -> NeuronSampler | None:
    """The training passes' sampler of ``runs`` runs from seed ``cfg.seed`` (stream
    NEURON), or None for deterministic neurons."""
    model = neuron_model(cfg.nonideal)
    if model is None:
        return None
    return NeuronSampler(model, n_hidden, [NormalStream(run_rng(cfg.seed, r, NEURON))
                                           for r in range(runs)])


def eval_sampler(cfg, n_hidden: int, runs: int) -> NeuronSampler | None:
    """What evaluation uses: the mean (``neuron_eval = "mean"``) or samples from stream
    NEURON_EVAL (``"sample"``); None for deterministic neurons."""
    model = neuron_model(cfg.nonideal)
    if model is None:
        return None
    streams = ([NormalStream(run_rng(cfg.seed, r, NEURON_EVAL)) for r in range(runs)]
               if cfg.nonideal.neuron_eval == "sample" else None)
    return NeuronSampler(model, n_hidden, streams)
