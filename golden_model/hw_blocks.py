"""Bit-exact, cycle-level models of the MGD hardware blocks: the specification.

Every model has the same shape:

- ``outputs(**inputs)`` returns the values the block shows during the current cycle
  (registered state, plus the few combinational outputs documented per block);
- ``tick(**inputs)`` is the rising clock edge: it samples the inputs and updates the
  registers.

A testbench drives inputs for cycle t, compares ``outputs`` with the DUT before the
edge, then calls ``tick``. Reset puts every register at the value ``__init__`` gives
it. The formats, rounding and saturation rules are in docs/hardware_contract.md; the
gateware in gateware/ takes its constants from here and from golden_model.lfsr.
"""

from __future__ import annotations

import numpy as np

from .config import MGDConfig
from .fixed import sat, shift_round
from .lfsr import code_masks, lfsr_next, tap_mask


def pack_bits(bits: np.ndarray) -> int:
    """A bool array as an int, element i at bit i (how an N-bit port reads)."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8), bitorder="little").tobytes(), "little")


def pack_signed(values: np.ndarray, width: int) -> int:
    """Signed ints as one flat bus, element i in bits [i*width, (i+1)*width)."""
    out = 0
    mask = (1 << width) - 1
    for i, v in enumerate(values.tolist()):
        out |= (v & mask) << (i * width)
    return out


def counter_add(count: int, inc: int, bits: int) -> int:
    """Status counters saturate at 2^bits - 1 instead of wrapping."""
    return min(count + inc, (1 << bits) - 1)


def walsh_size(n: int) -> int:
    """The Walsh counter period M: the power of two above n (rows 1..n are used)."""
    return 1 << n.bit_length()


# --------------------------------------------------------------------------------
class PerturbGenModel:
    """Perturbation generator: N codes s_i in {-1, 0, +1}, held for tau_p steps.

    Inputs: ``step`` (1 bit): one MGD step is done. Every tau_p-th step ends the
    perturbation period and the next period's codes appear on the following cycle.
    Outputs: ``neg`` (N bits) and ``active`` (N bits): s_i = 0 if not active_i,
    else -1 if neg_i, else +1. Combinational from the registers (latency 0 after the
    period's last step edge).

    Kinds (mgd.perturbation): ``code``: neg_i = parity(lfsr & mask_i), all active;
    ``walsh``: neg_i = parity((i + 1) & k), k the period counter mod M; ``time``:
    active only for i == k mod N, never neg; ``frequency``: square wave, neg_i flips
    every i + 1 periods (period 2 (i + 1)), all active. Reset: lfsr = lfsr_seed,
    k = 0, sub-step counter 0, square-wave phases 0 and counters 0.
    """

    def __init__(self, cfg: MGDConfig):
        h = cfg.hw
        self.kind = cfg.mgd.perturbation
        self.n = h.n_params
        self.tau_p = cfg.mgd.tau_p
        self.lfsr_bits = h.lfsr_bits
        self.tap = tap_mask(h.lfsr_bits)
        self.masks = np.array(code_masks(self.n, h.lfsr_bits), dtype=np.uint64) if (
            self.kind == "code"
        ) else None
        self.rows = np.arange(1, self.n + 1, dtype=np.uint64)
        self.period_mod = walsh_size(self.n) if self.kind == "walsh" else self.n
        self.lfsr = h.lfsr_seed
        self.k = 0
        self.sub = 0
        self.cnt = np.zeros(self.n, dtype=np.int64)
        self.phase = np.zeros(self.n, dtype=bool)
        self.idx = np.arange(self.n)

    def code(self) -> np.ndarray:
        """The current codes s (N,) as int64."""
        if self.kind == "code":
            neg = np.bitwise_count(self.masks & np.uint64(self.lfsr)) & 1
            return 1 - 2 * neg.astype(np.int64)
        if self.kind == "walsh":
            neg = np.bitwise_count(self.rows & np.uint64(self.k)) & 1
            return 1 - 2 * neg.astype(np.int64)
        if self.kind == "time":
            return (self.idx == self.k).astype(np.int64)
        return np.where(self.phase, -1, 1).astype(np.int64)

    def outputs(self) -> dict:
        s = self.code()
        return {"neg": pack_bits(s < 0), "active": pack_bits(s != 0)}

    def tick(self, step: int = 0) -> None:
        if not step:
            return
        if self.sub < self.tau_p - 1:
            self.sub += 1
            return
        self.sub = 0
        self.lfsr = lfsr_next(self.lfsr, self.lfsr_bits, self.tap)
        self.k = (self.k + 1) % self.period_mod
        wrap = self.cnt == self.idx
        self.phase ^= wrap
        self.cnt = np.where(wrap, 0, self.cnt + 1)


# --------------------------------------------------------------------------------
class CostAccModel:
    """Cost accumulator: baseline capture, C~ = sat(C - C0), minibatch mean, high-pass.

    Input stream: ``in_valid``, ``in_cost`` (signed cost_bits), with sideband
    ``in_baseline`` (this sample is unperturbed) and ``in_restart`` (a new training
    sample starts; high-pass only). ``in_ready`` = not out_valid or out_ready
    (combinational). Output stream: ``out_valid``, ``out_ctilde`` (signed
    ctilde_bits), held until ``out_ready``. ``sat_count`` counts saturated C~ values.

    On an accepted sample: sum += cost; on the 2^batch_log2-th sample of a batch,
    avg = sum >> batch_log2 (floor; the sideband flags of that last sample count) and:
    discrete (highpass_shift = 0): baseline -> C0 = avg, no output; else output
    C~ = clamp(sat(avg - C0)). High-pass (k = highpass_shift > 0): restart -> C~ = 0,
    else C~ = clamp(sat(C~' - (C~' >> k) + avg - C')), with C~', C' the previous values;
    every batch gives an output. Latency: out_valid rises the cycle after the edge that
    accepted the batch's last sample.
    """

    def __init__(self, cfg: MGDConfig):
        h = cfg.hw
        self.bits = h.ctilde_bits
        self.batch = h.batch_log2
        self.hp = h.highpass_shift
        self.clamp = h.clamp
        self.counter_bits = h.counter_bits
        self.sum = 0
        self.count = 0
        self.c0 = 0
        self.c_prev = 0
        self.ct_prev = 0
        self.out_valid = 0
        self.out_ctilde = 0
        self.sat_count = 0

    def outputs(self, out_ready: int = 1) -> dict:
        return {
            "in_ready": int(not self.out_valid or out_ready),
            "out_valid": self.out_valid,
            "out_ctilde": self.out_ctilde,
            "sat_count": self.sat_count,
        }

    def tick(
        self,
        in_valid: int = 0,
        in_cost: int = 0,
        in_baseline: int = 0,
        in_restart: int = 0,
        out_ready: int = 1,
    ) -> None:
        accept = in_valid and (not self.out_valid or out_ready)
        if self.out_valid and out_ready:
            self.out_valid = 0
        if not accept:
            return
        total = self.sum + in_cost
        if self.count < (1 << self.batch) - 1:
            self.sum, self.count = total, self.count + 1
            return
        self.sum, self.count = 0, 0
        avg = total >> self.batch
        if self.hp == 0:
            if in_baseline:
                self.c0 = avg
                return
            raw = avg - self.c0
        elif in_restart:
            raw = 0
        else:
            raw = self.ct_prev - (self.ct_prev >> self.hp) + avg - self.c_prev
        ct, saturated = sat(raw, self.bits)
        if self.clamp:
            ct = min(max(ct, -self.clamp), self.clamp)
        self.c_prev, self.ct_prev = avg, ct
        self.sat_count = counter_add(self.sat_count, int(saturated), self.counter_bits)
        self.out_valid, self.out_ctilde = 1, ct


# --------------------------------------------------------------------------------
class WeightUpdateModel:
    """Weight-update unit: gradient accumulators G, optional momentum V, parameters.

    Inputs: the codes (``neg``, ``active`` as from the generator, or ``code`` as an
    array), ``ct_valid``/``ct`` (signed ctilde_bits), ``update`` (strobe), and a load
    port ``load_en``/``load_addr``/``load_data`` (signed theta_bits).

    On an edge with ct_valid: G_i <- sat_g(G_i + s_i * C~). With update (after that
    accumulation, if both): momentum off: theta_i <- sat_t(theta_i -
    round(G_i >> eta_shift)); on: V_i <- sat_v(V_i - (V_i >> momentum_shift) + G_i),
    theta_i <- sat_t(theta_i - round(V_i >> eta_shift)); then G <- 0. A load writes
    theta[load_addr] after all that (it wins). ``sat_g``/``sat_theta`` count saturated
    elements (momentum saturations count in sat_g).

    Parallel (lanes = 0): ``ct_ready`` = ``update_ready`` = 1, every command takes
    effect at its edge, ``theta`` shows all N parameters.

    Time-multiplexed (lanes = P): the same numbers, P parameters per cycle. A command
    (ct_valid and/or update) is accepted at an edge where ``ready`` is 1; the unit is
    then busy (ready = 0) for the N / P cycles that follow, and the new values of
    parameters [rP, (r+1)P) are written at the r-th of those edges. Loads are accepted
    only when idle. ``theta`` here is the model's full array (the hardware reads it
    through a port, see the contract).
    """

    def __init__(self, cfg: MGDConfig, theta0: np.ndarray | None = None):
        h = cfg.hw
        self.n = h.n_params
        self.h = h
        self.lanes = h.lanes
        self.theta = np.zeros(self.n, np.int64) if theta0 is None else np.array(theta0, np.int64)
        self.G = np.zeros(self.n, np.int64)
        self.V = np.zeros(self.n, np.int64)
        self.sat_g = 0
        self.sat_theta = 0
        self.busy = 0  # cycles of sweep left (lanes > 0)
        self._pending: tuple | None = None  # (code, ct_valid, ct, update) of the sweep
        self._row = 0

    # -- the arithmetic of one group of parameters, shared by both versions --
    def _apply(self, sl: slice, code, ct_valid, ct, update) -> None:
        h = self.h
        g = self.G[sl]
        sat_g = 0
        if ct_valid:
            g, s = sat(g + code[sl] * ct, h.g_bits)
            sat_g += int(np.count_nonzero(s))
        sat_t = 0
        if update:
            step_src = g
            if h.momentum_shift:
                v, s = sat(self.V[sl] - (self.V[sl] >> h.momentum_shift) + g, h.v_bits)
                sat_g += int(np.count_nonzero(s))
                self.V[sl] = v
                step_src = v
            theta, s = sat(self.theta[sl] - shift_round(step_src, h.eta_shift, h.rounding),
                           h.theta_bits)
            sat_t = int(np.count_nonzero(s))
            self.theta[sl] = theta
            g = np.zeros_like(g)
        self.G[sl] = g
        self.sat_g = counter_add(self.sat_g, sat_g, h.counter_bits)
        self.sat_theta = counter_add(self.sat_theta, sat_t, h.counter_bits)

    @staticmethod
    def decode(neg: int, active: int, n: int) -> np.ndarray:
        """Codes from the generator's packed buses."""
        nb = np.frombuffer(neg.to_bytes((n + 7) // 8 + 1, "little"), np.uint8)
        ab = np.frombuffer(active.to_bytes((n + 7) // 8 + 1, "little"), np.uint8)
        nbits = np.unpackbits(nb, bitorder="little")[:n].astype(np.int64)
        abits = np.unpackbits(ab, bitorder="little")[:n].astype(np.int64)
        return abits * (1 - 2 * nbits)

    def outputs(self) -> dict:
        ready = int(self.busy == 0)
        return {
            "ready": ready,
            "theta": self.theta.copy(),
            "sat_g": self.sat_g,
            "sat_theta": self.sat_theta,
        }

    def tick(
        self,
        code: np.ndarray | None = None,
        ct_valid: int = 0,
        ct: int = 0,
        update: int = 0,
        load_en: int = 0,
        load_addr: int = 0,
        load_data: int = 0,
    ) -> None:
        if self.lanes == 0:
            if ct_valid or update:
                self._apply(slice(None), code, ct_valid, ct, update)
            if load_en:
                self.theta[load_addr] = load_data
            return
        if self.busy:
            p = self.lanes
            r = self._row
            self._apply(slice(r * p, (r + 1) * p), *self._pending)
            self._row += 1
            self.busy -= 1
            return
        if ct_valid or update:
            # The codes are sampled at acceptance: the sweep uses them even if the
            # generator moves on meanwhile.
            self._pending = (np.array(code, np.int64), ct_valid, ct, update)
            self._row = 0
            self.busy = self.n // self.lanes
        elif load_en:
            self.theta[load_addr] = load_data
