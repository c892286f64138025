"""The FPGA families and parts that synthesis estimates can target (nextpnr's names)."""

from __future__ import annotations

from dataclasses import dataclass

TARGETS: tuple[str, ...] = ("ecp5", "ice40")

# nextpnr's device flags (without the leading --) and the part each one names.
DEVICES: dict[str, dict[str, str]] = {
    "ecp5": {
        "12k": "LFE5U-12F", "25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F",
        "um-25k": "LFE5UM-25F", "um-45k": "LFE5UM-45F", "um-85k": "LFE5UM-85F",
        "um5g-25k": "LFE5UM5G-25F", "um5g-45k": "LFE5UM5G-45F", "um5g-85k": "LFE5UM5G-85F",
    },
    "ice40": {
        "lp384": "iCE40LP384", "lp1k": "iCE40LP1K", "lp4k": "iCE40LP4K",
        "lp8k": "iCE40LP8K", "hx1k": "iCE40HX1K", "hx4k": "iCE40HX4K",
        "hx8k": "iCE40HX8K", "up3k": "iCE40UP3K", "up5k": "iCE40UP5K",
        "u1k": "iCE5LP1K", "u2k": "iCE5LP2K", "u4k": "iCE5LP4K",
    },
}
# The largest part of each family with an easy package: estimates fit first; a user
# picks a smaller part with --device to see whether it fits there.
DEFAULT_DEVICE: dict[str, str] = {"ecp5": "85k:CABGA381", "ice40": "hx8k:ct256"}
# Every LFE5U part comes in CABGA381, nextpnr's own default (which it warns about when
# it is left implicit). iCE40 packages differ per part: nextpnr picks one.
DEFAULT_PACKAGE: dict[str, str | None] = {"ecp5": "CABGA381", "ice40": None}
# iCE40 parts with SB_MAC16 multipliers: only there does Yosys map to them (-dsp).
_ICE40_DSP = frozenset({"up3k", "up5k", "u1k", "u2k", "u4k"})


@dataclass(frozen=True)
class Device:
    """A nextpnr device: ``name`` is its flag without ``--`` (``85k``, ``hx8k``)."""

    target: str
    name: str
    package: str | None

    @property
    def part(self) -> str:
        return DEVICES[self.target][self.name]

    @property
    def dsp(self) -> bool:
        """Whether Yosys maps multipliers to the part's DSP blocks (``-dsp``)."""
        return self.target == "ice40" and self.name in _ICE40_DSP

    def nextpnr_args(self) -> list[str]:
        return [f"--{self.name}", *(["--package", self.package] if self.package else [])]
