"""Test accuracy against neuron stochasticity, from ``mgd-hw sweep`` results.

Reads the ``results.csv`` of sweeps over ``nonideal.neuron_std`` (Gaussian neuron
noise) and ``mgd.dtheta``, and optionally of sweeps of one other neuron kind
(Bernoulli, device) over ``mgd.dtheta``; prints Markdown tables of the medians over
runs and draws one figure (docs/devices.md):

    python bench/neuron_plot.py --sweep node=out/neurons_node/results.csv \\
        --sweep weight=out/neurons_weight/results.csv \\
        --kind "node, Bernoulli=out/neurons_node_bernoulli/results.csv" \\
        --kind "node, device=out/neurons_node_device/results.csv" \\
        --out docs/img/neurons_accuracy.png
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

# Where the other kinds sit on the std axis: the largest std of their output.
KIND_STD = {"bernoulli": 0.5, "device": 0.4}


def _rows(paths: str) -> list[dict[str, str]]:
    """The finished runs of one or more results.csv (comma-separated)."""
    rows = []
    for path in paths.split(","):
        with Path(path).open(newline="") as f:
            rows += [r for r in csv.DictReader(f) if r["status"] == "ok"]
    return rows


def _group(rows, keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(float(r[k]) for k in keys)].append(r)
    return dict(sorted(out.items()))


def _steps(runs, col: str) -> str:
    vals = [int(r[col]) for r in runs if r[col]]
    if len(vals) * 2 <= len(runs):  # the median run never got there
        return f"never ({len(vals)}/{len(runs)})"
    padded = sorted(vals) + [np.inf] * (len(runs) - len(vals))
    return f"{int(np.median(padded)):,} ({len(vals)}/{len(runs)})"


def _summary(runs) -> tuple[float, float, float, float]:
    final = np.array([float(r["final_test_acc"]) for r in runs])
    best = np.array([float(r["best_test_acc"]) for r in runs])
    return float(np.median(final)), float(final.min()), float(final.max()), float(
        np.median(best))


def table_std(label: str, path: str) -> dict[float, list]:
    """Print the table of a neuron_std x dtheta sweep; return its groups by dtheta."""
    groups = _group(_rows(path), ["mgd.dtheta", "nonideal.neuron_std"])
    print(f"\n{label} perturbation, Gaussian neuron noise ({path})\n")
    print("| Delta-theta | neuron std | median final test acc (min-max) | median best | "
          "steps to 90% | runs |")
    print("| --- | --- | --- | --- | --- | --- |")
    by_dtheta: dict[float, list] = defaultdict(list)
    for (dt, std), runs in groups.items():
        med, lo, hi, best = _summary(runs)
        print(f"| {dt:g} | {std:g} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {best:.3f} | "
              f"{_steps(runs, 'steps_to_0.9')} | {len(runs)} |")
        by_dtheta[dt].append((std, med, lo, hi))
    return by_dtheta


def table_kind(label: str, path: str) -> dict[float, tuple]:
    groups = _group(_rows(path), ["mgd.dtheta"])
    print(f"\n{label} neurons ({path})\n")
    print("| Delta-theta | median final test acc (min-max) | median best | steps to 90% | "
          "runs |")
    print("| --- | --- | --- | --- | --- |")
    out = {}
    for (dt,), runs in groups.items():
        med, lo, hi, best = _summary(runs)
        print(f"| {dt:g} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {best:.3f} | "
              f"{_steps(runs, 'steps_to_0.9')} | {len(runs)} |")
        out[dt] = (med, lo, hi)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sweep", action="append", default=[], metavar="LABEL=CSV[,CSV]",
                   help="neuron_std x dtheta sweeps' results.csv (LABEL: the mode)")
    p.add_argument("--kind", action="append", default=[], metavar="MODE, KIND=CSV[,CSV]",
                   help="dtheta sweeps of one other neuron kind")
    p.add_argument("--out", help="PNG to write")
    args = p.parse_args()
    curves = {lab: table_std(lab, path) for lab, path in (s.split("=", 1) for s in args.sweep)}
    kinds = {lab: table_kind(lab, path) for lab, path in (s.split("=", 1) for s in args.kind)}
    if not args.out:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False)
    for ax, (label, by_dt) in zip(axes[0], curves.items(), strict=True):
        dts = sorted(set(by_dt).union(*(r for lab, r in kinds.items()
                                        if lab.split(",")[0].strip() == label)))
        for dt, pts in sorted(by_dt.items()):
            i = dts.index(dt)
            std, med, lo, hi = (np.array(v) for v in zip(*sorted(pts), strict=True))
            ax.errorbar(std, med, yerr=[med - lo, hi - med], marker="o", capsize=3,
                        color=f"C{i}", label=f"Gaussian, Delta-theta {dt:g}")
        # the other kinds, drawn at the largest std of their output (a Bernoulli
        # neuron's is 0.5, the synthetic device's about 0.8 * 0.5)
        for j, (klabel, res) in enumerate(kinds.items()):
            mode, kind = (t.strip() for t in klabel.split(",", 1))
            if mode != label:
                continue
            xpos = KIND_STD.get(kind.lower(), 0.5)
            for dt, (med, lo, hi) in sorted(res.items()):
                i = dts.index(dt)
                ax.errorbar([xpos], [med], yerr=[[med - lo], [hi - med]], color=f"C{i}",
                            marker=["s", "^", "D"][j % 3], capsize=3, ls="none",
                            label=f"{kind} neurons (at x = {xpos:g}), Delta-theta {dt:g}")
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(-1e-4, 0.8)
        ax.set_xlabel("neuron noise std (0 = deterministic)")
        ax.set_ylabel("median final test accuracy")
        ax.set_title(f"digits 64-16-10, {label} perturbation")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"\nplot in {args.out}")


if __name__ == "__main__":
    main()
