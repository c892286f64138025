"""Time-to-train of the on-chip trainer against tuned backprop on this CPU.

For a trainer config (hw.datapath = "mlp"), per parallelism setting (``SETTINGS``:
sequential and streaming trainers, one MAC per layer ... fully parallel; and each
fold the fit search measured to fit a device that these miss, ``fitted_settings``):

1. steps to the target accuracy, from the bit-exact model (run 0, test accuracy
   evaluated every ``steps / 1000`` steps, stopping at the first that reaches it); the
   sequential settings give the same numbers, so they share one run; a streaming
   setting runs its own (its updates arrive D evaluations late);
2. cycles for those steps: ``HwSpec.step_cycles`` of the setting (the one place the
   trainer's timing lives), and evaluations (forward passes, baselines included);
3. the FPGA time: cycles / Fmax, with the Fmax MEASURED for that setting on a device
   it fits (``fpga_figures``: the committed synthesis tables), else the ``--fmax``
   given, labelled "assumed". A setting measured only on devices it does not fit gets
   no FPGA time;
4. the physical limit of that Fmax on the device: every evaluation's products on the
   device's hard multipliers, evaluations x ceil(products x multipliers per product /
   multipliers on the device) / Fmax (forward products only: W h; biases, the cost and
   the update need no multiplier or fewer);
5. the papers' analog projection: one evaluation per ns (evaluations x 1 ns), a
   projection, not a measurement;
6. tuned backprop on this CPU: the best of a grid (``backprop_grid``: batch sizes x
   rates, NumPy and PyTorch), training time only; each time above is stated against
   it in words ("... is 37x slower than tuned CPU backprop").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from golden_model.config import ConfigError, MGDConfig, derive, network_sizes
from golden_model.datapath import HwData
from golden_model.datapath import evaluate as hw_evaluate
from golden_model.datasets import Dataset
from golden_model.float_twin import float_twin
from golden_model.hw_spec import HwSpec, trainer_spec
from golden_model.shapes import layer_parallelism
from golden_model.trainer import HwTrainer

from . import backprop_grid, fpga_figures

# Parallelism settings of the projection: one MAC per layer ... fully parallel, the
# sequential trainer and the streaming one (hw.pipeline = "stream").
SETTINGS = {
    "1 MAC per layer": {"macs": 1, "mac_inputs": 1, "pipeline": "sequential"},
    "1 MAC per neuron": {"macs": 0, "mac_inputs": 1, "pipeline": "sequential"},
    "fully parallel": {"macs": 0, "mac_inputs": 0, "pipeline": "sequential"},
    "stream, 1 MAC/neuron": {"macs": 0, "mac_inputs": 1, "pipeline": "stream"},
    "stream, fully par.": {"macs": 0, "mac_inputs": 0, "pipeline": "stream"},
}
ANALOG_SECONDS_PER_EVALUATION = 1e-9  # the papers' projection: one evaluation per ns


@dataclass
class SettingProjection:
    name: str
    pipeline: str
    macs: object
    mac_inputs: object
    invalid: str  # why this setting cannot be built for the config ("" when it can)
    steps_to_target: int | None = None  # of this setting's trainer (bit-exact model)
    cycles_per_step: float | None = None
    # the fold's multipliers all busy on the weights' products: products per evaluation
    # / multipliers x evaluations per step (no design with these multipliers does better)
    mac_bound_cycles_per_step: float | None = None
    cycles_to_target: int | None = None
    evaluations: int | None = None  # forward passes to the target, baselines included
    fmax_mhz: float | None = None
    fmax_source: str = ""  # "measured" or "assumed"
    device: str = ""  # the part of the measured Fmax, or "" when assumed
    fits: bool | None = None  # None: not measured
    fit_note: str = ""
    fpga_seconds: float | None = None
    products_per_evaluation: int = 0
    multipliers: int = 0  # the fold's multipliers (MACs x inputs per MAC, all layers)
    limit_device: str = ""
    limit_multipliers: int = 0
    limit_note: str = ""
    limit_seconds: float | None = None
    analog_seconds: float | None = None
    backprop_seconds: float | None = None
    backprop_setting: str = ""
    ratio: float | None = None  # FPGA time / tuned backprop time (> 1: MGD is slower)
    verdict: str = ""
    limit_verdict: str = ""
    analog_verdict: str = ""
    measurements: list[dict] = field(default_factory=list)


@dataclass
class Projection:
    task: str
    config_name: str
    network: list[int]
    target: float
    eval_every: int
    steps_to_target: int | None
    mgd_max_test_acc: float
    steps_note: str
    backprop: dict
    settings: list[SettingProjection] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# Test-set evaluations of the MGD run: about this many over the config's steps.
MGD_EVALUATIONS = 1000


def mgd_eval_every(cfg: MGDConfig) -> int:
    """Steps between the MGD run's test evaluations (``MGD_EVALUATIONS`` per run)."""
    return max(1, cfg.steps // MGD_EVALUATIONS)


def steps_to_target(cfg: MGDConfig, data: Dataset, target: float,
                    every: int | None = None) -> tuple[int | None, float]:
    """First step, among multiples of ``every`` (default ``mgd_eval_every``), at which
    the bit-exact model's test accuracy (run 0) reaches ``target``, and the best test
    accuracy seen; the run stops there (at most ``cfg.steps`` steps)."""
    every = every or mgd_eval_every(cfg)
    hd = HwData.from_dataset(data, cfg.hw)
    trainer = HwTrainer(cfg, hd, 0)
    best = 0.0
    while trainer.n < cfg.steps:
        trainer.advance(min(every, cfg.steps - trainer.n))
        _, acc = hw_evaluate(trainer.net, trainer.theta, hd.x_test, hd.t_test, hd.labels_test)
        best = max(best, acc)
        if acc >= target:
            return trainer.n, best
    return None, best


def stream_cycles_ready(spec: HwSpec) -> bool:
    """Whether ``spec.step_cycles`` counts the streaming trainer's slots (it does once
    ``StreamTiming.step_evals`` exists); sequential specs always are."""
    return spec.stream is None or hasattr(spec.stream, "step_evals")


def evaluations(spec: HwSpec, steps: int) -> int:
    """Forward passes (evaluations) the trainer makes for ``steps`` steps, baselines
    included. Sequential: one perturbed pass per step plus a baseline at every step
    that starts a segment (n % tau_x == 0 or n % tau_theta == 0). Streaming: the slots
    up to ``spec.step_cycles(steps)``."""
    if spec.stream is not None:
        s = spec.stream
        return (spec.step_cycles(steps) - s.first_cycle) // s.ii
    m = spec.cfg.mgd
    a, b = m.tau_x, m.tau_theta
    lcm = a * b // math.gcd(a, b)
    baselines = -(-steps // a) + -(-steps // b) - -(-steps // lcm)
    return steps + baselines


def cycles_for(cfg: MGDConfig, steps: int, setting: dict) -> tuple[int, float]:
    """(cycles of ``steps`` steps, cycles per step) with a parallelism ``setting``."""
    cycles = trainer_spec(derive(cfg, {"hw": setting})).step_cycles(steps)
    return cycles, float(cycles / max(steps, 1))


def products_per_evaluation(spec: HwSpec) -> int:
    """The multiplications of one forward pass: sum of n_in x n_out over the layers."""
    s = spec.sizes
    return sum(a * b for a, b in zip(s[:-1], s[1:], strict=True))


def in_words(what: str, seconds: float | None, backprop: float | None) -> tuple[float | None,
                                                                                str]:
    """(ratio what / backprop, the comparison in words); a loss is never hidden."""
    if seconds is None or backprop is None:
        return None, ""
    ratio = seconds / backprop
    if math.isclose(ratio, 1.0, rel_tol=0.005):
        return ratio, f"{what} is as fast as tuned CPU backprop"
    if ratio > 1:
        return ratio, f"{what} is {_times(ratio)} slower than tuned CPU backprop"
    return ratio, f"{what} is {_times(1 / ratio)} faster than tuned CPU backprop"


def _times(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _backprop_setting(best) -> str:
    if best is None:
        return ""
    return f"{best.engine}, batch {best.batch}, rate {best.rate:g}, {best.updates:,} updates"


def _limit(spec: HwSpec, evals: int, mhz: float, device: tuple[str, str]) -> tuple:
    """(device part, multipliers, note, seconds) of the physical-limit line."""
    mult = fpga_figures.MULTIPLIERS.get(device)
    if mult is None:
        return "", 0, f"no multiplier count for {device[0]} {device[1]}", None
    if not mult.count:
        return mult.part, 0, mult.source, None
    h = spec.hw
    per = mult.per_product(h.theta_bits, max(h.act_bits, h.x_bits))
    cycles = -(-products_per_evaluation(spec) * per // mult.count)
    note = (f"{mult.count} multipliers of {mult.a}x{mult.b} ({per} per "
            f"{h.theta_bits}x{max(h.act_bits, h.x_bits)}-bit product): {cycles} cycle(s) per "
            f"evaluation; {mult.source}")
    return mult.part, mult.count, note, evals * cycles / (mhz * 1e6)


def setting_spec(cfg: MGDConfig, setting: dict) -> HwSpec:
    """The spec of ``cfg`` at a parallelism ``setting``; ConfigError (one line) when
    the setting cannot be built for it or its timing is not known here."""
    spec = trainer_spec(derive(cfg, {"hw": setting}))
    if not stream_cycles_ready(spec):
        raise ConfigError("HwSpec.step_cycles does not count the streaming trainer's slots "
                          "on this version")
    return spec


def numbers_key(spec: HwSpec) -> tuple:
    """Settings with equal keys train the same numbers: every sequential setting; a
    streaming one per update delay D (which evaluations see which parameters)."""
    return ("stream", spec.stream.delay) if spec.stream is not None else ("sequential",)


def project_setting(cfg: MGDConfig, name: str, setting: dict, steps: int | None,
                    fmax: float, measured: list, bp_seconds: float | None,
                    bp_setting: str) -> SettingProjection:
    """One row of the report (module docstring) for ``setting``, given the steps its
    trainer needs (None: it does not reach the target in ``cfg.steps``)."""
    row = SettingProjection(name, setting["pipeline"], setting["macs"], setting["mac_inputs"],
                            "", backprop_seconds=bp_seconds, backprop_setting=bp_setting)
    try:
        spec = setting_spec(cfg, setting)
    except ConfigError as exc:
        row.invalid = str(exc)
        return row
    scfg = spec.cfg
    row.steps_to_target = steps
    n = steps if steps is not None else cfg.steps
    cycles = spec.step_cycles(n)
    row.cycles_per_step = cycles / max(n, 1)
    evals = evaluations(spec, n)
    row.products_per_evaluation = products_per_evaluation(spec)
    row.multipliers = sum(p * q for p, q in layer_parallelism(scfg))
    row.mac_bound_cycles_per_step = (row.products_per_evaluation / row.multipliers
                                     * evals / max(n, 1))
    mine = fpga_figures.for_setting(measured, scfg)
    row.measurements = [m.to_dict() for m in mine]
    fit = fpga_figures.best_fit(mine)
    no_fit = [m for m in mine if m.fits is False]
    undecided = [m for m in mine if m.fits is None]
    if fit is not None:
        row.fmax_mhz, row.fmax_source, row.fits = fit.fmax_mhz, "measured", True
        row.device = f"{fit.part or fit.device} ({fit.target} {fit.device})"
        limit_device = (fit.target, fit.device)
    elif no_fit:
        row.fits = False
        row.fit_note = "; ".join(f"does not fit {m.part or m.device}"
                                 + (f" ({m.failing})" if m.failing else "") for m in no_fit)
        limit_device = (no_fit[0].target, no_fit[0].device)
    else:
        row.fmax_mhz, row.fmax_source = fmax, "assumed"
        row.fit_note = "; ".join(f"undecided on {m.part or m.device}"
                                 + (f" ({m.failing})" if m.failing else "") for m in undecided)
        limit_device = fpga_figures.DEFAULT_LIMIT_DEVICE
    if steps is None:
        return row
    row.cycles_to_target, row.evaluations = cycles, evals
    row.analog_seconds = evals * ANALOG_SECONDS_PER_EVALUATION
    if row.fmax_mhz is not None:
        row.fpga_seconds = cycles / (row.fmax_mhz * 1e6)
        row.limit_device, row.limit_multipliers, row.limit_note, row.limit_seconds = _limit(
            spec, evals, row.fmax_mhz, limit_device)
    row.ratio, row.verdict = in_words(f"hardware MGD ({name})", row.fpga_seconds, bp_seconds)
    hard = fpga_figures.MULTIPLIERS.get(limit_device)
    if row.fmax_source == "assumed" and hard is not None and row.multipliers > hard.count:
        # an assumed Fmax on a fold no device has been shown to hold: say so beside it
        caveat = (f"fit not checked: the fold needs {row.multipliers:,} multipliers, the "
                  f"{hard.part} has {hard.count} hard ones")
        row.fit_note = "; ".join(x for x in (row.fit_note, caveat) if x)
        if row.verdict:
            row.verdict += f" ({caveat})"
    _, row.limit_verdict = in_words("the multiplier-bound limit", row.limit_seconds, bp_seconds)
    _, row.analog_verdict = in_words("the analog projection", row.analog_seconds, bp_seconds)
    return row


def fitted_settings(cfg: MGDConfig, measured: list, settings: dict[str, dict]
                    ) -> dict[str, dict]:
    """The folds measured to fit a device that none of ``settings`` is, as settings of
    their own ("stream 16,10/4,1 fit": pipeline, MACs per layer / inputs per MAC), so
    the report has an FPGA time at a measured Fmax wherever the fit search found one
    (the fixed settings may all be too large for any device, or unmeasured)."""
    covered = set()
    for setting in settings.values():
        try:
            spec = trainer_spec(derive(cfg, {"hw": setting}))
        except ConfigError:
            continue
        covered.add((spec.cfg.hw.pipeline, tuple(layer_parallelism(spec.cfg))))
    out: dict[str, dict] = {}
    for m in measured:
        key = (m.pipeline, m.parallelism)
        if not m.fits or key in covered:
            continue
        covered.add(key)
        macs = [p for p, _ in m.parallelism]
        inputs = [q for _, q in m.parallelism]
        name = (f"{m.pipeline[:6]} {','.join(map(str, macs))}/"
                f"{','.join(map(str, inputs))} fit")
        out[name] = {"macs": macs, "mac_inputs": inputs, "pipeline": m.pipeline}
    return out


def project(cfg: MGDConfig, data: Dataset, target: float, fmax: float = 50.0,
            config_name: str = "", grid: str = "quick",
            settings: dict[str, dict] | None = None,
            measured: list | None = None,
            backprop: backprop_grid.GridResult | None = None) -> Projection:
    """The whole report (module docstring). ``settings``: default ``SETTINGS`` and
    every fold measured to fit that they miss (``fitted_settings``); ``measured``: the
    synthesis figures (default: ``fpga_figures.read_measured`` of ``config_name``);
    ``backprop``: a grid already searched (default: search ``grid`` now)."""
    if measured is None:
        measured = fpga_figures.read_measured(cfg, config_name) if config_name else []
    if settings is None:
        settings = SETTINGS | fitted_settings(cfg, measured, SETTINGS)
    runs: dict[tuple, tuple[int | None, float]] = {}

    def steps_of(spec: HwSpec) -> tuple[int | None, float]:
        key = numbers_key(spec)
        if key not in runs:
            runs[key] = steps_to_target(spec.cfg, data, target)
        return runs[key]

    steps, mgd_best = steps_of(trainer_spec(cfg))
    bp = backprop if backprop is not None else backprop_grid.search(
        float_twin(cfg), data, target, grid)
    best = bp.best
    bp_seconds = best.seconds if best is not None else None
    note = ("steps of the bit-exact model of each setting's trainer: one run for every "
            "sequential setting, one per update delay of the streaming ones")
    proj = Projection(cfg.task.name, config_name, network_sizes(cfg), target,
                      mgd_eval_every(cfg), steps, mgd_best, note, bp.to_dict())
    for name, setting in settings.items():
        try:
            own = steps_of(setting_spec(cfg, setting))[0]
        except ConfigError:
            own = None  # project_setting says why
        proj.settings.append(project_setting(cfg, name, setting, own, fmax, measured,
                                             bp_seconds, _backprop_setting(best)))
    return proj


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def format_projection(p: Projection) -> str:
    net = "-".join(str(s) for s in p.network)
    bp = p.backprop
    lines = [f"{p.task} {net}, target test accuracy {p.target:.2f}"]
    if p.steps_to_target is None:
        lines.append(f"  MGD (bit-exact model) did not reach it (best {p.mgd_max_test_acc:.3f})")
    else:
        lines.append(f"  MGD (bit-exact model of the config's own trainer): "
                     f"{p.steps_to_target:,} steps (test accuracy evaluated every "
                     f"{p.eval_every:,}; each setting's own steps in the table)")
    engines = " and ".join(bp["engines"])
    grid = (f"best of {bp['size']} grid points ({engines}; batch {bp['batches'][0]}.."
            f"{bp['batches'][-1]} x rate {bp['rates'][0]:g}..{bp['rates'][-1]:g}, median of "
            f"{bp['seeds']} seeds; training time only, {bp['seconds']:.0f} s to search)")
    best = bp["best"]
    if best is None:
        lines.append(f"  backprop on this CPU did not reach it: {grid}")
    else:
        spread = [s for s in best["seed_seconds"] if s is not None]
        lines.append(f"  tuned backprop on this CPU: {_t(best['seconds'])} ({best['engine']}, "
                     f"batch {best['batch']}, rate {best['rate']:g}, {best['updates']:,} "
                     f"updates; {best['reached']} of {best['seeds']} seeds reached it, in "
                     f"{_t(min(spread))}..{_t(max(spread))}), {grid}")
        for engine in bp["engines"]:
            pts = [q for q in bp["points"] if q["engine"] == engine and q["seconds"]]
            if engine != best["engine"]:
                lines.append(f"    best {engine} point: " + (
                    f"{_t(min(q['seconds'] for q in pts))}" if pts else
                    "none reached the target within the cut-off (twice the best median)"))
        if bp["edge"]:
            lines.append(f"  note: {bp['edge']}")
        load = bp.get("load") or (0.0, 0.0)
        if max(load) > 0:
            lines.append(f"    load average {load[0]:.1f} -> {load[1]:.1f} on {bp['cpus']} CPUs "
                         "during the search (other jobs make the CPU times longer)")
    lines.append(f"  {'setting':<21} {'steps':>9} {'cycles/step':>11} {'Fmax MHz':>15} "
                 f"{'FPGA time':>10} {'vs backprop':>12} {'mult. limit':>11} {'analog 1ns':>10}")
    notes = []
    for s in p.settings:
        if s.invalid:
            lines.append(f"  {s.name:<21} not valid for this config: {s.invalid}")
            continue
        if s.fmax_mhz is None:
            fmax = "no fit"
        else:
            fmax = f"{s.fmax_mhz:.1f} {'meas.' if s.fmax_source == 'measured' else 'assumed'}"
        vs = "-"
        if s.ratio is not None:
            vs = (f"{_times(s.ratio)} slower" if s.ratio > 1 else f"{_times(1 / s.ratio)} faster")
        steps = f"{s.steps_to_target:,}" if s.steps_to_target else "never"
        lines.append(f"  {s.name:<21} {steps:>9} {s.cycles_per_step or 0:>11.1f} {fmax:>15} "
                     f"{_t(s.fpga_seconds):>10} {vs:>12} {_t(s.limit_seconds):>11} "
                     f"{_t(s.analog_seconds):>10}")
        if s.verdict:
            notes.append(f"  {s.verdict}")
        if s.fmax_source == "measured":
            notes.append(f"    Fmax measured on {s.device}")
        elif s.fit_note and not s.verdict:
            notes.append(f"    {s.name}: {s.fit_note}")
    lines += notes
    done = [s for s in p.settings if not s.invalid and s.evaluations]
    if done:
        s = done[0]
        lines.append(f"  mult. limit: evaluations (baselines included) x ceil(products per "
                     f"evaluation ({s.products_per_evaluation:,}) / multipliers on the device) "
                     f"/ Fmax; {s.limit_device or 'no device'}: {s.limit_note}")
        lines.append("  analog 1ns: the papers' projection of analog hardware, one evaluation "
                     "per ns (a projection, not a measurement); "
                     + (s.analog_verdict or "no backprop time to compare"))
    if any(s.fmax_source == "assumed" for s in p.settings if not s.invalid):
        lines.append("  assumed: no synthesis figure for that setting in bench/synth_fits.json "
                     "or bench/synth_baselines.json; the --fmax given, fit not checked")
    return "\n".join(lines)
