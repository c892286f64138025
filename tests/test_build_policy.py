"""The Verilator build policy (sim.runner.build_flags): which flags a design gets.

No wall-clock limit here: the times behind the policy are in docs/streaming_trainer.md
("Measured") and bench/bench_build.py measures them as ratios.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateware import tops
from gateware.generate import verilog_for
from golden_model.config import load_config
from sim.runner import (
    FAST_BUILD,
    FAST_SIM,
    LARGE_VERILOG_BYTES,
    _stamp_flags,
    _wheel_make_fix,
    build_flags,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _trainer_verilog_bytes(config: str, *sets: dict) -> int:
    cfg = load_config(EXAMPLES / config, *sets)
    text = verilog_for(cfg, "trainer", data=tops.load_data(cfg), trace_depth=256, run=0)
    return len(text.encode())


def test_flag_sets_are_pinned():
    # small designs: Verilator -O2 and verilated.mk's own gcc flags (-Os)
    assert FAST_SIM.verilator == ("-O2",) and FAST_SIM.make == ()
    # large designs: functions split at ~1,000 statements, gcc -O1 on the per-cycle
    # code, the rest as verilated.mk has it
    assert FAST_BUILD.verilator == ("-O2", "--output-split-cfuncs", "1000")
    assert FAST_BUILD.make == (("OPT_FAST", "-O1"),)
    assert LARGE_VERILOG_BYTES == 2_000_000


def test_policy_by_size():
    assert build_flags(0) is FAST_SIM
    assert build_flags(LARGE_VERILOG_BYTES) is FAST_SIM
    assert build_flags(LARGE_VERILOG_BYTES + 1) is FAST_BUILD


def test_xor_stream_trainer_gets_fast_sim():
    size = _trainer_verilog_bytes("hw_xor.toml", {"hw": {"pipeline": "stream"}})
    assert build_flags(size) is FAST_SIM


@pytest.mark.slow  # about a minute of Verilog generation
def test_fully_parallel_digits_gets_fast_build():
    size = _trainer_verilog_bytes("hw_digits.toml",
                                  {"hw": {"pipeline": "stream", "mac_inputs": 0}})
    assert build_flags(size) is FAST_BUILD


def test_make_variables_reach_make_and_are_restored(monkeypatch):
    monkeypatch.setenv("MAKEFLAGS", "-s")
    with _wheel_make_fix(FAST_BUILD.make):
        assert os.environ["MAKEFLAGS"] == "-s CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1"
    assert os.environ["MAKEFLAGS"] == "-s"


def test_changed_flags_remove_old_objects(tmp_path):
    _stamp_flags(tmp_path, FAST_SIM)
    (tmp_path / "Vtop__ALL.a").write_text("old")
    (tmp_path / "Vtop.o").write_text("old")
    _stamp_flags(tmp_path, FAST_SIM)  # same flags: objects kept
    assert (tmp_path / "Vtop.o").exists()
    _stamp_flags(tmp_path, FAST_BUILD)
    assert not (tmp_path / "Vtop.o").exists() and not (tmp_path / "Vtop__ALL.a").exists()
    assert "fast_build" in (tmp_path / "build_flags.txt").read_text()
