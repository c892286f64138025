"""Verilog generation: the configured top (or one block) as a Verilog module.

``TOPS`` names every component that can be a top level. Each is built from the same
validated config object the golden model uses.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from golden_model.config import ConfigError, MGDConfig

# top name -> "module:factory"; the factory takes the config and returns a Component.
TOPS: dict[str, str] = {
    "perturb_gen": "gateware.perturb_gen:PerturbGen",
    "cost_acc": "gateware.cost_acc:CostAcc",
    "weight_update": "gateware.weight_update:weight_update",
    "core": "gateware.core:MGDCore",
    "trainer": "gateware.trainer:trainer_for_config",
}
# The tops of each hw.datapath: the blocks and MGDCore stand alone ("none"); the
# on-chip trainer has its own network ("mlp").
DATAPATH_TOPS = {"none": ("perturb_gen", "cost_acc", "weight_update", "core"),
                 "mlp": ("trainer",)}


def default_top(cfg: MGDConfig) -> str:
    """``core`` for the blocks' configs, ``trainer`` for hw.datapath = "mlp"."""
    return "trainer" if cfg.hw.datapath == "mlp" else "core"


def component_factory(top: str) -> Callable[[MGDConfig], object]:
    if top not in TOPS:
        raise ValueError(f"--top must be one of {', '.join(TOPS)}, not {top!r}")
    module, attr = TOPS[top].split(":")
    return getattr(import_module(module), attr)


def build(cfg: MGDConfig, top: str, **options):
    """The Amaranth component of ``top`` for this config (hardware-validated).

    ``options`` go to the factory (the trainer's ``trace_depth``, ``run``).
    """
    cfg.validate_hardware()
    allowed = DATAPATH_TOPS[cfg.hw.datapath]
    if top in TOPS and top not in allowed:
        if cfg.hw.datapath == "mlp":
            raise ConfigError(
                f"--top {top} needs hw.datapath 'none'; a config with hw.datapath 'mlp' "
                "describes the on-chip trainer (--top trainer)"
            )
        raise ConfigError(
            "--top trainer needs hw.datapath 'mlp' (the on-chip network), not 'none'"
        )
    return component_factory(top)(cfg, **options)


def verilog_for(cfg: MGDConfig, top: str, name: str | None = None, **options) -> str:
    """Verilog text of ``top`` as module ``name`` (default ``mgd_<top>``)."""
    from amaranth.back import verilog

    component = build(cfg, top, **options)
    return verilog.convert(component, name=name or f"mgd_{top}", emit_src=False)


def port_list(component) -> list[dict]:
    """Every port of a component: name, direction, width, signedness (clk, rst first).

    Interface members (the cost streams) are flattened as the Verilog names them:
    ``cost.valid`` is the port ``cost__valid``.
    """
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import Flow

    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False},
        {"name": "rst", "direction": "input", "width": 1, "signed": False},
    ]
    for path, member, _ in component.signature.flatten(component):
        shape = Shape.cast(member.shape)
        ports.append(
            {
                "name": "__".join(path),
                "direction": "input" if member.flow == Flow.In else "output",
                "width": shape.width,
                "signed": shape.signed,
            }
        )
    return ports


class OutputError(OSError):
    """The output folder cannot be created or written (one-line message)."""


def write_verilog(cfg: MGDConfig, top: str, out_dir, force: bool = False) -> dict:
    """Write ``<name>.v`` and ``<name>.json`` (the manifest) into out_dir.

    The manifest holds the ports, the full config, the toolkit version and a SHA-256
    of the Verilog text. Existing files are only replaced with ``force``.
    """
    import hashlib
    import json
    from importlib.metadata import version
    from pathlib import Path

    out_dir = Path(out_dir)
    name = f"mgd_{top}"
    v_path, m_path = out_dir / f"{name}.v", out_dir / f"{name}.json"
    if not force:
        existing = [str(p) for p in (v_path, m_path) if p.exists()]
        if existing:
            raise FileExistsError(
                f"{', '.join(existing)} already exist; pass --force to overwrite them"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"-o '{out_dir}' is a file, not a folder")
    component = build(cfg, top)
    from amaranth.back import verilog

    text = verilog.convert(component, name=name, emit_src=False)
    manifest = {
        "top": top,
        "module": name,
        "toolkit_version": version("mgd-hw"),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "ports": port_list(component),
        "config": cfg.to_dict(),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        v_path.write_text(text)
        m_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    except OSError as exc:  # e.g. a parent of -o is a file, or no permission
        raise OutputError(f"cannot write to -o '{out_dir}': {exc.strerror or exc}") from None
    return {"verilog": str(v_path), "manifest": str(m_path), "module": name,
            "ports": len(manifest["ports"]), "sha256": manifest["verilog_sha256"]}


# Trainer examples small enough to commit (the digits trainers carry 1437 samples in
# their memory images: several MB of Verilog, generated on demand instead).
REFERENCE_TRAINERS = ("hw_xor", "hw_parity3")


def reference_configs(root) -> dict:
    """The named example configs whose Verilog is committed under rtl/: name -> path
    (every examples/hw_core_*.toml and the trainers of ``REFERENCE_TRAINERS``)."""
    from pathlib import Path

    examples = Path(root, "examples")
    paths = sorted(examples.glob("hw_core_*.toml"))
    paths += [examples / f"{stem}.toml" for stem in REFERENCE_TRAINERS]
    return {p.stem: p for p in paths}
