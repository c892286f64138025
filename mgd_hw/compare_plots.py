"""The figures of ``mgd-hw compare`` (matplotlib, Agg backend): accuracy and cost of
the float twin, the fixed-point model and its high-precision twin; the parameter error
and the updates below one LSB; test accuracy against a swept width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COLORS = {"float": "tab:orange", "fixed": "tab:blue", "wide": "tab:green"}
LABELS = {"float": "float twin", "fixed": "fixed point", "wide": "high-precision twin"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _steps(result: dict[str, Any]) -> np.ndarray:
    # Evaluations are evenly spaced (eval_every): linear step axes show them evenly.
    return np.array(result["curves"]["steps"], dtype=float)


def plot_curves(path: Path, result: dict[str, Any]) -> None:
    """Test accuracy and training cost against steps, median over runs (runs faint)."""
    plt = _pyplot()
    s = result["summary"]
    x = _steps(result)
    fig, (ax_acc, ax_cost) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("float", "wide", "fixed"):
        curves = result["curves"][name]
        for metric, ax in (("test_acc", ax_acc), ("cost", ax_cost)):
            v = np.array(curves[metric], dtype=float)
            if v.shape[1] > 1:
                ax.plot(x, v, color=COLORS[name], alpha=0.12, lw=0.7)
            ax.plot(x, np.median(v, axis=1), color=COLORS[name], lw=2, label=LABELS[name],
                    ls="--" if name == "wide" else "-")
    ax_acc.set(xlabel="MGD steps", ylabel="test accuracy", ylim=(0, 1.02))
    ax_cost.set(yscale="log", xlabel="MGD steps",
                ylabel="training cost (mean squared error)")
    for ax in (ax_acc, ax_cost):
        ax.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    fig.suptitle(f"{s['task']} {'-'.join(map(str, s['network']))}: median of "
                 f"{s['runs']} run(s), seed {s['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_param_error(path: Path, result: dict[str, Any]) -> None:
    """|theta_fixed - theta_wide| (RMS and max, real units) beside the twin's distance
    from its initial parameters, and the share of parameter updates below one LSB per
    evaluation interval."""
    plt = _pyplot()
    pe = result["param_error"]
    x = _steps(result)
    fig, (ax_err, ax_lsb) = plt.subplots(1, 2, figsize=(11, 4))
    for key, color in (("rms", "tab:blue"), ("max", "tab:red")):
        v = np.array(pe[key], dtype=float)
        if v.shape[1] > 1:
            ax_err.plot(x, v, color=color, alpha=0.12, lw=0.7)
        ax_err.plot(x, np.median(v, axis=1), color=color, lw=2, label=f"{key} (median)")
    moved = np.median(np.array(pe["moved_rms"], dtype=float), axis=1)
    ax_err.plot(x, moved, color="gray", ls="--", lw=1.5,
                label="twin's rms distance from theta_0")
    ax_err.set(xlabel="MGD steps", ylim=(0, None),
               ylabel="|theta fixed - theta high-precision| (real units)")
    ax_err.axhline(pe["theta_lsb"], color="black", ls=":", lw=1,
                   label=f"one theta LSB = {pe['theta_lsb']:.2g}")
    ax_err.legend(loc="upper left")
    sub = result["numerics"]["sub_lsb"]
    frac = np.array([np.nan if v is None else v for v in sub["interval_fraction"]], float)
    nz = np.array([np.nan if v is None else v for v in sub["interval_of_nonzero"]], float)
    ax_lsb.plot(x[1:], 100 * frac, color="tab:purple", lw=2, label="of all parameters")
    ax_lsb.plot(x[1:], 100 * nz, color="tab:purple", lw=1, ls="--",
                label="of those with G != 0")
    ax_lsb.set(xlabel="MGD steps (evaluation interval ending there)",
               ylabel="updates below one LSB (%)", ylim=(0, None))
    ax_lsb.legend(loc="upper left")
    for ax in (ax_err, ax_lsb):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_widths(path: Path, result: dict[str, Any]) -> None:
    """Final and best test accuracy (median over runs) against each swept width."""
    plt = _pyplot()
    sweeps = result["widths"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 4), squeeze=False)
    flt = result["summary"]["float"]["median_final_test_acc"]
    for ax, w in zip(axes[0], sweeps, strict=True):
        bits = [p["bits"] for p in w["points"]]
        for p in w["points"]:
            ax.plot([p["bits"]] * len(p["final_test_acc"]), p["final_test_acc"], "o",
                    color="tab:blue", alpha=0.25, ms=4)
        ax.plot(bits, [p["median_final_test_acc"] for p in w["points"]], "o-",
                color="tab:blue", lw=2, label="final (median)")
        ax.plot(bits, [p["median_max_test_acc"] for p in w["points"]], "s--",
                color="tab:cyan", lw=1, label="best (median)")
        ax.axvline(w["config_bits"], color="gray", ls=":", label="the config's width")
        if w["steps"] == result["summary"]["steps"]:
            ax.axhline(flt, color="tab:orange", ls="--", lw=1, label="float twin (final)")
        ax.set(xlabel=f"hw.{w['field']}", ylabel="test accuracy", ylim=(0, 1.02),
               title=f"{w['runs']} run(s), {w['steps']:,} steps")
        ax.set_xticks(bits)
        ax.grid(alpha=0.3)
    # one legend under the panels: inside one it covered the points
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = min(len(labels), 2 * len(sweeps))
    rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
