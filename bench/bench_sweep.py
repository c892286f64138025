"""Benchmark: the task engine of ``mgd-hw sweep`` (``mgd_hw.engine`` on Dask).

Issue 14's targets, every figure measured in this run:

- overhead: one 10k-step digits point (``examples/digits_weight.toml``, float model,
  ``sweep.run_task``) run directly in this process against the same task through the
  engine on a warm one-worker ``LocalCluster`` (submit, run, result back), the two
  interleaved ``--repeats`` times; ratio of the medians, target overhead < 5%. As the
  two runs differ in process as well, the engine's own share is also measured on the
  same run: the client's wall time minus the time the task measured in the worker. Dask
  starts its workers with one BLAS/OpenMP thread; the direct run is timed the same
  way (``threadpoolctl``), and also with this process's default BLAS threads, which
  on a loaded 2-core machine oversubscribe the cores and make the direct run SLOWER
  than the engine's (reported, not used for the ratio). The one-off costs a sweep pays
  once are reported apart: starting the local cluster and a worker's first task
  (imports, loading the data set, numba's cached kernels). Beside it, a sweep of 30
  such points (runs 0..29) direct one after another against the engine on one
  worker, where Dask's round trip overlaps the previous task's training, and the same
  sweep with ``CHUNK`` points to a Dask task (``mgd-hw sweep --chunk``), where the
  round trip is shared by the group;
- scaling: a handful of points (``--points`` tasks of ``--scale-steps`` steps each)
  on a warm local cluster of one worker and of two; ratio of the wall times, target
  >= 1.8x. The machine's load average before and after is printed: on a shared
  2-core machine other jobs take cores from the second worker.

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
        # a sweep of such points: the worker holds the next task while it runs one, so
        # the round trip overlaps the training
        batch = [payload(steps, run=r) for r in range(batch_n)]
        with threadpool_limits(1):
            batch_direct = _timed(lambda: [sweep.run_task(b) for b in batch])
        batch_engine = _timed(lambda: _through(client, batch))
        # the same sweep with CHUNK points to a Dask task (mgd-hw sweep --chunk)
        batch_chunked = _timed(lambda: _through(client, batch, chunk=CHUNK))
    d, e = statistics.median(direct), statistics.median(through)
    a = statistics.median(added)
    return {"steps": steps, "direct_s": round(d, 4), "engine_s": round(e, 4),
            "ratio": round(e / d, 4), "overhead_pct": round(100 * (e / d - 1), 2),
            "overhead_ms": round(1000 * (e - d), 1), "repeats": repeats,
            "noop_round_trip_ms": round(1000 * statistics.median(trip), 1),
            "noop_bare_dask_ms": round(1000 * statistics.median(bare), 1),
            "batch_points": batch_n, "batch_direct_s": round(batch_direct, 3),
            "batch_engine_s": round(batch_engine, 3),
            "batch_ratio": round(batch_engine / batch_direct, 4),
            "chunk": CHUNK, "batch_chunked_s": round(batch_chunked, 3),
            "batch_chunked_ratio": round(batch_chunked / batch_direct, 4),
            "added_ms": round(1000 * a, 1), "added_pct": round(100 * a / d, 2),
            "direct_default_threads_s": round(statistics.median(default), 4),
            "cluster_start_s": round(cluster_s, 2), "first_task_s": round(first_s, 2),
            "direct_all_s": [round(x, 4) for x in direct],
            "engine_all_s": [round(x, 4) for x in through]}


def scaling(points: int, steps: int) -> dict:
    items = [payload(steps, eta=str(1.0 + 0.5 * i)) for i in range(points)]
    out, busy = {}, {}
    for workers in (1, 2):
        with engine.connect(None, workers=workers) as client:
            _warm_all(client)
            start = time.perf_counter()
            values = _through(client, items)
            out[workers] = time.perf_counter() - start
            busy[workers] = sum(v["seconds"] for v in values)
    # concurrency: the tasks' own wall times over the batch's; 2.0 = two tasks at all
    # times. Tasks that each take longer on two workers than on one had no free core.
    return {"points": points, "steps": steps, "one_worker_s": round(out[1], 2),
            "two_workers_s": round(out[2], 2), "speedup": round(out[1] / out[2], 3),
            "task_s_one_worker": round(busy[1] / points, 3),
            "task_s_two_workers": round(busy[2] / points, 3),
            "concurrency_two_workers": round(busy[2] / out[2], 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and points")
    p.add_argument("--repeats", type=int, default=None, help="overhead repeats (default 9)")
    p.add_argument("--points", type=int, default=None, help="scaling tasks (default 8)")
    p.add_argument("--steps", type=int, default=10_000, help="steps of the overhead point")
    p.add_argument("--scale-steps", type=int, default=400_000,
                   help="steps per scaling task (default 400k, about 1 s each)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    points = args.points or (4 if args.quick else 8)
    load_before = os.getloadavg()
    res = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
           "overhead": overhead(repeats, args.steps, 10 if args.quick else 30),
           "scaling": scaling(points, args.scale_steps)}
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
    print(f"  a sweep of {o['batch_points']} such points on one worker: direct "
          f"{o['batch_direct_s']:.2f} s, through the engine {o['batch_engine_s']:.2f} s: "
          f"ratio {o['batch_ratio']:.3f}")
    print(f"  the same sweep with --chunk {o['chunk']} (points per Dask task): "
          f"{o['batch_chunked_s']:.2f} s: ratio {o['batch_chunked_ratio']:.3f} "
          f"(overhead {100 * (o['batch_chunked_ratio'] - 1):+.1f}% a point; target < 5%)")
    print(f"  direct with this process's default BLAS threads: "
          f"{o['direct_default_threads_s']:.3f} s")
    print(f"  once per sweep: local cluster start {o['cluster_start_s']:.2f} s, a worker's "
          f"first task {o['first_task_s']:.2f} s")
    print(f"scaling, {s['points']} points x {s['steps']:,} steps: one worker "
          f"{s['one_worker_s']:.2f} s, two workers {s['two_workers_s']:.2f} s: "
          f"{s['speedup']:.2f}x (target >= 1.8x)")
    print(f"  a task alone took {s['task_s_one_worker']:.2f} s on one worker, "
          f"{s['task_s_two_workers']:.2f} s on two (concurrency "
          f"{s['concurrency_two_workers']:.2f}: tasks in flight, averaged over the batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
