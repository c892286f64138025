"""`mgd-hw sim`: build, run and compare one top under cocotb/Verilator; FST support."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mgd_hw.cli import main
from sim.fst_support import lz4_support_dir

SMALL = ["--set", "hw.n_params=4", "--set", "hw.lfsr_bits=16", "--perturbation", "code"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sim_cli_bit_exact_with_waves(build_root, capsys):
    rc = main(["sim", "--top", "perturb_gen", *SMALL, "--cycles", "3000", "--waves", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["bit_exact"] and out["cycles"] == 3000 and out["top"] == "perturb_gen"
    fst = build_root.joinpath(out["waves"]) if out["waves"] else None
    assert fst is not None and fst.stat().st_size > 1000
    # an FST file starts with its header block: type 0, then a 64-bit length of 329
    head = fst.read_bytes()[:9]
    assert head[0] == 0 and int.from_bytes(head[1:9], "big") == 329


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top", "nope"], "--top must be one of perturb_gen, cost_acc, weight_update, core, "
                            "trainer, not 'nope'"),
        (["--cycles", "0"], "--cycles must be a positive integer, not 0"),
        (["--set", "hw.n_params=0"], "hw.n_params"),
        (["--config", str(EXAMPLES / "hw_xor.toml"), "--run", "-1"],
         "mgd-hw: error: --run must be a run index >= 0, not -1"),
    ],
)
def test_sim_cli_bad_input(capsys, argv, message):
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mgd-hw: error: ") and message in err and err.count("\n") == 1


def lz4_block_decode(block: bytes) -> bytes:
    """A plain LZ4 block decoder (literals and matches), to check the FST shim."""
    out = bytearray()
    i = 0
    while i < len(block):
        token = block[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = block[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += block[i:i + lit]
        i += lit
        if i >= len(block):
            break
        offset = block[i] | (block[i + 1] << 8)
        i += 2
        mlen = (token & 15) + 4
        if token & 15 == 15:
            while True:
                b = block[i]
                i += 1
                mlen += b
                if b != 255:
                    break
        for _ in range(mlen):
            out.append(out[-offset])
    return bytes(out)


def test_lz4_shim_blocks_decode(tmp_path):
    folder = lz4_support_dir(tmp_path)
    src = tmp_path / "t.cpp"
    src.write_text(
        '#include <lz4.h>\n#include <cstdio>\n#include <vector>\n'
        'int main(int argc, char** argv) {\n'
        '  int n = atoi(argv[1]); std::vector<char> in(n), out(LZ4_compressBound(n));\n'
        '  for (int i = 0; i < n; i++) in[i] = (char)(i * 7 + 3);\n'
        '  int k = LZ4_compress_default(in.data(), out.data(), n, (int)out.size());\n'
        '  if (LZ4_compress_default(in.data(), out.data(), n, k - 1) != 0) return 3;\n'
        '  fwrite(out.data(), 1, k, stdout); return 0; }\n')
    exe = tmp_path / "t"
    subprocess.run(["g++", "-O1", f"-I{folder}", "-include", "cstdlib", str(src), "-o", str(exe),
                    f"-L{folder}", "-llz4"], check=True)
    for n in (0, 1, 14, 15, 16, 269, 270, 271, 5000):
        block = subprocess.run([str(exe), str(n)], check=True, capture_output=True).stdout
        assert lz4_block_decode(block) == bytes((i * 7 + 3) & 255 for i in range(n))
