"""The fixed-point network datapath (golden_model.datapath) against hand-computed values,
exact definitions and a plain per-sample integer loop. The trainer model's tests are in
tests/test_trainer_model.py."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import HardwareConfig, load_config
from golden_model.datapath import HwData, HwMLP, activation, quantize_values
from golden_model.datasets import DataError, load_dataset

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# --------------------------------------------------------------- exact definitions

PLAN = ((Fraction(1), Fraction(1, 4), Fraction(1, 2)),
        (Fraction(19, 8), Fraction(1, 8), Fraction(5, 8)),
        (Fraction(5), Fraction(1, 32), Fraction(27, 32)))
HARD = ((Fraction(2), Fraction(1, 4), Fraction(1, 2)),)


def _round(v: Fraction, rounding: str) -> int:
    """v rounded to an integer: floor, or half up (floor(v + 1/2))."""
    return int(np.floor(v + Fraction(1, 2))) if rounding == "half_up" else int(np.floor(v))


def _table(u: Fraction, segments) -> Fraction:
    for bound, slope, offset in segments:
        if u < bound:
            return u * slope + offset
    return Fraction(1)


def _sig_ref(z: int, zf: int, of: int, segments, rounding: str) -> int:
    """The curve on |z|, rounded once to ``of`` fraction bits, reflected for z < 0."""
    f = _round(_table(Fraction(abs(z), 1 << zf), segments) * (1 << of), rounding)
    return (1 << of) - f if z < 0 else f


def _act_ref(kind: str, z: int, zf: int, ab: int, af: int, rounding: str) -> tuple[int, bool]:
    """Plain-Python activation from the documented definitions: (h, saturated)."""
    if kind == "sigmoid":
        return _sig_ref(z, zf, af, PLAN, rounding), False
    if kind == "hard_sigmoid":
        return _sig_ref(z, zf, af, HARD, rounding), False
    if kind == "tanh":
        return _sig_ref(2 * z, zf, af + 1, PLAN, rounding) - (1 << af), False
    if kind == "relu":
        z = max(z, 0)
    v = _round(Fraction(z * (1 << af), 1 << zf), rounding)
    lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    return min(max(v, lo), hi), not lo <= v <= hi


def _hw(**fields) -> HardwareConfig:
    return dataclasses.replace(HardwareConfig(), **fields)


# ------------------------------------------------------- hand-computed forward pass

# 2-2-1, relu then linear. theta Q4.4, x Q2.2, z Q5.3 (z_bits 8), act Q2.4 (6 bits),
# cost 8 bits with 6 fraction bits, cost_shift 0.
# W1 = [[1.5, -0.25], [0.75, 2.0]], b1 = [0.125, -1.0], W2 = [[1.0, -0.5]], b2 = [1/16]
# in theta LSBs (1/16):
HAND_THETA = np.array([24, -4, 12, 32, 2, -16, 16, -8, 1])
HAND_X = np.array([[3, 5]])  # [0.75, 1.25] in x LSBs (1/4)
HAND_T = np.array([[8]])  # 0.5 in act LSBs (1/16)
HAND_HW = dict(theta_bits=8, theta_frac=4, x_bits=4, x_frac=2, z_bits=8, z_frac=3,
               act_bits=6, act_frac=4, acc_bits=16, cost_bits=8, cost_frac=6, cost_shift=0)


@pytest.mark.parametrize(
    ("rounding", "z_bits", "y", "cost", "sat_z", "sat_act"),
    [
        # acc (LSB 1/64) = [72 - 20 + 8, 36 + 160 - 64] = [60, 132], i.e. [0.9375, 2.0625];
        # z = (acc + 4) >> 3 = [8, 17] (1.0, 2.125); relu to act: [16, 34] -> 34
        # saturates to 31. Layer 2 (LSB 1/256): 16*16 - 8*31 + (1 << 4) = 24;
        # z = (24 + 16) >> 5 = 1; y = 2 (0.125). (y - t)^2 = 36, cost (36 + 2) >> 2 = 9.
        ("half_up", 8, 2, 9, 0, 1),
        # z_bits 5: z = [8, 17 -> 15 (saturated)]; h = [16, 30]; 256 - 240 + 16 = 32;
        # z = 48 >> 5 = 1; y = 2; cost 9.
        ("half_up", 5, 2, 9, 1, 0),
        # floor: z = [60 >> 3, 132 >> 3] = [7, 16]; h = [14, 32 -> 31]; 224 - 248 + 16 = -8;
        # z = -8 >> 5 = -1; y = -2 (-0.125); (-2 - 8)^2 = 100; cost 100 >> 2 = 25.
        ("floor", 8, -2, 25, 0, 1),
    ],
)
def test_forward_matches_hand_computation(rounding, z_bits, y, cost, sat_z, sat_act) -> None:
    hw = _hw(**(HAND_HW | {"z_bits": z_bits}), z_rounding=rounding)
    net = HwMLP([2, 2, 1], ["relu", "linear"], hw)
    out = net.forward(HAND_THETA, HAND_X)
    c, c_sat = net.cost(out.y, HAND_T)
    assert out.y.tolist() == [[y]]
    assert c.tolist() == [cost] and not c_sat.any()
    assert out.sat_z.tolist() == [sat_z] and out.sat_act.tolist() == [sat_act]


def test_cost_saturates_and_counts() -> None:
    net = HwMLP([2, 2, 1], ["relu", "linear"], _hw(**HAND_HW))
    # (31 - (-32))^2 = 3969 act LSB^2 -> 3969 >> 2 = 992 > 127: saturated.
    c, s = net.cost(np.array([[31], [8]]), np.array([[-32], [8]]))
    assert c.tolist() == [127, 0] and s.tolist() == [True, False]


def test_weight_perturbation_equals_the_formed_parameters() -> None:
    rng = np.random.default_rng(1)
    hw = _hw(**HAND_HW, amp_log2=2)
    net = HwMLP([2, 2, 1], ["tanh", "sigmoid"], hw)
    codes = rng.integers(-1, 2, (16, net.n_params))
    x = rng.integers(-8, 8, (16, 2))
    a = net.forward(HAND_THETA, x, codes=codes)
    b = net.forward(HAND_THETA[None] + 4 * codes, x)  # theta + s * 2^amp, formed
    assert np.array_equal(a.y, b.y) and np.array_equal(a.sat_z, b.sat_z)


def test_node_perturbation_shifts_the_pre_activation() -> None:
    hw = _hw(**HAND_HW, amp_log2=1)
    net = HwMLP([2, 2, 1], ["relu", "linear"], hw)
    # Perturb hidden neuron 0 by -2 z LSBs: z = [8 - 2, 17] -> h = [12, 31];
    # 16*12 - 8*31 + 16 = -40; z = (-40 + 16) >> 5 = -1; y = -2.
    out = net.forward(HAND_THETA, HAND_X, node_codes=np.array([[-1, 0, 0]]))
    assert out.y.tolist() == [[-2]]


# -------------------------------------------------------------- activation curves


@pytest.mark.parametrize("rounding", ["floor", "half_up"])
@pytest.mark.parametrize("kind", ["sigmoid", "hard_sigmoid", "tanh", "relu", "linear"])
@pytest.mark.parametrize(("zf", "af"), [(5, 3), (5, 8), (3, 9)])
def test_activation_matches_its_definition_on_every_input(kind, rounding, zf, af) -> None:
    z_bits, act_bits = 10, af + 3
    z = np.arange(-(1 << z_bits), 1 << z_bits)  # z_bits + 1 bits: node-perturbed range
    h, s = activation(kind, z, zf, act_bits, af, rounding)
    ref = [_act_ref(kind, int(v), zf, act_bits, af, rounding) for v in z]
    assert h.tolist() == [r[0] for r in ref]
    assert s.tolist() == [r[1] for r in ref]


def test_sigmoid_curves_are_symmetric_and_close_to_the_float_ones() -> None:
    zf, af = 8, 12
    z = np.arange(-(12 << zf), (12 << zf) + 1)
    v = z / (1 << zf)
    sig, _ = activation("sigmoid", z, zf, 16, af, "half_up")
    tanh, _ = activation("tanh", z, zf, 16, af, "half_up")
    hard, _ = activation("hard_sigmoid", z, zf, 16, af, "half_up")
    assert np.array_equal(sig + sig[::-1], np.full_like(sig, 1 << af))
    assert np.array_equal(tanh, -tanh[::-1])
    # PLAN's largest error is 0.0189 (sigmoid), twice that for 2 sig(2z) - 1.
    assert np.abs(sig / (1 << af) - 1 / (1 + np.exp(-v))).max() < 0.0195
    assert np.abs(tanh / (1 << af) - np.tanh(v)).max() < 0.039
    assert np.abs(hard / (1 << af) - np.clip(v / 4 + 0.5, 0, 1)).max() <= 2.0**-(af + 1)
    # PLAN steps down by 2^-8 where its segments meet at |z| = 2.375; monotone elsewhere.
    drops = np.nonzero(np.diff(sig) < 0)[0]
    assert len(drops) == 2
    assert all(2.375 in (abs(v[d]), abs(v[d + 1])) for d in drops)
    assert np.diff(sig).min() >= -(1 << (af - 8))


# ------------------------------------------------ vectorized vs plain per-sample


def _plain_forward(net: HwMLP, theta, x, codes=None, node_codes=None):
    """One row at a time with Python ints, straight from the documented rules."""
    hw = net.hw
    amp = 1 << hw.amp_log2
    rows = len(codes if codes is not None else node_codes if node_codes is not None else x)
    ys, sz, sa = [], [], []
    for r in range(rows):
        th = [int(v) for v in (theta[r] if theta.ndim == 2 else theta)]
        if codes is not None:
            th = [t + amp * int(c) for t, c in zip(th, codes[r], strict=True)]
        h = [int(v) for v in x[r if len(x) > 1 else 0]]
        n_sat_z = n_sat_a = 0
        for l in range(net.n_layers):
            n_in, n_out = net.sizes[l], net.sizes[l + 1]
            in_frac = hw.x_frac if l == 0 else hw.act_frac
            w = th[net.w_slices[l]]
            b = th[net.b_slices[l]]
            out = []
            for i in range(n_out):
                acc = sum(w[i * n_in + j] * h[j] for j in range(n_in)) + (b[i] << in_frac)
                k = hw.theta_frac + in_frac - hw.z_frac
                z = _round(Fraction(acc, 1 << k), hw.z_rounding) if k > 0 else acc << -k
                lo, hi = -(1 << (hw.z_bits - 1)), (1 << (hw.z_bits - 1)) - 1
                n_sat_z += not lo <= z <= hi
                z = min(max(z, lo), hi)
                if node_codes is not None:
                    z += amp * int(node_codes[r][net.node_slices[l].start + i])
                v, s = _act_ref(net.activations[l], z, hw.z_frac, hw.act_bits, hw.act_frac,
                                hw.z_rounding)
                n_sat_a += s
                out.append(v)
            h = out
        ys.append(h)
        sz.append(n_sat_z)
        sa.append(n_sat_a)
    return np.array(ys), np.array(sz), np.array(sa)


FORWARD_CASES = [
    ([5, 4, 3, 2], ["tanh", "tanh", "sigmoid"], "half_up", 40),
    ([3, 6, 2], ["relu", "linear"], "floor", 40),
    ([4, 3, 1], ["hard_sigmoid", "sigmoid"], "floor", 0),  # 0: the int64 path
]


@pytest.mark.parametrize(("sizes", "acts", "rounding", "acc_bits"), FORWARD_CASES)
@pytest.mark.parametrize("mode", ["plain", "shared", "weight", "node"])
def test_vectorized_forward_equals_plain_loop(sizes, acts, rounding, acc_bits, mode) -> None:
    # acc_bits 0 stands for: 40 bits, and the int64 matmul instead of exact float64.
    rng = np.random.default_rng(sum(sizes))
    hw = _hw(theta_bits=12, theta_frac=8, x_bits=8, x_frac=6, z_bits=10, z_frac=6,
             act_bits=10, act_frac=7, acc_bits=acc_bits or 40, z_rounding=rounding,
             amp_log2=5)
    net = HwMLP(sizes, acts, hw)
    assert net.exact_float
    net.exact_float = acc_bits > 0
    m = 12
    theta = rng.integers(-2048, 2048, (m, net.n_params))
    x = rng.integers(-128, 128, (m, sizes[0]))
    codes = node_codes = None
    if mode == "shared":
        theta = theta[0]
    elif mode == "weight":
        theta, codes = theta[0], rng.integers(-1, 2, (m, net.n_params))
    elif mode == "node":
        theta, node_codes = theta[0], rng.integers(-1, 2, (m, net.n_nodes))
    out = net.forward(theta, x, codes=codes, node_codes=node_codes)
    y, sz, sa = _plain_forward(net, theta, x, codes, node_codes)
    assert np.array_equal(out.y, y)
    assert np.array_equal(out.sat_z, sz) and np.array_equal(out.sat_act, sa)
    assert sz.sum() > 0  # the case exercises saturation


# ------------------------------------------------------------------------- data


def test_quantize_values_rounds_half_up_and_rejects_what_does_not_fit() -> None:
    assert quantize_values(np.array([0.5, 0.3, -0.125, 1.0]), 8, 6, "x").tolist() == [
        32, 19, -8, 64
    ]
    with pytest.raises(DataError) as info:
        quantize_values(np.array([0.0, 2.0]), 8, 6, "digits train input")
    assert str(info.value) == (
        "digits train input: value 2.0 does not fit 8-bit fixed point with 6 fraction "
        "bits (range -2.0 to 1.984375)"
    )


def test_hw_data_of_a_task_is_exact_for_digits() -> None:
    cfg = load_config(EXAMPLES / "hw_digits.toml")
    data = load_dataset(cfg.task)
    hd = HwData.from_dataset(data, cfg.hw)
    assert np.array_equal(hd.x_train / (1 << cfg.hw.x_frac), data.x_train)
    assert np.array_equal(hd.t_test / (1 << cfg.hw.act_frac), data.y_test)
