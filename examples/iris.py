"""Your own data through the whole toolkit: scikit-learn's bundled iris set (nothing is
downloaded), from float MGD against backprop to a bit-exact RTL training run.

    .venv/bin/python examples/iris.py                  # the whole flow (about a minute)
    .venv/bin/python examples/iris.py --csv out/iris.csv   # only write the CSV that
                                                       # examples/hw_iris.toml reads

The same steps are the README's Python example (section "Your data, from Python").
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from mgd_hw import api


def iris_arrays():
    """The 150 iris samples (4 measurements in cm) and their class (0, 1, 2)."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    return bunch.data, bunch.target, [n.replace(" (cm)", "").replace(" ", "_")
                                      for n in bunch.feature_names]


def write_csv(path: Path) -> None:
    """A header row (the feature names and ``label``), then one row per sample."""
    x, y, names = iris_arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "label"])
        for row, label in zip(x, y, strict=True):
            w.writerow([*(f"{v:g}" for v in row), int(label)])


def config(data: api.Dataset, steps: int = 20_000) -> api.MGDConfig:
    """The 4-4-3 trainer of examples/hw_iris.toml, as a Python config."""
    return api.config(
        data=data, steps=steps, eval_every=steps // 10, runs=1,
        network={"hidden": [4], "activation": "sigmoid", "init_scale": 1.0},
        mgd={"perturbation": "code", "mode": "weight"},
        hw={"datapath": "mlp", "theta_bits": 16, "theta_frac": 12, "amp_log2": 6,
            "eta_shift": 0, "x_bits": 6, "x_frac": 4, "act_bits": 12, "act_frac": 10,
            "z_bits": 16, "z_frac": 10, "acc_bits": 32, "mac_inputs": 0})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, help="only write the iris CSV to this path")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=Path("out/iris"))
    args = ap.parse_args()
    if args.csv:
        write_csv(args.csv)
        print(f"wrote {args.csv}")
        return
    x, y, names = iris_arrays()
    data = api.Dataset.from_arrays(x, y, test_fraction=0.3, scale="minmax", columns=names)
    cfg = config(data, args.steps)
    flt = api.train_float(api.float_twin(cfg), data)
    fixed = api.train_bitexact(cfg, data)
    info = api.generate(cfg, data, args.out / "rtl", force=True)
    rtl = api.rtl_run(cfg, data)
    print(f"float MGD {flt.summary['mgd']['median_final_test_acc']:.3f}, backprop "
          f"{flt.summary['backprop']['median_final_test_acc']:.3f}, bit-exact model "
          f"{fixed.test_acc[0]:.3f}; wrote {info['verilog']}")
    print(rtl.describe())


if __name__ == "__main__":
    main()
