"""The committed table of measured fits: which fold of an example trainer fits which
device, with its resources and nextpnr's Fmax (``bench/synth_fits.json``).

``mgd-hw synth --fit ... --record bench/synth_fits.json`` writes it
(``gateware.synth_fit``); the time-to-train report and ``mgd-hw bench`` read it. This
module imports nothing but the standard library: reading the table needs no tools.

Schema (docs/synthesis.md, "The fit table")::

    {"about": str,
     "fits": {CONFIG: {SETTING: {DEVICE: ROW}}}}

- CONFIG: the config file's stem (``hw_xor``, ``hw_digits``...).
- SETTING: :func:`setting_key`, e.g. ``"sequential macs=2,1 mac_inputs=1,1"``: the
  trainer's ``hw.pipeline`` and the per-layer (P, Q) after resolving 0 (one per
  neuron / all inputs), so equal folds have equal keys however they were written.
- DEVICE: ``"<target>-<device>"``, e.g. ``"ecp5-85k"``, ``"ice40-up5k"``.
- ROW: ``pipeline``, ``macs``, ``mac_inputs`` (per-layer lists), ``label`` (the
  ladder's name, e.g. "one MAC per neuron"), ``target``, ``device``, ``part``,
  ``fits`` (true, false, or null when it was not decided: skipped or timed out),
  ``failing`` (why not: "ICESTORM_LC 9120 of 7680", "timed out after 600 s",
  "skipped: ..."; null when it fits), ``fmax_mhz``, ``luts``, ``ffs``, ``dsps``,
  ``brams``, ``drams`` (the design without the scan harness; null when not measured),
  ``multipliers`` (the fold's multipliers), ``ii`` (streaming: cycles per evaluation
  slot, else null), ``cycles_per_step`` (``HwSpec.step_cycles`` over the config's
  steps), ``critical_path``, ``yosys``, ``nextpnr`` (tool versions), ``date`` (UTC,
  ISO), ``seconds`` (the try's wall time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FITS_PATH = Path(__file__).resolve().parent.parent / "bench" / "synth_fits.json"
ABOUT = (
    "Measured fits of the example trainers: mgd-hw synth --fit ... --record "
    "bench/synth_fits.json (docs/synthesis.md, 'The fit table'); fits is "
    "{config: {setting: {device: row}}}"
)


def _layers(values: Sequence[int] | int) -> str:
    return ",".join(str(int(v)) for v in values) if isinstance(values, Sequence) else str(values)


def setting_key(pipeline: str, macs: Sequence[int], mac_inputs: Sequence[int]) -> str:
    """The SETTING key of a fold: ``"<pipeline> macs=P0,P1 mac_inputs=Q0,Q1"``.

    ``macs`` and ``mac_inputs`` are the per-layer P and Q with 0 resolved
    (``golden_model.shapes.layer_parallelism``)."""
    return f"{pipeline} macs={_layers(macs)} mac_inputs={_layers(mac_inputs)}"


def device_key(target: str, device: str) -> str:
    """The DEVICE key: ``"ecp5-85k"``."""
    return f"{target}-{device}"


def load_fits(path: str | Path | None = None) -> dict[str, Any]:
    """The whole table (``{"about": ..., "fits": {...}}``); an empty one when the file
    does not exist."""
    path = Path(path) if path is not None else FITS_PATH
    if not path.exists():
        return {"about": ABOUT, "fits": {}}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("fits"), dict):
        raise ValueError(f"{path} is not a fit table (no 'fits' object)")
    return data


def rows(table: dict[str, Any], config: str | None = None) -> list[dict[str, Any]]:
    """Every row of ``table`` (of ``config`` only, when given), each with its
    ``config``, ``setting`` and ``device_key``, in the table's order."""
    out = []
    for name, settings in table.get("fits", {}).items():
        if config is not None and name != config:
            continue
        for setting, devices in settings.items():
            for dev, row in devices.items():
                out.append({"config": name, "setting": setting, "device_key": dev, **row})
    return out


def lookup(
    config: str,
    macs: Sequence[int],
    mac_inputs: Sequence[int],
    pipeline: str = "sequential",
    device: str | None = None,
    table: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The measured row of one fold, or None.

    Parameters
    ----------
    config : str
        The config's stem, e.g. ``"hw_digits"``.
    macs, mac_inputs : sequence of int
        Per-layer P and Q, 0 resolved (``layer_parallelism(cfg)``).
    pipeline : str
        ``hw.pipeline``.
    device : str, optional
        ``"ecp5-85k"``; None: the fitting row with the highest Fmax over all devices.
    table : dict, optional
        From :func:`load_fits` (default: the committed table).
    """
    table = load_fits() if table is None else table
    devices = table.get("fits", {}).get(config, {}).get(
        setting_key(pipeline, macs, mac_inputs), {})
    if device is not None:
        return devices.get(device)
    fitting = [r for r in devices.values() if r.get("fits") and r.get("fmax_mhz")]
    return max(fitting, key=lambda r: r["fmax_mhz"], default=None)


def record(table: dict[str, Any], config: str, row: dict[str, Any]) -> None:
    """Put ``row`` (a fit-search row) into ``table`` under its config, setting and
    device, replacing an earlier measurement of the same three."""
    key = setting_key(row["pipeline"], row["macs"], row["mac_inputs"])
    dev = device_key(row["target"], row["device"])
    table.setdefault("fits", {}).setdefault(config, {}).setdefault(key, {})[dev] = row


def save_fits(table: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write ``table`` (sorted keys inside rows, one row per line block)."""
    path = Path(path) if path is not None else FITS_PATH
    table = {"about": table.get("about", ABOUT), "fits": table.get("fits", {})}
    path.write_text(json.dumps(table, indent=1) + "\n")
    return path


def format_rows(table: dict[str, Any]) -> list[str]:
    """One line per measured row: config, fold, device, fits, Fmax, resources, II,
    cycles per step (``mgd-hw bench`` prints these)."""
    out = []
    for r in rows(table):
        fits = {True: "fits", False: "does not fit", None: "undecided"}[r.get("fits")]
        fmax = f"{r['fmax_mhz']:.1f} MHz" if r.get("fmax_mhz") else "-"
        res = (f"LUT {r['luts']} FF {r['ffs']} DSP {r['dsps']} BRAM {r['brams']}"
               if r.get("luts") is not None else (r.get("failing") or ""))
        ii = f" II {r['ii']}" if r.get("ii") else ""
        cps = (f" {r['cycles_per_step']:.1f} cycles/step"
               if r.get("cycles_per_step") else "")
        out.append(f"{r['config']:<10} {r['setting']:<44} {r['device_key']:<11} "
                   f"{fits:<12} {fmax:>10}  {res}{ii}{cps}")
    return out
