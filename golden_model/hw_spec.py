"""The hardware spec: a config validated once for hardware, with everything derived.

Model, gateware, testbenches, the bare harness and the reports read widths, layouts,
the schedule, counter names, code keys and trace widths here, so a derived fact is
written once. ``hw_spec(cfg)`` validates (``config_rules``: the hardware rules, and for
``hw.datapath = "mlp"`` the trainer gateware's) and caches the result by the config's
JSON, so asking again in the same process costs a dictionary look-up. The bit-exact
models ask for ``hw_spec(cfg, gateware=False)``: they also run what the gateware does
not build (frequency codes in the trainer model). ``trainer_spec(cfg)`` insists on a
trainer config. Nothing else in the toolkit validates a hardware config.

Two tiers:

- ``"block"`` (hw.datapath = "none"): the standalone blocks and MGDCore, N =
  ``hw.n_params`` parameters driven by a host;
- ``"trainer"`` (hw.datapath = "mlp"): the on-chip trainer; the network's sizes, the
  memory layout, the cycle schedule, the weight-update format of its lanes and the
  verification taps' widths.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from .config import ConfigError, HardwareConfig, MGDConfig, network_sizes
from .config_rules import check_config, check_hardware, check_trainer
from .hw_layout import Schedule, TrainerLayout, TrainerTiming
from .lfsr import code_masks
from .stream_timing import StreamTiming

# The trainer's saturation counters, in port and report order (``sat_<name>``): the
# datapath (z, act, cost), C~, node perturbation's D, G (and V), theta.
TRAINER_COUNTERS = ("z", "act", "cost", "ctilde", "d", "g", "theta")


@dataclass(frozen=True)
class HwSpec:
    """A validated hardware config and the facts derived from it (see module doc).

    Attributes
    ----------
    cfg : MGDConfig
        The config, validated for this tier. Frozen, like the spec.
    gateware : bool
        The gateware's rules were checked too (else only the models' hardware rules).
    tier : str
        ``"block"`` or ``"trainer"``.
    n : int
        Parameters N (``hw.n_params``; the network's count for a trainer).
    sizes : tuple of int or None
        The trainer's layer sizes [n_in, hidden..., n_out].
    layout : TrainerLayout or None
        Where every trainer parameter lives (rows and lanes of per-layer memories).
    timing, schedule : TrainerTiming, Schedule or None
        The trainer's phase lengths and closed-form cycle schedule.
    node : bool
        Node perturbation (the trainer perturbs neurons, not weights).
    n_perturbed : int
        Quantities the codes perturb: N, or the neurons with node perturbation.
    update_hw : HardwareConfig or None
        The weight-update format of the trainer's lanes: with node perturbation G
        carries the activation LSB too (G_p = D_j h_p), so g_bits and v_bits are
        act_bits wider and the update shifts act_frac further.
    counter_names : tuple of str
        The trainer's saturation counters (``sat_<name>`` ports), else empty.
    shadow_bits : int or None
        Width of the trainer's theta shadow tap: every memory lane, theta_bits each.
    stream : StreamTiming or None
        The streaming trainer's slots and update delay (``hw.pipeline = "stream"``).
    """

    cfg: MGDConfig
    tier: str
    n: int
    gateware: bool = True
    sizes: tuple[int, ...] | None = None
    layout: TrainerLayout | None = None
    timing: TrainerTiming | None = None
    schedule: Schedule | None = None
    node: bool = False
    n_perturbed: int = 0
    update_hw: HardwareConfig | None = None
    counter_names: tuple[str, ...] = ()
    shadow_bits: int | None = None
    stream: StreamTiming | None = None

    @property
    def hw(self) -> HardwareConfig:
        return self.cfg.hw

    @property
    def trainer(self) -> bool:
        return self.tier == "trainer"

    @functools.cached_property
    def update_cfg(self) -> MGDConfig:
        """The config of the trainer's weight-update arithmetic (``update_hw``, fully
        parallel): what ``WeightUpdateModel`` is built with inside the trainer model."""
        if self.update_hw is None:
            raise ValueError("update_cfg belongs to a trainer spec")
        return dataclasses.replace(self.cfg, hw=dataclasses.replace(self.update_hw, lanes=0))

    def code_key(self, p: int) -> int:
        """The constant key of perturbed quantity ``p`` against the shared code state:
        the 3-bit LFSR mask (code), p + 1 (walsh: the Hadamard row) or p (time)."""
        kind = self.cfg.mgd.perturbation
        if kind == "code":
            return self.code_masks[p]
        return p + 1 if kind == "walsh" else p

    @functools.cached_property
    def code_masks(self) -> tuple[int, ...]:
        """The LFSR masks of code multiplexing, one per perturbed quantity."""
        count = self.n_perturbed or self.n
        return tuple(int(k) for k in code_masks(count, self.hw.lfsr_bits))

    def step_cycles(self, steps: int) -> int:
        """The trainer's exact cycle count for ``steps`` steps, from reset (CLEAR
        included): the first cycle of step ``steps``. Streaming trainer: the first
        cycle of the slot after the last step's perturbed evaluation
        (``StreamTiming.step_evals``; slot 0's first cycle for no steps)."""
        if self.schedule is None:
            raise ValueError("step_cycles belongs to a trainer spec")
        if self.stream is not None:
            m = self.cfg.mgd
            last = self.stream.step_evals(steps, m.tau_x, m.tau_theta)[-1] if steps else -1
            return int(self.stream.slot_cycle(last + 1))
        return int(self.schedule.step_start(np.array([steps]))[0])


def hw_spec(cfg: MGDConfig, gateware: bool = True) -> HwSpec:
    """The spec of ``cfg``: validated for hardware (``gateware``: also for what the
    gateware builds, e.g. the trainer's rules when ``hw.datapath = "mlp"``), derived
    once and cached by the config's JSON.

    Raises :class:`~golden_model.config.ConfigError` (one line) on a bad config.
    """
    key = (cfg.to_json(), gateware)
    spec = _SPECS.get(key)
    if spec is None:
        if len(_SPECS) >= 64:  # bounded: sweeps make many configs
            _SPECS.pop(next(iter(_SPECS)))
        spec = _SPECS[key] = _build(cfg, gateware)
    return spec


def trainer_spec(cfg: MGDConfig, gateware: bool = True) -> HwSpec:
    """``hw_spec`` of a trainer config; one line naming hw.datapath otherwise."""
    if cfg.hw.datapath != "mlp":
        raise ConfigError(
            f"hw.datapath must be 'mlp' for the on-chip trainer, not {cfg.hw.datapath!r}")
    return hw_spec(cfg, gateware)


def as_spec(cfg_or_spec: MGDConfig | HwSpec, gateware: bool = True) -> HwSpec:
    """A spec given as is, or the ``hw_spec`` of a config: what the blocks' and models'
    constructors call, so callers may hand either."""
    if isinstance(cfg_or_spec, HwSpec):
        return cfg_or_spec
    return hw_spec(cfg_or_spec, gateware)


# Specs by (config JSON, tier): equal configs share one spec (configs are frozen).
_SPECS: dict[tuple[str, bool], HwSpec] = {}


def _build(cfg: MGDConfig, gateware: bool) -> HwSpec:
    check_config(cfg)  # a config made without build_config (tests) is checked too
    check_hardware(cfg)
    if cfg.hw.datapath != "mlp":
        return HwSpec(cfg, "block", cfg.hw.n_params, gateware)
    if gateware:
        check_trainer(cfg)
    return _trainer_spec(cfg, gateware)


def _trainer_spec(cfg: MGDConfig, gateware: bool) -> HwSpec:
    h = cfg.hw
    layout = TrainerLayout(cfg)
    node = cfg.mgd.mode == "node"
    update_hw = h
    if node:
        update_hw = dataclasses.replace(
            h, g_bits=h.g_bits + h.act_bits, v_bits=h.v_bits + h.act_bits,
            eta_shift=h.eta_shift + h.act_frac)
    return HwSpec(
        cfg, "trainer", layout.n_params, gateware,
        sizes=tuple(network_sizes(cfg)),
        layout=layout,
        timing=TrainerTiming.from_config(cfg),
        schedule=Schedule(cfg),
        node=node,
        n_perturbed=layout.n_nodes if node else layout.n_params,
        update_hw=update_hw,
        counter_names=TRAINER_COUNTERS,
        shadow_bits=sum(x.rows * x.lanes for x in layout.layers) * h.theta_bits,
        stream=StreamTiming.from_config(cfg) if h.pipeline == "stream" else None,
    )
