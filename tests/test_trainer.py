"""The on-chip trainer: layout and schedule, Amaranth-simulator equivalence with the
bit-exact model, ports, generate-time errors, and training runs under cocotb/Verilator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, load_config, parse_assignment
from golden_model.datapath import HwData
from golden_model.datasets import DataError, load_dataset
from golden_model.hw_layout import Schedule, TrainerLayout
from golden_model.hw_spec import trainer_spec
from golden_model.trainer import HwTrainer
from golden_model.trainer_image import trainer_image
from sim.trainer_amaranth import check_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _cfg(example: str, *sets: str):
    return load_config(EXAMPLES / example, *(parse_assignment(s) for s in sets))


# --- layout and schedule -------------------------------------------------------------
@pytest.mark.parametrize("sets", [(), ("hw.macs=1", "hw.mac_inputs=3"), ("hw.mac_inputs=0",),
                                  ("hw.macs=[2,1]",)])
def test_layout_round_trip(sets):
    cfg = _cfg("hw_parity3.toml", *sets)
    lay = TrainerLayout(cfg)
    theta = np.arange(lay.n_params) - 7
    mem = lay.to_memory(theta)
    assert [m.shape for m in mem] == [(x.rows, x.lanes) for x in lay.layers]
    assert np.array_equal(lay.from_memory(mem), theta)
    assert sorted(lay.memory_order()) == list(range(lay.n_params))
    # every unused lane holds 0
    used = sum(int((x.param_map() >= 0).sum()) for x in lay.layers)
    assert used == lay.n_params


@pytest.mark.parametrize("example,sets", [
    ("hw_xor.toml", ()),
    ("hw_xor.toml", ("mgd.mode=node",)),
    ("hw_digits.toml", ("mgd.tau_x=3", "mgd.tau_theta=7")),
    ("hw_digits_node.toml", ("mgd.tau_x=6", "mgd.tau_theta=4", "hw.macs=2")),
])
def test_schedule_closed_form_is_the_sum_of_steps(example, sets):
    sched = Schedule(_cfg(example, *sets))
    n = np.arange(200)
    starts = sched.step_start(n)
    assert starts[0] == sched.t.first_step_cycle
    assert np.array_equal(np.diff(starts), sched.step_cycles(n[:-1]))
    assert np.all(sched.cost_cycle(n) < sched.next_cycle(n))


# --- the gateware against the model (Amaranth simulator) ----------------------------
MATRIX = {
    "xor-wp": ("hw_xor.toml", (), 120),
    "xor-np": ("hw_xor.toml", ("mgd.mode=node",), 120),
    "xor-wp-1mac-2in": ("hw_xor.toml", ("hw.macs=1", "hw.mac_inputs=2"), 80),
    "xor-walsh-momentum": ("hw_xor.toml", ("mgd.perturbation=walsh", "hw.momentum_shift=2"),
                           80),
    "xor-time-taup2-clamp": ("hw_xor.toml", ("mgd.perturbation=time", "mgd.tau_p=2",
                                             "mgd.tau_theta=6", "mgd.tau_x=2",
                                             "hw.clamp=200"), 80),
    "parity-np-relu-linear": ("hw_parity3.toml", ("network.activation=relu",
                                                  "network.output_activation=linear",
                                                  "hw.macs=[2,1]", "mgd.mode=node"), 60),
    "parity-hardsig-allinputs-narrow": ("hw_parity3.toml", (
        "network.activation=hard_sigmoid", "hw.mac_inputs=0", "hw.eta_shift=0",
        "hw.g_bits=17", "hw.theta_bits=12", "hw.counter_bits=8"), 60),
    "parity-np-walsh-momentum-floor": ("hw_parity3.toml", (
        "mgd.mode=node", "mgd.perturbation=walsh", "hw.momentum_shift=3",
        "hw.rounding=floor", "hw.z_rounding=floor", "hw.macs=[3,1]"), 60),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_trainer_amaranth(name):
    example, sets, steps = MATRIX[name]
    out = check_trainer(_cfg(example, *sets), steps)
    assert out["updates"] > 0


def test_trainer_amaranth_saturates():
    """A narrow config drives the datapath and the update into saturation; the
    counters agree with the model's on every update (checked inside)."""
    out = check_trainer(_cfg("hw_parity3.toml", *MATRIX["parity-hardsig-allinputs-narrow"][1]),
                        60)
    assert out["g"] > 0 or out["theta"] > 0
    out = check_trainer(_cfg("hw_parity3.toml", *MATRIX["parity-np-relu-linear"][1]), 60)
    assert out["act"] > 0 and out["cost"] > 0


def test_trainer_amaranth_catches_a_wrong_gateware(monkeypatch):
    """The check is not vacuous: a model with the other update rounding disagrees."""
    import gateware.weight_update as wu
    from sim.tb_common import Mismatch

    true_round = wu.shift_round
    monkeypatch.setattr(wu, "shift_round",
                        lambda x, k, r: true_round(x, k, "floor" if r == "half_up" else "half_up"))
    with pytest.raises(Mismatch, match=r"cycle \d+: signal theta\[\d+\]"):
        check_trainer(_cfg("hw_xor.toml", "hw.eta_shift=2"), 40)


def test_trainer_read_and_load_ports():
    """param_row/param_lane read every parameter; a sample loaded while idle is used."""
    from gateware.trainer import Trainer
    from sim.amaranth_bench import run_testbench

    cfg = _cfg("hw_xor.toml")
    data = HwData.from_dataset(load_dataset(cfg.task, cfg.seed), cfg.hw)
    image = trainer_image(cfg, data, 0)
    lay = TrainerLayout(cfg)
    # the host swaps the targets of two memory rows (0 and the first that differs)
    t_new = image.t_train.copy()
    other = int(np.flatnonzero(t_new[:, 0] != t_new[0, 0])[0])
    rows = [0, other]
    t_new[rows] = t_new[rows[::-1]]
    dut = Trainer(cfg, image.theta0, image.x_train, image.t_train)
    steps = 24
    got = {}

    async def bench(ctx):
        for _ in range(Schedule(cfg).t.sweep_cycles + 1):  # CLEAR
            await ctx.tick()
        ab = cfg.hw.act_bits
        for row in rows:
            ctx.set(dut.ld_t_en, 1)
            ctx.set(dut.ld_addr, row)
            ctx.set(dut.ld_data, int(t_new[row, 0]) & ((1 << ab) - 1))
            await ctx.tick()
        ctx.set(dut.ld_t_en, 0)
        ctx.set(dut.run, 1)
        ctx.set(dut.step_limit, steps)
        while not ctx.get(dut.done):
            await ctx.tick()
        ctx.set(dut.run, 0)
        values = {}
        offset = 0
        for x in lay.layers:
            for r in range(x.rows):
                for lane in range(x.lanes):
                    ctx.set(dut.param_row, offset + r)
                    ctx.set(dut.param_lane, lane)
                    await ctx.tick()
                    values[(x.index, r, lane)] = ctx.get(dut.param_data)
            offset += x.rows
        got["theta"] = lay.from_memory([
            np.array([[values[(x.index, r, q)] for q in range(x.lanes)] for r in range(x.rows)])
            for x in lay.layers])

    run_testbench(dut, bench)
    # the model on the loaded memory: the two rows' targets swapped (memory row r holds
    # sample order[r], and the order depends only on the count and the seed)
    order = HwTrainer(cfg, data, 0).order
    t_sorted = data.t_train.copy()
    t_sorted[order[rows]] = t_new[rows]
    loaded = HwData(data.x_train, t_sorted, data.labels_train, data.x_test, data.t_test,
                    data.labels_test)
    model = HwTrainer(cfg, loaded, 0)
    model.advance(steps)
    assert np.array_equal(got["theta"], model.theta)
    unloaded = HwTrainer(cfg, data, 0)
    unloaded.advance(steps)
    assert not np.array_equal(unloaded.theta, model.theta)  # the load made a difference


# --- generate-time errors ------------------------------------------------------------
ERRORS = {
    "parallelism": (("hw.macs=3",),
                    "hw.macs must divide every layer's width: layer 1 of the 64-16-10 network "
                    "has 16 neurons, not a multiple of 3"),
    "inputs": (("hw.mac_inputs=5",),
               "hw.mac_inputs must divide every layer's fan-in: layer 1 of the 64-16-10 "
               "network has 64 inputs, not a multiple of 5"),
    "list length": (("hw.macs=[16]",),
                    "hw.macs must have 2 entries (one per layer of the 64-16-10 network), not 1"),
    "network": (("network.hidden=[8]",),
                "hw.n_params must be 610, the parameter count of the 64-8-10 network, with "
                "hw.datapath 'mlp', not 1210"),
    "frequency": (("mgd.perturbation=frequency",),
                  "mgd.perturbation must be 'code', 'walsh' or 'time' for the trainer gateware "
                  "(its codes come from one shared state and a per-parameter key; square "
                  "waves would need a counter per parameter), not 'frequency'"),
    "x format": (("hw.x_bits=5", "hw.x_frac=4"),
                 "hw.x_frac must be at most 3 (hw.x_bits - 2) for the trainer gateware: the "
                 "bias is the weight of a constant input 1.0 in the x format, not 4"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_trainer_config_errors(name):
    sets, message = ERRORS[name]
    with pytest.raises(ConfigError) as info:
        trainer_spec(_cfg("hw_digits.toml", *sets))
    assert str(info.value) == message


def test_dataset_must_fit_the_sample_memory():
    from gateware.generate import build

    with pytest.raises(DataError) as info:
        build(_cfg("hw_digits.toml", "hw.sample_memory=1000"), "trainer")
    assert str(info.value) == ("the digits training set has 1437 samples, more than the sample "
                               "memory holds (hw.sample_memory = 1000)")


def test_dataset_must_fit_the_input_format(monkeypatch):
    """Data read from a user's files may exceed the x format; generation refuses it."""
    import golden_model.datasets as datasets
    from gateware.generate import build

    real = datasets.load_dataset

    def too_bright(task, seed):
        d = real(task, seed)
        return datasets.Dataset(d.name, d.x_train * 2.5, d.y_train, d.labels_train,
                                d.x_test, d.y_test, d.labels_test)

    monkeypatch.setattr(datasets, "load_dataset", too_bright)
    with pytest.raises(DataError) as info:
        build(_cfg("hw_xor.toml"), "trainer")
    assert str(info.value) == ("xor train input column 1 (row 1): value 2.5 does not fit "
                               "6-bit fixed point with 4 fraction bits (range -2.0 to 1.9375)")


def test_cli_generate_errors(tmp_path, capsys):
    from mgd_hw.cli import main

    out = tmp_path / "x"
    assert main(["generate", "--config", str(EXAMPLES / "hw_digits.toml"), "-o", str(out),
                 "--set", "hw.macs=3"]) == 2
    assert capsys.readouterr().err == f"mgd-hw: error: {ERRORS['parallelism'][1]}\n"
    assert main(["generate", "--config", str(EXAMPLES / "hw_xor.toml"), "-o", str(out),
                 "--top", "core"]) == 2
    assert capsys.readouterr().err == (
        "mgd-hw: error: --top core needs hw.datapath 'none'; a config with hw.datapath 'mlp' "
        "describes the on-chip trainer (--top trainer)\n")
    assert not out.exists()


def test_cli_generate_trainer(tmp_path, capsys):
    import json

    from mgd_hw.cli import main

    assert main(["generate", "--config", str(EXAMPLES / "hw_xor.toml"), "-o",
                 str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "mgd_trainer.json").read_text())
    names = {p["name"] for p in manifest["ports"]}
    assert {"run", "step_limit", "cost", "param_row", "param_data", "ld_x_en"} <= names
    assert "theta_shadow" not in names  # verification taps only in simulation builds
    assert (tmp_path / "mgd_trainer.v").read_text().startswith("/* Generated by Amaranth")


# --- cocotb / Verilator ----------------------------------------------------------------
def test_trainer_cocotb_short(build_root):
    """A short autonomous run under Verilator: bit-exact at every update and cost."""
    from sim.trainer_run import run_trainer

    cfg = _cfg("hw_xor.toml", "steps=2000")
    res = run_trainer(cfg)
    assert res.passed, res.message
    assert res.result["updates"] == 500
    assert res.result["cycles"] == int(Schedule(cfg).step_start(np.array([2000]))[0])


def test_trainer_cocotb_node_parity(build_root):
    from sim.trainer_run import run_trainer

    res = run_trainer(_cfg("hw_parity3.toml", "steps=1500", "mgd.mode=node", "hw.macs=[3,1]"))
    assert res.passed, res.message


def test_trainer_cocotb_reports_a_mismatch(build_root, monkeypatch):
    """A gateware that rounds its update the other way is caught at the first update."""
    import gateware.weight_update as wu
    from sim.trainer_run import run_trainer

    true_round = wu.shift_round
    monkeypatch.setattr(wu, "shift_round",
                        lambda x, k, r: true_round(x, k, "floor" if r == "half_up" else "half_up"))
    res = run_trainer(_cfg("hw_xor.toml", "steps=400", "hw.counter_bits=31", "hw.eta_shift=2"))
    assert not res.passed
    assert "signal theta[" in res.message and "(update 1)" in res.message


@pytest.mark.slow
@pytest.mark.parametrize("example,min_acc", [("hw_xor.toml", 1.0), ("hw_parity3.toml", 1.0),
                                             ("hw_digits.toml", 0.90),
                                             ("hw_digits_node.toml", 0.90)])
def test_trainer_cocotb_full_runs(build_root, example, min_acc):
    from sim.trainer_run import run_trainer

    res = run_trainer(_cfg(example))
    assert res.passed, res.message
    assert res.result["test_acc"] >= min_acc
