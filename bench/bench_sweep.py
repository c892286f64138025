"""Benchmark: the task engine of ``mgd-hw sweep`` (``mgd_hw.engine`` on Dask).

Issue 14's targets, every figure measured in this run:

- overhead on one point: one 10k-step digits point (``examples/digits_weight.toml``,
  float model, ``sweep.run_task``) run directly in this process against the same task
  through the engine on a warm one-worker ``LocalCluster`` (submit, run, result back),
  the two interleaved ``--repeats`` times; ratio of the medians. This is Dask's round
  trip on a task alone. The engine's own share is also measured on the same run: the
  client's wall time minus the time the task measured in the worker. Dask starts its
  workers with one BLAS/OpenMP thread; the direct run is timed the same way
  (``threadpoolctl``), and also with this process's default BLAS threads (reported,
  not used for the ratio). The one-off costs a sweep pays once are reported apart:
  starting the local cluster and a worker's first task (imports, loading the data
  set, numba's cached kernels);
- overhead a point in a sweep, the target (< 5%): ``--sweep-points`` such points
  (runs 0, 1, ...) one after another in this process against the engine on one
  worker, one point a Dask task, ``CHUNK`` points a task (``mgd-hw sweep --chunk``)
  and the group size the engine picks itself (``--chunk auto``, the default),
  interleaved ``--repeats`` times; the median of each repeat's ratio to the direct
  run;
- scaling: ``--points`` tasks of ``--scale-steps`` steps each on a warm local cluster
  of one worker and of two (a fresh cluster for each batch, in turn, three times);
  the median ratio of the wall times, target >= 1.8x. The machine's load average
  before and after is printed: on a shared 2-core machine other jobs take cores from
  the second worker.

Run: ``python bench/bench_sweep.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from golden_model.config import load_config
from mgd_hw import engine, sweep

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "digits_weight.toml"
CHUNK = 8  # points per Dask task in the chunked sweep


def payload(steps: int, eta: str = "5.0", run: int = 0) -> tuple:
    base = load_config(CONFIG, {"steps": steps, "eval_every": min(steps, 10_000)})
    return (base.to_dict(), sweep.Task((("mgd.eta", eta),), run), "auto")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _through(client, items, fn=sweep.run_task, chunk: int = 1) -> list:
    outs = list(engine.run(fn, items, client=client, chunk=chunk))
    bad = [o.error for o in outs if not o.ok]
    if bad:
        raise RuntimeError(bad[0])
    return [o.value for o in outs]


def noop(item):
    """A task that does nothing: the engine's own round trip."""
    return item


def _warm_all(client) -> None:
    """Every worker runs one short point first (imports, data, numba's cached code)."""
    client.run(sweep.run_task, payload(1000))


def overhead(repeats: int, steps: int, batch_n: int) -> dict:
    from threadpoolctl import threadpool_limits

    point = payload(steps)
    sweep.run_task(point)  # this process warm too
    start = time.perf_counter()
    with engine.connect(None, workers=1) as client:
        cluster_s = time.perf_counter() - start
        first_s = _timed(lambda: _through(client, [point]))
        direct, through, default, trip, added, bare = [], [], [], [], [], []
        for _ in range(repeats):
            trip.append(_timed(lambda: _through(client, [0], noop)))
            bare.append(_timed(lambda: client.submit(noop, 0, pure=False).result()))
            with threadpool_limits(1):
                direct.append(_timed(lambda: sweep.run_task(point)))
            start = time.perf_counter()
            [value] = _through(client, [point])
            through.append(time.perf_counter() - start)
            added.append(through[-1] - value["seconds"])
            default.append(_timed(lambda: sweep.run_task(point)))
        # a sweep of such points, direct and through the engine one point a task, CHUNK
        # points a task (mgd-hw sweep --chunk) and the size the engine picks itself
        # (--chunk auto, the default), interleaved and repeated: each is about a second
        batch = [payload(steps, run=r) for r in range(batch_n)]
        sweeps = {"direct": [], "one": [], "chunked": [], "auto": []}
        for _ in range(repeats):
            with threadpool_limits(1):
                sweeps["direct"].append(_timed(lambda: [sweep.run_task(b) for b in batch]))
            sweeps["one"].append(_timed(lambda: _through(client, batch)))
            sweeps["chunked"].append(_timed(lambda: _through(client, batch, chunk=CHUNK)))
            sweeps["auto"].append(_timed(lambda: _through(client, batch, chunk="auto")))
    d, e = statistics.median(direct), statistics.median(through)
    a = statistics.median(added)
    return {"steps": steps, "direct_s": round(d, 4), "engine_s": round(e, 4),
            "ratio": round(e / d, 4), "overhead_pct": round(100 * (e / d - 1), 2),
            "overhead_ms": round(1000 * (e - d), 1), "repeats": repeats,
            "noop_round_trip_ms": round(1000 * statistics.median(trip), 1),
            "noop_bare_dask_ms": round(1000 * statistics.median(bare), 1),
            "batch_points": batch_n, "chunk": CHUNK, **_sweep_figures(sweeps),
            "added_ms": round(1000 * a, 1), "added_pct": round(100 * a / d, 2),
            "direct_default_threads_s": round(statistics.median(default), 4),
            "cluster_start_s": round(cluster_s, 2), "first_task_s": round(first_s, 2),
            "direct_all_s": [round(x, 4) for x in direct],
            "engine_all_s": [round(x, 4) for x in through]}


def _sweep_figures(sweeps: dict[str, list[float]]) -> dict:
    """Median wall time of each way to run the sweep, and the median of its ratios to
    the direct run of the same repeat."""
    out = {}
    for name, times in sweeps.items():
        out[f"batch_{name}_s"] = round(statistics.median(times), 3)
        if name != "direct":
            ratios = [t / d for t, d in zip(times, sweeps["direct"], strict=True)]
            out[f"batch_{name}_ratio"] = round(statistics.median(ratios), 4)
            out[f"batch_{name}_ratios"] = [round(r, 3) for r in ratios]
    return out


def scaling(points: int, steps: int, repeats: int) -> dict:
    items = [payload(steps, eta=str(1.0 + 0.5 * i)) for i in range(points)]
    walls: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    # a fresh cluster for each batch, one worker and two in turn, so a slow spell of
    # the machine falls on both
    for _ in range(repeats):
        for workers in (1, 2):
            with engine.connect(None, workers=workers) as client:
                _warm_all(client)
                start = time.perf_counter()
                values = _through(client, items, chunk=1)
                walls[workers].append(time.perf_counter() - start)
                busy[workers].append(sum(v["seconds"] for v in values))
    speedups = [one / two for one, two in zip(walls[1], walls[2], strict=True)]
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    # concurrency: the tasks' own wall times over the batch's; 2.0 = two tasks at all
    # times. Tasks that each take longer on two workers than on one had no free core.
    return {"points": points, "steps": steps, "repeats": repeats,
            "one_worker_s": round(one, 2), "two_workers_s": round(two, 2),
            "speedup": round(statistics.median(speedups), 3),
            "speedups": [round(x, 3) for x in speedups],
            "task_s_one_worker": round(statistics.median(busy[1]) / points, 3),
            "task_s_two_workers": round(statistics.median(busy[2]) / points, 3),
            "concurrency_two_workers": round(statistics.median(
                b / w for b, w in zip(busy[2], walls[2], strict=True)), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and points")
    p.add_argument("--repeats", type=int, default=None, help="overhead repeats (default 9)")
    p.add_argument("--points", type=int, default=None, help="scaling tasks (default 8)")
    p.add_argument("--steps", type=int, default=10_000, help="steps of the overhead point")
    p.add_argument("--scale-steps", type=int, default=1_000_000,
                   help="steps per scaling task (default 1M, about 1 s each)")
    p.add_argument("--sweep-points", type=int, default=None,
                   help="points of the overhead sweep (default 60)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    points = args.points or (4 if args.quick else 8)
    load_before = os.getloadavg()
    res = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
           "overhead": overhead(repeats, args.steps,
                                args.sweep_points or (30 if args.quick else 60)),
           "scaling": scaling(points, args.scale_steps, 1 if args.quick else 3)}
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(res))
        return 0
    o, s = res["overhead"], res["scaling"]
    print(f"machine: {res['cpus']} CPUs, load average {res['load_before'][0]:.2f} before, "
          f"{res['load_after'][0]:.2f} after (1 min)")
    print(f"overhead, {o['steps']:,}-step digits point: direct {o['direct_s']:.3f} s, through "
          f"the engine {o['engine_s']:.3f} s (medians of {o['repeats']}, one BLAS thread "
          f"both): ratio {o['ratio']:.3f}, overhead {o['overhead_pct']:+.1f}% "
          f"({o['overhead_ms']:+.1f} ms a task; target < 5%)")
    print(f"  the engine's added time (the client's wall time minus the task's own time in "
          f"the worker, same run): {o['added_ms']:.1f} ms, {o['added_pct']:.1f}% of the "
          f"direct run")
    print(f"  the engine's round trip for a task that does nothing: "
          f"{o['noop_round_trip_ms']:.1f} ms (bare Dask submit/result: "
          f"{o['noop_bare_dask_ms']:.1f} ms)")
    print(f"  a sweep of {o['batch_points']} such points on one worker (medians of "
          f"{o['repeats']}): direct {o['batch_direct_s']:.2f} s; through the engine one "
          f"point a task {o['batch_one_s']:.2f} s: ratio {o['batch_one_ratio']:.3f}")
    for name, label in (("chunked", f"--chunk {o['chunk']} (points per Dask task)"),
                        ("auto", "--chunk auto (the default)")):
        ratio = o[f"batch_{name}_ratio"]
        print(f"  the same sweep with {label}: {o[f'batch_{name}_s']:.2f} s: ratio "
              f"{ratio:.3f} (overhead {100 * (ratio - 1):+.1f}% a point; target < 5%; "
              f"each repeat: {', '.join(f'{r:.3f}' for r in o[f'batch_{name}_ratios'])})")
    print(f"  direct with this process's default BLAS threads: "
          f"{o['direct_default_threads_s']:.3f} s")
    print(f"  once per sweep: local cluster start {o['cluster_start_s']:.2f} s, a worker's "
          f"first task {o['first_task_s']:.2f} s")
    print(f"scaling, {s['points']} points x {s['steps']:,} steps (medians of "
          f"{s['repeats']}): one worker {s['one_worker_s']:.2f} s, two workers "
          f"{s['two_workers_s']:.2f} s: {s['speedup']:.2f}x (target >= 1.8x; each repeat: "
          f"{', '.join(f'{x:.2f}x' for x in s['speedups'])})")
    print(f"  a task alone took {s['task_s_one_worker']:.2f} s on one worker, "
          f"{s['task_s_two_workers']:.2f} s on two (concurrency "
          f"{s['concurrency_two_workers']:.2f}: tasks in flight, averaged over the batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
