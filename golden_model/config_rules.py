"""Every rule a config must satisfy, in three tiers.

- :func:`check_config`: each field's type and range, and the rules between fields
  (the float model needs no more); ``config.build_config`` runs it;
- :func:`check_hardware`: a hardware config (the bit-exact models and the gateware);
- :func:`check_trainer`: the on-chip trainer gateware (hw.datapath = "mlp").

Each raises :class:`~golden_model.config.ConfigError` with one line naming the field,
its value and what is allowed. ``config.build_config`` runs the first, ``hw_spec.hw_spec`` the
other two; nothing else validates.
"""

from __future__ import annotations

import math
from typing import Any

from .config import (
    ACTIVATIONS,
    BASELINES,
    COSTS,
    DEVICE_KINDS,
    HW_DATAPATHS,
    HW_PIPELINES,
    HW_ROUNDINGS,
    MGD_OPTIMIZERS,
    MODES,
    NEURON_EVALS,
    NEURON_KINDS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PERTURBATIONS,
    TASK_SCALES,
    TASK_TARGETS,
    TASKS,
    ConfigError,
    MGDConfig,
    acc_bits_needed,
    layer_parallelism,
    network_param_count,
    network_sizes,
)
from .lfsr import LFSR_TAPS, max_params


def check_config(cfg: MGDConfig) -> None:
    """Check every field; raise :class:`ConfigError` on the first bad one."""
    _check_top(cfg)
    _check_task(cfg)
    _check_network(cfg)
    _check_mgd(cfg)
    _check_nonideal(cfg)
    _check_backprop(cfg)
    _check_hw(cfg)


def _check_top(cfg: MGDConfig) -> None:
    _int(cfg, "seed", minimum=0)
    _int(cfg, "runs", minimum=1)
    _int(cfg, "steps", minimum=1)
    _int(cfg, "eval_every", minimum=1)


def _check_task(cfg: MGDConfig) -> None:
    t = cfg.task
    _choice(t, "task.name", TASKS)
    _int(t, "task.parity_bits", minimum=2, maximum=16)
    _int(t, "task.train_limit", minimum=0)
    _int(t, "task.test_limit", minimum=0)
    _int(t, "task.images_per_class", minimum=1)
    _real(t, "task.image_noise", minimum=0.0)
    if not isinstance(t.data_dir, str):
        raise ConfigError(f"task.data_dir must be a folder path, not {t.data_dir!r}")
    _choice(t, "task.target", TASK_TARGETS)
    _choice(t, "task.scale", TASK_SCALES)
    _real(t, "task.test_fraction", minimum=0.0, maximum=0.95)
    _int(t, "task.split_seed", minimum=0)
    _int(t, "task.inputs", minimum=0)
    _int(t, "task.outputs", minimum=0)
    if not isinstance(t.path, str):
        raise ConfigError(f"task.path must be a file path, not {t.path!r}")
    if t.name == "file" and not t.path.lower().endswith((".npz", ".csv")):
        raise ConfigError(
            f"task.path must name an .npz or .csv file with task.name 'file', not {t.path!r}")
    if t.name != "file" and t.path:
        raise ConfigError(f"task.path applies to task.name 'file' only, not {t.name!r}")
    if t.name not in ("file", "arrays") and (t.inputs or t.outputs):
        raise ConfigError(
            f"task.inputs and task.outputs apply to a user's data (task.name 'file' or "
            f"'arrays'); task {t.name!r} has its own sizes")


def _check_network(cfg: MGDConfig) -> None:
    n = cfg.network
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


def _check_mgd(cfg: MGDConfig) -> None:
    m = cfg.mgd
    _choice(m, "mgd.perturbation", PERTURBATIONS)
    _choice(m, "mgd.mode", MODES)
    _choice(m, "mgd.baseline", BASELINES)
    _choice(m, "mgd.optimizer", MGD_OPTIMIZERS)
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
    _int(m, "mgd.transfer_every", minimum=1)
    _real(m, "mgd.transfer_lr", minimum=0.0, strict=True)
    _real(m, "mgd.transfer_gamma", minimum=0.0)


def _check_nonideal(cfg: MGDConfig) -> None:
    q = cfg.nonideal
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
    _check_neurons(cfg)
    _check_devices(cfg)


def _check_neurons(cfg: MGDConfig) -> None:
    """The stochastic hidden neurons (nonideal.neuron_*)."""
    q = cfg.nonideal
    _choice(q, "nonideal.neuron_noise", NEURON_KINDS)
    _real(q, "nonideal.neuron_std", minimum=0.0)
    for name in ("neuron_scale", "neuron_offset"):
        v = getattr(q, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"nonideal.{name} must be a finite number, not {v!r}")
    _choice(q, "nonideal.neuron_eval", NEURON_EVALS)
    if not isinstance(q.neuron_device, str):
        raise ConfigError(f"nonideal.neuron_device must be a file path, not {q.neuron_device!r}")
    kind = q.neuron_noise
    if q.neuron_std > 0 and kind != "gaussian":
        raise ConfigError(f"nonideal.neuron_std applies to nonideal.neuron_noise 'gaussian' "
                          f"only, not {kind!r} (set it to 0)")
    if kind == "device":
        if not q.neuron_device.lower().endswith((".npz", ".json")):
            raise ConfigError("nonideal.neuron_device must name an .npz or .json device file "
                              f"with nonideal.neuron_noise 'device', not {q.neuron_device!r}")
        if q.device_variation > 0:
            raise ConfigError("nonideal.device_variation must be 0 with nonideal.neuron_noise "
                              "'device' (the device file is the neuron's whole curve)")
    elif q.neuron_device:
        raise ConfigError(f"nonideal.neuron_device applies to nonideal.neuron_noise 'device' "
                          f"only, not {kind!r}")
    if kind != "none" and len(cfg.network.hidden) == 0:
        raise ConfigError("nonideal.neuron_noise needs a hidden layer (network.hidden is "
                          "empty; the output layer stays deterministic)")


def _check_devices(cfg: MGDConfig) -> None:
    """The pulsed crosspoint devices (docs/devices.md) and what they exclude."""
    q = cfg.nonideal
    _choice(q, "nonideal.device", DEVICE_KINDS)
    _real(q, "nonideal.dw_min", minimum=0.0, strict=True)
    _real(q, "nonideal.asymmetry", minimum=0.0, maximum=1.0)
    _real(q, "nonideal.up_down", minimum=-1.0, maximum=1.0)
    if abs(q.up_down) == 1.0:
        raise ConfigError(
            f"nonideal.up_down must be between -1 and 1 (exclusive: a step of 0 in one "
            f"direction), not {q.up_down!r}")
    _real(q, "nonideal.w_max", minimum=0.0, strict=True)
    _real(q, "nonideal.pulse_noise", minimum=0.0, maximum=1.0)
    _real(q, "nonideal.dw_min_dtod", minimum=0.0, maximum=1.0)
    _real(q, "nonideal.up_down_dtod", minimum=0.0, maximum=1.0)
    _int(q, "nonideal.max_pulses", minimum=1, maximum=1000)
    if not isinstance(q.zero_shift, bool):
        raise ConfigError(f"nonideal.zero_shift must be true or false, not {q.zero_shift!r}")
    _real(q, "nonideal.zero_shift_error", minimum=0.0)
    if q.zero_shift_error > 0 and not q.zero_shift:
        raise ConfigError(f"nonideal.zero_shift_error needs nonideal.zero_shift = true (it "
                          f"is the reference's error), not {q.zero_shift_error}")
    if q.dw_min >= q.w_max:
        raise ConfigError(
            f"nonideal.dw_min must be less than nonideal.w_max ({q.w_max}), not {q.dw_min}")
    if q.device == "none":
        if q.zero_shift:
            raise ConfigError("nonideal.zero_shift needs nonideal.device 'softbounds' (it "
                              "reads each device less its symmetry point), not 'none'")
        if cfg.mgd.optimizer == "tiki_taka":
            raise ConfigError(
                "mgd.optimizer 'tiki_taka' needs nonideal.device 'softbounds' (its arrays "
                "are pulsed devices), not 'none'")
        return
    if q.weight_bits:
        raise ConfigError(
            f"nonideal.weight_bits must be 0 with nonideal.device {q.device!r} (the "
            f"pulse step dw_min is the weight grid), not {q.weight_bits}")
    if q.update_noise > 0:
        raise ConfigError(
            f"nonideal.update_noise must be 0 with nonideal.device {q.device!r} (use "
            f"nonideal.pulse_noise), not {q.update_noise}")


def _check_backprop(cfg: MGDConfig) -> None:
    b = cfg.backprop
    if not isinstance(b.enabled, bool):
        raise ConfigError(f"backprop.enabled must be true or false, not {b.enabled!r}")
    _real(b, "backprop.lr", minimum=0.0, strict=True)
    _choice(b, "backprop.optimizer", OPTIMIZERS)
    _int(b, "backprop.batch_size", minimum=1)
    _int(b, "backprop.updates", minimum=0)


def _check_hw(cfg: MGDConfig) -> None:
    h = cfg.hw
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
    _choice(h, "hw.pipeline", HW_PIPELINES)
    if h.datapath == "mlp":
        _check_datapath(cfg)




def _check_datapath(cfg: MGDConfig) -> None:
    """Rules of the on-chip network trainer (hw.datapath = "mlp")."""
    h, m, n = cfg.hw, cfg.mgd, cfg.network
    sizes = network_sizes(cfg)
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
        _check_node_datapath(cfg)
    layer_parallelism(cfg)  # raises when a parallelism does not divide its layer
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

def _check_node_datapath(cfg: MGDConfig) -> None:
    """Node perturbation on the trainer: z-LSB amplitude, G_p = D_j h_p widths."""
    h = cfg.hw
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



def check_hardware(cfg: MGDConfig) -> None:
    """Extra rules of a hardware config (the block models, the gateware and the trainer
    model), beyond :func:`check_config`, which ``build_config`` ran."""
    m, h = cfg.mgd, cfg.hw
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
    if cfg.nonideal.neuron_noise != "none":
        raise ConfigError("nonideal.neuron_noise must be 'none' in hardware (stochastic "
                          f"neurons are float-model only), not {cfg.nonideal.neuron_noise!r}")
    if cfg.nonideal.device != "none":
        raise ConfigError(
            f"nonideal.device must be 'none' in hardware (pulsed devices are float-only), "
            f"not {cfg.nonideal.device!r}")

def check_trainer(cfg: MGDConfig) -> None:
    """Extra rules of the trainer gateware (``hw.datapath = "mlp"``), beyond
    :func:`check_hardware` (which the bit-exact model needs too); call that first."""
    m, h = cfg.mgd, cfg.hw
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
    if h.pipeline == "stream":
        from .stream_timing import StreamTiming

        need = StreamTiming.from_config(cfg).min_tau_theta
        if m.tau_theta < need:
            raise ConfigError(
                f"mgd.tau_theta must be at least {need} with hw.pipeline 'stream' at this "
                "parallelism (the pipeline's depth in slots plus one, so one update "
                f"reaches every layer before the next begins), not {m.tau_theta}"
            )


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
