"""The CPU backprop baseline of ``mgd-hw time-to-train``: the best of a grid.

A time-to-train comparison is only honest against a tuned baseline: on this CPU a
plain minibatch loop trains the small networks of the examples in milliseconds, and
how fast depends on the batch size and the learning rate by orders of magnitude. So
the baseline is the fastest point of a grid:

- batch sizes 1, 2, 4, ... 128 (at most the training set) x a log grid of learning
  rates; when the best rate lies on the grid's edge the grid is extended that way
  (``Grid.extend`` times), so the best is an interior point or the search says why not;
- engines: NumPy always (a plain loop written for this network: the forward pass
  keeps each layer's activation and the backward pass uses it), PyTorch when it is
  importable (``nn.Linear`` layers, autograd, ``optim.SGD``; one intra-op thread, the
  fastest for matrices this small);
- the same network (sizes, activations, mean-squared-error cost of the float model:
  ``MLP.cost``), the same initial weight distribution (``train.initial_params``: seed
  s of a point is the config's run s, so seed 0 starts from the MGD run's weights),
  the same train/test split; plain SGD on the batch mean, samples in a fresh random
  order every epoch;
- training time only: the test accuracy is evaluated every ``ceil(EVAL_SAMPLES /
  batch)`` updates (every epoch when that is shorter) with the timer stopped, and a
  run stops at the first evaluation that reaches the target (so the time can
  overshoot by at most that many updates);
- each point is the median over ``Grid.seeds`` seeds of the training seconds; a run
  that has not reached the target when its time passes the cut-off (twice the best
  median so far, or ``Grid.budget`` seconds) counts as not reaching it. The cut-off
  cannot change the winner: a point whose median is above the best so far is not the
  best, however far above.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from golden_model.activations import ACTIVATION_FUNCTIONS
from golden_model.config import MGDConfig, derive
from golden_model.datasets import Dataset
from golden_model.network import MLP, predict_labels
from golden_model.train import initial_params, make_network

BACKPROP_STREAM = 7  # the seed-sequence key of the baseline's sample order
EVAL_SAMPLES = 32  # evaluate about every this many training samples


@dataclass(frozen=True)
class Grid:
    """The points searched: ``batches`` x ``rates`` per engine, ``seeds`` runs each;
    ``budget`` seconds of training at most per run; ``extend`` more rates (at the
    grid's ratio) at most on each side when the best rate is on the edge."""

    batches: tuple[int, ...]
    rates: tuple[float, ...]
    seeds: int
    budget: float
    max_budget: float
    extend: int = 4


GRIDS = {
    # a factor ~3 between rates (0.1 ... 30), 5 seeds (XOR's median needs 3 of 5
    # initial weights out of its local minima)
    "quick": Grid((1, 2, 4, 8, 16, 32, 64, 128), (0.1, 0.3, 1.0, 3.0, 10.0, 30.0), 5, 0.25,
                  4.0),
    # a factor 10^0.25 (0.1 ... 56), 5 seeds
    "full": Grid((1, 2, 4, 8, 16, 32, 64, 128),
                 tuple(round(10 ** (k / 4), 4) for k in range(-4, 8)), 5, 1.0, 64.0),
}


@dataclass
class Point:
    """One grid point: its median training seconds over the seeds (None: the median
    run did not reach the target before the cut-off) and every seed's figures."""

    engine: str
    batch: int
    rate: float
    seconds: float | None
    updates: int | None
    reached: int
    seeds: int
    seed_seconds: list[float | None] = field(default_factory=list)
    seed_updates: list[int | None] = field(default_factory=list)


@dataclass
class GridResult:
    """The grid's outcome: ``best`` (None when no point reached the target), every
    point, and what was searched."""

    target: float
    engines: list[str]
    batches: list[int]
    rates: list[float]
    seeds: int
    eval_samples: int
    best: Point | None
    points: list[Point]
    edge: str  # "" or why the best is still on an edge of the grid
    seconds: float  # wall-clock time of the whole search
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before, after
    cpus: int = 0  # CPUs of this machine (the load's scale)

    @property
    def size(self) -> int:
        return len(self.points)

    def to_dict(self) -> dict:
        return asdict(self) | {"size": self.size}


def engines() -> list[str]:
    """The engines this machine can run: numpy, and pytorch when importable."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "pytorch"]


# --- the training loops -------------------------------------------------------------

def _act_grad_from_output(name: str):
    """f'(z) written with f(z) where that is cheaper (sigmoid, tanh), else None."""
    if name == "sigmoid":
        return lambda h, z: h * (1.0 - h)
    if name == "tanh":
        return lambda h, z: 1.0 - h * h
    return None


class _Order:
    """Sample indices in a fresh random order every epoch, ``batch`` at a time."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = n, batch, rng
        self.perm, self.pos = rng.permutation(n), 0

    def take(self) -> np.ndarray:
        if self.pos + self.batch > self.n:
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx


def _accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict_labels(out) == labels))


def _eval_every(n_train: int, batch: int) -> int:
    """Updates between evaluations: about EVAL_SAMPLES samples (at most an epoch)."""
    return max(1, math.ceil(min(EVAL_SAMPLES, n_train) / batch))


def numpy_run(net: MLP, theta0: np.ndarray, data: Dataset, batch: int, rate: float,
              target: float, rng: np.random.Generator, limit: float
              ) -> tuple[float | None, int]:
    """Train from ``theta0`` until the test accuracy reaches ``target``: (training
    seconds, updates), seconds None when ``limit`` seconds of training did not."""
    params = [(w.copy(), b.copy()) for w, b in net.unpack(theta0[None])]
    weights = [w[0] for w, _ in params]
    biases = [b[0] for _, b in params]
    acts = [ACTIVATION_FUNCTIONS[a] for a in net.activations]
    grads = [_act_grad_from_output(a) for a in net.activations]
    x, y = data.x_train, data.y_train
    xt, lt = data.x_test, data.labels_test
    n_out = y.shape[1]
    order = _Order(len(x), batch, rng)
    every = _eval_every(len(x), batch)
    scale = 2.0 / n_out / batch  # d mean-over-batch MSE / d y
    spent, updates = 0.0, 0
    while spent < limit:
        start = time.perf_counter()
        for _ in range(every):
            idx = order.take()
            h = x[idx]
            kept = []
            for w, b, (f, _) in zip(weights, biases, acts, strict=True):
                z = h @ w.T
                z += b
                h_in, h = h, f(z)
                kept.append((h_in, z, h))
            delta = (h - y[idx]) * scale
            for l in range(len(weights) - 1, -1, -1):
                h_in, z, h_out = kept[l]
                g = grads[l]
                delta = delta * (g(h_out, z) if g else acts[l][1](z))
                gw = delta.T @ h_in
                gb = delta.sum(axis=0)
                if l:
                    delta_next = delta @ weights[l]
                weights[l] -= rate * gw
                biases[l] -= rate * gb
                if l:
                    delta = delta_next
        spent += time.perf_counter() - start
        updates += every
        h = xt
        for w, b, (f, _) in zip(weights, biases, acts, strict=True):
            h = f(h @ w.T + b)
        if _accuracy(h, lt) >= target:
            return spent, updates
    return None, updates


def torch_run(net: MLP, theta0: np.ndarray, data: Dataset, batch: int, rate: float,
              target: float, rng: np.random.Generator, limit: float
              ) -> tuple[float | None, int]:
    """``numpy_run`` in PyTorch (float64, autograd, ``optim.SGD``)."""
    import torch

    modules = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
               "hard_sigmoid": torch.nn.Hardsigmoid, "linear": torch.nn.Identity}
    layers = []
    for (w, b), act in zip(net.unpack(theta0[None]), net.activations, strict=True):
        lin = torch.nn.Linear(w.shape[2], w.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w[0]))
            lin.bias.copy_(torch.from_numpy(b[0]))
        layers += [lin, modules[act]()]
    if "hard_sigmoid" in net.activations:
        raise ValueError("torch's Hardsigmoid has slope 1/6, not the model's 1/4")
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=rate)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xt, lt = torch.from_numpy(data.x_test), data.labels_test
    order = _Order(len(x), batch, rng)
    every = _eval_every(len(x), batch)
    spent, updates = 0.0, 0
    while spent < limit:
        batches = [torch.from_numpy(order.take()) for _ in range(every)]
        start = time.perf_counter()
        for idx in batches:
            opt.zero_grad(set_to_none=True)
            # the float model's MSE: mean over outputs (and over the batch)
            loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
            loss.backward()
            opt.step()
        spent += time.perf_counter() - start
        updates += every
        with torch.no_grad():
            out = model(xt).numpy()
        if _accuracy(out, lt) >= target:
            return spent, updates
    return None, updates


RUNS = {"numpy": numpy_run, "pytorch": torch_run}


# --- the search ---------------------------------------------------------------------

def _median(values: list[float | None], seeds: int) -> float | None:
    """Median with None (not reached) counted as +inf; None if the median is."""
    vals = sorted(math.inf if v is None else v for v in values)
    vals += [math.inf] * (seeds - len(vals))
    med = float(np.median(vals))
    return None if math.isinf(med) else med


def _point(engine: str, net: MLP, thetas: np.ndarray, data: Dataset, batch: int,
           rate: float, target: float, seed: int, seeds: int, limit: float) -> Point:
    """The median of ``seeds`` runs; stops early once the median cannot be below
    ``limit`` (more than half the seeds did not reach the target within it)."""
    secs: list[float | None] = []
    ups: list[int | None] = []
    for s in range(seeds):
        rng = np.random.default_rng([seed, BACKPROP_STREAM, s])
        t, u = RUNS[engine](net, thetas[s], data, batch, rate, target, rng, limit)
        secs.append(t)
        ups.append(u if t is not None else None)
        if sum(v is None for v in secs) > seeds // 2:
            break
    med = _median(secs, seeds)
    reached = [u for t, u in zip(secs, ups, strict=True) if t is not None]
    updates = int(np.median(reached)) if med is not None else None
    return Point(engine, batch, rate, med, updates, len(reached), seeds, secs, ups)


def _warm_up(engine: str, net: MLP, theta: np.ndarray, data: Dataset) -> None:
    """Run each engine a little first (allocators, torch's first-call set-up)."""
    RUNS[engine](net, theta, data, 4, 0.0, 2.0, np.random.default_rng(0), 0.02)


def search(cfg: MGDConfig, data: Dataset, target: float, grid: Grid | str = "quick",
           use: list[str] | None = None) -> GridResult:
    """The best backprop point on this CPU for ``cfg``'s network and ``data`` (the
    module docstring): the float model's network, initial weights and split."""
    grid = GRIDS[grid] if isinstance(grid, str) else grid
    use = use or engines()
    net = make_network(cfg, data)
    thetas = initial_params(derive(cfg, {"runs": grid.seeds}), net)
    batches = [b for b in grid.batches if b <= len(data.x_train)]
    rates = list(grid.rates)
    ratio = rates[1] / rates[0] if len(rates) > 1 else 3.0
    points: dict[tuple[str, int, float], Point] = {}
    best: Point | None = None
    load_before = _load()
    start = time.perf_counter()
    threads = _one_thread() if "pytorch" in use else None
    budget = grid.budget
    try:
        for engine in use:
            _warm_up(engine, net, thetas[0], data)
        todo = [(e, b, r) for e in use for b in batches for r in rates]
        extended = {"low": 0, "high": 0, "batch": 0}
        while todo:
            # high rates and middling batches first (often the fastest): a good best
            # found early makes the cut-off tight. The order changes no result.
            todo.sort(key=lambda p: (-math.log(p[2]) + abs(math.log2(p[1]) - 4) / 2))
            for engine, batch, rate in todo:
                limit = budget if best is None else min(budget, 2 * best.seconds)
                p = _point(engine, net, thetas, data, batch, rate, target, cfg.seed,
                           grid.seeds, limit)
                points[(engine, batch, rate)] = p
                if p.seconds is not None and (best is None or p.seconds < best.seconds):
                    best = p
            todo = []
            if best is None:
                if budget >= grid.max_budget:
                    break
                # nothing reached the target: a longer budget, the same points again
                budget = min(4 * budget, grid.max_budget)
                todo = list(points)
                continue
            for side, edge, new in (("low", rates[0], rates[0] / ratio),
                                    ("high", rates[-1], rates[-1] * ratio)):
                if best.rate == edge and extended[side] < grid.extend:
                    extended[side] += 1
                    new = float(f"{new:.4g}")
                    rates = [new, *rates] if side == "low" else [*rates, new]
                    todo += [(e, b, new) for e in use for b in batches]
            if (best.batch == batches[-1] and 2 * best.batch <= len(data.x_train)
                    and extended["batch"] < grid.extend):
                extended["batch"] += 1
                batches.append(2 * best.batch)
                todo += [(e, batches[-1], r) for e in use for r in rates]
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
    edge = ""
    if best is not None:
        if best.rate in (rates[0], rates[-1]):
            edge = f"the best rate {best.rate:g} is on the edge of the searched rates"
        elif best.batch == batches[-1] and batches[-1] < len(data.x_train):
            edge = f"the best batch {best.batch} is the largest searched"
    return GridResult(target, use, batches, sorted(rates), grid.seeds, EVAL_SAMPLES, best,
                      sorted(points.values(), key=lambda p: (p.engine, p.batch, p.rate)),
                      edge, time.perf_counter() - start, (load_before, _load()),
                      os.cpu_count() or 0)


def _load() -> float:
    """The 1-minute load average (0 where the OS has none): other jobs slow the CPU
    baseline, so the report says how busy the machine was."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _one_thread() -> int:
    """Set PyTorch to one intra-op thread (returns the previous count)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return before
