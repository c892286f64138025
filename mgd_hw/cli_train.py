"""``mgd-hw train`` and ``mgd-hw gradcheck``: the float model on a task."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from golden_model.config import MODES, derive
from golden_model.dataset_user import check_data_fits
from golden_model.datasets import load_dataset

from .cli_args import CLIError, add_config_flags, config_from_args, fmt_steps


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train with MGD (float model) and the backprop baseline")
    add_config_flags(p)
    p.add_argument("--out", default="out/train", help="output folder (default out/train)")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.add_argument("--no-backprop", action="store_true", help="skip the backprop baseline")
    p.set_defaults(func=cmd_train)


def add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="cosine of the MGD gradient estimate with backprop's")
    add_config_flags(p)
    p.add_argument("--max-steps", type=int, default=100_000, help="longest integration")
    p.add_argument("--widths", metavar="H1,H2,...", help="instead of the config's network: "
                   "one hidden layer of each width, a table of the steps to --level against "
                   "the parameter and neuron counts, with a power-law fit per mode")
    p.add_argument("--level", type=float, default=0.95, help="the cosine --widths counts "
                   "the steps to (default 0.95)")
    p.set_defaults(func=cmd_gradcheck)


def parse_widths(text: str) -> list[int]:
    """``8,16,32`` -> [8, 16, 32]: positive integers, each once."""
    try:
        widths = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--widths takes hidden widths like 8,16,32, not {text!r}") from None
    if not widths or any(w < 1 for w in widths) or len(set(widths)) != len(widths):
        raise CLIError(f"--widths takes distinct positive widths like 8,16,32, not {text!r}")
    return widths


class _Progress:
    """A progress callback (step, metrics): a tqdm bar on a terminal, opened on the
    first call (so the backprop bar appears when backprop starts); when stderr is not
    a terminal (a log file), one plain line per evaluation instead of the bar's
    carriage-return updates; nothing when quiet."""

    def __init__(self, total: int, desc: str, quiet: bool):
        import sys

        self.total, self.desc, self.quiet = total, desc, quiet
        self.tty = sys.stderr.isatty()
        self.bar = None

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        import sys

        if self.quiet:
            return
        if not self.tty:
            print(f"{self.desc} {step:,}/{self.total:,}: cost {metrics['cost']:.4g}, test "
                  f"acc {metrics['test_acc']:.3f}", file=sys.stderr, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit="step", unit_scale=True,
                            leave=False)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(cost=f"{metrics['cost']:.4g}", acc=f"{metrics['test_acc']:.3f}")
        if step >= self.total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_train(args: argparse.Namespace) -> int:
    from golden_model.train import backprop_updates

    from . import api
    from .report import check_output_folder

    cfg = config_from_args(args)
    out = Path(args.out)
    try:
        check_output_folder(out, args.force)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    data = api.load(cfg)
    quiet = args.quiet or args.json
    mgd_bar = _Progress(cfg.steps, "MGD", quiet)
    bp_bar = _Progress(backprop_updates(cfg), "backprop", quiet)
    try:
        res = api.train_float(cfg, data, backprop=not args.no_backprop,
                              progress=mgd_bar, backprop_progress=bp_bar)
    finally:
        mgd_bar.close()
        bp_bar.close()
    res.summary = {**res.summary, "out": str(out)}
    res.write(out)
    print(json.dumps(res.summary) if args.json else _summary_line(res.summary))
    return 0


def _summary_line(s: dict[str, Any]) -> str:
    m = s["mgd"]
    net = "-".join(str(n) for n in s["network"])
    line = (
        f"{s['task']} {net} MGD {s['mode']}/{s['perturbation']}: test acc "
        f"{m['median_final_test_acc']:.3f} (max {m['median_max_test_acc']:.3f}), 90% at "
        f"{fmt_steps(m['steps_to_90pct'])} steps, 95% at {fmt_steps(m['steps_to_95pct'])}"
    )
    if s["runs"] > 1:
        line += f", solved {m['solved_runs']}/{s['runs']} runs (median over runs)"
    if "backprop" in s:
        b = s["backprop"]
        line += (
            f"; backprop {b['median_final_test_acc']:.3f} "
            f"(90% at {fmt_steps(b['updates_to_90pct'])}"
            f" updates, 95% at {fmt_steps(b['updates_to_95pct'])}"
        )
        line += f", solved {b['solved_runs']}/{s['runs']})" if s["runs"] > 1 else ")"
    return line + f"; results in {s['out']}"


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from golden_model.diagnostics import gradient_cosine, log_checkpoints

    cfg = config_from_args(args)
    if args.max_steps < 1:
        raise CLIError(f"--max-steps must be a positive integer, not {args.max_steps}")
    data = load_dataset(cfg.task, cfg.seed)
    check_data_fits(cfg.task, data)
    modes = [args.mode] if args.mode else list(MODES)
    if args.widths is not None:
        return _gradcheck_widths(args, cfg, data, modes)
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
        + ", ".join(f"{m} {fmt_steps(c.steps_to(0.95))}" for m, c in curves.items())
        + f" (median of {cfg.runs} runs, {cfg.task.name}, {cfg.mgd.perturbation} codes)"
    )
    return 0


def _gradcheck_widths(args: argparse.Namespace, cfg, data, modes: list[str]) -> int:
    from . import grad_scaling as gs

    widths = parse_widths(args.widths)
    if not 0 < args.level < 1:
        raise CLIError(f"--level must be a cosine in (0, 1), not {args.level}")
    for w in widths:  # every width's config valid before any runs
        gs.width_config(cfg, w, modes[0])
    points = gs.measure(cfg, data, widths, modes, args.level, args.max_steps)
    fits = [f for f in (gs.fit_power(points, m) for m in modes) if f is not None]
    if args.json:
        print(json.dumps(gs.to_dict(points, fits, args.level, cfg.runs)))
    else:
        print(gs.format_table(points, fits, args.level, cfg.runs))
    return 0
