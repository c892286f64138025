"""The toolkit's one configuration object: its schema, and how a config is built.

A config is a tree of frozen dataclasses (``MGDConfig`` with sections ``task``,
``network``, ``mgd``, ``nonideal``, ``backprop``, ``hw``). It is built in layers, later
layers winning:

1. the dataclass defaults below;
2. the preset of the chosen task (``presets.TASK_PRESETS``), so ``--task digits`` alone
   is a sensible run;
3. a TOML file (``--config FILE``, ``config_io``), whose tables mirror the sections;
4. command-line overrides (``--seed 3`` or ``--set mgd.eta=0.5``).

A config never changes once built: :func:`derive` is the one way to make a variant
(it rebuilds and re-validates). Every rule lives in ``config_rules``; a bad value raises
:class:`ConfigError` with one line naming the field, the value and what is allowed.
The hardware's derived facts (layouts, schedule, widths) are ``hw_spec.HwSpec``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .presets import TASK_PRESETS


class ConfigError(ValueError):
    """A config field has an invalid value; the message is one line naming it."""


TASKS = ("xor", "parity", "images7", "digits", "mnist", "fashion_mnist", "cifar10", "file",
         "arrays")
# How a user's data (task "file" or "arrays") is read: its targets and input scaling.
TASK_TARGETS = ("auto", "class", "value")
TASK_SCALES = ("none", "minmax", "standard")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "hard_sigmoid")
OUTPUT_ACTIVATIONS = ACTIVATIONS + ("linear",)
COSTS = ("mse", "cross_entropy")
PERTURBATIONS = ("code", "time", "frequency", "walsh")
MODES = ("weight", "node")
BASELINES = ("discrete", "analog")
OPTIMIZERS = ("sgd", "momentum", "adam")
# Stochastic hidden neurons (nonideal.neuron_noise) and how evaluation treats them.
NEURON_KINDS = ("none", "gaussian", "bernoulli", "device")
NEURON_EVALS = ("mean", "sample")
# mgd.optimizer also takes the transfer algorithm for pulsed devices (golden_model/
# devices.py); the backprop baseline keeps the three above.
MGD_OPTIMIZERS = OPTIMIZERS + ("tiki_taka",)
# nonideal.device: "none" (parameters are floats) or pulsed soft-bounds crosspoints.
DEVICE_KINDS = ("none", "softbounds")


class _Section:
    """A config section. ``with_floats`` stores a float field given as an integer as a
    float, so ``eta = 1`` and ``eta = 1.0`` build the same config (after validation,
    whose messages show the value as written)."""

    def with_floats(self):  # noqa: ANN201 - the section's own type
        ints = {f.name: float(v) for f in dataclasses.fields(self)
                if f.type == "float" and isinstance(v := getattr(self, f.name), int)
                and not isinstance(v, bool)}
        return dataclasses.replace(self, **ints) if ints else self


@dataclass(frozen=True)
class TaskConfig(_Section):
    """Which data set to train on.

    ``parity_bits`` applies to ``parity``; ``data_dir`` to the file-backed sets
    (mnist, fashion_mnist, cifar10); ``train_limit``/``test_limit`` keep the first
    samples only (0 keeps all); ``images_per_class`` and ``image_noise`` shape the
    generated 7x7 set.

    A user's data: ``name = "file"`` reads ``path`` (an ``.npz`` with x_train,
    y_train, x_test, y_test or x, y; or a ``.csv`` with a header row whose ``label``
    column, else the last, is the target); ``name = "arrays"`` is data handed over in
    Python (``Dataset.from_arrays``, ``mgd_hw.api``). ``target``: "class" (integer
    labels), "value" (regression) or "auto" (class when every target is a whole
    number >= 0). ``scale``: the inputs' scaling, fitted on the training split:
    "none", "minmax" (to [0, 1]) or "standard" (zero mean, unit variance).
    ``test_fraction`` of the samples (drawn with ``split_seed``) is the test split when
    the file has no split of its own (0: test on the training set). ``inputs`` and
    ``outputs``: the data's sizes (0 = read from the data; an "arrays" task must set
    them, which ``mgd_hw.api.config(data=...)`` does).
    """

    name: str = "xor"
    parity_bits: int = 3
    data_dir: str = ""
    train_limit: int = 0
    test_limit: int = 0
    images_per_class: int = 50
    image_noise: float = 0.1
    path: str = ""
    target: str = "auto"
    scale: str = "none"
    test_fraction: float = 0.2
    split_seed: int = 0
    inputs: int = 0
    outputs: int = 0


@dataclass(frozen=True)
class NetworkConfig(_Section):
    """An MLP: ``hidden`` layer widths, activations, cost and initial weight scale.

    Weights start as N(0, init_scale**2 / fan_in), biases at zero.
    """

    hidden: list[int] = field(default_factory=lambda: [2])
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    cost: str = "mse"
    init_scale: float = 1.0


@dataclass(frozen=True)
class MGDSettings(_Section):
    """The MGD algorithm (shared/MGD.md).

    ``dtheta`` is the L2 norm of the whole perturbation vector; each of the N perturbed
    quantities moves by dtheta / sqrt(N). ``tau_x``, ``tau_p``, ``tau_theta`` are in
    steps. ``clamp`` limits |C~| (0 = off). ``tau_hp`` is the analog high-pass time
    constant. ``freq_min``/``freq_max`` bound the frequency-multiplexing band in cycles
    per perturbation period.

    ``optimizer``: "sgd", "momentum", "adam", or "tiki_taka" (pulsed devices only,
    docs/devices.md): the update is pulsed into a fast array A, and every
    ``transfer_every`` updates ``transfer_lr`` * A is pulsed into the slow array C; the
    network sees C + ``transfer_gamma`` * A.
    """

    perturbation: str = "code"
    mode: str = "weight"
    dtheta: float = 0.05
    eta: float = 0.1
    tau_x: int = 1
    tau_p: int = 1
    tau_theta: int = 1
    baseline: str = "discrete"
    tau_hp: float = 10.0
    clamp: float = 0.0
    sparsity: float = 0.0
    freq_min: float = 0.01
    freq_max: float = 0.49
    optimizer: str = "sgd"
    momentum: float = 0.9
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    transfer_every: int = 10
    transfer_lr: float = 0.1
    transfer_gamma: float = 0.0


@dataclass(frozen=True)
class NonIdealConfig(_Section):
    """Hardware non-idealities, all off by default.

    ``cost_noise``: std of Gaussian noise on every cost measurement.
    ``update_noise``: std of Gaussian noise added to every parameter at every update.
    ``device_variation``: std of each neuron's midpoint and offset shifts and of the
    relative spread of its steepness and gain.
    ``weight_bits``/``weight_frac``: quantize parameters to a signed fixed-point format
    with that many total and fraction bits (round to nearest, saturate); 0 = float.

    Stochastic hidden neurons (float model only; ``golden_model.neurons``,
    docs/devices.md): ``neuron_noise`` "none", "gaussian" (h = f(z) + neuron_std * n),
    "bernoulli" (h = 1 with probability f(z), else 0) or "device" (h sampled from the
    fitted device file ``neuron_device``, an .npz or .json from ``mgd-hw device fit``,
    at device input ``neuron_scale * z + neuron_offset``). ``neuron_eval``: test and
    train accuracy use the expected output ("mean") or fresh samples ("sample").
    Pulsed crosspoint devices (docs/devices.md, "Asymmetric crosspoint devices"):
    ``device``: "none" or "softbounds" (every parameter is a device moved by whole
    pulses). ``dw_min``: nominal step of one pulse (> 0). ``asymmetry``: the slope
    gamma in [0, 1] of the steps' state dependence, up = dw+ (1 - gamma w / w_max),
    down = dw- (1 + gamma w / w_max) (0: constant steps; 1: full soft bounds).
    ``up_down``: the mean up/down bias beta in (-1, 1), dw+- = dw (1 +- beta), which puts
    the symmetry point at w_max beta / gamma. ``w_max``: the bounds +-w_max (> 0).
    ``pulse_noise``: cycle-to-cycle std of each pulse, relative to its step (>= 0).
    ``dw_min_dtod``: device-to-device relative std of dw (>= 0). ``up_down_dtod``:
    device-to-device std of beta (>= 0). ``max_pulses``: most pulses per update
    and parameter (1 to 1000). ``zero_shift``: every device is read less its own
    symmetry point, held in a reference device (Tiki-Taka's arrays too);
    ``zero_shift_error``: std of each reference's programming error, in weight units
    (>= 0; needs ``zero_shift``).
    """

    cost_noise: float = 0.0
    update_noise: float = 0.0
    device_variation: float = 0.0
    weight_bits: int = 0
    weight_frac: int = 0
    neuron_noise: str = "none"
    neuron_std: float = 0.0
    neuron_device: str = ""
    neuron_scale: float = 1.0
    neuron_offset: float = 0.0
    neuron_eval: str = "mean"
    # Pulsed crosspoint devices (golden_model/devices.py), one block.
    device: str = "none"
    dw_min: float = 0.001
    asymmetry: float = 1.0
    up_down: float = 0.0
    w_max: float = 1.0
    pulse_noise: float = 0.0
    dw_min_dtod: float = 0.0
    up_down_dtod: float = 0.0
    max_pulses: int = 15
    zero_shift: bool = False
    zero_shift_error: float = 0.0


@dataclass(frozen=True)
class BackpropConfig(_Section):
    """The exact-gradient baseline trained on the same network and initial weights.

    ``updates`` = 0 runs as many updates as MGD makes (steps / tau_theta).
    """

    enabled: bool = True
    lr: float = 0.5
    optimizer: str = "sgd"
    batch_size: int = 1
    updates: int = 0


HW_ROUNDINGS = ("floor", "half_up")
HW_DATAPATHS = ("none", "mlp")
# The trainer gateware: one forward pass at a time with sweeps between steps, or a
# pipeline that takes a new evaluation every II cycles (docs/hardware_network.md).
HW_PIPELINES = ("sequential", "stream")

@dataclass(frozen=True)
class HardwareConfig(_Section):
    """The fixed-point hardware (docs/hardware_contract.md has every format).

    The schedule (tau_x, tau_p, tau_theta) and the code kind (mgd.perturbation:
    code -> LFSR, walsh, time -> walking one-hot, frequency -> square waves) come from
    the ``mgd`` section, so float model and hardware share one source of truth.

    ``n_params``: N, parameters of a standalone block or core. ``theta_bits``/
    ``theta_frac``: parameter format. ``amp_log2``: the perturbation is +-2^amp_log2
    parameter LSBs. ``cost_bits``/``cost_frac``: cost input format; ``ctilde_bits``:
    C~ width (same LSB); ``g_bits``: gradient accumulator width (same LSB).
    ``eta_shift``: theta -= round(G >> eta_shift). ``rounding``: how that shift rounds.
    ``momentum_shift``: 0 = off, else V <- V - (V >> k) + G and theta -= round(V >>
    eta_shift), V in ``v_bits``. ``batch_log2``: average 2^b cost samples per step.
    ``highpass_shift``: 0 = discrete baseline (C~ = C - C0), k > 0 = high-pass filter
    with alpha = 1 - 2^-k. ``clamp``: |C~| limit in LSBs, 0 = off. ``lanes``: 0 = fully
    parallel weight update, P > 0 = memory-backed with P lanes. ``lfsr_bits``/
    ``lfsr_seed``: the shared LFSR of code multiplexing. ``counter_bits``: width of the
    step and saturation counters (they saturate too).

    The on-chip network (docs/hardware_network.md; used when ``datapath`` = "mlp"):
    ``datapath``: "none" = standalone blocks or chip-in-the-loop core (N is
    ``n_params``), "mlp" = the trainer with its own network of ``[network]`` on the
    task's data, so ``n_params`` must be that network's parameter count.
    ``x_bits``/``x_frac``: input sample format. ``z_bits``/``z_frac``: pre-activation
    (activation input) format. ``act_bits``/``act_frac``: activation (layer output and
    target) format. ``acc_bits``: MAC accumulator, exact (validated wide enough).
    ``z_rounding``: how every datapath narrowing rounds (accumulator -> z, activation
    slopes, cost). ``cost_shift``: the cost is sum over outputs of (y - t)^2 / 2^k.
    With node perturbation the amplitude 2^amp_log2 is in z LSBs.

    Trainer parallelism (docs/hardware_network.md, "Trainer gateware"): ``macs``: MAC
    units per layer, each one neuron at a time (an int for every layer, or one per
    layer; 0 = one per neuron); it must divide the layer's width. ``mac_inputs``:
    inputs each MAC takes per cycle (int or per layer; 0 = all); it must divide the
    layer's fan-in. Both change only the timing, never the numbers.
    ``sample_memory``: the trainer's sample memory holds at most this many training
    samples (the data set must fit). ``pipeline``: the trainer's schedule,
    "sequential" (one forward pass at a time, sweeps between steps) or "stream" (a new
    evaluation enters every II cycles; updates reach the stream a fixed number of
    evaluations late, docs/hardware_network.md "Streaming trainer").
    """

    n_params: int = 16
    theta_bits: int = 16
    theta_frac: int = 10
    amp_log2: int = 4
    cost_bits: int = 16
    cost_frac: int = 12
    ctilde_bits: int = 16
    g_bits: int = 24
    eta_shift: int = 8
    rounding: str = "half_up"
    momentum_shift: int = 0
    v_bits: int = 24
    batch_log2: int = 0
    highpass_shift: int = 0
    clamp: int = 0
    lanes: int = 0
    lfsr_bits: int = 32
    lfsr_seed: int = 0xACE1
    counter_bits: int = 32
    datapath: str = "none"
    x_bits: int = 8
    x_frac: int = 6
    z_bits: int = 16
    z_frac: int = 10
    act_bits: int = 16
    act_frac: int = 12
    acc_bits: int = 40
    z_rounding: str = "half_up"
    cost_shift: int = 0
    macs: int | list[int] = 0
    mac_inputs: int | list[int] = 1
    sample_memory: int = 4096
    pipeline: str = "sequential"


@dataclass(frozen=True)
class MGDConfig:
    """The whole configuration. ``runs`` is the ensemble size R (seeds seed..)."""

    seed: int = 0
    runs: int = 1
    steps: int = 10000
    eval_every: int = 1000
    task: TaskConfig = field(default_factory=TaskConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    mgd: MGDSettings = field(default_factory=MGDSettings)
    nonideal: NonIdealConfig = field(default_factory=NonIdealConfig)
    backprop: BackpropConfig = field(default_factory=BackpropConfig)
    hw: HardwareConfig = field(default_factory=HardwareConfig)

    def validate(self) -> MGDConfig:
        """Check every field (``config_rules``); raise :class:`ConfigError` on the first
        bad one. Returns the config."""
        from .config_rules import check_config

        check_config(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (JSON/TOML-ready)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Per-task defaults: what `mgd-hw train --task NAME` runs with no other settings.

def build_config(*layers: dict[str, Any], preset: bool = True) -> MGDConfig:
    """Merge plain-data layers over the defaults and the task preset, then validate.

    The task is read from the merged layers first, so the preset sits under them.
    ``preset=False`` leaves the preset out: the dataclass defaults and the layers only
    (what ``mgd_hw.api.config`` builds). A user's data (task "file" or "arrays") has no
    preset either way.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer)
    task_section = merged.get("task", {})
    task = task_section.get("name", TaskConfig.name) if isinstance(task_section, dict) else None
    preset = TASK_PRESETS.get(task, {}) if preset and isinstance(task, str) else {}
    full: dict[str, Any] = {}
    _merge(full, preset)
    _merge(full, merged)
    cfg = _from_dict(MGDConfig, full, prefix="").validate()
    sections = {f.name: getattr(cfg, f.name).with_floats() for f in dataclasses.fields(cfg)
                if isinstance(getattr(cfg, f.name), _Section)}
    return dataclasses.replace(cfg, **sections)




def derive(cfg: MGDConfig, *layers: dict[str, Any]) -> MGDConfig:
    """A new validated config: ``cfg`` with plain-data ``layers`` merged over it, e.g.
    ``derive(cfg, {"hw": {"act_bits": 12}}, {"steps": 5})``. The one way to vary a
    config (configs are frozen)."""
    return build_config(cfg.to_dict(), *layers, preset=False)


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        elif isinstance(value, dict):
            dst[key] = {}
            _merge(dst[key], value)
        else:
            dst[key] = value


def _from_dict(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix.rstrip('.')!r} must be a table, not {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config field '{prefix}{key}' (known: {known})")
        sub = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None  # noqa: E501
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[key] = _from_dict(sub, value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = value
    return cls(**kwargs)




# Sizes derived from a config, and reading files and --set assignments (re-exported:
# callers import them from here).
from .config_io import load_config, load_toml, parse_assignment  # noqa: E402
from .shapes import (  # noqa: E402
    TASK_SHAPES,
    acc_bits_needed,
    layer_parallelism,
    network_param_count,
    network_sizes,
    task_shape,
)

__all__ = [
    "ACTIVATIONS", "BASELINES", "COSTS", "DEVICE_KINDS", "MGD_OPTIMIZERS", "MODES",
    "OPTIMIZERS", "OUTPUT_ACTIVATIONS",
    "PERTURBATIONS", "TASKS", "TASK_PRESETS", "TASK_SCALES", "TASK_TARGETS", "TASK_SHAPES",
    "HW_DATAPATHS", "HW_PIPELINES", "HW_ROUNDINGS", "NEURON_EVALS", "NEURON_KINDS",
    "BackpropConfig", "ConfigError", "HardwareConfig", "MGDConfig", "MGDSettings",
    "NetworkConfig", "NonIdealConfig", "TaskConfig", "acc_bits_needed", "build_config",
    "derive", "layer_parallelism", "load_config", "load_toml", "network_param_count",
    "network_sizes", "parse_assignment", "task_shape",
]
