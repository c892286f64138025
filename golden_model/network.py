"""Float MLPs for the reference model, vectorized over an ensemble of R runs.

Parameters of one run live in one flat vector theta of length N: for each layer,
the weight matrix W (out x in, row-major) and then the bias b (out). An ensemble
stacks R such vectors as an (R, N) array; :meth:`MLP.unpack` returns per-layer views.

Every neuron j may carry device-to-device variation (shared/MGD.md, "non-idealities";
the activations and the variation are in :mod:`golden_model.activations`).

Array conventions: inputs are (R, M, n_in) where M counts samples or perturbation
steps; weights are (R, out, in), shared by the M rows. Weight perturbation evaluates
K perturbed networks at once without forming theta + theta~ (see ``forward``), with
the codes as floats or held as bits (:mod:`golden_model.bit_codes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .activations import ACTIVATION_FUNCTIONS, Variation
from .bit_codes import BitCodes

if TYPE_CHECKING:
    from .neurons import NeuronSampler


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
        self.n_hidden = sum(sizes[1:-1])  # neurons of the hidden layers
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
        neurons: NeuronSampler | None = None,
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
        neurons : stochastic hidden neurons (``golden_model.neurons``): the hidden
            layers' outputs are drawn from them (or their mean), one pass per row
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
            if neurons is not None and l < self.n_layers - 1:
                if l == 0:  # every pass's draws at once, in pass order
                    neurons.begin(z.shape[1])
                fz = self.activate(l, z, variation) if neurons.model.uses_activation else None
                h = neurons.output(z, fz, self.node_slices[l])
            else:
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


def r2_score(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """R^2 of outputs ``y`` (..., n, n_out) against targets ``t`` (n, n_out), over the
    sample and output axes: 1 - SSE / SST (1 is perfect, 0 predicts the mean). What the
    accuracy figures hold for value (regression) targets, whose labels are -1."""
    t = np.asarray(t, dtype=np.float64)
    sst = float(((t - t.mean(axis=0)) ** 2).sum()) or 1.0
    sse = ((np.asarray(y, dtype=np.float64) - t) ** 2).sum(axis=(-2, -1))
    return 1.0 - sse / sst
