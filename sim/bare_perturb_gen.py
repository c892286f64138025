"""The bare harness of ``perturb_gen`` (code kind): its C++ stimulus and the golden
model's fast path on the same stimulus.

Stimulus, per cycle t: ``step`` = bit 0 of draw(seed, 0, t) (probability 1/2).
"""

from __future__ import annotations

import time

import numpy as np

from golden_model.config import MGDConfig
from golden_model.perturb_gen import PerturbGenModel, code_neg_words
from sim.bare_protocol import draws, fold, int_words, row_digests

SETUP = "    const uint64_t k0 = stream_key(seed, 0);"
DRIVE = "        top.step = draw(k0, t) & 1;"


def substitutions(cfg: MGDConfig) -> dict[str, str]:
    """This harness's own placeholders of the C++ main (none)."""
    return {}


def stimulus(seed: int, start: int, count: int) -> np.ndarray:
    """``step`` of cycles start .. start + count - 1 (int64 0/1)."""
    return (draws(seed, 0, start, count) & np.uint64(1)).astype(np.int64)


def model_outputs(cfg: MGDConfig, ports: list[tuple[str, int]], cycles: int, seed: int,
                  digest: bool, chunk: int) -> tuple[dict[str, int], int | None]:
    """The outputs after the last edge and the run's digest (None without ``digest``)."""
    h = cfg.hw
    model = PerturbGenModel(cfg)
    active = int_words((1 << h.n_params) - 1, h.n_params)
    acc = 0 if digest else None
    for lo in range(0, cycles, chunk):
        res = model.run(stimulus(seed, lo, min(chunk, cycles - lo)))
        if digest:
            # one digest per period's LFSR state, then one per cycle by its period
            words = {"neg": code_neg_words(res.lfsr, h.n_params, h.lfsr_bits),
                     "active": active}
            per_state = row_digests([words[p] for p, _ in ports])
            acc = fold(acc, per_state[res.period])
    out = model.outputs()
    return {p: out[p] for p, _ in ports}, acc


def tick_rate(cfg: MGDConfig, cycles: int, seed: int) -> float:
    """Cycles per second of the per-cycle model (``tick``) on this stimulus."""
    model = PerturbGenModel(cfg)
    step = stimulus(seed, 0, cycles).tolist()
    start = time.perf_counter()
    for s in step:
        model.tick(s)
    return cycles / (time.perf_counter() - start)
