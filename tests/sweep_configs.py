"""Small configs the sweep tests share (tests/test_sweep.py, tests/test_scaling.py)."""

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
