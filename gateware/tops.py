"""The registry of tops: every component that can be a top level, one record each.

A :class:`Top` holds what every tool needs about one top: ``mgd-hw generate`` (the
Verilog module name, the Amaranth factory, which ``hw.datapath`` it belongs to),
``mgd-hw sim`` and ``mgd-hw regress`` (the golden model, the cocotb testbench, the
default regression length and seeds), the bare Verilator harness (``sim/bare*.py``)
and the benchmarks. Adding a top is adding one record to :data:`TOPS`.

Pieces outside gateware (the testbenches, the bare harnesses) are named by module
path strings, so this module imports nothing of ``sim`` (the layering is
golden_model <- gateware <- sim <- mgd_hw); :func:`resolve` imports them on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from golden_model.config import ConfigError, MGDConfig
from golden_model.hw_spec import HwSpec, hw_spec


def resolve(path: str) -> Any:
    """The object a ``"package.module:name"`` path names (or the module, without ``:``)."""
    module, _, attr = path.partition(":")
    mod = import_module(module)
    return getattr(mod, attr) if attr else mod


@dataclass(frozen=True)
class Bare:
    """How the bare Verilator harness (a C++ main, no Python per cycle) runs a top.

    Attributes
    ----------
    harness
        Module of the top's harness pieces: for a block driven by the counter-based
        stimulus of ``sim.bare``, its C++ ``SETUP`` and ``DRIVE`` snippets and
        ``model_outputs`` (the golden model on the same stimulus); for the trainer,
        ``sim.bare_trainer`` (it runs on its own).
    requires
        (dotted config field, value) pairs a config must have for the harness, e.g.
        ``("mgd.perturbation", "code")``.
    bench
        The config of ``bench/bench_hw.py`` (plain-data layers), empty when the top is
        not benchmarked there.
    bench_cycles
        Cycles of that benchmark: (full, ``--quick``).
    bench_tick_cycles
        Cycles of its per-cycle model (``tick``, for scale).
    """

    harness: str
    requires: tuple[tuple[str, Any], ...] = ()
    bench: dict = field(default_factory=dict)
    bench_cycles: tuple[int, int] = (0, 0)
    bench_tick_cycles: int = 0

    def refusal(self, spec: HwSpec, top: str) -> str | None:
        """Why the config of ``spec`` cannot run in this harness (one line), or None."""
        for dotted, want in self.requires:
            value = spec.cfg
            for part in dotted.split("."):
                value = getattr(value, part)
            if value != want:
                need = f"{dotted} {want!r}" if isinstance(want, str) else f"{dotted} = {want}"
                return f"bare runs of {top} need {need}, not {value!r}"
        return None


@dataclass(frozen=True)
class Top:
    """One top level: what generate, sim, regress, bench and the bare harness need.

    Attributes
    ----------
    name
        The ``--top`` name (and the block's name in golden_model/, gateware/, sim/).
    datapath
        The ``hw.datapath`` whose configs describe it ("none": the stand-alone blocks
        and MGDCore; "mlp": the on-chip trainer).
    factory
        ``"module:callable"`` of the Amaranth component; it takes the config (and, with
        ``needs_data``, the task in the hardware formats, ``HwData``).
    model
        ``"module:class"`` of the bit-exact golden model.
    testbench
        The cocotb test module (``sim.runner.run_cocotb``'s ``test_module``).
    default
        This top is the default ``--top`` of its datapath's configs.
    needs_data
        The component holds the data set (the trainer's sample memory).
    regress_cycles
        Cycles of one regression job (blocks; the trainer runs the config's steps).
    regress_seeds
        Stimulus seeds of the regression (the trainer: run indices).
    bare
        The bare harness's support, or None.
    """

    name: str
    datapath: str
    factory: str
    model: str
    testbench: str
    default: bool = False
    needs_data: bool = False
    regress_cycles: int = 100_000
    regress_seeds: tuple[int, ...] = (1, 2)
    bare: Bare | None = None

    @property
    def module(self) -> str:
        """The Verilog module name (and the stem of generate's files)."""
        return f"mgd_{self.name}"

    @property
    def tier(self) -> str:
        """"block" (a stand-alone block or the core) or "trainer"."""
        return "trainer" if self.datapath == "mlp" else "block"

    def spec(self, cfg: MGDConfig) -> HwSpec:
        """The spec of ``cfg`` (validated once, cached) for this top: a ConfigError
        when the config's tier is not the top's."""
        spec = hw_spec(cfg)
        if spec.tier == self.tier:
            return spec
        if spec.trainer:
            raise ConfigError(
                f"--top {self.name} needs hw.datapath 'none'; a config with hw.datapath "
                "'mlp' describes the on-chip trainer (--top trainer)"
            )
        raise ConfigError(
            f"--top {self.name} needs hw.datapath 'mlp' (the on-chip network), not 'none'"
        )

    def component_factory(self):
        return resolve(self.factory)

    def model_class(self):
        return resolve(self.model)


TOPS: dict[str, Top] = {t.name: t for t in (
    Top("perturb_gen", "none", "gateware.perturb_gen:PerturbGen",
        "golden_model.perturb_gen:PerturbGenModel", "sim.tb_perturb_gen",
        bare=Bare("sim.bare_perturb_gen", (("mgd.perturbation", "code"),),
                  bench={"hw": {"n_params": 1024, "lfsr_bits": 24}, "mgd": {"tau_p": 1}},
                  bench_cycles=(4_000_000, 500_000), bench_tick_cycles=50_000)),
    Top("cost_acc", "none", "gateware.cost_acc:CostAcc",
        "golden_model.cost_acc:CostAccModel", "sim.tb_cost_acc"),
    Top("weight_update", "none", "gateware.weight_update:weight_update",
        "golden_model.weight_update:WeightUpdateModel", "sim.tb_weight_update",
        bare=Bare("sim.bare_weight_update", (("hw.lanes", 0),),
                  bench={"hw": {"n_params": 1024, "lanes": 0}},
                  bench_cycles=(300_000, 30_000), bench_tick_cycles=3_000)),
    Top("core", "none", "gateware.core:MGDCore", "golden_model.core:MGDCoreModel",
        "sim.tb_core", default=True),
    Top("trainer", "mlp", "gateware.trainer:trainer_for_config",
        "golden_model.trainer:HwTrainer", "sim.tb_trainer", default=True, needs_data=True,
        regress_seeds=(0, 1), bare=Bare("sim.bare_trainer")),
)}


def load_data(cfg: MGDConfig):
    """The config's task in the hardware formats (``HwData``): what a ``needs_data``
    top is built from. Load it once per run and hand it on."""
    from golden_model.datapath import HwData
    from golden_model.datasets import load_dataset

    return HwData.from_dataset(load_dataset(cfg.task, cfg.seed), cfg.hw)


def get(name: str) -> Top:
    """The record of ``name``; a ValueError naming the tops otherwise."""
    if name not in TOPS:
        raise ValueError(f"--top must be one of {', '.join(TOPS)}, not {name!r}")
    return TOPS[name]


def tops_of(datapath: str) -> tuple[Top, ...]:
    """The tops of one ``hw.datapath``, in registry order."""
    return tuple(t for t in TOPS.values() if t.datapath == datapath)


def default_top(cfg: MGDConfig) -> str:
    """The default top of the config's ``hw.datapath`` (MGDCore or the trainer)."""
    return next(t.name for t in tops_of(cfg.hw.datapath) if t.default)


def bare_tops(kind: str = "block") -> tuple[Top, ...]:
    """The tops the bare harness runs: those of the stimulus harness (``"block"``) or
    the autonomous trainer's (``"trainer"``)."""
    return tuple(t for t in TOPS.values() if t.bare is not None and t.tier == kind)

