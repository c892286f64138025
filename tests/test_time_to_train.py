"""time-to-train: the backprop grid, the measured-figures tables, the report's honesty
rules and the command line. Fast: tiny grids, XOR, figures handed in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import load_config
from golden_model.datasets import load_dataset
from golden_model.float_twin import float_twin
from golden_model.hw_layout import Schedule
from golden_model.hw_spec import trainer_spec
from mgd_hw import backprop_grid as bg
from mgd_hw import fpga_figures as ff
from mgd_hw import time_to_train as ttt
from mgd_hw.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = bg.Grid((1, 2, 4), (1.0, 3.0, 10.0), 3, 0.05, 0.2, extend=1)


@pytest.fixture(scope="module")
def xor():
    cfg = load_config(EXAMPLES / "hw_xor.toml", {"steps": 3000})
    return cfg, load_dataset(cfg.task, cfg.seed)


def _grid_result(seconds: float | None) -> bg.GridResult:
    """A searched grid handed in (one point): what project() compares against."""
    best = None if seconds is None else bg.Point("numpy", 4, 3.0, seconds, 50, 3, 3,
                                                 [seconds] * 3, [50] * 3)
    return bg.GridResult(1.0, ["numpy"], [1, 2, 4], [1.0, 3.0], 3, 4, best,
                         [best] if best else [], "", 0.1)


# --- the backprop grid ------------------------------------------------------------

def test_grid_best_is_the_fastest_point(xor):
    cfg, data = xor
    res = bg.search(float_twin(cfg), data, 1.0, TINY, ["numpy"])
    assert res.size == len(res.points) >= 9  # 3 batches x 3 rates (plus extensions)
    reached = [p for p in res.points if p.seconds is not None]
    if res.best is None:
        assert not reached
        return
    assert res.best in res.points
    assert all(res.best.seconds <= p.seconds for p in reached)
    for p in reached:  # a point's time is the median of its seeds (None: not reached)
        vals = sorted(np.inf if s is None else s for s in p.seed_seconds)
        vals += [np.inf] * (p.seeds - len(vals))
        assert p.seconds == pytest.approx(float(np.median(vals)))
    d = res.to_dict()
    assert d["size"] == res.size and d["best"]["engine"] == "numpy"


def test_grid_extends_past_an_edge(xor, monkeypatch):
    """When the best rate is the largest searched, the grid grows that way."""
    cfg, data = xor
    calls = []

    def fake(net, theta, data, batch, rate, target, rng, limit):
        calls.append(rate)
        return (1.0 / rate if rate else None), 10  # faster the higher the rate

    monkeypatch.setitem(bg.RUNS, "numpy", fake)
    grid = bg.Grid((1, 2), (1.0, 3.0), 1, 5.0, 5.0, extend=2)
    res = bg.search(float_twin(cfg), data, 1.0, grid, ["numpy"])
    assert res.rates == [1.0, 3.0, 9.0, 27.0]
    assert res.best.rate == 27.0
    assert res.edge == "the best rate 27 is on the edge of the searched rates"


def test_numpy_and_torch_runs_agree_on_the_trajectory_shape(xor):
    """Both engines train the same network from the same weights to the target."""
    cfg, data = xor
    net = bg.make_network(float_twin(cfg), data)
    theta = bg.initial_params(float_twin(cfg), net)[0]
    out = bg.numpy_run(net, theta, data, 4, 0.0, 1.01, np.random.default_rng(0), 0.01)
    assert out[0] is None and out[1] > 0  # an unreachable target: the limit stops it
    if "pytorch" in bg.engines():
        out = bg.torch_run(net, theta, data, 4, 0.0, 1.01, np.random.default_rng(0), 0.01)
        assert out[0] is None and out[1] > 0


# --- measured figures ---------------------------------------------------------------

# PLACEHOLDER figures for the tests only: not measurements.
PLACEHOLDER_FITS = {
    "about": "PLACEHOLDER figures for tests; not measured",
    "fits": {
        "hw_xor": {
            "sequential macs=2,1 mac_inputs=2,2": {
                "ecp5-85k": {
                    "label": "fully parallel", "pipeline": "sequential", "macs": [2, 1],
                    "mac_inputs": [2, 2], "target": "ecp5", "device": "85k",
                    "part": "LFE5U-85F", "fits": True, "failing": None, "fmax_mhz": 40.0,
                    "luts": 3000, "dsps": 6},
                "ice40-up5k": {
                    "pipeline": "sequential", "macs": [2, 1], "mac_inputs": [2, 2],
                    "target": "ice40", "device": "up5k", "part": "iCE40UP5K", "fits": None,
                    "failing": "timed out after 600 s", "fmax_mhz": None}},
            "sequential macs=1,1 mac_inputs=1,1": {
                "ice40-hx8k": {
                    "target": "ice40", "device": "hx8k", "part": "iCE40HX8K", "fits": False,
                    "failing": "ICESTORM_LC 9000 of 7680", "fmax_mhz": None}},
            "stream macs=2,1 mac_inputs=1,1": [{
                "target": "ice40", "device": "up5k", "part": "iCE40UP5K", "fits": None,
                "failing": "skipped", "fmax_mhz": None}],
        },
    },
}


@pytest.fixture
def fits_file(tmp_path):
    path = tmp_path / "fits.json"
    path.write_text(json.dumps(PLACEHOLDER_FITS))
    return path


def test_read_measured_matches_settings(xor, fits_file):
    cfg, _ = xor
    measured = ff.read_measured(cfg, "hw_xor", fits_file, None)
    assert len(measured) == 4
    full = ff.for_setting(measured, ttt.derive(cfg, {"hw": {"macs": 0, "mac_inputs": 0}}))
    assert [m.fmax_mhz for m in full] == [40.0, None] and full[0].resources["lut"] == 3000
    assert ff.best_fit(full).part == "LFE5U-85F" and full[1].fits is None
    one = ff.for_setting(measured, ttt.derive(cfg, {"hw": {"macs": 1, "mac_inputs": 1}}))
    assert len(one) == 1 and one[0].fits is False and ff.best_fit(one) is None
    assert one[0].failing == "ICESTORM_LC 9000 of 7680"
    stream = ff.for_setting(measured, ttt.derive(cfg, {"hw": {"pipeline": "stream"}}))
    assert len(stream) == 1 and stream[0].pipeline == "stream"
    assert ff.read_measured(cfg, "hw_other", fits_file, None) == []


def test_committed_baselines_are_read_as_measurements(xor):
    """bench/synth_baselines.json holds the XOR trainer as committed (ECP5, iCE40)."""
    cfg, _ = xor
    measured = ff.read_measured(cfg, "hw_xor", None)
    own = ff.for_setting(measured, cfg)
    base = json.loads(ff.BASELINES.read_text())["results"]["hw_xor"]
    assert sorted(m.fmax_mhz for m in own) == sorted(r["fmax_mhz"] for r in base.values())
    assert ff.best_fit(own).fmax_mhz == max(r["fmax_mhz"] for r in base.values())


def test_device_multipliers():
    m = ff.MULTIPLIERS[("ecp5", "85k")]
    assert (m.count, m.per_product(16, 12), m.per_product(20, 12)) == (156, 1, 2)
    assert ff.MULTIPLIERS[("ice40", "up5k")].count == 8
    assert ff.MULTIPLIERS[("ice40", "hx8k")].per_product(16, 16) == 0  # LUT multipliers


# --- the report ---------------------------------------------------------------------

def test_cycles_and_evaluations_come_from_the_spec():
    cfg = load_config(EXAMPLES / "hw_digits.toml")
    for setting in ttt.SETTINGS.values():
        c = load_config(EXAMPLES / "hw_digits.toml", {"hw": setting})
        spec = trainer_spec(c)
        if setting["pipeline"] == "stream":
            # the stream: the slots up to the one after the last perturbed evaluation
            m = c.mgd
            last = int(spec.stream.step_evals(1000, m.tau_x, m.tau_theta)[-1])
            assert ttt.cycles_for(cfg, 1000, setting)[0] == spec.step_cycles(1000)
            assert ttt.evaluations(spec, 1000) == last + 1
            continue
        cycles, per_step = ttt.cycles_for(cfg, 1000, setting)
        assert cycles == trainer_spec(c).step_cycles(1000)
        assert cycles == int(Schedule(c).step_start(np.array([1000]))[0])
        assert per_step == pytest.approx(cycles / 1000)
        base, _, _ = Schedule(c).flags(np.arange(1000))
        assert ttt.evaluations(trainer_spec(c), 1000) == 1000 + int(base.sum())
    one, _ = ttt.cycles_for(cfg, 1000, ttt.SETTINGS["1 MAC per layer"])
    full, _ = ttt.cycles_for(cfg, 1000, ttt.SETTINGS["fully parallel"])
    assert full < one  # more parallelism, fewer cycles for the same steps


@pytest.mark.parametrize("ratio, word", [(37.0, "37x slower"), (0.5, "2x faster"),
                                         (1234.0, "1,234x slower")])
def test_in_words_never_hides_a_loss(ratio, word):
    r, text = ttt.in_words("hardware MGD (x)", ratio, 1.0)
    assert r == pytest.approx(ratio)
    assert text == f"hardware MGD (x) is {word} than tuned CPU backprop"


def test_report_is_honest(xor, fits_file):
    cfg, data = xor
    measured = ff.read_measured(cfg, "hw_xor", fits_file, None)
    slow = ttt.project(cfg, data, 1.0, 50.0, "hw_xor", measured=measured,
                       backprop=_grid_result(1e-7))
    assert slow.steps_to_target is not None and slow.steps_to_target <= 3000
    rows = {s.name: s for s in slow.settings}
    full, one, per_neuron = rows["fully parallel"], rows["1 MAC per layer"], rows[
        "1 MAC per neuron"]
    # measured where the table has it, on a device it fits
    assert (full.fmax_mhz, full.fmax_source, full.fits) == (40.0, "measured", True)
    assert full.fpga_seconds == pytest.approx(full.cycles_to_target / 40e6)
    # measured only where it does not fit: no FPGA time, and the report says why
    assert one.fits is False and one.fpga_seconds is None and "does not fit" in one.fit_note
    # not measured: the --fmax given, labelled assumed
    assert (per_neuron.fmax_mhz, per_neuron.fmax_source) == (50.0, "assumed")
    for s in slow.settings:
        if s.invalid or s.fpga_seconds is None:
            continue
        assert s.ratio > 1 and "slower than tuned CPU backprop" in s.verdict
        assert s.cycles_to_target == trainer_spec(
            ttt.derive(cfg, {"hw": ttt.SETTINGS[s.name]})).step_cycles(s.steps_to_target)
        assert s.analog_seconds == pytest.approx(s.evaluations * 1e-9)
        # 6 weight products over the fold's multipliers, per evaluation
        assert s.mac_bound_cycles_per_step == pytest.approx(
            6 / s.multipliers * s.evaluations / s.steps_to_target)
        assert s.mac_bound_cycles_per_step <= s.cycles_per_step
        # the multiplier-bound limit: 6 products, one ECP5 multiplier each, 1 cycle
        assert s.limit_seconds == pytest.approx(s.evaluations / (s.fmax_mhz * 1e6))
        assert s.limit_seconds <= s.fpga_seconds
    text = ttt.format_projection(slow)
    assert "slower than tuned CPU backprop" in text and "assumed" in text
    assert "a projection, not a measurement" in text
    fast = ttt.project(cfg, data, 1.0, 50.0, "hw_xor", measured=measured,
                       backprop=_grid_result(100.0))
    assert all("faster" in s.verdict for s in fast.settings if s.verdict)
    never = ttt.project(cfg, data, 1.0, 50.0, "hw_xor", measured=measured,
                        backprop=_grid_result(None))
    assert "backprop on this CPU did not reach it" in ttt.format_projection(never)
    assert all(s.ratio is None for s in never.settings)


def test_time_to_train_cli(capsys, monkeypatch, fits_file):
    monkeypatch.setitem(bg.GRIDS, "quick", TINY)
    argv = ["time-to-train", "--config", str(EXAMPLES / "hw_xor.toml"), "--steps", "3000",
            "--target", "1.0", "--fits", str(fits_file), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "xor" and out["config_name"] == "hw_xor"
    assert [s["name"] for s in out["settings"]] == list(ttt.SETTINGS)
    assert out["backprop"]["size"] >= 9 and out["backprop"]["engines"][0] == "numpy"
    keys = {"cycles_per_step", "fmax_mhz", "fmax_source", "device", "fpga_seconds",
            "limit_seconds", "analog_seconds", "backprop_seconds", "backprop_setting",
            "verdict"}
    assert keys <= set(out["settings"][0])


@pytest.mark.parametrize("argv, message", [
    (["--target", "1.5"], "--target must be an accuracy in (0, 1], not 1.5"),
    (["--fmax", "0"], "--fmax must be a positive number of MHz, not 0.0"),
    (["--fits", "no/such.json"], "--fits no/such.json: no such file"),
])
def test_time_to_train_bad_flags(capsys, argv, message):
    assert main(["time-to-train", "--config", str(EXAMPLES / "hw_xor.toml"), *argv]) == 2
    assert capsys.readouterr().err == f"mgd-hw: error: {message}\n"


def test_time_to_train_needs_a_trainer_config(capsys):
    assert main(["time-to-train", "--config", str(EXAMPLES / "hw_core_lfsr.toml")]) == 2
    assert capsys.readouterr().err == (
        "mgd-hw: error: hw.datapath must be 'mlp' for the on-chip trainer, not 'none'\n")


def test_an_assumed_fmax_on_a_fold_too_big_for_the_device_says_so(xor, monkeypatch):
    """A fold with more multipliers than the device's hard ones gets its FPGA time
    only with the caveat beside it (XOR fully parallel needs 6; pretend 4)."""
    cfg, data = xor
    small = ff.Multipliers("SMALL", 4, 18, 18, "placeholder device for the test")
    monkeypatch.setitem(ff.MULTIPLIERS, ff.DEFAULT_LIMIT_DEVICE, small)
    p = ttt.project(cfg, data, 1.0, 50.0, "", settings={
        "fully parallel": ttt.SETTINGS["fully parallel"],
        "1 MAC per layer": ttt.SETTINGS["1 MAC per layer"]}, measured=[],
        backprop=_grid_result(1e-7))
    full, one = p.settings
    assert full.multipliers == 6 and one.multipliers == 2
    assert "fit not checked: the fold needs 6 multipliers, the SMALL has 4" in full.verdict
    assert "fit not checked" not in one.verdict


def test_a_measured_fit_outside_the_settings_gets_its_own_row(xor, tmp_path):
    """The fit search's first fit (here the XOR stream at one MAC per layer, which no
    fixed setting is) becomes a row with its measured Fmax; a fold that does not fit,
    or one a fixed setting already is, adds none."""
    cfg, data = xor
    cfg = ttt.derive(cfg, {"steps": 30_000})  # the stream at D = 5 needs more than 3,000
    table = {"fits": {"hw_xor": {
        "stream macs=1,1 mac_inputs=1,1": {"ecp5-85k": {
            "target": "ecp5", "device": "85k", "part": "LFE5U-85F", "fits": True,
            "failing": None, "fmax_mhz": 69.3, "luts": 2385}},
        "stream macs=2,1 mac_inputs=1,1": {"ecp5-85k": {
            "target": "ecp5", "device": "85k", "part": "LFE5U-85F", "fits": True,
            "failing": None, "fmax_mhz": 69.6}},
        "sequential macs=2,1 mac_inputs=2,2": {"ice40-hx8k": {
            "target": "ice40", "device": "hx8k", "part": "iCE40HX8K", "fits": False,
            "failing": "ICESTORM_LC 9000 of 7680", "fmax_mhz": None}}}}}
    path = tmp_path / "fits.json"
    path.write_text(json.dumps(table))
    measured = ff.read_measured(cfg, "hw_xor", path, None)
    extra = ttt.fitted_settings(cfg, measured, ttt.SETTINGS)
    assert extra == {"stream 1,1/1,1 fit": {"macs": [1, 1], "mac_inputs": [1, 1],
                                            "pipeline": "stream"}}
    proj = ttt.project(cfg, data, 1.0, 50.0, "hw_xor", measured=measured,
                       backprop=_grid_result(1e-3))
    rows = {s.name: s for s in proj.settings}
    row = rows["stream 1,1/1,1 fit"]
    assert (row.fmax_mhz, row.fmax_source, row.fits) == (69.3, "measured", True)
    assert row.steps_to_target is not None
    assert row.cycles_to_target == trainer_spec(ttt.derive(
        cfg, {"hw": extra["stream 1,1/1,1 fit"]})).step_cycles(row.steps_to_target)
    assert rows["stream, 1 MAC/neuron"].fmax_mhz == 69.6
    assert "stream 1,1/1,1 fit" in ttt.format_projection(proj)
