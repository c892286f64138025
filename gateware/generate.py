"""Verilog generation: the configured top (or one block) as a Verilog module.

``TOPS`` names every component that can be a top level. Each is built from the same
validated config object the golden model uses.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from golden_model.config import MGDConfig

# top name -> "module:factory"; the factory takes the config and returns a Component.
TOPS: dict[str, str] = {
    "perturb_gen": "gateware.perturb_gen:PerturbGen",
    "cost_acc": "gateware.cost_acc:CostAcc",
    "weight_update": "gateware.weight_update:weight_update",
    "core": "gateware.core:MGDCore",
}


def component_factory(top: str) -> Callable[[MGDConfig], object]:
    if top not in TOPS:
        raise ValueError(f"--top must be one of {', '.join(TOPS)}, not {top!r}")
    module, attr = TOPS[top].split(":")
    return getattr(import_module(module), attr)


def build(cfg: MGDConfig, top: str):
    """The Amaranth component of ``top`` for this config (hardware-validated)."""
    cfg.validate_hardware()
    return component_factory(top)(cfg)


def verilog_for(cfg: MGDConfig, top: str, name: str | None = None) -> str:
    """Verilog text of ``top`` as module ``name`` (default ``mgd_<top>``)."""
    from amaranth.back import verilog

    component = build(cfg, top)
    return verilog.convert(component, name=name or f"mgd_{top}", emit_src=False)
