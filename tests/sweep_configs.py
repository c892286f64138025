"""Small configs and helpers the sweep tests share (tests/test_sweep.py,
tests/test_scaling.py)."""

import csv
from pathlib import Path

# A 600-step XOR run of the float model: a sweep point that takes well under a second.
XOR_SWEEP = """\
steps = 600
eval_every = 200
[task]
name = "xor"
[network]
hidden = [2]
activation = "sigmoid"
output_activation = "sigmoid"
cost = "mse"
init_scale = 2.0
[mgd]
perturbation = "code"
mode = "weight"
dtheta = 0.05
eta = 1.0
"""


def results_rows(out: Path) -> list[dict[str, str]]:
    """The rows of a sweep's ``results.csv`` in folder ``out``."""
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))
