"""``mgd-hw sweep`` and the task engine: the grid, validation up front, a tiny XOR sweep
on a local Dask cluster, resume, failures that do not stop the others, determinism
over 1 and 2 workers, the bit-exact model, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sweep_configs import XOR_SWEEP
from sweep_configs import results_rows as _rows

from golden_model.config import ConfigError, load_config
from mgd_hw import engine, sweep, sweep_store
from mgd_hw.cli import main

pytest.importorskip("distributed")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

XOR = XOR_SWEEP


@pytest.fixture
def xor_config(tmp_path: Path) -> Path:
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    return path


def _figures(rows: list[dict[str, str]]) -> list[tuple]:
    """Everything but the wall time."""
    return [tuple(v for k, v in r.items() if k != "seconds") for r in rows]


# --- the grid and validation ------------------------------------------------------------


def test_grid_product_first_field_slowest() -> None:
    grid = sweep.parse_grid(["mgd.eta=0.5,1", "network.hidden=[2],[4, 4]"])
    assert grid == [("mgd.eta", ["0.5", "1"]), ("network.hidden", ["[2]", "[4, 4]"])]
    assert sweep.points(grid) == [
        (("mgd.eta", "0.5"), ("network.hidden", "[2]")),
        (("mgd.eta", "0.5"), ("network.hidden", "[4, 4]")),
        (("mgd.eta", "1"), ("network.hidden", "[2]")),
        (("mgd.eta", "1"), ("network.hidden", "[4, 4]")),
    ]
    tasks = sweep.plan(load_config(None, {"task": {"name": "xor"}}), grid, runs=3)
    assert len(tasks) == 12 and len({t.key for t in tasks}) == 12
    assert [t.run for t in tasks[:3]] == [0, 1, 2]


def test_point_config_seed_is_config_seed_plus_run(xor_config: Path) -> None:
    base = load_config(xor_config, {"seed": 5, "runs": 20})
    cfg = sweep.point_config(base, (("mgd.eta", "2"), ("network.hidden", "[3]")), run=2)
    assert (cfg.seed, cfg.runs, cfg.mgd.eta, cfg.network.hidden) == (7, 1, 2.0, [3])
    assert sweep.point_config(base, (("seed", "10"),), run=3).seed == 13  # a swept seed


@pytest.mark.parametrize(("specs", "message"), [
    (["mgd.etx=1,2"], "--grid point mgd.etx=1: unknown config field 'mgd.etx'"),
    (["mgd.eta=1,x"], "--grid point mgd.eta=x: mgd.eta must be a number"),
    (["mgd.mode=weight,nod"], "--grid point mgd.mode=nod: mgd.mode must be one of"),
    (["mgd.eta"], "--grid expects FIELD=V1,V2,..., not 'mgd.eta'"),
    (["mgd.eta=1,,2"], "--grid mgd.eta: empty value"),
    (["mgd.eta=1,1"], "--grid mgd.eta: a value appears twice"),
    (["mgd.eta=1", "mgd.eta=2"], "--grid names 'mgd.eta' twice"),
    (["runs=1,2"], "--grid cannot sweep 'runs'"),
    ([], "--grid is required"),
])
def test_grid_validated_up_front(xor_config: Path, specs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        sweep.plan(load_config(xor_config), sweep.parse_grid(specs), runs=1)
    assert str(err.value).startswith(message)


def test_model_choice(xor_config: Path) -> None:
    assert sweep.pick_model(load_config(xor_config), "auto") == "float"
    trainer = load_config(EXAMPLES / "hw_xor.toml")
    assert sweep.pick_model(trainer, "auto") == "bitexact"
    assert sweep.pick_model(trainer, "float") == "float"
    with pytest.raises(ConfigError, match="--model bitexact needs a trainer config"):
        sweep.pick_model(load_config(xor_config), "bitexact")


@pytest.mark.parametrize(("extra", "message"), [
    (["--grid", "mgd.etx=1"], "--grid point mgd.etx=1: unknown config field"),
    (["--grid", "mgd.eta=1", "--runs", "0"], "--runs must be a positive integer, not 0"),
    (["--grid", "mgd.eta=1", "--workers", "0"], "--workers must be a positive integer"),
    (["--grid", "mgd.eta=1", "--chunk", "0"], "--chunk must be a positive integer or auto"),
    (["--grid", "mgd.eta=1", "--chunk", "many"], "--chunk must be a positive integer or "
     "auto, not 'many'"),
    (["--grid", "mgd.eta=1", "--targets", "0.9,1.5"], "--targets takes accuracies in (0, 1]"),
    (["--grid", "mgd.eta=1", "--model", "bitexact"], "--grid point mgd.eta=1: --model "
     "bitexact needs"),
    (["--grid", "mgd.eta=1", "--set", "steps=-1"], "steps must be"),
])
def test_bad_flags_are_one_line_errors(xor_config: Path, tmp_path: Path, capsys,
                                       extra: list[str], message: str) -> None:
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(xor_config), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mgd-hw: error: {message}"), err
    assert err.count("\n") == 1
    assert not out.exists()  # refused before anything is written


# --- the engine --------------------------------------------------------------------------


def _maybe_fail(x: int) -> int:
    if x == 2:
        raise ValueError("two is\nbad")
    return x * 10


def test_engine_pool_reports_errors_per_item() -> None:
    outs = {o.item: o for o in engine.run(_maybe_fail, [1, 2, 3], workers=2, backend="pool")}
    assert [outs[i].value for i in (1, 3)] == [10, 30]
    assert not outs[2].ok and outs[2].error == "ValueError: two is bad"


def test_engine_groups_keep_each_items_own_outcome() -> None:
    """In groups of two on Dask, an item's error stays its own: its group mate and the
    other group come back with their values."""
    outs = {o.item: o for o in engine.run(_maybe_fail, [1, 2, 3], workers=1, chunk=2)}
    assert [outs[i].value for i in (1, 3)] == [10, 30]
    assert not outs[2].ok and outs[2].error == "ValueError: two is bad"
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        list(engine.run(_maybe_fail, [1], chunk=0))


def test_chunk_sizer_auto_sizes_groups_from_measured_item_times() -> None:
    sizer = engine.ChunkSizer("auto", threads=2)
    assert sizer.slots == 4
    assert sizer.size(100) == 1  # nothing measured yet
    sizer.observe([0.05] * 3)
    assert sizer.size(100) == int(engine.TASK_SECONDS / 0.05)
    assert sizer.size(7) == 4  # a fair share of what is left: 7 over 2 threads
    assert sizer.size(1) == 1
    sizer.observe([5.0] * engine.RECENT_ITEMS)  # long items: one a task
    assert sizer.size(100) == 1
    # a worker's slow first items (loading) drop out of the estimate as more come back
    warm = engine.ChunkSizer("auto", threads=1)
    warm.observe([2.0, 0.01, 0.01])
    assert warm.size(1000) == 1
    warm.observe([0.01] * 6)
    assert warm.size(1000) == int(engine.TASK_SECONDS / 0.01)
    # a grid of short and long points is sized for its long ones
    mixed = engine.ChunkSizer("auto", threads=1)
    mixed.observe([0.04] * 17 + [4.0] * 15)
    assert mixed.size(1000) == 1
    fixed = engine.ChunkSizer(3, threads=8)
    fixed.observe([10.0])
    assert (fixed.size(100), fixed.size(2)) == (3, 2)
    with pytest.raises(ValueError, match="chunk must be a positive integer or 'auto'"):
        engine.ChunkSizer(0, threads=1)


class _Done:
    """A finished future's stand-in: ``result()`` returns or raises ``value``."""

    def __init__(self, value):
        self.value = value

    def result(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def test_group_outcomes_time_only_successes_and_give_back_lost_groups() -> None:
    outcomes, seconds = engine._group_outcomes(
        ["a", "b"], _Done([(True, 1, 0.5), (False, "ValueError: no", 0.001)]))
    assert [(o.item, o.value, o.error) for o in outcomes] == [
        ("a", 1, ""), ("b", None, "ValueError: no")]
    assert seconds == [0.5]  # a fast failure does not make the groups larger
    assert engine._group_outcomes(["a", "b"], _Done(RuntimeError("died"))) == (None, [])
    [lost], _ = engine._group_outcomes(["a"], _Done(RuntimeError("died")))
    assert (lost.item, lost.error) == ("a", "RuntimeError: died")


def _dies_once_on_two(item: tuple[int, str]) -> int:
    import os

    x, flag = item
    if x == 2 and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)  # the worker process dies (once)
    return x * 10


def test_a_group_whose_worker_dies_is_sent_again_item_by_item(tmp_path: Path) -> None:
    """Item 2 kills its worker once. With no retries of Dask's own, the whole group of
    three is lost; the engine sends its items again one a task and all three come
    back (before, all three failed with KilledWorker)."""
    import dask

    flag = str(tmp_path / "died")
    items = [(x, flag) for x in (1, 2, 3)]
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with engine.connect(None, workers=1) as client:
            outs = {o.item[0]: o for o in engine.run(_dies_once_on_two, items,
                                                      client=client, chunk=3)}
    assert Path(flag).exists()  # the worker did die
    assert {x: (o.ok, o.value) for x, o in outs.items()} == {
        1: (True, 10), 2: (True, 20), 3: (True, 30)}


def _short(x: int) -> int:
    import time

    time.sleep(0.01)
    return -x


class _CountingClient:
    """A Dask client whose ``submit`` calls are counted (one per Dask task)."""

    def __init__(self, client):
        self.client, self.tasks = client, 0

    def submit(self, *args, **kwargs):
        self.tasks += 1
        return self.client.submit(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_engine_auto_chunk_groups_short_items_and_keeps_each_outcome() -> None:
    """60 items of 10 ms on one worker: once their times come back the engine sends
    them in groups (far fewer Dask tasks than items); chunk=1 sends one each."""
    with engine.connect(None, workers=1) as client:
        counting = _CountingClient(client)
        outs = list(engine.run(_short, range(60), client=counting))
        assert sorted(-o.value for o in outs) == list(range(60))
        assert all(o.ok for o in outs)
        assert counting.tasks <= 12
        single = _CountingClient(client)
        assert len(list(engine.run(_short, range(5), client=single, chunk=1))) == 5
        assert single.tasks == 5


def _interval(x: int) -> tuple[float, float]:
    import time

    start = time.time()
    time.sleep(0.1)
    return start, time.time()


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_engine_gives_work_to_workers_that_join_during_a_run(monkeypatch) -> None:
    """Two tasks a worker thread are in flight, the threads counted again as the run
    goes: after the cluster grows from one worker to four, four tasks run at once (two
    at most if the count stayed at the start's one thread)."""
    monkeypatch.setattr(engine, "THREADS_REFRESH_SECONDS", 0.0)
    with engine.connect(None, workers=1) as client:
        seen = []
        for o in engine.run(_interval, range(120), client=client, chunk=1):
            seen.append(o.value)
            if len(seen) == 1:
                client.cluster.scale(4)
                client.wait_for_workers(4, timeout=120)
        assert len(seen) == 120
        assert _most_at_once(seen) == 4


def _worker_settings() -> tuple:
    import os

    import dask

    return (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            dask.config.get("distributed.worker.profile.enabled"))


def test_local_cluster_keeps_the_allocator_default_and_this_process_environment() -> None:
    """Dask's nanny would start workers with MALLOC_TRIM_THRESHOLD_=65536 (10% slower
    training) and write its variables into this process's environment; a worker added
    later gets the same settings, and the caller's own variables are left alone."""
    import os

    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        pytest.skip("MALLOC_TRIM_THRESHOLD_ is set in this environment")
    before = dict(os.environ)
    with engine.connect(None, workers=1) as client:
        assert dict(os.environ) == before
        assert list(client.run(_worker_settings).values()) == [(None, False)]
        os.environ["MGD_HW_TEST_CALLER"] = "kept"
        client.cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        assert list(client.run(_worker_settings).values()) == [(None, False)] * 2
    try:
        assert os.environ.pop("MGD_HW_TEST_CALLER") == "kept"
        assert dict(os.environ) == before
    finally:
        os.environ.pop("MGD_HW_TEST_CALLER", None)


# --- sweeps on a local Dask cluster ------------------------------------------------------


def _sweep(config: Path, out: Path, *extra: str) -> int:
    return main(["sweep", "--config", str(config), "--grid", "mgd.eta=1,2", "--runs", "2",
                 "--out", str(out), *extra])


def test_sweep_end_to_end_same_numbers_on_one_and_two_workers(xor_config: Path,
                                                               tmp_path: Path, capsys) -> None:
    out2, out1 = tmp_path / "w2", tmp_path / "w1"
    assert _sweep(xor_config, out2, "--workers", "2") == 0
    captured = capsys.readouterr()
    assert "sweep: 4 tasks (4 run now" in captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("[")]
    assert len(lines) == 4  # one progress line per task (stderr is not a terminal)
    rows = _rows(out2)
    assert [(r["mgd.eta"], r["run"], r["seed"]) for r in rows] == [
        ("1", "0", "0"), ("1", "1", "1"), ("2", "0", "0"), ("2", "1", "1")]
    assert list(rows[0])[:4] == ["mgd.eta", "run", "seed", "model"]
    assert {"steps_to_0.9", "steps_to_0.95", "final_test_acc", "best_test_acc"} <= set(rows[0])
    assert all(r["status"] == "ok" and r["model"] == "float" and r["steps"] == "600"
               for r in rows)
    assert (out2 / "sweep.png").stat().st_size > 0
    assert len(list((out2 / "points").glob("*.json"))) == 4

    assert _sweep(xor_config, out1, "--workers", "1") == 0
    assert _figures(_rows(out1)) == _figures(rows)
    # three points to a Dask task: the same numbers, still a file and a line per point
    out3 = tmp_path / "chunk3"
    capsys.readouterr()
    assert _sweep(xor_config, out3, "--workers", "2", "--chunk", "3") == 0
    assert _figures(_rows(out3)) == _figures(rows)
    assert len([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[")]) == 4
    assert len(list((out3 / "points").glob("*.json"))) == 4


def test_sweep_run_repeats_train_run(xor_config: Path, tmp_path: Path) -> None:
    """Run r of the sweep is run r of the float model's ensemble (seed + r)."""
    from golden_model.datasets import load_dataset
    from golden_model.train import train_mgd

    base = load_config(xor_config, {"runs": 2, "mgd": {"eta": 2.0}})
    ensemble = train_mgd(base, load_dataset(base.task, base.seed)).history.array("test_acc")
    payload = (load_config(xor_config).to_dict(), sweep.Task((("mgd.eta", "2"),), 1), "auto")
    assert sweep.run_task(payload)["test_acc"] == list(ensemble[:, 1])


def test_resume_runs_only_missing_tasks(xor_config: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert _sweep(xor_config, out, "--workers", "1") == 0
    before = _rows(out)
    files = sorted((out / "points").glob("*.json"))
    kept = {p: p.stat().st_mtime_ns for p in files[1:]}
    files[0].unlink()
    capsys.readouterr()
    assert _sweep(xor_config, out, "--workers", "1") == 0
    captured = capsys.readouterr()
    assert "(1 run now" in captured.out and "3 already finished" in captured.out
    assert len([ln for ln in captured.err.splitlines() if ln.startswith("[")]) == 1
    assert {p: p.stat().st_mtime_ns for p in files[1:]} == kept
    assert files[0].exists()
    assert _figures(_rows(out)) == _figures(before)
    # nothing left to do: no task runs, the results stay
    assert _sweep(xor_config, out, "--workers", "1") == 0
    assert "(0 run now" in capsys.readouterr().out
    # more runs: only the new runs train, the earlier rows stay as they were
    assert main(["sweep", "--config", str(xor_config), "--grid", "mgd.eta=1,2", "--runs",
                 "3", "--out", str(out), "--workers", "1"]) == 0
    assert "6 tasks (2 run now" in capsys.readouterr().out
    rows = _rows(out)
    assert [(r["mgd.eta"], r["run"]) for r in rows] == [
        ("1", "0"), ("1", "1"), ("1", "2"), ("2", "0"), ("2", "1"), ("2", "2")]
    assert _figures([r for r in rows if r["run"] != "2"]) == _figures(before)


def test_other_sweep_in_out_refused_unless_force(xor_config: Path, tmp_path: Path,
                                                 capsys) -> None:
    out = tmp_path / "out"
    assert _sweep(xor_config, out, "--workers", "1", "--set", "steps=200") == 0
    capsys.readouterr()
    assert _sweep(xor_config, out, "--workers", "1") == 2
    err = capsys.readouterr().err
    assert err == (f"mgd-hw: error: --out '{out}' holds a different sweep (another config, "
                   "grid or model); pass --force to replace it or choose another --out\n")
    assert _sweep(xor_config, out, "--workers", "1", "--force") == 0
    assert {r["steps"] for r in _rows(out)} == {"600"}
    assert len(list((out / "points").glob("*.json"))) == 4


def test_failing_point_does_not_stop_the_others(xor_config: Path, tmp_path: Path,
                                                capsys) -> None:
    out = tmp_path / "out"
    code = main(["sweep", "--config", str(xor_config), "--grid", "task.name=xor,mnist",
                 "--set", f"task.data_dir={tmp_path / 'nothing'}", "--out", str(out),
                 "--workers", "1"])
    assert code == 1
    captured = capsys.readouterr()
    assert "1 FAILED" in captured.out
    failures = [ln for ln in captured.err.splitlines() if "FAILED" in ln]
    assert len(failures) == 1
    assert failures[0].startswith("mgd-hw sweep: FAILED task.name=mnist run 0: DataError: ")
    assert "Traceback" not in captured.err
    rows = {r["task.name"]: r for r in _rows(out)}
    assert rows["xor"]["status"] == "ok" and rows["mnist"]["status"] == "failed"
    assert rows["mnist"]["error"].startswith("DataError: task.data_dir")
    record = json.loads(next(p for p in (out / "points").glob("*.json")
                             if "failed" in p.read_text()).read_text())
    assert record["point"] == [["task.name", "mnist"]]


def test_bitexact_model_sweep(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["sweep", "--config", str(EXAMPLES / "hw_xor.toml"), "--set", "steps=200",
                 "--set", "eval_every=100", "--grid", "network.hidden=[2],[3]",
                 "--out", str(out), "--workers", "1", "--targets", "0.75"])
    assert code == 0
    rows = _rows(out)
    assert [r["model"] for r in rows] == ["bitexact", "bitexact"]
    assert [r["network.hidden"] for r in rows] == ["[2]", "[3]"]  # hw.n_params follows
    assert "steps_to_0.75" in rows[0]
    records = sweep_store.load_all(out)
    assert all(r["steps"] == [0, 100, 200] for r in records.values())


def test_sweep_on_a_running_scheduler(xor_config: Path, tmp_path: Path, capsys) -> None:
    """``--scheduler ADDRESS``: the tasks go to that cluster (here a LocalCluster
    started by the test), with the same numbers as the command's own local cluster."""
    from distributed import LocalCluster

    out, local = tmp_path / "remote", tmp_path / "local"
    args = ["sweep", "--config", str(xor_config), "--grid", "seed=3,5", "--runs", "2"]
    with LocalCluster(n_workers=1, threads_per_worker=1,
                      dashboard_address="127.0.0.1:0") as cluster:
        assert main([*args, "--out", str(out), "--scheduler", cluster.scheduler_address]) == 0
    assert f"run now on {cluster.scheduler_address}" in capsys.readouterr().out
    assert main([*args, "--out", str(local), "--workers", "1"]) == 0
    rows = _rows(out)
    assert [r["seed"] for r in rows] == ["3", "4", "5", "6"]
    assert _figures(rows) == _figures(_rows(local))


# --- mgd-hw regress on the engine --------------------------------------------------------


def test_regress_on_a_scheduler_reports_a_failing_job() -> None:
    """``regress --scheduler``: the jobs go to the cluster behind the address; a job
    that raises (here: a config file that does not exist) is one failed outcome."""
    from distributed import LocalCluster

    from mgd_hw import regress

    bad = regress.Job("nothing/trainer/run0", "no_such.toml", "trainer", 0, steps=10)
    with LocalCluster(n_workers=1, threads_per_worker=1,
                      dashboard_address="127.0.0.1:0") as cluster:
        [outcome] = regress.run_all([bad], 1, scheduler=cluster.scheduler_address)
    assert outcome.name == "nothing/trainer/run0" and not outcome.passed
    assert outcome.message.startswith("ConfigError: config file")
    [outcome] = regress.run_all([bad], 1)  # the default: a process pool
    assert outcome.message.startswith("ConfigError: config file")
