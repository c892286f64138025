"""Benchmark: the vectorized float MGD model against the plain per-step loop.

Both run in this process, in interleaved rounds (vectorized, loop, vectorized, ...),
and each side reports its best round: load from other processes can only slow a round
down, so the best rounds are the closest to the machine's own speed and the ratio
holds even on a noisy machine. Cases (issue: foundation, "Performance"):

1. XOR 2-2-1, an ensemble of 256 runs, tau_x = tau_p = tau_theta = 1: aggregate
   run-steps per second.
2. digits 64-32-10, tau_x = tau_theta = 100, tau_p = 1: steps per second of one run
   (a whole update window is one batched forward pass).

Memory: the peak traced allocation of the vectorized digits run at two lengths; it
must not grow with the number of steps (no per-step history).

Where numba imports, the vectorized model runs both cases in its compiled kernel
(golden_model/kernels.py); it is compiled (or loaded from numba's cache) once, before
the timed rounds, and the time that takes is printed. MGD_NUMBA=0 times the NumPy path.

Run: ``python bench/bench_model.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from golden_model.config import build_config
from golden_model.datasets import load_dataset
from golden_model.mgd import MGDEnsemble
from golden_model.reference import reference_run
from golden_model.train import initial_params, make_network


def _setup(task: str, runs: int, **mgd):
    cfg = build_config({"task": {"name": task}, "runs": runs, "mgd": mgd})
    data = load_dataset(cfg.task, cfg.seed)
    net = make_network(cfg, data)
    return cfg, data, net, initial_params(cfg, net)


ROUNDS = 5  # interleaved timing rounds per case


def _vectorized_round(cfg, data, net, theta0, steps: int):
    """A function timing ``steps`` more steps of one ensemble: run-steps per second."""
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0)
    engine.advance(min(steps, 100))  # warm-up: allocations, first code block

    def rate() -> float:
        start = time.perf_counter()
        engine.advance(steps)
        return theta0.shape[0] * steps / (time.perf_counter() - start)

    return rate


def _kernel_ready() -> dict:
    """Which path the engines take, and the seconds until the compiled kernel is ready
    (numba's compile, or its load from numba's cache), timed on a one-step XOR run
    before any case so that no case's timing includes it."""
    cfg, data, net, theta0 = _setup("xor", 1)
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0)
    if engine.kernel is None:
        return {"path": "numpy"}
    start = time.perf_counter()
    engine.advance(1)
    return {"path": "compiled", "kernel_ready_s": round(time.perf_counter() - start, 3)}


def _loop_rate(cfg, data, net, theta0, runs: int, steps: int) -> float:
    """Run-steps per second of the plain loop, over ``runs`` runs one after another."""
    start = time.perf_counter()
    for r in range(runs):
        reference_run(cfg, net, data.x_train, data.y_train, theta0[r], r, steps)
    return runs * steps / (time.perf_counter() - start)


def _best_rates(vectorized, loop) -> tuple[float, float]:
    """The best rate of each of two timing functions over ROUNDS interleaved rounds."""
    vec = slow = 0.0
    for _ in range(ROUNDS):
        vec = max(vec, vectorized())
        slow = max(slow, loop())
    return vec, slow


def _peak_bytes(cfg, data, net, theta0, steps: int) -> int:
    tracemalloc.start()
    engine = MGDEnsemble(cfg, net, data.x_train, data.y_train, theta0)
    engine.advance(steps)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run(quick: bool = False) -> dict:
    scale = 1 if quick else 4
    out: dict = {"kernel": _kernel_ready()}

    cfg, data, net, theta0 = _setup("xor", 256)
    vec, loop = _best_rates(
        _vectorized_round(cfg, data, net, theta0, 1000 * scale),
        lambda: _loop_rate(cfg, data, net, theta0, 2, 1000 * scale),
    )
    out["xor_ensemble_256"] = {
        "vectorized_run_steps_per_s": round(vec),
        "loop_run_steps_per_s": round(loop),
        "ratio": round(vec / loop, 1),
    }

    cfg, data, net, theta0 = _setup("digits", 1, tau_x=100, tau_theta=100)
    vec, loop = _best_rates(
        _vectorized_round(cfg, data, net, theta0, 20_000 * scale),
        lambda: _loop_rate(cfg, data, net, theta0, 1, 2_000 * scale),
    )
    out["digits_64_32_10_tau100"] = {
        "vectorized_steps_per_s": round(vec),
        "loop_steps_per_s": round(loop),
        "ratio": round(vec / loop, 1),
    }

    short, long = 10_000 * scale, 100_000 * scale
    peak_short = _peak_bytes(cfg, data, net, theta0, short)
    peak_long = _peak_bytes(cfg, data, net, theta0, long)
    out["digits_memory"] = {
        f"peak_bytes_{short}_steps": peak_short,
        f"peak_bytes_{long}_steps": peak_long,
        "ratio_long_over_short": round(peak_long / peak_short, 2),
        "parameters": net.n_params,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    res = run(args.quick)
    if args.json:
        print(json.dumps(res))
        return
    x, d, m = res["xor_ensemble_256"], res["digits_64_32_10_tau100"], res["digits_memory"]
    print(
        f"XOR ensemble of 256: vectorized {x['vectorized_run_steps_per_s']:,} run-steps/s, "
        f"plain loop {x['loop_run_steps_per_s']:,} -> {x['ratio']}x (target >= 20x)"
    )
    print(
        f"digits 64-32-10, tau_x = tau_theta = 100: vectorized {d['vectorized_steps_per_s']:,}"
        f" steps/s, plain loop {d['loop_steps_per_s']:,} -> {d['ratio']}x (target >= 20x)"
    )
    print(f"(best of {ROUNDS} interleaved rounds each)")
    k = res["kernel"]
    if k["path"] == "compiled":
        print(f"vectorized: compiled kernel (numba), ready after {k['kernel_ready_s']} s "
              "(compile, or load from numba's cache), before the timed rounds")
    else:
        print("vectorized: NumPy path (numba not importable, or MGD_NUMBA=0)")
    keys = [k for k in m if k.startswith("peak")]
    print(
        f"digits peak traced memory: {m[keys[0]] / 1e6:.2f} MB ({keys[0].split('_')[2]} steps)"
        f" vs {m[keys[1]] / 1e6:.2f} MB ({keys[1].split('_')[2]} steps): "
        f"x{m['ratio_long_over_short']} (no growth with steps; {m['parameters']} parameters)"
    )


if __name__ == "__main__":
    main()
