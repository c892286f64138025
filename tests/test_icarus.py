"""The second simulator: Icarus Verilog, in Verilog-2005 and SystemVerilog mode.

- The committed Verilog (rtl/hw_xor, rtl/hw_core_lfsr) behaves as the bit-exact model
  says under ``iverilog -g2005`` and ``-g2012``: the trainer in a bare Icarus run
  (sim/icarus_trainer.py, no cocotb), the core under cocotb's Icarus runner with its
  every-cycle testbench. Before the generator made the time-zero trigger of the
  ``always @*`` blocks portable (gateware.generate.portable_verilog), the trainer never
  left CLEAR under ``-g2012``; ``test_declaration_initializer_hangs_in_sv_mode`` keeps
  that failure reproducible.
- ``mgd-hw sim --simulator icarus`` for every top, with the same verdict and the same
  mismatch report as under Verilator; ``mgd-hw regress --simulator icarus``.

Runs are short (a few thousand cycles, a few hundred steps): Icarus simulates these
designs at a few thousand cycles per second. Every test skips, saying why, where
iverilog is not installed (CI installs it: .ci/run).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golden_model.config import load_config
from mgd_hw.cli import main
from sim.runner import icarus_missing

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STDS = ("2005", "2012")

requires_icarus = pytest.mark.skipif(icarus_missing() is not None,
                                     reason=str(icarus_missing()))


@requires_icarus
@pytest.mark.parametrize("std", STDS)
def test_committed_trainer_in_both_modes(build_root, std):
    from sim import icarus_trainer

    steps = 300
    cfg, res = icarus_trainer.run(ROOT / "rtl" / "hw_xor" / "mgd_trainer.v", steps, std)
    assert res.done, f"-g{std}: done never rose"
    assert icarus_trainer.check(cfg, res, steps) is None
    assert res.outputs["update_count"] == steps // cfg.mgd.tau_theta


@requires_icarus
def test_declaration_initializer_hangs_in_sv_mode(build_root, tmp_path):
    """The Verilog as Yosys writes it (``reg \\$auto$... = 0;``): fine in Verilog-2005,
    stuck in CLEAR in SystemVerilog mode. The generator's rewrite is what fixes it."""
    import re

    from sim import icarus_trainer

    src = ROOT / "rtl" / "hw_xor" / "mgd_trainer.v"
    text = src.read_text()
    yosys = re.sub(r"reg (\S+) ;\n\s*/\* verilator lint_off INITIALDLY \*/\n"
                   r"\s*initial \S+\s+<= ([^;]+);\n\s*/\* verilator lint_on INITIALDLY \*/",
                   r"reg \1  = \2;", text)
    assert yosys != text and "initial \\$auto" not in yosys
    (tmp_path / src.name).write_text(yosys)
    (tmp_path / "mgd_trainer.json").write_text(src.with_suffix(".json").read_text())
    cfg, res = icarus_trainer.run(tmp_path / src.name, 50, "2005")
    assert icarus_trainer.check(cfg, res, 50) is None
    cfg, res = icarus_trainer.run(tmp_path / src.name, 50, "2012")
    assert not res.done
    assert "done never rose" in icarus_trainer.check(cfg, res, 50)


@requires_icarus
@pytest.mark.parametrize("std", STDS)
def test_committed_core_in_both_modes(build_root, std):
    """cocotb's Icarus runner, every output on every cycle, on the Verilog of rtl/."""
    from sim.runner import run_cocotb

    cfg = load_config(EXAMPLES / "hw_core_lfsr.toml")
    res = run_cocotb(cfg, "core", cycles=3000, simulator="icarus", icarus_std=std)
    assert res.passed, res.message
    # what ran is the committed file
    assert (res.build_dir / "mgd_core.v").read_text() == \
        (ROOT / "rtl" / "hw_core_lfsr" / "mgd_core.v").read_text()


@requires_icarus
@pytest.mark.parametrize("top", ["perturb_gen", "cost_acc", "weight_update"])
def test_sim_cli_icarus_blocks(build_root, capsys, top):
    rc = main(["sim", "--simulator", "icarus", "--top", top, "--set", "hw.n_params=4",
               "--cycles", "2000", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["bit_exact"] and out["simulator"] == "icarus" and out["cycles"] == 2000
    assert "_icarus2012" in out["build_dir"]


@requires_icarus
def test_sim_cli_icarus_trainer(build_root, capsys):
    rc = main(["sim", "--simulator", "icarus", "--config", str(EXAMPLES / "hw_xor.toml"),
               "--steps", "100"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("trainer xor 2-2-1 weight/code (icarus), 100 steps in RTL")
    updates = 100 // load_config(EXAMPLES / "hw_xor.toml").mgd.tau_theta
    assert f"bit-exact with the golden model at all {updates} updates" in out


@requires_icarus
def test_icarus_reports_a_mismatch_as_verilator_does(build_root, monkeypatch):
    """The same wrong gateware as tests/test_trainer.py's mismatch test: the same
    first-mismatch report under Icarus."""
    import gateware.weight_update as wu
    from sim.trainer_run import run_trainer

    true_round = wu.shift_round
    monkeypatch.setattr(wu, "shift_round",
                        lambda x, k, r: true_round(x, k, "floor" if r == "half_up" else "half_up"))
    cfg = load_config(EXAMPLES / "hw_xor.toml",
                      {"steps": 200, "hw": {"counter_bits": 31, "eta_shift": 2}})
    res = run_trainer(cfg, simulator="icarus")
    assert not res.passed
    assert "signal theta[" in res.message and "(update 1)" in res.message
    assert res.describe().startswith("trainer xor 2-2-1 weight/code (icarus): MISMATCH: cycle ")


@requires_icarus
def test_regress_runs_on_icarus(build_root):
    """The regression's jobs run under the chosen simulator (a short block job)."""
    from mgd_hw import regress

    job = regress.Job("hw_core_serial/cost_acc/seed1", "hw_core_serial.toml", "cost_acc", 1,
                      cycles=2000)
    [outcome] = regress.run_all([job], 1, simulator="icarus")
    assert outcome.passed, outcome.message
    assert any(p.name.startswith("cost_acc_") and p.name.endswith("_icarus2012")
               for p in build_root.iterdir())


def test_simulator_flag_errors(capsys, monkeypatch):
    assert main(["sim", "--simulator", "modelsim", "--top", "cost_acc"]) == 2
    err = capsys.readouterr().err
    assert err == "mgd-hw: error: --simulator must be one of verilator, icarus, not 'modelsim'\n"
    # no iverilog on PATH: one line that says how to get it
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["sim", "--simulator", "icarus", "--top", "cost_acc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mgd-hw: error: Icarus Verilog is not installed (iverilog and vvp "
                          "not on PATH)")
    assert main(["regress", "--simulator", "icarus", "--filter", "cost_acc"]) == 2
    assert "Icarus Verilog is not installed" in capsys.readouterr().err
