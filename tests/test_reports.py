"""time-to-train, regress and bench: the projections and the command lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import load_config
from golden_model.datasets import load_dataset
from golden_model.hw_layout import Schedule
from mgd_hw import time_to_train as ttt
from mgd_hw.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_cycles_per_setting_follow_the_schedule():
    cfg = load_config(EXAMPLES / "hw_digits.toml")
    for setting in ttt.SETTINGS.values():
        cycles, per_step = ttt.cycles_for(cfg, 1000, setting)
        c = load_config(EXAMPLES / "hw_digits.toml", {"hw": setting})
        assert cycles == int(Schedule(c).step_start(np.array([1000]))[0])
        assert per_step == pytest.approx(cycles / 1000)
    one, _ = ttt.cycles_for(cfg, 1000, ttt.SETTINGS["1 MAC per layer"])
    full, _ = ttt.cycles_for(cfg, 1000, ttt.SETTINGS["fully parallel"])
    assert full < one  # more parallelism, fewer cycles for the same steps


def test_projection_on_xor():
    cfg = load_config(EXAMPLES / "hw_xor.toml", {"steps": 4000})
    data = load_dataset(cfg.task, cfg.seed)
    fmax = {name: (50.0, "given") for name in ttt.SETTINGS}
    p = ttt.project(cfg, data, 1.0, fmax)
    assert p.steps_to_target is not None and p.steps_to_target <= 4000
    assert p.backprop_engine in ("numpy", "pytorch")
    for s in p.settings:
        assert s.fpga_seconds == pytest.approx(s.cycles_to_target / 50e6)
        if p.backprop_seconds:
            assert s.speedup == pytest.approx(p.backprop_seconds / s.fpga_seconds)
            # the step time of a 100x advantage: 100 x that time per step = backprop's
            assert s.step_ns_for_100x * 1e-9 * p.steps_to_target * 100 == pytest.approx(
                p.backprop_seconds)
    text = ttt.format_projection(p)
    assert "1 MAC per layer" in text and "Fmax given, not measured" in text


def test_time_to_train_cli(capsys):
    argv = ["time-to-train", "--config", str(EXAMPLES / "hw_xor.toml"), "--steps", "3000",
            "--target", "1.0", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "xor" and len(out["settings"]) == 3


@pytest.mark.parametrize("argv, message", [
    (["--target", "1.5"], "--target must be an accuracy in (0, 1], not 1.5"),
    (["--fmax", "0"], "--fmax must be a positive number of MHz, not 0.0"),
])
def test_time_to_train_bad_flags(capsys, argv, message):
    assert main(["time-to-train", "--config", str(EXAMPLES / "hw_xor.toml"), *argv]) == 2
    assert capsys.readouterr().err == f"mgd-hw: error: {message}\n"


def test_time_to_train_needs_a_trainer_config(capsys):
    assert main(["time-to-train", "--config", str(EXAMPLES / "hw_core_lfsr.toml")]) == 2
    assert capsys.readouterr().err == (
        "mgd-hw: error: hw.datapath must be 'mlp' for the on-chip trainer, not 'none'\n")


def test_regress_matrix(capsys):
    from mgd_hw import regress

    jobs = regress.jobs(max_steps=500)
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    assert {j.top for j in jobs} == {"perturb_gen", "cost_acc", "weight_update", "core",
                                     "trainer"}
    assert all(j.steps <= 500 for j in jobs if j.top == "trainer")
    assert main(["regress", "--list", "--filter", "hw_parity3"]) == 0
    assert capsys.readouterr().out.split() == ["hw_parity3/trainer/run0",
                                               "hw_parity3/trainer/run1"]


@pytest.mark.parametrize("argv, message", [
    (["-n", "0"], "-n/--jobs must be a positive integer, not 0"),
    (["--filter", "nothing-like-this"], "--filter 'nothing-like-this' matches no regression job"),
    (["--max-steps", "-1"], "--max-steps must be 0 (full runs) or positive, not -1"),
])
def test_regress_bad_flags(capsys, argv, message):
    assert main(["regress", *argv]) == 2
    assert capsys.readouterr().err == f"mgd-hw: error: {message}\n"


def test_regress_runs_a_job(build_root, capsys):
    assert main(["regress", "--filter", "hw_xor/trainer/run0", "--max-steps", "300",
                 "-n", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["passed"] and out["jobs"][0]["name"] == "hw_xor/trainer/run0"


def test_bench_reports_a_missing_checkout(monkeypatch, tmp_path, capsys):
    from mgd_hw import bench

    monkeypatch.setattr(bench, "BENCH", tmp_path / "nowhere")
    assert main(["bench", "--quick"]) == 2
    assert capsys.readouterr().err.startswith("mgd-hw: error: ")


def test_bench_report_formats_every_figure():
    from mgd_hw import bench

    res = {
        "model": {"xor_ensemble_256": {"vectorized_run_steps_per_s": 1, "ratio": 30.0},
                  "digits_64_32_10_tau100": {"vectorized_steps_per_s": 2, "ratio": 21.0}},
        "blocks": {"perturb_gen": {"model_cycles_per_s": 3, "ratio_model_over_rtl": 2.0,
                                   "equal": True}},
        "trainer": {"cocotb_cycles_per_s": 4, "cocotb_over_bare": 0.4, "model_cycles_per_s": 5,
                    "bare_cycles_per_s": 10, "bare_bit_exact": True,
                    "model_over_cocotb": 9.0, "peak_rss_mb": {"simulator": 300.0,
                                                              "model_worker": 100.0},
                    "cycles": 6},
        "simulators": {"icarus_missing": None,
                       "trainer_xor": {"verilator": {"cycles": 7, "cycles_per_s": 400},
                                       "icarus": {"cycles": 7, "cycles_per_s": 100},
                                       "icarus_over_verilator": 0.25},
                       "core_per_cycle": {"verilator": {"cycles": 8, "cycles_per_s": 80},
                                          "icarus": {"cycles": 8, "cycles_per_s": 40},
                                          "icarus_over_verilator": 0.5}},
        "time_to_train": {"task": "digits", "target": 0.9, "backprop_engine": "numpy",
                          "backprop_seconds": 2.0,
                          "settings": [{"name": "fully parallel", "speedup": 10.0,
                                        "fpga_seconds": 0.2, "fmax_mhz": 50.0}]},
    }
    text = bench.report(res)
    for needle in ("30.0x", "21.0x", "0.40", "9.0x", "300 MB", "fully parallel", "10x",
                   "0.250", "0.500", "icarus vs verilator"):
        assert needle in text
    res["simulators"] = {"icarus_missing": "Icarus Verilog is not installed",
                         "trainer_xor": {"verilator": {"cycles": 7, "cycles_per_s": 400}},
                         "core_per_cycle": {"verilator": {"cycles": 8, "cycles_per_s": 80}}}
    assert "not measured: Icarus Verilog is not installed" in bench.report(res)
