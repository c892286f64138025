"""A user's data: task 'file' (.npz, .csv), Dataset.from_arrays, the config's sizes from
the data, and one clear line for every bad file. Files are written into tmp paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden_model.config import ConfigError, TaskConfig, build_config, network_sizes
from golden_model.datapath import HwData
from golden_model.datasets import DataError, Dataset, load_dataset
from mgd_hw import api
from mgd_hw.cli import main


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _blobs(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(0, 0.1, (n, 2)) + np.array([[0, 0], [1, 0], [0, 1]])[labels]
    return x, labels


def _task(path: Path, **kw) -> TaskConfig:
    return TaskConfig(name="file", path=str(path), **kw)


def test_npz_with_its_own_split(tmp_path: Path) -> None:
    x, y = _blobs()
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    ds = load_dataset(_task(path))
    assert ds.target == "class" and ds.n_inputs == 2 and ds.n_outputs == 3
    assert np.array_equal(ds.labels_test, y[30:]) and np.array_equal(ds.x_train, x[:30])
    assert np.array_equal(ds.y_train, np.eye(3)[y[:30]])


def test_npz_x_y_seeded_split_and_scaling(tmp_path: Path) -> None:
    x, y = _blobs()
    path = tmp_path / "d.npz"
    np.savez(path, x=x * 5 + 3, y=y)
    a = load_dataset(_task(path, test_fraction=0.25, scale="minmax"))
    b = load_dataset(_task(path, test_fraction=0.25, scale="minmax"))
    c = load_dataset(_task(path, test_fraction=0.25, scale="minmax", split_seed=1))
    assert len(a.x_test) == 10 and len(a.x_train) == 30
    assert np.array_equal(a.x_test, b.x_test) and not np.array_equal(a.x_test, c.x_test)
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    s = load_dataset(_task(path, scale="standard"))
    assert np.allclose(s.x_train.mean(axis=0), 0) and np.allclose(s.x_train.std(axis=0), 1)


def test_csv_label_column_anywhere_else_last(tmp_path: Path) -> None:
    named = load_dataset(_task(_csv(tmp_path / "a.csv", "label,u,v\n1,0.5,0.25\n0,0.1,0.2\n"
                                   "1,0.3,0.3\n0,0.2,0.1\n"), test_fraction=0.0))
    assert named.columns == ("u", "v") and named.n_outputs == 1
    assert np.array_equal(named.labels_train, [1, 0, 1, 0])
    assert np.array_equal(named.x_train[0], [0.5, 0.25])
    last = load_dataset(_task(_csv(tmp_path / "b.csv", "u,v,k\n0.5,0.25,2\n0.1,0.2,0\n"
                                   "0.3,0.3,1\n"), test_fraction=0.0))
    assert last.columns == ("u", "v") and last.n_outputs == 3


def test_value_targets_train_and_score_r2(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (60, 2))
    y = 0.2 + 0.3 * x[:, 0] + 0.2 * x[:, 1]
    path = tmp_path / "r.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset(_task(path))
    assert ds.target == "value" and (ds.labels_train == -1).all()
    cfg = build_config({"task": {"name": "file", "path": str(path)}, "steps": 4000,
                        "eval_every": 2000, "network": {"hidden": [3]},
                        "mgd": {"eta": 2.0}})
    res = api.train_float(cfg, ds, backprop=False)
    r2 = res.mgd.history.array("test_acc")
    assert r2[-1, 0] > r2[0, 0] and r2[-1, 0] <= 1.0


def test_from_arrays_matches_the_file(tmp_path: Path) -> None:
    x, y = _blobs()
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    a = Dataset.from_arrays(x, y, scale="minmax")
    b = load_dataset(_task(path, scale="minmax"))
    for k in ("x_train", "y_train", "labels_train", "x_test", "y_test", "labels_test"):
        assert np.array_equal(getattr(a, k), getattr(b, k))


BAD_FILES = [
    ("missing.csv", None, "does not exist"),
    ("one.csv", "a\n1\n2\n", "has 1 column"),
    ("noheader.csv", "1,2,0\n3,4,1\n", "no header row"),
    ("cell.csv", "a,b,label\n1,2,0\n1,x,1\n", "line 3, column 'b': 'x' is not a number"),
    ("nan.csv", "a,b,label\n1,nan,0\n1,2,1\n", "line 2, column 'b': 'nan' is not a finite"),
    ("ragged.csv", "a,b,label\n1,2,0\n1,1\n", "line 3 has 2 cells, the header 3"),
    ("empty.csv", "", "is empty"),
    ("keys.npz", {"inputs": np.zeros((3, 2)), "y": np.zeros(3)},
     "must hold x_train, y_train, x_test and y_test (or x and y), not inputs, y"),
    ("lengths.npz", {"x": np.zeros((5, 2)), "y": np.zeros(4)}, "x_train has 5 rows but y_train 4"),
    ("nan.npz", {"x": np.array([[0.0, np.nan], [1, 1], [2, 2]]), "y": np.zeros(3)},
     "x_train has nan at index (0, 1)"),
    ("notzip.npz", "not a zip", "is not a readable .npz file"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_every_bad_file_is_one_line(tmp_path: Path, capsys, name, content, message) -> None:
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is not None:
        path.write_text(content)
    code = main(["train", "--set", "task.name='file'", "--set", f"task.path='{path}'",
                 "--steps", "10", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mgd-hw: error: ") and message in err, err


def test_config_rules_of_a_user_task(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task.path must name an .npz or .csv file"):
        build_config({"task": {"name": "file"}})
    with pytest.raises(ConfigError, match="task.path applies to task.name 'file' only"):
        build_config({"task": {"name": "xor", "path": "a.csv"}})
    with pytest.raises(ConfigError, match="task.scale must be one of"):
        build_config({"task": {"name": "file", "path": "a.csv", "scale": "zscore"}})
    # the float model's validation never reads the file
    build_config({"task": {"name": "file", "path": str(tmp_path / "absent.csv")}})


def test_hardware_sizes_come_from_the_file(tmp_path: Path) -> None:
    x, y = _blobs()
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    task = {"name": "file", "path": str(path)}
    cfg = build_config({"task": task, "network": {"hidden": [4]},
                        "hw": {"datapath": "mlp", "n_params": 27}})
    assert network_sizes(cfg) == [2, 4, 3]
    with pytest.raises(ConfigError) as err:
        build_config({"task": task, "network": {"hidden": [4]},
                      "hw": {"datapath": "mlp", "n_params": 30}})
    assert str(err.value) == ("hw.n_params must be 27, the parameter count of the 2-4-3 "
                              "network, with hw.datapath 'mlp', not 30")
    with pytest.raises(ConfigError, match="task.inputs and task.outputs must be set"):
        build_config({"task": {"name": "arrays"}, "hw": {"datapath": "mlp"}})


def test_data_that_disagrees_with_the_config_is_refused(tmp_path: Path) -> None:
    x, y = _blobs()
    data = Dataset.from_arrays(x, y)
    cfg = api.config(data=data, network={"hidden": [2]})
    assert (cfg.task.name, cfg.task.inputs, cfg.task.outputs) == ("arrays", 2, 3)
    other = Dataset.from_arrays(np.hstack([x, x]), y)
    with pytest.raises(DataError, match=r"^task.inputs must be 4 \(the data has 4 input "
                       r"columns\), not 2$"):
        api.train_float(cfg, other)


def test_x_format_error_names_the_column(tmp_path: Path) -> None:
    path = _csv(tmp_path / "a.csv", "small,big,label\n0.5,0.5,0\n0.25,7.5,1\n")
    ds = load_dataset(_task(path, test_fraction=0.0))
    cfg = build_config({"hw": {"x_bits": 8, "x_frac": 6}})
    with pytest.raises(DataError) as err:
        HwData.from_dataset(ds, cfg.hw)
    assert str(err.value).startswith("a train input 'big' (row 1): value 7.5 does not fit")
    assert "task.scale" in str(err.value)


def test_no_preset_leaks_into_a_python_config() -> None:
    assert build_config({"task": {"name": "digits"}}).network.hidden == [32]
    plain = build_config({"task": {"name": "digits"}}, preset=False)
    assert plain.network.hidden == [2] and plain.steps == 10000
    data = Dataset.from_arrays(*_blobs())
    cfg = api.config(data=data)
    assert cfg.network.init_scale == 1.0 and cfg.mgd.eta == 0.1 and cfg.steps == 10000


def test_train_log_has_one_line_per_evaluation_off_a_terminal(tmp_path: Path, capsys) -> None:
    code = main(["train", "--task", "xor", "--steps", "4000", "--eval-every", "1000",
                 "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.err.splitlines()
    assert "\r" not in captured.err
    assert [ln.split(":")[0] for ln in lines[:5]] == [
        "MGD 0/4,000", "MGD 1,000/4,000", "MGD 2,000/4,000", "MGD 3,000/4,000",
        "MGD 4,000/4,000"]
    assert len(lines) == 5 + 5  # MGD's evaluations, then backprop's (0 .. 4,000 updates)
    summary = json.loads((tmp_path / "o" / "metrics.json").read_text())["summary"]
    assert "median_final_test_acc" in summary["mgd"] and "final_test_acc" not in summary["mgd"]


def test_hw_train_data_error_is_one_line(tmp_path: Path, capsys) -> None:
    from golden_model.hw_train import main as hw_main

    path = _csv(tmp_path / "a.csv", "a,label\n5.0,0\n0.1,1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'steps = 10\n[task]\nname = "file"\npath = "{path}"\ntest_fraction = 0.0\n'
                   '[network]\nhidden = [2]\n[hw]\ndatapath = "mlp"\nn_params = 7\n')
    with pytest.raises(SystemExit) as exc:
        hw_main([str(cfg)])
    assert str(exc.value).startswith("error: a train input 'a' (row 0): value 5.0 does not fit")


def test_generate_bakes_the_given_data_into_the_memories(tmp_path: Path) -> None:
    x, y = _blobs(12)
    a = Dataset.from_arrays(x, y, test_fraction=0.0)
    b = Dataset.from_arrays(x[::-1].copy(), y[::-1].copy(), test_fraction=0.0)
    cfg = api.config(data=a, steps=10, network={"hidden": [3]}, hw={"datapath": "mlp"})
    ia = api.generate(cfg, a, tmp_path / "a")
    ib = api.generate(cfg, b, tmp_path / "b")
    assert ia["sha256"] != ib["sha256"]
    from sim.data_file import data_digest

    hw_a, hw_b = (HwData.from_dataset(d, cfg.hw) for d in (a, b))
    assert data_digest(hw_a) != data_digest(hw_b) and data_digest(hw_a) == data_digest(
        HwData.from_dataset(a, cfg.hw))
    with pytest.raises(DataError, match="holds the data set: pass the data"):
        api.generate(cfg, None, tmp_path / "c")
