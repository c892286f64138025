"""The integer MGD trainer model (golden_model.trainer.HwTrainer, train_hw, float_twin)
against a plain per-step integer loop built from the hardware block models, and the
example trainer configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, build_config, derive, load_config
from golden_model.cost_acc import CostAccModel
from golden_model.datapath import HwData, HwMLP
from golden_model.datasets import load_dataset
from golden_model.float_twin import float_twin
from golden_model.hw_spec import hw_spec
from golden_model.network import MLP
from golden_model.perturb_gen import PerturbGenModel
from golden_model.train_hw import train_hw
from golden_model.trainer import HwTrainer
from golden_model.trainer_image import initial_theta, sample_order
from golden_model.weight_update import WeightUpdateModel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# ----------------------------------------------------- trainer vs plain step loop


def _train_cfg(task: str, hidden: list[int], mgd: dict, hw: dict, **top) -> object:
    base = {"task": {"name": task}, "network": {"hidden": hidden}}
    cfg = build_config(base, {"mgd": mgd}, top)
    count = HwMLP.from_config(cfg).n_params
    hw = {"datapath": "mlp", "n_params": count, "lfsr_bits": 16, "theta_bits": 12,
          "theta_frac": 8, "z_frac": 8, "act_bits": 12, "act_frac": 9, "acc_bits": 32,
          "cost_frac": 10} | hw
    return build_config(base, {"mgd": mgd, "hw": hw}, top)


def _plain_training(cfg, data: HwData, steps: int):
    """Step by step with the block models: PerturbGenModel, CostAccModel and
    WeightUpdateModel (a second one holds the node accumulators D)."""
    h, m = cfg.hw, cfg.mgd
    net = HwMLP.from_config(cfg)
    node = m.mode == "node"
    n_pert = net.n_nodes if node else net.n_params
    gen = PerturbGenModel(dataclasses.replace(cfg, hw=dataclasses.replace(h, n_params=n_pert)))
    acc = CostAccModel(cfg)
    theta0, _ = initial_theta(cfg)
    wu_hw = dataclasses.replace(h, lanes=0)
    if node:
        wu_hw = dataclasses.replace(wu_hw, g_bits=h.g_bits + h.act_bits,
                                    v_bits=h.v_bits + h.act_bits,
                                    eta_shift=h.eta_shift + h.act_frac)
    wu = WeightUpdateModel(dataclasses.replace(cfg, hw=wu_hw), theta0)
    dacc = WeightUpdateModel(dataclasses.replace(cfg, hw=dataclasses.replace(
        h, n_params=net.n_nodes, lanes=0)))
    order = sample_order(len(data.x_train), cfg.seed)
    costs, cts, sat_z = [], [], 0
    h_in = None
    for n in range(steps):
        s = order[(n // m.tau_x) % len(order)]
        x, t = data.x_train[s:s + 1], data.t_train[s:s + 1]
        if n % m.tau_x == 0 or n % m.tau_theta == 0:
            out = net.forward(wu.theta, x)
            acc.tick(in_valid=1, in_cost=int(net.cost(out.y, t)[0][0]), in_baseline=1)
            h_in = [v[0] for v in out.inputs]
            sat_z += int(out.sat_z.sum())
        code = gen.code()
        out = net.forward(wu.theta, x, **({"node_codes": code[None]} if node else
                                          {"codes": code[None]}))
        sat_z += int(out.sat_z.sum())
        acc.tick(in_valid=1, in_cost=int(net.cost(out.y, t)[0][0]))
        ct = acc.outputs()["out_ctilde"]
        costs.append(int(net.cost(out.y, t)[0][0]))
        cts.append(ct)
        update = (n + 1) % m.tau_theta == 0
        seg_end = update or (n + 1) % m.tau_x == 0
        if node:
            dacc.tick(code=code, ct_valid=1, ct=ct)
            if seg_end:
                inc = np.zeros(net.n_params, dtype=np.int64)
                for l in range(net.n_layers):
                    d = dacc.G[net.node_slices[l]]
                    xin = h_in[l] * (1 << (h.act_frac - h.x_frac)) if l == 0 else h_in[l]
                    for i in range(len(d)):
                        for j in range(len(xin)):
                            inc[net.w_slices[l].start + i * len(xin) + j] = int(d[i]) * int(xin[j])
                        inc[net.b_slices[l].start + i] = int(d[i]) << h.act_frac
                wu.tick(code=inc, ct_valid=1, ct=1, update=int(update))
                dacc.G[:] = 0
        else:
            wu.tick(code=code, ct_valid=1, ct=ct, update=int(update))
        acc.tick(out_ready=1)
        gen.tick(step=1)
    return wu, dacc, np.array(costs), np.array(cts), acc.sat_count, sat_z


TRAIN_CASES = {
    "xor weight code": ("xor", [2], {"tau_x": 1, "tau_theta": 4}, {"eta_shift": 2}),
    "parity node walsh": ("parity", [3], {"mode": "node", "perturbation": "walsh",
                                          "tau_x": 2, "tau_theta": 6}, {"amp_log2": 5}),
    "xor weight time momentum": ("xor", [2], {"perturbation": "time", "tau_x": 4,
                                              "tau_p": 2, "tau_theta": 8},
                                 {"momentum_shift": 2, "v_bits": 26, "amp_log2": 5}),
    "parity node frequency long sample": ("parity", [4], {
        "mode": "node", "perturbation": "frequency", "tau_x": 6, "tau_theta": 3},
        {"amp_log2": 6, "eta_shift": 0}),
    "xor weight saturating": ("xor", [2], {"tau_x": 1, "tau_theta": 8},
                              {"ctilde_bits": 6, "g_bits": 7, "clamp": 20, "amp_log2": 7,
                               "eta_shift": 0, "z_bits": 10, "theta_bits": 10}),
    "xor node saturating": ("xor", [3], {"mode": "node", "tau_x": 2, "tau_theta": 4},
                            {"ctilde_bits": 6, "g_bits": 7, "amp_log2": 7, "eta_shift": 0}),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_trainer_equals_plain_step_loop(case) -> None:
    task, hidden, mgd, hw = TRAIN_CASES[case]
    cfg = _train_cfg(task, hidden, mgd, hw, seed=3)
    data = HwData.from_dataset(load_dataset(cfg.task), cfg.hw)
    steps = 240
    trainer = HwTrainer(cfg, data)
    traces = [trainer.advance(k, record=True) for k in (37, 1, 100, steps - 138)]
    wu, dacc, costs, cts, sat_ct, sat_z = _plain_training(cfg, data, steps)
    assert np.array_equal(np.concatenate([t.cost for t in traces]), costs)
    assert np.array_equal(np.concatenate([t.ctilde for t in traces]), cts)
    assert np.array_equal(trainer.theta, wu.theta)
    assert np.array_equal(trainer.wu.G, wu.G) and np.array_equal(trainer.wu.V, wu.V)
    assert trainer.updates == steps // cfg.mgd.tau_theta
    counters = trainer.counters()
    assert counters["ctilde"] == sat_ct and counters["z"] == sat_z
    assert counters["g"] == wu.sat_g and counters["theta"] == wu.sat_theta
    assert counters["d"] == dacc.sat_g
    if "saturating" in case:
        assert counters["ctilde"] > 0 and counters["g"] + counters["d"] > 0
    assert not np.array_equal(trainer.theta, initial_theta(cfg)[0])  # it moved


def test_trainer_records_theta_at_a_stride() -> None:
    cfg = _train_cfg("xor", [2], {"tau_theta": 2}, {})
    trainer = HwTrainer(cfg, HwData.from_dataset(load_dataset(cfg.task), cfg.hw),
                        record_theta_every=3)
    trainer.advance(20)
    assert [s for s, _ in trainer.thetas] == [6, 12, 18]


# ------------------------------------------------------------- node perturbation


def test_node_accumulators_are_finite_differences_with_one_hot_codes() -> None:
    # time codes: step j perturbs neuron j alone, so D_j = C(z_j + a) - C0 exactly.
    cfg = _train_cfg("parity", [4], {"mode": "node", "perturbation": "time", "tau_x": 6,
                                     "tau_theta": 12}, {"amp_log2": 6})
    data = HwData.from_dataset(load_dataset(cfg.task), cfg.hw)
    trainer = HwTrainer(cfg, data)
    trainer.advance(5)
    net, s = trainer.net, trainer.order[0]
    x, t = data.x_train[s:s + 1], data.t_train[s:s + 1]
    c0 = net.cost(net.forward(trainer.theta, x).y, t)[0][0]
    fd = [net.cost(net.forward(trainer.theta, x, node_codes=np.eye(5, dtype=int)[j:j + 1]).y,
                   t)[0][0] - c0 for j in range(5)]
    assert trainer.D.tolist() == fd and any(fd)
    # Step 5 perturbs neuron 0 again and ends the segment: G_p = D_j * h_p, with h the
    # baseline inputs, and D is cleared.
    trainer.advance(1)
    d = np.array(fd) * [2, 1, 1, 1, 1]
    h0 = net.forward(trainer.theta, x).inputs
    w1 = trainer.wu.G[net.w_slices[0]].reshape(4, 3)
    assert np.array_equal(w1, np.outer(d[:4], h0[0][0] << (cfg.hw.act_frac - cfg.hw.x_frac)))
    assert np.array_equal(trainer.wu.G[net.w_slices[1]], d[4] * h0[1][0])
    assert np.array_equal(trainer.wu.G[net.b_slices[1]], d[4:] << cfg.hw.act_frac)
    assert not trainer.D.any()


def test_node_estimate_points_along_the_true_gradient() -> None:
    cfg = _train_cfg("parity", [6], {"mode": "node", "tau_x": 8000, "tau_theta": 8000},
                     {"amp_log2": 4, "g_bits": 40, "v_bits": 40})
    data = load_dataset(cfg.task)
    trainer = HwTrainer(cfg, HwData.from_dataset(data, cfg.hw))
    trainer.advance(1000)
    trainer._flush(trainer._h0)  # the segment's partial estimate, as the update would see it
    s = trainer.order[0]
    net = MLP(trainer.net.sizes, "sigmoid", "sigmoid", "mse")
    theta = trainer.theta[None] / (1 << cfg.hw.theta_frac)
    grad, _ = net.gradient(theta, data.x_train[None, s:s + 1], data.y_train[None, s:s + 1])
    g = trainer.wu.G.astype(float)
    cos = g @ grad[0] / np.linalg.norm(g) / np.linalg.norm(grad[0])
    assert cos > 0.95


# --------------------------------------------------------------- config, examples


def test_trainer_needs_the_mlp_datapath() -> None:
    cfg = build_config({"task": {"name": "xor"}})
    data = HwData.from_dataset(load_dataset(cfg.task), cfg.hw)
    with pytest.raises(ConfigError, match="hw.datapath must be 'mlp' for the on-chip trainer"):
        HwTrainer(cfg, data)


def test_float_twin_maps_the_shifts() -> None:
    cfg = load_config(EXAMPLES / "hw_xor.toml")
    twin = float_twin(cfg)
    h = cfg.hw
    a = 2.0 ** (h.amp_log2 - h.theta_frac)
    assert twin.mgd.dtheta == pytest.approx(a * 3)  # sqrt(9) parameters
    eta = 9 * a * 2.0 ** -h.theta_frac / 2.0 ** (h.eta_shift + h.cost_shift - h.cost_frac)
    assert twin.mgd.eta == pytest.approx(eta)
    assert twin.network == cfg.network and twin.mgd.tau_theta == cfg.mgd.tau_theta


@pytest.mark.parametrize("name", ["hw_xor", "hw_parity3", "hw_digits", "hw_digits_node"])
def test_example_trainer_configs_are_hardware_valid(name) -> None:
    cfg = load_config(EXAMPLES / f"{name}.toml")
    assert hw_spec(cfg, gateware=False).cfg.hw.datapath == "mlp"
    assert cfg.hw.n_params == HwMLP.from_config(cfg).n_params


def test_xor_example_reaches_100_percent() -> None:
    cfg = load_config(EXAMPLES / "hw_xor.toml", {"steps": 12000, "eval_every": 2000})
    res = train_hw(cfg, load_dataset(cfg.task))
    assert res.history.array("test_acc")[-1, 0] == 1.0
    assert res.counters["theta"] == 0


@pytest.mark.slow
def test_parity3_example_is_solved() -> None:
    cfg = load_config(EXAMPLES / "hw_parity3.toml")
    data = load_dataset(cfg.task)
    solved = [train_hw(cfg, data, r).history.array("test_acc")[-1, 0] == 1.0
              for r in range(cfg.runs)]
    assert sum(solved) >= 0.8 * cfg.runs, solved


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hw_digits", "hw_digits_node"])
def test_digits_example_reaches_90_and_stays_within_3_points_of_float(name) -> None:
    from golden_model.train import train_mgd

    runs = 3
    cfg = load_config(EXAMPLES / f"{name}.toml")
    data = load_dataset(cfg.task)
    fixed = [train_hw(cfg, data, r).history.array("test_acc")[-1, 0] for r in range(runs)]
    twin = derive(float_twin(cfg), {"runs": runs})
    flt = train_mgd(twin, data).history.array("test_acc")[-1]
    assert min(fixed) >= 0.9, fixed
    assert np.median(fixed) >= np.median(flt) - 0.03, (fixed, flt)
