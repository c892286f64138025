"""The scaling study's commands (docs/scaling.md): the backprop sweep model, the
gradient-cosine table against width (``mgd-hw gradcheck --widths``), the crossover
against tuned backprop (``bench/scaling_crossover.py``), and all of them on a
Fashion-MNIST folder of tiny files in the real IDX format."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from sweep_configs import XOR_SWEEP
from sweep_configs import results_rows as _rows

from golden_model.config import ConfigError, load_config
from golden_model.datasets import load_dataset
from golden_model.diagnostics import gradient_cosine, log_checkpoints
from golden_model.train import train_backprop
from mgd_hw import crossover, grad_scaling, sweep, sweep_store
from mgd_hw.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

XOR = XOR_SWEEP + """\
[backprop]
lr = 10.0
batch_size = 2
updates = 100
"""


@pytest.fixture
def xor_config(tmp_path: Path) -> Path:
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    return path


# --- backprop as a sweep model ------------------------------------------------------------


def test_backprop_checkpoints_match_the_plain_run(xor_config: Path) -> None:
    """Evaluating at chosen update counts changes no number: the accuracy after 100
    updates is the plain run's, and the history is at exactly those counts."""
    cfg = load_config(xor_config, {"runs": 2})
    data = load_dataset(cfg.task, cfg.seed)
    plain = train_backprop(cfg, data)
    marked = train_backprop(cfg, data, checkpoints=[1, 7, 30, 100])
    assert marked.history.steps == [0, 1, 7, 30, 100]
    np.testing.assert_array_equal(marked.theta, plain.theta)
    np.testing.assert_array_equal(marked.history.array("test_acc")[-1],
                                  plain.history.array("test_acc")[-1])


def test_backprop_task_steps_are_updates_times_batch(xor_config: Path) -> None:
    payload = (load_config(xor_config).to_dict(), sweep.Task((("backprop.lr", "10.0"),), 1),
               "backprop")
    rec = sweep.run_task(payload)
    assert rec["model"] == "backprop"
    assert rec["updates"] == [0, *log_checkpoints(100, 20)]
    assert rec["steps"] == [2 * u for u in rec["updates"]]
    # run 1 of the sweep is run 1 of the ensemble (seed + 1)
    cfg = load_config(xor_config, {"runs": 2})
    ref = train_backprop(cfg, load_dataset(cfg.task, cfg.seed),
                         checkpoints=log_checkpoints(100, 20))
    assert rec["test_acc"] == list(ref.history.array("test_acc")[:, 1])


def test_backprop_model_needs_a_float_config() -> None:
    trainer = load_config(EXAMPLES / "hw_xor.toml")
    with pytest.raises(ConfigError, match=r"^--model backprop trains the float model's "
                       r"network: give a float config \(hw.datapath = 'none'\), not "
                       r"hw.datapath = 'mlp'$"):
        sweep.pick_model(trainer, "backprop")


def test_backprop_sweep_csv(xor_config: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    code = main(["sweep", "--config", str(xor_config), "--model", "backprop",
                 "--grid", "backprop.batch_size=1,4", "--out", str(out), "--workers", "1",
                 "--targets", "0.75,1", "--quiet"])
    assert code == 0
    rows = _rows(out)
    assert [r["model"] for r in rows] == ["backprop", "backprop"]
    assert [int(r["steps"]) for r in rows] == [100, 400]  # 100 updates of 1 and 4 samples
    for r, batch in zip(rows, (1, 4), strict=True):
        for t in ("0.75", "1"):
            if r[f"steps_to_{t}"]:
                assert int(r[f"steps_to_{t}"]) == batch * int(r[f"updates_to_{t}"])
            else:
                assert r[f"updates_to_{t}"] == ""
    assert any(r["steps_to_1"] for r in rows)  # the comparison above is not vacuous


def test_updates_column_of_a_record_without_updates() -> None:
    rec = {"steps": [0, 10, 20], "test_acc": [0.1, 0.95, 0.97]}
    assert sweep_store.steps_to(rec, 0.9) == 10
    assert sweep_store.steps_to(rec, 0.9, "updates") is None
    rec["updates"] = [0, 1, 2]
    assert sweep_store.steps_to(rec, 0.96, "updates") == 2


def test_mgd_records_carry_updates(xor_config: Path) -> None:
    payload = (load_config(xor_config, {"mgd": {"tau_theta": 4}}).to_dict(),
               sweep.Task((("mgd.eta", "1.0"),), 0), "float")
    rec = sweep.run_task(payload)
    assert rec["steps"] == [0, 200, 400, 600]
    assert rec["updates"] == [0, 50, 100, 150]


# --- gradient cosine against width ------------------------------------------------------


def test_stop_at_ends_when_every_run_reached_the_level(xor_config: Path) -> None:
    cfg = load_config(xor_config, {"runs": 3})
    data = load_dataset(cfg.task, cfg.seed)
    points = log_checkpoints(5000, 20)
    full = gradient_cosine(cfg, data, points)
    short = gradient_cosine(cfg, data, points, stop_at=0.9)
    assert len(short.steps) < len(full.steps)
    assert short.steps_each(0.9) == full.steps_each(0.9)
    assert (short.cosine >= 0.9).any(axis=0).all()
    assert not (short.cosine[:-1] >= 0.9).any(axis=0).all()
    np.testing.assert_array_equal(short.cosine, full.cosine[:len(short.steps)])


def test_median_steps_counts_never_as_infinite() -> None:
    assert grad_scaling.median_steps([10, 30, None]) == 30
    assert grad_scaling.median_steps([10, None, None]) is None
    assert grad_scaling.median_steps([10, 20, 30, 40]) == 25


def test_power_fit_recovers_the_exponent() -> None:
    pts = [grad_scaling.WidthPoint(w, "weight", n, 0, n, [], 7.0 * n ** 1.2, 0.0)
           for w, n in ((8, 610), (16, 1210), (32, 2410))]
    pts.append(grad_scaling.WidthPoint(64, "weight", 4810, 0, 4810, [None], None, 0.0))
    fit = grad_scaling.fit_power(pts, "weight")
    assert fit.points == 3
    assert fit.exponent == pytest.approx(1.2)
    assert fit.coefficient == pytest.approx(7.0)
    assert grad_scaling.fit_power(pts, "node") is None


def test_gradcheck_widths_table(xor_config: Path, capsys) -> None:
    code = main(["gradcheck", "--config", str(xor_config), "--set", "runs=3",
                 "--widths", "2,4", "--max-steps", "20000", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    pts = res["points"]
    assert [(p["width"], p["mode"]) for p in pts] == [
        (2, "weight"), (2, "node"), (4, "weight"), (4, "node")]
    assert [p["params"] for p in pts] == [9, 9, 17, 17]
    assert [p["neurons"] for p in pts] == [3, 3, 5, 5]
    assert [p["perturbed"] for p in pts] == [9, 3, 17, 5]
    # the table's figures are the gradient_cosine curves' of each width
    cfg = load_config(xor_config, {"runs": 3, "network": {"hidden": [4]}})
    curve = gradient_cosine(cfg, load_dataset(cfg.task, cfg.seed),
                            log_checkpoints(20000, 20))
    assert pts[2]["steps"] == curve.steps_each(0.95)
    assert pts[2]["median"] == grad_scaling.median_steps(curve.steps_each(0.95))
    assert [f["mode"] for f in res["fits"]] == ["weight", "node"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--widths", "8,x"], "--widths takes hidden widths like 8,16,32, not '8,x'"),
    (["--widths", "8,8"], "--widths takes distinct positive widths like 8,16,32, not '8,8'"),
    (["--widths", "8", "--level", "1"], "--level must be a cosine in (0, 1), not 1.0"),
])
def test_gradcheck_widths_errors(xor_config: Path, capsys, extra: list[str],
                                 message: str) -> None:
    assert main(["gradcheck", "--config", str(xor_config), *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"mgd-hw: error: {message}\n"


# --- the crossover and Fashion-MNIST from files ------------------------------------------


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST folder in the real IDX format: 60 train, 30 test images of
    28x28 whose class shows in which quarter of the image is bright (learnable)."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for prefix, n in (("train", 60), ("t10k", 30)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, lab in enumerate(labels):
            r, c = divmod(int(lab), 4)
            images[i, 7 * r:7 * r + 7, 7 * c:7 * c + 7] = 250
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            _idx(0x803, (n, 28, 28), images.tobytes()))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            _idx(0x801, (n,), labels.tobytes()))
    return folder


def _fashion_sweep(fashion_dir: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(EXAMPLES / "digits_node.toml"),
                 "--set", "task.name=fashion_mnist", "--set", f"task.data_dir={fashion_dir}",
                 "--set", "steps=4000", "--set", "eval_every=1000", "--set", "mgd.tau_x=1",
                 "--set", "mgd.tau_theta=1",
                 "--grid", "network.hidden=[4],[8]", "--runs", "2", "--workers", "1",
                 "--targets", "0.3,0.9", "--out", str(out), "--quiet", *extra])


def test_scaling_commands_on_fashion_mnist_files(fashion_dir: Path, tmp_path: Path,
                                                 capsys) -> None:
    pytest.importorskip("distributed")
    node = tmp_path / "node"
    assert _fashion_sweep(fashion_dir, node) == 0
    rows = _rows(node)
    assert [(r["network.hidden"], r["status"], r["model"]) for r in rows] == [
        ("[4]", "ok", "float"), ("[4]", "ok", "float"), ("[8]", "ok", "float"),
        ("[8]", "ok", "float")]
    assert any(r["steps_to_0.3"] for r in rows)
    bp = tmp_path / "bp"
    assert _fashion_sweep(fashion_dir, bp, "--model", "backprop",
                          "--set", "backprop.updates=50", "--set", "backprop.batch_size=4") == 0
    assert [int(r["steps"]) for r in _rows(bp)] == [200] * 4
    capsys.readouterr()
    assert main(["gradcheck", "--config", str(EXAMPLES / "digits_node.toml"),
                 "--task", "fashion_mnist", "--data-dir", str(fashion_dir), "--set", "runs=2",
                 "--widths", "4,8", "--max-steps", "3000", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [p["params"] for p in res["points"]] == [785 * 4 + 50] * 2 + [785 * 8 + 90] * 2
    # the crossover from the node sweep: the trainer's cycles at 784 inputs
    rows = crossover.crossover({"node": [node]}, EXAMPLES, target=0.3,
                               grid=_tiny_grid())
    assert [r.width for r in rows] == [4, 8]
    assert [r.params for r in rows] == [785 * 4 + 50, 785 * 8 + 90]
    for r in rows:
        m = r.modes[0]
        steps = [int(x["steps_to_0.3"]) if x["steps_to_0.3"] else math.inf
                 for x in _rows(node) if x["network.hidden"] == f"[{r.width}]"]
        median = float(np.median(steps))
        assert m.steps == (None if math.isinf(median) else median)
        par = next(s for s in m.settings if s["name"] == "fully parallel")
        assert par["products_per_evaluation"] == 784 * r.width + r.width * 10
    # the figures and tables of the doc, at the sweeps' own targets and 784 inputs
    scaling_plots = _bench_module("scaling_plots")
    capsys.readouterr()
    assert scaling_plots.main(["--targets", "0.3,0.9", "--sweep", f"node={node}",
                               "--sweep", f"backprop={bp}", "--tables",
                               "--out", str(tmp_path / "img")]) == 0
    tables = capsys.readouterr().out
    assert "| samples to 30% | samples to 90% |" in tables
    assert "| 4 | 3,190 | batch 4, rate 1.0 |" in tables  # the config's [backprop]
    assert (tmp_path / "img" / "scaling_steps.png").stat().st_size > 1000


def _tiny_grid():
    from mgd_hw.backprop_grid import Grid

    return Grid((4, 8), (1.0, 3.0), 2, 0.05, 0.2, extend=0)


def test_crossover_names_the_winning_widths() -> None:
    def row(width, bp, fpga, src, limit, analog):
        m = crossover.ModeRow("node", 1000.0, 5, 5, best_seconds=fpga, best_fmax_source=src,
                              limit_seconds=limit, analog_seconds=analog)
        return crossover.WidthRow(width, 0, bp, "", {}, [m])

    rows = [row(8, 1.0, 0.5, "measured", 2.0, 0.1), row(16, 1.0, 0.5, "assumed", 0.9, 0.1),
            row(32, 1.0, 3.0, "assumed", 2.0, 2.0), row(64, None, 0.1, "assumed", 0.1, 0.1)]
    assert crossover.wins(rows) == {"node": {"measured": [8], "assumed": [16], "limit": [16],
                                             "analog": [8, 16]}}


def test_crossover_errors(tmp_path: Path) -> None:
    with pytest.raises(crossover.CrossoverError, match=r"^.*: not a finished mgd-hw sweep "
                       r"\(no sweep.json and results.csv\)$"):
        crossover.crossover({"node": [tmp_path]}, EXAMPLES)
    with pytest.raises(crossover.CrossoverError, match="^mode 'nodes' is not one of weight, "
                       "node$"):
        crossover.crossover({"nodes": [tmp_path]}, EXAMPLES)


def _bench_module(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_crossover_script_one_line_error(tmp_path: Path, capsys) -> None:
    scaling_crossover = _bench_module("scaling_crossover")
    assert scaling_crossover.main(["--sweep", "node"]) == 2
    assert capsys.readouterr().err == ("scaling_crossover: error: --sweep takes MODE=DIR, "
                                       "not 'node'\n")


def test_plots_pick_the_backprop_setting_with_fewest_samples(tmp_path: Path) -> None:
    scaling_plots = _bench_module("scaling_plots")

    def row(width, batch, lr, steps90, steps95):
        def up(s):
            return "" if s == "" else str(s // batch)
        return {"network.hidden": f"[{width}]", "backprop.batch_size": str(batch),
                "backprop.lr": str(lr), "steps_to_0.9": str(steps90),
                "steps_to_0.95": str(steps95), "updates_to_0.9": up(steps90),
                "updates_to_0.95": up(steps95)}

    rows = [row(8, 1, 3, 900, ""), row(8, 1, 3, 1100, 5000), row(8, 1, 3, 1000, ""),
            row(8, 4, 1, 800, 4000), row(8, 4, 1, 2000, 4400), row(8, 4, 1, 1200, 4800),
            row(16, 4, 1, 400, 800), row(16, 1, 3, 500, 600)]
    best = scaling_plots.backprop_best(rows)
    # width 8: batch 1 at rate 3 has the lower median to 90% (1000 against 1200),
    # though it never reaches 95% in two runs of three
    assert best[8][0] == ("1", "3")
    assert best[8][1]["steps_to_0.9"] == 1000
    assert best[8][1]["steps_to_0.95"] == math.inf
    assert best[8][1]["updates_to_0.9"] == 1000
    assert best[16][0] == ("4", "1")
    # to 95% at width 8: batch 4 (median 4400); batch 1 never gets there
    best95 = scaling_plots.backprop_best(rows, "0.95")
    assert best95[8][0] == ("4", "1")
    assert best95[8][1]["steps_to_0.95"] == 4400
    assert best95[16][0] == ("1", "3")
    assert scaling_plots.median_inf(["1", "", ""]) == math.inf


def test_trainer_config_follows_the_width() -> None:
    """A wide layer gets the accumulator its exact sums need and an LFSR long enough
    for distinct codes; the rest is the example's."""
    from golden_model.shapes import acc_bits_needed

    base = load_config(EXAMPLES / "hw_digits.toml")
    for width, lfsr in ((16, 32), (128, 48), (256, 64)):
        fcfg = load_config(EXAMPLES / "digits_weight.toml", {"network": {"hidden": [width]}})
        hw = crossover.trainer_config(EXAMPLES, "weight", fcfg)
        h = hw.hw
        assert h.n_params == 65 * width + (width + 1) * 10
        assert h.lfsr_bits == lfsr
        assert h.acc_bits == max(32, acc_bits_needed(h, 64, h.x_bits, h.x_frac),
                                 acc_bits_needed(h, width, h.act_bits, h.act_frac))
        assert (hw.mgd.tau_x, hw.mgd.tau_theta) == (100, 100)  # the float sweep's
        assert h.theta_bits == base.hw.theta_bits


def test_crossover_rows_round_trip_through_json() -> None:
    from dataclasses import asdict

    m = crossover.ModeRow("weight", 2.0e5, 5, 5, [{"name": "x"}], "fully parallel", 0.1,
                          "assumed", 0.05, 0.001)
    rows = [crossover.WidthRow(16, 1210, 0.01, "numpy, batch 32", {"load": [1, 2],
                                                                   "points": []}, [m])]
    back = crossover.rows_from_dicts(json.loads(json.dumps([asdict(r) for r in rows])))
    assert back == rows
    text = crossover.format_table(back, 0.9)
    assert "   16   1,210 weight    200,000" in text
    assert ("weight perturbation beats tuned CPU backprop at widths: FPGA time at a "
            "measured Fmax: none; FPGA time at the assumed Fmax: none; "
            "multiplier-bound limit: none; analog 1 ns projection: 16") in text


def _fake_sweep(folder: Path, grid: list, rows: list[tuple]) -> None:
    """A finished sweep folder: sweep.json and results.csv rows of (hidden, eta, run,
    steps to 0.9 or '')."""
    folder.mkdir()
    config = {"task": {"name": "digits"}, "mgd": {"mode": "weight", "eta": 5.0}}
    (folder / "sweep.json").write_text(json.dumps({"config": config, "grid": grid,
                                                    "model": "auto"}))
    lines = ["network.hidden,mgd.eta,run,model,status,steps_to_0.9"]
    lines += [f"[{h}],{eta},{r},float,ok,{steps}" for h, eta, r, steps in rows]
    (folder / "results.csv").write_text("\n".join(lines) + "\n")


def test_crossover_takes_each_widths_best_sweep_point(tmp_path: Path) -> None:
    """A sweep over mgd.eta beside the width is MGD's own search: at each width the
    point with the fewest median steps (over both folders), never the mix of points."""
    grid = [["network.hidden", ["[16]", "[128]"]], ["mgd.eta", ["5", "20"]]]
    _fake_sweep(tmp_path / "a", grid, [
        (16, 5, 0, 860), (16, 5, 1, 900), (16, 5, 2, 800),
        (16, 20, 0, 400), (16, 20, 1, ""), (16, 20, 2, 420),
        (128, 5, 0, 2500), (128, 5, 1, 2600), (128, 5, 2, 2400),
        (128, 20, 0, 620), (128, 20, 1, 600), (128, 20, 2, 640)])
    _fake_sweep(tmp_path / "b", [["network.hidden", ["[128]"]], ["mgd.eta", ["40"]]],
                [(128, 40, 0, 460), (128, 40, 1, 470), (128, 40, 2, 450)])
    config, best = crossover.read_sweep([tmp_path / "a", tmp_path / "b"], 0.9)
    assert config["mgd"]["eta"] == 5.0
    assert best[16] == crossover.SweepPoint(420.0, 2, 3, (("mgd.eta", "20"),), 2)
    assert best[128] == crossover.SweepPoint(460.0, 3, 3, (("mgd.eta", "40"),), 3)
    m = crossover.ModeRow("weight", 460.0, 3, 3, point="mgd.eta=40", points=3)
    rows = [crossover.WidthRow(128, 9610, 0.01, "numpy", {"load": [1, 2], "points": []},
                               [m])]
    assert ("weight perturbation at width 128: mgd.eta=40 (the fewest median steps of 3 "
            "sweep points)") in crossover.format_table(rows, 0.9)


def test_eta_table_and_figure_mark_each_widths_best_eta(tmp_path: Path, capsys) -> None:
    """``scaling_plots.py --tuned``: medians per (width, eta), each width's best eta
    per target in bold (fewest median steps; a run that never got there is infinite),
    and the figure."""
    folder = tmp_path / "eta"
    folder.mkdir()
    config = {"task": {"name": "digits"}, "network": {"hidden": [16]},
              "backprop": {"batch_size": 1, "lr": 1.0}, "mgd": {"mode": "node"}}
    (folder / "sweep.json").write_text(json.dumps({"config": config, "grid": [], "model": "auto"}))
    lines = ["network.hidden,mgd.eta,run,status,final_test_acc,best_test_acc,steps_to_0.9,"
             "steps_to_0.95"]
    for w, eta, s90, s95 in ((16, "1.5", 140, 270), (16, "3", 170, ""), (128, "3", 250, 500),
                             (128, "6", 190, 490)):
        lines += [f"[{w}],{eta},{r},ok,0.95,0.96,{s90 + r},{s95}" for r in range(3)]
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    scaling_plots = _bench_module("scaling_plots")
    assert scaling_plots.main(["--tuned", f"node={folder}", "--out", str(tmp_path / "img"),
                               "--tables"]) == 0
    out = capsys.readouterr().out
    assert "| 16 | 1.5 | **141 (3/3)** | **270 (3/3)** | 0.950 | 0.960 |" in out
    assert "| 16 | 3 | 171 (3/3) | never (0/3) |" in out
    assert "| 128 | 6 | **191 (3/3)** | **490 (3/3)** |" in out
    assert (tmp_path / "img" / "scaling_tuned.png").stat().st_size > 1000
    assert scaling_plots.main(["--tuned", f"backprop={folder}"]) == 2
