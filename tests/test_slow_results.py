"""The float model's headline results (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from golden_model.config import load_config
from golden_model.datasets import load_dataset
from golden_model.train import train_backprop, train_mgd

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.slow


def _solved(result) -> int:
    return int((result.history.array("train_acc") >= 1.0).any(axis=0).sum())


def test_xor_code_multiplexing_solves_at_least_16_of_20_and_matches_backprop() -> None:
    cfg = load_config(EXAMPLES / "xor.toml")
    data = load_dataset(cfg.task, cfg.seed)
    mgd = _solved(train_mgd(cfg, data))
    bp = _solved(train_backprop(cfg, data))
    assert mgd >= 16 and mgd >= bp, (mgd, bp)


def test_parity3_is_solved() -> None:
    cfg = load_config(EXAMPLES / "parity3.toml")
    data = load_dataset(cfg.task, cfg.seed)
    assert _solved(train_mgd(cfg, data)) >= 8


@pytest.mark.parametrize("name,target", [("digits_node.toml", 0.95), ("digits_weight.toml", 0.95)])
def test_digits_reaches_target(name: str, target: float) -> None:
    cfg = load_config(EXAMPLES / name)
    data = load_dataset(cfg.task, cfg.seed)
    result = train_mgd(cfg, data)
    assert result.history.first_step_reaching(target)[0] is not None
    assert result.history.array("test_acc")[-1, 0] >= target - 0.01


def test_digits_backprop_baseline_reaches_97() -> None:
    cfg = load_config(EXAMPLES / "digits_weight.toml")
    data = load_dataset(cfg.task, cfg.seed)
    assert train_backprop(cfg, data).history.array("test_acc").max() >= 0.97
