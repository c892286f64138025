"""``mgd-hw generate``, ``sim`` and ``synth``: one top of a config as Verilog, in
simulation against the bit-exact model, and through synthesis.

The ``--top`` names, their help text and each top's default come from the registry
(``gateware.tops``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gateware import tops
from golden_model.config import HW_DATAPATHS, MGDConfig
from golden_model.hw_spec import hw_spec

from .cli_args import (
    CLIError,
    add_config_flags,
    add_simulator_flag,
    check_simulator,
    config_from_args,
    one_of,
    positive,
)


def top_help(trainer_note: str = "") -> str:
    """``--top``'s help: the tops of each hw.datapath, its default marked."""
    groups = []
    for i, datapath in enumerate(HW_DATAPATHS):
        group = sorted(tops.tops_of(datapath), key=lambda t: not t.default)
        if not group:
            continue
        note = "default" if i == 0 else f"the default for hw.datapath {datapath!r}"
        if group[0].tier == "trainer":
            note += trainer_note
        groups.append(", ".join([f"{group[0].name} ({note})", *(t.name for t in group[1:])]))
    return "; ".join(groups)


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help="write Verilog and a JSON manifest for a config")
    add_config_flags(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--top", default=None, help=top_help())
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_generate)


def add_sim(sub) -> None:
    p = sub.add_parser("sim", help="build with Verilator or Icarus Verilog and compare "
                       "with the bit-exact model on every cycle (cocotb)")
    add_config_flags(p)
    p.add_argument("--top", default=None,
                   help=top_help(": a whole training run of --steps steps"))
    p.add_argument("--cycles", type=int, default=None, help="cycles to compare, blocks "
                   f"and core (default {tops.get('core').regress_cycles})")
    p.add_argument("--run", type=int, default=0, help="trainer: run index, the seed of "
                   "its initial weights and sample order is seed + run (default 0)")
    p.add_argument("--stim-seed", dest="stim_seed", type=int, default=1,
                   help="seed of the random stimulus (default 1)")
    p.add_argument("--waves", action="store_true", help="dump an FST waveform")
    add_simulator_flag(p)
    p.set_defaults(func=cmd_sim)


def add_synth(sub) -> None:
    from gateware.synth_devices import DEFAULT_DEVICE, TARGETS

    p = sub.add_parser("synth", help="LUT, FF, DSP, BRAM and Fmax estimates from Yosys and "
                       "nextpnr (needs the 'synth' extra)")
    add_config_flags(p)
    p.add_argument("--target", required=True, help=one_of(TARGETS))
    p.add_argument("--top", default=None, help=top_help())
    defaults = ", ".join(f"{d} for {t}" for t, d in DEFAULT_DEVICE.items())
    p.add_argument("--device", metavar="NAME[:PACKAGE]", help=f"nextpnr device (default "
                   f"{defaults}), e.g. 25k, up5k")
    p.add_argument("-o", "--output", metavar="DIR", help="also write synth.json and the "
                   "tool logs here")
    p.add_argument("--force", action="store_true", help="overwrite results in -o")
    fit = p.add_argument_group("fit search (trainer configs; docs/synthesis.md)")
    fit.add_argument("--fit", action="store_true", help="try the folds of hw.macs and "
                     "hw.mac_inputs from the most parallel to the least; stop at the "
                     "first that fits --device")
    fit.add_argument("--all", dest="fit_all", action="store_true",
                     help="with --fit: try every fold, do not stop at the first fit")
    fit.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="stop a synthesis (with --fit: each try) after this long "
                     "(default: no limit)")
    fit.add_argument("--no-estimate", dest="no_estimate", action="store_true",
                     help="with --fit: also try folds estimated far beyond the device")
    fit.add_argument("--record", metavar="FILE", help="merge the rows (without --fit: the "
                     "config's own fold) into this fit table (bench/synth_fits.json), under "
                     "the config's file name")
    p.set_defaults(func=cmd_synth)


def _top(args: argparse.Namespace, cfg: MGDConfig) -> tops.Top:
    """The ``--top`` record (default: the config's), or a one-line CLIError."""
    try:
        return tops.get(args.top or tops.default_top(cfg))
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def cmd_generate(args: argparse.Namespace) -> int:
    from gateware.generate import OutputError

    from . import api

    cfg = config_from_args(args)
    top = _top(args, cfg)
    hw_spec(cfg)  # before the output checks: a bad config is the first error
    data = api.load(cfg) if top.needs_data else None  # once: baked into the memories
    try:
        info = api.generate(cfg, data, Path(args.output), top=top.name, force=args.force)
    except (FileExistsError, OutputError) as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"wrote {info['verilog']} (module {info['module']}, {info['ports']} ports), "
            f"{info['manifest']} and the Verilator lint waivers {info['lint_waivers']}; "
            f"sha256 {info['sha256'][:16]}"
        )
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    top = _top(args, cfg)
    if top.tier == "trainer":
        if args.run < 0:
            raise CLIError(f"--run must be a run index >= 0, not {args.run}")
        hw_spec(cfg)
        check_simulator(args.simulator)
        return _sim_trainer(args, cfg)
    cycles = top.regress_cycles if args.cycles is None else args.cycles
    positive("--cycles", cycles)
    hw_spec(cfg)
    check_simulator(args.simulator)
    return _sim_block(args, cfg, top, cycles)


def _sim_block(args: argparse.Namespace, cfg: MGDConfig, top: tops.Top, cycles: int) -> int:
    """``mgd-hw sim`` of a block or the core: ``cycles`` cycles against the model."""
    from sim.runner import run_cocotb

    start = time.perf_counter()
    result = run_cocotb(cfg, top.name, cycles=cycles, stim_seed=args.stim_seed,
                        waves=args.waves, simulator=args.simulator)
    seconds = time.perf_counter() - start
    waves = f"; waves in {result.waves}" if result.waves else ""
    if args.json:
        print(json.dumps({
            "top": top.name, "simulator": args.simulator, "cycles": cycles,
            "stim_seed": args.stim_seed,
            "bit_exact": result.passed, "message": result.message,
            "build_dir": str(result.build_dir),
            "waves": str(result.waves) if result.waves else None,
            "seconds": round(seconds, 2),
        }))
    elif result.passed:
        print(f"{top.name} ({args.simulator}): bit-exact with the golden model on every "
              f"cycle of {cycles:,} (stimulus seed {args.stim_seed}; {seconds:.1f} s with "
              f"the build)" + waves)
    else:
        print(f"{top.name} ({args.simulator}): MISMATCH: {result.message} (build and logs "
              f"in {result.build_dir})" + waves)
    return 0 if result.passed else 1


def _sim_trainer(args: argparse.Namespace, cfg: MGDConfig) -> int:
    """``mgd-hw sim`` of a trainer config: a whole training run in RTL against the model."""
    from . import api

    if args.run < 0:
        raise CLIError(f"--run must be a run index >= 0, not {args.run}")
    res = api.rtl_run(cfg, api.load(cfg), run=args.run, waves=args.waves,
                      simulator=args.simulator)
    print(json.dumps(res.summary()) if args.json else res.describe())
    return 0 if res.passed else 1


def cmd_synth(args: argparse.Namespace) -> int:
    import tempfile

    from gateware.synth import SynthError, check_output, require_tools, run_synth, write_outputs
    from gateware.synth_report import format_table

    device = _device(args.target, args.device)
    cfg = config_from_args(args)
    top = _top(args, cfg).name
    hw_spec(cfg)
    for flag, given in (("--all", args.fit_all), ("--no-estimate", args.no_estimate)):
        if given and not args.fit:
            raise CLIError(f"{flag} belongs to the fit search: add --fit")
    if args.timeout is not None and args.timeout <= 0:
        raise CLIError(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    if args.fit or args.record:
        return _fit(args, cfg, top, device)
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
            result = run_synth(cfg, top, device, Path(tmp), progress, args.timeout)
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


def _device(target: str, device: str | None):
    """The nextpnr device of ``--target`` and ``--device``, or a one-line CLIError."""
    from gateware.synth import check_target, parse_device

    try:
        return parse_device(check_target(target), device)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _fit(args: argparse.Namespace, cfg: MGDConfig, top: str, device) -> int:
    """``mgd-hw synth --fit``: the fit search of ``gateware.synth_fit``."""
    import tempfile

    from gateware import synth_fits
    from gateware.synth import SynthError, require_tools, run_synth
    from gateware.synth_fit import current_setting, format_search, search

    flag = "--fit" if args.fit else "--record"
    if tops.get(top).tier != "trainer":
        raise CLIError(f"{flag} folds a trainer (hw.datapath 'mlp', --top trainer), "
                       f"not --top {top}")
    if args.output:
        raise CLIError(f"{flag} writes no -o folder; --record FILE keeps its rows")
    name = Path(args.config).stem if args.config else "config"
    record = Path(args.record) if args.record else None
    try:
        if record:
            synth_fits.load_fits(record)  # a file that is no fit table fails first
        require_tools(device.target)
    except (ValueError, OSError, SynthError) as exc:
        raise CLIError(str(exc)) from None

    def progress(message: str) -> None:
        if not (args.quiet or args.json):
            print(f"mgd-hw synth --fit: {message}", file=sys.stderr, flush=True)

    def synthesize(cfg_s: MGDConfig, timeout: float | None) -> dict:
        with tempfile.TemporaryDirectory(prefix="mgd_synth_") as tmp:
            return run_synth(cfg_s, top, device, Path(tmp), timeout=timeout)

    def on_row(row: dict) -> None:
        # Each finished try is kept at once (a long search can be stopped midway),
        # merged into the file as it is now (another search may have added rows).
        if record is not None:
            now = synth_fits.load_fits(record)
            synth_fits.record(now, name, row)
            synth_fits.save_fits(now, record)

    # --record alone: the config's own fold, one row.
    settings = None if args.fit else [current_setting(cfg)]
    rows = search(cfg, device, synthesize, timeout=args.timeout, every=args.fit_all,
                  use_estimate=not args.no_estimate, settings=settings,
                  progress=progress, on_row=on_row)
    if args.json:
        print(json.dumps({"config": name, "rows": rows}))
    else:
        what = "folds from the most parallel" if args.fit else "the config's fold"
        print(format_search(rows, f"{name} ({cfg.hw.pipeline}) on {device.part}: {what}"))
        if record:
            print(f"recorded {len(rows)} rows in {record}")
    return 0
