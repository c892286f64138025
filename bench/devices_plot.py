"""Test accuracy against update asymmetry on pulsed devices: plain MGD against
Tiki-Taka, weight and node perturbation (docs/devices.md, "Asymmetric crosspoint
devices").

Reads the ``results.csv`` of the sweeps that docs/devices.md lists, all under one
folder ROOT:

- ``ROOT/<mode>_<optimizer>/``: a sweep over ``nonideal.asymmetry`` (mode ``weight``
  or ``node``, optimizer ``sgd`` or ``tiki_taka``);
- ``ROOT/<mode>_off/``: the same config with ``nonideal.device = "none"`` (the float
  reference line), optional.

``--field`` groups by another swept column instead of ``nonideal.asymmetry`` (e.g.
``nonideal.up_down``), and ``--prefix P`` reads ``ROOT/P<mode>_<optimizer>/`` (the
zero-shift sweeps of docs/devices.md).

Prints a Markdown table of the median final (and best) test accuracy over the runs
of every point and writes the figure (medians, with a band from the lowest to the
highest run).

Run: ``python bench/devices_plot.py ROOT [--out FILE.png] [--field F] [--prefix P]``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

MODES = ("weight", "node")
OPTIMIZERS = {"sgd": "plain MGD (sgd)", "tiki_taka": "Tiki-Taka"}


FIELD = "nonideal.asymmetry"


def read_results(folder: Path, field: str = FIELD) -> dict[str, list[dict[str, str]]]:
    """The ok rows of a sweep's results.csv, grouped by their ``field`` value text
    ("off" when the sweep has no such column)."""
    path = folder / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no sweep results at {path}")
    rows: dict[str, list[dict[str, str]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["status"] == "ok":
                rows.setdefault(row.get(field, "off"), []).append(row)
    return rows


def medians(rows: list[dict[str, str]]) -> tuple[float, float, float, float, int]:
    """Median final, lowest final, highest final, median best test accuracy, runs."""
    final = [float(r["final_test_acc"]) for r in rows]
    best = [float(r["best_test_acc"]) for r in rows]
    return (statistics.median(final), min(final), max(final), statistics.median(best),
            len(final))


def main(argv: list[str] | None = None) -> int:
    """Print the table and write the figure; 2 on a missing sweep."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="folder holding the sweeps' folders")
    p.add_argument("--out", type=Path, default=None, help="figure (default ROOT/devices.png)")
    p.add_argument("--field", default=FIELD, help=f"the swept column (default {FIELD})")
    p.add_argument("--prefix", default="", help="the sweeps' folder name prefix")
    args = p.parse_args(argv)
    try:
        table = {
            (mode, opt): read_results(args.root / f"{args.prefix}{mode}_{opt}", args.field)
            for mode in MODES for opt in OPTIMIZERS
        }
    except FileNotFoundError as e:
        print(f"devices_plot: error: {e}", file=sys.stderr)
        return 2
    off = {}
    for mode in MODES:
        folder = args.root / f"{mode}_off"
        if (folder / "results.csv").is_file():
            off[mode] = medians(read_results(folder)["off"])

    column = args.field.rsplit(".", 1)[-1]
    print(f"| perturbation | {column} | plain MGD: median final (best) | "
          "Tiki-Taka: median final (best) | runs |")
    print("| --- | --- | --- | --- | --- |")
    for mode in MODES:
        if mode in off:
            m = off[mode]
            print(f"| {mode} | device off (float) | {m[0]:.3f} ({m[3]:.3f}) | - | {m[4]} |")
        levels = sorted(table[(mode, "sgd")], key=float)
        for level in levels:
            cells = []
            runs = []
            for opt in OPTIMIZERS:
                rows = table[(mode, opt)].get(level)
                if rows:
                    m = medians(rows)
                    cells.append(f"{m[0]:.3f} ({m[3]:.3f})")
                    runs.append(str(m[4]))
                else:
                    cells.append("-")
            print(f"| {mode} | {level} | {cells[0]} | {cells[1]} | {'/'.join(runs)} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        for opt, label in OPTIMIZERS.items():
            groups = table[(mode, opt)]
            xs = sorted(groups, key=float)
            stats = [medians(groups[x]) for x in xs]
            xv = [float(x) for x in xs]
            line, = ax.plot(xv, [s[0] for s in stats], "o-", label=label)
            ax.fill_between(xv, [s[1] for s in stats], [s[2] for s in stats],
                            color=line.get_color(), alpha=0.2)
        if mode in off:
            ax.axhline(off[mode][0], color="gray", ls="--", label="device off (float)")
        ax.set_title(f"{mode} perturbation")
        ax.set_xlabel("nonideal.asymmetry (soft-bounds slope gamma)" if args.field == FIELD
                      else args.field)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("final test accuracy (median, min-max)")
    axes[0].set_ylim(0, 1)
    axes[1].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out = args.out or args.root / "devices.png"
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
