"""The task engine shared by ``mgd-hw sweep`` and ``mgd-hw regress``: run independent
calls ``fn(item)`` and hand each outcome back as soon as it finishes.

Two backends, one interface (:func:`run`):

- ``dask``: ``dask.distributed``. With ``scheduler=None`` a ``LocalCluster`` on this
  machine (``workers`` processes, one thread each: the models are NumPy/numba code that
  holds the GIL, so threads would not add speed); with an address
  (``tcp://host:8786``) the running cluster behind it. The same code serves both, so a
  sweep that works on a laptop runs unchanged on a cluster whose workers have this
  package installed.
- ``pool``: a ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes,
  what ``mgd-hw regress`` used before the engine and still uses when no scheduler is
  given (no Dask start-up for a short regression).

A call that raises does not stop the others: its exception comes back as the outcome's
``error`` (the type and message, as one line).

``chunk`` > 1 sends the items to Dask in groups of that many, one task a group: a task's
round trip (submit, schedule, result; 15 to 30 ms measured on this project's machine)
is then shared by the group, which is what makes sweeps of short points (a 10k-step
digits point trains in well under a second) cheap. The outcomes of a group come back
together when the whole group is done, so keep it at 1 for long points: a group
also balances worse across the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

BACKENDS = ("dask", "pool")


@dataclass
class Outcome:
    """One finished call: ``item`` as submitted, ``value`` (None on error), ``error``
    ("" when it succeeded)."""

    item: Any
    value: Any
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line (a worker's traceback stays in its log)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 2,
        scheduler: str | None = None, backend: str = "dask",
        client: Any = None, chunk: int = 1) -> Iterator[Outcome]:
    """Run ``fn(item)`` for every item on ``backend``; yield :class:`Outcome` in the
    order they finish. ``scheduler`` (an address) implies the ``dask`` backend;
    ``client``, an open ``distributed.Client`` (see :class:`connect`), reuses its
    cluster instead of starting one (several batches on one cluster).

    ``fn`` must be importable by the workers (a module-level function), and items and
    values picklable. ``chunk``: items per Dask task (module docstring; the pool
    backend takes them one by one).
    """
    items = list(items)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer, not {chunk}")
    if not items:
        return
    if client is not None:
        yield from _map(client, fn, items, chunk)
    elif scheduler is not None or backend == "dask":
        yield from _run_dask(fn, items, workers, scheduler, chunk)
    elif backend == "pool":
        yield from _run_pool(fn, items, workers)
    else:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def _run_pool(fn, items, workers: int) -> Iterator[Outcome]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_guarded, fn, item): item for item in items}
        for fut in as_completed(futures):
            yield _outcome(futures[fut], fut)


def _run_dask(fn, items, workers: int, scheduler: str | None,
              chunk: int = 1) -> Iterator[Outcome]:
    with connect(scheduler, workers) as client:
        yield from _map(client, fn, items, chunk)


def _map(client, fn, items, chunk: int = 1) -> Iterator[Outcome]:
    from distributed import as_completed

    groups = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    # pure=False: two equal items (the same point twice) are still two tasks
    futures = client.map(_guarded_group, [fn] * len(groups), groups, pure=False)
    owner = {fut.key: group for fut, group in zip(futures, groups, strict=True)}
    try:
        for fut in as_completed(futures):
            yield from _group_outcomes(owner[fut.key], fut)
            fut.release()
    finally:
        client.cancel([f for f in futures if not f.done()])


def _guarded_group(fn, group: list) -> list[tuple[bool, Any]]:
    """Run in the worker: each item of a group guarded on its own, so one item's
    error does not cost the others."""
    return [_guarded(fn, item) for item in group]


def _group_outcomes(group: list, fut) -> Iterator[Outcome]:
    try:
        results = fut.result()
    except Exception as exc:  # the worker itself died, or the result did not unpickle
        for item in group:
            yield Outcome(item, None, describe_error(exc))
        return
    for item, (ok, value) in zip(group, results, strict=True):
        yield Outcome(item, value) if ok else Outcome(item, None, value)


def _guarded(fn, item) -> tuple[bool, Any]:
    """Run in the worker: the task's own error comes back as a value (one line), so
    the worker neither logs a traceback nor has to pickle the exception."""
    try:
        return True, fn(item)
    except Exception as exc:
        return False, describe_error(exc)


def _outcome(item, fut) -> Outcome:
    try:
        ok, value = fut.result()
    except Exception as exc:  # the worker itself died, or the result did not unpickle
        return Outcome(item, None, describe_error(exc))
    return Outcome(item, value) if ok else Outcome(item, None, value)


class connect:
    """A ``distributed.Client`` as a context manager: to the scheduler at ``address``,
    or to a new ``LocalCluster`` of ``workers`` one-thread processes (closed on exit).

    A scheduler that cannot be reached is a ``ConnectionError`` with one line."""

    def __init__(self, address: str | None, workers: int = 2, timeout: float = 10.0):
        self.address, self.workers, self.timeout = address, workers, timeout
        self.cluster = self.client = None

    def __enter__(self):
        import logging

        from distributed import Client, LocalCluster

        # Dask logs every worker start and stop at INFO; the commands print their own
        # progress and each task's error, so only warnings and errors get through here,
        # and nothing from the local workers (a worker that dies fails its task).
        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.address is None:
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=True, dashboard_address="127.0.0.1:0",
                                        worker_dashboard_address="127.0.0.1:0",
                                        local_directory=_scratch(),
                                        silence_logs=logging.CRITICAL)
            self.client = Client(self.cluster)
            # Ctrl-C reaches the whole process group: the command stops the cluster
            # itself, so the worker processes need not each print a KeyboardInterrupt
            # (their nannies live in this process)
            self.client.run(_ignore_sigint)
        else:
            try:
                self.client = Client(self.address, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(f"cannot reach the Dask scheduler at {self.address!r}: "
                                      f"{describe_error(exc)}") from None
        return self.client

    def __exit__(self, *exc_info) -> None:
        import logging

        # closing races heartbeats in flight ("Stream is closed"): nothing to report
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _scratch() -> str:
    """The workers' scratch folder: under the system temp dir, never the checkout."""
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"mgd-hw-dask-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path
