"""The ``mgd-hw`` command line.

Subcommands: ``train`` (float MGD and backprop on a task), ``gradcheck`` (the
gradient diagnostic), ``generate`` (Verilog and a manifest for a config), ``sim``
(cocotb/Verilator against the bit-exact model: a block, the core or a whole trainer
run), ``regress`` (the regression matrix), ``synth`` (resource and Fmax estimates),
``compare`` (float vs fixed point vs RTL of a trainer config), ``time-to-train``,
``bench``, ``sweep`` (a config grid x runs on the Dask task engine) and ``device``
(stochastic switching devices for the neurons). Each command group lives in its own
module (``cli_train``, ``cli_hw``, ``cli_reports``, ``cli_sweep``, ``cli_device``; the
shared flags in ``cli_args``); each command's parser is built by one small function
there (:data:`COMMANDS`, in the order ``--help`` lists them).
Every bad input ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from golden_model.config import ConfigError
from golden_model.datasets import DataError
from golden_model.device_model import DeviceError

from . import cli_device, cli_hw, cli_reports, cli_sweep, cli_train
from .cli_args import CLIError

COMMANDS = (cli_train.add_train, cli_train.add_gradcheck, cli_hw.add_generate, cli_hw.add_sim,
            cli_reports.add_time_to_train, cli_reports.add_bench, cli_reports.add_regress,
            cli_hw.add_synth, cli_reports.add_compare, cli_sweep.add_sweep,
            cli_device.add_device)


def build_parser() -> argparse.ArgumentParser:
    """The parser: one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="mgd-hw",
        description="Multiplexed gradient descent: float model, bit-exact model, gateware.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, DeviceError, CLIError) as exc:
        print(f"mgd-hw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgd-hw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
