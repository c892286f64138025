"""``mgd-hw sweep``: a config grid x runs on the task engine (Dask), resumable."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from golden_model.config import load_config, parse_assignment

from .cli_args import CLIError, positive


def add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train a grid of config points x runs as tasks on Dask (a local "
        "cluster, or a running scheduler); resumable",
        description="Train every point of the product of the --grid values, --runs runs "
        "each (run r at seed = config seed + r), as independent tasks on dask.distributed. "
        "The model is the bit-exact trainer model for a trainer config (hw.datapath = "
        "'mlp'), the float MGD model otherwise (--model to choose; backprop too). Writes "
        "DIR/points/*.json (one per finished task), DIR/results.csv and DIR/sweep.png; "
        "a rerun with the same --out runs only the tasks not finished yet.")
    p.add_argument("--config", metavar="FILE", required=True, help="TOML config file")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field for every point, e.g. --set steps=5000")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="sweep a config field, e.g. mgd.eta=0.5,1,2 or network.hidden=[8],[16] "
                   "(repeat for more fields: their product is swept)")
    p.add_argument("--runs", type=int, default=1, help="runs per point (default 1)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--targets", default="0.9,0.95", help="test accuracies whose first step "
                   "results.csv records (default 0.9,0.95)")
    p.add_argument("--model", default="auto", help="auto (default: bit-exact trainer model "
                   "when hw.datapath = 'mlp', else the float model), float, bitexact or "
                   "backprop (the float network trained by backprop with the config's "
                   "[backprop] section; its steps are samples seen: updates x batch)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. "
                   "tcp://host:8786 (default: a local cluster on this machine)")
    p.add_argument("--workers", type=int, default=2, help="local cluster worker processes, "
                   "one thread each (default 2; ignored with --scheduler)")
    p.add_argument("--chunk", default="auto", metavar="N|auto",
                   help="points per Dask task (default auto: about 0.5 s of work a task, "
                   "from the point times measured so far): shares Dask's per-task round "
                   "trip (5-30 ms) among short points; a group's results come back "
                   "together")
    p.add_argument("--force", action="store_true", help="replace a different sweep in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_sweep)


def parse_targets(text: str) -> list[float]:
    """``0.9,0.95`` -> [0.9, 0.95]; each in (0, 1]."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--targets takes accuracies like 0.9,0.95, not {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise CLIError(f"--targets takes accuracies in (0, 1] like 0.9,0.95, not {text!r}")
    return values


def parse_chunk(text: str) -> int | str:
    """``auto`` or a positive integer."""
    if text.strip() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise CLIError(f"--chunk must be a positive integer or auto, not {text!r}")
    return value


class _Progress:
    """One line per finished task when stderr is not a terminal; a tqdm bar (with a
    line for each failure) on a terminal; nothing when quiet."""

    def __init__(self, total: int, done: int, quiet: bool):
        self.total, self.n, self.quiet = total, done, quiet
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="sweep", unit="task")

    def __call__(self, task, value, error: str) -> None:
        self.n += 1
        if error:
            line = f"mgd-hw sweep: FAILED {task.label()}: {error}"
        else:
            acc = value["test_acc"]
            line = (f"[{self.n}/{self.total}] {task.label()}: final test acc {acc[-1]:.3f} "
                    f"(best {max(acc):.3f}), {value['seconds']:.1f} s")
        if self.quiet:
            if error:
                print(line, file=sys.stderr, flush=True)
            return
        if self.bar is not None:
            if error:
                self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import engine, sweep, sweep_store
    from .sweep_plot import plot_sweep

    positive("--runs", args.runs)
    positive("--workers", args.workers)
    chunk = parse_chunk(args.chunk)
    targets = parse_targets(args.targets)
    base = load_config(args.config, *(parse_assignment(s) for s in args.set))
    grid = sweep.parse_grid(args.grid)
    tasks = sweep.plan(base, grid, args.runs, args.model)
    out = Path(args.out)
    base_dict = base.to_dict()
    try:
        sweep_store.open_folder(out, sweep_store.identity(base_dict, grid, args.model),
                                args.force)
    except sweep_store.SweepMismatch as exc:
        raise CLIError(str(exc)) from None
    # the seed of run 0 of each point (the config's, or the point's when seed is swept)
    seed0 = {pt: sweep.point_config(base, pt).seed for pt in sweep.points(grid)}
    done = sweep_store.finished(out)
    todo = [t for t in tasks if t.key not in done]
    progress = _Progress(len(tasks), len(tasks) - len(todo), args.quiet)
    start = time.perf_counter()
    try:
        payloads = [(base_dict, t, args.model) for t in todo]
        for o in engine.run(sweep.run_task, payloads, workers=args.workers,
                            scheduler=args.scheduler, chunk=chunk):
            task = o.item[1]
            sweep_store.save(out, task, seed0[task.point] + task.run, o.value, o.error)
            progress(task, o.value, o.error)
    except ConnectionError as exc:
        raise CLIError(str(exc)) from None
    finally:
        progress.close()
        records = sweep_store.load_all(out)
        table = sweep_store.rows(tasks, records, targets)
        fields = [f for f, _ in grid]
        csv_path = sweep_store.write_csv(out, fields, table, targets)
        title = (f"{Path(args.config).stem}: final test accuracy, median over runs "
                 f"(band: min-max), {args.runs} run(s) a point")
        plotted = plot_sweep(out / "sweep.png", grid, table, title)
    failed = [r for r in table if r["status"] != "ok"]
    where = args.scheduler or f"a local cluster of {args.workers} worker(s)"
    print(f"sweep: {len(tasks)} tasks ({len(todo)} run now on {where} in "
          f"{time.perf_counter() - start:.1f} s, {len(tasks) - len(todo)} already finished)"
          + (f", {len(failed)} FAILED" if failed else "")
          + f"; results in {csv_path}" + (f" and {out / 'sweep.png'}" if plotted else ""))
    return 1 if failed else 0
