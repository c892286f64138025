"""Run an Amaranth-simulator testbench (the fast unit tests beside the cocotb ones)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_testbench(dut, bench: Callable, clock_period: float = 1e-6) -> None:
    """Simulate ``dut`` with one clock and the async testbench ``bench(ctx)``.

    The simulation runs in a new thread and re-raises what it raised. Why: CPython
    3.11 keeps frames in 16 KiB chunks and frees a chunk as soon as it is empty. The
    Amaranth simulator's generated evaluation function has a large frame; when it
    happens to end near a chunk boundary, every helper it calls maps and unmaps a new
    chunk (measured: 1.6 M mmap/munmap pairs, 4 s -> 55 s for one test). Whether that
    happens depends on how deep the caller's stack is, which differs between plain
    pytest and a pytest-xdist worker. A fresh thread starts with an empty frame stack,
    so the timing no longer depends on the runner.
    """
    from amaranth.sim import Simulator

    sim = Simulator(dut)
    sim.add_clock(clock_period)
    sim.add_testbench(bench)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            sim.run()
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
