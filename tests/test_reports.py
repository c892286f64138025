"""regress and bench: the reports and the command lines (time-to-train:
tests/test_time_to_train.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgd_hw.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
        "time_to_train": [{
            "task": "digits", "target": 0.9, "steps_to_target": 300_000,
            "backprop": {"size": 96, "best": {"seconds": 0.007, "engine": "numpy", "batch": 8,
                                               "rate": 3.0}},
            "settings": [
                {"name": "fully parallel", "invalid": "", "cycles_per_step": 25.0,
                 "mac_bound_cycles_per_step": 1.05, "fmax_mhz": 30.0,
                 "device": "LFE5U-85F (ecp5 85k)", "fit_note": "",
                 "fpga_seconds": 0.25, "limit_seconds": 0.01, "analog_seconds": 0.0003,
                 "ratio": 0.25 / 0.007},
                {"name": "stream, fully par.", "invalid": "mgd.tau_theta must be ..."},
                {"name": "1 MAC per layer", "invalid": "", "cycles_per_step": 2000.0,
                 "fmax_mhz": 50.0, "device": "", "fit_note": "", "fpga_seconds": 0.001,
                 "limit_seconds": None, "analog_seconds": 0.0003, "ratio": 0.001 / 0.007}]}],
    }
    res["sweep"] = {"cpus": 2, "load_before": [3.5, 3.0, 2.9],
                    "overhead": {"direct_s": 0.08, "ratio": 1.274, "added_ms": 15.1,
                                 "noop_bare_dask_ms": 26.5, "batch_points": 60,
                                 "batch_direct_s": 2.19, "batch_auto_ratio": 1.012},
                    "scaling": {"points": 8, "one_worker_s": 5.53, "speedup": 1.26}}
    text = bench.report(res)
    for needle in ("30.0x", "21.0x", "0.40", "9.0x", "300 MB", "fully parallel",
                   "60 10k-step digits points, --chunk auto", "1.012", "1.274",
                   "1.26x",
                   "load average 3.5 on 2 CPUs",
                   "MGD 35.7x SLOWER than tuned CPU backprop", "30.0 MHz on LFE5U-85F",
                   "MGD 7x faster", "50.0 MHz assumed", "not valid: mgd.tau_theta",
                   "0.250", "0.500", "icarus vs verilator", "25.0 (MAC-bound 1.1)"):
        assert needle in text
    res["simulators"] = {"icarus_missing": "Icarus Verilog is not installed",
                         "trainer_xor": {"verilator": {"cycles": 7, "cycles_per_s": 400}},
                         "core_per_cycle": {"verilator": {"cycles": 8, "cycles_per_s": 80}}}
    assert "not measured: Icarus Verilog is not installed" in bench.report(res)
