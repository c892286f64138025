"""Mutation check: does the cocotb regression catch a wrong gateware?

Each :class:`Mutation` changes one decision of the gateware - one LFSR tap, one
rounding, one saturation bound, a status counter's limit, the order of the code masks
(:data:`MUTATIONS`) - *in this process*, by
patching a name the gateware looks up while it elaborates. No file is edited, and the
golden model keeps the true definitions: the gateware modules import names such as
``tap_mask`` into their own namespace, and only that binding (``gateware.perturb_gen
.tap_mask``) is replaced. Where the decision is an inline expression (the ``>>`` of
the minibatch mean in :mod:`gateware.cost_acc`), the function holding it is recompiled
from its own source with that one AST node rewritten and patched in for the
duration; the rewrite insists on exactly one match, so a stale mutation fails loudly
instead of silently testing nothing.

Every generation of Verilog happens inside :func:`gateware.generate.verilog_for`,
which :func:`sim.runner.run_cocotb` calls, so a mutation is applied around the whole
``run_cocotb`` call. The testbench runs in the simulator's own process with an
unpatched golden model.

A :class:`MutationCase` names the block (top), the configuration and the stimulus
(seed and ``MGD_EXTRA``) of an existing regression entry (the configurations mirror
the matrices of tests/test_perturb_gen.py, test_cost_acc.py, test_weight_update.py and
test_core.py; tests/test_mutation.py checks they still match). :func:`run_case`:

1. generates the unmutated and the mutated Verilog and checks they differ
   (otherwise the mutation did not reach the design: status ``no-op``);
2. builds the mutant in its own directory under ``build_root()/mutants`` and runs
   the block's testbench;
3. calls the mutant *killed* when the run fails with the testbench's first-mismatch
   report ``cycle C: signal S: expected E, got A``; the cycle is kept as the
   detection latency.

:func:`run_control` runs the unmutated configuration (same seed, same cycles, the
regression's own build directory): it must pass, or a kill proves nothing.
:func:`run_all` does both for every case; bench/mutation_check.py is the command-line
front end.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import inspect
import pathlib
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from unittest import mock

from golden_model.config import MGDConfig, build_config, load_config

MISMATCH_RE = re.compile(r"cycle (\d+): signal (\S+): expected (.+?), got (.+)")
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

__all__ = [
    "CASES",
    "CONFIGS",
    "MUTATIONS",
    "CaseResult",
    "Mutation",
    "MutationCase",
    "all_good",
    "mutant_build_dir",
    "mutant_verilog",
    "parse_mismatch",
    "run_all",
    "run_case",
    "run_control",
    "verilog_diff_lines",
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
    """PerturbGen's Galois tap mask with its lowest tap removed (the model keeps it)."""
    import gateware.perturb_gen as pg

    true_mask = pg.tap_mask

    def mutant(bits: int) -> int:
        mask = true_mask(bits)
        return mask ^ (mask & -mask)  # flip the lowest set bit

    with mock.patch.object(pg, "tap_mask", mutant):
        yield


@contextlib.contextmanager
def _code_order() -> Iterator[None]:
    """PerturbGen's code masks of parameters 0 and 1 swapped (a code-order slip)."""
    import gateware.perturb_gen as pg

    true_taps = pg.mask_taps

    def mutant(n: int, bits: int) -> tuple[tuple[int, int, int], ...]:
        taps = list(true_taps(n, bits))
        if len(taps) >= 2:
            taps[0], taps[1] = taps[1], taps[0]
        return tuple(taps)

    with mock.patch.object(pg, "mask_taps", mutant):
        yield


@contextlib.contextmanager
def _wu_rounding() -> Iterator[None]:
    """The weight update's theta step rounded the other way (floor <-> half_up)."""
    import gateware.weight_update as wu

    true_round = wu._shift_round
    other = {"floor": "half_up", "half_up": "floor"}

    def mutant(x: Any, k: int, rounding: str) -> Any:
        return true_round(x, k, other[rounding])

    with mock.patch.object(wu, "_shift_round", mutant):
        yield


@contextlib.contextmanager
def _wu_momentum_rounding() -> Iterator[None]:
    """The momentum decay V >> k rounded half up instead of floor."""
    import gateware.weight_update as wu

    with _patch_expr(wu, "_lane_update", *_half_up("v", "h.momentum_shift")):
        yield


@contextlib.contextmanager
def _wu_sat_bound() -> Iterator[None]:
    """The weight update's upper saturation bound one LSB low (smax - 1)."""
    import gateware.weight_update as wu

    true_smax = wu.smax
    with mock.patch.object(wu, "smax", lambda bits: true_smax(bits) - 1):
        yield


@contextlib.contextmanager
def _cost_mean_rounding() -> Iterator[None]:
    """The minibatch mean (sum >> b) rounded half up instead of floor."""
    from gateware.cost_acc import CostAcc

    with _patch_expr(CostAcc, "elaborate", *_half_up("total", "b")):
        yield


@contextlib.contextmanager
def _cost_highpass_rounding() -> Iterator[None]:
    """The high-pass decay C~' >> k rounded half up instead of floor."""
    from gateware.cost_acc import CostAcc

    with _patch_expr(CostAcc, "elaborate", *_half_up("ct_prev", "hp")):
        yield


@contextlib.contextmanager
def _cost_sat_bound() -> Iterator[None]:
    """The C~ upper saturation bound one LSB low (smax - 1)."""
    import gateware.cost_acc as ca

    true_smax = ca.smax
    with mock.patch.object(ca, "smax", lambda bits: true_smax(bits) - 1):
        yield


_TOP = "(1 << len(counter)) - 1"  # a status counter's saturation value


@contextlib.contextmanager
def _wu_counter_sat() -> Iterator[None]:
    """The weight update's status counters (sat_g, sat_theta) stop one short of the top."""
    import gateware.weight_update as wu

    with _patch_expr(wu, "_counter_next", _TOP, "(1 << len(counter)) - 2"):
        yield


@contextlib.contextmanager
def _core_counter_sat() -> Iterator[None]:
    """The core's step/update counters stop one short of the top."""
    import gateware.core as core

    with _patch_expr(core, "_sat_inc", _TOP, "(1 << len(counter)) - 2"):
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
        return CONFIGS[self.config][1]().validate_hardware()

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


# -------------------------------------------------------------------------------------
# running
@dataclass
class CaseResult:
    """Outcome of one mutant (or control) run.

    ``status``: ``killed`` (failed with a first-mismatch report), ``survived`` (the
    testbench passed), ``no-op`` (the Verilog did not change, nothing was run),
    ``failed`` (failed without a mismatch report, e.g. an end-of-run assertion),
    ``error`` (the build or run raised), and for controls ``pass``/``FAIL``.
    ``detect_cycle`` is the first mismatching cycle (0-based, after reset), so
    ``detect_cycle + 1`` cycles were compared up to the detection.
    """

    mutation: str
    block: str
    top: str
    config: str
    status: str
    killed: bool
    message: str
    detect_cycle: int | None
    signal: str | None
    verilog_lines_changed: int
    cycles: int
    stim_seed: int
    seconds: float
    build_dir: str

    def to_dict(self) -> dict:
        return asdict(self)


def parse_mismatch(message: str) -> tuple[int, str] | None:
    """(cycle, signal) of a ``cycle C: signal S: expected E, got A`` report, else None."""
    match = MISMATCH_RE.search(message)
    return (int(match.group(1)), match.group(2)) if match else None


def mutant_verilog(case: MutationCase) -> tuple[str, str]:
    """(unmutated, mutated) Verilog of the case's top and config."""
    from gateware.generate import verilog_for

    cfg = case.make_config()
    original = verilog_for(cfg, case.top)
    with case.mutation.apply():
        mutated = verilog_for(cfg, case.top)
    return original, mutated


def verilog_diff_lines(a: str, b: str) -> int:
    """How many lines were added or removed between two Verilog texts."""
    return sum(1 for line in difflib.unified_diff(a.splitlines(), b.splitlines(), n=0,
                                                  lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def mutant_build_dir(case: MutationCase) -> pathlib.Path:
    """The mutant's own build directory (never the regression's)."""
    from sim.runner import build_root, config_hash

    return (build_root() / "mutants"
            / f"{case.mutation.name}-{case.top}-{config_hash(case.make_config(), case.top)}")


def _run(cfg: MGDConfig, top: str, cycles: int, seed: int, extra: dict,
         build_dir: pathlib.Path | None) -> tuple[bool | None, str, str]:
    """(passed, message, build dir); passed is None if the build or run raised."""
    from sim.runner import run_cocotb

    try:
        res = run_cocotb(cfg, top, f"sim.tb_{top}", cycles, stim_seed=seed, extra=extra,
                         build_dir=build_dir)
    except (Exception, SystemExit) as exc:  # a failed build: report it, go on
        return None, f"{type(exc).__name__}: {exc}", str(build_dir or "")
    return res.passed, res.message, str(res.build_dir)


def run_case(case: MutationCase, cycles: int) -> CaseResult:
    """Build the mutant, run the block's testbench for ``cycles``, classify the outcome."""
    t0 = time.perf_counter()
    original, mutated = mutant_verilog(case)
    changed = verilog_diff_lines(original, mutated)
    if not changed:
        passed, message, build_dir = None, "the mutation did not change the Verilog", ""
    else:
        cfg = case.make_config()
        build_dir_path = mutant_build_dir(case)
        with case.mutation.apply():  # run_cocotb generates the Verilog inside
            passed, message, build_dir = _run(cfg, case.top, cycles, case.stim_seed,
                                              case.extra, build_dir_path)
        # the design really built was the mutant
        built = build_dir_path / f"mgd_{case.top}.v"
        if passed is not None and (not built.exists() or built.read_text() != mutated):
            passed, message = None, f"{built} is not the mutant's Verilog"
    mismatch = parse_mismatch(message)
    if not changed:
        status = "no-op"
    elif passed is None:
        status = "error"
    elif passed:
        status = "survived"
    else:
        status = "killed" if mismatch else "failed"
    return CaseResult(
        mutation=case.mutation.name, block=case.mutation.block, top=case.top,
        config=case.config, status=status, killed=status == "killed", message=message,
        detect_cycle=mismatch[0] if mismatch else None,
        signal=mismatch[1] if mismatch else None, verilog_lines_changed=changed,
        cycles=cycles, stim_seed=case.stim_seed, seconds=time.perf_counter() - t0,
        build_dir=build_dir,
    )


def run_control(config: str, cycles: int) -> CaseResult:
    """The unmutated configuration, same seed and cycles, in the regression's build dir."""
    t0 = time.perf_counter()
    top, make, seed, extra = CONFIGS[config]
    passed, message, build_dir = _run(make().validate_hardware(), top, cycles, seed,
                                      dict(extra), None)
    return CaseResult(
        mutation="(none)", block=top, top=top, config=config,
        status="pass" if passed else "FAIL", killed=False, message=message,
        detect_cycle=None, signal=None, verilog_lines_changed=0, cycles=cycles,
        stim_seed=seed, seconds=time.perf_counter() - t0, build_dir=build_dir,
    )


def run_all(cycles: int = 100_000, cases: list[MutationCase] | None = None,
            controls: bool = True,
            progress: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Controls first (one per configuration used), then every mutant.

    ``progress`` is called with each result as it completes.
    """
    cases = CASES if cases is None else cases
    results: list[CaseResult] = []
    todo: list[Callable[[], CaseResult]] = []
    if controls:
        for config in dict.fromkeys(c.config for c in cases):
            todo.append(lambda config=config: run_control(config, cycles))
    todo += [lambda case=case: run_case(case, cycles) for case in cases]
    for job in todo:
        result = job()
        results.append(result)
        if progress:
            progress(result)
    return results


def all_good(results: list[CaseResult]) -> bool:
    """Every control passed and every mutant was killed by a first-mismatch report."""
    return all(r.status in ("pass", "killed") for r in results)
