"""Sizes derived from a config: task shapes, layer sizes, parameter counts, the
trainer's per-layer parallelism and the MAC accumulator width it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ConfigError

if TYPE_CHECKING:
    from .config import HardwareConfig, MGDConfig, TaskConfig

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
    """(n_in, n_out) of a task's data, the same numbers ``load_dataset`` returns.

    A user's data: ``task.inputs``/``task.outputs`` when set; else a "file" task's file
    is read (once, cached) for them, and an "arrays" task is refused in one line.
    """
    if task.name in ("file", "arrays"):
        if task.inputs and task.outputs:
            return task.inputs, task.outputs
        if task.name == "arrays":
            raise ConfigError(
                "task.inputs and task.outputs must be set for task 'arrays' (the data's "
                "sizes; mgd_hw.api.config(data=...) sets them)")
        from .dataset_user import file_shape

        n_in, n_out = file_shape(task)
        return task.inputs or n_in, task.outputs or n_out
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
