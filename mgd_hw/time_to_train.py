"""Projected time-to-train of the on-chip trainer against backprop on this CPU.

For a trainer config (hw.datapath = "mlp"):

1. steps to the target accuracy, from the bit-exact model (``train_hw.train_hw``,
   evaluated every ``eval_every`` steps). Every parallelism setting gives the same
   numbers, so the steps are the same for all of them;
2. cycles to the target for each parallelism setting: ``hw_layout.Schedule`` (the
   trainer's timing is a closed form of the config), divided by the setting's Fmax
   (measured by ``gateware.synth`` when the synth extra is installed, else the
   ``--fmax`` given): the projected FPGA time;
3. the wall-clock time backprop takes on this machine's CPU to reach the same test
   accuracy on the same network, initial weights and task: PyTorch when it is
   installed, else the NumPy baseline (``MLP.gradient``); training time only, the
   evaluations are not counted;
4. the time per step the trainer would need for a 100x advantage over backprop.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from golden_model.config import MGDConfig, derive, network_sizes
from golden_model.datasets import Dataset
from golden_model.float_twin import float_twin
from golden_model.hw_spec import trainer_spec
from golden_model.train import evaluate, initial_params, make_network
from golden_model.train_hw import train_hw

BACKPROP_STREAM = 7  # the seed-sequence key of the backprop baseline's sample draws

# Parallelism settings of the projection: one MAC per layer ... fully parallel.
SETTINGS = {
    "1 MAC per layer": {"macs": 1, "mac_inputs": 1},
    "1 MAC per neuron": {"macs": 0, "mac_inputs": 1},
    "fully parallel": {"macs": 0, "mac_inputs": 0},
}


@dataclass
class SettingProjection:
    name: str
    macs: object
    mac_inputs: object
    cycles_per_step: float
    cycles_to_target: int | None
    fmax_mhz: float
    fmax_source: str
    fpga_seconds: float | None
    speedup: float | None
    step_ns_for_100x: float | None


@dataclass
class Projection:
    task: str
    network: list[int]
    target: float
    steps_to_target: int | None
    mgd_max_test_acc: float
    backprop_engine: str
    backprop_seconds: float | None
    backprop_updates: int | None
    backprop_max_test_acc: float
    settings: list[SettingProjection] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def steps_to_target(cfg: MGDConfig, data: Dataset, target: float) -> tuple[int | None, float]:
    """First evaluated step where the fixed-point model's test accuracy reaches
    ``target``, and the best test accuracy of the run."""
    res = train_hw(cfg, data, 0)
    acc = res.history.array("test_acc")[:, 0]
    return res.history.first_step_reaching(target)[0], float(acc.max())


def cycles_for(cfg: MGDConfig, steps: int, setting: dict) -> tuple[int, float]:
    """(cycles of ``steps`` steps, cycles per step) with a parallelism ``setting``."""
    start = trainer_spec(derive(cfg, {"hw": setting})).step_cycles(steps)
    return start, float(start / max(steps, 1))


def _sample_rng(cfg: MGDConfig) -> np.random.Generator:
    """The backprop baseline's sample draws (its own stream of the config's seed)."""
    return np.random.default_rng([cfg.seed, BACKPROP_STREAM])


def _numpy_backprop(cfg: MGDConfig, data: Dataset, target: float, max_updates: int,
                    check_every: int) -> tuple[float | None, int | None, float]:
    """Training seconds and updates until the test accuracy reaches ``target``."""
    net = make_network(cfg, data)
    theta = initial_params(cfg, net)[0]
    rng = _sample_rng(cfg)
    b = cfg.backprop
    spent, best = 0.0, 0.0
    for u in range(1, max_updates + 1):
        start = time.perf_counter()
        idx = rng.integers(0, len(data.x_train), b.batch_size)
        grad, _ = net.gradient(theta[None], data.x_train[idx][None], data.y_train[idx][None],
                               None)
        theta -= b.lr * grad[0]
        spent += time.perf_counter() - start
        if u % check_every == 0:
            _, acc = evaluate(net, theta[None], None, data.x_test, data.y_test, data.labels_test)
            acc = float(acc[0])
            best = max(best, acc)
            if acc >= target:
                return spent, u, best
    return None, None, best


def _torch_backprop(cfg: MGDConfig, data: Dataset, target: float, max_updates: int,
                    check_every: int) -> tuple[float | None, int | None, float]:
    import torch

    net = make_network(cfg, data)
    theta0 = initial_params(cfg, net)[0]
    sizes = network_sizes(cfg)
    acts = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
            "hard_sigmoid": torch.nn.Hardsigmoid, "linear": torch.nn.Identity}
    layers, pos = [], 0
    n = cfg.network
    names = [n.activation] * (len(sizes) - 2) + [n.output_activation]
    for (n_in, n_out), act in zip(zip(sizes[:-1], sizes[1:], strict=True), names, strict=True):
        lin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            w = theta0[pos:pos + n_in * n_out].reshape(n_out, n_in)
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(theta0[pos + n_in * n_out:pos + (n_in + 1) * n_out]))
        pos += (n_in + 1) * n_out
        layers += [lin, acts[act]()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.backprop.lr)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    xt = torch.from_numpy(data.x_test)
    labels = data.labels_test
    # the NumPy baseline's sample draws, so both engines walk the same trajectory
    rng = _sample_rng(cfg)
    spent, best, b = 0.0, 0.0, cfg.backprop.batch_size
    for u in range(1, max_updates + 1):
        start = time.perf_counter()
        idx = torch.from_numpy(rng.integers(0, len(x), b))
        opt.zero_grad()
        # the float model's MSE: mean over outputs of the squared error
        loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
        loss.backward()
        opt.step()
        spent += time.perf_counter() - start
        if u % check_every == 0:
            with torch.no_grad():
                out = model(xt).numpy()
            pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(1)
            acc = float(np.mean(pred == labels))
            best = max(best, acc)
            if acc >= target:
                return spent, u, best
    return None, None, best


def backprop_time(cfg: MGDConfig, data: Dataset, target: float, max_updates: int = 200_000,
                  check_every: int = 100) -> tuple[str, float | None, int | None, float]:
    """(engine, seconds, updates, best accuracy) of backprop to ``target`` on this CPU."""
    fcfg = float_twin(cfg)
    try:
        import torch  # noqa: F401

        engine, fn = "pytorch", _torch_backprop
    except ImportError:
        engine, fn = "numpy", _numpy_backprop
    secs, updates, best = fn(fcfg, data, target, max_updates, check_every)
    return engine, secs, updates, best


def project(cfg: MGDConfig, data: Dataset, target: float, fmax: dict[str, tuple[float, str]],
            settings: dict[str, dict] | None = None) -> Projection:
    """The whole projection (module docstring); ``fmax`` maps setting names to
    (MHz, where the figure comes from)."""
    settings = settings or SETTINGS
    steps, mgd_best = steps_to_target(cfg, data, target)
    engine, bp_secs, bp_updates, bp_best = backprop_time(cfg, data, target)
    proj = Projection(cfg.task.name, network_sizes(cfg), target, steps, mgd_best, engine,
                      bp_secs, bp_updates, bp_best)
    for name, setting in settings.items():
        mhz, source = fmax[name]
        cycles, per_step = cycles_for(cfg, steps or cfg.steps, setting)
        fpga = cycles / (mhz * 1e6) if steps is not None else None
        speedup = bp_secs / fpga if fpga and bp_secs else None
        need = bp_secs / 100 / steps * 1e9 if (bp_secs and steps) else None
        proj.settings.append(SettingProjection(
            name, setting["macs"], setting["mac_inputs"], per_step,
            cycles if steps is not None else None, mhz, source, fpga, speedup, need))
    return proj


def format_projection(p: Projection) -> str:
    net = "-".join(str(s) for s in p.network)
    lines = [f"{p.task} {net}, target test accuracy {p.target:.2f}"]
    if p.steps_to_target is None:
        lines.append(f"  MGD (bit-exact model) did not reach it (best {p.mgd_max_test_acc:.3f})")
    else:
        lines.append(f"  MGD (bit-exact model): {p.steps_to_target:,} steps")
    if p.backprop_seconds is None:
        lines.append(f"  backprop ({p.backprop_engine}, this CPU) did not reach it "
                     f"(best {p.backprop_max_test_acc:.3f})")
    else:
        lines.append(f"  backprop ({p.backprop_engine}, this CPU): {p.backprop_updates:,} "
                     f"updates in {p.backprop_seconds:.3f} s")
    lines.append(f"  {'setting':<18} {'cycles/step':>11} {'cycles':>14} {'Fmax MHz':>9} "
                 f"{'FPGA time':>11} {'vs backprop':>11} {'step for 100x':>14}")
    for s in p.settings:
        fpga = f"{s.fpga_seconds * 1e3:.3f} ms" if s.fpga_seconds is not None else "-"
        sp = f"{s.speedup:.1f}x" if s.speedup else "-"
        need = f"{s.step_ns_for_100x:.1f} ns" if s.step_ns_for_100x else "-"
        cyc = f"{s.cycles_to_target:,}" if s.cycles_to_target is not None else "-"
        lines.append(f"  {s.name:<18} {s.cycles_per_step:>11.1f} {cyc:>14} "
                     f"{s.fmax_mhz:>7.1f}{'*' if s.fmax_source != 'synth' else ' '} "
                     f"{fpga:>11} {sp:>11} {need:>14}")
    if any(s.fmax_source != "synth" for s in p.settings):
        lines.append("  * Fmax given, not measured (install the synth extra for nextpnr's figure)")
    return "\n".join(lines)
