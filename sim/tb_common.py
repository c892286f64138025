"""Shared cocotb testbench pieces: configuration from the runner, clock and reset, the
per-cycle drive/compare loop and the first-mismatch report.

Timing convention (Verilator reads right after a rising edge see pre-edge values, so
we avoid them): inputs for cycle t are written at the falling edge before the rising
edge that ends cycle t; after a short settle the DUT's outputs (registers of cycle t
plus any combinational outputs of the new inputs) are compared with the model's
``outputs``; then the model ``tick``s, and the rising edge does the same to the DUT.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from golden_model.config import MGDConfig, build_config
from golden_model.fixed import to_signed

CLOCK_NS = 10


def data_path_from_env() -> str:
    """The path of the run's data file (``sim.data_file``), written by sim.runner."""
    return os.environ["MGD_DATA"]


def config_from_env() -> tuple[MGDConfig, int, int, dict]:
    """(config, cycles, stimulus seed, extra settings) passed by sim.runner."""
    cfg = build_config(json.loads(os.environ["MGD_CONFIG"]))
    cycles = int(os.environ.get("MGD_CYCLES", "1000"))
    seed = int(os.environ.get("MGD_STIM_SEED", "1"))
    extra = json.loads(os.environ.get("MGD_EXTRA", "{}"))
    return cfg, cycles, seed, extra


class Mismatch(AssertionError):
    """The first difference between DUT and model."""

    def __init__(self, cycle: int, signal: str, expected, actual):
        super().__init__(f"cycle {cycle}: signal {signal}: expected {expected}, got {actual}")
        self.cycle = cycle


async def start(dut) -> None:
    """Start the clock and hold reset for two cycles; returns at a falling edge."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def settle() -> None:
    """Let combinational outputs follow inputs written at this falling edge."""
    await Timer(1, unit="ns")


def read_unsigned(handle) -> int:
    return handle.value.to_unsigned()


def read_signed(handle) -> int:
    return handle.value.to_signed()


def unpack_signed(bus: int, n: int, width: int) -> list[int]:
    """Element i of a flat bus of n signed fields of ``width`` bits."""
    mask = (1 << width) - 1
    return [to_signed((bus >> (i * width)) & mask, width) for i in range(n)]


def check(cycle: int, signal: str, expected, actual) -> None:
    if expected != actual:
        raise Mismatch(cycle, signal, expected, actual)


def check_array(cycle: int, signal: str, expected, actual) -> None:
    """Compare element-wise; report the first differing index."""
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        if int(e) != int(a):
            raise Mismatch(cycle, f"{signal}[{i}]", int(e), int(a))
