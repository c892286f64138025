"""Per-task defaults: what ``mgd-hw train --task NAME`` runs with no other settings.

``config.build_config`` lays the chosen task's preset under the user's layers.
"""

from __future__ import annotations

from typing import Any

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


