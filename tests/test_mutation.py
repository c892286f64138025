"""Mutation check (sim/mutation.py, sim/mutation_run.py, bench/mutation_check.py): a
wrong LFSR tap, rounding, code order or saturation bound in the gateware must make the
regression fail.

Default run (quick):
(a) every mutation patches only the gateware's binding, restores it afterwards, and
    leaves the golden model alone; a rewrite that no longer matches the source raises;
(b) the mutated Verilog differs from the original (the patch reaches elaboration);
(c) the mutation cases use the regression's own configurations and seeds;
(d) in the Amaranth simulator, the LFSR-tap, rounding and saturation-bound mutants
    are caught by the existing model-beside-design benches;
(e) under cocotb/Verilator, the LFSR-tap and rounding mutants are killed with a
    first-mismatch report (two mutant builds; their controls are the regression's
    own cocotb entries, which run in the default suite with the same seeds).
Slow: the full mutation check, controls included, at the regression's 100k cycles.
"""

from __future__ import annotations

import re

import pytest

import gateware.core as gw_core
import gateware.cost_acc as gw_cost_acc
import gateware.perturb_gen as gw_perturb_gen
import gateware.weight_update as gw_weight_update
import golden_model.fixed
import golden_model.lfsr
from sim.mutation import CASES, CONFIGS, MUTATIONS, _recompiled
from sim.mutation_run import (
    all_good,
    mutant_verilog,
    parse_mismatch,
    run_all,
    run_case,
    verilog_diff_lines,
)

MISMATCH = r"cycle \d+: signal \S+: expected"
GATEWARE = (gw_perturb_gen, gw_cost_acc, gw_weight_update, gw_core)


def case(mutation: str, config: str):
    (found,) = [c for c in CASES if c.mutation.name == mutation and c.config == config]
    return found


def _bindings() -> dict:
    """Every name each gateware module (and its component classes) binds."""
    out = {}
    for mod in GATEWARE:
        out.update({(mod.__name__, k): v for k, v in vars(mod).items()})
        for cls in (v for v in vars(mod).values() if isinstance(v, type)):
            if cls.__module__ == mod.__name__:
                out.update({(cls.__qualname__, k): v for k, v in vars(cls).items()})
    return out


# ---------------------------------------------------------------------------------
# (a) patching
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutation_patches_and_restores(name):
    before = _bindings()
    with MUTATIONS[name].apply():
        during = _bindings()
        # the golden model keeps the true definitions
        assert golden_model.lfsr.tap_mask(16) == sum(1 << (t - 1) for t in (16, 15, 13, 4))
        assert golden_model.fixed.smax(8) == 127
    changed = [k for k in before if during[k] is not before[k]]
    assert len(changed) == 1, changed  # one name of one gateware module
    assert _bindings() == before


def test_lfsr_tap_mutant_drops_one_tap():
    with MUTATIONS["lfsr_tap"].apply():
        mutant = gw_perturb_gen.tap_mask(16)
    true = golden_model.lfsr.tap_mask(16)
    assert bin(true ^ mutant).count("1") == 1 and mutant != true


def test_stale_rewrite_raises():
    with pytest.raises(RuntimeError, match=r"expected one 'x >> k', found 0"):
        _recompiled(gw_cost_acc.CostAcc.elaborate, "x >> k", "x")


def test_parse_mismatch():
    assert parse_mismatch("cycle 12: signal theta[3]: expected -5, got -4") == (12, "theta[3]")
    assert parse_mismatch("the codes never changed") is None


# ---------------------------------------------------------------------------------
# (b) the mutated Verilog differs (lfsr_tap and wu_rounding: checked by run_case in (e))
QUICK_VERILOG = [
    ("code_order", "code-N16-taup1"),
    ("cost_mean_rounding", "discrete_batch4_clamp"),
    ("cost_highpass_rounding", "highpass3_batch4"),
    ("cost_sat_bound", "discrete"),
    ("wu_momentum_rounding", "ser-N48-P4-floor-mom-narrow"),
]


@pytest.mark.parametrize(("mutation", "config"), QUICK_VERILOG)
def test_mutant_verilog_differs(mutation, config):
    original, mutated = mutant_verilog(case(mutation, config))
    assert verilog_diff_lines(original, mutated) > 0
    # and the patch is gone afterwards
    again, _ = mutant_verilog(case(mutation, config))
    assert again == original


# ---------------------------------------------------------------------------------
# (c) the cases are the regression's entries
def test_cases_mirror_regression():
    from test_core import SLOW_MATRIX as CORE_SLOW
    from test_cost_acc import ACC_MATRIX, acc_config
    from test_perturb_gen import GEN_MATRIX, gen_config
    from test_weight_update import MATRIX, matrix_config

    from golden_model.config import load_config
    from sim.mutation import EXAMPLES

    expected = {"code-N16-taup1": (gen_config(*GEN_MATRIX[0]),
                                   GEN_MATRIX[0][1] + GEN_MATRIX[0][2], {})}
    for name, hw, saturates in ACC_MATRIX:
        expected[name] = (acc_config(**hw), len(name),
                          {"expect_saturation": True} if saturates else {})
    for name, spec in MATRIX.items():
        expected[name] = (matrix_config(name), len(name),
                          {"expect_saturation": True} if spec[-1] else {})
    expected["ser-narrow-saturating"] = (CORE_SLOW["ser-narrow-saturating"][0], 1, {})
    expected["hw_core_lfsr"] = (load_config(EXAMPLES / "hw_core_lfsr.toml"), 1,
                                {"expect_learning": True})
    assert {c.config for c in CASES} == set(CONFIGS)
    for name, (_top, make, seed, extra) in CONFIGS.items():
        cfg, exp_seed, exp_extra = expected[name]
        assert make().to_json() == cfg.to_json(), name
        assert (seed, extra) == (exp_seed, exp_extra), name


# ---------------------------------------------------------------------------------
# (d) Amaranth simulator: the existing benches catch the mutants
def test_lfsr_tap_killed_amaranth():
    from test_perturb_gen import rtl_perturb_gen

    cfg = case("lfsr_tap", "code-N16-taup1").make_config()
    rtl_perturb_gen(cfg, cycles=500, seed=1)  # the unmutated design passes
    with MUTATIONS["lfsr_tap"].apply(), pytest.raises(AssertionError, match=MISMATCH):
        rtl_perturb_gen(cfg, cycles=500, seed=1)


@pytest.mark.parametrize(("mutation", "config"), [
    ("wu_rounding", "par-N16-halfup"),
    ("wu_rounding", "par-N32-floor-mom-narrow"),
    ("wu_sat_bound", "par-N32-floor-mom-narrow"),
])
def test_weight_update_mutants_killed_amaranth(mutation, config):
    from test_weight_update import rtl_weight_update

    c = case(mutation, config)
    with MUTATIONS[mutation].apply(), pytest.raises(AssertionError, match=MISMATCH):
        rtl_weight_update(c.make_config(), 400, seed=c.stim_seed, extra=c.extra)


@pytest.mark.parametrize(("mutation", "config"), [
    ("cost_mean_rounding", "discrete_batch4_clamp"),
    ("cost_highpass_rounding", "highpass3_batch4"),
    ("cost_sat_bound", "discrete"),
])
def test_cost_acc_mutants_killed_amaranth(mutation, config):
    from test_cost_acc import rtl_cost_acc

    cfg = case(mutation, config).make_config()
    with MUTATIONS[mutation].apply(), pytest.raises(AssertionError, match=MISMATCH):
        rtl_cost_acc(cfg, cycles=3000, seed=1)


# ---------------------------------------------------------------------------------
# (e) cocotb under Verilator: the tool itself, two mutant builds
@pytest.mark.parametrize(("mutation", "config"), [
    ("lfsr_tap", "code-N16-taup1"),
    ("wu_rounding", "par-N16-halfup"),
])
def test_mutant_killed_cocotb(build_root, mutation, config):
    res = run_case(case(mutation, config), cycles=2000)
    assert res.status == "killed", res
    assert res.killed and res.detect_cycle is not None and res.detect_cycle < 2000
    assert re.match(MISMATCH, res.message), res.message
    assert res.verilog_lines_changed > 0
    assert "mutants" in res.build_dir and res.build_dir.startswith(str(build_root))


# ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_mutation_check(build_root):
    results = run_all(cycles=100_000)
    report = "\n".join(f"{r.mutation}@{r.config}: {r.status}: {r.message}" for r in results)
    assert all_good(results), report
    assert sum(r.status == "killed" for r in results) == len(CASES), report
    assert sum(r.status == "pass" for r in results) == len(CONFIGS), report
