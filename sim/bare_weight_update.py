"""The bare harness of the fully parallel ``weight_update`` (hw.lanes = 0): its C++
stimulus and the golden model's fast path on the same stimulus.

Stimulus, per cycle t (r = draw(seed, stream, t), bit fields of r): codes from a pool
of 64 random code vectors (stream 3 neg bits, stream 4 active with probability 3/4,
code 0 all active; code 0 at the start); stream 0: the code changes when bits 0-1 are
0 (1/4) to code bits 2-7; ``ct_valid`` = bit 8 (1/2); ``update`` when bits 9-13 are 0
(1/32); ``ct`` = bits 16.. as a signed ctilde_bits value (full range). Stream 1:
``load_en`` when bits 0-9 are 0 (1/1024), ``load_data`` = bits 16.. signed theta_bits;
``load_addr`` = stream 2 mod N.
"""

from __future__ import annotations

import time

import numpy as np

from golden_model.config import MGDConfig
from golden_model.fixed import pack_signed
from golden_model.weight_update import WeightUpdateModel
from sim.bare_protocol import MASK, draws, field_words, fold, row_digests, signed_field

POOL = 64  # code vectors of the stimulus (a power of two)

SETUP = """    const uint64_t k0 = stream_key(seed, 0), k1 = stream_key(seed, 1);
    const uint64_t k2 = stream_key(seed, 2), k3 = stream_key(seed, 3);
    const uint64_t k4 = stream_key(seed, 4);
    static uint64_t negp[@POOL@][@CW@], actp[@POOL@][@CW@];
    for (uint64_t p = 0; p < @POOL@; ++p)
        for (uint64_t w = 0; w < @CW@; ++w) {
            const uint64_t i = p * @CW@ + w;
            negp[p][w] = draw(k3, i);
            actp[p][w] = p ? draw(k4, 2 * i) | draw(k4, 2 * i + 1) : ~0ULL;
            if (w == @CW@ - 1) { negp[p][w] &= @TOPMASK@ULL; actp[p][w] &= @TOPMASK@ULL; }
        }
    put(top.neg, negp[0]); put(top.active, actp[0]);"""

DRIVE = """        const uint64_t r = draw(k0, t), q = draw(k1, t);
        if ((r & 3) == 0) {
            const uint64_t c = (r >> 2) & (@POOL@ - 1);
            put(top.neg, negp[c]); put(top.active, actp[c]);
        }
        top.ct_valid = (r >> 8) & 1;
        top.update = ((r >> 9) & 31) == 0;
        top.ct = (r >> 16) & @CTMASK@ULL;
        top.load_en = (q & 1023) == 0;
        if (top.load_en) {
            top.load_addr = draw(k2, t) % @N@;
            top.load_data = (q >> 16) & @TMASK@ULL;
        }"""


def substitutions(cfg: MGDConfig) -> dict[str, str]:
    """This harness's placeholders of the C++ main: pool and bus sizes, field masks."""
    h = cfg.hw
    cw = (h.n_params + 63) // 64
    return {"@POOL@": str(POOL), "@CW@": str(cw), "@N@": str(h.n_params),
            "@TOPMASK@": hex(MASK >> (64 * cw - h.n_params)),
            "@CTMASK@": hex((1 << h.ctilde_bits) - 1), "@TMASK@": hex((1 << h.theta_bits) - 1)}


def pool(cfg: MGDConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stimulus's code pool: (neg words, active words, codes).

    Words are (POOL, ceil(N / 64)) uint64 as the C++ main puts them on the buses;
    codes are (POOL, N) int64 in {-1, 0, +1}.
    """
    n = cfg.hw.n_params
    nw = (n + 63) // 64
    neg = draws(seed, 3, 0, POOL * nw).reshape(POOL, nw)
    act2 = draws(seed, 4, 0, 2 * POOL * nw).reshape(POOL, nw, 2)
    active = act2[..., 0] | act2[..., 1]
    active[0] = MASK
    top = np.uint64(MASK >> (64 * nw - n))
    neg[:, -1] &= top
    active[:, -1] &= top
    nb = _word_bits(neg, n).astype(np.int64)
    ab = _word_bits(active, n).astype(np.int64)
    return neg, active, ab * (1 - 2 * nb)


def _word_bits(words: np.ndarray, n: int) -> np.ndarray:
    """(M, n) bits of (M, W) uint64 words, bus bit i = column i."""
    raw = words.astype("<u8").view(np.uint8).reshape(len(words), -1)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :n]


def stimulus(cfg: MGDConfig, seed: int, start: int, count: int,
             code0: int = 0) -> dict[str, np.ndarray]:
    """Inputs of cycles start .. start + count - 1 as arrays for ``WeightUpdateModel.run``.

    ``code0`` is the pool index in effect before ``start`` (0 at the start of a run);
    the returned ``code`` holds the index of every cycle.
    """
    h = cfg.hw
    r = draws(seed, 0, start, count)
    q = draws(seed, 1, start, count)
    change = (r & np.uint64(3)) == 0
    new = ((r >> np.uint64(2)) & np.uint64(POOL - 1)).astype(np.intp)
    last = np.maximum.accumulate(np.where(change, np.arange(count), -1))
    code = np.where(last >= 0, new[np.maximum(last, 0)], code0)
    return {
        "code": code,
        "ct_valid": ((r >> np.uint64(8)) & np.uint64(1)).astype(np.int64),
        "ct": signed_field(r, 16, h.ctilde_bits),
        "update": (((r >> np.uint64(9)) & np.uint64(31)) == 0).astype(np.int64),
        "load_en": ((q & np.uint64(1023)) == 0).astype(np.int64),
        "load_addr": (draws(seed, 2, start, count) % np.uint64(h.n_params)).astype(np.int64),
        "load_data": signed_field(q, 16, h.theta_bits),
    }


def model_outputs(cfg: MGDConfig, ports: list[tuple[str, int]], cycles: int, seed: int,
                  digest: bool, chunk: int) -> tuple[dict[str, int], int | None]:
    """The outputs after the last edge and the run's digest (None without ``digest``)."""
    h = cfg.hw
    model = WeightUpdateModel(cfg)
    _, _, codes = pool(cfg, seed)
    widths = dict(ports)

    def state_digests(theta, sat_g, sat_theta):
        rows = len(theta)
        words = {
            "ready": np.ones((rows, 1), np.uint64),
            "sat_g": np.asarray(sat_g, np.uint64).reshape(rows, 1),
            "sat_theta": np.asarray(sat_theta, np.uint64).reshape(rows, 1),
            "theta": field_words(theta, h.theta_bits),
        }
        return row_digests([words[p] for p in widths])

    acc = 0 if digest else None
    prev = state_digests(model.theta[None], [model.sat_g], [model.sat_theta])
    code = 0
    for lo in range(0, cycles, chunk):
        n = min(chunk, cycles - lo)
        st = stimulus(cfg, seed, lo, n, code)
        code = int(st["code"][-1])
        tr = model.run(st["code"], st["ct_valid"], st["ct"], st["update"], st["load_en"],
                       st["load_addr"], st["load_data"], pool=codes, trace=digest)
        if digest:
            # the outputs hold between the edges the trace lists
            per_state = np.concatenate(
                [prev, state_digests(tr.theta, tr.sat_g, tr.sat_theta)])
            which = np.searchsorted(tr.cycles, np.arange(n), side="right")
            acc = fold(acc, per_state[which])
            prev = per_state[-1:]
    outputs = {"ready": 1, "sat_g": model.sat_g, "sat_theta": model.sat_theta,
               "theta": pack_signed(model.theta, h.theta_bits)}
    return {p: outputs[p] for p in widths}, acc


def tick_rate(cfg: MGDConfig, cycles: int, seed: int) -> float:
    """Cycles per second of the per-cycle model (``tick``) on this stimulus."""
    model = WeightUpdateModel(cfg)
    _, _, codes = pool(cfg, seed)
    st = stimulus(cfg, seed, 0, cycles)
    keys = ("ct_valid", "ct", "update", "load_en", "load_addr", "load_data")
    rows = list(zip(*(st[k].tolist() for k in keys), strict=True))
    index = st["code"].tolist()
    start = time.perf_counter()
    for t in range(cycles):
        model.tick(codes[index[t]], *rows[t])
    return cycles / (time.perf_counter() - start)
