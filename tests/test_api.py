"""The README's Python example runs as written: iris (bundled with scikit-learn) from
float MGD and backprop through the bit-exact model and the Verilog to a bit-exact RTL
training run (2,000 steps). Also: examples/hw_iris.toml works on the CSV that
examples/iris.py writes."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- api-example --> block"
    return match.group(1)


def test_readme_api_example_runs_as_written(build_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the example writes out/ under the working folder
    code = readme_example()
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "float MGD" in out and "bit-exact model" in out
    assert "bit-exact with the golden model at all 2,000 updates" in out
    verilog = (tmp_path / "out" / "iris_api_rtl" / "mgd_trainer.v").read_text()
    assert "module mgd_trainer" in verilog


def test_iris_csv_and_its_config(tmp_path, monkeypatch):
    from golden_model.config import load_config, network_sizes
    from golden_model.datapath import HwData
    from golden_model.datasets import load_dataset
    from mgd_hw import api

    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, str(ROOT / "examples" / "iris.py"), "--csv",
                    "out/iris.csv"], check=True, capture_output=True)
    cfg = load_config(ROOT / "examples" / "hw_iris.toml")
    assert network_sizes(cfg) == [4, 4, 3]
    data = load_dataset(cfg.task)
    assert (len(data.x_train), len(data.x_test)) == (105, 45)
    HwData.from_dataset(data, cfg.hw)  # minmax-scaled inputs fit the x format
    # the same split and scaling as the Python example's from_arrays
    mod = runpy.run_path(str(ROOT / "examples" / "iris.py"), run_name="iris")
    x, y, names = mod["iris_arrays"]()
    arrays = api.Dataset.from_arrays(x, y, test_fraction=0.3, scale="minmax", columns=names)
    assert (arrays.x_test == data.x_test).all() and (arrays.y_train == data.y_train).all()


@pytest.mark.parametrize("flag", ["--csv"])
def test_iris_script_help(flag):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "iris.py"), "--help"],
                         capture_output=True, text=True, check=True)
    assert flag in res.stdout
