"""Tests for the ``mgd-hw`` command line (mgd_hw.cli) and the files it writes.

Most tests call :func:`mgd_hw.cli.main` in-process; two run ``python -m mgd_hw.cli``.
Every ``train`` gets ``--quiet`` and an ``--out`` under ``tmp_path``; runs are tiny.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgd_hw.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = ["--task", "xor", "--steps", "2000", "--eval-every", "500", "--runs", "2", "--quiet"]


def _train(out: Path, *extra: str) -> int:
    return main(["train", *TINY, "--out", str(out), *extra])


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mgd-hw: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------ train


def test_train_writes_outputs_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _train(out) == 0
    captured = capsys.readouterr()

    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "metrics.csv", "metrics.json"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    metrics = json.loads((out / "metrics.json").read_text())
    assert {"summary", "config", "history"} <= set(metrics)
    assert set(metrics["history"]) == {"mgd", "backprop"}
    assert metrics["config"]["task"]["name"] == "xor"
    assert metrics["config"]["steps"] == 2000
    assert metrics["config"]["runs"] == 2
    assert metrics["summary"]["task"] == "xor"
    mgd = metrics["history"]["mgd"]
    assert mgd["steps"][-1] == 2000
    assert len(mgd["test_acc"]) == len(mgd["steps"])
    assert all(len(row) == 2 for row in mgd["test_acc"])

    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["method", "run", "unit", "step", "cost", "train_acc", "test_acc"]
    assert {(r[0], r[1]) for r in rows[1:]} == {
        ("mgd", "0"),
        ("mgd", "1"),
        ("backprop", "0"),
        ("backprop", "1"),
    }
    assert all(len(r) == 7 for r in rows[1:])

    lines = captured.out.splitlines()
    assert len(lines) == 1
    assert "xor" in lines[0]
    assert str(out) in lines[0]
    assert "Traceback" not in captured.err


def test_train_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path / "run", "--json") == 0
    stdout = capsys.readouterr().out
    assert len(stdout.strip().splitlines()) == 1
    summary = json.loads(stdout)
    assert {"task", "mgd", "backprop"} <= set(summary)
    assert summary["task"] == "xor"
    assert summary["runs"] == 2
    assert 0.0 <= summary["mgd"]["median_final_test_acc"] <= 1.0
    assert 0.0 <= summary["backprop"]["median_final_test_acc"] <= 1.0
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["summary"] == summary


def test_train_same_seed_same_history_other_seed_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def history(name: str, seed: str) -> dict:
        assert _train(tmp_path / name, "--seed", seed) == 0
        return json.loads((tmp_path / name / "metrics.json").read_text())["history"]

    first = history("a", "3")
    assert history("b", "3") == first
    assert history("c", "11") != first


def test_train_no_backprop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _train(out, "--no-backprop", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert "backprop" not in summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["history"]) == {"mgd"}
    assert "backprop" not in metrics["summary"]
    with (out / "metrics.csv").open(newline="") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"mgd"}


def test_train_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _train(out, "--seed", "1") == 0
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()

    assert _train(out, "--seed", "2") == 2
    captured = capsys.readouterr()
    assert "--force" in _one_error_line(captured.err)
    assert captured.out == ""
    assert (out / "metrics.json").read_bytes() == before

    assert _train(out, "--seed", "2", "--force") == 0
    after = (out / "metrics.json").read_bytes()
    assert after != before
    assert json.loads(after)["config"]["seed"] == 2


# ------------------------------------------------------------------------ bad inputs

BAD_TRAIN_ARGS = {
    "unknown task": ["--task", "nope"],
    "zero steps": ["--steps", "0"],
    "bad perturbation": ["--perturbation", "cdma"],
    "missing config": ["--config", "{tmp}/missing.toml"],
    "malformed config": ["--config", "{tmp}/bad.toml"],
    "set without =": ["--set", "mgd.eta"],
    "set unknown field": ["--set", "unknown.field=1"],
    "mnist without data dir": ["--task", "mnist"],
}


@pytest.mark.parametrize("args", BAD_TRAIN_ARGS.values(), ids=BAD_TRAIN_ARGS.keys())
def test_train_bad_input_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    (tmp_path / "bad.toml").write_text("[mgd\neta = = 1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "run"
    short = ["--steps", "500", "--eval-every", "250", "--quiet", "--out", str(out)]
    rc = main(["train", *short, *args])
    assert rc == 2
    captured = capsys.readouterr()
    _one_error_line(captured.err)
    assert captured.out == ""
    assert not out.exists()


def test_error_messages_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--quiet", "--out", str(tmp_path / "run")]

    assert main([*base, "--steps", "0"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == "mgd-hw: error: steps must be a positive integer, not 0"

    missing = tmp_path / "missing.toml"
    assert main([*base, "--config", str(missing)]) == 2
    assert str(missing) in _one_error_line(capsys.readouterr().err)

    assert main([*base, "--task", "mnist"]) == 2
    assert "task.data_dir" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "args",
    [["--steps", "abc"], ["--hidden", "3,x"], ["--eta", "fast"], ["--bogus-flag"]],
    ids=["steps abc", "hidden 3,x", "eta fast", "unknown flag"],
)
def test_argparse_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", "--out", str(tmp_path / "run"), *args])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_no_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_out_that_is_a_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "not_a_folder"
    out.write_text("")
    short = ["--task", "xor", "--steps", "200", "--eval-every", "100", "--quiet"]
    rc = main(["train", *short, "--no-backprop", "--out", str(out)])
    assert rc == 2
    _one_error_line(capsys.readouterr().err)


# -------------------------------------------------------------------------- gradcheck

GRADCHECK = ["gradcheck", "--task", "xor", "--runs", "2", "--max-steps", "200", "--quiet", "--json"]


def test_gradcheck_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(GRADCHECK) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "xor"
    assert summary["steps"][-1] == 200
    assert summary["steps"] == sorted(set(summary["steps"]))
    assert set(summary["median_cosine"]) == {"weight", "node"}
    for curve in summary["median_cosine"].values():
        assert len(curve) == len(summary["steps"])
        assert all(-1.0 <= v <= 1.0 for v in curve)


def test_gradcheck_node_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*GRADCHECK, "--mode", "node"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["median_cosine"]) == {"node"}
    assert summary["steps"][-1] == 200


def test_gradcheck_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for a in GRADCHECK if a != "--json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "steps to median cosine 0.95" in out
    assert out.splitlines()[-2].split()[0] == "200"


def test_gradcheck_zero_max_steps(capsys: pytest.CaptureFixture[str]) -> None:
    args = [a if a != "200" else "0" for a in GRADCHECK]
    assert main(args) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert "--max-steps" in line
    assert captured.out == ""


# ---------------------------------------------------------------- python -m mgd_hw.cli


def _run_module(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mgd_hw.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_m_cli_trains(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = "train --task xor --steps 500 --eval-every 250 --quiet".split()
    proc = _run_module(tmp_path, *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "xor" in proc.stdout
    assert (out / "metrics.json").is_file()


def test_python_m_cli_bad_steps(tmp_path: Path) -> None:
    args = "train --task xor --steps -5 --quiet".split()
    proc = _run_module(tmp_path, *args, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = _one_error_line(proc.stderr)
    assert line == "mgd-hw: error: steps must be a positive integer, not -5"
    assert not (tmp_path / "o").exists()


def test_train_out_below_a_file_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x\n")
    assert main(["train", "--task", "xor", "--steps", "10", "--quiet",
                 "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mgd-hw: error: cannot create --out") and err.count("\n") == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["train", "compare"])
def test_out_that_cannot_be_written_fails_before_any_work(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = "/proc/mgd_hw_no_such_folder/out"  # mkdir there fails, even as root
    if command == "train":
        argv = ["train", "--task", "xor", "--steps", "10", "--quiet", "--out", out]
    else:
        argv = ["compare", "--config", str(EXAMPLES / "hw_xor.toml"), "--no-rtl", "--out", out]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"mgd-hw: error: cannot write to --out '{out}': No such file or directory"


def test_config_that_is_a_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--config", str(tmp_path), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"mgd-hw: error: config file {str(tmp_path)!r} is a folder, not a file"
