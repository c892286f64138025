"""What ``mgd-hw compare`` leaves in its output folder (report.md, compare.json and the
figures) and the summary it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .compare_plots import plot_curves, plot_param_error, plot_widths
from .report import require_writable_folder

OUTPUT_FILES = ("report.md", "compare.json", "curves.png", "param_error.png", "widths.png")
# Rows of the parameter-error table in the report (evaluations are thinned to this).
TABLE_ROWS = 12


def check_output(out: Path, force: bool) -> None:
    """Refuse an ``--out`` folder that is not empty unless ``force``; before any run."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out '{out}' is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"output folder '{out}' is not empty; pass --force to overwrite the compare "
            "results in it or choose another --out"
        )
    require_writable_folder(out)


def write_report(out: Path, result: dict[str, Any], command: str) -> list[Path]:
    """Write compare.json, the figures and report.md into ``out``; returns their paths.
    A figure an earlier run left and this one does not make (widths.png) is removed,
    so the folder never mixes two runs."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "compare.json", out / "curves.png", out / "param_error.png"]
    written[0].write_text(json.dumps(result, indent=1) + "\n")
    plot_curves(written[1], result)
    plot_param_error(written[2], result)
    if result["widths"]:
        plot_widths(out / "widths.png", result)
        written.append(out / "widths.png")
    else:
        (out / "widths.png").unlink(missing_ok=True)
    (out / "report.md").write_text(markdown(result, command))
    return [out / "report.md", *written]


# --- text -----------------------------------------------------------------------------


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def _steps(v: int | None) -> str:
    return "never" if v is None else f"{v:,}"


def _net(s: dict[str, Any]) -> str:
    return "-".join(str(n) for n in s["network"])


def _shift_text(result: dict[str, Any]) -> str:
    d = result["wide_twin"]["shift"]
    return ", ".join(f"{k} +{v}" for k, v in d.items() if v)


def rtl_line(rtl: dict[str, Any] | None) -> str:
    """The verdict of the RTL run in one line."""
    if rtl is None:
        return "RTL: not run (--no-rtl)"
    head = f"RTL (run 0, {rtl['steps']:,} steps)"
    if rtl["identical"]:
        return (f"{head}: identical to the fixed-point model at all {rtl['updates']:,} "
                f"updates and every step's cost, final theta SHA-256 equal; test acc "
                f"{rtl['rtl_test_acc']:.3f}; {rtl['cycles']:,} cycles")
    return f"{head}: DIVERGES: {rtl['message']}"


def summary_lines(result: dict[str, Any], out: Path | None = None) -> list[str]:
    """The short terminal summary."""
    s = result["summary"]
    f, x, w = s["float"], s["fixed"], s["wide"]
    runs = s["runs"]
    # Solved (training accuracy 1.0) says something on XOR and parity, not on digits.
    solved = runs > 1 and any(m["solved_runs"] for m in (f, x, w))

    def acc(m: dict[str, Any]) -> str:
        line = (f"final test acc {m['median_final_test_acc']:.3f} "
                f"(max {m['median_max_test_acc']:.3f})")
        return line + (f", solved {m['solved_runs']}/{runs} runs" if solved else "")

    pe = s["param_error_final"]
    sat = {k: v for k, v in s["saturations"].items() if v}
    lines = [
        f"compare {s['task']} {_net(s)} {s['mode']}/{s['perturbation']}, {s['steps']:,} "
        f"steps, {runs} run(s) from seed {s['seed']}" + (" (medians)" if runs > 1 else ""),
        f"  float twin:          {acc(f)}",
        f"  fixed point:         {acc(x)}; fixed - float {s['fixed_minus_float']:+.3f}",
        f"  high-precision twin: {acc(w)} ({_shift_text(result)} bits)",
        f"  parameter error fixed vs high-precision at step {s['steps']:,}: rms "
        f"{pe['rms']:.3g}, max {pe['max']:.3g} (the twin moved rms {pe['moved_rms']:.3g} "
        f"from theta_0; theta LSB {s['theta_lsb']:.3g})",
        f"  updates below one LSB: {_pct(s['sub_lsb_fraction'])} of parameter updates "
        f"({_pct(s['sub_lsb_of_nonzero'])} of those with G != 0); saturations: "
        + saturation_text(sat, result["numerics"].get("passes", 0), s["network"]),
        "  " + rtl_line(result["rtl"]),
    ]
    for sw in s["widths"]:
        points = ", ".join(f"{b}: {a:.3f}" for b, a in zip(
            sw["bits"], sw["median_final_test_acc"], strict=True))
        lines.append(f"  widths {sw['field']} (final test acc, median of {sw['runs']} "
                     f"run(s), {sw['steps']:,} steps): {points}")
    if out is not None:
        lines.append(f"  report in {out / 'report.md'}")
    return lines


def saturation_text(sat: dict[str, int], passes: int, network: list[int]) -> str:
    """The saturation counters with what they mean: the share of the values a counter
    watches (z and act: every neuron of every forward pass; cost: one a pass) and a
    word on when that matters."""
    if not sat:
        return "none (no value was clipped to its format's range)"
    neurons = sum(network[1:])
    per = {"z": passes * neurons, "act": passes * neurons, "cost": passes}
    parts = []
    for k, v in sat.items():
        share = f" ({_pct(v / per[k])} of {k} values)" if per.get(k) else ""
        parts.append(f"{k} {v:,}{share}")
    return (", ".join(parts) + "; a saturated value was clipped to its format's limit: "
            "a small share of z or act values is harmless with sigmoid-like layers (flat "
            "there anyway), a large share or any theta, g or ctilde saturation means that "
            "format is too narrow for this run")


def _thin(n: int, rows: int = TABLE_ROWS) -> list[int]:
    """About ``rows`` indices out of n, always the first and the last."""
    if n <= rows:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, rows).round().astype(int).tolist()))


def markdown(result: dict[str, Any], command: str) -> str:
    """report.md: every table of the comparison, with the figures beside it."""
    lines = _float_vs_fixed(result, command)
    lines += _param_error(result)
    lines += _numerics(result["numerics"])
    lines += _fixed_vs_rtl(result["rtl"])
    lines += _widths(result["widths"])
    return "\n".join(lines) + "\n"


def _float_vs_fixed(result: dict[str, Any], command: str) -> list[str]:
    """The title, the command and the float / fixed point / high-precision table."""
    s = result["summary"]
    twin = result["float_twin"]
    lines = [
        f"# mgd-hw compare: {s['task']} {_net(s)} {s['mode']}/{s['perturbation']}",
        "",
        f"`{command}`",
        "",
        f"{s['runs']} run(s) from seed {s['seed']}, {s['steps']:,} steps each; medians over "
        f"runs. Took {s['seconds']:.0f} s.",
        "",
        "## Float vs fixed point",
        "",
        f"The float twin is the float model with the same task, network, schedule and "
        f"seeds (eta {twin['eta']:.4g}, dtheta {twin['dtheta']:.4g}, {twin['optimizer']}), "
        "the true sigmoid/tanh and its own codes and sample order. The high-precision twin "
        f"is the bit-exact model with more fraction bits ({_shift_text(result)}), the same "
        "real-valued amplitude and learning rate, and the same codes, sample order and "
        "initial parameters as the fixed-point run.",
        "",
        "| model | median final test acc | median best test acc | median final cost | "
        "solved runs | steps to 90% | steps to 95% |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {"float": "float twin", "fixed": "fixed point", "wide": "high-precision twin"}
    for key, label in names.items():
        m = s[key]
        lines.append(
            f"| {label} | {m['median_final_test_acc']:.3f} | {m['median_max_test_acc']:.3f} | "
            f"{m['median_final_cost']:.4g} | {m['solved_runs']}/{s['runs']} | "
            f"{_steps(m['steps_to_90pct'])} | {_steps(m['steps_to_95pct'])} |")
    lines += [
        "",
        "Cost: training-set mean squared error (the hardware's scaled sum converted). "
        "Solved: training accuracy 1.0 at some evaluation.",
        "",
        "![accuracy and cost](curves.png)",
        "",
    ]
    return lines


def _param_error(result: dict[str, Any]) -> list[str]:
    """The formats of the two bit-exact models and the parameter error over the steps."""
    lines = [
        "## Parameter error: fixed point vs the high-precision twin",
        "",
        "RMS and max over all parameters of `|theta_fixed - theta_wide|` in real units "
        "(the twin's formats below); both start from the same parameters, so the error "
        "is 0 at step 0. Each rounding changes the steps that follow, so the error grows "
        "with the divergence of the two trajectories; the last column, the twin's RMS "
        "distance from its initial parameters, is the scale to read it against.",
        "",
        "| hw field | fixed point | high-precision twin |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {k} | {a} | {b} |" for k, (a, b) in result["wide_twin"]["hw"].items()]
    pe = result["param_error"]
    lines += ["", f"One theta LSB is {pe['theta_lsb']:.3g}.", "",
              "| step | rms (median) | max (median) | max (worst run) | twin moved, rms "
              "(median) |",
              "| --- | --- | --- | --- | --- |"]
    for e in _thin(len(pe["steps"])):
        rms, mx = np.array(pe["rms"][e]), np.array(pe["max"][e])
        lines.append(f"| {pe['steps'][e]:,} | {np.median(rms):.3g} | {np.median(mx):.3g} | "
                     f"{mx.max():.3g} | {np.median(pe['moved_rms'][e]):.3g} |")
    lines += ["", "![parameter error and updates below one LSB](param_error.png)", ""]
    return lines


def _numerics(n: dict[str, Any]) -> list[str]:
    """Updates below one LSB and the saturation counters."""
    sub, wsub = n["sub_lsb"], n["wide_sub_lsb"]
    lines = [
        "## Numerics",
        "",
        "Updates below one LSB: parameters whose step source (G, or V with momentum) was "
        "non-zero but whose step round(G >> eta_shift) was zero, over all updates of all "
        "runs.",
        "",
        "| model | updates | below one LSB (of all parameter updates) | of those with G != 0 |",
        "| --- | --- | --- | --- |",
        f"| fixed point | {sub['updates']:,} | {_pct(sub['fraction'])} | "
        f"{_pct(sub['of_nonzero'])} |",
        f"| high-precision twin | {wsub['updates']:,} | {_pct(wsub['fraction'])} | "
        f"{_pct(wsub['of_nonzero'])} |",
        "",
        "Saturation counters (`HwTrainer.counters()`, summed over runs; initial weights "
        f"saturated when quantized: {n['init_saturations']}):",
        "",
        "| counter | fixed point | high-precision twin |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {k} | {v:,} | {n['wide_saturations'][k]:,} |"
              for k, v in n["saturations"].items()]
    return lines


def _fixed_vs_rtl(rtl: dict[str, Any] | None) -> list[str]:
    """The RTL run against the bit-exact model (one line when there was none)."""
    lines = ["", "## Fixed point vs RTL", "", rtl_line(rtl) + "."]
    if rtl is not None:
        lines += [
            "",
            "The cocotb testbench under Verilator compares every step's cost (and the cycle "
            "it appears on), the parameters after every update and the saturation "
            "counters with the bit-exact model; the final parameters' SHA-256 is then "
            "compared with the model's own run of the same steps.",
            "",
            "| | RTL | model |",
            "| --- | --- | --- |",
            f"| test acc | {_opt(rtl['rtl_test_acc'])} | {rtl['model_test_acc']:.3f} |",
            f"| theta SHA-256 | `{str(rtl['theta_sha256_rtl'])[:16]}` | "
            f"`{rtl['theta_sha256_model'][:16]}` |",
            f"| cycles | {_opt(rtl['cycles'], ',')} | |",
        ]
    return lines


def _widths(widths: list[dict[str, Any]]) -> list[str]:
    """One table per width sweep."""
    lines = ["", "## Widths", ""]
    if not widths:
        lines.append("No sweep (`--widths FIELD=V1,V2,...` makes one).")
    for w in widths:
        frac = next(k for k in w["points"][0] if k.endswith("_frac"))
        lines += [
            f"`hw.{w['field']}` (the config: {w['config_bits']}), {w['runs']} run(s) of "
            f"{w['steps']:,} steps per width; the fraction bits move with the width and "
            "the amplitude and learning rate stay the same in real units.",
            "",
            f"| {w['field']} | {frac} | final test acc (median) | best (median) | "
            "final per run |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {p['bits']} | {p[frac]} | {p['median_final_test_acc']:.3f} | "
            f"{p['median_max_test_acc']:.3f} | "
            f"{' '.join(f'{a:.3f}' for a in p['final_test_acc'])} |"
            for p in w["points"]
        ]
        lines.append("")
    if widths:
        lines.append("![test accuracy against the width](widths.png)")
    return lines


def _opt(v, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)
