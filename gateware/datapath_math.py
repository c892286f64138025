"""Combinational arithmetic of the on-chip network: narrowing, activations, squared error.

Each function builds the hardware for one value and mirrors one function of
``golden_model.datapath`` (same segment tables, same rounding, same saturation), so
the trainer's datapath computes the model's integers. Widths are chosen so nothing
can wrap before the explicit saturation: every intermediate is one bit wider than the
largest value it can hold.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed

from golden_model.datapath import HARD_SEGMENTS, PLAN_SEGMENTS

from . import weight_update


def rescale(x, k: int, rounding: str):
    """x * 2^-k: a rounded arithmetic shift right for k > 0 (``fixed.shift_round``),
    the exact shift left for k <= 0 (``datapath.rescale``). The datapath's own
    rounding (``hw.z_rounding``), kept apart from the update's ``_shift_round`` so the
    two decisions stay separate in the gateware as in the config."""
    if k <= 0:
        return x << (-k)
    if rounding == "half_up":
        x = x + (1 << (k - 1))  # Amaranth widens the sum, so the bias never overflows
    return x >> k


def saturate(m: Module, x, bits: int, name: str) -> tuple[Signal, object]:
    """``x`` clamped to signed ``bits``; returns (value, saturated flag): the
    weight-update unit's saturation, shared so both narrow the same way."""
    return weight_update._saturate(m, x, bits, name)


def _sigmoid_like(m: Module, z, z_frac: int, out_frac: int, segments, rounding: str,
                  name: str) -> Signal:
    """``datapath.sigmoid_like``: segment table on |z|, one rounding, reflected for z < 0.

    The segment value u 2^(5 - slope) + offset 2^z_frac is formed exactly in units of
    2^-(z_frac + 5); every bound u < num / 2^d is compared exactly as
    u 2^d < num 2^z_frac. The priority chain of Muxes is the model's first-match loop.
    """
    u = Signal(len(z), name=f"{name}_u")  # |z| of a signed value fits its width unsigned
    m.d.comb += u.eq(Mux(z < 0, -z, z))
    v = Const(32 << z_frac)  # beyond the last bound: 1.0
    for num, den_log2, slope_log2, offset in reversed(segments):
        inside = (u << den_log2) < (num << z_frac)
        v = Mux(inside, (u << (5 - slope_log2)) + (offset << z_frac), v)
    seg = Signal(len(u) + 6, name=f"{name}_v")
    m.d.comb += seg.eq(v)
    f = Signal(out_frac + 2, name=f"{name}_f")  # 0 .. 2^out_frac
    m.d.comb += f.eq(rescale(seg, z_frac + 5 - out_frac, rounding))
    out = Signal(signed(out_frac + 2), name=name)
    m.d.comb += out.eq(Mux(z < 0, (1 << out_frac) - f, f))
    return out


def activation(m: Module, kind: str, z, h, name: str) -> tuple[Signal, object]:
    """``datapath.activation`` of z (z_frac) to the act format: (h, saturated).

    ``h`` is the ``hw`` config section. ``z`` may be one bit wider than z_bits (node
    perturbation adds the amplitude without saturating).
    """
    out = Signal(signed(h.act_bits), name=name)
    flag = Const(0, 1)
    if kind == "sigmoid":
        m.d.comb += out.eq(_sigmoid_like(m, z, h.z_frac, h.act_frac, PLAN_SEGMENTS,
                                         h.z_rounding, f"{name}_sig"))
    elif kind == "hard_sigmoid":
        m.d.comb += out.eq(_sigmoid_like(m, z, h.z_frac, h.act_frac, HARD_SEGMENTS,
                                         h.z_rounding, f"{name}_hsig"))
    elif kind == "tanh":
        z2 = Signal(signed(len(z) + 1), name=f"{name}_2z")
        m.d.comb += z2.eq(z << 1)
        s = _sigmoid_like(m, z2, h.z_frac, h.act_frac + 1, PLAN_SEGMENTS, h.z_rounding,
                          f"{name}_sig2")
        m.d.comb += out.eq(s - (1 << h.act_frac))
    elif kind in ("relu", "linear"):
        src = Mux(z < 0, 0, z) if kind == "relu" else z
        pos = Signal(signed(len(z) + 1), name=f"{name}_in")
        m.d.comb += pos.eq(src)
        k = h.z_frac - h.act_frac
        wide = Signal(signed(len(z) + 2 + max(0, -k)), name=f"{name}_wide")
        m.d.comb += wide.eq(rescale(pos, k, h.z_rounding))
        sat_out, flag = saturate(m, wide, h.act_bits, f"{name}_sat")
        m.d.comb += out.eq(sat_out)
    else:
        raise ValueError(f"unknown activation {kind!r}")
    return out, flag
