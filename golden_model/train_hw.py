"""The bit-exact training driver: one run of ``HwTrainer`` with its evaluations."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .config import MGDConfig
from .datapath import HwData, evaluate
from .datasets import Dataset
from .train import EVAL_TRAIN_SAMPLES, History
from .trainer import HwTrainer, SubLsbCount


@dataclass
class HwRunResult:
    """One trainer run: evaluations, final theta, kept thetas, counters, effort."""

    history: History
    theta: np.ndarray
    thetas: list[tuple[int, np.ndarray]]
    counters: dict[str, int]
    seconds: float
    passes: int
    updates: int
    init_saturations: int = 0
    cycles_per_pass: int = 0
    sub_lsb: SubLsbCount | None = None


def cycles_per_pass(sizes: list[int]) -> int:
    """A rough RTL estimate: one MAC per neuron per cycle, fan-in + 1 cycles a layer."""
    return sum(n_in + 1 for n_in in sizes[:-1])


def train_hw(
    cfg: MGDConfig,
    data: Dataset,
    run: int = 0,
    progress=None,
    record_theta_every: int = 0,
    count_sub_lsb: bool = False,
    on_eval: Callable[[HwTrainer], None] | None = None,
) -> HwRunResult:
    """Train one run for ``cfg.steps`` steps, evaluating every ``eval_every`` steps on
    (at most 2000 samples of) the training set and on the test set, in fixed point.

    ``count_sub_lsb`` counts the updates below one LSB (``HwRunResult.sub_lsb``);
    ``on_eval(trainer)`` is called after every evaluation (step 0 included), to look
    at the trainer's state there; neither changes the numbers.
    """
    hd = HwData.from_dataset(data, cfg.hw)
    trainer = HwTrainer(cfg, hd, run, record_theta_every=record_theta_every,
                        count_sub_lsb=count_sub_lsb)
    k = min(len(hd.x_train), EVAL_TRAIN_SAMPLES)
    history = History()

    def evaluate_now() -> None:
        cost, train_acc = evaluate(trainer.net, trainer.theta, hd.x_train[:k], hd.t_train[:k],
                                   hd.labels_train[:k])
        _, test_acc = evaluate(trainer.net, trainer.theta, hd.x_test, hd.t_test, hd.labels_test)
        history.add(trainer.n, np.array([cost]), np.array([train_acc]), np.array([test_acc]))
        if progress is not None:
            progress(trainer.n, {"cost": cost, "train_acc": train_acc, "test_acc": test_acc})
        if on_eval is not None:
            on_eval(trainer)

    start = time.perf_counter()
    evaluate_now()
    while trainer.n < cfg.steps:
        trainer.advance(min(cfg.eval_every, cfg.steps - trainer.n))
        evaluate_now()
    return HwRunResult(
        history, trainer.theta.copy(), trainer.thetas, trainer.counters(),
        time.perf_counter() - start, trainer.passes, trainer.updates,
        trainer.init_saturations, cycles_per_pass(trainer.net.sizes), trainer.sub_lsb,
    )
