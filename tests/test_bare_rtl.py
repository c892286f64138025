"""Bare Verilator runs (sim.bare) against the golden model's fast paths.

The RTL runs from a C++ main with no Python per cycle; the model replays the same
counter-based stimulus. Outputs after the last edge and the digest of every cycle's
outputs must be equal. Builds go to the session's temporary MGD_BUILD_ROOT
(``build_root`` fixture), never into the working tree.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden_model.config import build_config, derive
from golden_model.fixed import pack_signed
from sim import bare, bare_harness, bare_protocol, bare_weight_update

CYCLES = 20_000
NARROW = {"ctilde_bits": 6, "g_bits": 8, "v_bits": 9, "theta_bits": 6, "theta_frac": 3,
          "amp_log2": 1, "eta_shift": 1, "counter_bits": 16}


def gen_config(n=64, bits=16, tau_p=3):
    return build_config({"hw": {"n_params": n, "lfsr_bits": bits},
                         "mgd": {"tau_p": tau_p, "tau_theta": tau_p}})


def wu_config(n=64, rounding="floor", momentum=2, **hw):
    return build_config({"hw": {"n_params": n, "rounding": rounding,
                                "momentum_shift": momentum, **hw}})


def compare(cfg, top, cycles, seed, fast_compile=True):
    exe = bare.build(cfg, top, fast_compile=fast_compile)
    rtl = bare.run(exe, cycles, seed)
    model = bare.model_run(cfg, top, cycles, seed, chunk=7_000)
    diff = bare.first_difference(rtl, model, cfg)
    assert diff is None, f"{top}, {cycles} cycles, stimulus seed {seed}: {diff}"
    assert rtl.digest == model.digest and rtl.cycles == cycles
    return exe, rtl, model


# ---------------------------------------------------------------------------------
# the NumPy side of the protocol
def test_draws_match_scalar_mix():
    key = bare_protocol.stream_key(3, 1)
    got = bare_protocol.draws(3, 1, 10, 4).tolist()
    assert got == [bare_protocol.mix64(key + t * bare_protocol.GAMMA) for t in range(10, 14)]


def test_fold_is_the_per_cycle_recurrence():
    d = np.random.default_rng(0).integers(0, 1 << 63, 50, dtype=np.uint64) * np.uint64(3)
    h = 12345
    for v in d.tolist():
        h = (h * bare_protocol.GAMMA + v) & bare_protocol.MASK
    assert bare_protocol.fold(12345, d) == h
    assert bare_protocol.fold(bare_protocol.fold(12345, d[:17]), d[17:]) == h


@pytest.mark.parametrize("width", [6, 13, 16, 32])
def test_field_words_match_pack_signed(width):
    rng = np.random.default_rng(width)
    values = rng.integers(-(1 << (width - 1)), 1 << (width - 1), (3, 37))
    words = bare_protocol.field_words(values, width)
    for row, w in zip(values, words, strict=True):
        packed = pack_signed(row, width)
        assert w.tolist() == [(packed >> (64 * i)) & bare_protocol.MASK for i in range(len(w))]


def test_weight_update_stimulus_in_pieces():
    cfg = wu_config()
    whole = bare_weight_update.stimulus(cfg, 5, 0, 1000)
    a = bare_weight_update.stimulus(cfg, 5, 0, 400)
    b = bare_weight_update.stimulus(cfg, 5, 400, 600, code0=int(a["code"][-1]))
    for key, value in whole.items():
        assert np.array_equal(value, np.concatenate([a[key], b[key]])), key
    _, _, codes = bare_weight_update.pool(cfg, 5)
    assert codes.shape == (bare_weight_update.POOL, 64) and (codes[0] != 0).all()


def test_unsupported_configs_are_refused():
    with pytest.raises(ValueError, match="perturbation 'code'"):
        bare_harness.harness_source(build_config({"mgd": {"perturbation": "walsh"}}), "perturb_gen")
    with pytest.raises(ValueError, match="hw.lanes = 0"):
        bare_harness.harness_source(wu_config(lanes=4), "weight_update")
    with pytest.raises(ValueError, match="top must be one of"):
        bare_harness.harness_source(wu_config(), "core")


# ---------------------------------------------------------------------------------
# RTL against the model
def test_perturb_gen_bare_matches_model(build_root):
    compare(gen_config(), "perturb_gen", CYCLES, seed=11)


def test_weight_update_bare_matches_model(build_root):
    """Narrow widths, momentum, floor: G, V, theta and loads all exercised."""
    cfg = wu_config(**NARROW)
    exe, rtl, model = compare(cfg, "weight_update", CYCLES, seed=12)
    assert model.outputs["sat_g"] > 0 and model.outputs["sat_theta"] > 0

    # the same executable, a model that differs in one shift: the check must notice
    wrong = derive(cfg, {"hw": {"eta_shift": 2}})
    assert bare.first_difference(rtl, bare.model_run(wrong, "weight_update", CYCLES, 12),
                                 cfg) is not None
    # and a different stimulus seed gives a different run
    assert bare.run(exe, CYCLES, 13).digest != rtl.digest


@pytest.mark.slow
@pytest.mark.parametrize("n, bits, tau_p", [(100, 32, 1), (1, 8, 2)])
def test_perturb_gen_bare_slow(build_root, n, bits, tau_p):
    cfg = build_config({"hw": {"n_params": n, "lfsr_bits": bits, "lfsr_seed": 1},
                        "mgd": {"tau_p": tau_p, "tau_theta": tau_p}})
    compare(cfg, "perturb_gen", 500_000, seed=n)


@pytest.mark.slow
@pytest.mark.parametrize("name, cfg", [
    ("halfup", {"rounding": "half_up", "momentum": 0}),
    ("halfup-mom-t13", {"rounding": "half_up", "momentum": 3, "theta_bits": 13}),
    ("narrow-halfup", {"rounding": "half_up", "momentum": 0, **NARROW, "theta_bits": 8}),
])
def test_weight_update_bare_slow(build_root, name, cfg):
    compare(wu_config(n=48, **cfg), "weight_update", 200_000, seed=len(name))
