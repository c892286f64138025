"""mgd-hw: multiplexed gradient descent, from the float model to bit-exact RTL.

:mod:`mgd_hw.api` is the Python entry point (config, data, training, Verilog, the RTL
run and the comparison); ``mgd-hw`` is the command line over it.
"""

from . import api

__all__ = ["api"]
