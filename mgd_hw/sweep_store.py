"""A sweep's output folder, the record that makes it resumable.

``DIR/sweep.json`` names the sweep (base config, grid, model); a folder holding
another sweep is refused unless ``force``. Each finished task is one JSON file under
``DIR/points/`` (``<task key>.json``), written to a temporary file and moved into place
with ``os.replace``, so an interrupted sweep leaves whole files only. A task whose file
says ``"status": "ok"`` is never run again; a failed one is retried. ``results.csv`` is
rebuilt from the point files, never appended to.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .sweep import Task

POINTS = "points"
IDENTITY = "sweep.json"


class SweepMismatch(Exception):
    """The output folder holds a different sweep."""


def identity(base: dict[str, Any], grid: list[tuple[str, list[str]]], model: str) -> dict:
    """What makes two sweeps the same: the config, the grid (fields and values in
    order) and the model choice. ``--runs`` and ``--targets`` are not part of it: more
    runs add tasks, targets are read from the stored histories. As JSON reads it back
    (lists, not tuples), so it compares equal to the stored one."""
    ident = {"config": base, "grid": [[f, list(v)] for f, v in grid], "model": model}
    return json.loads(json.dumps(ident))


def open_folder(out: Path, ident: dict[str, Any], force: bool) -> None:
    """Create ``out`` for this sweep, or check it holds this sweep; ``force`` clears a
    folder holding another one. Raises :class:`SweepMismatch` in one line."""
    if out.exists() and not out.is_dir():
        raise SweepMismatch(f"--out '{out}' is a file, not a folder")
    path = out / IDENTITY
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old != ident:
            if not force:
                raise SweepMismatch(
                    f"--out '{out}' holds a different sweep (another config, grid or model); "
                    "pass --force to replace it or choose another --out")
            shutil.rmtree(out / POINTS, ignore_errors=True)
            for name in ("results.csv", "sweep.png"):
                (out / name).unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()) and not force:
        raise SweepMismatch(f"--out '{out}' is not empty and holds no sweep; pass --force "
                            "to write into it or choose another --out")
    (out / POINTS).mkdir(parents=True, exist_ok=True)
    write_json(path, ident)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` atomically: a temporary file in the same folder, then os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(out: Path, task: Task, seed: int, value: dict[str, Any] | None,
         error: str = "") -> None:
    """Record a finished task (``value`` from ``sweep.run_task``) or its failure."""
    record = {"point": [list(p) for p in task.point], "run": task.run, "seed": seed,
              "status": "failed" if error else "ok", "error": error, **(value or {})}
    write_json(out / POINTS / f"{task.key}.json", record)


def load_all(out: Path) -> dict[str, dict[str, Any]]:
    """Every readable point file by task key (a damaged file counts as not done)."""
    records = {}
    for path in sorted((out / POINTS).glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return records


def finished(out: Path) -> set[str]:
    """Keys of the tasks that finished without error."""
    return {k for k, r in load_all(out).items() if r.get("status") == "ok"}


def steps_to(record: dict[str, Any], target: float, unit: str = "steps") -> int | None:
    """The first evaluated step whose test accuracy reaches ``target`` (None: never), or
    the updates made by then (``unit="updates"``; None when the record has none)."""
    counts = record.get(unit)
    if counts is None:
        return None
    for count, acc in zip(counts, record.get("test_acc", []), strict=True):
        if acc >= target - 1e-12:
            return count
    return None


def target_column(target: float, unit: str = "steps") -> str:
    return f"{unit}_to_{target:g}"


def rows(tasks: list[Task], records: dict[str, dict[str, Any]],
         targets: list[float]) -> list[dict[str, Any]]:
    """One row per task of this sweep that has a record, in task order."""
    out = []
    for task in tasks:
        rec = records.get(task.key)
        if rec is None:
            continue
        row: dict[str, Any] = dict(task.point)
        ok = rec["status"] == "ok"
        acc = rec.get("test_acc", [])
        row.update(run=task.run, seed=rec.get("seed", ""), model=rec.get("model", ""),
                   status=rec["status"],
                   final_test_acc=acc[-1] if ok and acc else "",
                   best_test_acc=max(acc) if ok and acc else "",
                   final_cost=rec["cost"][-1] if ok and rec.get("cost") else "",
                   steps=rec["steps"][-1] if ok and rec.get("steps") else "")
        for unit in ("steps", "updates"):
            for t in targets:
                s = steps_to(rec, t, unit) if ok else None
                row[target_column(t, unit)] = "" if s is None else s
        row.update(seconds=rec.get("seconds", ""), error=rec.get("error", ""))
        out.append(row)
    return out


def write_csv(out: Path, fields: list[str], table: list[dict[str, Any]],
              targets: list[float]) -> Path:
    """``results.csv``: the swept fields, then the figures (atomically replaced)."""
    columns = [*fields, "run", "seed", "model", "status", "final_test_acc", "best_test_acc",
               "final_cost", "steps", *(target_column(t) for t in targets),
               *(target_column(t, "updates") for t in targets), "seconds", "error"]
    path = out / "results.csv"
    fd, tmp = tempfile.mkstemp(prefix=".results.csv.", dir=out)
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    os.replace(tmp, path)
    return path
