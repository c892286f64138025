"""The compiled trainer kernel (golden_model.trainer_kernel) against the NumPy HwTrainer:
the same integers in every Trace, theta after every update, counters and state, over
a matrix of small configs; chunked calls against one call; the fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golden_model import trainer as trainer_module
from golden_model.config import build_config, load_config
from golden_model.datapath import HwData, HwMLP
from golden_model.datasets import load_dataset
from golden_model.trainer import HwTrainer

pytest.importorskip("numba")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Formats of the matrix (as tests/test_trainer_model.py's trainer cases).
BASE_HW = {"lfsr_bits": 16, "theta_bits": 12, "theta_frac": 8, "z_frac": 8, "act_bits": 12,
           "act_frac": 9, "acc_bits": 32, "cost_frac": 10}
# Narrow enough that z, act, cost, C~ and G saturate often, and with 8-bit counters so
# that most counters saturate too.
NARROW_HW = {"theta_bits": 8, "theta_frac": 4, "amp_log2": 3, "x_bits": 4, "x_frac": 2,
             "z_bits": 6, "z_frac": 3, "act_bits": 5, "act_frac": 3, "acc_bits": 20,
             "cost_bits": 6, "cost_frac": 4, "ctilde_bits": 3, "g_bits": 4, "v_bits": 5,
             "eta_shift": 0, "counter_bits": 8}

# name: (task, hidden, (activation, output activation), mgd, hw)
CASES = {
    "xor weight code": ("xor", [2], ("tanh", "sigmoid"), {"tau_x": 1, "tau_theta": 4},
                        {"eta_shift": 2}),
    "xor weight code tau_p 2, 64-bit lfsr": (
        "xor", [2], ("tanh", "sigmoid"), {"tau_x": 2, "tau_p": 2, "tau_theta": 8},
        {"lfsr_bits": 64, "lfsr_seed": (1 << 63) + 12345}),
    "parity weight walsh tau_p 4": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"perturbation": "walsh", "tau_x": 4, "tau_p": 4, "tau_theta": 8}, {"amp_log2": 5}),
    "parity weight frequency clamp floor": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"perturbation": "frequency", "tau_x": 3, "tau_theta": 6},
        {"clamp": 20, "rounding": "floor", "z_rounding": "floor", "amp_log2": 5}),
    "xor weight time momentum": (
        "xor", [2], ("tanh", "sigmoid"),
        {"perturbation": "time", "tau_x": 4, "tau_p": 2, "tau_theta": 8},
        {"momentum_shift": 2, "v_bits": 26, "amp_log2": 5}),
    "xor weight relu linear": ("xor", [3], ("relu", "linear"), {"tau_x": 2, "tau_theta": 4},
                               {"amp_log2": 5, "eta_shift": 1}),
    "parity weight hard_sigmoid tanh, two hidden layers": (
        "parity", [4, 3], ("hard_sigmoid", "tanh"), {"tau_x": 1, "tau_theta": 8},
        {"amp_log2": 5, "z_rounding": "floor"}),
    "parity node walsh": ("parity", [3], ("sigmoid", "sigmoid"),
                          {"mode": "node", "perturbation": "walsh", "tau_x": 2,
                           "tau_theta": 6}, {"amp_log2": 5}),
    "parity node code momentum, two hidden layers": (
        "parity", [4, 3], ("sigmoid", "sigmoid"), {"mode": "node", "tau_x": 5,
                                                   "tau_theta": 10},
        {"amp_log2": 5, "momentum_shift": 3, "v_bits": 30}),
    "parity node frequency long sample": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"mode": "node", "perturbation": "frequency", "tau_x": 6, "tau_theta": 3},
        {"amp_log2": 6, "eta_shift": 0}),
    "xor node time relu linear clamp floor": (
        "xor", [3], ("relu", "linear"),
        {"mode": "node", "perturbation": "time", "tau_x": 3, "tau_p": 3, "tau_theta": 6},
        {"amp_log2": 6, "eta_shift": 4, "clamp": 30, "rounding": "floor",
         "z_rounding": "floor"}),
    "xor node hard_sigmoid segments across calls": (
        "xor", [2], ("hard_sigmoid", "sigmoid"),
        {"mode": "node", "tau_x": 40, "tau_p": 2, "tau_theta": 80}, {"amp_log2": 6}),
    # The same formats with 32-bit counters: the exact counts.
    "narrow weight": ("xor", [3], ("relu", "linear"), {"tau_x": 1, "tau_theta": 4},
                      NARROW_HW | {"counter_bits": 32}),
    "narrow node": ("xor", [3], ("relu", "linear"), {"mode": "node", "tau_x": 4,
                                                      "tau_theta": 16},
                    NARROW_HW | {"act_bits": 6, "z_bits": 7, "counter_bits": 32}),
    "saturating weight momentum": (
        "xor", [3], ("relu", "linear"), {"tau_x": 1, "tau_theta": 4},
        NARROW_HW | {"momentum_shift": 1}),
    "saturating node momentum": (
        "xor", [3], ("relu", "linear"), {"mode": "node", "tau_x": 4, "tau_theta": 16},
        NARROW_HW | {"momentum_shift": 2, "act_bits": 6, "z_bits": 7}),
}
CHUNKS = (37, 1, 100, 262)  # 400 steps; calls that start and end inside windows


def _case_cfg(case: str):
    task, hidden, (act, out), mgd, hw = CASES[case]
    base = {"task": {"name": task},
            "network": {"hidden": hidden, "activation": act, "output_activation": out}}
    count = HwMLP.from_config(build_config(base)).n_params
    hw = {"datapath": "mlp", "n_params": count} | BASE_HW | hw
    return build_config(base, {"mgd": mgd, "hw": hw}, {"seed": 5})


def _data(cfg) -> HwData:
    return HwData.from_dataset(load_dataset(cfg.task, cfg.seed), cfg.hw)


def _run(cfg, data, compiled: bool, chunks, every: int = 1):
    trainer = HwTrainer(cfg, data, compiled=compiled, record_theta_every=every)
    assert (trainer.kernel is not None) == compiled
    traces = [trainer.advance(k, record=True) for k in chunks]
    return trainer, traces


def _joined(traces) -> dict[str, np.ndarray]:
    fields = ("step", "sample", "cost", "c0", "ctilde")
    return {f: np.concatenate([getattr(t, f) for t in traces]) for f in fields}


def _assert_same(a: HwTrainer, b: HwTrainer, ta, tb) -> None:
    """Traces (values and dtypes), kept thetas, counters, effort and all state equal."""
    ja, jb = _joined(ta), _joined(tb)
    for f in ja:
        assert ja[f].dtype == jb[f].dtype, f
        assert np.array_equal(ja[f], jb[f]), f
    assert [n for n, _ in a.thetas] == [n for n, _ in b.thetas]
    for (_, x), (_, y) in zip(a.thetas, b.thetas, strict=True):
        assert np.array_equal(x, y)
    assert a.counters() == b.counters()
    assert (a.n, a.passes, a.updates) == (b.n, b.passes, b.updates)
    for name in ("theta", "G", "V"):
        assert np.array_equal(getattr(a.wu, name), getattr(b.wu, name)), name
    assert np.array_equal(a.D, b.D)
    assert a._c0 == b._c0
    assert all(np.array_equal(x, y) for x, y in zip(a._h0, b._h0, strict=True))
    assert (a.codes._k, a.codes._state) == (b.codes._k, b.codes._state)


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_equals_numpy_trainer(case) -> None:
    cfg = _case_cfg(case)
    data = _data(cfg)
    a, ta = _run(cfg, data, False, CHUNKS)
    b, tb = _run(cfg, data, True, CHUNKS)
    _assert_same(a, b, ta, tb)
    assert a.updates == sum(CHUNKS) // cfg.mgd.tau_theta == len(a.thetas)
    assert len(np.unique(_joined(tb)["ctilde"])) > 2  # the perturbations are seen
    assert not np.array_equal(b.theta, b.thetas[0][1])  # training moves theta


@pytest.mark.parametrize("case", ["saturating weight momentum", "saturating node momentum"])
def test_narrow_formats_saturate_every_counter(case) -> None:
    cfg = _case_cfg(case)
    a, ta = _run(cfg, _data(cfg), False, CHUNKS + (400,))
    b, tb = _run(cfg, _data(cfg), True, CHUNKS + (400,))
    _assert_same(a, b, ta, tb)
    counters = b.counters()
    used = [k for k in counters if k != "d"] if cfg.mgd.mode == "weight" else list(counters)
    assert all(counters[k] > 0 for k in used), counters
    # 8-bit counters stop at 255.
    assert max(counters.values()) == 255
    assert sum(v == 255 for v in counters.values()) >= 3, counters


@pytest.mark.parametrize("case", ["xor weight time momentum", "parity node walsh",
                                  "xor node hard_sigmoid segments across calls"])
def test_chunked_advance_equals_one_call(case) -> None:
    cfg = _case_cfg(case)
    data = _data(cfg)
    a, ta = _run(cfg, data, True, [sum(CHUNKS)], every=3)
    b, tb = _run(cfg, data, True, CHUNKS, every=3)
    _assert_same(a, b, ta, tb)
    c, tc = _run(cfg, data, True, [1] * 90, every=3)
    d, td = _run(cfg, data, False, [1] * 90, every=3)
    _assert_same(c, d, tc, td)


@pytest.mark.parametrize("case", ["xor weight code", "parity node code momentum, two hidden "
                                  "layers", "xor node hard_sigmoid segments across calls"])
def test_numpy_path_continues_where_the_kernel_stopped(case) -> None:
    # The kernel leaves the trainer's state as the NumPy path would: switching path
    # mid-run (inside a window and a segment) changes nothing.
    cfg = _case_cfg(case)
    data = _data(cfg)
    a, ta = _run(cfg, data, False, CHUNKS)
    b, tb = _run(cfg, data, True, CHUNKS[:2])
    b.kernel = None
    tb += [b.advance(k, record=True) for k in CHUNKS[2:]]
    _assert_same(a, b, ta, tb)


@pytest.mark.parametrize("name", ["hw_xor", "hw_parity3", "hw_digits", "hw_digits_node"])
def test_example_configs_match(name) -> None:
    cfg = load_config(EXAMPLES / f"{name}.toml")
    data = _data(cfg)
    chunks = (150, 250, 1) if "digits" in name else CHUNKS
    a, ta = _run(cfg, data, False, chunks)
    b, tb = _run(cfg, data, True, chunks)
    _assert_same(a, b, ta, tb)


def test_default_path_and_the_switch(monkeypatch) -> None:
    cfg = _case_cfg("xor weight code")
    data = _data(cfg)
    monkeypatch.delenv(trainer_module.NUMBA_ENV, raising=False)
    assert HwTrainer(cfg, data).kernel is not None
    for off in ("0", "false", "Off"):
        monkeypatch.setenv(trainer_module.NUMBA_ENV, off)
        assert HwTrainer(cfg, data).kernel is None
    # Asked for explicitly, the kernel runs whatever the switch says.
    assert HwTrainer(cfg, data, compiled=True).kernel is not None


def test_without_numba_the_numpy_path_runs(monkeypatch) -> None:
    monkeypatch.setattr(trainer_module, "_kernels_module", lambda: None)
    monkeypatch.delenv(trainer_module.NUMBA_ENV, raising=False)
    cfg = _case_cfg("xor weight code")
    data = _data(cfg)
    trainer = HwTrainer(cfg, data)
    assert trainer.kernel is None
    assert len(trainer.advance(20, record=True).cost) == 20
    with pytest.raises(ImportError, match="needs numba"):
        HwTrainer(cfg, data, compiled=True)
