"""``python -m golden_model.hw_train CONFIG``: train the bit-exact model of the on-chip
trainer (and optionally its float twin) and print a summary per run."""

from __future__ import annotations

import argparse

import numpy as np

from .config import ConfigError, derive, load_config, parse_assignment
from .datapath import HwMLP
from .datasets import DataError, load_dataset
from .float_twin import float_twin
from .hw_spec import trainer_spec
from .train import History
from .train_hw import train_hw


def _summary(history: History) -> str:
    acc = history.array("test_acc")[:, 0]
    hits = [(t, history.first_step_reaching(t)[0]) for t in (0.9, 1.0)]
    reach = ", ".join(f"{t:.0%} at {s:,}" if s is not None else f"{t:.0%} never" for t, s in hits)
    return f"test acc {acc[-1]:.3f} (max {acc.max():.3f}); {reach}"


def main(argv: list[str] | None = None) -> None:
    """``python -m golden_model.hw_train CONFIG [--runs R] [--float] [--set F=V]``."""
    ap = argparse.ArgumentParser(prog="python -m golden_model.hw_train")
    ap.add_argument("config")
    ap.add_argument("--runs", type=int, default=None, help="runs (seeds seed..); default cfg")
    ap.add_argument("--float", action="store_true", help="also train the float twin")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, *(parse_assignment(s) for s in args.set))
        data = load_dataset(cfg.task, cfg.seed)
    except (ConfigError, DataError) as exc:
        raise SystemExit(f"error: {exc}") from None
    runs = args.runs or cfg.runs
    sizes = "-".join(str(s) for s in HwMLP.from_config(cfg).sizes)
    print(f"{cfg.task.name} {sizes} {cfg.mgd.mode}/{cfg.mgd.perturbation}, "
          f"{cfg.steps:,} steps, {runs} run(s)")
    fixed = []
    # the trainer gateware's exact cycle count at the config's parallelism (hw_layout,
    # or stream_timing for hw.pipeline = "stream")
    cycles = trainer_spec(cfg, gateware=False).step_cycles(cfg.steps)
    for r in range(runs):
        res = train_hw(cfg, data, r)
        fixed.append(res.history.array("test_acc")[-1, 0])
        print(f"  fixed run {r}: {_summary(res.history)}; {res.seconds:.1f} s; "
              f"{res.passes:,} passes, {cycles:,} trainer cycles; saturations {res.counters}")
    print(f"  fixed: median final test acc {np.median(fixed):.3f}, "
          f"{sum(a >= 1.0 for a in fixed)}/{runs} runs at 100%")
    if args.float:
        from .train import train_mgd

        twin = derive(float_twin(cfg), {"runs": runs})
        res = train_mgd(twin, data)
        acc = res.history.array("test_acc")
        for r in range(runs):
            one = History(res.history.steps, [], [], [a[r:r + 1] for a in acc])
            print(f"  float run {r}: {_summary(one)}")
        print(f"  float twin (eta {twin.mgd.eta:.4g}, dtheta {twin.mgd.dtheta:.4g}, "
              f"{res.seconds:.1f} s): median final test acc {np.median(acc[-1]):.3f}, "
              f"{int((acc[-1] >= 1.0).sum())}/{runs} runs at 100%; fixed - float "
              f"{np.median(fixed) - np.median(acc[-1]):+.3f}")


if __name__ == "__main__":
    main()
