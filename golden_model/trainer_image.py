"""What the trainer gateware is generated with for one run, and how the model draws it:
the initial parameters and the training set in the sample memory's order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MGDConfig
from .datapath import HwData, HwMLP, quantize_params
from .datasets import DataError
from .network import MLP
from .streams import INIT, SAMPLES, run_rng


def sample_order(count: int, seed: int) -> np.ndarray:
    """The training memory's order: a permutation from ``default_rng([seed, SAMPLES])``."""
    return np.random.default_rng([seed, SAMPLES]).permutation(count)


def initial_theta(cfg: MGDConfig, run: int = 0) -> tuple[np.ndarray, int]:
    """Run ``run``'s float initial weights (as the float model draws them), quantized
    half up to the theta format; returns (theta, saturated count)."""
    n = cfg.network
    sizes = HwMLP.from_config(cfg).sizes
    net = MLP(sizes, n.activation, n.output_activation, n.cost)
    theta = net.init_params(run_rng(cfg.seed, run, INIT), n.init_scale)
    return quantize_params(theta, cfg.hw)


@dataclass(frozen=True)
class TrainerImage:
    """What the trainer gateware is generated with for one run: the initial parameters
    (float layout) and the training set in memory order (``sample_order``)."""

    theta0: np.ndarray
    x_train: np.ndarray
    t_train: np.ndarray


def trainer_image(cfg: MGDConfig, data: HwData, run: int = 0) -> TrainerImage:
    """The memory contents of run ``run``: theta0 as ``HwTrainer`` draws it and the
    training set in ``HwTrainer``'s sample order.

    Raises :class:`~golden_model.datasets.DataError` when the set does not fit the
    sample memory (``hw.sample_memory``) or the network's input and output sizes.
    """
    count = len(data.x_train)
    if count > cfg.hw.sample_memory:
        raise DataError(
            f"the {cfg.task.name} training set has {count} samples, more than the sample "
            f"memory holds (hw.sample_memory = {cfg.hw.sample_memory})"
        )
    sizes = HwMLP.from_config(cfg).sizes
    if data.x_train.shape[1] != sizes[0] or data.t_train.shape[1] != sizes[-1]:
        raise DataError(
            f"the {cfg.task.name} data has {data.x_train.shape[1]} inputs and "
            f"{data.t_train.shape[1]} targets, the network {sizes[0]} and {sizes[-1]}"
        )
    theta0, _ = initial_theta(cfg, run)
    order = sample_order(count, cfg.seed + run)
    return TrainerImage(theta0, data.x_train[order], data.t_train[order])
