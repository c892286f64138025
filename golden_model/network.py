"""Float MLPs for the reference model, vectorized over an ensemble of R runs.

Parameters of one run live in one flat vector theta of length N: for each layer,
the weight matrix W (out x in, row-major) and then the bias b (out). An ensemble
stacks R such vectors as an (R, N) array; :meth:`MLP.unpack` returns per-layer views.

Every neuron j may carry device-to-device variation (shared/MGD.md, "non-idealities"):
f_j(z) = gain_j * act(steep_j * (z - mid_j)) + offset_j. With no variation those are
(1, 1, 0, 0) and the transform is skipped.

Array conventions: inputs are (R, M, n_in) where M counts samples or perturbation
steps; weights are (R, out, in), shared by the M rows. Weight perturbation evaluates
K perturbed networks at once without forming theta + theta~ (see ``forward``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

# --- exact float32 products ---------------------------------------------------------
# float32 holds every integer up to 2^24 exactly, so a float32 matrix product of a 0/1
# matrix with small integers is exact in any summation order (BLAS blocking, FMA,
# threads). DigitSplit writes a float64 vector as a few such integer "digits" times
# powers of two; the digit products, scaled and added in float64, give sum_i b_i v_i
# rounded once per digit, where a float64 dot product rounds once per term (the
# vector is first cut to a grid 62 bits below its largest entry, far below that
# rounding). So bit-held codes (BitCodes) can use float32 products, half the memory
# traffic of float64, and still agree with float64 codes to the last bits.

F32_EXACT_BITS = 24  # float32 represents every integer of magnitude <= 2^24
FIXED_BITS = 62  # resolution of a split below the largest magnitude (int64 headroom)


class DigitSplit:
    """Splits vectors into float32 integer digits whose sums of ``terms`` are exact.

    ``split(v)`` of v (R, n) returns (d, s): d (R, D, n) float32 integers and s (R, D)
    float64 powers of two with v = sum_c d[:, c] s[:, c] up to 2^-62 of the largest
    |v| of the run (v is cut to a fixed-point grid 62 bits below that). Every digit
    has |d| <= 2^24 / terms, so any float32 sum of up to ``terms`` digits (times 0 or
    1) is an exact integer.

    exponent : a fixed e with |v| < 2^e for every v to be split (then the scales are
        shared by all runs); None takes each run's own from its largest |v|
    lowest_bit : bits of the fixed-point values below this are known to be zero, so
        the digits holding only those are skipped (see ``for_values``)
    """

    def __init__(self, terms: int, exponent: int | None = None, lowest_bit: int = 0):
        width = F32_EXACT_BITS - int(np.ceil(np.log2(max(terms, 1))))  # bits per digit
        count = -(-FIXED_BITS // width)
        self.shifts = np.arange(min(lowest_bit // width, count - 1), count) * width
        self.masks = np.full(len(self.shifts), (1 << width) - 1)
        self.masks[-1] = -1  # the top digit keeps the sign: |q >> shift| <= 2^width
        self.pow2 = np.ldexp(1.0, self.shifts)
        self.exponent = exponent
        if exponent is not None:
            self.factor = 2.0 ** (FIXED_BITS - exponent)
            self.scales = self.pow2[None, :] / self.factor

    @staticmethod
    def _run_factors(v: np.ndarray) -> np.ndarray | float | None:
        """2^(62 - e) per run (R, 1), with |v| < 2^e; None if v is not finite."""
        top = np.abs(v).max(axis=1)
        if not math.isfinite(top.sum()):
            return None
        if len(top) == 1:  # one run: Python scalars are cheaper than array calls
            return math.ldexp(1.0, FIXED_BITS - math.frexp(top[0])[1])
        return np.ldexp(1.0, FIXED_BITS - np.frexp(top)[1])[:, None]

    @classmethod
    def for_values(cls, values: np.ndarray, terms: int) -> DigitSplit:
        """A fixed split for (any rows of) ``values``, using as few digits as their
        fixed-point grid allows: data on a coarse grid, such as 4-bit pixels, needs one."""
        _, e = np.frexp(np.abs(values).max(initial=0.0))
        q = np.ldexp(values, FIXED_BITS - int(e)).astype(np.int64)
        low = int(np.bitwise_or.reduce(q, axis=None))
        return cls(terms, int(e), (low & -low).bit_length() - 1 if low else FIXED_BITS)

    def split(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The digits and scales of v (R, n), or None if v is not finite."""
        if self.exponent is None:
            factor = self._run_factors(v)
            if factor is None:
                return None
            scales = self.pow2 / factor
        else:
            factor, scales = self.factor, self.scales
        scales = np.broadcast_to(scales, (len(v), len(self.shifts)))
        if len(self.shifts) == 1:  # the top digit alone: v * factor / 2^shift, cut
            d = np.trunc(v * (factor / self.pow2[0])).astype(np.float32)
            return d[:, None, :], scales
        q = (v * factor).astype(np.int64)[:, None, :]  # cut toward 0, |q| < 2^62
        d = (q >> self.shifts[:, None]) & self.masks[:, None]
        return d.astype(np.float32), scales


@functools.lru_cache(maxsize=64)
def _weight_split(terms: int) -> DigitSplit:
    """The per-run split of estimate weights summed over ``terms`` steps (cached)."""
    return DigitSplit(terms)


# --- activations -----------------------------------------------------------------
# Each entry: (f, f') on pre-activations. hard_sigmoid has slope 1/4 (a shift in
# hardware) so it matches the logistic sigmoid's slope at 0.


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """0.5 (1 + tanh(z / 2)): the overflow-free logistic (in place on one temporary)."""
    s = np.multiply(z, 0.5)
    np.tanh(s, out=s)
    s += 1.0
    s *= 0.5
    return s


def _d_sigmoid(z: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)
    return s * (1.0 - s)


def _d_tanh(z: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(z) ** 2


def _hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.clip(0.25 * z + 0.5, 0.0, 1.0)


def _d_hard_sigmoid(z: np.ndarray) -> np.ndarray:
    return np.where(np.abs(z) < 2.0, 0.25, 0.0)


ACTIVATION_FUNCTIONS = {
    "sigmoid": (_sigmoid, _d_sigmoid),
    "tanh": (np.tanh, _d_tanh),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "hard_sigmoid": (_hard_sigmoid, _d_hard_sigmoid),
    "linear": (lambda z: z, np.ones_like),
}


@dataclass
class Variation:
    """Per-neuron device variation of one layer, each (R, out)."""

    gain: np.ndarray
    steep: np.ndarray
    mid: np.ndarray
    offset: np.ndarray


def draw_variation(
    sizes: list[int], sigma: float, rngs: list[np.random.Generator]
) -> list[Variation] | None:
    """Draw each run's per-neuron variation (None when sigma is 0).

    For each layer and run: gain, steepness ~ 1 + sigma*N(0,1); midpoint,
    offset ~ sigma*N(0,1), in that order from the run's own generator.
    """
    if sigma == 0:
        return None
    layers = []
    for out in sizes[1:]:
        draws = np.stack([rng.standard_normal((4, out)) for rng in rngs])  # (R, 4, out)
        layers.append(
            Variation(
                gain=1.0 + sigma * draws[:, 0],
                steep=1.0 + sigma * draws[:, 1],
                mid=sigma * draws[:, 2],
                offset=sigma * draws[:, 3],
            )
        )
    return layers


class BitCodes:
    """Dense unit codes u = 1 - 2 b of K steps of R runs, held as their bits b.

    words : (R, K, W) uint64 raw code words (streams.CodeStream.fill_words); bit j of
        word w is the code of parameter 64 w + j
    net : the network whose parameters the codes perturb
    inputs : how to split the first layer's inputs into digits (DigitSplit.for_values
        of the training inputs); by default each input vector is split on its own

    Weight perturbation and the MGD estimate only need sums of codes times float
    vectors, sum_i u_i v_i = sum_i v_i - 2 sum_i b_i v_i, so the +-1 codes are never
    formed. The first layer's weight bits (most parameters) are float32 and summed
    exactly with DigitSplit; the remaining bits are float64.
    """

    def __init__(self, net: MLP, words: np.ndarray, inputs: DigitSplit | None = None):
        bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")
        self.net = net
        self.inputs = inputs or DigitSplit(net.sizes[0])
        self.p0 = net.w_slices[0].stop
        self.shape = (*words.shape[:2], net.n_params)
        self.first = bits[..., : self.p0].astype(np.float32)
        self.rest = bits[..., self.p0 : net.n_params].astype(np.float64)

    def _bits(self, sl: slice) -> np.ndarray:
        """float64 bits of parameters sl, (R, K, len)."""
        if sl.start >= self.p0:
            return self.rest[..., sl.start - self.p0 : sl.stop - self.p0]
        return self.first[..., sl].astype(np.float64)

    def _first_dot(self, x: np.ndarray) -> np.ndarray | None:
        """B_W x of the first layer for a shared input x (R, in): (R, K, out), exact
        up to the final rounding; None if x is not finite."""
        runs, k, _ = self.shape
        n_in, n_out = self.net.sizes[0], self.net.sizes[1]
        split = self.inputs.split(x)
        if split is None:
            return None
        d, s = split
        b = self.first.reshape(runs, k * n_out, n_in)
        if d.shape[1] == 1:
            p = b @ d.reshape(runs, n_in, 1)  # exact integers
            return (p[..., 0] * s).reshape(runs, k, n_out)
        # (BLAS needs the digits contiguous along the inputs, not a transposed view)
        p = b @ np.ascontiguousarray(d.transpose(0, 2, 1))
        return (p @ s[:, :, None]).reshape(runs, k, n_out)

    def perturbation(self, l: int, h: np.ndarray, amp: np.ndarray) -> np.ndarray:
        """amp (U_W h + U_b) of layer l for inputs h (R, K or 1, in): (R, K, out).

        With u = 1 - 2 b that is -2 amp (B_W h + B_b - (sum(h) + 1) / 2).
        """
        runs, k, _ = self.shape
        n_in, n_out = self.net.sizes[l], self.net.sizes[l + 1]
        bh = self._first_dot(h[:, 0]) if l == 0 and h.shape[1] == 1 else None
        if bh is None:
            b_w = self._bits(self.net.w_slices[l]).reshape(runs, k, n_out, n_in)
            bh = (b_w @ h[..., None])[..., 0]
        bh += self._bits(self.net.b_slices[l])
        half = h.sum(axis=-1, keepdims=True)
        half += 1.0
        half *= 0.5
        bh -= half
        bh *= (-2.0 * amp)[:, None, None]
        return bh

    def correlate(self, w: np.ndarray) -> np.ndarray:
        """sum_k w_k u_k for weights w (R, K): (R, N); u = 1 - 2 b gives
        sum(w) - 2 w^T B."""
        runs, k, n = self.shape
        out = np.empty((runs, 1, n))
        split = _weight_split(k).split(w)
        if split is None:  # not finite: plain float64 products carry the NaN or inf
            np.matmul(w[:, None, :], self.first.astype(np.float64), out=out[..., : self.p0])
            out[..., : self.p0] *= -2.0
        else:
            d, s = split
            p = d @ self.first  # (R, D, p0), exact integers
            np.matmul(-2.0 * s[:, None, :], p, out=out[..., : self.p0])
        np.matmul(-2.0 * w[:, None, :], self.rest, out=out[..., self.p0 :])
        out += w.sum(axis=1)[:, None, None]
        return out[:, 0]


class MLP:
    """A fully connected network with a cost.

    Parameters
    ----------
    sizes : [n_in, hidden..., n_out]
    activation : hidden-layer activation name
    output_activation : output-layer activation name ("linear" for cross-entropy)
    cost : "mse" (mean over outputs of squared error) or "cross_entropy"
        (softmax over the outputs, then -sum t log p)
    """

    def __init__(self, sizes: list[int], activation: str, output_activation: str, cost: str):
        self.sizes = list(sizes)
        self.activations = [activation] * (len(sizes) - 2) + [output_activation]
        self.cost_name = cost
        self.w_slices: list[slice] = []
        self.b_slices: list[slice] = []
        pos = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.w_slices.append(slice(pos, pos + n_in * n_out))
            pos += n_in * n_out
            self.b_slices.append(slice(pos, pos + n_out))
            pos += n_out
        self.n_params = pos
        self.n_nodes = sum(sizes[1:])
        # Node offsets in the flat node-perturbation vector, layer by layer.
        self.node_slices = []
        pos = 0
        for n_out in sizes[1:]:
            self.node_slices.append(slice(pos, pos + n_out))
            pos += n_out

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def unpack(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-layer (W, b) views of theta (..., N): W (..., out, in), b (..., out)."""
        lead = theta.shape[:-1]
        out = []
        for l, (ws, bs) in enumerate(zip(self.w_slices, self.b_slices, strict=True)):
            n_in, n_out = self.sizes[l], self.sizes[l + 1]
            out.append((theta[..., ws].reshape(*lead, n_out, n_in), theta[..., bs]))
        return out

    def init_params(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        """One run's theta: W ~ N(0, scale^2 / fan_in) drawn layer by layer, b = 0."""
        theta = np.zeros(self.n_params)
        for l, ws in enumerate(self.w_slices):
            n_in, n_out = self.sizes[l], self.sizes[l + 1]
            theta[ws] = rng.standard_normal(n_out * n_in) * (scale / np.sqrt(n_in))
        return theta

    # --- forward ---------------------------------------------------------------
    def activate(
        self, l: int, z: np.ndarray, variation: list[Variation] | None
    ) -> np.ndarray:
        """Layer l's activation of pre-activations z (R, M, out)."""
        f, _ = ACTIVATION_FUNCTIONS[self.activations[l]]
        if variation is None:
            return f(z)
        v = variation[l]
        return v.gain[:, None] * f(v.steep[:, None] * (z - v.mid[:, None])) + v.offset[:, None]

    def activate_grad(
        self, l: int, z: np.ndarray, variation: list[Variation] | None
    ) -> np.ndarray:
        _, df = ACTIVATION_FUNCTIONS[self.activations[l]]
        if variation is None:
            return df(z)
        v = variation[l]
        s = v.steep[:, None]
        return v.gain[:, None] * s * df(s * (z - v.mid[:, None]))

    def forward(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        variation: list[Variation] | None = None,
        node_pert: np.ndarray | None = None,
        weight_pert: tuple[np.ndarray, np.ndarray | BitCodes] | None = None,
        baseline: bool = False,
        keep: bool = False,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Evaluate the network.

        theta : (R, N), shared by all M rows
        x : (R, M, n_in), or (R, 1, n_in) broadcast over the rows
        node_pert : optional (R, M, n_nodes) added to the pre-activations
        weight_pert : optional (amp (R,), U (R, K, N) or BitCodes): evaluate the K
            perturbed networks theta + amp * U_k without forming them, as
            z = W h + b + amp * (U_W h + U_b)
        baseline : with weight_pert, row 0 of the output is the unperturbed network,
            so the output has 1 + K rows
        keep : also return each layer's (input, pre-activation) for backprop
        Returns the outputs (R, M, n_out) and the kept layer values.
        """
        h = x
        kept = []
        for l, (W, b) in enumerate(self.unpack(theta)):
            z = h @ W.transpose(0, 2, 1) + b[:, None, :]
            if weight_pert is not None:
                z = self._add_weight_pert(l, z, h, weight_pert, baseline)
            if node_pert is not None:
                z = z + node_pert[..., self.node_slices[l]]
            if keep:
                kept.append((h, z))
            h = self.activate(l, z, variation)
        return h, kept

    def _add_weight_pert(self, l, z, h, weight_pert, baseline):
        """z + amp * (U_W h + U_b) for layer l; with baseline, row 0 stays unperturbed."""
        amp, u = weight_pert
        runs, k = u.shape[:2]
        n_in, n_out = self.sizes[l], self.sizes[l + 1]
        h_pert = h[:, 1:] if baseline and h.shape[1] > 1 else h
        if isinstance(u, BitCodes):
            dz = u.perturbation(l, h_pert, amp)
        else:
            u_w = u[..., self.w_slices[l]].reshape(runs, k, n_out, n_in)
            dz = (u_w @ h_pert[..., None])[..., 0]
            dz += u[..., self.b_slices[l]]
            dz *= amp[:, None, None]
        if not baseline:
            return z + dz
        if z.shape[1] == 1:  # row 0 is the unperturbed z, shared by the K rows
            out = np.empty((runs, k + 1, n_out))
            out[:, :1] = z
            np.add(z, dz, out=out[:, 1:])
            return out
        z[:, 1:] += dz
        return z

    # --- cost ------------------------------------------------------------------
    def cost(self, y: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per-sample cost over the last axis: (..., n_out) -> (...)."""
        if self.cost_name == "mse":
            d = y - t
            np.square(d, out=d)
            return d.sum(axis=-1) / d.shape[-1]  # the mean, without np.mean's overhead
        shifted = y - y.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return -np.sum(t * log_p, axis=-1)

    def cost_grad(self, y: np.ndarray, t: np.ndarray) -> np.ndarray:
        """d cost / d y, same shape as y."""
        if self.cost_name == "mse":
            return 2.0 * (y - t) / y.shape[-1]
        shifted = y - y.max(axis=-1, keepdims=True)
        p = np.exp(shifted)
        return p / p.sum(axis=-1, keepdims=True) - t

    def loss(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
        variation: list[Variation] | None = None,
        node_pert: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-sample cost (R, M) of forward(theta, x)."""
        y, _ = self.forward(theta, x, variation, node_pert)
        return self.cost(y, t)

    # --- exact gradient (backprop) -----------------------------------------------
    def gradient(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
        variation: list[Variation] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean over M of d cost / d theta, by backprop.

        theta (R, N); x (R, M, n_in); t (R, M, n_out). Returns (grad (R, N),
        per-sample cost (R, M)).
        """
        y, kept = self.forward(theta, x, variation, keep=True)
        m = x.shape[1]
        grad = np.zeros_like(theta)
        delta = self.cost_grad(y, t)  # d cost / d activation of the last layer
        params = self.unpack(theta)
        for l in range(self.n_layers - 1, -1, -1):
            h_in, z = kept[l]
            delta = delta * self.activate_grad(l, z, variation)  # d / d z
            h_in = np.broadcast_to(h_in, z.shape[:-1] + h_in.shape[-1:])
            grad[:, self.w_slices[l]] = (
                np.einsum("rmo,rmi->roi", delta, h_in).reshape(theta.shape[0], -1) / m
            )
            grad[:, self.b_slices[l]] = delta.sum(axis=1) / m
            if l:
                delta = delta @ params[l][0]
        return grad, self.cost(y, t)


def predict_labels(y: np.ndarray) -> np.ndarray:
    """Class decisions from outputs (..., n_out): threshold 0.5 for one output, else argmax."""
    if y.shape[-1] == 1:
        return (y[..., 0] > 0.5).astype(np.int64)
    return np.argmax(y, axis=-1)
