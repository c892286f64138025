"""The streaming trainer model (hw.pipeline = "stream", golden_model.trainer_stream):
the compiled kernel against the per-evaluation reference path over a matrix of small
configs, chunked calls against one call, the theta each evaluation sees checked
against the contract from the recorded updates alone, and the evaluation indices
against ``StreamTiming.step_evals`` and ``HwSpec.step_cycles``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golden_model import hw_train
from golden_model.config import build_config, load_config, parse_assignment
from golden_model.datapath import HwData, HwMLP
from golden_model.datasets import load_dataset
from golden_model.hw_spec import trainer_spec
from golden_model.perturb_gen import CodeSequence
from golden_model.stream_timing import stream_evals
from golden_model.trainer import HwTrainer
from golden_model.trainer_image import initial_theta

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BASE_HW = {"lfsr_bits": 16, "theta_bits": 12, "theta_frac": 8, "z_frac": 8, "act_bits": 12,
           "act_frac": 9, "acc_bits": 32, "cost_frac": 10, "pipeline": "stream"}
# Narrow enough that z, act, cost, C~ and G saturate often (tests/test_trainer_kernel.py).
NARROW_HW = {"theta_bits": 8, "theta_frac": 4, "amp_log2": 3, "x_bits": 4, "x_frac": 2,
             "z_bits": 6, "z_frac": 3, "act_bits": 5, "act_frac": 3, "acc_bits": 20,
             "cost_bits": 6, "cost_frac": 4, "ctilde_bits": 3, "g_bits": 4, "v_bits": 5,
             "eta_shift": 0, "counter_bits": 8}

# name: (task, hidden, (activation, output activation), mgd, hw). The update delay D
# is 9 evaluations for a 2-2-1 network at mac_inputs 1, 17 at mac_inputs 0: longer
# than most windows here, so several updates are on their way at once.
CASES = {
    "xor weight code, a sample per step": (
        "xor", [2], ("tanh", "sigmoid"), {"tau_x": 1, "tau_theta": 4}, {"eta_shift": 2}),
    "xor weight code tau_p 2, mac_inputs 0, 64-bit lfsr": (
        "xor", [2], ("tanh", "sigmoid"), {"tau_x": 2, "tau_p": 2, "tau_theta": 8},
        {"lfsr_bits": 64, "lfsr_seed": (1 << 63) + 12345, "mac_inputs": 0}),
    "xor weight code, one update per step": (
        "xor", [2], ("tanh", "sigmoid"), {"tau_x": 3, "tau_theta": 1}, {"eta_shift": 4}),
    "parity weight walsh tau_p 4": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"perturbation": "walsh", "tau_x": 4, "tau_p": 4, "tau_theta": 8}, {"amp_log2": 5}),
    "parity weight frequency clamp floor, tau_x 5 tau_theta 6": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"perturbation": "frequency", "tau_x": 5, "tau_theta": 6},
        {"clamp": 20, "rounding": "floor", "z_rounding": "floor", "amp_log2": 5}),
    "xor weight time momentum, tau_x 6 tau_theta 8": (
        "xor", [2], ("tanh", "sigmoid"),
        {"perturbation": "time", "tau_x": 6, "tau_p": 2, "tau_theta": 8},
        {"momentum_shift": 2, "v_bits": 26, "amp_log2": 5, "eta_shift": 2}),
    "parity weight hard_sigmoid tanh, two hidden layers, long samples": (
        "parity", [4, 3], ("hard_sigmoid", "tanh"), {"tau_x": 24, "tau_theta": 8},
        {"amp_log2": 5, "z_rounding": "floor"}),
    "parity node walsh, tau_x 4 tau_theta 6": (
        "parity", [3], ("sigmoid", "sigmoid"),
        {"mode": "node", "perturbation": "walsh", "tau_x": 4, "tau_theta": 6},
        {"amp_log2": 5}),
    "parity node code momentum, two hidden layers": (
        "parity", [4, 3], ("sigmoid", "sigmoid"), {"mode": "node", "tau_x": 7,
                                                   "tau_theta": 10},
        {"amp_log2": 5, "momentum_shift": 3, "v_bits": 30}),
    "parity node frequency, segments across window ends": (
        "parity", [4], ("sigmoid", "sigmoid"),
        {"mode": "node", "perturbation": "frequency", "tau_x": 6, "tau_theta": 3},
        {"amp_log2": 6, "eta_shift": 0}),
    "xor node time relu linear clamp floor": (
        "xor", [3], ("relu", "linear"),
        {"mode": "node", "perturbation": "time", "tau_x": 3, "tau_p": 3, "tau_theta": 6},
        {"amp_log2": 6, "eta_shift": 4, "clamp": 30, "rounding": "floor",
         "z_rounding": "floor"}),
    "xor node hard_sigmoid, updates inside long segments": (
        "xor", [2], ("hard_sigmoid", "sigmoid"),
        {"mode": "node", "tau_x": 40, "tau_p": 2, "tau_theta": 16}, {"amp_log2": 6}),
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
FIELDS = ("step", "sample", "cost", "c0", "ctilde", "evals")


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
    assert trainer.stream is not None
    traces = [trainer.advance(k, record=True) for k in chunks]
    return trainer, traces


def _joined(traces) -> dict[str, np.ndarray]:
    return {f: np.concatenate([getattr(t, f) for t in traces]) for f in FIELDS}


def _assert_same(a: HwTrainer, b: HwTrainer, ta, tb) -> None:
    """Traces (values and dtypes), kept thetas, update evaluations, counters, effort
    and all state (the stream's included) equal."""
    ja, jb = _joined(ta), _joined(tb)
    for f in ja:
        assert ja[f].dtype == jb[f].dtype, f
        assert np.array_equal(ja[f], jb[f]), f
    assert [n for n, _ in a.thetas] == [n for n, _ in b.thetas]
    for (_, x), (_, y) in zip(a.thetas, b.thetas, strict=True):
        assert np.array_equal(x, y)
    assert a.update_evals == b.update_evals
    assert a.counters() == b.counters()
    assert (a.n, a.passes, a.updates) == (b.n, b.passes, b.updates)
    for name in ("theta", "G", "V"):
        assert np.array_equal(getattr(a.wu, name), getattr(b.wu, name)), name
    assert np.array_equal(a.D, b.D)
    assert a._c0 == b._c0
    assert all(np.array_equal(x, y) for x, y in zip(a._h0, b._h0, strict=True))
    assert (a.codes._k, a.codes._state) == (b.codes._k, b.codes._state)
    sa, sb = a.stream, b.stream
    assert (sa.e, sa.seg_ok, sa.delay) == (sb.e, sb.seg_ok, sb.delay)
    assert np.array_equal(sa.theta_fwd, sb.theta_fwd)
    assert [t for t, _ in sa.fifo] == [t for t, _ in sb.fifo]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(sa.fifo, sb.fifo, strict=True))


def _check_contract(trainer: HwTrainer, trace: dict) -> None:
    """What the contract says each evaluation sees, from the run's records alone: the
    parameters of the last update that arrived (evaluation E's update arrives at E +
    D + 1), the step's sample and codes; C0 is the unperturbed cost of the same."""
    cfg, net, data, m = trainer.cfg, trainer.net, trainer.data, trainer.m
    spec = trainer_spec(cfg, gateware=False)
    delay = spec.stream.delay
    steps = len(trace["step"])
    assert trainer.updates == len(trainer.thetas) == len(trainer.update_evals)
    # The update of window k takes the C~ of step (k + 1) tau_theta - 1.
    ends = np.arange(1, trainer.updates + 1) * m.tau_theta - 1
    assert np.array_equal(trainer.update_evals, trace["evals"][ends])
    arrive = np.array(trainer.update_evals, np.int64) + delay + 1
    seen = np.searchsorted(arrive, trace["evals"], side="right")  # updates arrived
    thetas = [initial_theta(cfg, 0)[0]] + [t for _, t in trainer.thetas]
    theta_fwd = np.stack([thetas[k] for k in seen])
    codes = CodeSequence(m.perturbation, trainer.n_pert, cfg.hw.lfsr_bits,
                         cfg.hw.lfsr_seed).steps(0, steps, m.tau_p)
    x = data.x_train[trace["sample"]]
    t = data.t_train[trace["sample"]]
    node = trainer.node
    out = net.forward(theta_fwd, x, codes=None if node else codes,
                      node_codes=codes if node else None)
    assert np.array_equal(net.cost(out.y, t)[0], trace["cost"])
    assert np.array_equal(net.cost(net.forward(theta_fwd, x).y, t)[0], trace["c0"])
    assert trainer.passes == trainer.stream.e == trace["evals"][-1] + 1


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_equals_reference(case) -> None:
    pytest.importorskip("numba")
    cfg = _case_cfg(case)
    data = _data(cfg)
    a, ta = _run(cfg, data, False, CHUNKS)
    b, tb = _run(cfg, data, True, CHUNKS)
    _assert_same(a, b, ta, tb)
    assert a.updates == sum(CHUNKS) // cfg.mgd.tau_theta == len(a.thetas)
    assert len(np.unique(_joined(tb)["ctilde"])) > 2  # the perturbations are seen
    assert not np.array_equal(b.theta, b.thetas[0][1])  # training moves theta


@pytest.mark.parametrize("case", list(CASES))
def test_reference_follows_the_contract(case) -> None:
    cfg = _case_cfg(case)
    a, ta = _run(cfg, _data(cfg), False, CHUNKS)
    joined = _joined(ta)
    _check_contract(a, joined)
    m = cfg.mgd
    evals = trainer_spec(cfg, gateware=False).stream.step_evals(sum(CHUNKS), m.tau_x,
                                                               m.tau_theta)
    assert np.array_equal(joined["evals"], evals)


@pytest.mark.parametrize("case", ["saturating weight momentum", "saturating node momentum"])
def test_narrow_formats_saturate_every_counter(case) -> None:
    pytest.importorskip("numba")
    cfg = _case_cfg(case)
    a, ta = _run(cfg, _data(cfg), False, CHUNKS + (400,))
    b, tb = _run(cfg, _data(cfg), True, CHUNKS + (400,))
    _assert_same(a, b, ta, tb)
    counters = b.counters()
    used = [k for k in counters if k != "d"] if cfg.mgd.mode == "weight" else list(counters)
    assert all(counters[k] > 0 for k in used), counters
    assert max(counters.values()) == 255  # 8-bit counters stop at 255
    assert sum(v == 255 for v in counters.values()) >= 3, counters


@pytest.mark.parametrize("case", ["xor weight time momentum, tau_x 6 tau_theta 8",
                                  "parity node frequency, segments across window ends",
                                  "xor node hard_sigmoid, updates inside long segments"])
def test_chunked_advance_equals_one_call(case) -> None:
    pytest.importorskip("numba")
    cfg = _case_cfg(case)
    data = _data(cfg)
    a, ta = _run(cfg, data, True, [sum(CHUNKS)], every=3)
    b, tb = _run(cfg, data, True, CHUNKS, every=3)
    _assert_same(a, b, ta, tb)
    c, tc = _run(cfg, data, True, [1] * 90, every=3)
    d, td = _run(cfg, data, False, [90], every=3)
    _assert_same(c, d, tc, td)


@pytest.mark.parametrize("name,mac_inputs,delay", [("hw_xor", 1, 9), ("hw_xor", 0, 18),
                                                   ("hw_digits", 1, None),
                                                   ("hw_digits_node", 1, None)])
def test_example_configs_match(name, mac_inputs, delay) -> None:
    pytest.importorskip("numba")
    cfg = load_config(EXAMPLES / f"{name}.toml", parse_assignment("hw.pipeline=stream"),
                      parse_assignment(f"hw.mac_inputs={mac_inputs}"))
    if delay is not None:
        assert trainer_spec(cfg, gateware=False).stream.delay == delay
    data = _data(cfg)
    chunks = (150, 250, 1) if "digits" in name else CHUNKS
    a, ta = _run(cfg, data, False, chunks)
    b, tb = _run(cfg, data, True, chunks)
    _assert_same(a, b, ta, tb)
    _check_contract(a, _joined(ta))


def test_step_cycles_of_the_stream() -> None:
    cfg = _case_cfg("xor weight time momentum, tau_x 6 tau_theta 8")
    spec = trainer_spec(cfg, gateware=False)
    a, ta = _run(cfg, _data(cfg), False, [100])
    assert spec.step_cycles(100) == spec.stream.slot_cycle(ta[0].evals[-1] + 1)
    assert spec.step_cycles(0) == spec.stream.first_cycle


@pytest.mark.parametrize("tau_x,tau_theta,delay", [(1, 4, 9), (1, 4, 17), (20, 200, 30),
                                                   (7, 200, 300), (3, 5, 40), (6, 3, 11),
                                                   (5, 1, 2)])
def test_step_evals_periodic_form(tau_x, tau_theta, delay) -> None:
    # The periodic extension equals the rule run step by step, for any length.
    steps = 3000
    full = _naive_evals(steps, tau_x, tau_theta, delay)
    assert np.array_equal(stream_evals(steps, tau_x, tau_theta, delay), full)
    assert np.array_equal(stream_evals(steps // 3, tau_x, tau_theta, delay),
                          full[: steps // 3])


def _naive_evals(steps, tau_x, tau_theta, delay) -> np.ndarray:
    """The rule without the periodic shortcut."""
    out, arrive, e, n, seg_ok = [], set(), 0, 0, False
    while n < steps:
        if e in arrive:
            seg_ok = False
        if not seg_ok:
            seg_ok = True
        else:
            out.append(e)
            n += 1
            seg_ok = n % tau_x != 0
            if n % tau_theta == 0:
                arrive.add(e + delay + 1)
        e += 1
    return np.array(out, np.int64)


def test_sequential_trace_evals() -> None:
    cfg = load_config(EXAMPLES / "hw_xor.toml", parse_assignment("mgd.tau_x=3"))
    data = _data(cfg)
    for compiled in (False, True) if _has_numba() else (False,):
        trainer = HwTrainer(cfg, data, compiled=compiled)
        assert trainer.stream is None
        evals = np.concatenate([trainer.advance(k, record=True).evals for k in (5, 50)])
        assert evals[-1] + 1 == trainer.passes
        starts = [n for n in range(55) if n % 3 == 0 or n % 4 == 0]
        assert np.array_equal(evals, [n + sum(k <= n for k in starts) for n in range(55)])
        assert trainer.update_evals == []


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def test_hw_train_prints_stream_cycles(capsys) -> None:
    hw_train.main([str(EXAMPLES / "hw_xor.toml"), "--runs", "1", "--set",
                   "hw.pipeline=stream", "--set", "steps=2000"])
    out = capsys.readouterr().out
    cfg = load_config(EXAMPLES / "hw_xor.toml", parse_assignment("hw.pipeline=stream"),
                      parse_assignment("steps=2000"))
    cycles = trainer_spec(cfg).step_cycles(2000)
    assert f"{cycles:,} trainer cycles" in out
