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

``chunk`` sets how many items go to one Dask task. A task's round trip (submit,
schedule, result: 5 to 30 ms measured on this project's machine) is paid once per
task, so sweeps of short points (a 10k-step digits point trains in about 40 ms) share
it among a group. ``chunk="auto"`` (the default) sizes each group as it is sent from
the successful item times the workers measured so far (:class:`ChunkSizer`, a high
quantile of the recent ones): groups of about
``TASK_SECONDS`` of work, never more than a fair share of what is left, one item a
task until the first times come back and for items that take longer than that. An
integer fixes the size. The outcomes of a group come back together when the whole
group is done.

Items are sent as workers free up, two tasks per worker thread in flight: the worker
starts its next task while the client receives the last one and sends another, so the
round trip overlaps the training. The worker threads are counted again, at most
every ``THREADS_REFRESH_SECONDS``, as tasks come back, so workers that join a
cluster during a sweep get work. A group lost as a whole (its worker died, after
Dask's own retries) is sent again one item a task, so only the item that kills its
worker fails.

A local cluster is set up for this work (:class:`connect`, the settings in force for
the cluster's whole life): Dask's nanny would start every worker with
``MALLOC_TRIM_THRESHOLD_=65536``, which pins glibc's mmap threshold
at 128 kB, so every large NumPy temporary is a fresh ``mmap`` and its pages fault
again: the same training ran 10% slower in such a process (bench/bench_sweep.py). The
workers keep the allocator's default, and the variables Dask writes into this
process's environment (the nanny's, the scheduler's address) are put back as they
were (they would leak into every later cluster and subprocess). The workers'
statistical profiler (a stack sample every 10 ms, for a dashboard nobody watches
here) is off as well.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("dask", "pool")
AUTO = "auto"
# chunk="auto": a Dask task holds about this much work. The round trip (5-30 ms) is
# then a few percent of a task at most, and it overlaps the worker's next task anyway;
# a task this short still hands results back, and balances, often.
TASK_SECONDS = 0.5
# chunk="auto" estimates an item's time from the last this many items measured
RECENT_ITEMS = 32
# how often the cluster's worker threads are counted again (one scheduler call)
THREADS_REFRESH_SECONDS = 2.0
# Dask settings for a local cluster (module docstring): the glibc allocator's defaults
# (None drops the nanny's variable; one the user exported still reaches the workers
# through the environment), no statistical profiler, and the event-loop health check,
# host monitor and the nannies' memory polls 10-50x less often than Dask's defaults
# (20 ms, 500 ms, 100 ms): on 2 cores every wake-up of this process or a worker's
# event loop is time taken from a worker's training (about half of this process's
# CPU time during a sweep)
LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


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


def check_chunk(chunk: int | str) -> int | str:
    """``chunk`` as given if it is a positive integer or ``"auto"``; else ValueError."""
    if chunk == AUTO or (isinstance(chunk, int) and not isinstance(chunk, bool) and chunk >= 1):
        return chunk
    raise ValueError(f"chunk must be a positive integer or {AUTO!r}, not {chunk!r}")


def run(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 2,
        scheduler: str | None = None, backend: str = "dask",
        client: Any = None, chunk: int | str = AUTO) -> Iterator[Outcome]:
    """Run ``fn(item)`` for every item on ``backend``; yield :class:`Outcome` in the
    order they finish. ``scheduler`` (an address) implies the ``dask`` backend;
    ``client``, an open ``distributed.Client`` (see :class:`connect`), reuses its
    cluster instead of starting one (several batches on one cluster).

    ``fn`` must be importable by the workers (a module-level function), and items and
    values picklable. ``chunk``: items per Dask task, a positive integer or ``"auto"``
    (module docstring; the pool backend takes them one by one).
    """
    items = list(items)
    check_chunk(chunk)
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
              chunk: int | str) -> Iterator[Outcome]:
    with connect(scheduler, workers) as client:
        yield from _map(client, fn, items, chunk)


@dataclass
class ChunkSizer:
    """How many items the next Dask task takes.

    ``chunk``: a fixed positive size, or ``"auto"``: ``TASK_SECONDS`` over the 75th
    percentile of the last ``RECENT_ITEMS`` successful items' times measured in the
    workers (a high quantile, so that a grid of short and long points is sized for
    its long ones; a worker's first items, which load the data and the compiled
    kernels, drop out of it as more come back), at most ``remaining / threads``
    rounded up so that what is left spreads over the workers, and 1 before any time
    is known. ``threads``: the workers' threads, two tasks each in flight
    (``slots``).
    """

    chunk: int | str
    threads: int
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_ITEMS))

    def __post_init__(self) -> None:
        check_chunk(self.chunk)

    def observe(self, seconds: list[float]) -> None:
        """Record the measured time of each successful item of a finished group."""
        self.recent.extend(seconds)

    @property
    def slots(self) -> int:
        """Tasks in flight at once: the one a worker thread runs and its next."""
        return 2 * self.threads

    def per_item(self) -> float | None:
        """The item time groups are sized for (None: nothing measured yet)."""
        if not self.recent:
            return None
        if len(self.recent) == 1:
            return self.recent[0]
        return statistics.quantiles(self.recent, n=4, method="inclusive")[2]

    def size(self, remaining: int) -> int:
        """The size of the next group, with ``remaining`` items not yet sent."""
        if self.chunk != AUTO:
            return min(self.chunk, remaining)
        per_item = self.per_item()
        if per_item is None:
            return 1
        fair = -(-remaining // self.threads)
        return max(1, min(int(TASK_SECONDS / max(per_item, 1e-6)), fair))


def _map(client, fn, items, chunk: int | str) -> Iterator[Outcome]:
    from distributed import as_completed

    def threads() -> int:
        return sum(client.nthreads().values()) or 1

    pending = deque(items)
    sizer = ChunkSizer(chunk, threads=threads())
    counted = time.monotonic()
    owner: dict[str, tuple] = {}  # future key -> (future, its group), while in flight
    finished = as_completed(loop=client.loop)

    def send(group: list) -> None:
        # pure=False: two equal groups (the same point twice) are still two tasks
        fut = client.submit(_guarded_group, fn, group, pure=False)
        owner[fut.key] = (fut, group)
        finished.add(fut)

    def top_up() -> None:
        nonlocal counted
        if time.monotonic() - counted > THREADS_REFRESH_SECONDS:
            sizer.threads, counted = threads(), time.monotonic()
        while pending and len(owner) < sizer.slots:
            send([pending.popleft() for _ in range(sizer.size(len(pending)))])

    top_up()
    try:
        for fut in finished:
            _, group = owner.pop(fut.key)
            outcomes, seconds = _group_outcomes(group, fut)
            fut.release()
            if outcomes is None:
                # the group as a whole was lost (its worker died, after Dask's own
                # retries): each item again on its own, so only the culprit fails
                for item in group:
                    send([item])
                continue
            sizer.observe(seconds)
            top_up()
            yield from outcomes
    finally:
        # the caller stopped early (an interrupt, an error in its loop)
        client.cancel([f for f, _ in owner.values()])


def _guarded_group(fn, group: list) -> list[tuple[bool, Any, float]]:
    """Run in the worker: each item of a group guarded on its own, so one item's
    error does not cost the others, and timed (the auto chunk size learns from it)."""
    out = []
    for item in group:
        start = time.perf_counter()
        ok, value = _guarded(fn, item)
        out.append((ok, value, time.perf_counter() - start))
    return out


def _group_outcomes(group: list, fut) -> tuple[list[Outcome] | None, list[float]]:
    """The outcomes of a finished group and its successful items' times in the worker.
    A group of several items lost as a whole gives None (the caller sends them again
    one by one); a single item's loss is its outcome."""
    try:
        results = fut.result()
    except Exception as exc:  # the worker itself died, or the result did not unpickle
        if len(group) > 1:
            return None, []
        return [Outcome(group[0], None, describe_error(exc))], []
    outcomes = [_guarded_outcome(item, ok, value)
                for item, (ok, value, _) in zip(group, results, strict=True)]
    return outcomes, [seconds for ok, _, seconds in results if ok]


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
    return _guarded_outcome(item, ok, value)


def _guarded_outcome(item, ok: bool, value) -> Outcome:
    """What :func:`_guarded` returned for ``item``, as its outcome."""
    return Outcome(item, value) if ok else Outcome(item, None, value)


class connect:
    """A ``distributed.Client`` as a context manager: to the scheduler at ``address``,
    or to a new ``LocalCluster`` of ``workers`` one-thread processes (closed on exit).

    A scheduler that cannot be reached is a ``ConnectionError`` with one line."""

    def __init__(self, address: str | None, workers: int = 2, timeout: float = 10.0):
        self.address, self.workers, self.timeout = address, workers, timeout
        self.cluster = self.client = None
        self._environ: dict[str, str | None] | None = None
        self._settings = ExitStack()

    def __enter__(self):
        import logging

        from distributed import Client, LocalCluster

        # Dask logs every worker start and stop at INFO; the commands print their own
        # progress and each task's error, so only warnings and errors get through here,
        # and nothing from the local workers (a worker that dies fails its task).
        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.address is None:
            import dask

            # set for the cluster's whole life: a nanny reads them when it starts, and
            # one may start later (a worker added, or restarted after it died)
            self._settings.enter_context(dask.config.set(LOCAL_WORKER_CONFIG))
            self._environ = _dask_environ()
            try:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                            processes=True, dashboard_address="127.0.0.1:0",
                                            worker_dashboard_address="127.0.0.1:0",
                                            local_directory=_scratch(),
                                            silence_logs=logging.CRITICAL)
            finally:
                _restore_environ(self._environ)
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
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            if self._environ is not None:
                _restore_environ(self._environ)
            self._settings.close()


# What Dask writes into the environment of the process that starts a local cluster,
# besides the nanny's pre-spawn variables: the scheduler's address, the parent's pid
# (process titles) and the hash seed the nanny fixes for its workers
DASK_VARIABLES = ("DASK_SCHEDULER_ADDRESS", "__DASK_PARENT_PID", "PYTHONHASHSEED")


def _dask_environ() -> dict[str, str | None]:
    """The current values (None: unset) of the variables a local cluster's start
    writes into this process's environment (the nanny's pre-spawn ones included)."""
    import dask

    keys = set(dask.config.get("distributed.nanny.pre-spawn-environ")) | set(DASK_VARIABLES)
    return {k: os.environ.get(k) for k in sorted(keys)}


def _restore_environ(saved: dict[str, str | None]) -> None:
    """Those variables as they were in ``saved`` (unset where they were unset); the
    rest of the environment is left as it is."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _scratch() -> str:
    """The workers' scratch folder: under the system temp dir, never the checkout."""
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"mgd-hw-dask-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path
