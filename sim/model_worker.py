"""The bit-exact model of one trainer run in its own process, streamed to a testbench.

The cocotb testbench (sim/tb_trainer.py) starts ``python -m sim.model_worker``, writes
one JSON line (config, the path of the run's data file, run index, steps, updates per
batch) to its stdin and reads
pickled :class:`Batch` records from its stdout. The model runs on the second core
while the simulator runs on the first; the pipe's buffer bounds how far ahead it gets,
so memory stays bounded however long the run.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from golden_model.config import MGDConfig, build_config
from golden_model.datapath import HwData
from golden_model.trainer import HwTrainer
from sim.data_file import read_data

# A batch is sent after this many costs even when no update is due (long windows).
COST_BATCH = 1 << 14


@dataclass
class Batch:
    """Model results of the steps first .. first + len(costs) - 1: every perturbed cost;
    the parameters and counters after every update among them (update indices
    ``update0`` ..), and the model's counters and update count at the batch's end."""

    first: int
    costs: np.ndarray
    update0: int
    thetas: np.ndarray  # (U, N)
    counters: list[dict[str, int]]
    end_counters: dict[str, int]
    updates: int
    # streaming trainer: the evaluation index of each step's perturbed evaluation and
    # of each update's last one (their cycles are ``StreamTiming``'s); None otherwise
    evals: np.ndarray | None = None
    update_evals: list[int] | None = None
    passes: int = 0  # the model's forward evaluations so far (baselines included)


def batches(cfg: MGDConfig, data: HwData, run: int, steps: int,
            per_batch: int) -> Iterator[Batch]:
    """The model's results of ``steps`` steps, ``per_batch`` updates at a time."""
    model = HwTrainer(cfg, data, run)
    stream = cfg.hw.pipeline == "stream"
    tau = cfg.mgd.tau_theta
    first, costs, evals, thetas, counters, update0 = 0, [], [], [], [], 0
    while model.n < steps:
        k = min(tau - model.n % tau, steps - model.n)  # to the next update or the end
        trace = model.advance(k, record=True)
        costs.append(trace.cost)
        if stream:
            evals.append(trace.evals)
        if model.n % tau == 0:
            thetas.append(model.theta.copy())
            counters.append(model.counters())
        n_costs = model.n - first
        if len(thetas) >= per_batch or n_costs >= COST_BATCH or model.n == steps:
            yield Batch(first, np.concatenate(costs), update0,
                        np.array(thetas, np.int64).reshape(len(thetas), model.wu.n),
                        counters, model.counters(), model.updates,
                        np.concatenate(evals) if stream else None,
                        [int(e) for e in model.update_evals[update0:update0 + len(thetas)]]
                        if stream else None, model.passes)
            first += n_costs
            update0 += len(thetas)
            costs, evals, thetas, counters = [], [], [], []


class ModelStream:
    """The testbench's side: a worker process and what it has sent so far.

    ``costs(first, count)`` and ``update(u)`` block until the worker has got that far;
    what was handed out is forgotten.
    """

    def __init__(self, cfg: MGDConfig, data_path: str, run: int, steps: int, per_batch: int,
                 python: str):
        self.proc = subprocess.Popen([python, "-m", "sim.model_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        job = {"config": cfg.to_dict(), "data": data_path, "run": run, "steps": steps,
               "per_batch": per_batch}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.close()
        self._costs = np.zeros(0, np.int64)
        self._evals = np.zeros(0, np.int64)
        self._cost_base = 0
        self._updates: dict[int, tuple[np.ndarray, dict]] = {}
        self._update_evals: dict[int, int] = {}
        self.last: Batch | None = None

    def _read(self, eof_ok: bool = False) -> bool:
        try:
            batch = pickle.load(self.proc.stdout)
        except EOFError:
            code = self.proc.wait()
            if eof_ok and code == 0:
                return False
            raise RuntimeError(f"the model worker ended early (exit status {code})") from None
        self._costs = np.concatenate([self._costs, batch.costs])
        if batch.evals is not None:
            self._evals = np.concatenate([self._evals, batch.evals])
            for i, e in enumerate(batch.update_evals):
                self._update_evals[batch.update0 + i] = e
        for i, (theta, counters) in enumerate(zip(batch.thetas, batch.counters, strict=True)):
            self._updates[batch.update0 + i] = (theta, counters)
        self.last = batch
        return True

    def costs(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The perturbed costs of steps first .. first + count - 1 and (streaming
        trainer) their evaluation indices, else None."""
        while self._cost_base + len(self._costs) < first + count:
            self._read()
        lo = first - self._cost_base
        out = self._costs[lo:lo + count]
        evals = self._evals[lo:lo + count] if len(self._evals) else None
        self._costs = self._costs[lo + count:]
        self._evals = self._evals[lo + count:]
        self._cost_base = first + count
        return out, evals

    def update(self, u: int) -> tuple[np.ndarray, dict[str, int], int | None]:
        """Parameters and counters after update u (0-based), and (streaming trainer)
        the evaluation it was computed from, else None."""
        while u not in self._updates:
            self._read()
        theta, counters = self._updates.pop(u)
        return theta, counters, self._update_evals.pop(u, None)

    def finish(self) -> Batch:
        """Read to the end; the last batch (the model's final counters, update count)."""
        while self._read(eof_ok=True):
            pass
        return self.last


def main() -> None:
    job = json.loads(sys.stdin.readline())
    cfg = build_config(job["config"])
    out = sys.stdout.buffer
    data = read_data(job["data"])
    for batch in batches(cfg, data, job["run"], job["steps"], job["per_batch"]):
        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    # Run the imported module's main, so pickled batches name sim.model_worker.Batch
    # (the testbench's class), not __main__.Batch.
    from sim import model_worker

    model_worker.main()
