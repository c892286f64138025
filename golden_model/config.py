"""The toolkit's one validated configuration object.

A config is a tree of dataclasses (``MGDConfig`` with sections ``task``, ``network``,
``mgd``, ``nonideal``, ``backprop``). It is built in layers, later layers winning:

1. the dataclass defaults below;
2. the preset of the chosen task (``TASK_PRESETS``), so ``--task digits`` alone is a
   sensible run;
3. a TOML file (``--config FILE``), whose tables mirror the sections;
4. command-line overrides (``--seed 3`` or ``--set mgd.eta=0.5``).

Every field is checked by :meth:`MGDConfig.validate`; a bad value raises
:class:`ConfigError` with one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lfsr import LFSR_TAPS, max_params

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(ValueError):
    """A config field has an invalid value; the message is one line naming it."""


TASKS = ("xor", "parity", "images7", "digits", "mnist", "fashion_mnist", "cifar10")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "hard_sigmoid")
OUTPUT_ACTIVATIONS = ACTIVATIONS + ("linear",)
COSTS = ("mse", "cross_entropy")
PERTURBATIONS = ("code", "time", "frequency", "walsh")
MODES = ("weight", "node")
BASELINES = ("discrete", "analog")
OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass
class TaskConfig:
    """Which data set to train on.

    ``parity_bits`` applies to ``parity``; ``data_dir`` to the file-backed sets
    (mnist, fashion_mnist, cifar10); ``train_limit``/``test_limit`` keep the first
    samples only (0 keeps all); ``images_per_class`` and ``image_noise`` shape the
    generated 7x7 set.
    """

    name: str = "xor"
    parity_bits: int = 3
    data_dir: str = ""
    train_limit: int = 0
    test_limit: int = 0
    images_per_class: int = 50
    image_noise: float = 0.1


@dataclass
class NetworkConfig:
    """An MLP: ``hidden`` layer widths, activations, cost and initial weight scale.

    Weights start as N(0, init_scale**2 / fan_in), biases at zero.
    """

    hidden: list[int] = field(default_factory=lambda: [2])
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    cost: str = "mse"
    init_scale: float = 1.0


@dataclass
class MGDSettings:
    """The MGD algorithm (shared/MGD.md).

    ``dtheta`` is the L2 norm of the whole perturbation vector; each of the N perturbed
    quantities moves by dtheta / sqrt(N). ``tau_x``, ``tau_p``, ``tau_theta`` are in
    steps. ``clamp`` limits |C~| (0 = off). ``tau_hp`` is the analog high-pass time
    constant. ``freq_min``/``freq_max`` bound the frequency-multiplexing band in cycles
    per perturbation period.
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


@dataclass
class NonIdealConfig:
    """Hardware non-idealities, all off by default.

    ``cost_noise``: std of Gaussian noise on every cost measurement.
    ``update_noise``: std of Gaussian noise added to every parameter at every update.
    ``device_variation``: std of each neuron's midpoint and offset shifts and of the
    relative spread of its steepness and gain.
    ``weight_bits``/``weight_frac``: quantize parameters to a signed fixed-point format
    with that many total and fraction bits (round to nearest, saturate); 0 = float.
    """

    cost_noise: float = 0.0
    update_noise: float = 0.0
    device_variation: float = 0.0
    weight_bits: int = 0
    weight_frac: int = 0


@dataclass
class BackpropConfig:
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

# (n_in, n_out) of every task, known without loading it, so a config can size the
# on-chip network (hw.datapath = "mlp") when it is validated. Parity's n_in is its
# bit count, filled in by ``task_shape``.
TASK_SHAPES: dict[str, tuple[int, int]] = {
    "xor": (2, 1),
    "parity": (0, 1),
    "images7": (49, 4),
    "digits": (64, 10),
    "mnist": (784, 10),
    "fashion_mnist": (784, 10),
    "cifar10": (3072, 10),
}


def task_shape(task: TaskConfig) -> tuple[int, int]:
    """(n_in, n_out) of a task's data, the same numbers ``load_dataset`` returns."""
    n_in, n_out = TASK_SHAPES[task.name]
    return (task.parity_bits if task.name == "parity" else n_in), n_out


def network_sizes(cfg: MGDConfig) -> list[int]:
    """[n_in, hidden..., n_out]: the float model's and the on-chip network's layers."""
    n_in, n_out = task_shape(cfg.task)
    return [n_in, *cfg.network.hidden, n_out]


def network_param_count(sizes: list[int]) -> int:
    """Parameters of an MLP: W (out x in) and b (out) of every layer."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def layer_parallelism(cfg: MGDConfig) -> list[tuple[int, int]]:
    """(P, Q) of every layer of the trainer: P MAC units (neurons at a time), Q inputs
    per MAC per cycle, from ``hw.macs`` and ``hw.mac_inputs`` (0 = the whole layer).

    Raises :class:`ConfigError` naming the layer when a value does not divide it or a
    list has the wrong length.
    """
    sizes = network_sizes(cfg)
    shape = "-".join(str(s) for s in sizes)
    n_layers = len(sizes) - 1
    out = []
    per_field = {}
    for name in ("macs", "mac_inputs"):
        v = getattr(cfg.hw, name)
        items = v if isinstance(v, list) else [v] * n_layers
        if len(items) != n_layers:
            raise ConfigError(
                f"hw.{name} must have {n_layers} entries (one per layer of the {shape} "
                f"network), not {len(items)}"
            )
        per_field[name] = items
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        p = per_field["macs"][layer] or n_out
        q = per_field["mac_inputs"][layer] or n_in
        if n_out % p:
            raise ConfigError(
                f"hw.macs must divide every layer's width: layer {layer + 1} of the {shape} "
                f"network has {n_out} neurons, not a multiple of {p}"
            )
        if n_in % q:
            raise ConfigError(
                f"hw.mac_inputs must divide every layer's fan-in: layer {layer + 1} of the "
                f"{shape} network has {n_in} inputs, not a multiple of {q}"
            )
        out.append((p, q))
    return out


def acc_bits_needed(h: HardwareConfig, fan_in: int, in_bits: int, in_frac: int) -> int:
    """Width that holds any sum of ``fan_in`` products theta' * h plus the aligned bias.

    theta' is a (perturbed) parameter, |theta'| <= 2^(theta_bits-1) + 2^amp_log2 (weight
    perturbation adds at most the amplitude); |h| <= 2^(in_bits-1) (the most negative
    input); the bias is shifted left by ``in_frac`` to the product's LSB.
    """
    t = (1 << (h.theta_bits - 1)) + (1 << h.amp_log2)
    bound = fan_in * t * (1 << (in_bits - 1)) + (t << in_frac)
    return bound.bit_length() + 1


@dataclass
class HardwareConfig:
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
    samples (the data set must fit).
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


@dataclass
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
        """Check every field; raise :class:`ConfigError` on the first bad one."""
        _int(self, "seed", minimum=0)
        _int(self, "runs", minimum=1)
        _int(self, "steps", minimum=1)
        _int(self, "eval_every", minimum=1)

        t = self.task
        _choice(t, "task.name", TASKS)
        _int(t, "task.parity_bits", minimum=2, maximum=16)
        _int(t, "task.train_limit", minimum=0)
        _int(t, "task.test_limit", minimum=0)
        _int(t, "task.images_per_class", minimum=1)
        _real(t, "task.image_noise", minimum=0.0)
        if not isinstance(t.data_dir, str):
            raise ConfigError(f"task.data_dir must be a folder path, not {t.data_dir!r}")

        n = self.network
        if not isinstance(n.hidden, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in n.hidden
        ):
            raise ConfigError(
                f"network.hidden must be a list of positive integers, not {n.hidden!r}"
            )
        _choice(n, "network.activation", ACTIVATIONS)
        _choice(n, "network.output_activation", OUTPUT_ACTIVATIONS)
        _choice(n, "network.cost", COSTS)
        _real(n, "network.init_scale", minimum=0.0, strict=True)
        if n.cost == "cross_entropy" and n.output_activation != "linear":
            raise ConfigError(
                "network.output_activation must be 'linear' when network.cost is "
                f"'cross_entropy' (softmax is part of the cost), not {n.output_activation!r}"
            )

        m = self.mgd
        _choice(m, "mgd.perturbation", PERTURBATIONS)
        _choice(m, "mgd.mode", MODES)
        _choice(m, "mgd.baseline", BASELINES)
        _choice(m, "mgd.optimizer", OPTIMIZERS)
        _real(m, "mgd.dtheta", minimum=0.0, strict=True)
        _real(m, "mgd.eta", minimum=0.0)
        for name in ("tau_x", "tau_p", "tau_theta"):
            _int(m, f"mgd.{name}", minimum=1)
        _real(m, "mgd.tau_hp", minimum=0.0, strict=True)
        _real(m, "mgd.clamp", minimum=0.0)
        _real(m, "mgd.sparsity", minimum=0.0, maximum=0.99)
        _real(m, "mgd.freq_min", minimum=0.0, maximum=0.5, strict=True)
        _real(m, "mgd.freq_max", minimum=0.0, maximum=0.5)
        if m.freq_max <= m.freq_min:
            raise ConfigError(
                f"mgd.freq_max must be greater than mgd.freq_min ({m.freq_min}), "
                f"not {m.freq_max}"
            )
        if m.baseline == "analog" and m.tau_x < 2:
            raise ConfigError(
                "mgd.tau_x must be at least 2 with mgd.baseline 'analog' (the high-pass "
                f"filter restarts at every new sample, so C~ would stay 0), not {m.tau_x}"
            )
        if m.sparsity > 0 and m.perturbation != "code":
            raise ConfigError(
                f"mgd.sparsity applies to 'code' perturbation only, not {m.perturbation!r}"
            )
        _real(m, "mgd.momentum", minimum=0.0, maximum=0.999999)
        _real(m, "mgd.adam_beta1", minimum=0.0, maximum=0.999999)
        _real(m, "mgd.adam_beta2", minimum=0.0, maximum=0.999999)
        _real(m, "mgd.adam_eps", minimum=0.0, strict=True)

        q = self.nonideal
        _real(q, "nonideal.cost_noise", minimum=0.0)
        _real(q, "nonideal.update_noise", minimum=0.0)
        _real(q, "nonideal.device_variation", minimum=0.0)
        _int(q, "nonideal.weight_bits", minimum=0, maximum=64)
        _int(q, "nonideal.weight_frac", minimum=0)
        if q.weight_bits == 1:
            raise ConfigError("nonideal.weight_bits must be 0 (float) or at least 2, not 1")
        if q.weight_bits and q.weight_frac >= q.weight_bits:
            raise ConfigError(
                f"nonideal.weight_frac must be less than nonideal.weight_bits "
                f"({q.weight_bits}), not {q.weight_frac}"
            )

        b = self.backprop
        if not isinstance(b.enabled, bool):
            raise ConfigError(f"backprop.enabled must be true or false, not {b.enabled!r}")
        _real(b, "backprop.lr", minimum=0.0, strict=True)
        _choice(b, "backprop.optimizer", OPTIMIZERS)
        _int(b, "backprop.batch_size", minimum=1)
        _int(b, "backprop.updates", minimum=0)

        h = self.hw
        _int(h, "hw.n_params", minimum=1, maximum=1 << 16)
        _int(h, "hw.theta_bits", minimum=2, maximum=48)
        _int(h, "hw.theta_frac", minimum=0, maximum=h.theta_bits - 1)
        _int(h, "hw.amp_log2", minimum=0, maximum=h.theta_bits - 2)
        _int(h, "hw.cost_bits", minimum=2, maximum=48)
        _int(h, "hw.cost_frac", minimum=0, maximum=h.cost_bits - 1)
        _int(h, "hw.ctilde_bits", minimum=2, maximum=48)
        _int(h, "hw.g_bits", minimum=h.ctilde_bits + 1, maximum=62)
        _int(h, "hw.eta_shift", minimum=0, maximum=h.g_bits - 1)
        _choice(h, "hw.rounding", HW_ROUNDINGS)
        _int(h, "hw.momentum_shift", minimum=0, maximum=16)
        _int(h, "hw.v_bits", minimum=h.g_bits, maximum=62)
        _int(h, "hw.batch_log2", minimum=0, maximum=16)
        _int(h, "hw.highpass_shift", minimum=0, maximum=16)
        _int(h, "hw.clamp", minimum=0, maximum=(1 << (h.ctilde_bits - 1)) - 1)
        _int(h, "hw.lanes", minimum=0, maximum=h.n_params)
        if h.lanes and h.n_params % h.lanes:
            raise ConfigError(
                f"hw.lanes must divide hw.n_params ({h.n_params}), not {h.lanes}"
            )
        if h.lfsr_bits not in LFSR_TAPS:
            known = ", ".join(str(k) for k in LFSR_TAPS)
            raise ConfigError(
                f"hw.lfsr_bits must be one of {known} (lengths with known maximal-length "
                f"taps), not {h.lfsr_bits!r}"
            )
        _int(h, "hw.lfsr_seed", minimum=1, maximum=(1 << h.lfsr_bits) - 1)
        _int(h, "hw.counter_bits", minimum=8, maximum=64)
        _choice(h, "hw.datapath", HW_DATAPATHS)
        _int(h, "hw.x_bits", minimum=2, maximum=32)
        _int(h, "hw.x_frac", minimum=0, maximum=h.x_bits - 1)
        # Datapath widths stay where the model's int64 arithmetic cannot wrap: z (plus
        # a perturbation, doubled for tanh) shifted to the act LSB, and sums of n_out
        # squared act differences.
        _int(h, "hw.z_bits", minimum=2, maximum=32)
        _int(h, "hw.z_frac", minimum=0, maximum=h.z_bits - 1)
        _int(h, "hw.act_bits", minimum=2, maximum=24)
        # 1.0 (a saturated sigmoid, the bias input) must be representable.
        _int(h, "hw.act_frac", minimum=0, maximum=h.act_bits - 2)
        _int(h, "hw.acc_bits", minimum=2, maximum=62)
        _choice(h, "hw.z_rounding", HW_ROUNDINGS)
        _int(h, "hw.cost_shift", minimum=0, maximum=32)
        for name in ("macs", "mac_inputs"):
            _int_or_list(h, f"hw.{name}")
        _int(h, "hw.sample_memory", minimum=1, maximum=1 << 20)
        if h.datapath == "mlp":
            self._validate_datapath()
        return self

    def _validate_datapath(self) -> None:
        """Rules of the on-chip network trainer (hw.datapath = "mlp")."""
        h, m, n = self.hw, self.mgd, self.network
        sizes = network_sizes(self)
        count = network_param_count(sizes)
        shape = "-".join(str(s) for s in sizes)
        if h.n_params != count:
            raise ConfigError(
                f"hw.n_params must be {count}, the parameter count of the {shape} network, "
                f"with hw.datapath 'mlp', not {h.n_params}"
            )
        if n.cost != "mse":
            raise ConfigError(
                "network.cost must be 'mse' with hw.datapath 'mlp' (the datapath computes "
                f"a squared error), not {n.cost!r}"
            )
        if m.baseline != "discrete" or h.highpass_shift:
            raise ConfigError(
                "mgd.baseline must be 'discrete' and hw.highpass_shift 0 with hw.datapath "
                f"'mlp', not {m.baseline!r} and {h.highpass_shift}"
            )
        if h.batch_log2:
            raise ConfigError(
                "hw.batch_log2 must be 0 with hw.datapath 'mlp' (one sample per "
                f"measurement), not {h.batch_log2}"
            )
        z_max = h.theta_frac + min(h.x_frac, h.act_frac)
        if h.z_frac > z_max:
            raise ConfigError(
                f"hw.z_frac must be at most {z_max} (hw.theta_frac + the smaller of "
                "hw.x_frac and hw.act_frac: z narrows the accumulator) with hw.datapath "
                f"'mlp', not {h.z_frac}"
            )
        cost_max = 2 * h.act_frac + h.cost_shift
        if h.cost_frac > cost_max:
            raise ConfigError(
                f"hw.cost_frac must be at most {cost_max} (2 hw.act_frac + hw.cost_shift, "
                f"the squared error's LSB) with hw.datapath 'mlp', not {h.cost_frac}"
            )
        if m.mode == "node":
            self._validate_node_datapath()
        layer_parallelism(self)  # raises when a parallelism does not divide its layer
        need = max(
            acc_bits_needed(h, fan_in, *(
                (h.x_bits, h.x_frac) if layer == 0 else (h.act_bits, h.act_frac)
            ))
            for layer, fan_in in enumerate(sizes[:-1])
        )
        if h.acc_bits < need:
            raise ConfigError(
                f"hw.acc_bits must be at least {need} for the {shape} network (every "
                f"sum of products is exact), not {h.acc_bits}"
            )

    def _validate_node_datapath(self) -> None:
        """Node perturbation on the trainer: z-LSB amplitude, G_p = D_j h_p widths."""
        h = self.hw
        if h.amp_log2 > h.z_bits - 2:
            raise ConfigError(
                f"hw.amp_log2 must be at most {h.z_bits - 2} (hw.z_bits - 2) with node "
                f"perturbation (the amplitude is in z LSBs), not {h.amp_log2}"
            )
        # Layer 0's inputs are shifted to the act LSB for the outer product, so x must
        # fit the act format.
        if h.x_frac > h.act_frac:
            raise ConfigError(
                f"hw.x_frac must be at most hw.act_frac ({h.act_frac}) with node "
                "perturbation (inputs are aligned to the activation LSB in the "
                f"weight update), not {h.x_frac}"
            )
        act_int = h.act_bits - h.act_frac
        if h.x_bits - h.x_frac > act_int:
            raise ConfigError(
                f"hw.x_bits must be at most {h.x_frac + act_int} (hw.x_frac plus the "
                f"{act_int} integer bits of the act format) with node perturbation, "
                f"not {h.x_bits}"
            )
        wide = h.v_bits if h.momentum_shift else h.g_bits
        name = "hw.v_bits" if h.momentum_shift else "hw.g_bits"
        if wide + h.act_bits > 62:
            raise ConfigError(
                f"{name} must be at most {62 - h.act_bits} (62 - hw.act_bits: G_p = D_j h_p "
                f"is act_bits wider) with node perturbation, not {wide}"
            )

    def validate_hardware(self) -> MGDConfig:
        """Extra rules for generating hardware from this config (beyond ``validate``)."""
        self.validate()
        m, h = self.mgd, self.hw
        if m.tau_theta % m.tau_p:
            raise ConfigError(
                f"mgd.tau_theta must be a multiple of mgd.tau_p ({m.tau_p}) in hardware, "
                f"so an update never splits a perturbation period, not {m.tau_theta}"
            )
        if m.tau_x % m.tau_p and m.tau_p % m.tau_x:
            raise ConfigError(
                f"mgd.tau_x must divide or be a multiple of mgd.tau_p ({m.tau_p}) in "
                f"hardware, not {m.tau_x}"
            )
        if m.perturbation == "code" and h.n_params > max_params(h.lfsr_bits):
            raise ConfigError(
                f"hw.n_params must be at most {max_params(h.lfsr_bits)} with a "
                f"{h.lfsr_bits}-bit LFSR (distinct 3-bit code masks), not {h.n_params}; "
                "raise hw.lfsr_bits"
            )
        if m.sparsity > 0:
            raise ConfigError("mgd.sparsity must be 0 in hardware (sparse codes are float-only)")
        return self

    def validate_trainer(self) -> MGDConfig:
        """Extra rules of the trainer gateware (``hw.datapath = "mlp"``), beyond
        ``validate_hardware`` (which the bit-exact model needs too)."""
        self.validate_hardware()
        m, h = self.mgd, self.hw
        if h.datapath != "mlp":
            raise ConfigError(
                f"hw.datapath must be 'mlp' for the on-chip trainer, not {h.datapath!r}"
            )
        if m.perturbation == "frequency":
            raise ConfigError(
                "mgd.perturbation must be 'code', 'walsh' or 'time' for the trainer "
                "gateware (its codes come from one shared state and a per-parameter key; "
                "square waves would need a counter per parameter), not 'frequency'"
            )
        if h.x_bits - h.x_frac < 2:
            raise ConfigError(
                f"hw.x_frac must be at most {h.x_bits - 2} (hw.x_bits - 2) for the trainer "
                "gateware: the bias is the weight of a constant input 1.0 in the x format, "
                f"not {h.x_frac}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (JSON/TOML-ready)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Per-task defaults: what `mgd-hw train --task NAME` runs with no other settings.
TASK_PRESETS: dict[str, dict[str, Any]] = {
    "xor": {
        "steps": 200_000,
        "eval_every": 2_000,
        "network": {"hidden": [2], "activation": "sigmoid", "init_scale": 2.0},
        "mgd": {"dtheta": 0.05, "eta": 1.0},
        "backprop": {"lr": 0.5},
    },
    "parity": {
        "steps": 400_000,
        "eval_every": 4_000,
        "network": {"hidden": [6], "activation": "sigmoid", "init_scale": 2.0},
        "mgd": {"dtheta": 0.05, "eta": 0.2},
        "backprop": {"lr": 0.5},
    },
    "images7": {
        "steps": 100_000,
        "eval_every": 2_000,
        "network": {"hidden": [16], "activation": "sigmoid", "init_scale": 1.0},
        "mgd": {"dtheta": 0.05, "eta": 0.5},
    },
    "digits": {
        "steps": 8_000_000,
        "eval_every": 200_000,
        "network": {"hidden": [32], "activation": "sigmoid", "init_scale": 1.0},
        "mgd": {"dtheta": 0.05, "eta": 5.0, "tau_x": 100, "tau_theta": 100},
        "backprop": {"lr": 1.0, "batch_size": 1, "updates": 100_000},
    },
}
for _name in ("mnist", "fashion_mnist", "cifar10"):
    TASK_PRESETS[_name] = {
        "steps": 2_000_000,
        "eval_every": 100_000,
        "network": {"hidden": [64], "activation": "sigmoid", "init_scale": 1.0},
        "mgd": {"dtheta": 0.05, "eta": 0.3, "tau_x": 100, "tau_theta": 100},
    }


def build_config(*layers: dict[str, Any]) -> MGDConfig:
    """Merge plain-data layers over the defaults and the task preset, then validate.

    The task is read from the merged layers first, so the preset sits under them.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer)
    task_section = merged.get("task", {})
    task = task_section.get("name", TaskConfig.name) if isinstance(task_section, dict) else None
    preset = TASK_PRESETS.get(task, {}) if isinstance(task, str) else {}
    full: dict[str, Any] = {}
    _merge(full, preset)
    _merge(full, merged)
    return _from_dict(MGDConfig, full, prefix="").validate()


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file as plain data; a missing or malformed file is a ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None


def load_config(path: str | Path | None = None, *overrides: dict[str, Any]) -> MGDConfig:
    """Build a config from an optional TOML file plus override layers."""
    layers = [load_toml(path)] if path else []
    return build_config(*layers, *overrides)


def parse_assignment(text: str) -> dict[str, Any]:
    """Turn ``section.field=value`` into a nested override; the value is parsed as TOML
    (so ``[16, 8]``, ``0.5``, ``true``), falling back to a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.field=value, not {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set expects section.field=value, not {text!r}")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


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


def _get(obj: Any, dotted: str) -> Any:
    return getattr(obj, dotted.split(".")[-1])


def _int(obj: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> None:
    v = _get(obj, name)
    ok = isinstance(v, int) and not isinstance(v, bool)
    if ok and minimum is not None and v < minimum:
        ok = False
    if ok and maximum is not None and v > maximum:
        ok = False
    if not ok:
        if minimum == 1 and maximum is None:
            what = "a positive integer"
        elif maximum is None:
            what = f"an integer >= {minimum}"
        else:
            what = f"an integer from {minimum} to {maximum}"
        raise ConfigError(f"{name} must be {what}, not {v!r}")


def _real(
    obj: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
) -> None:
    v = _get(obj, name)
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if ok and minimum is not None and (v <= minimum if strict else v < minimum):
        ok = False
    if ok and maximum is not None and v > maximum:
        ok = False
    if not ok:
        lo = f"> {minimum}" if strict else f">= {minimum}"
        what = f"a number {lo}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ConfigError(f"{name} must be {what}, not {v!r}")
    setattr(obj, name.split(".")[-1], float(v))


def _int_or_list(obj: Any, name: str) -> None:
    v = _get(obj, name)
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                            for i in items):
        raise ConfigError(
            f"{name} must be an integer >= 0 or a list of them (one per layer), not {v!r}"
        )


def _choice(obj: Any, name: str, allowed: tuple[str, ...]) -> None:
    v = _get(obj, name)
    if v not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{name} must be one of {options}, not {v!r}")
