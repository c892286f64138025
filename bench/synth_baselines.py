"""Synthesis figures of the example cores and trainers, beside the stored baselines.

    python bench/synth_baselines.py            # measure, print next to the baseline
    python bench/synth_baselines.py --update   # measure and rewrite the baselines

Needs the ``synth`` extra. Every examples/hw_core_*.toml and the XOR trainer
(``gateware.synth.baseline_configs``) are synthesized for ECP5 and iCE40 on the default
devices (about a minute each on one core); the baselines in bench/synth_baselines.json
are what tests/test_synth.py checks against (more than 10% more LUT, FF, DSP, BRAM or
DRAM, or 10% less Fmax, fails it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gateware.synth import baseline_configs, parse_device, run_synth
from gateware.synth_devices import TARGETS
from gateware.synth_report import RESOURCES, regressions
from gateware.tops import default_top
from golden_model.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "bench" / "synth_baselines.json"


def example_cores() -> dict[str, Path]:
    """The example configs with baselines (``gateware.synth.baseline_configs``: the
    MGDCores of examples/hw_core_*.toml and the XOR trainer)."""
    return baseline_configs(ROOT)


# What a baseline keeps of a result (the raw cell list and tool paths are left out).
KEEP = ("top", "module", "target", "device", "part", "package", "yosys_pass", "seed",
        "n_params", "blocks", "totals", "per_param", "fmax_mhz", "critical_path",
        "device_use", "harness", "tools", "verilog_sha256", "rtlil_sha256")


def measure(example: str, target: str) -> dict:
    """Synthesize ``examples/<example>.toml`` (its default top: MGDCore or the trainer)
    for ``target``'s default device."""
    cfg = load_config(example_cores()[example])
    with tempfile.TemporaryDirectory(prefix="mgd_synth_") as tmp:
        result = run_synth(cfg, default_top(cfg), parse_device(target), Path(tmp))
    # A trainer goes to Yosys as RTLIL (rtlil_sha256), the blocks as Verilog.
    return {k: result[k] for k in KEEP if k in result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baselines")
    args = parser.parse_args(argv)
    stored = json.loads(BASELINES.read_text()) if BASELINES.exists() else {"results": {}}
    fresh: dict[str, dict] = {}
    worse = 0
    for example in example_cores():
        for target in TARGETS:
            now = measure(example, target)
            fresh.setdefault(example, {})[target] = now
            old = stored["results"].get(example, {}).get(target)
            figures = [(r.upper(), now["totals"][r], old["totals"][r] if old else None)
                       for r in RESOURCES]
            figures.append(("Fmax", now["fmax_mhz"], old["fmax_mhz"] if old else None))
            text = ", ".join(
                f"{name} {new}" + (f" (baseline {was}, x{new / was:.3f})" if was else "")
                for name, new, was in figures
            )
            print(f"{example} {target}: {text}", flush=True)
            if old:
                for line in regressions(now, old, stored.get("tolerance", 0.10)):
                    worse += 1
                    print(f"  REGRESSION {line}")
    if args.update:
        BASELINES.write_text(json.dumps({
            "about": "mgd-hw synth figures of the example MGDCores and trainers on the default "
                     "devices; "
                     "rewritten by python bench/synth_baselines.py --update, checked by "
                     "tests/test_synth.py (10% tolerance)",
            "tolerance": 0.10,
            "results": fresh,
        }, indent=1) + "\n")
        print(f"wrote {BASELINES}")
    return 1 if worse and not args.update else 0


if __name__ == "__main__":
    sys.exit(main())
