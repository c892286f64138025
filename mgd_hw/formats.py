"""Moving the trainer's fixed-point formats while keeping what they mean in real units.

A trainer config (``hw.datapath = "mlp"``) fixes its learning rate and perturbation
amplitude through shifts, relative to the LSBs of its formats
(docs/hardware_network.md):

- amplitude a = 2^(amp_log2 - theta_frac) (weight perturbation) or 2^(amp_log2 -
  z_frac) (node perturbation, z LSBs);
- a step moves theta by G 2^-eta_shift theta LSBs, G in cost LSBs, so in real units
  by G_real 2^(cost_frac - eta_shift - theta_frac);
- a clamp is in cost LSBs.

:func:`shift_formats` adds fraction bits (and as many width bits, so the integer range
stays) to the theta, act, z and cost formats and moves amp_log2, eta_shift and clamp so
that these real values stay exactly the same; :func:`check_equivalent` verifies that
through the float twin, whose eta, dtheta and clamp are those real values.
:func:`wide_twin` is the high-precision twin of a config, :func:`parse_widths` and
:func:`width_config` serve ``mgd-hw compare --widths``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from golden_model.config import ConfigError, MGDConfig, acc_bits_needed, derive
from golden_model.config import network_sizes as _sizes
from golden_model.float_twin import float_twin
from golden_model.hw_spec import hw_spec

# Fraction bits the high-precision twin adds to every format (fewer where a field limit
# of the config stops it, e.g. act_bits <= 24).
WIDE_EXTRA = 10

# --widths fields: the width and the format (Shift attribute) it moves.
WIDTH_FIELDS = {"theta_bits": "theta", "act_bits": "act", "z_bits": "z", "cost_bits": "cost"}


class ShiftError(ConfigError):
    """A shifted field would fall below 0 (``field``, by ``deficit`` > 0)."""

    def __init__(self, field: str, deficit: int, what: str):
        super().__init__(f"hw.{field} would be {-deficit} (below 0) to keep the {what}")
        self.field, self.deficit = field, deficit


# What each shifted field holds in real units, for the error message.
_KEPT = {
    "amp_log2": "real-valued perturbation amplitude (it would be below one LSB)",
    "eta_shift": "real-valued learning rate",
}


@dataclass(frozen=True)
class Shift:
    """Fraction bits added to (negative: taken from) each format, with as many width
    bits; ``cost`` moves the cost LSB that C~, G and V share."""

    theta: int = 0
    act: int = 0
    z: int = 0
    cost: int = 0


def _acc_need(cfg_hw, sizes: list[int]) -> int:
    """The accumulator width validation asks for (the widest layer)."""
    return max(
        acc_bits_needed(cfg_hw, fan_in, *(
            (cfg_hw.x_bits, cfg_hw.x_frac) if layer == 0 else (cfg_hw.act_bits, cfg_hw.act_frac)
        ))
        for layer, fan_in in enumerate(sizes[:-1])
    )


def shift_formats(cfg: MGDConfig, shift: Shift) -> MGDConfig:
    """``cfg`` with its formats moved by ``shift`` and the same real-valued amplitude,
    learning rate and clamp.

    Parameters
    ----------
    cfg : a trainer config (``hw.datapath = "mlp"``)
    shift : fraction (and width) bits added to each format

    Returns
    -------
    MGDConfig
        The new, validated config. amp_log2 moves with the perturbed format (theta for
        weight, z for node perturbation), eta_shift by ``cost - theta``, the clamp by
        ``cost``; acc_bits keeps the config's margin over the width validation needs.

    Raises
    ------
    ConfigError
        When a shifted field leaves its range (e.g. eta_shift below 0) or the new
        config does not validate; one line naming the field.
    """
    h, d = cfg.hw, shift
    node = cfg.mgd.mode == "node"
    fields = {
        "theta_bits": h.theta_bits + d.theta, "theta_frac": h.theta_frac + d.theta,
        "act_bits": h.act_bits + d.act, "act_frac": h.act_frac + d.act,
        "z_bits": h.z_bits + d.z, "z_frac": h.z_frac + d.z,
        "cost_bits": h.cost_bits + d.cost, "cost_frac": h.cost_frac + d.cost,
        "ctilde_bits": h.ctilde_bits + d.cost, "g_bits": h.g_bits + d.cost,
        "v_bits": h.v_bits + d.cost,
        "amp_log2": h.amp_log2 + (d.z if node else d.theta),
        "eta_shift": h.eta_shift + d.cost - d.theta,
    }
    for name in ("amp_log2", "eta_shift", "theta_frac", "act_frac", "z_frac", "cost_frac"):
        if fields[name] < 0:
            raise ShiftError(name, -fields[name], _KEPT.get(name, "integer range"))
    if h.clamp:
        clamp = h.clamp * 2.0**d.cost
        if clamp != int(clamp):
            raise ConfigError(
                f"hw.clamp ({h.clamp} cost LSBs) is not a whole number of the new cost LSB"
            )
        fields["clamp"] = int(clamp)
    # The accumulator is exact at any width that holds the worst case; keep the margin
    # the config had over that minimum (none in the examples).
    sizes = _sizes(cfg)
    moved = dataclasses.replace(h, **fields)
    fields["acc_bits"] = _acc_need(moved, sizes) + max(0, h.acc_bits - _acc_need(h, sizes))
    out = hw_spec(derive(cfg, {"hw": fields}), gateware=False).cfg
    check_equivalent(cfg, out)
    return out


def check_equivalent(a: MGDConfig, b: MGDConfig) -> None:
    """Raise :class:`ConfigError` unless ``a`` and ``b`` mean the same amplitude,
    learning rate, clamp and momentum in real units (their float twins agree)."""
    ta, tb = float_twin(a).mgd, float_twin(b).mgd
    for name in ("eta", "dtheta", "clamp", "optimizer", "momentum"):
        if getattr(ta, name) != getattr(tb, name):
            raise ConfigError(
                f"the shifted formats change mgd.{name} in real units: {getattr(ta, name)!r} "
                f"-> {getattr(tb, name)!r}"
            )


def wide_twin(cfg: MGDConfig, extra: int = WIDE_EXTRA) -> tuple[MGDConfig, Shift]:
    """The high-precision twin of a trainer config: ``extra`` more fraction bits in
    theta, z and the cost (and up to ``extra`` in the activations), the same real-valued
    amplitude, learning rate and clamp, the same codes and sample order.

    Field limits (act_bits <= 24, z_bits <= 32, g_bits <= 62, acc_bits <= 62, ...) can
    stop a format short of ``extra``: each format then takes what fits, and when the
    whole config does not validate, the shift is retried one bit smaller.

    Returns
    -------
    (MGDConfig, Shift)
        The twin and the shift it has.

    Raises
    ------
    ConfigError
        When not even one extra bit fits.
    """
    h = cfg.hw
    node = cfg.mgd.mode == "node"
    wide_g = h.v_bits if h.momentum_shift else h.g_bits
    last = None
    for e in range(extra, 0, -1):
        # theta and the cost move together, so eta_shift stays where it is.
        t = min(e, 48 - h.theta_bits, 48 - h.cost_bits, 48 - h.ctilde_bits,
                62 - max(h.g_bits, h.v_bits))
        a = min(e, 24 - h.act_bits)
        if node:  # G_p = D_j h_p is act_bits wider than g_bits
            a = min(a, 62 - wide_g - t - h.act_bits)
        # z narrows the accumulator: z_frac <= theta_frac + min(x_frac, act_frac).
        z_room = h.theta_frac + t + min(h.x_frac, h.act_frac + a) - h.z_frac
        z = min(e, 32 - h.z_bits, z_room)
        if t < 1:
            break
        shift = Shift(theta=t, act=max(a, 0), z=max(z, 0), cost=t)
        try:
            return shift_formats(cfg, shift), shift
        except ConfigError as exc:
            last = exc
    raise ConfigError(f"no high-precision twin fits the field limits of this config ({last})")


def parse_widths(spec: str) -> tuple[str, list[int]]:
    """``FIELD=V1,V2,...`` (FIELD one of ``WIDTH_FIELDS``, optionally ``hw.``-prefixed)
    as (field, values); a bad spec raises :class:`ValueError` with one line."""
    fields = ", ".join(WIDTH_FIELDS)
    if "=" not in spec:
        raise ValueError(f"--widths takes FIELD=V1,V2,... with FIELD one of {fields}, "
                         f"not {spec!r}")
    name, _, raw = spec.partition("=")
    name = name.strip().removeprefix("hw.")
    if name not in WIDTH_FIELDS:
        raise ValueError(f"--widths field must be one of {fields}, not {name!r}")
    items = [v.strip() for v in raw.split(",")]
    try:
        values = [int(v) for v in items]
    except ValueError:
        raise ValueError(f"--widths {name} takes comma-separated integers like 8,10,12, "
                         f"not {raw!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"--widths {name} values must be positive integers, not {raw!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"--widths {name} lists a value twice: {raw!r}")
    return name, sorted(values)


def width_config(cfg: MGDConfig, field: str, bits: int) -> MGDConfig:
    """``cfg`` with ``hw.<field>`` = ``bits`` and its fraction bits moved by the same
    amount (the integer range stays), amplitude and learning rate kept in real units
    (:func:`shift_formats`). Raises :class:`ConfigError` naming the width."""
    delta = bits - getattr(cfg.hw, field)
    try:
        return shift_formats(cfg, Shift(**{WIDTH_FIELDS[field]: delta}))
    except ShiftError as exc:
        # Each bit of the width moves the field by one: say where the limit is.
        limit = bits + exc.deficit if delta < 0 else bits - exc.deficit
        side = "narrowest" if delta < 0 else "widest"
        raise ConfigError(f"--widths {field}={bits}: {exc}; the {side} {field} that keeps "
                          f"it is {limit}") from None
    except ConfigError as exc:
        raise ConfigError(f"--widths {field}={bits}: {exc}") from None
