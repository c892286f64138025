"""Hardware fixed-point arithmetic shared by every block: the twin of golden_model.fixed.

Each helper builds the logic of one model function, so every block narrows, rounds,
counts and draws its codes the same way:

- :func:`saturate` (``fixed.sat``), :func:`shift_round` (``fixed.shift_round``);
- :func:`tree_sum`, :func:`popcount`, :func:`parity` (balanced trees);
- :func:`counter_add` (``fixed.counter_add``: status counters that stop at the top);
- :func:`divmod_const` (a row/lane split by a constant), :func:`lanes` (a memory word
  as an ``ArrayLayout`` view of signed lanes);
- :func:`ctilde` (C~: saturate to ``hw.ctilde_bits``, then the optional clamp);
- :func:`period_strobe` and :class:`CodeGen`: the perturbation codes of
  ``PerturbGenModel`` (``code``, ``walsh`` and ``time`` kinds), one state shared by
  every lane and a constant (or memory) key per lane.

Every bound comes from golden_model.fixed / golden_model.lfsr, nothing is copied by
hand. The mutation check (sim/mutation.py) patches ``smax``, ``tap_mask`` and
``code_masks`` here, and a block's binding of :func:`counter_add`.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.hdl import Value
from amaranth.lib import data

from golden_model.config import MGDConfig
from golden_model.fixed import smax, smin
from golden_model.lfsr import code_masks, tap_mask
from golden_model.perturb_gen import walsh_size

__all__ = ["CodeGen", "counter_add", "ctilde", "divmod_const", "lanes", "parity", "period_strobe",
           "popcount", "saturate", "shift_round", "tree_sum"]


def saturate(m: Module, x, bits: int, name: str) -> tuple[Signal, Value]:
    """``x`` (a wide signed value) clamped to signed ``bits``; returns (value, saturated).

    ``x`` fits iff its bits from ``bits - 1`` up are all equal (all sign): a test of
    the top bits, not two full-width comparisons, so no carry chain lies on the path.
    """
    lo, hi = smin(bits), smax(bits)
    hi_flag = Signal(name=f"{name}_hi")
    lo_flag = Signal(name=f"{name}_lo")
    out = Signal(signed(bits), name=name)
    x = Value.cast(x)
    width = len(x)
    if width <= bits:
        m.d.comb += [hi_flag.eq(0), lo_flag.eq(0), out.eq(x)]
        return out, hi_flag | lo_flag
    top = x[bits - 1:width]
    fits = (top == 0) | (top == (1 << (width - bits + 1)) - 1)
    sign = x[width - 1]
    m.d.comb += [
        hi_flag.eq(~fits & ~sign),
        lo_flag.eq(~fits & sign),
        out.eq(Mux(hi_flag, Const(hi, signed(bits)),
                   Mux(lo_flag, Const(lo, signed(bits)), x[:bits].as_signed()))),
    ]
    return out, hi_flag | lo_flag


def shift_round(x, k: int, rounding: str):
    """x / 2^k rounded like ``golden_model.fixed.shift_round`` (signed in, signed out)."""
    if k == 0:
        return x
    if rounding == "half_up":
        x = x + (1 << (k - 1))  # Amaranth widens the sum, so the bias never overflows
    return x >> k  # arithmetic shift of a signed value: floor


def tree_sum(terms: list) -> Value:
    """The sum of ``terms`` as a balanced adder tree (depth log2, widths grow as needed)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def popcount(bits: list) -> Value:
    """The number of set bits, as a balanced adder tree (widths grow as needed)."""
    return tree_sum([b.as_unsigned() for b in bits])


def parity(bits: list) -> Value:
    """XOR of a list of 1-bit values (Const(0) for an empty list)."""
    if not bits:
        return Const(0, 1)
    out = bits[0]
    for b in bits[1:]:
        out = out ^ b
    return out


def counter_add(counter: Signal, inc) -> Value:
    """``counter + inc`` saturating at the counter's maximum (model: ``counter_add``)."""
    top = (1 << len(counter)) - 1
    total = counter + inc  # wide enough: Amaranth widens the sum
    return Mux(total > top, top, total)


def divmod_const(addr, p: int) -> tuple[Value, Value]:
    """(addr // p, addr % p) for a constant p > 0; a bit slice when p is a power of two."""
    if p & (p - 1) == 0:
        k = p.bit_length() - 1
        return addr >> k, addr[:k]
    return addr // p, addr % p


def lanes(word, width: int, count: int) -> data.View:
    """``word`` as ``count`` signed lanes of ``width`` bits, lane i at bits
    [i width, (i + 1) width): an ``ArrayLayout`` view, indexable by an int or a Value."""
    return data.View(data.ArrayLayout(signed(width), count), word)


def ctilde(m: Module, raw, bits: int, clamp: int, name: str) -> tuple[Signal, Value]:
    """C~ from its exact value ``raw``: saturated to signed ``bits`` (flagged), then
    limited to +-``clamp`` when clamp > 0 (inside the range, not flagged). Returns
    (C~, saturated), the model's ``fixed.ctilde``."""
    ct_sat, flag = saturate(m, raw, bits, f"{name}_sat")
    out = Signal(signed(bits), name=name)
    if clamp:
        m.d.comb += out.eq(Mux(ct_sat > clamp, clamp, Mux(ct_sat < -clamp, -clamp, ct_sat)))
    else:
        m.d.comb += out.eq(ct_sat)
    return out, flag


def period_strobe(m: Module, step, tau_p: int, name: str) -> Signal:
    """One pulse per tau_p ``step`` strobes: the last step of a perturbation period.

    A sub-step counter (0 .. tau_p - 1) divides the strobe down; with tau_p = 1 every
    step ends a period and no counter is built.
    """
    advance = Signal(name=f"{name}_advance")
    if tau_p > 1:
        sub = Signal(range(tau_p), name=f"{name}_sub")
        last = sub == tau_p - 1
        with m.If(step):
            m.d.sync += sub.eq(Mux(last, 0, sub + 1))
        m.d.comb += advance.eq(step & last)
    else:
        m.d.comb += advance.eq(step)
    return advance


class CodeGen:
    """The perturbation code state shared by every lane, and each lane's code bits.

    One register holds the state of all N codes: a Galois LFSR (``code``), a period
    counter k mod M = walsh_size(N) (``walsh``) or mod N (``time``). A lane's code
    comes from its key (:meth:`key`, a constant or a memory field of ``key_bits``
    bits): code: neg = parity(lfsr & mask_p); walsh: neg = parity(k & (p + 1)); time:
    active iff k == p. These are ``PerturbGenModel``'s codes. (The ``frequency`` kind
    keeps a counter per parameter, so PerturbGen builds it itself.)

    Parameters
    ----------
    m : Module
        The module the state register and its next-state logic go into.
    cfg : MGDConfig
        ``mgd.perturbation``, ``mgd.tau_p``, ``hw.lfsr_bits`` and ``hw.lfsr_seed``.
    n : int
        The number of codes (parameters, or neurons for node perturbation).
    """

    KINDS = ("code", "walsh", "time")

    def __init__(self, m: Module, cfg: MGDConfig, n: int):
        h, self.kind = cfg.hw, cfg.mgd.perturbation
        if self.kind not in self.KINDS:
            raise ValueError(f"CodeGen kind must be one of {', '.join(self.KINDS)}, "
                             f"not {self.kind!r}")
        self.n = n
        self.tau_p = cfg.mgd.tau_p
        if self.kind == "code":
            # shift right, XOR the tap mask when the bit shifted out is 1
            self.state = Signal(h.lfsr_bits, init=h.lfsr_seed, name="code_lfsr")
            taps = Const(tap_mask(h.lfsr_bits), h.lfsr_bits)
            self.next = (self.state >> 1) ^ Mux(self.state[0], taps, 0)
            self.key_bits = h.lfsr_bits
        elif self.kind == "walsh":
            # M is a power of two: a log2(M)-bit counter wraps by itself
            kbits = walsh_size(n).bit_length() - 1
            self.state = Signal(kbits, name="code_k")
            self.next = self.state + 1
            self.key_bits = max(kbits, 1)
        else:  # time: a walking one-hot over the N lanes
            self.state = Signal(range(max(n, 2)), name="code_k")
            self.next = Mux(self.state == n - 1, 0, self.state + 1)
            self.key_bits = len(self.state)

    def key(self, p: int) -> int:
        """Lane p's constant key: its LFSR mask, its Hadamard row p + 1, or p."""
        if self.kind == "code":
            return code_masks(self.n, self.key_bits)[p]
        return p + 1 if self.kind == "walsh" else p

    def advance(self, m: Module, step) -> None:
        """Count one ``step``; every tau_p-th moves the state to the next period."""
        with m.If(period_strobe(m, step, self.tau_p, "code")):
            m.d.sync += self.state.eq(self.next)

    def bits(self, key, valid=1, state=None) -> tuple[Value, Value]:
        """(active, neg) of a lane whose key is ``key``.

        A constant key selects state bits (an XOR of a few wires, no AND gates); a
        memory field is ANDed with the state. ``valid`` = 0 marks an unused lane.
        ``state`` is the code state to use, by default the generator's own register
        (the streaming trainer passes the state an evaluation carries with it).
        """
        valid = Const(valid, 1) if isinstance(valid, int) else valid
        state = self.state if state is None else state
        if self.kind == "time":
            return valid & (state == key), Const(0, 1)
        if isinstance(key, int):
            return valid, parity([state[j] for j in range(len(state)) if key >> j & 1])
        return valid, (state & key).xor()
