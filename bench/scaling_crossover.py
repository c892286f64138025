"""The crossover across widths (docs/scaling.md): hardware MGD's projected time to a
target accuracy against the best tuned CPU backprop time at each hidden width.

    python bench/scaling_crossover.py --sweep node=out/scaling_node \\
        --sweep weight=out/scaling_weight --sweep weight=out/scaling_weight2

Each --sweep is a finished ``mgd-hw sweep`` of the float model over network.hidden
(mode=its folder); the code is mgd_hw/crossover.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from golden_model.config import ConfigError
from mgd_hw import crossover

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", action="append", default=[], metavar="MODE=DIR",
                   help="a finished sweep folder of MGD mode weight or node (repeat; "
                   "folders of one mode and config merge)")
    p.add_argument("--target", type=float, default=0.9, help="test accuracy (default 0.9)")
    p.add_argument("--fmax", type=float, default=50.0, help="MHz assumed where no Fmax is "
                   "measured (default 50)")
    p.add_argument("--grid", choices=("quick", "full"), default="quick",
                   help="the backprop grid (mgd_hw/backprop_grid.py; default quick)")
    p.add_argument("--widths", help="only these widths, e.g. 16,64 (default: all the "
                   "sweeps share)")
    p.add_argument("--examples", default=str(EXAMPLES), help="folder of the trainer "
                   "examples hw_digits.toml and hw_digits_node.toml")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    try:
        sweeps = {}
        for spec in args.sweep:
            mode, sep, folder = spec.partition("=")
            if not sep or not folder:
                raise crossover.CrossoverError(f"--sweep takes MODE=DIR, not {spec!r}")
            sweeps.setdefault(mode, []).append(Path(folder))
        if not 0 < args.target <= 1:
            raise crossover.CrossoverError(f"--target must be in (0, 1], not {args.target}")
        widths = None
        if args.widths:
            try:
                widths = [int(w) for w in args.widths.split(",")]
            except ValueError:
                raise crossover.CrossoverError(
                    f"--widths takes widths like 16,64, not {args.widths!r}") from None

        def progress(msg: str) -> None:
            print(f"scaling_crossover: {msg}", file=sys.stderr, flush=True)

        rows = crossover.crossover(sweeps, Path(args.examples), args.target, args.fmax,
                                   args.grid, widths, progress=progress)
    except (crossover.CrossoverError, ConfigError, OSError) as exc:
        print(f"scaling_crossover: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
    else:
        print(crossover.format_table(rows, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
