"""``mgd-hw device synth|fit|plot`` and a training run on a device file: outputs and the
one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from golden_model.device_model import load_device
from mgd_hw.cli import main


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mgd-hw: error: "), err
    return lines[0][len("mgd-hw: error: "):]


@pytest.fixture(scope="module")
def synth_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("device") / "synth.csv"
    assert main(["device", "synth", "--out", str(path), "--samples", "3000", "--seed", "2"]) == 0
    return path


def test_synth_writes_a_headed_csv_and_refuses_to_overwrite(synth_csv: Path, capsys) -> None:
    with synth_csv.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["bias", "switched", "output"]
    assert len(rows) == 3001
    capsys.readouterr()
    assert main(["device", "synth", "--out", str(synth_csv)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"--out {str(synth_csv)!r} already exists; pass --force to overwrite it")


def test_fit_prints_heldout_errors_and_writes_the_device(synth_csv: Path, tmp_path: Path,
                                                         capsys) -> None:
    out = tmp_path / "dev.json"
    args = ["device", "fit", "--data", str(synth_csv), "--out", str(out), "--steps", "600",
            "--hidden", "12", "--quiet"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("MDN, 3 components, hidden 12, numpy: 2400 training / 600 held-out "
                        "samples")
    assert lines[1].startswith("held-out switching-probability MAE: ")
    assert lines[2].startswith("held-out NLL: ")
    dev = load_device(out)
    mae = float(lines[1].split(": ")[1].split(" ")[0])
    assert mae == pytest.approx(dev.meta["heldout_switching_mae"], abs=5e-5)
    assert mae < 0.04
    assert dev.meta["input"] == "bias" and dev.components == 3
    # the switching probability is near the generator's at the threshold bias
    assert dev.prob_above(np.array([0.5]))[0] == pytest.approx(0.5, abs=0.1)
    assert main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    png = tmp_path / "fit.png"
    assert main(["device", "plot", "--device", str(out), "--data", str(synth_csv),
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (None, [], "data file '{d}' does not exist"),
        (("x,y", ["1,2"] * 60), [], "data file '{d}' has no column 'bias' (columns: x, y)"),
        (("bias,output", ["1,2"] * 10), [],
         "data file '{d}' has 10 data rows; a fit needs at least 50"),
        (("bias,output", ["1,2"] * 59 + ["1,high"]), [],
         "data file '{d}' line 61: 'bias' and 'output' must be numbers, not '1', 'high'"),
        (("bias,output", ["1,2"] * 59 + ["1"]), [],
         "data file '{d}' line 61 has 1 fields, not 2"),
        (("bias,output", ["1,2"] * 60), [],
         "data file '{d}': 'bias' and 'output' must each take more than one value"),
        (("bias,output", ["1,2"] * 60), ["--backend", "jax"],
         "--backend must be one of numpy, torch, not 'jax'"),
        (("bias,output", ["1,2"] * 60), ["--components", "0"],
         "--components must be a positive integer, not 0"),
        (("bias,output", ["1,2"] * 60), ["--hidden", "8,x"],
         "--hidden takes positive widths like 32,32, not '8,x'"),
        (("bias,output", ["1,2"] * 60), ["--heldout", "1.5"],
         "--heldout must be a fraction in (0, 1), not 1.5"),
    ],
)
def test_fit_errors_are_one_line(tmp_path: Path, capsys, make, extra, message) -> None:
    data = tmp_path / "data.csv"
    if make is not None:
        _csv(data, make[0], make[1])
    code = main(["device", "fit", "--data", str(data), "--out", str(tmp_path / "d.npz"),
                 *extra])
    assert code == 2
    assert _one_error_line(capsys.readouterr().err) == message.format(d=data)


def test_fit_out_must_be_a_device_file(synth_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["device", "fit", "--data", str(synth_csv), "--out",
                 str(tmp_path / "d.pkl")]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"--out {str(tmp_path / 'd.pkl')!r} must end in .npz or .json")


def test_train_with_a_missing_device_file_is_one_line(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "gone.npz"
    code = main(["train", "--task", "xor", "--steps", "100", "--quiet", "--no-backprop",
                 "--out", str(tmp_path / "run"), "--set", "nonideal.neuron_noise=device",
                 "--set", f"nonideal.neuron_device={missing}"])
    assert code == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"device file {str(missing)!r} does not exist")


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["digits_neurons.toml", "digits_device_neurons.toml"])
def test_examples_train(tmp_path: Path, monkeypatch, capsys, name: str) -> None:
    """The examples run as the docs say: the device example reads the file that
    `device fit` wrote to out/device/synth.npz (from the working directory)."""
    monkeypatch.chdir(tmp_path)
    if "device" in name:
        assert main(["device", "synth", "--out", "out/device/synth.csv", "--samples",
                     "500"]) == 0
        assert main(["device", "fit", "--data", "out/device/synth.csv", "--out",
                     "out/device/synth.npz", "--steps", "50", "--quiet"]) == 0
    assert main(["train", "--config", str(EXAMPLES / name), "--steps", "3000",
                 "--eval-every", "1000", "--quiet", "--no-backprop", "--out", "run"]) == 0
    assert "digits 64-16-10 MGD node/code" in capsys.readouterr().out
