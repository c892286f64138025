"""Files a training run leaves in its output folder: metrics.json, metrics.csv, and a
PNG of accuracy and cost against steps for MGD and the backprop baseline."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from golden_model.config import MGDConfig
from golden_model.train import RunResult

OUTPUT_FILES = ("metrics.json", "metrics.csv", "curves.png")


def _median_steps(steps: list[int | None]) -> int | None:
    """Median over runs, counting a run that never got there as infinitely late."""
    vals = np.array([np.inf if s is None else s for s in steps], dtype=float)
    med = float(np.median(vals))
    return None if not np.isfinite(med) else int(med)


def summarize(result: RunResult, targets: tuple[float, ...] = (0.9, 0.95)) -> dict[str, Any]:
    """Headline figures of one trainer over its R runs: accuracies and costs are medians
    over the runs (their keys say so); ``solved_runs`` counts the runs that reached 100%
    training accuracy."""
    h = result.history
    test = h.array("test_acc")
    train = h.array("train_acc")
    out: dict[str, Any] = {
        "unit": result.unit,
        "runs": int(test.shape[1]),
        "median_final_test_acc": float(np.median(test[-1])),
        "median_max_test_acc": float(np.median(test.max(axis=0))),
        "median_final_cost": float(np.median(h.array("cost")[-1])),
        "solved_runs": int(np.count_nonzero((train >= 1.0).any(axis=0))),
        "seconds": round(result.seconds, 3),
    }
    for t in targets:
        firsts = h.first_step_reaching(t)
        out[f"{result.unit}_to_{round(t * 100)}pct"] = _median_steps(firsts)
        out[f"runs_reaching_{round(t * 100)}pct"] = sum(s is not None for s in firsts)
    if result.method == "mgd":
        out["weight_saturations"] = result.saturations
    return out


def check_output_folder(out: Path, force: bool) -> None:
    """Refuse to overwrite earlier results unless asked to; fail before any training."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out '{out}' is a file, not a folder")
    existing = [f for f in OUTPUT_FILES if (out / f).exists()]
    if existing and not force:
        raise FileExistsError(
            f"output folder '{out}' already holds results ({', '.join(existing)}); "
            "pass --force to overwrite them or choose another --out"
        )
    require_writable_folder(out)


def require_writable_folder(out: Path) -> None:
    """A bad ``--out`` fails before any work: a parent that is a file, or a folder that
    cannot be created or written (FileExistsError with one line). The check creates
    the missing folders and a probe file, and removes them again: nothing is left."""
    import tempfile

    missing = []
    parent = out
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    if parent != out and not parent.is_dir():
        raise FileExistsError(f"cannot create --out '{out}': '{parent}' is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise FileExistsError(
            f"cannot write to --out '{out}': {exc.strerror or exc}") from None
    finally:
        for folder in missing:  # deepest first: only the folders made here, all empty
            if folder.is_dir():
                folder.rmdir()


def write_outputs(
    out: Path, cfg: MGDConfig, results: list[RunResult], summary: dict[str, Any]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "summary": summary,
        "config": cfg.to_dict(),
        "history": {
            r.method: {
                "unit": r.unit,
                "steps": r.history.steps,
                "cost": r.history.array("cost").tolist(),
                "train_acc": r.history.array("train_acc").tolist(),
                "test_acc": r.history.array("test_acc").tolist(),
            }
            for r in results
        },
    }
    (out / "metrics.json").write_text(json.dumps(payload, indent=1))
    with (out / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "run", "unit", "step", "cost", "train_acc", "test_acc"])
        for r in results:
            h = r.history
            cost, tr, te = h.array("cost"), h.array("train_acc"), h.array("test_acc")
            for e, step in enumerate(h.steps):
                for run in range(cost.shape[1]):
                    w.writerow(
                        [r.method, run, r.unit, step, f"{cost[e, run]:.6g}", tr[e, run], te[e, run]]
                    )
    plot_curves(out / "curves.png", cfg, results)


def plot_curves(path: Path, cfg: MGDConfig, results: list[RunResult]) -> None:
    """Test accuracy and cost against MGD steps; backprop is placed at the MGD step with
    the same number of updates (updates x tau_theta)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_cost) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"mgd": "tab:blue", "backprop": "tab:orange"}
    for r in results:
        x = np.array(r.history.steps, dtype=float)
        label = f"MGD ({cfg.mgd.mode}, {cfg.mgd.perturbation})"
        if r.method == "backprop":
            x = x * cfg.mgd.tau_theta
            label = "backprop (x = updates x tau_theta)"
        for name, ax in (("test_acc", ax_acc), ("cost", ax_cost)):
            vals = r.history.array(name)
            if vals.shape[1] > 1:
                ax.plot(x, vals, color=colors[r.method], alpha=0.15, lw=0.8)
            ax.plot(x, np.median(vals, axis=1), color=colors[r.method], lw=2, label=label)
    # Step 0 (the initial weights) stays at x = 0: linear up to the first evaluation,
    # logarithmic beyond it.
    scale = {"mgd": 1, "backprop": cfg.mgd.tau_theta}
    first = min((s * scale[r.method] for r in results for s in r.history.steps if s > 0),
                default=1)
    for ax in (ax_acc, ax_cost):
        ax.set_xscale("symlog", linthresh=max(1, first))
        ax.set_xlim(left=0)
    ax_acc.set(xlabel="MGD steps", ylabel="test accuracy", ylim=(0, 1.02))
    ax_cost.set(yscale="log", xlabel="MGD steps", ylabel="training cost")
    runs = results[0].history.array("cost").shape[1]
    fig.suptitle(f"{cfg.task.name}: median of {runs} run(s), seed {cfg.seed}")
    ax_acc.legend(loc="lower right")
    ax_acc.grid(alpha=0.3)
    ax_cost.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
