"""The plots of docs/scaling.md, from the study's outputs (the commands there).

    python bench/scaling_plots.py --sweep node=out/scaling_node \\
        --sweep weight=out/scaling_weight --sweep weight=out/scaling_weight2 \\
        --sweep backprop=out/scaling_backprop --gradcheck out/gradcheck.json \\
        --tau out/tau_theta --crossover out/crossover.json --out docs/img

Each input is optional; each figure is written when its inputs are given:
scaling_steps.png (median steps to 90% and 95% against the parameter count; for
backprop, at each width the grid setting with the fewest median samples to 90%),
scaling_cosine.png (steps to cosine 0.95 against what each mode perturbs, with the
fits), scaling_tau_theta.png (accuracy and steps to 90% against tau_theta) and
scaling_crossover.png (time to the target against the parameter count) and
scaling_tuned.png (``--tuned MODE=DIR``: MGD sweeps over width x ``mgd.eta``; the
steps to each target at each width's best eta, beside the fixed-eta ``--sweep``
medians when given). With ``--tables`` it also prints the doc's tables of the same
inputs (Markdown).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

TARGETS = ("0.9", "0.95")
INPUTS = {"digits": 64, "mnist": 784, "fashion_mnist": 784}  # inputs of the 64-h-10 nets


def read_rows(folders: list[Path]) -> list[dict[str, str]]:
    """The finished rows of sweeps; ``network.hidden``, ``backprop.batch_size`` and
    ``backprop.lr`` filled in from the sweep's config when the sweep did not sweep
    them, and ``n_inputs`` from its task."""
    rows: list[dict[str, str]] = []
    for folder in folders:
        config = json.loads((folder / "sweep.json").read_text())["config"]
        base = {"network.hidden": json.dumps(config["network"]["hidden"]),
                "backprop.batch_size": str(config["backprop"]["batch_size"]),
                "backprop.lr": str(config["backprop"]["lr"]),
                "n_inputs": str(INPUTS.get(config["task"]["name"], 64))}
        with (folder / "results.csv").open() as f:
            rows += [base | r for r in csv.DictReader(f) if r["status"] == "ok"]
    return rows


def median_inf(values: list[str]) -> float:
    """Median with empty (never reached) as +inf."""
    return float(np.median([float(v) if v else math.inf for v in values]))


def width_medians(rows: list[dict[str, str]], column: str,
                  key: tuple[str, ...] = ()) -> dict[tuple, dict[int, float]]:
    """{setting: {width: median of column}}; a setting is the values of ``key`` fields."""
    out: dict[tuple, dict[int, list[str]]] = {}
    for r in rows:
        w = json.loads(r["network.hidden"])[0]
        out.setdefault(tuple(r[k] for k in key), {}).setdefault(w, []).append(r[column])
    return {s: {w: median_inf(v) for w, v in sorted(d.items())} for s, d in out.items()}


def params(width: int, n_in: int = 64, n_out: int = 10) -> int:
    return (n_in + 1) * width + (width + 1) * n_out


def backprop_best(rows: list[dict[str, str]], target: str | None = None
                  ) -> dict[int, tuple[tuple, dict[str, float]]]:
    """Per width, the (batch, rate) with the fewest median samples to ``target`` (ties:
    the fewest to the next target), and that setting's medians of every target's
    steps and updates."""
    target = target or TARGETS[0]
    key = ("backprop.batch_size", "backprop.lr")
    cols = [f"{u}_to_{t}" for u in ("steps", "updates") for t in TARGETS]
    meds = {c: width_medians(rows, c, key) for c in cols}
    main = meds[f"steps_to_{target}"]
    other = meds[f"steps_to_{TARGETS[1] if target == TARGETS[0] else TARGETS[0]}"]
    out = {}
    for w in sorted({w for d in main.values() for w in d}):
        best = min((s for s in main if w in main[s]),
                   key=lambda s: (main[s][w], other[s][w]))
        out[w] = (best, {c: meds[c][best][w] for c in cols})
    return out


def _log_axes(ax) -> None:
    """Log x and y, each only where the plotted data has a positive value (an empty
    or non-positive axis cannot be log-scaled)."""
    xs = [v for line in ax.get_lines() for v in np.asarray(line.get_xdata(), float)]
    ys = [v for line in ax.get_lines() for v in np.asarray(line.get_ydata(), float)]
    if any(v > 0 for v in xs if math.isfinite(v)):
        ax.set_xscale("log")
    if any(v > 0 for v in ys if math.isfinite(v)):
        ax.set_yscale("log")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_steps(sweeps: dict[str, list[Path]], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, t in zip(axes, TARGETS, strict=True):
        for mode, folders in sweeps.items():
            rows = read_rows(folders)
            if mode == "backprop":
                best = backprop_best(rows, t)
                series = {w: med[f"steps_to_{t}"] for w, (_, med) in best.items()}
                label = "backprop (samples seen)"
            else:
                series = width_medians(rows, f"steps_to_{t}")[()]
                label = f"{mode} perturbation (MGD steps)"
            n_in = int(rows[0]["n_inputs"]) if rows else 64
            shown = [(params(w, n_in), v) for w, v in series.items()
                     if math.isfinite(v) and v > 0]
            xs, ys = [x for x, _ in shown], [y for _, y in shown]
            ax.plot(xs, ys, marker="o", label=label)
    _finish_steps(plt, fig, axes, "steps to {} test accuracy (median of 5 seeds)", path)


def _finish_steps(plt, fig, axes, title: str, path: Path) -> None:
    """Log axes, labels and titles (``title`` formatted with each target) of a pair of
    steps-against-parameters panels, then the file."""
    for ax, t in zip(axes, TARGETS, strict=True):
        _log_axes(ax)
        ax.set(xlabel="parameters (one hidden layer of h)", title=title.format(_pct(t)))
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("steps")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_cosine(result: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    fits = {f["mode"]: f for f in result["fits"]}
    for mode in ("weight", "node"):
        pts = [p for p in result["points"] if p["mode"] == mode and p["median"]]
        if not pts:
            continue
        x = np.array([p["perturbed"] for p in pts], float)
        (line,) = ax.plot(x, [p["median"] for p in pts], "o",
                          label=f"{mode}: vs {'neurons' if mode == 'node' else 'weights'}")
        if mode in fits:
            f = fits[mode]
            ax.plot(x, f["coefficient"] * x ** f["exponent"], "-", color=line.get_color(),
                    label=f"fit {f['coefficient']:.3g} n^{f['exponent']:.2f}")
    _log_axes(ax)
    ax.set(xlabel="perturbed quantities n (weights or neurons)",
           ylabel=f"steps to cosine {result['level']:g}",
           title=f"gradient estimate, median of {result['runs']} seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_tau(folder: Path, path: Path) -> None:
    plt = _plt()
    rows = read_rows([folder])
    taus = sorted({int(r["mgd.tau_theta"]) for r in rows})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for col, label in (("final_test_acc", "final"), ("best_test_acc", "best")):
        med = [float(np.median([float(r[col]) for r in rows if int(r["mgd.tau_theta"]) == t]))
               for t in taus]
        a1.plot(taus, med, marker="o", label=f"{label} test accuracy")
    a1.set(xscale="log", xlabel="tau_theta (steps per update)", ylabel="test accuracy",
           title="weight perturbation, width 16, tau_x = 100")
    a1.legend(fontsize=8)
    for t in TARGETS:
        med = [median_inf([r[f"steps_to_{t}"] for r in rows if int(r["mgd.tau_theta"]) == k])
               for k in taus]
        shown = [(k, m) for k, m in zip(taus, med, strict=True) if math.isfinite(m) and m > 0]
        a2.plot([k for k, _ in shown], [m for _, m in shown], marker="o",
                label=f"to {_pct(t)}")
    _log_axes(a2)
    a2.set(xlabel="tau_theta", ylabel="steps (median of 5)")
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _load_text(rows: list[dict]) -> str:
    """The load average range over the rows' backprop searches, for the title."""
    loads = [x for r in rows for x in (r.get("backprop_search") or {}).get("load") or ()]
    if not loads:
        return "load not recorded"
    return f"backprop at load {min(loads):.1f}-{max(loads):.1f}"


def plot_crossover(rows: list[dict], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [r["params"] for r in rows]
    ax.plot(x, [r["backprop_seconds"] for r in rows], "k-o", label="tuned CPU backprop")
    styles = {"weight": "tab:blue", "node": "tab:orange"}
    for mode, color in styles.items():
        ms = [next((m for m in r["modes"] if m["mode"] == mode), None) for r in rows]
        if not any(ms):
            continue
        for key, style, what in (("best_seconds", "-", "FPGA, fastest setting, 50 MHz assumed"),
                                 ("limit_seconds", "--", "multiplier-bound limit"),
                                 ("analog_seconds", ":", "analog 1 ns/evaluation")):
            pts = [(xx, m[key]) for xx, m in zip(x, ms, strict=True) if m and m[key]]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, marker=".", color=color,
                        label=f"{mode}: {what}")
    _log_axes(ax)
    ax.set(xlabel="parameters (one hidden layer of h)",
           ylabel=f"seconds to {_pct(TARGETS[0])} test accuracy",
           title=f"hardware MGD vs tuned CPU backprop ({_load_text(rows)})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _pct(t: str) -> str:
    return f"{float(t):.0%}"


def _fmt(v: float) -> str:
    return "never" if not math.isfinite(v) else f"{v:,.0f}"


def _reached(rows: list[dict[str, str]], column: str) -> str:
    return f"({sum(bool(r[column]) for r in rows)}/{len(rows)})"


def eta_medians(rows: list[dict[str, str]]) -> dict[int, dict[str, dict[str, float]]]:
    """{width: {eta: {column: median}}} of an MGD sweep over width x mgd.eta: steps to
    each target, final and best test accuracy, and the runs."""
    groups: dict[tuple[int, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((json.loads(r["network.hidden"])[0], r["mgd.eta"]), []).append(r)
    out: dict[int, dict[str, dict[str, float]]] = {}
    for (w, eta), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], float(kv[0][1]))):
        med = {f"steps_to_{t}": median_inf([r[f"steps_to_{t}"] for r in rs]) for t in TARGETS}
        med |= {f"reached_{t}": float(sum(bool(r[f"steps_to_{t}"]) for r in rs))
                for t in TARGETS}
        for c in ("final_test_acc", "best_test_acc"):
            med[c] = float(np.median([float(r[c]) for r in rs]))
        med["runs"] = float(len(rs))
        out.setdefault(w, {})[eta] = med
    return out


def best_eta(meds: dict[str, dict[str, float]], t: str) -> str:
    """The eta with the fewest median steps to target t (ties: the smaller eta)."""
    return min(meds, key=lambda e: (meds[e][f"steps_to_{t}"], float(e)))


def eta_table(rows: list[dict[str, str]]) -> str:
    """Every (width, eta) of an MGD eta sweep; each width's best eta in bold."""
    ta, tb = TARGETS
    out = [f"| width | eta | steps to {_pct(ta)} | steps to {_pct(tb)} | median final "
           "test acc | median best |", "| --- | --- | --- | --- | --- | --- |"]
    for w, meds in eta_medians(rows).items():
        best = {t: best_eta(meds, t) for t in TARGETS}
        for eta, m in meds.items():
            cells = []
            for t in TARGETS:
                text = (f"{_fmt(m[f'steps_to_{t}'])} ({m[f'reached_{t}']:.0f}/"
                        f"{m['runs']:.0f})")
                cells.append(f"**{text}**" if eta == best[t] else text)
            out.append(f"| {w} | {eta} | {cells[0]} | {cells[1]} | "
                       f"{m['final_test_acc']:.3f} | {m['best_test_acc']:.3f} |")
    return "\n".join(out)


def plot_tuned(tuned: dict[str, list[Path]], fixed: dict[str, list[Path]],
               path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, t in zip(axes, TARGETS, strict=True):
        for mode, folders in tuned.items():
            rows = read_rows(folders)
            n_in = int(rows[0]["n_inputs"]) if rows else 64
            pts = [(params(w, n_in), meds[best_eta(meds, t)][f"steps_to_{t}"])
                   for w, meds in eta_medians(rows).items()]
            pts = [(x, y) for x, y in pts if math.isfinite(y)]
            (line,) = ax.plot(*zip(*pts, strict=True), "o-",
                              label=f"{mode}: best eta per width")
            if mode in fixed:
                frows = read_rows(fixed[mode])
                series = width_medians(frows, f"steps_to_{t}")[()]
                shown = [(params(w, n_in), v) for w, v in series.items() if math.isfinite(v)]
                ax.plot(*zip(*shown, strict=True), "o--", color=line.get_color(),
                        alpha=0.6, label=f"{mode}: the example's eta")
    _finish_steps(plt, fig, axes, "MGD steps to {} test accuracy (medians)", path)


def backprop_tables(rows: list[dict[str, str]]) -> str:
    """Every (width, batch, rate) of a backprop sweep, then the per-width pick."""
    key = ("network.hidden", "backprop.batch_size", "backprop.lr")
    groups: dict[tuple, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key), []).append(r)
    ta, tb = TARGETS
    pa, pb = _pct(ta), _pct(tb)
    out = [f"| width | batch | rate | median final test acc | samples to {pa} | samples to "
           f"{pb} | updates to {pa} | updates to {pb} |", "| --- " * 8 + "|"]
    for (w, b, lr), rs in sorted(groups.items(), key=lambda g: (
            json.loads(g[0][0])[0], int(g[0][1]), float(g[0][2]))):
        acc = float(np.median([float(r["final_test_acc"]) for r in rs]))
        out.append(f"| {json.loads(w)[0]} | {b} | {lr} | {acc:.3f} | "
                   f"{_fmt(median_inf([r[f'steps_to_{ta}'] for r in rs]))} "
                   f"{_reached(rs, f'steps_to_{ta}')} | "
                   f"{_fmt(median_inf([r[f'steps_to_{tb}'] for r in rs]))} "
                   f"{_reached(rs, f'steps_to_{tb}')} | "
                   f"{_fmt(median_inf([r[f'updates_to_{ta}'] for r in rs]))} | "
                   f"{_fmt(median_inf([r[f'updates_to_{tb}'] for r in rs]))} |")
    out += ["", f"| width | parameters | to {pa}: setting (fewest samples) | samples | "
            f"updates | to {pb}: setting (fewest samples) | samples | updates |",
            "| --- " * 8 + "|"]
    ba, bb = backprop_best(rows, ta), backprop_best(rows, tb)
    for w in ba:
        (sa, ma), (sb, mb) = ba[w], bb[w]
        n_in = int(next(r["n_inputs"] for r in rows))
        out.append(f"| {w} | {params(w, n_in):,} | batch {sa[0]}, rate {sa[1]} | "
                   f"{_fmt(ma[f'steps_to_{ta}'])} | {_fmt(ma[f'updates_to_{ta}'])} | "
                   f"batch {sb[0]}, rate {sb[1]} | {_fmt(mb[f'steps_to_{tb}'])} | "
                   f"{_fmt(mb[f'updates_to_{tb}'])} |")
    return "\n".join(out)


def tau_table(rows: list[dict[str, str]]) -> str:
    a, b = TARGETS
    out = ["| tau_theta | updates per sample (tau_x 100) | median final test acc | median "
           f"best | steps to {_pct(a)} | steps to {_pct(b)} | updates to {_pct(a)} | "
           "seconds a run |", "| --- " * 8 + "|"]
    for t in sorted({int(r["mgd.tau_theta"]) for r in rows}):
        rs = [r for r in rows if int(r["mgd.tau_theta"]) == t]
        s90 = median_inf([r[f"steps_to_{a}"] for r in rs])
        out.append(
            f"| {t} | {100 / t:.3g} | "
            f"{np.median([float(r['final_test_acc']) for r in rs]):.3f} | "
            f"{np.median([float(r['best_test_acc']) for r in rs]):.3f} | {_fmt(s90)} "
            f"{_reached(rs, f'steps_to_{a}')} | "
            f"{_fmt(median_inf([r[f'steps_to_{b}'] for r in rs]))} "
            f"{_reached(rs, f'steps_to_{b}')} | {_fmt(s90 / t)} | "
            f"{np.median([float(r['seconds']) for r in rs]):.1f} |")
    return "\n".join(out)


def cosine_table(result: dict) -> str:
    out = ["| width | parameters | neurons | weight pert.: steps | per weight | node pert.: "
           "steps | per neuron |", "| --- " * 7 + "|"]
    by = {(p["width"], p["mode"]): p for p in result["points"]}
    for w in sorted({p["width"] for p in result["points"]}):
        cells = []
        for mode in ("weight", "node"):
            p = by.get((w, mode))
            if p is None or p["median"] is None:
                cells += ["never" if p else "-", "-"]
            else:
                cells += [f"{p['median']:,.0f}", f"{p['median'] / p['perturbed']:.1f}"]
        p = by.get((w, "weight")) or by[(w, "node")]
        out.append(f"| {w} | {p['params']:,} | {p['neurons']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    global TARGETS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", action="append", default=[], metavar="MODE=DIR",
                   help="a width sweep: node, weight or backprop (repeat)")
    p.add_argument("--gradcheck", metavar="FILE", help="mgd-hw gradcheck --widths --json")
    p.add_argument("--tau", metavar="DIR", help="the tau_theta sweep")
    p.add_argument("--crossover", metavar="FILE", help="bench/scaling_crossover.py --json")
    p.add_argument("--tuned", action="append", default=[], metavar="MODE=DIR",
                   help="an MGD sweep over network.hidden x mgd.eta: node or weight "
                   "(repeat)")
    p.add_argument("--out", default="docs/img", help="folder (default docs/img)")
    p.add_argument("--tables", action="store_true", help="print the tables too")
    p.add_argument("--targets", default=",".join(TARGETS), help="the two accuracies of "
                   "the sweeps' steps_to_ columns to plot (default 0.9,0.95); the "
                   "crossover's JSON is read as made with --target the first of them")
    args = p.parse_args(argv)
    saved, TARGETS = TARGETS, tuple(t.strip() for t in args.targets.split(","))
    try:
        return _run(args)
    finally:
        TARGETS = saved


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        sweeps: dict[str, list[Path]] = {}
        for spec in args.sweep:
            mode, sep, folder = spec.partition("=")
            if not sep or mode not in ("node", "weight", "backprop"):
                raise ValueError(f"--sweep takes node|weight|backprop=DIR, not {spec!r}")
            sweeps.setdefault(mode, []).append(Path(folder))
        if sweeps:
            plot_steps(sweeps, out / "scaling_steps.png")
            if args.tables and "backprop" in sweeps:
                print(backprop_tables(read_rows(sweeps["backprop"])) + "\n")
        if args.gradcheck:
            result = json.loads(Path(args.gradcheck).read_text())
            plot_cosine(result, out / "scaling_cosine.png")
            if args.tables:
                print(cosine_table(result) + "\n")
        if args.tau:
            plot_tau(Path(args.tau), out / "scaling_tau_theta.png")
            if args.tables:
                print(tau_table(read_rows([Path(args.tau)])) + "\n")
        tuned: dict[str, list[Path]] = {}
        for spec in args.tuned:
            mode, sep, folder = spec.partition("=")
            if not sep or mode not in ("node", "weight"):
                raise ValueError(f"--tuned takes node|weight=DIR, not {spec!r}")
            tuned.setdefault(mode, []).append(Path(folder))
        if tuned:
            plot_tuned(tuned, sweeps, out / "scaling_tuned.png")
            if args.tables:
                for mode, folders in tuned.items():
                    print(f"{mode} perturbation, eta per width:\n"
                          f"{eta_table(read_rows(folders))}\n")
        if args.crossover:
            rows = json.loads(Path(args.crossover).read_text())
            plot_crossover(rows, out / "scaling_crossover.png")
            if args.tables:
                from mgd_hw import crossover

                print(crossover.format_table(crossover.rows_from_dicts(rows),
                                             float(TARGETS[0])))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"scaling_plots: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
