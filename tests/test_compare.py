"""``mgd-hw compare`` (mgd_hw.compare, mgd_hw.formats, mgd_hw.compare_report) and the
sub-LSB counter of golden_model.trainer.

Short XOR runs (a few hundred steps) without RTL, and one with a short RTL run under
Verilator. Every output goes to tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, acc_bits_needed, build_config, load_config
from golden_model.datapath import HwData
from golden_model.datasets import load_dataset
from golden_model.fixed import sat
from golden_model.float_twin import float_twin
from golden_model.hw_spec import trainer_spec
from golden_model.train import train_mgd
from golden_model.train_hw import train_hw
from golden_model.trainer import HwTrainer
from golden_model.trainer_image import initial_theta
from mgd_hw.cli import main
from mgd_hw.compare import CompareSettings, prepare, run_compare
from mgd_hw.formats import Shift, parse_widths, shift_formats, wide_twin, width_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
XOR = str(EXAMPLES / "hw_xor.toml")
TRAINERS = ["hw_xor", "hw_parity3", "hw_digits", "hw_digits_node"]
SHORT = {"steps": 400, "eval_every": 100, "runs": 2}


def _cfg(name: str = "hw_xor", **top):
    return build_config(load_config(EXAMPLES / f"{name}.toml").to_dict(), top)


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mgd-hw: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _real(cfg) -> tuple:
    t = float_twin(cfg).mgd
    return t.eta, t.dtheta, t.clamp, t.optimizer, t.momentum


# ------------------------------------------------------------------- format shifts


@pytest.mark.parametrize("name", TRAINERS)
def test_wide_twin_is_the_same_algorithm_in_real_units(name):
    cfg = _cfg(name)
    wide, shift = wide_twin(cfg)
    assert shift.theta == shift.cost >= 8 and shift.z >= 8 and shift.act >= 8
    h, w = cfg.hw, wide.hw
    assert w.theta_frac - h.theta_frac == shift.theta
    assert w.theta_bits - w.theta_frac == h.theta_bits - h.theta_frac  # same range
    assert w.act_bits - w.act_frac == h.act_bits - h.act_frac
    assert w.cost_bits - w.cost_frac == h.cost_bits - h.cost_frac
    assert (w.x_bits, w.x_frac) == (h.x_bits, h.x_frac)
    assert _real(wide) == _real(cfg)
    trainer_spec(wide)
    # a learning rate in real units: G_real 2^(cost_frac - eta_shift - theta_frac)
    assert w.cost_frac - w.eta_shift - w.theta_frac == h.cost_frac - h.eta_shift - h.theta_frac


def test_zero_shift_is_the_config_itself():
    cfg = _cfg("hw_digits")
    assert shift_formats(cfg, Shift()).to_dict() == cfg.to_dict()


def test_clamp_and_momentum_are_kept():
    cfg = _cfg(**{"hw": {"clamp": 300, "momentum_shift": 2}})
    wide, shift = wide_twin(cfg)
    assert wide.hw.clamp == 300 << shift.cost
    assert _real(wide) == _real(cfg)
    with pytest.raises(ConfigError, match="hw.clamp"):
        shift_formats(_cfg(**{"hw": {"clamp": 3}}), Shift(cost=-1, theta=-1))


def test_width_config_moves_the_fraction_and_the_accumulator():
    cfg = _cfg("hw_digits")
    narrow = width_config(cfg, "act_bits", 8)
    h = narrow.hw
    assert (h.act_bits, h.act_frac) == (8, 6)
    assert h.acc_bits == max(acc_bits_needed(h, 64, h.x_bits, h.x_frac),
                             acc_bits_needed(h, 16, h.act_bits, h.act_frac))
    assert _real(narrow) == _real(cfg)
    t = width_config(cfg, "theta_bits", 12).hw  # the docs' example: amplitude = 1 LSB
    assert (t.theta_frac, t.amp_log2, t.eta_shift) == (8, 0, 6)
    c = width_config(cfg, "cost_bits", 18).hw
    assert (c.cost_frac, c.ctilde_bits, c.g_bits, c.eta_shift) == (14, 18, 26, 4)


@pytest.mark.parametrize("field, bits, message", [
    ("theta_bits", 10, "hw.amp_log2 would be -2 .* the narrowest theta_bits that keeps it is 12"),
    ("theta_bits", 20, "hw.eta_shift would be -2 .* the widest theta_bits that keeps it is 18"),
    ("act_bits", 6, "--widths act_bits=6: hw.cost_frac must be at most 8"),
    ("act_bits", 30, "--widths act_bits=30: hw.act_bits must be an integer from 2 to 24"),
])
def test_width_config_errors(field, bits, message):
    with pytest.raises(ConfigError, match=message):
        width_config(_cfg("hw_digits"), field, bits)


def test_parse_widths():
    assert parse_widths("act_bits=12,8,10") == ("act_bits", [8, 10, 12])
    assert parse_widths("hw.theta_bits = 12, 16") == ("theta_bits", [12, 16])


@pytest.mark.parametrize("spec, message", [
    ("act_bits", "FIELD=V1,V2"),
    ("lanes=1,2", "must be one of theta_bits, act_bits, z_bits, cost_bits, not 'lanes'"),
    ("act_bits=8,x", "comma-separated integers"),
    ("act_bits=", "comma-separated integers"),
    ("act_bits=0,8", "positive integers"),
    ("act_bits=8,8", "twice"),
])
def test_parse_widths_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_widths(spec)


# ------------------------------------------------------ the twin and the sub-LSB count


def test_wide_twin_starts_equal_and_takes_the_same_steps():
    cfg = _cfg()
    wide, shift = wide_twin(cfg)
    data = load_dataset(cfg.task, cfg.seed)
    theta0, _ = initial_theta(cfg)
    fixed = HwTrainer(cfg, HwData.from_dataset(data, cfg.hw))
    twin = HwTrainer(wide, HwData.from_dataset(data, wide.hw), theta0=theta0 << shift.theta)
    assert np.array_equal(fixed.theta << shift.theta, twin.theta)  # zero error at step 0
    fixed.advance(cfg.mgd.tau_theta)
    twin.advance(cfg.mgd.tau_theta)
    # One update: both moved by the same real step, up to the fixed point's rounding.
    step_f = (fixed.theta - theta0) * 2.0**-cfg.hw.theta_frac
    step_w = (twin.theta - (theta0 << shift.theta)) * 2.0**-wide.hw.theta_frac
    rms = float(np.sqrt(np.mean(step_f**2)))
    assert rms > 0.01
    assert np.sqrt(np.mean((step_f - step_w) ** 2)) < 0.1 * rms


@pytest.mark.parametrize("momentum", [0, 2])
def test_sub_lsb_count_by_hand_and_numbers_unchanged(momentum):
    # eta_shift 3 on XOR so some steps round to zero (the example's eta_shift is 0).
    cfg = _cfg(steps=200, eval_every=100, hw={"eta_shift": 3, "momentum_shift": momentum})
    h = cfg.hw
    data = HwData.from_dataset(load_dataset(cfg.task, cfg.seed), h)
    # the NumPy path, whose weight-update unit the spy below can watch
    plain = HwTrainer(cfg, data, compiled=False)
    counted = HwTrainer(cfg, data, count_sub_lsb=True)
    # What the weight-update unit holds when it is told to update: G (and the old V).
    seen = []
    tick = plain.wu.tick

    def spy(**kwargs):
        if kwargs.get("update"):
            seen.append((plain.wu.G.copy(), plain.wu.V.copy()))
        tick(**kwargs)

    plain.wu.tick = spy
    plain.advance(cfg.steps)
    counted.advance(cfg.steps)
    assert np.array_equal(plain.theta, counted.theta)
    assert plain.counters() == counted.counters()
    nonzero = below = 0
    for g, v in seen:
        src = sat(v - (v >> momentum) + g, h.v_bits)[0] if momentum else g
        step = np.floor((src + 4) / 8)  # round half up of src / 2^3
        nonzero += int(np.count_nonzero(src))
        below += int(np.count_nonzero((src != 0) & (step == 0)))
    assert counted.sub_lsb.updates == len(seen) == cfg.steps // cfg.mgd.tau_theta
    assert (counted.sub_lsb.nonzero, counted.sub_lsb.below_lsb) == (nonzero, below)
    assert below > 0
    assert plain.sub_lsb is None


# ---------------------------------------------------------------- run_compare (no RTL)


@pytest.fixture(scope="module")
def xor_result():
    # cost_shift 1: the hardware cost is 2x the float model's mean squared error
    cfg = _cfg(**SHORT, hw={"cost_shift": 1})
    plan = prepare(cfg, CompareSettings(widths=[("act_bits", [12, 16])], sweep_runs=1))
    data = load_dataset(cfg.task, cfg.seed)
    return cfg, data, run_compare(plan, data)


def test_float_and_fixed_curves_are_the_models_runs(xor_result):
    cfg, data, res = xor_result
    steps = [0, 100, 200, 300, 400]
    curves = res["curves"]
    assert curves["steps"] == steps
    for r in range(cfg.runs):
        own = train_hw(cfg, data, r).history
        fixed_acc = [row[r] for row in curves["fixed"]["test_acc"]]
        assert fixed_acc == own.array("test_acc")[:, 0].tolist()
        # the hardware cost (sum_o (y - t)^2 / 2^cost_shift) in the float model's units
        # (the mean over the outputs)
        cost = [row[r] for row in curves["fixed"]["cost"]]
        assert np.allclose(cost, 2 * own.array("cost")[:, 0])
    assert res["summary"]["fixed"]["median_final_cost"] == np.median(curves["fixed"]["cost"][-1])
    flt = train_mgd(float_twin(cfg), data).history
    assert curves["float"]["test_acc"] == flt.array("test_acc").tolist()
    for name in ("float", "fixed", "wide"):
        for metric in ("test_acc", "train_acc", "cost"):
            assert np.array(curves[name][metric]).shape == (len(steps), cfg.runs)


def test_parameter_error_starts_at_zero_and_grows(xor_result):
    _, _, res = xor_result
    pe = res["param_error"]
    assert pe["steps"] == res["curves"]["steps"]
    assert pe["rms"][0] == [0.0, 0.0] and pe["max"][0] == [0.0, 0.0]
    rms, mx = np.array(pe["rms"]), np.array(pe["max"])
    assert (rms[1:] > 0).all() and (mx >= rms).all()
    assert pe["moved_rms"][0] == [0.0, 0.0] and (np.array(pe["moved_rms"])[1:] > 0).all()
    assert pe["theta_lsb"] == 2.0**-10
    assert res["summary"]["param_error_final"]["rms"] == float(np.median(rms[-1]))


def test_numerics(xor_result):
    cfg, _, res = xor_result
    n = res["numerics"]
    sub = n["sub_lsb"]
    assert sub["updates"] == cfg.runs * cfg.steps // cfg.mgd.tau_theta
    # XOR's eta_shift is 0: every non-zero G moves its parameter
    assert sub["below_lsb"] == 0 and sub["fraction"] == 0.0
    assert 0 < sub["nonzero"] <= sub["updates"] * cfg.hw.n_params
    assert len(sub["interval_fraction"]) == len(res["curves"]["steps"]) - 1
    assert set(n["saturations"]) == {"z", "act", "cost", "ctilde", "d", "g", "theta"}
    assert res["rtl"] is None


def test_width_sweep_reuses_the_config_point(xor_result):
    cfg, data, res = xor_result
    (sweep,) = res["widths"]
    assert sweep["field"] == "act_bits" and sweep["config_bits"] == 16
    assert [p["bits"] for p in sweep["points"]] == [12, 16]
    assert sweep["points"][0]["act_frac"] == 8
    # act_bits 16 is the config: its point is the main run 0
    assert sweep["points"][1]["final_test_acc"] == [res["curves"]["fixed"]["test_acc"][-1][0]]
    narrow = width_config(_cfg(**{**SHORT, "runs": 1}, hw={"cost_shift": 1}), "act_bits", 12)
    acc = train_hw(narrow, data, 0).history.array("test_acc")[:, 0]
    assert sweep["points"][0]["final_test_acc"] == [acc[-1]]
    assert sweep["points"][0]["max_test_acc"] == [acc.max()]


# ------------------------------------------------------------------------- the CLI

CLI_SHORT = ["--config", XOR, "--steps", "400", "--eval-every", "100", "--runs", "2",
             "--quiet", "--no-rtl"]


def test_cli_writes_the_report(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *CLI_SHORT, "--widths", "act_bits=12,14", "--sweep-runs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("compare xor 2-2-1 weight/code, 400 steps, 2 run(s)")
    assert "RTL: not run" in printed and f"report in {out / 'report.md'}" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "compare.json", "curves.png", "param_error.png", "report.md", "widths.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads((out / "compare.json").read_text())
    assert {"summary", "config", "wide_twin", "float_twin", "curves", "param_error",
            "numerics", "rtl", "widths"} <= set(res)
    report = (out / "report.md").read_text()
    for part in ("## Float vs fixed point", "## Parameter error", "## Numerics",
                 "## Fixed point vs RTL", "## Widths", "](curves.png)", "](widths.png)",
                 "mgd-hw compare --config"):
        assert part in report

    # a folder with results is refused (one line, before any run), then --force
    assert main(["compare", *CLI_SHORT, "--out", str(out)]) == 2
    assert "is not empty; pass --force" in _one_error_line(capsys.readouterr().err)
    assert main(["compare", *CLI_SHORT, "--out", str(out), "--force", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["widths"] == [] and not (out / "widths.png").exists()
    assert "No sweep" in (out / "report.md").read_text()


def test_cli_refuses_any_non_empty_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["compare", *CLI_SHORT, "--out", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("argv, message", [
    (["--config", str(EXAMPLES / "xor.toml")], "needs a trainer config (hw.datapath = 'mlp'"),
    (["--config", str(EXAMPLES / "hw_core_lfsr.toml")], "needs a trainer config"),
    (["--config", XOR, "--widths", "act_bits"], "--widths takes FIELD=V1,V2"),
    (["--config", XOR, "--widths", "lanes=2"], "--widths field must be one of"),
    (["--config", XOR, "--widths", "theta_bits=10"], "narrowest theta_bits that keeps it is 12"),
    (["--config", XOR, "--widths", "act_bits=12", "--widths", "act_bits=14"], "twice"),
    (["--config", XOR, "--rtl-steps", "0"], "--rtl-steps must be from 1 to the config's steps"),
    (["--config", XOR, "--rtl-steps", "30001"], "--rtl-steps must be from 1"),
    (["--config", XOR, "--rtl-steps", "10", "--no-rtl"], "exclude each other"),
    (["--config", XOR, "--sweep-runs", "0"], "--sweep-runs must be a positive integer"),
    (["--config", XOR, "--set", "hw.act_bits=40"], "hw.act_bits must be an integer from 2 to 24"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert main(["compare", *argv, "--out", str(out)]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_cli_reports_an_rtl_divergence(tmp_path, capsys, monkeypatch):
    # The verdict path without Verilator: a run_trainer that reports a mismatch.
    import sim.trainer_run
    from sim.trainer_run import TrainerSimResult

    def fake(cfg, **kwargs):
        return TrainerSimResult(cfg, False, "cycle 1234: signal cost: expected 5, got 6",
                                str(tmp_path / "build"), 0.1)

    monkeypatch.setattr(sim.trainer_run, "run_trainer", fake)
    out = tmp_path / "cmp"
    argv = [a for a in CLI_SHORT if a != "--no-rtl"]
    assert main(["compare", *argv, "--rtl-steps", "200", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "RTL (run 0, 200 steps): DIVERGES: cycle 1234: signal cost: expected 5, got 6" in printed
    res = json.loads((out / "compare.json").read_text())
    assert res["rtl"]["identical"] is False and res["summary"]["rtl"]["steps"] == 200
    assert "DIVERGES: cycle 1234" in (out / "report.md").read_text()


# ----------------------------------------------------------------------------- RTL


def test_compare_with_a_short_rtl_run(build_root, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["--config", XOR, "--steps", "400", "--eval-every", "100", "--runs", "1",
            "--quiet", "--rtl-steps", "300", "--out", str(out)]
    assert main(["compare", *argv]) == 0
    printed = capsys.readouterr().out
    assert "RTL (run 0, 300 steps): identical to the fixed-point model at all 75 updates" in printed
    rtl = json.loads((out / "compare.json").read_text())["rtl"]
    assert rtl["identical"] and rtl["testbench_passed"]
    assert rtl["theta_sha256_rtl"] == rtl["theta_sha256_model"]
    assert rtl["rtl_test_acc"] == rtl["model_test_acc"]
    assert rtl["steps"] == 300 and rtl["updates"] == 75 and rtl["cycles"] > 0


def test_saturations_say_what_they_mean() -> None:
    from mgd_hw.compare_report import saturation_text

    text = saturation_text({"z": 5378, "theta": 2}, 1_200_000, [2, 2, 1])
    assert text.startswith("z 5,378 (0.15% of z values), theta 2; a saturated value was "
                           "clipped to its format's limit")
    assert "too narrow" in text
    assert saturation_text({}, 10, [2, 2, 1]).startswith("none")
