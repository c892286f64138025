"""``mgd-hw device``: stochastic switching devices for the neurons.

- ``device synth``: SYNTHETIC switching data (``golden_model.switching_data``) as CSV;
- ``device fit``: fit a mixture density network to a CSV of (input, output) samples,
  print the held-out switching-probability error and NLL, write the device file;
- ``device plot``: the fitted switching probability against the data's, and an output
  histogram of data and device at chosen inputs (docs/devices.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .cli_args import CLIError, positive


def add_device(sub) -> None:
    p = sub.add_parser("device", help="stochastic switching devices: synthesize data, fit a "
                       "mixture density network, plot the fit",
                       description="Device models for stochastic neurons "
                       "(nonideal.neuron_noise = 'device'; docs/devices.md).")
    dsub = p.add_subparsers(dest="device_command", required=True, metavar="ACTION")

    s = dsub.add_parser("synth", help="write SYNTHETIC heater-cryotron-like switching data "
                        "(columns bias, switched, output) as CSV",
                        description="Synthetic switching data: bias uniform in [0, 1], "
                        "switching probability Phi((bias - 0.5) / 0.07), output level ~0 "
                        "when not switched and ~0.8 with a bias-dependent spread when "
                        "switched. Made up, not measured.")
    s.add_argument("--out", required=True, metavar="FILE.csv", help="CSV file to write")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--samples", type=int, default=20000, help="rows (default 20000)")
    s.add_argument("--force", action="store_true", help="overwrite --out")
    s.set_defaults(func=cmd_synth)

    f = dsub.add_parser("fit", help="fit a mixture density network to (input, output) "
                        "samples; print held-out errors; write the device file",
                        description="Fit an MDN (a small tanh MLP: input -> weights, means "
                        "and widths of K Gaussians; loss: negative log-likelihood; Adam) to "
                        "the CSV's input and output columns, on a seeded training split. "
                        "Prints the held-out mean absolute error of the switching "
                        "probability P(output > threshold) per input bin (docs/devices.md) "
                        "and the held-out NLL.")
    f.add_argument("--data", required=True, metavar="FILE.csv", help="CSV with a header row")
    f.add_argument("--out", required=True, metavar="DEVICE", help="device file, .npz or .json")
    f.add_argument("--input", default="bias", metavar="COLUMN", help="input column "
                   "(default bias)")
    f.add_argument("--output", default="output", metavar="COLUMN", help="output column "
                   "(default output)")
    f.add_argument("--components", type=int, default=3, help="Gaussians K (default 3)")
    f.add_argument("--hidden", default="32,32", help="hidden widths (default 32,32)")
    f.add_argument("--steps", type=int, default=4000, help="Adam steps (default 4000)")
    f.add_argument("--batch", type=int, default=256, help="minibatch size (default 256)")
    f.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    f.add_argument("--threshold", type=float, default=0.5, help="output above it counts as "
                   "switched (default 0.5)")
    f.add_argument("--heldout", type=float, default=0.2, help="held-out fraction (default 0.2)")
    f.add_argument("--bins", type=int, default=20, help="input bins of the error (default 20)")
    f.add_argument("--seed", type=int, default=0, help="split, initial weights and batch "
                   "order (default 0)")
    f.add_argument("--backend", default="numpy", help="numpy (default) or torch (needs the "
                   "torch extra)")
    f.add_argument("--force", action="store_true", help="overwrite --out")
    f.add_argument("--quiet", action="store_true", help="no progress lines")
    f.set_defaults(func=cmd_fit)

    g = dsub.add_parser("plot", help="plot a device's switching probability and output "
                        "histograms against data", description="Two panels: per input bin, "
                        "the data's switching fraction and the device's predicted one (on "
                        "the rows the fit held out when --seed and --heldout match the fit); "
                        "histograms of data and device samples at a few inputs.")
    g.add_argument("--device", required=True, metavar="DEVICE", help="device file")
    g.add_argument("--data", required=True, metavar="FILE.csv", help="CSV of samples")
    g.add_argument("--out", required=True, metavar="FILE.png", help="image to write")
    g.add_argument("--input", default="bias", metavar="COLUMN")
    g.add_argument("--output", default="output", metavar="COLUMN")
    g.add_argument("--at", default="0.45,0.5,0.6", help="inputs of the histograms "
                   "(default 0.45,0.5,0.6)")
    g.add_argument("--seed", type=int, default=0, help="the fit's --seed (default 0)")
    g.add_argument("--heldout", type=float, default=0.2, help="the fit's --heldout")
    g.add_argument("--force", action="store_true", help="overwrite --out")
    g.set_defaults(func=cmd_plot)


def _target(path: str, force: bool, endings: tuple[str, ...]) -> Path:
    """An output file: the right ending, not there yet unless ``force``."""
    p = Path(path)
    if not p.name.lower().endswith(endings):
        raise CLIError(f"--out {path!r} must end in {' or '.join(endings)}")
    if p.is_dir():
        raise CLIError(f"--out {path!r} is a folder, not a file")
    if p.exists() and not force:
        raise CLIError(f"--out {path!r} already exists; pass --force to overwrite it")
    if not p.parent.exists():
        p.parent.mkdir(parents=True)
    return p


def cmd_synth(args: argparse.Namespace) -> int:
    from golden_model.switching_data import synthesize, write_csv

    positive("--samples", args.samples)
    if args.seed < 0:
        raise CLIError(f"--seed must be an integer >= 0, not {args.seed}")
    out = _target(args.out, args.force, (".csv",))
    write_csv(out, synthesize(args.samples, args.seed))
    print(f"{args.samples} SYNTHETIC switching samples (seed {args.seed}) in {out}")
    return 0


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise CLIError(f"--hidden takes positive widths like 32,32, not {text!r}")
    return sizes


def cmd_fit(args: argparse.Namespace) -> int:
    from golden_model.device_fit import BACKENDS, fit_device
    from golden_model.mdn import FitSettings
    from golden_model.switching_data import read_columns

    positive("--components", args.components)
    positive("--steps", args.steps)
    positive("--batch", args.batch)
    positive("--bins", args.bins)
    hidden = _hidden(args.hidden)
    if not 0 < args.heldout < 1:
        raise CLIError(f"--heldout must be a fraction in (0, 1), not {args.heldout}")
    if not args.lr > 0:
        raise CLIError(f"--lr must be a number > 0, not {args.lr}")
    if args.seed < 0:
        raise CLIError(f"--seed must be an integer >= 0, not {args.seed}")
    if args.backend not in BACKENDS:
        raise CLIError(f"--backend must be one of {', '.join(BACKENDS)}, not {args.backend!r}")
    if args.backend == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise CLIError("--backend torch needs PyTorch: pip install 'mgd-hw[torch]'")
    out = _target(args.out, args.force, (".npz", ".json"))
    x, y = read_columns(args.data, args.input, args.output)

    def progress(step: int, loss: float) -> None:
        if not args.quiet:
            print(f"fit step {step}/{args.steps}: minibatch NLL {loss:.4f} (normalized)",
                  file=sys.stderr, flush=True)

    settings = FitSettings(steps=args.steps, batch=args.batch, lr=args.lr)
    try:
        r = fit_device(x, y, args.components, hidden, args.seed, args.threshold,
                       args.heldout, args.bins, settings, args.backend, progress)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    r.device.meta.update({"data": str(args.data), "input": args.input, "output": args.output})
    r.device.save(out)
    e = r.switching
    print(f"MDN, {args.components} components, hidden {','.join(map(str, hidden))}, "
          f"{args.backend}: {len(x) - len(r.x_test)} training / {len(r.x_test)} held-out "
          f"samples")
    print(f"held-out switching-probability MAE: {e.mae:.4f} ({100 * e.mae:.2f}%) over "
          f"{len(e.counts)} input bins, P(output > {args.threshold:g}); sampling-noise "
          f"floor {e.floor:.4f}")
    print(f"held-out NLL: {r.heldout_nll:.4f} nats/sample")
    print(f"device file: {out}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from golden_model.device_fit import split, switching_mae
    from golden_model.device_model import DeviceError, load_device
    from golden_model.switching_data import read_columns

    try:
        at = [float(v) for v in args.at.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--at takes inputs like 0.45,0.5,0.6, not {args.at!r}") from None
    if not at:
        raise CLIError(f"--at takes inputs like 0.45,0.5,0.6, not {args.at!r}")
    out = _target(args.out, args.force, (".png",))
    try:
        device = load_device(args.device)
    except DeviceError as exc:
        raise CLIError(str(exc)) from None
    x, y = read_columns(args.data, args.input, args.output)
    _, test = split(len(x), args.heldout, np.random.default_rng([args.seed, 0]))
    err = switching_mae(device, x[test], y[test], int(device.meta.get("bins", 20)))
    _plot(device, x, y, x[test], y[test], err, at, out)
    print(f"switching-probability MAE on the held-out rows: {err.mae:.4f}; plot in {out}")
    return 0


def _plot(device, x, y, xt, yt, err, at, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    grid = np.linspace(x.min(), x.max(), 300)
    a1.plot(err.centers, err.empirical, "o", ms=4, label="data (held-out, per bin)")
    a1.plot(grid, device.prob_above(grid), "-", label="MDN P(output > threshold)")
    a1.set_xlabel("device input")
    a1.set_ylabel("switching probability")
    a1.set_title(f"held-out MAE {100 * err.mae:.2f}% (noise floor {100 * err.floor:.2f}%)")
    a1.legend(fontsize=8)
    rng = np.random.default_rng(0)
    half = 0.01 * (x.max() - x.min())
    bins = np.linspace(y.min(), y.max(), 60)
    for i, v in enumerate(at):
        sel = np.abs(x - v) <= half
        color = f"C{i}"
        if sel.any():
            a2.hist(y[sel], bins=bins, density=True, alpha=0.35, color=color,
                    label=f"data, input {v:g} +- {half:.2g} ({int(sel.sum())})")
        s = device.sample(np.full(20000, v), rng.standard_normal((20000, 2)))
        a2.hist(s, bins=bins, density=True, histtype="step", color=color,
                label=f"MDN samples, input {v:g}")
    a2.set_xlabel("device output")
    a2.set_ylabel("density")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
