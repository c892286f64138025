"""The streaming trainer's gateware (hw.pipeline = "stream") against the bit-exact
model in the Amaranth simulator: every perturbed cost on its cost cycle, every
update's parameters on its commit cycle, the counters and the done cycle.
(docs/streaming_trainer.md; the model's own tests: tests/test_trainer_stream.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golden_model.config import ConfigError, load_config, parse_assignment
from golden_model.hw_spec import trainer_spec
from sim.trainer_amaranth import check_trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _cfg(example: str, *sets: str):
    return load_config(EXAMPLES / example, parse_assignment("hw.pipeline=stream"),
                       *(parse_assignment(s) for s in sets))


# weight and node perturbation, every code kind, II from 1 (fully parallel: registered
# adder trees) to folded layers, momentum, clamp, floor rounding, narrow formats that
# saturate, activations, updates later than a window (XOR: D = 9 > 8 evaluations)
MATRIX = {
    "xor-wp": ("hw_xor.toml", (), 80),
    "xor-np": ("hw_xor.toml", ("mgd.mode=node",), 80),
    "xor-wp-full-parallel": ("hw_xor.toml", ("hw.mac_inputs=0", "mgd.tau_theta=8"), 60),
    "xor-np-full-parallel": ("hw_xor.toml", ("mgd.mode=node", "hw.mac_inputs=0",
                                             "mgd.tau_theta=8"), 60),
    "xor-time-taup2-clamp": ("hw_xor.toml", ("mgd.perturbation=time", "mgd.tau_p=2",
                                             "mgd.tau_theta=6", "mgd.tau_x=2",
                                             "hw.clamp=200"), 60),
    "parity-wp-time-folded": ("hw_parity3.toml", ("hw.macs=[2,1]", "hw.mac_inputs=[1,2]",
                                                  "mgd.perturbation=time", "hw.clamp=100"), 60),
    "parity-np-relu-linear": ("hw_parity3.toml", ("network.activation=relu",
                                                  "network.output_activation=linear",
                                                  "hw.macs=[2,1]", "mgd.mode=node"), 60),
    "parity-hardsig-narrow": ("hw_parity3.toml", (
        "network.activation=hard_sigmoid", "hw.mac_inputs=0", "hw.eta_shift=0",
        "hw.g_bits=17", "hw.theta_bits=12", "hw.counter_bits=8", "mgd.tau_theta=10"), 60),
    "parity-np-walsh-momentum-floor": ("hw_parity3.toml", (
        "mgd.mode=node", "mgd.perturbation=walsh", "hw.momentum_shift=3",
        "hw.rounding=floor", "hw.z_rounding=floor", "hw.macs=[3,1]"), 60),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_stream_trainer_amaranth(name):
    example, sets, steps = MATRIX[name]
    out = check_trainer(_cfg(example, *sets), steps)
    assert out["updates"] > 0


def test_stream_trainer_saturates():
    """The narrow config saturates G or theta, the relu/linear one the activations and
    the cost; the counters agree with the model's (checked inside)."""
    out = check_trainer(_cfg("hw_parity3.toml", *MATRIX["parity-hardsig-narrow"][1]), 60)
    assert out["g"] > 0 or out["theta"] > 0
    out = check_trainer(_cfg("hw_parity3.toml", *MATRIX["parity-np-relu-linear"][1]), 60)
    assert out["act"] > 0 and out["cost"] > 0


def test_stream_trainer_catches_a_wrong_gateware(monkeypatch):
    """The check is not vacuous: a G frame with the other update rounding disagrees."""
    import gateware.weight_update as wu
    from sim.tb_common import Mismatch

    true_round = wu.shift_round
    monkeypatch.setattr(wu, "shift_round",
                        lambda x, k, r: true_round(x, k, "floor" if r == "half_up" else "half_up"))
    with pytest.raises(Mismatch, match=r"signal theta\[\d+\]"):
        check_trainer(_cfg("hw_xor.toml", "hw.eta_shift=2"), 40)


def test_stream_timing_of_the_examples():
    """II is the largest folded MAC count (fully parallel: 1); evaluations wait for the
    previous layer's last output; the update delay covers the whole pipeline."""
    st = trainer_spec(_cfg("hw_digits.toml")).stream  # one MAC per neuron, 1 input
    assert st.ii == 64 and st.rows == (64, 16)
    assert st.starts[1] * st.ii >= st.rows[0] + 4 + st.tree[0]
    full = trainer_spec(_cfg("hw_digits.toml", "hw.mac_inputs=0")).stream
    assert full.ii == 1 and full.tree == (6, 4)
    assert full.delay > full.starts[-1]


def test_stream_tau_theta_bound_is_one_line():
    with pytest.raises(ConfigError, match=r"^mgd.tau_theta must be at least 7 with "
                                          r"hw.pipeline 'stream'"):
        trainer_spec(_cfg("hw_xor.toml", "hw.mac_inputs=0"))
