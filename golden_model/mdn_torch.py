"""The MDN fit of :mod:`golden_model.mdn` in PyTorch (the ``torch`` extra).

Same network, loss, initial weights, minibatches and Adam schedule as the NumPy fit,
in float64, with autograd instead of the hand-written gradient; it returns NumPy
weights, so the device file and everything downstream are the same for both.
"""

from __future__ import annotations

import numpy as np

from . import mdn


def fit_torch(params: mdn.Params, x: np.ndarray, y: np.ndarray, settings: mdn.FitSettings,
              rng: np.random.Generator, progress=None) -> mdn.Params:
    """Train a copy of ``params`` on normalized (x, y) with torch.optim.Adam."""
    try:
        import torch
    except ImportError:
        raise ImportError("--backend torch needs PyTorch: pip install 'mgd-hw[torch]'") from None

    # One thread: the network is tiny, and extra threads only contend for the cores
    # (measured far slower than one thread on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(torch, params, x, y, settings, rng, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(torch, params, x, y, settings, rng, progress) -> mdn.Params:
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True)
               for layer in params for p in layer]
    s = settings
    opt = torch.optim.Adam(tensors, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps)
    xs = torch.tensor(x, dtype=torch.float64)
    ys = torch.tensor(y, dtype=torch.float64)
    k = params[-1][1].shape[0] // 3
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    for t, idx in enumerate(mdn.batches(len(x), s, rng)):
        for group in opt.param_groups:
            group["lr"] = mdn.learning_rate(s, t)
        ii = torch.from_numpy(idx)
        h = xs[ii].reshape(-1, 1)
        for i in range(0, len(tensors), 2):
            h = h @ tensors[i] + tensors[i + 1]
            if i < len(tensors) - 2:
                h = torch.tanh(h)
        log_pi = torch.log_softmax(h[:, :k], dim=-1)
        mu = h[:, k : 2 * k]
        sigma = torch.exp(h[:, 2 * k :]) + mdn.SIGMA_FLOOR
        r = (ys[ii].reshape(-1, 1) - mu) / sigma
        log_comp = log_pi - 0.5 * r * r - torch.log(sigma) - half_log_2pi
        loss = -torch.logsumexp(log_comp, dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None and (t + 1) % 500 == 0:
            progress(t + 1, loss.item())
    out = [p.detach().numpy().copy() for p in tensors]
    return [(out[i], out[i + 1]) for i in range(0, len(out), 2)]
