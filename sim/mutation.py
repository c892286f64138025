"""Mutation check, the catalogue: which deliberate bugs exist and where they are tried.

Each :class:`Mutation` changes one decision of the gateware - one LFSR tap, one
rounding, one saturation bound, a status counter's limit, the order of the code masks
(:data:`MUTATIONS`) - *in this process*, by
patching a name the gateware looks up while it elaborates. No file is edited, and the
golden model keeps the true definitions: the gateware modules import names such as
``tap_mask`` into their own namespace, and only that binding (``gateware.fixed
.tap_mask``) is replaced. The shared arithmetic of gateware.fixed (saturation bound,
LFSR taps, code masks) is patched there, once; each case's top holds one block that
uses it, so the block named by the mutation is the one that changes. A block's own
binding of a shared helper (``gateware.weight_update.shift_round``,
``gateware.core.counter_add``) is patched in that block only. Where the decision is
an inline expression (the ``>>`` of the minibatch mean in :mod:`gateware.cost_acc`),
the function holding it is recompiled from its own source with that one AST node
rewritten and patched in for the duration; the rewrite insists on exactly one match,
so a stale mutation fails loudly instead of silently testing nothing.

A :class:`MutationCase` names the block (top), the configuration and the stimulus
(seed and ``MGD_EXTRA``) of an existing regression entry (the configurations mirror
the matrices of tests/test_perturb_gen.py, test_cost_acc.py, test_weight_update.py and
test_core.py; tests/test_mutation.py checks they still match). :mod:`sim.mutation_run`
builds and runs the cases.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import pathlib
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from golden_model.config import MGDConfig, build_config, load_config
from golden_model.hw_spec import hw_spec

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

__all__ = [
    "CASES",
    "CONFIGS",
    "MUTATIONS",
    "Mutation",
    "MutationCase",
]


# -------------------------------------------------------------------------------------
# patching helpers
class _RewriteExpr(ast.NodeTransformer):
    """Replace every expression whose source text is ``old`` by the expression ``new``."""

    def __init__(self, old: str, new: str):
        self.old = ast.unparse(ast.parse(old, mode="eval").body)  # normalized spelling
        self.new = new
        self.hits = 0

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr) and ast.unparse(node) == self.old:
            self.hits += 1
            return ast.parse(self.new, mode="eval").body
        return super().generic_visit(node)


def _recompiled(func: Callable, old: str, new: str) -> Callable:
    """``func`` recompiled from its own source with the expression ``old`` -> ``new``.

    ``old`` must occur exactly once, so a mutation that no longer matches the gateware
    fails loudly. The new function shares ``func``'s module globals, so it sees the
    same names the original does (and any other patch active at call time).
    """
    import __future__

    rewrite = _RewriteExpr(old, new)
    tree = rewrite.visit(ast.parse(textwrap.dedent(inspect.getsource(func))))
    if rewrite.hits != 1:
        raise RuntimeError(
            f"mutation of {func.__module__}.{func.__qualname__}: expected one "
            f"'{rewrite.old}', found {rewrite.hits}; the gateware changed, update "
            "sim/mutation.py"
        )
    ast.fix_missing_locations(tree)
    code = compile(tree, f"<mutant of {inspect.getsourcefile(func)}>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace: dict[str, Any] = {}
    exec(code, func.__globals__, namespace)  # our own source, one expression rewritten
    return namespace[func.__name__]


@contextlib.contextmanager
def _patch_expr(owner: Any, attr: str, old: str, new: str) -> Iterator[None]:
    """Patch ``owner.attr`` (a function or method) with ``old`` rewritten as ``new``."""
    original = inspect.getattr_static(owner, attr)
    with mock.patch.object(owner, attr, _recompiled(original, old, new)):
        yield


def _half_up(x: str, k: str) -> tuple[str, str]:
    """(old, new) rewriting the floor shift ``x >> k`` as round-half-up (k = 0 safe)."""
    return f"{x} >> {k}", f"({x} + ((1 << {k}) >> 1)) >> {k}"


# -------------------------------------------------------------------------------------
# the mutations
@contextlib.contextmanager
def _lfsr_tap() -> Iterator[None]:
    """The code generator's Galois tap mask with its lowest tap removed (the model
    keeps it)."""
    import gateware.fixed as pg

    true_mask = pg.tap_mask

    def mutant(bits: int) -> int:
        mask = true_mask(bits)
        return mask ^ (mask & -mask)  # flip the lowest set bit

    with mock.patch.object(pg, "tap_mask", mutant):
        yield


@contextlib.contextmanager
def _code_order() -> Iterator[None]:
    """The code generator's masks of parameters 0 and 1 swapped (a code-order slip)."""
    import gateware.fixed as pg

    true_masks = pg.code_masks

    def mutant(n: int, bits: int) -> tuple[int, ...]:
        masks = list(true_masks(n, bits))
        if len(masks) >= 2:
            masks[0], masks[1] = masks[1], masks[0]
        return tuple(masks)

    with mock.patch.object(pg, "code_masks", mutant):
        yield


@contextlib.contextmanager
def _wu_rounding() -> Iterator[None]:
    """The weight update's theta step rounded the other way (floor <-> half_up)."""
    import gateware.weight_update as wu

    true_round = wu.shift_round
    other = {"floor": "half_up", "half_up": "floor"}

    def mutant(x: Any, k: int, rounding: str) -> Any:
        return true_round(x, k, other[rounding])

    with mock.patch.object(wu, "shift_round", mutant):
        yield


@contextlib.contextmanager
def _wu_momentum_rounding() -> Iterator[None]:
    """The momentum decay V >> k rounded half up instead of floor."""
    import gateware.weight_update as wu

    with _patch_expr(wu, "lane_apply", *_half_up("v", "h.momentum_shift")):
        yield


@contextlib.contextmanager
def _wu_sat_bound() -> Iterator[None]:
    """The shared saturation's upper bound one LSB low (smax - 1), seen in a
    weight-update top (its G, V and theta saturations)."""
    import gateware.fixed as fx

    true_smax = fx.smax
    with mock.patch.object(fx, "smax", lambda bits: true_smax(bits) - 1):
        yield


@contextlib.contextmanager
def _cost_mean_rounding() -> Iterator[None]:
    """The minibatch mean (sum >> b) rounded half up instead of floor."""
    from gateware.cost_acc import CostAcc

    with _patch_expr(CostAcc, "_batch_mean", *_half_up("total", "b")):
        yield


@contextlib.contextmanager
def _cost_highpass_rounding() -> Iterator[None]:
    """The high-pass decay C~' >> k rounded half up instead of floor."""
    from gateware.cost_acc import CostAcc

    with _patch_expr(CostAcc, "_raw_ctilde", *_half_up("ct_prev", "hp")):
        yield


@contextlib.contextmanager
def _cost_sat_bound() -> Iterator[None]:
    """The shared saturation's upper bound one LSB low (smax - 1), seen in a cost
    accumulator top (its only saturation is C~'s)."""
    import gateware.fixed as fx

    true_smax = fx.smax
    with mock.patch.object(fx, "smax", lambda bits: true_smax(bits) - 1):
        yield


_TOP = "(1 << len(counter)) - 1"  # a status counter's saturation value


@contextlib.contextmanager
def _wu_counter_sat() -> Iterator[None]:
    """The weight update's status counters (sat_g, sat_theta) stop one short of the top."""
    import gateware.weight_update as wu

    with _patch_expr(wu, "counter_add", _TOP, "(1 << len(counter)) - 2"):
        yield


@contextlib.contextmanager
def _core_counter_sat() -> Iterator[None]:
    """The core's step/update counters stop one short of the top."""
    import gateware.core as core

    with _patch_expr(core, "counter_add", _TOP, "(1 << len(counter)) - 2"):
        yield


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: ``apply()`` is a context manager that patches the gateware.

    ``block`` is the gateware module whose behaviour changes (``perturb_gen``,
    ``cost_acc``, ``weight_update``); ``what`` says what changes.
    """

    name: str
    block: str
    what: str
    apply: Callable[[], contextlib.AbstractContextManager[None]] = field(repr=False)


MUTATIONS: dict[str, Mutation] = {m.name: m for m in (
    Mutation("lfsr_tap", "perturb_gen", "lowest LFSR tap removed from the tap mask", _lfsr_tap),
    Mutation("code_order", "perturb_gen", "code masks of parameters 0 and 1 swapped",
             _code_order),
    Mutation("wu_rounding", "weight_update", "theta step: floor <-> half_up", _wu_rounding),
    Mutation("wu_momentum_rounding", "weight_update", "momentum decay V >> k: half_up",
             _wu_momentum_rounding),
    Mutation("wu_sat_bound", "weight_update", "saturation upper bound smax - 1",
             _wu_sat_bound),
    Mutation("wu_counter_sat", "weight_update", "sat_g/sat_theta saturate at max - 1",
             _wu_counter_sat),
    Mutation("cost_mean_rounding", "cost_acc", "minibatch mean sum >> b: half_up",
             _cost_mean_rounding),
    Mutation("cost_highpass_rounding", "cost_acc", "high-pass decay C~ >> k: half_up",
             _cost_highpass_rounding),
    Mutation("cost_sat_bound", "cost_acc", "C~ saturation upper bound smax - 1",
             _cost_sat_bound),
    Mutation("core_counter_sat", "core", "step/update counters saturate at max - 1",
             _core_counter_sat),
)}


# -------------------------------------------------------------------------------------
# where each mutation is tried: regression entries (config, seed, extra)
_NARROW = {"ctilde_bits": 6, "g_bits": 8, "v_bits": 9, "theta_bits": 6, "theta_frac": 3,
           "amp_log2": 1, "eta_shift": 1, "counter_bits": 16}


def _gen(kind: str, n: int, tau_p: int) -> MGDConfig:
    return build_config({"mgd": {"perturbation": kind, "tau_p": tau_p, "tau_theta": tau_p},
                         "hw": {"n_params": n}})


def _wu(n: int, lanes: int, rounding: str, momentum: int, **hw: Any) -> MGDConfig:
    return build_config({"hw": {"n_params": n, "lanes": lanes, "rounding": rounding,
                                "momentum_shift": momentum, **hw}})


def _acc(**hw: Any) -> MGDConfig:
    return build_config({"hw": hw})


# config name -> (top, config factory, stimulus seed, MGD_EXTRA), each the same as the
# regression entry of that name (tests/test_perturb_gen.py GEN_MATRIX,
# tests/test_cost_acc.py ACC_MATRIX, tests/test_weight_update.py MATRIX, tests/test_core.py
# examples), seeds included.
CONFIGS: dict[str, tuple[str, Callable[[], MGDConfig], int, dict]] = {
    "code-N16-taup1": ("perturb_gen", lambda: _gen("code", 16, 1), 17, {}),
    "discrete": ("cost_acc", lambda: _acc(), 8, {"expect_saturation": True}),
    "discrete_batch4_clamp": (
        "cost_acc", lambda: _acc(batch_log2=2, ctilde_bits=12, clamp=1000), 21,
        {"expect_saturation": True}),
    "highpass3_batch4": ("cost_acc", lambda: _acc(batch_log2=2, highpass_shift=3), 16,
                         {"expect_saturation": True}),
    "par-N16-halfup": ("weight_update", lambda: _wu(16, 0, "half_up", 0), 14, {}),
    "par-N32-floor-mom-narrow": ("weight_update", lambda: _wu(32, 0, "floor", 3, **_NARROW),
                                 24, {"expect_saturation": True}),
    "ser-N48-P4-floor-mom-narrow": (
        "weight_update", lambda: _wu(48, 4, "floor", 2, **_NARROW), 27,
        {"expect_saturation": True}),
    "ser-narrow-saturating": (  # tests/test_core.py SLOW_MATRIX (slow)
        "core", lambda: build_config({
            "mgd": {"perturbation": "walsh", "tau_x": 4, "tau_p": 1, "tau_theta": 4},
            "hw": {"n_params": 8, "lanes": 4, "amp_log2": 2, "eta_shift": 2,
                   "lfsr_bits": 16, "momentum_shift": 1, "theta_bits": 8,
                   "theta_frac": 4, "g_bits": 6, "v_bits": 7, "ctilde_bits": 5,
                   "counter_bits": 8}}), 1, {}),
    "hw_core_lfsr": ("core", lambda: load_config(EXAMPLES / "hw_core_lfsr.toml"), 1,
                     {"expect_learning": True}),
}


@dataclass(frozen=True)
class MutationCase:
    """A mutation tried on one regression entry (``config`` is a key of CONFIGS)."""

    mutation: Mutation
    config: str

    @property
    def top(self) -> str:
        return CONFIGS[self.config][0]

    @property
    def stim_seed(self) -> int:
        return CONFIGS[self.config][2]

    @property
    def extra(self) -> dict:
        return dict(CONFIGS[self.config][3])

    def make_config(self) -> MGDConfig:
        """A fresh, hardware-validated config object of this case."""
        return hw_spec(CONFIGS[self.config][1]()).cfg

    @property
    def id(self) -> str:
        return f"{self.mutation.name}@{self.config}"


CASES: list[MutationCase] = [MutationCase(MUTATIONS[m], c) for m, c in (
    ("lfsr_tap", "code-N16-taup1"),
    ("code_order", "code-N16-taup1"),
    ("cost_mean_rounding", "discrete_batch4_clamp"),
    ("cost_highpass_rounding", "highpass3_batch4"),
    ("cost_sat_bound", "discrete"),
    ("wu_rounding", "par-N16-halfup"),
    ("wu_rounding", "par-N32-floor-mom-narrow"),
    ("wu_momentum_rounding", "ser-N48-P4-floor-mom-narrow"),
    ("wu_sat_bound", "par-N32-floor-mom-narrow"),
    ("wu_counter_sat", "par-N32-floor-mom-narrow"),
    # the same bugs seen through the whole core (system-level testbench)
    ("lfsr_tap", "hw_core_lfsr"),
    ("wu_rounding", "hw_core_lfsr"),
    # 32-bit counters never saturate in a short run: only the narrow core (8-bit
    # counters, a slow-matrix entry) can see this one
    ("core_counter_sat", "ser-narrow-saturating"),
)]
