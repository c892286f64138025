"""The task's data in the hardware formats as a file in the build folder.

A trainer run loads and quantizes its data set once, in the process that builds the
design (:func:`gateware.tops.load_data`), and writes it here; the cocotb testbench and
the model worker read this file instead of loading the task again by name.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from golden_model.datapath import HwData

DATA_FILE = "data.npz"


def write_data(data: HwData, path: pathlib.Path) -> pathlib.Path:
    """Write the arrays of ``data`` (uncompressed NumPy .npz); returns ``path``."""
    arrays = {f.name: getattr(data, f.name) for f in dataclasses.fields(HwData)}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def data_digest(data: HwData) -> str:
    """A short SHA-256 of the arrays of ``data``: part of a build folder's name, so two
    data sets with one config never share a build."""
    import hashlib

    h = hashlib.sha256()
    for f in dataclasses.fields(HwData):
        a = np.ascontiguousarray(getattr(data, f.name))
        h.update(f"{f.name}{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def read_data(path: str | pathlib.Path) -> HwData:
    """The :class:`HwData` a :func:`write_data` file holds."""
    with np.load(path) as npz:
        return HwData(**{f.name: npz[f.name] for f in dataclasses.fields(HwData)})
