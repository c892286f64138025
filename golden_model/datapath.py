"""Bit-exact fixed-point MLP of the on-chip trainer: the network datapath's specification.

Integer NumPy, vectorized over M rows: each row is one forward pass (its own sample,
and its own weight- or node-perturbation code), so the K perturbed passes of an MGD
update window and its baseline passes are one call. The gateware's datapath computes
exactly these integers; docs/hardware_network.md restates every rule.

Formats (two's complement, ``hw`` fields of the config; Qi.f = i integer bits with the
sign, f fraction bits):

- theta (W and b): theta_bits, theta_frac. Layout as the float model: per layer W
  (out x in, row-major), then b.
- input sample x: x_bits, x_frac. Layer inputs: x for layer 0, the previous layer's
  activations (act_bits, act_frac) after it; call the input format (in_bits, in_frac).
- accumulator: acc_bits, LSB 2^-(theta_frac + in_frac). acc_i = sum_j W_ij h_j +
  (b_i << in_frac): the bias is aligned to the product LSB by an exact left shift. The
  sum is exact; the config check makes acc_bits wide enough for the worst case, so it
  never saturates.
- pre-activation z: z_bits, z_frac. z = sat(round(acc * 2^-(theta_frac + in_frac -
  z_frac))), rounding ``z_rounding`` (floor: arithmetic shift; half_up: add half an
  LSB, then shift); a negative shift is an exact left shift. Saturations are counted
  per row (``sat_z``).
- weight perturbation: the row's parameters are theta + s * 2^amp_log2 (theta LSBs),
  exact in theta_bits + 1 bits, never formed: acc gains 2^amp_log2 * (sum_j s_ij h_j +
  (s_i << in_frac)).
- node perturbation: after the narrowing, z' = z + s_j * 2^amp_log2 (z LSBs), exact in
  z_bits + 1 bits (no saturation; every activation below accepts the wider value).
- activation h: act_bits, act_frac (see ``activation``). relu and linear saturate to
  act_bits (counted in ``sat_act``); the sigmoid-like ones are bounded by definition.
- cost: C = sat(round(sum_o (y_o - t_o)^2 * 2^-(2 act_frac + cost_shift - cost_frac))),
  cost_bits wide with cost_frac fraction bits, so C = sum of squared errors /
  2^cost_shift. y and t are in the act format; the squares and their sum are exact;
  one rounding (``z_rounding``); ``cost`` also returns which rows saturated.

Data (``quantize_values``): float inputs and targets are rounded half up to their
format (x format for inputs, act format for targets); a value that does not fit is an
error, not a saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MGDConfig, acc_bits_needed, network_sizes
from .datasets import DataError, Dataset
from .fixed import sat, shift_round, smax, smin

# Sigmoid-like activations are tables of segments on u = |z| >= 0: while u < bound,
# f(u) = u / 2^slope_log2 + offset / 32; beyond the last bound f = 1. The negative half
# is the reflection f(-u) = 1 - f(u), computed as 2^out_frac - f(u) so the integer
# curve is exactly point-symmetric about (0, 1/2). A bound is (num, den_log2): the
# value num / 2^den_log2. PLAN (Amin, Curtis, Hayes-Gill 1997): power-of-two slopes,
# so the hardware needs shifts and adds only.
PLAN_SEGMENTS = ((1, 0, 2, 16), (19, 3, 3, 20), (5, 0, 5, 27))
HARD_SEGMENTS = ((2, 0, 2, 16),)
HW_ACTIVATIONS = ("sigmoid", "tanh", "hard_sigmoid", "relu", "linear")


def rescale(x, k: int, rounding: str):
    """x * 2^-k: for k > 0 a rounded shift right (``fixed.shift_round``), else the exact
    shift left by -k."""
    if k > 0:
        return shift_round(x, k, rounding)
    return x << (-k) if isinstance(x, int) else np.left_shift(x, -k)


def sigmoid_like(
    z: np.ndarray, z_frac: int, out_frac: int, segments: tuple, rounding: str
) -> np.ndarray:
    """A segment table (see ``PLAN_SEGMENTS``) on z (z_frac) to out_frac, one rounding.

    For u = |z|, the segment value u / 2^k + c / 32 is formed exactly in units of
    2^-(z_frac + 5) (u * 2^(5 - k) + c * 2^z_frac), then rounded once to out_frac.
    Every bound is compared exactly: u < num / 2^d  <=>  u * 2^d < num * 2^z_frac.
    """
    u = np.abs(z)
    one = 32 << z_frac
    v = np.full(u.shape, one, dtype=np.int64)
    done = np.zeros(u.shape, dtype=bool)
    for num, den_log2, slope_log2, offset in segments:
        inside = ~done & ((u << den_log2) < (num << z_frac))
        v = np.where(inside, (u << (5 - slope_log2)) + (offset << z_frac), v)
        done |= inside
    f = rescale(v, z_frac + 5 - out_frac, rounding)
    return np.where(z < 0, (1 << out_frac) - f, f)


def activation(
    kind: str, z: np.ndarray, z_frac: int, act_bits: int, act_frac: int, rounding: str
) -> tuple[np.ndarray, np.ndarray]:
    """Hardware activation of z (z_frac) to the act format; returns (h, saturated).

    - ``sigmoid``: PLAN: |z| >= 5 -> 1; 2.375 <= |z| < 5 -> |z|/32 + 0.84375;
      1 <= |z| < 2.375 -> |z|/8 + 0.625; else |z|/4 + 0.5; 1 - f(|z|) for z < 0.
    - ``hard_sigmoid``: clamp(z/4 + 1/2, 0, 1) (the same table with one segment).
    - ``tanh``: 2 sig(2z) - 1 with the PLAN sigmoid, evaluated as
      sig(2z) to act_frac + 1 fraction bits minus 2^act_frac (one rounding).
    - ``relu``: sat(round(max(z, 0))), ``linear``: sat(round(z)) to act_bits.
    """
    none = np.zeros(z.shape, dtype=bool)
    if kind == "sigmoid":
        return sigmoid_like(z, z_frac, act_frac, PLAN_SEGMENTS, rounding), none
    if kind == "hard_sigmoid":
        return sigmoid_like(z, z_frac, act_frac, HARD_SEGMENTS, rounding), none
    if kind == "tanh":
        s = sigmoid_like(2 * z, z_frac, act_frac + 1, PLAN_SEGMENTS, rounding)
        return s - (1 << act_frac), none
    if kind == "relu":
        z = np.maximum(z, 0)
    elif kind != "linear":
        raise ValueError(f"activation must be one of {', '.join(HW_ACTIVATIONS)}, not {kind!r}")
    return sat(rescale(z, z_frac - act_frac, rounding), act_bits)


@dataclass
class Forward:
    """One batched forward pass: outputs ``y`` (M, n_out) in the act format, each layer's
    input ``inputs[l]`` (M or 1, n_in_l), and per-row saturation counts (M,)."""

    y: np.ndarray
    inputs: list[np.ndarray]
    sat_z: np.ndarray
    sat_act: np.ndarray


class HwMLP:
    """The fixed-point MLP (formats in the module docstring).

    Parameters
    ----------
    sizes : [n_in, hidden..., n_out]
    activations : one hardware activation name per layer (``HW_ACTIVATIONS``)
    hw : the ``hw`` section of a config (formats, amp_log2, z_rounding, cost_shift)
    """

    def __init__(self, sizes: list[int], activations: list[str], hw):
        if len(activations) != len(sizes) - 1:
            raise ValueError(f"need {len(sizes) - 1} activations, not {len(activations)}")
        self.sizes, self.activations, self.hw = list(sizes), list(activations), hw
        self.w_slices, self.b_slices, self.node_slices = [], [], []
        pos = node = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.w_slices.append(slice(pos, pos + n_in * n_out))
            self.b_slices.append(slice(pos + n_in * n_out, pos + (n_in + 1) * n_out))
            self.node_slices.append(slice(node, node + n_out))
            pos += (n_in + 1) * n_out
            node += n_out
        self.n_params, self.n_nodes = pos, node
        self.in_formats = [(hw.x_bits, hw.x_frac)] + [(hw.act_bits, hw.act_frac)] * (
            len(sizes) - 2
        )
        need = max(
            acc_bits_needed(hw, f, *fmt)
            for f, fmt in zip(sizes[:-1], self.in_formats, strict=True)
        )
        if hw.acc_bits < need:
            raise ValueError(f"hw.acc_bits must be at least {need}, not {hw.acc_bits}")
        # Every partial sum is an integer below 2^(need - 1), so when that is below 2^53
        # float64 BLAS computes the integer dot products exactly, in any order.
        self.exact_float = need <= 53

    @classmethod
    def from_config(cls, cfg: MGDConfig) -> HwMLP:
        """The network of ``[network]`` on the task's data shape, in the ``hw`` formats."""
        n = cfg.network
        sizes = network_sizes(cfg)
        acts = [n.activation] * (len(sizes) - 2) + [n.output_activation]
        return cls(sizes, acts, cfg.hw)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def unpack(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-layer (W (..., out, in), b (..., out)) views of theta (..., N)."""
        lead = theta.shape[:-1]
        return [
            (theta[..., ws].reshape(*lead, self.sizes[l + 1], self.sizes[l]), theta[..., bs])
            for l, (ws, bs) in enumerate(zip(self.w_slices, self.b_slices, strict=True))
        ]

    def _dot(self, w: np.ndarray, h: np.ndarray) -> np.ndarray:
        """sum_j w[..., i, j] h[..., j] exactly: w (out, in) or (M, out, in), h (M or 1, in).

        With ``exact_float`` the operands go through float64 BLAS (exact, see __init__).
        """
        if self.exact_float:
            w = w.astype(np.float64, copy=False)
            h = h.astype(np.float64, copy=False)
        if w.ndim == 2:
            out = h @ w.T
        elif len(h) == 1:  # one input row for all M weight sets: a single product
            out = (w.reshape(-1, w.shape[-1]) @ h[0]).reshape(w.shape[:2])
        elif self.exact_float:
            out = np.matmul(w, h[..., None])[..., 0]
        else:
            out = np.einsum("moi,mi->mo", w, h)
        return out.astype(np.int64) if self.exact_float else out

    def forward(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        codes: np.ndarray | None = None,
        node_codes: np.ndarray | None = None,
    ) -> Forward:
        """Evaluate M rows.

        theta : (N,) shared by all rows, or (M, N)
        x : (M, n_in) or (1, n_in) in the x format
        codes : optional (M, N) weight-perturbation codes in {-1, 0, +1}
        node_codes : optional (M, n_nodes) node-perturbation codes
        """
        hw = self.hw
        amp = 1 << hw.amp_log2
        h = np.asarray(x, dtype=np.int64)
        rows = max(len(h), 1 if theta.ndim == 1 else len(theta))
        rows = max(rows, 0 if codes is None else len(codes))
        rows = max(rows, 0 if node_codes is None else len(node_codes))
        sat_z = np.zeros(rows, dtype=np.int64)
        sat_act = np.zeros(rows, dtype=np.int64)
        inputs = []
        params = self.unpack(theta)
        upert = None
        if codes is not None:
            upert = self.unpack(np.asarray(codes, np.float64 if self.exact_float else np.int64))
        for l, (w, b) in enumerate(params):
            in_frac = self.in_formats[l][1]
            inputs.append(h)
            acc = self._dot(w, h) + (b << in_frac)
            if upert is not None:
                uw, ub = upert[l]
                acc = acc + amp * (self._dot(uw, h) + ub.astype(np.int64) * (1 << in_frac))
            acc = np.broadcast_to(acc, (rows, acc.shape[-1]))
            z, s = sat(rescale(acc, hw.theta_frac + in_frac - hw.z_frac, hw.z_rounding),
                       hw.z_bits)
            sat_z += s.sum(axis=1)
            if node_codes is not None:
                z = z + amp * np.asarray(node_codes, dtype=np.int64)[:, self.node_slices[l]]
            h, s = activation(self.activations[l], z, hw.z_frac, hw.act_bits, hw.act_frac,
                              hw.z_rounding)
            sat_act += s.sum(axis=1)
        return Forward(h, inputs, sat_z, sat_act)

    def cost(self, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row cost (M,) in the cost format and whether it saturated (M,)."""
        hw = self.hw
        e = y - t
        wide = np.sum(e * e, axis=-1)
        k = 2 * hw.act_frac + hw.cost_shift - hw.cost_frac
        return sat(rescale(wide, k, hw.z_rounding), hw.cost_bits)

    def predict(self, y: np.ndarray) -> np.ndarray:
        """Class decisions as the float model's: y > 1/2 for one output, else argmax."""
        if y.shape[-1] == 1:
            return (y[..., 0] > (1 << (self.hw.act_frac - 1))).astype(np.int64)
        return np.argmax(y, axis=-1)


# --- data ------------------------------------------------------------------------


def quantize_values(values: np.ndarray, bits: int, frac: int, what: str,
                    columns: tuple[str, ...] = (), hint: str = "") -> np.ndarray:
    """Round floats half up to signed (bits, frac) fixed point, as int64 LSB counts.

    Raises :class:`~golden_model.datasets.DataError` (one line) when a value does not
    fit the format after rounding; it names the column (``columns``: the names of a 2-D
    array's columns, else its index) and ends with ``hint``.
    """
    v = np.asarray(values, dtype=np.float64)
    q = np.floor(v * float(1 << frac) + 0.5)
    lo, hi = smin(bits), smax(bits)
    bad = (q < lo) | (q > hi) | ~np.isfinite(q)
    if bad.any():
        first = float(v[bad].flat[0])
        where = ""
        if v.ndim == 2:
            row, col = (int(i) for i in np.argwhere(bad)[0])
            name = columns[col] if col < len(columns) else f"column {col}"
            where = f" {name!r}" if col < len(columns) else f" {name}"
            where += f" (row {row})"
        raise DataError(
            f"{what}{where}: value {first!r} does not fit {bits}-bit fixed point with {frac} "
            f"fraction bits (range {lo / (1 << frac)} to {hi / (1 << frac)}){hint}"
        )
    return q.astype(np.int64)


@dataclass(frozen=True)
class HwData:
    """A task in the hardware formats: inputs (x format), targets (act format), labels."""

    x_train: np.ndarray
    t_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    labels_test: np.ndarray

    @classmethod
    def from_dataset(cls, data: Dataset, hw) -> HwData:
        """Quantize a :class:`~golden_model.datasets.Dataset` into the ``hw`` formats."""
        def x(v, split):
            hint = ("; scale the inputs (task.scale = 'minmax' or 'standard') or widen "
                    "hw.x_bits" if data.columns else "")
            return quantize_values(v, hw.x_bits, hw.x_frac, f"{data.name} {split} input",
                                   data.columns, hint)

        def t(v, split):
            return quantize_values(v, hw.act_bits, hw.act_frac, f"{data.name} {split} target",
                                   tuple(f"target {i}" for i in range(v.shape[1])))

        return cls(
            x(data.x_train, "train"), t(data.y_train, "train"), data.labels_train,
            x(data.x_test, "test"), t(data.y_test, "test"), data.labels_test,
        )


def quantize_params(theta: np.ndarray, hw) -> tuple[np.ndarray, int]:
    """Float parameters to theta LSBs: round half up, saturate; returns (ints, count)."""
    q = np.floor(np.asarray(theta, dtype=np.float64) * float(1 << hw.theta_frac) + 0.5)
    q, saturated = sat(q.astype(np.int64), hw.theta_bits)
    return q, int(np.count_nonzero(saturated))


def evaluate(
    net: HwMLP, theta: np.ndarray, x: np.ndarray, t: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """Mean cost (as a real number) and accuracy of the unperturbed network on a set."""
    out = net.forward(theta, x)
    c, _ = net.cost(out.y, t)
    cost = float(c.mean()) / (1 << net.hw.cost_frac)
    if len(labels) and labels[0] < 0:  # value targets: R^2 (scale-free, so in LSBs)
        from .network import r2_score

        return cost, float(r2_score(out.y, t))
    return cost, float(np.mean(net.predict(out.y) == labels))
