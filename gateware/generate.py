"""Verilog generation: the configured top (or one block) as a Verilog module.

The tops and their factories are the records of :mod:`gateware.tops`. Each is built
from the same validated config object the golden model uses.
"""

from __future__ import annotations

import re

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


# Yosys' write_verilog gives every module with a combinational process one register,
# ``reg \$auto$verilog_backend.cc:N:dump_module$M = 0;``, that every ``always @*``
# block reads (``if (\$auto$... ) begin end``): the event of its initial value makes
# each block run once at time zero, also a block whose real inputs never change.
_TRIGGER_DECL = re.compile(
    r"^(?P<indent>[ \t]*)reg (?P<name>\\\$auto\$verilog_backend\S*) +=\s*(?P<init>[^;]+);$",
    re.M)


def portable_verilog(text: str) -> str:
    """``text`` with the time-zero trigger of its ``always @*`` blocks made portable.

    Yosys' Verilog relies on a declaration initializer (``reg \\$auto$... = 0;``) to
    evaluate every combinational ``always @*`` block once at time zero. In Verilog-2005
    a declaration initializer is an ``initial`` assignment, an event at time zero that
    the waiting blocks see. In SystemVerilog (IEEE 1800 6.8: a variable's initializer
    is set before any process starts) it is no event at all, so under ``iverilog
    -g2012`` (cocotb's default) or an SV-mode simulator a block whose inputs never
    change stays X for ever (the trainer never leaves CLEAR).

    The fix: declare the register without initializer and give it its value with a
    nonblocking assignment in an ``initial`` block, ``initial r <= 1'b0;``. Its value
    goes from X to 0, which is an event in both language modes; and a nonblocking
    update happens in the NBA region of time zero (IEEE 1364-2005 11.4, IEEE 1800
    4.4.2.6), only after every process started at time zero has run up to its first
    wait, so every ``always @*`` block is already waiting on its event control and sees
    the change, whatever order the simulator starts processes in. A blocking ``initial
    r = 1'b0;`` would race with the ``always`` blocks; ``initial #0 r = 1'b0;`` would
    work in simulators but Verilator refuses any delay without ``--timing`` or
    ``--no-timing`` (NEEDTIMINGOPT). Verilator executes the nonblocking assignment as
    a blocking one (it evaluates combinational logic without events) and says so with
    ``INITIALDLY``, switched off around that line only by metacomments, so the output
    stays lint clean under any Verilator invocation. Synthesis reads the assignment
    as the register's initial value, as before.
    """
    return _TRIGGER_DECL.sub(
        lambda m: (f"{m['indent']}reg {m['name']} ;\n"
                   f"{m['indent']}/* verilator lint_off INITIALDLY */\n"
                   f"{m['indent']}initial {m['name']}  <= {m['init'].strip()};\n"
                   f"{m['indent']}/* verilator lint_on INITIALDLY */"),
        text)


def verilog_of(component, name: str) -> str:
    """Verilog text of a built component as module ``name``, portable across Verilog
    and SystemVerilog simulators (:func:`portable_verilog`)."""
    from amaranth.back import verilog

    return portable_verilog(verilog.convert(component, name=name, emit_src=False))


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


# The Verilator lint waivers of the generated Verilog (docs/verilog_lint.md), written
# beside it by write_verilog under this name.
WAIVERS_NAME = "lint_waivers.vlt"


def waivers_path():
    """The waiver file in the package (gateware/lint_waivers.vlt)."""
    from pathlib import Path

    return Path(__file__).with_name(WAIVERS_NAME)


class OutputError(OSError):
    """The output folder cannot be created or written (one-line message)."""


def write_verilog(cfg: MGDConfig, top: str, out_dir, force: bool = False, data=None) -> dict:
    """Write ``<name>.v``, ``<name>.json`` (the manifest) and the Verilator waiver file
    ``lint_waivers.vlt`` into out_dir.

    The manifest holds the ports, the full config, the toolkit version, a SHA-256 of
    the Verilog text and the name of the waiver file (``lint_waivers``): ``verilator
    --lint-only -Wall <name>.v lint_waivers.vlt`` in out_dir warns about nothing.
    Existing files are only replaced with ``force`` (a waiver file that is already
    the same is no conflict: several tops can share a folder). ``data``: the task in
    the hardware formats for a top that holds it (loaded when not given).
    """
    import hashlib
    import json
    from importlib.metadata import version
    from pathlib import Path

    out_dir = Path(out_dir)
    name = tops.get(top).module
    v_path, m_path = out_dir / f"{name}.v", out_dir / f"{name}.json"
    w_path = out_dir / WAIVERS_NAME
    if not force:
        existing = [str(p) for p in (v_path, m_path) if p.exists()]
        if w_path.is_file() and w_path.read_text() != waivers_path().read_text():
            existing.append(str(w_path))
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
        "lint_waivers": WAIVERS_NAME,
        "ports": port_list(component),
        "config": cfg.to_dict(),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        v_path.write_text(text)
        m_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        w_path.write_text(waivers_path().read_text())
    except OSError as exc:  # e.g. a parent of -o is a file, or no permission
        raise OutputError(f"cannot write to -o '{out_dir}': {exc.strerror or exc}") from None
    return {"verilog": str(v_path), "manifest": str(m_path), "lint_waivers": str(w_path),
            "module": name,
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
