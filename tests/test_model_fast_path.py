"""The bit-exact model's multi-cycle fast paths against its own per-cycle ``tick``.

``PerturbGenModel.run`` and ``WeightUpdateModel.run`` must leave exactly the state that
looping ``tick`` leaves (every register: LFSR, counters, theta, G, V, saturation
counters) and report the same per-cycle outputs. Random stimulus, seeded by the
parametrization; narrow widths that saturate G, V, theta and the counters themselves,
both roundings, momentum on and off, loads, runs split over several calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.config import build_config
from golden_model.fixed import pack_bits, smax, smin
from golden_model.lfsr import LFSR_TAPS, lfsr_jump, lfsr_next, lfsr_sequence
from golden_model.perturb_gen import PerturbGenModel, code_neg_words
from golden_model.weight_update import WeightUpdateModel

NARROW = {"ctilde_bits": 6, "g_bits": 8, "v_bits": 9, "theta_bits": 6, "theta_frac": 3,
          "amp_log2": 1, "eta_shift": 1, "counter_bits": 8}


def bus_words(value: int, n: int) -> list[int]:
    """An n-bit bus as its 64-bit words, low word first."""
    return [(value >> (64 * i)) & ((1 << 64) - 1) for i in range((n + 63) // 64)]


# ---------------------------------------------------------------------------------
# LFSR helpers
@pytest.mark.parametrize("bits", sorted(LFSR_TAPS))
def test_lfsr_sequence_and_jump(bits):
    state = 0xACE1 & ((1 << bits) - 1)
    ref = [state]
    for _ in range(999):
        ref.append(lfsr_next(ref[-1], bits))
    for count in (0, 1, 64, 65, 128, 1000):
        assert lfsr_sequence(state, count, bits).tolist() == ref[:count]
    for steps in (0, 1, 63, 64, 500, 999):
        assert lfsr_jump(state, steps, bits) == ref[steps]


@pytest.mark.parametrize("n, bits", [(1, 8), (40, 16), (100, 24), (1024, 24), (1024, 32)])
def test_code_neg_words_match_outputs(n, bits):
    cfg = build_config({"hw": {"n_params": n, "lfsr_bits": bits, "lfsr_seed": 1}})
    model = PerturbGenModel(cfg)
    rng = np.random.default_rng(n + bits)
    states = rng.integers(1, 1 << bits, 50, dtype=np.uint64)
    words = code_neg_words(states, n, bits)
    for state, row in zip(states.tolist(), words, strict=True):
        model.lfsr = state
        assert row.tolist() == bus_words(model.outputs()["neg"], n)


# ---------------------------------------------------------------------------------
# perturbation generator
@pytest.mark.parametrize("kind", ["code", "walsh", "time", "frequency"])
@pytest.mark.parametrize("tau_p", [1, 3])
def test_perturb_gen_run_matches_tick(kind, tau_p):
    n = 40
    cfg = build_config({"hw": {"n_params": n, "lfsr_bits": 16},
                        "mgd": {"perturbation": kind, "tau_p": tau_p, "tau_theta": tau_p}})
    rng = np.random.default_rng(7 * tau_p + len(kind))
    step = (rng.random(4000) < 0.6).astype(int)
    ref, fast = PerturbGenModel(cfg), PerturbGenModel(cfg)
    neg = []
    for s in step.tolist():
        ref.tick(s)
        neg.append(ref.outputs()["neg"])
    # two calls, split mid-period, so the sub-step counter carries over
    parts = [fast.run(step[:1234]), fast.run(step[1234:])]
    assert (fast.lfsr, fast.k, fast.sub) == (ref.lfsr, ref.k, ref.sub)
    assert np.array_equal(fast.cnt, ref.cnt) and np.array_equal(fast.phase, ref.phase)
    assert np.array_equal(fast.code(), ref.code())
    if kind == "code":
        got = np.concatenate([code_neg_words(p.lfsr[p.period], n, 16) for p in parts])
        assert got[:, 0].tolist() == neg  # N = 40: one word per cycle
    else:
        assert all(p.lfsr is None for p in parts)


def test_perturb_gen_run_empty():
    model = PerturbGenModel(build_config({}))
    before = model.lfsr
    res = model.run(np.zeros(0, int))
    assert len(res.period) == 0 and res.lfsr.tolist() == [before] and model.lfsr == before


# ---------------------------------------------------------------------------------
# weight-update unit
def wu_config(n, rounding="half_up", momentum=0, lanes=0, **hw):
    return build_config({"hw": {"n_params": n, "lanes": lanes, "rounding": rounding,
                                "momentum_shift": momentum, **hw}})


def wu_stimulus(cfg, cycles: int, seed: int, update_p: float = 0.05, pool_size: int = 8,
                extreme: bool = False) -> dict:
    """Random inputs; ``extreme``: C~ at its limits half of the time (saturates G)."""
    h = cfg.hw
    n = h.n_params
    rng = np.random.default_rng(seed)
    pool = np.where(rng.random((pool_size, n)) < 0.8,
                    np.where(rng.random((pool_size, n)) < 0.5, -1, 1), 0)
    change = rng.random(cycles) < 0.3
    idx = np.maximum.accumulate(np.where(change, np.arange(cycles), 0))
    lo, hi = smin(h.ctilde_bits), smax(h.ctilde_bits)
    ct = rng.integers(lo, hi + 1, cycles)
    if extreme:
        ct = np.where(rng.random(cycles) < 0.5, np.where(rng.random(cycles) < 0.5, lo, hi), ct)
    return {
        "pool": pool,
        "code": rng.integers(0, pool_size, cycles)[idx],
        "ct_valid": (rng.random(cycles) < 0.5).astype(int),
        "ct": ct,
        "update": (rng.random(cycles) < update_p).astype(int),
        "load_en": (rng.random(cycles) < 0.02).astype(int),
        "load_addr": rng.integers(0, n, cycles),
        "load_data": rng.integers(smin(h.theta_bits), smax(h.theta_bits) + 1, cycles),
    }


INPUTS = ("ct_valid", "ct", "update", "load_en", "load_addr", "load_data")


def tick_loop(model: WeightUpdateModel, st: dict) -> list[tuple]:
    """Loop tick over the stimulus; the outputs after every edge."""
    out = []
    for t in range(len(st["ct"])):
        model.tick(st["pool"][st["code"][t]], *(int(st[k][t]) for k in INPUTS))
        out.append((model.theta.copy(), model.sat_g, model.sat_theta))
    return out


def assert_same_state(fast: WeightUpdateModel, ref: WeightUpdateModel) -> None:
    assert np.array_equal(fast.theta, ref.theta)
    assert np.array_equal(fast.G, ref.G)
    assert np.array_equal(fast.V, ref.V)
    assert (fast.sat_g, fast.sat_theta) == (ref.sat_g, ref.sat_theta)


def assert_trace_matches(trace, start: tuple, per_cycle: list[tuple]) -> None:
    """The trace's held outputs equal the per-cycle outputs on every cycle."""
    e = -1
    for t, (theta, sat_g, sat_t) in enumerate(per_cycle):
        while e + 1 < len(trace.cycles) and trace.cycles[e + 1] <= t:
            e += 1
        held = start if e < 0 else (trace.theta[e], trace.sat_g[e], trace.sat_theta[e])
        assert np.array_equal(held[0], theta), f"cycle {t}: theta"
        assert (held[1], held[2]) == (sat_g, sat_t), f"cycle {t}: counters"


CASES = {
    # name: (n, rounding, momentum, hw, update_p, extreme)
    "halfup": (24, "half_up", 0, {}, 0.05, False),
    "floor-mom": (24, "floor", 3, {}, 0.05, False),
    "narrow-floor-mom": (24, "floor", 1, NARROW, 0.05, True),
    "narrow-halfup": (24, "half_up", 0, {**NARROW, "theta_bits": 8, "eta_shift": 0}, 0.05, True),
    "narrow-halfup-mom-rare-update": (17, "half_up", 2, NARROW, 0.005, False),
    "wide-mom": (16, "half_up", 8, {"ctilde_bits": 40, "g_bits": 60, "v_bits": 62,
                                    "theta_bits": 40, "eta_shift": 30}, 0.02, True),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("with_pool", [True, False])
def test_weight_update_run_matches_tick(name, with_pool):
    n, rounding, momentum, hw, update_p, extreme = CASES[name]
    cfg = wu_config(n, rounding, momentum, **hw)
    seed = len(name) * 10 + with_pool
    st = wu_stimulus(cfg, 6000, seed, update_p, extreme=extreme)
    ref, fast = WeightUpdateModel(cfg), WeightUpdateModel(cfg)
    per_cycle = tick_loop(ref, st)
    args = [st[k] for k in INPUTS]
    if with_pool:
        trace = fast.run(st["code"], *args, pool=st["pool"], trace=True, chunk=1000)
    else:
        trace = fast.run(st["pool"][st["code"]], *args, trace=True, chunk=997)
    assert_same_state(fast, ref)
    assert_trace_matches(trace, (np.zeros(n), 0, 0), per_cycle)
    if "narrow" in name:
        assert ref.sat_g > 0 and ref.sat_theta > 0, f"seed {seed}: no saturation"
    if name.startswith("narrow-floor"):
        assert ref.sat_g == ref.sat_theta == (1 << 8) - 1  # the counters saturated too


@pytest.mark.parametrize("name", ["halfup", "narrow-floor-mom"])
def test_weight_update_run_in_pieces(name):
    """Calls split anywhere (G and V carried mid-window), from a non-zero theta."""
    n, rounding, momentum, hw, update_p, extreme = CASES[name]
    cfg = wu_config(n, rounding, momentum, **hw)
    st = wu_stimulus(cfg, 3000, 5, update_p, extreme=extreme)
    theta0 = np.random.default_rng(5).integers(smin(cfg.hw.theta_bits),
                                               smax(cfg.hw.theta_bits) + 1, n)
    ref, fast = WeightUpdateModel(cfg, theta0), WeightUpdateModel(cfg, theta0)
    tick_loop(ref, st)
    cuts = [0, 1, 2, 500, 1501, 1502, 3000]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        fast.run(st["code"][lo:hi], *(st[k][lo:hi] for k in INPUTS), pool=st["pool"],
                 chunk=256)
    assert_same_state(fast, ref)


def test_weight_update_run_without_loads():
    cfg = wu_config(24, "floor", 2)
    st = wu_stimulus(cfg, 2000, 3)
    st["load_en"][:] = 0
    ref, fast = WeightUpdateModel(cfg), WeightUpdateModel(cfg)
    tick_loop(ref, st)
    fast.run(st["code"], st["ct_valid"], st["ct"], st["update"], pool=st["pool"])
    assert_same_state(fast, ref)


def test_weight_update_run_serial_falls_back_to_tick():
    cfg = wu_config(24, "half_up", 2, lanes=4)
    st = wu_stimulus(cfg, 1500, 9)
    ref, fast = WeightUpdateModel(cfg), WeightUpdateModel(cfg)
    tick_loop(ref, st)
    fast.run(st["code"], *(st[k] for k in INPUTS), pool=st["pool"])
    assert_same_state(fast, ref)
    assert (fast.busy, fast._row) == (ref.busy, ref._row)
    with pytest.raises(ValueError, match="trace needs the parallel unit"):
        fast.run(st["code"][:5], *(st[k][:5] for k in INPUTS), pool=st["pool"], trace=True)


def test_weight_update_trace_of_empty_run():
    model = WeightUpdateModel(wu_config(4))
    trace = model.run(np.zeros((0, 4), int), *(np.zeros(0, int) for _ in range(3)), trace=True)
    assert trace.theta.shape == (0, 4) and len(trace.cycles) == 0


def test_pack_bits_words_helper():
    """bus_words (used above) reads a bus the way code_neg_words lays it out."""
    bits = np.zeros(70, bool)
    bits[[0, 63, 64, 69]] = True
    assert bus_words(pack_bits(bits), 70) == [1 | 1 << 63, 1 | 1 << 5]
