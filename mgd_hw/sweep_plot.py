"""``sweep.png``: final test accuracy against the first swept field, one line per
combination of the other swept fields, the median over runs with a min-max band."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def plot_sweep(path: Path, grid: list[tuple[str, list[str]]], table: list[dict[str, Any]],
               title: str = "") -> bool:
    """Write the figure; False (nothing written) when no task has finished yet."""
    ok = [r for r in table if r["status"] == "ok"]
    if not ok:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first, xs = grid[0]
    others = [f for f, _ in grid[1:]]
    numeric = all(_number(v) is not None for v in xs)
    # numbers on their own axis (log when they span a factor 10 or more), else categories
    pos = {v: (_number(v) if numeric else i) for i, v in enumerate(xs)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    combos = sorted({tuple(r[f] for f in others) for r in ok},
                    key=lambda c: [next(vs.index(x) for g, vs in grid if g == f)
                                   for f, x in zip(others, c, strict=True)])
    for combo in combos:
        x, med, lo, hi = [], [], [], []
        for v in xs:
            accs = [float(r["final_test_acc"]) for r in ok if r[first] == v
                    and tuple(r[f] for f in others) == combo]
            if accs:
                x.append(pos[v])
                med.append(float(np.median(accs)))
                lo.append(min(accs))
                hi.append(max(accs))
        label = ", ".join(f"{f}={c}" for f, c in zip(others, combo, strict=True))
        label = label or "median over runs"
        (line,) = ax.plot(x, med, marker="o", label=label)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    if numeric:
        vals = [pos[v] for v in xs]
        if min(vals) > 0 and max(vals) / min(vals) >= 10:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xs)), xs)
    ax.set(xlabel=first, ylabel="final test accuracy", ylim=(0, 1.02))
    runs = max(int(r["run"]) for r in ok) + 1
    ax.set_title(title or f"median over runs (band: min-max), up to {runs} run(s) a point")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
