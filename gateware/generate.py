"""Verilog generation: the configured top (or one block) as a Verilog module.

The tops and their factories are the records of :mod:`gateware.tops`. Each is built
from the same validated config object the golden model uses.
"""

from __future__ import annotations

from golden_model.config import MGDConfig

from . import tops


def build(cfg: MGDConfig, top: str, data=None, **options):
    """The Amaranth component of ``top`` for this config (hardware-validated).

    ``data`` is the task in the hardware formats (``HwData``) for a top that holds it
    (the trainer), loaded here when not given; ``options`` go to the factory (the
    trainer's ``trace_depth``, ``run``).
    """
    record = tops.get(top)
    record.spec(cfg)  # validated once per config (cached), for the top's tier
    factory = record.component_factory()
    if record.needs_data:
        return factory(cfg, tops.load_data(cfg) if data is None else data, **options)
    return factory(cfg, **options)


def verilog_of(component, name: str) -> str:
    """Verilog text of a built component as module ``name``."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def verilog_for(cfg: MGDConfig, top: str, name: str | None = None, data=None,
                **options) -> str:
    """Verilog text of ``top`` as module ``name`` (default the top's module name)."""
    return verilog_of(build(cfg, top, data, **options), name or tops.get(top).module)


def port_list(component) -> list[dict]:
    """Every port of a component: name, direction, width, signedness (clk, rst first).

    Read from the component's metadata (``amaranth.lib.wiring.ComponentMetadata``), so
    a member that is itself an interface (a stream) lists its ports under the names
    the Verilog gives them.
    """
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False},
        {"name": "rst", "direction": "input", "width": 1, "signed": False},
    ]

    def walk(members: dict) -> None:
        for member in members.values():
            if member["type"] == "interface":
                walk(member["members"])
                continue
            ports.append({"name": member["name"],
                          "direction": "input" if member["dir"] == "in" else "output",
                          "width": member["width"], "signed": member["signed"]})

    walk(component.metadata.as_json()["interface"]["members"])
    return ports


class OutputError(OSError):
    """The output folder cannot be created or written (one-line message)."""


def write_verilog(cfg: MGDConfig, top: str, out_dir, force: bool = False, data=None) -> dict:
    """Write ``<name>.v`` and ``<name>.json`` (the manifest) into out_dir.

    The manifest holds the ports, the full config, the toolkit version and a SHA-256
    of the Verilog text. Existing files are only replaced with ``force``. ``data``: the
    task in the hardware formats for a top that holds it (loaded when not given).
    """
    import hashlib
    import json
    from importlib.metadata import version
    from pathlib import Path

    out_dir = Path(out_dir)
    name = tops.get(top).module
    v_path, m_path = out_dir / f"{name}.v", out_dir / f"{name}.json"
    if not force:
        existing = [str(p) for p in (v_path, m_path) if p.exists()]
        if existing:
            raise FileExistsError(
                f"{', '.join(existing)} already exist; pass --force to overwrite them"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"-o '{out_dir}' is a file, not a folder")
    component = build(cfg, top, data)
    text = verilog_of(component, name)
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
