"""The hardware spec: validated once, cached, and the one place derived facts live."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, derive, load_config
from golden_model.hw_layout import Schedule, TrainerLayout
from golden_model.hw_spec import TRAINER_COUNTERS, hw_spec
from golden_model.lfsr import code_masks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_config_is_frozen_and_derive_makes_a_validated_variant() -> None:
    cfg = load_config(EXAMPLES / "hw_xor.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hw.act_bits = 10  # type: ignore[misc]
    wider = derive(cfg, {"hw": {"act_bits": 14}}, {"steps": 7})
    assert (wider.hw.act_bits, wider.steps) == (14, 7)
    assert cfg.hw.act_bits != 14  # the original is untouched
    with pytest.raises(ConfigError, match="hw.act_bits must be an integer from 2 to 24"):
        derive(cfg, {"hw": {"act_bits": 99}})


def test_spec_is_cached_by_config() -> None:
    a = hw_spec(load_config(EXAMPLES / "hw_xor.toml"))
    b = hw_spec(load_config(EXAMPLES / "hw_xor.toml"))
    assert a is b
    assert hw_spec(derive(a.cfg, {"steps": 3})) is not a


def test_block_spec_has_no_trainer_facts() -> None:
    spec = hw_spec(load_config(EXAMPLES / "hw_core_lfsr.toml"))
    assert spec.tier == "block" and not spec.trainer
    assert spec.n == spec.cfg.hw.n_params
    assert spec.layout is None and spec.schedule is None and spec.counter_names == ()
    with pytest.raises(ValueError, match="trainer spec"):
        spec.step_cycles(10)


@pytest.mark.parametrize("name", ["hw_xor", "hw_digits", "hw_digits_node", "hw_parity3"])
def test_trainer_spec_matches_the_layout_and_schedule(name: str) -> None:
    cfg = load_config(EXAMPLES / f"{name}.toml")
    spec = hw_spec(cfg)
    layout = TrainerLayout(cfg)
    assert spec.tier == "trainer" and spec.n == layout.n_params == cfg.hw.n_params
    assert spec.sizes == tuple(layout.sizes)
    assert spec.shadow_bits == sum(x.rows * x.lanes for x in layout.layers) * cfg.hw.theta_bits
    assert spec.counter_names == TRAINER_COUNTERS
    assert spec.step_cycles(1234) == int(Schedule(cfg).step_start(np.array([1234]))[0])
    assert spec.n_perturbed == (layout.n_nodes if spec.node else layout.n_params)


def test_node_perturbation_widens_the_update_format() -> None:
    weight = hw_spec(load_config(EXAMPLES / "hw_digits.toml"))
    node = hw_spec(load_config(EXAMPLES / "hw_digits_node.toml"))
    h = node.cfg.hw
    assert weight.update_hw == weight.cfg.hw
    assert node.update_hw.g_bits == h.g_bits + h.act_bits
    assert node.update_hw.v_bits == h.v_bits + h.act_bits
    assert node.update_hw.eta_shift == h.eta_shift + h.act_frac
    assert node.update_cfg.hw.lanes == 0 and node.update_cfg.hw.g_bits == node.update_hw.g_bits


@pytest.mark.parametrize(("kind", "keys"), [("walsh", [1, 2, 3]), ("time", [0, 1, 2])])
def test_code_keys(kind: str, keys: list[int]) -> None:
    spec = hw_spec(derive(load_config(EXAMPLES / "hw_xor.toml"), {"mgd": {"perturbation": kind}}))
    assert [spec.code_key(p) for p in range(3)] == keys


def test_code_keys_of_lfsr_codes_are_the_masks() -> None:
    spec = hw_spec(load_config(EXAMPLES / "hw_xor.toml"))
    masks = code_masks(spec.n_perturbed, spec.cfg.hw.lfsr_bits)
    assert [spec.code_key(p) for p in range(spec.n_perturbed)] == [int(k) for k in masks]


def test_trainer_rules_are_checked_once_by_the_spec() -> None:
    cfg = load_config(EXAMPLES / "hw_xor.toml")
    bad = derive(cfg, {"mgd": {"perturbation": "frequency"}})  # fine for the float model
    with pytest.raises(ConfigError, match="mgd.perturbation must be 'code', 'walsh' or 'time'"):
        hw_spec(bad)
