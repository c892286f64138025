"""Training runs of the float reference model: MGD and the backprop baseline.

Both start from the same initial weights (``run_rng(seed + r, INIT)``) and the same
device variation, on the same network, and record cost and accuracy every
``eval_every`` steps (MGD) or the matching number of updates (backprop).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .activations import Variation, draw_variation
from .config import MGDConfig
from .datasets import Dataset
from .mgd import MGDEnsemble
from .network import MLP, predict_labels, r2_score
from .neurons import NeuronSampler, eval_sampler
from .optim import Optimizer
from .streams import BACKPROP_SAMPLES, DEVICE, INIT, EnsembleBuffer, SampleOrder, run_rng

# Train-set metrics are computed on at most this many samples.
EVAL_TRAIN_SAMPLES = 2000

Progress = Callable[[int, dict[str, float]], None]


@dataclass
class History:
    """Metrics at evaluation points: ``steps`` (E,), the rest (E, R)."""

    steps: list[int] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)
    train_acc: list[np.ndarray] = field(default_factory=list)
    test_acc: list[np.ndarray] = field(default_factory=list)

    def add(self, step: int, cost: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray):
        self.steps.append(int(step))
        self.cost.append(cost)
        self.train_acc.append(train_acc)
        self.test_acc.append(test_acc)

    def array(self, name: str) -> np.ndarray:
        return np.array(getattr(self, name))

    def first_step_reaching(self, target: float, metric: str = "test_acc") -> list[int | None]:
        """Per run, the first evaluated step where ``metric`` >= target (None: never)."""
        values = self.array(metric)
        out: list[int | None] = []
        for r in range(values.shape[1]):
            hit = np.nonzero(values[:, r] >= target - 1e-12)[0]
            out.append(self.steps[hit[0]] if len(hit) else None)
        return out


@dataclass
class RunResult:
    """One trainer's outcome for all R runs."""

    method: str  # "mgd" or "backprop"
    unit: str  # what History.steps counts: "steps" or "updates"
    history: History
    theta: np.ndarray  # (R, N) final parameters
    seconds: float
    saturations: int = 0


def make_network(cfg: MGDConfig, data: Dataset) -> MLP:
    n = cfg.network
    sizes = [data.n_inputs, *n.hidden, data.n_outputs]
    return MLP(sizes, n.activation, n.output_activation, n.cost)


def initial_params(cfg: MGDConfig, net: MLP) -> np.ndarray:
    """(R, N): run r's weights from its own INIT generator."""
    return np.stack(
        [
            net.init_params(run_rng(cfg.seed, r, INIT), cfg.network.init_scale)
            for r in range(cfg.runs)
        ]
    )


def device_variation(cfg: MGDConfig, net: MLP) -> list[Variation] | None:
    rngs = [run_rng(cfg.seed, r, DEVICE) for r in range(cfg.runs)]
    return draw_variation(net.sizes, cfg.nonideal.device_variation, rngs)


def evaluate(
    net: MLP,
    theta: np.ndarray,
    variation: list[Variation] | None,
    x: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    neurons: NeuronSampler | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cost and accuracy of every run on a data set: two (R,) arrays. Stochastic
    hidden neurons give their mean or fresh samples (``neurons``, ``neuron_eval``)."""
    out, _ = net.forward(theta, x[None, :, :], variation, neurons=neurons)
    cost = net.cost(out, y[None]).mean(axis=1)
    if len(labels) and labels[0] < 0:  # value targets: R^2 instead of accuracy
        return cost, r2_score(out, y)
    acc = (predict_labels(out) == labels[None]).mean(axis=1)
    return cost, acc


def _evaluator(net, variation, data: Dataset, neurons: NeuronSampler | None = None):
    k = min(len(data.x_train), EVAL_TRAIN_SAMPLES)
    xt, yt, lt = data.x_train[:k], data.y_train[:k], data.labels_train[:k]

    def run(theta):
        cost, train_acc = evaluate(net, theta, variation, xt, yt, lt, neurons)
        _, test_acc = evaluate(net, theta, variation, data.x_test, data.y_test,
                               data.labels_test, neurons)
        return cost, train_acc, test_acc

    return run


def _report(progress: Progress | None, step: int, cost, train_acc, test_acc) -> None:
    if progress is not None:
        progress(
            step,
            {
                "cost": float(np.median(cost)),
                "train_acc": float(np.median(train_acc)),
                "test_acc": float(np.median(test_acc)),
            },
        )


def train_mgd(
    cfg: MGDConfig,
    data: Dataset,
    progress: Progress | None = None,
    eta: np.ndarray | None = None,
    dtheta: np.ndarray | None = None,
) -> RunResult:
    """Train R runs with MGD for ``cfg.steps`` steps, evaluating every ``eval_every``."""
    net = make_network(cfg, data)
    variation = device_variation(cfg, net)
    engine = MGDEnsemble(
        cfg, net, data.x_train, data.y_train, initial_params(cfg, net), variation, eta, dtheta
    )
    neurons = eval_sampler(cfg, net.n_hidden, cfg.runs)
    evaluate_all = _evaluator(net, variation, data, neurons)
    history = History()
    start = time.perf_counter()
    metrics = evaluate_all(engine.theta)
    history.add(0, *metrics)
    _report(progress, 0, *metrics)
    while engine.n < cfg.steps:
        engine.advance(min(cfg.eval_every, cfg.steps - engine.n))
        metrics = evaluate_all(engine.theta)
        history.add(engine.n, *metrics)
        _report(progress, engine.n, *metrics)
    return RunResult(
        "mgd", "steps", history, engine.theta, time.perf_counter() - start, engine.saturations
    )


def backprop_updates(cfg: MGDConfig) -> int:
    return cfg.backprop.updates or max(1, cfg.steps // cfg.mgd.tau_theta)


def train_backprop(cfg: MGDConfig, data: Dataset, progress: Progress | None = None,
                   checkpoints: list[int] | None = None) -> RunResult:
    """The exact-gradient baseline: same network, initial weights and variation, with
    deterministic neurons (``nonideal.neuron_noise`` does not apply to it).

    The history is evaluated every ``eval_every / tau_theta`` updates (or, with
    ``backprop.updates`` set, at about as many evaluations as MGD makes), or at the
    given update counts ``checkpoints`` (ascending; the last is the run's length)."""
    b = cfg.backprop
    net = make_network(cfg, data)
    variation = device_variation(cfg, net)
    theta = initial_params(cfg, net)
    opt = Optimizer(b.optimizer, theta.shape, np.full(cfg.runs, b.lr))
    order = EnsembleBuffer(
        [
            SampleOrder(len(data.x_train), run_rng(cfg.seed, r, BACKPROP_SAMPLES))
            for r in range(cfg.runs)
        ],
        dtype=np.int64,
    )
    total = backprop_updates(cfg) if not checkpoints else max(checkpoints)
    every = max(1, cfg.eval_every // cfg.mgd.tau_theta) if not b.updates else max(
        1, total // max(1, cfg.steps // cfg.eval_every)
    )
    marks = set(checkpoints or ())
    evaluate_all = _evaluator(net, variation, data)
    history = History()
    start = time.perf_counter()
    metrics = evaluate_all(theta)
    history.add(0, *metrics)
    _report(progress, 0, *metrics)
    for u in range(1, total + 1):
        idx = order.take(b.batch_size)  # (R, B)
        grad, _ = net.gradient(theta, data.x_train[idx], data.y_train[idx], variation)
        opt.step(theta, grad)
        if (u in marks if marks else u % every == 0) or u == total:
            metrics = evaluate_all(theta)
            history.add(u, *metrics)
            _report(progress, u, *metrics)
    return RunResult("backprop", "updates", history, theta, time.perf_counter() - start)
