"""Measured FPGA figures for the time-to-train report: fits and Fmax per setting and
device (read from committed tables, never measured here), and the hard multipliers
of the devices (for the physical-limit line).

The tables (no synthesis tool is needed to read them):

- ``bench/synth_fits.json``, the fit table written by ``mgd-hw synth --fit ...
  --record`` (``gateware/synth_fits.py`` and docs/synthesis.md, "The fit table", own
  the schema)::

      {"about": "...",
       "fits": {
         "<config name>": {                # the examples/ file's stem, e.g. "hw_xor"
           "<setting>": {                  # e.g. "sequential macs=2,1 mac_inputs=1,1"
             "<target>-<device>": {        # e.g. "ecp5-85k"
               "pipeline": "sequential", "macs": [2, 1], "mac_inputs": [1, 1],
               "target": "ecp5", "device": "85k", "part": "LFE5U-85F",
               "fits": true,               # false: does not fit; null: undecided
               "failing": null,            # why not ("ICESTORM_LC 9120 of 7680", ...)
               "fmax_mhz": 32.59, "luts": 2506, "ffs": 743, "dsps": 4, "brams": 0,
               "yosys": "...", "nextpnr": "...", "date": "..."}}}}}

  Read here without importing the gateware. A setting's value may also be one row or
  a list of rows; missing ``pipeline``/``macs``/``mac_inputs`` are read from
  ``key=value`` words of the setting (the first word may be the pipeline).
- ``bench/synth_baselines.json`` (``python bench/synth_baselines.py``): its trainer
  entries (``"top": "trainer"``) are measurements of the config as committed.

A record matches a setting of a config when the config names agree and the setting's
per-layer parallelism (``layer_parallelism``: MACs and inputs per MAC) and pipeline
equal the record's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from golden_model.config import ConfigError, MGDConfig, derive
from golden_model.shapes import layer_parallelism

BENCH = Path(__file__).resolve().parent.parent / "bench"
FITS = BENCH / "synth_fits.json"
BASELINES = BENCH / "synth_baselines.json"


@dataclass(frozen=True)
class Multipliers:
    """A device's hard multipliers: ``count`` blocks of ``a`` x ``b`` bits (signed),
    ``source`` saying where the count comes from."""

    part: str
    count: int
    a: int
    b: int
    source: str

    def per_product(self, x_bits: int, y_bits: int) -> int:
        """Blocks one x_bits x y_bits product takes (tiling the operands)."""
        if not self.count:
            return 0
        return (-(-x_bits // self.a)) * (-(-y_bits // self.b))


_ECP5 = ("Lattice ECP5 family data sheet (FPGA-DS-02012), table 1.1: sysDSP 18x18 "
         "multipliers; nextpnr reports MULT18X18D available {n}")
# (target, device) -> hard multipliers. The ECP5 85k count is also what nextpnr's
# device use prints (bench/synth_baselines.json: "MULT18X18D": {"available": 156}).
MULTIPLIERS: dict[tuple[str, str], Multipliers] = {
    ("ecp5", "85k"): Multipliers("LFE5U-85F", 156, 18, 18, _ECP5.format(n=156)),
    ("ecp5", "45k"): Multipliers("LFE5U-45F", 72, 18, 18, _ECP5.format(n=72)),
    ("ecp5", "25k"): Multipliers("LFE5U-25F", 28, 18, 18, _ECP5.format(n=28)),
    ("ice40", "up5k"): Multipliers(
        "iCE40UP5K", 8, 16, 16, "Lattice iCE40 UltraPlus data sheet (FPGA-DS-02008): "
        "8 SB_MAC16 DSP blocks (16x16)"),
    ("ice40", "hx8k"): Multipliers(
        "iCE40HX8K", 0, 16, 16, "iCE40 LP/HX data sheet: no DSP blocks; every multiplier "
        "is built from LUTs, so the multiplier-bound limit does not apply"),
}
# The device of the physical-limit line when a setting has no measurement.
DEFAULT_LIMIT_DEVICE = ("ecp5", "85k")


@dataclass(frozen=True)
class Measured:
    """One measured design: where it ran, whether it fit, its Fmax and resources."""

    config: str
    label: str
    pipeline: str
    parallelism: tuple[tuple[int, int], ...]
    target: str
    device: str
    part: str
    fits: bool | None  # None: undecided (skipped, timed out)
    failing: str
    fmax_mhz: float | None
    resources: dict
    source: str

    def to_dict(self) -> dict:
        return {"config": self.config, "label": self.label, "pipeline": self.pipeline,
                "target": self.target, "device": self.device, "part": self.part,
                "fits": self.fits, "failing": self.failing, "fmax_mhz": self.fmax_mhz,
                "resources": self.resources, "source": self.source}


_ALIASES = {"luts": "lut", "ffs": "ff", "dsps": "dsp", "brams": "bram"}


def _label_fields(label: str) -> dict:
    out = {}
    first = label.split()[0] if label.split() else ""
    if first in ("sequential", "stream"):
        out["pipeline"] = first
    for key, value in re.findall(r"(\w+)=([\d,\[\]]+|\w+)", label):
        if key in ("macs", "mac_inputs"):
            items = [int(v) for v in value.strip("[]").split(",")]
            value = items if len(items) > 1 or "," in value else items[0]
        out[key] = value
    return out


def _record(cfg: MGDConfig, name: str, label: str, rec: dict, source: str) -> Measured | None:
    """A record as a Measured for ``cfg`` (None when its setting does not apply)."""
    fields = _label_fields(label) | rec
    hw = {k: fields[k] for k in ("macs", "mac_inputs", "pipeline") if k in fields}
    try:
        measured = derive(cfg, {"hw": hw})
        par = tuple(layer_parallelism(measured))
    except (ConfigError, ValueError, TypeError):
        return None
    res = {_ALIASES.get(k, k): v for k, v in rec.items()
           if _ALIASES.get(k, k) in ("lut", "ff", "dsp", "bram", "dram")}
    if "totals" in rec:
        res = dict(rec["totals"]) | res
    fmax = rec.get("fmax_mhz")
    return Measured(name, label, measured.hw.pipeline, par, str(rec.get("target", "")),
                    str(rec.get("device", "")), str(rec.get("part", "")),
                    rec.get("fits", True), str(rec.get("failing") or ""),
                    float(fmax) if fmax is not None else None, res,
                    str(rec.get("source", source)))


def _entries(table: dict) -> dict:
    if not isinstance(table, dict):
        raise ValueError("a table of measured figures is a JSON object")
    for key in ("fits", "results"):
        if key in table:
            return table[key]
    return table


def _rows(value) -> list[dict]:
    """A setting's value as rows: one row, a list, or rows by device."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and not ({"fits", "fmax_mhz"} & set(value)):
        return [v for v in value.values() if isinstance(v, dict)]
    return [value]


def read_measured(cfg: MGDConfig, name: str, fits: Path | None = FITS,
                  baselines: Path | None = BASELINES) -> list[Measured]:
    """Every measurement of config ``name`` in the tables (missing tables: none)."""
    out: list[Measured] = []
    if fits is not None and fits.exists():
        for label, recs in _entries(json.loads(fits.read_text())).get(name, {}).items():
            for rec in _rows(recs):
                m = _record(cfg, name, label, rec, f"{fits.parent.name}/{fits.name}")
                if m is not None:
                    out.append(m)
    if baselines is not None and baselines.exists():
        entries = _entries(json.loads(baselines.read_text())).get(name, {})
        for target, rec in entries.items():
            if rec.get("top") != "trainer":
                continue
            # a baseline is the example config as committed: its own parallelism
            base = {"macs": cfg.hw.macs, "mac_inputs": cfg.hw.mac_inputs,
                    "pipeline": cfg.hw.pipeline} | {k: rec[k] for k in
                                                    ("macs", "mac_inputs", "pipeline")
                                                    if k in rec}
            m = _record(cfg, name, f"baseline {target}", base | rec,
                        f"{baselines.parent.name}/{baselines.name} (mgd-hw synth of "
                        f"examples/{name}.toml as committed)")
            if m is not None:
                out.append(m)
    return out


def for_setting(measured: list[Measured], cfg: MGDConfig) -> list[Measured]:
    """The measurements of ``cfg``'s own setting (parallelism and pipeline)."""
    par = tuple(layer_parallelism(cfg))
    return [m for m in measured if m.parallelism == par and m.pipeline == cfg.hw.pipeline]


def best_fit(measured: list[Measured]) -> Measured | None:
    """The fastest measurement that fits its device (None: none fits or none)."""
    fitting = [m for m in measured if m.fits and m.fmax_mhz]
    return max(fitting, key=lambda m: m.fmax_mhz) if fitting else None
