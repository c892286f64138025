"""cocotb testbench: the weight-update unit against WeightUpdateModel, every cycle.

Random stimulus from ``np.random.default_rng(MGD_STIM_SEED)`` (see :func:`stimulus`):
codes from a pool of random neg/active patterns that changes now and then, C~ over
the full signed range, ct_valid ~50 %, update ~5 %, loads ~2 %. For the serial unit the
commands are driven regardless of ``ready``: the model drops them when busy, as the
hardware does.

Compared on every cycle: ``ready``, ``sat_g``, ``sat_theta`` and the parameters -
the parallel unit's flat ``theta`` bus as one int (unpacked only on a mismatch, to
name the element), the serial unit's ``rd_data`` for a random ``rd_addr`` whenever
the previous edge was in an idle cycle and wrote nothing.

The unit has no combinational path from inputs to outputs, so at each falling edge
the outputs (registers of cycle t) are read first and then the inputs of cycle t are
written; the model ``tick``s in between, exactly as the rising edge does.

``MGD_EXTRA`` settings:

- ``expect_saturation``: drive extreme C~ half of the time and assert at the end that
  the model's saturation counters are non-zero (the DUT's equal them every cycle);
- ``model_eta_shift_offset``: add this to the model's eta_shift only, so a mismatch
  must be reported (tests the testbench);
- ``command_period``: load every parameter first, then issue one command every
  ``command_period`` cycles and no loads (with N / P + 1 the serial unit accepts
  each, so parallel and serial units see the same command sequence);
- ``theta_out``: write the final theta (read from the DUT) as JSON to this path.
"""

from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden_model.config import MGDConfig, derive
from golden_model.fixed import pack_bits, pack_signed, smax, smin
from golden_model.weight_update import WeightUpdateModel
from sim.tb_common import check, config_from_env, start, unpack_signed

CODE_POOL = 32


def stimulus(cfg: MGDConfig, cycles: int, seed: int, extra: dict | None = None) -> dict:
    """Random input sequences of ``cycles`` cycles, identical for any hw.lanes.

    Returns plain Python lists (fast to index per cycle): ``code_idx`` (an index into
    ``neg_pool``/``active_pool``, packed bus values, and ``code_pool``, the decoded
    codes), ``ct_valid``, ``ct``, ``update``, ``load_en``, ``load_addr``,
    ``load_data``, ``rd_addr``. Values that only matter with their strobe (C~, load
    address and data) are held between strobes, so the testbench writes few inputs.
    """
    extra = extra or {}
    h = cfg.hw
    n = h.n_params
    rng = np.random.default_rng(seed)
    neg_bits = rng.random((CODE_POOL, n)) < 0.5
    active_bits = rng.random((CODE_POOL, n)) < 0.75
    active_bits[0] = True  # all active, as the code/walsh generators give
    neg_pool = [pack_bits(b) for b in neg_bits]
    active_pool = [pack_bits(b) for b in active_bits]
    code_pool = [WeightUpdateModel.decode(a, b, n) for a, b in zip(neg_pool, active_pool,
                                                                    strict=True)]
    change = rng.random(cycles) < 0.25
    code_idx = np.where(change, rng.integers(0, CODE_POOL, cycles), -1)
    code_idx[0] = max(code_idx[0], 0)
    code_idx = _hold(code_idx, code_idx >= 0)

    lo_c, hi_c = smin(h.ctilde_bits), smax(h.ctilde_bits)
    ct = rng.integers(lo_c, hi_c + 1, cycles)
    if extra.get("expect_saturation"):
        extreme = rng.random(cycles) < 0.5
        ct = np.where(extreme, np.where(rng.random(cycles) < 0.5, lo_c, hi_c), ct)
    ct_valid = rng.random(cycles) < 0.5
    update = rng.random(cycles) < 0.05
    load_en = rng.random(cycles) < 0.02
    load_addr = rng.integers(0, n, cycles)
    load_data = rng.integers(smin(h.theta_bits), smax(h.theta_bits) + 1, cycles)
    rd_addr = rng.integers(0, n, cycles)

    period = int(extra.get("command_period", 0))
    if period:
        t = np.arange(cycles)
        preload = t < n
        load_en = preload.copy()
        load_addr = np.where(preload, t, 0)
        slot = ~preload & ((t - n) % period == 0)
        ct_valid = slot & (rng.random(cycles) < 0.8)
        update = slot & (rng.random(cycles) < 0.3)

    return {
        "neg_pool": neg_pool,
        "active_pool": active_pool,
        "code_pool": code_pool,
        "code_idx": code_idx.tolist(),
        "ct_valid": ct_valid.astype(int).tolist(),
        "ct": _hold(ct, ct_valid).tolist(),
        "update": update.astype(int).tolist(),
        "load_en": load_en.astype(int).tolist(),
        "load_addr": _hold(load_addr, load_en).tolist(),
        "load_data": _hold(load_data, load_en).tolist(),
        "rd_addr": rd_addr.tolist(),
    }


def _hold(values: np.ndarray, strobe: np.ndarray) -> np.ndarray:
    """values where strobe, else the last value taken at a strobe (0 before the first)."""
    idx = np.where(strobe, np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(idx >= 0, values[np.maximum(idx, 0)], 0)


def model_config(cfg: MGDConfig, extra: dict) -> MGDConfig:
    """The model's config: ``cfg`` with ``model_eta_shift_offset`` applied (if any)."""
    offset = int(extra.get("model_eta_shift_offset", 0))
    if not offset:
        return cfg
    return derive(cfg, {"hw": {"eta_shift": cfg.hw.eta_shift + offset}})


def edge_writes_theta(model: WeightUpdateModel, ct_valid: int, update: int,
                      load_en: int) -> bool:
    """Whether the coming edge writes theta, given the model's state before it."""
    if model.lanes == 0:
        return bool(update or load_en)
    return bool(model.busy or (load_en and not (ct_valid or update)))


def _write_lists(cycles: int, streams: list) -> list[list]:
    """Per cycle, the (handle, value) pairs whose value differs from the cycle before."""
    out: list[list] = [[] for _ in range(cycles)]
    for handle, values in streams:
        prev = None
        for t, v in enumerate(values):
            if v != prev:
                out[t].append((handle, v))
                prev = v
    return out


def _check_theta(cycle: int, actual: int, expected: np.ndarray, width: int) -> None:
    got = unpack_signed(actual, len(expected), width)
    for i, e in enumerate(expected.tolist()):
        check(cycle, f"theta[{i}]", e, got[i])


@cocotb.test()
async def weight_update_matches_model(dut):
    cfg, cycles, seed, extra = config_from_env()
    h = cfg.hw
    n, tb = h.n_params, h.theta_bits
    parallel = h.lanes == 0
    dut._log.info("weight_update: N=%d lanes=%d cycles=%d stim_seed=%d extra=%s",
                  n, h.lanes, cycles, seed, extra)

    _check_sizes(dut, h, parallel)

    st = stimulus(cfg, cycles, seed, extra)
    model = WeightUpdateModel(model_config(cfg, extra))

    # per cycle: the input writes that change something, precomputed
    ports = ("ct_valid", "ct", "update", "load_en", "load_addr", "load_data")
    seqs = [st[p] for p in ports]
    code_idx = st["code_idx"]
    writes = _write_lists(
        cycles,
        [(dut.neg, [st["neg_pool"][k] for k in code_idx]),
         (dut.active, [st["active_pool"][k] for k in code_idx])]
        + [(getattr(dut, p), st[p]) for p in ports],
    )
    events = list(zip(*seqs, strict=True))
    codes = [st["code_pool"][k] for k in code_idx]
    rd_addr = st["rd_addr"]
    period = int(extra.get("command_period", 0))

    await start(dut)
    fe = FallingEdge(dut.clk)
    if not parallel:
        dut.rd_addr.value = 0
    h_ready, h_sat_g, h_sat_t = dut.ready, dut.sat_g, dut.sat_theta
    h_theta = dut.theta if parallel else dut.rd_data
    h_rd_addr = None if parallel else dut.rd_addr
    exp_theta = pack_signed(model.theta, tb)  # parallel: packed when theta changes
    exp_rd = None  # serial: expected rd_data of this cycle, or None if undefined
    t0 = time.perf_counter()

    for cycle in range(cycles):
        # outputs of cycle t (registered only: independent of this cycle's inputs)
        ready = int(model.busy == 0)
        if int(h_ready.value) != ready:
            check(cycle, "ready", ready, int(h_ready.value))
        if h_sat_g.value.to_unsigned() != model.sat_g:
            check(cycle, "sat_g", model.sat_g, h_sat_g.value.to_unsigned())
        if h_sat_t.value.to_unsigned() != model.sat_theta:
            check(cycle, "sat_theta", model.sat_theta, h_sat_t.value.to_unsigned())
        if parallel:
            actual = h_theta.value.to_unsigned()
            if actual != exp_theta:
                _check_theta(cycle, actual, model.theta, tb)
        elif exp_rd is not None:
            check(cycle, "rd_data", exp_rd, h_theta.value.to_signed())

        # inputs of cycle t, then the edge
        for handle, value in writes[cycle]:
            handle.value = value
        ev = events[cycle]
        ct_valid, _, update, load_en, _, _ = ev
        if period and (ct_valid or update):
            assert ready, f"cycle {cycle}: a command met a busy unit (command_period too short)"
        if parallel:
            if ct_valid or update or load_en:
                model.tick(codes[cycle], *ev)
                if update or load_en:
                    exp_theta = pack_signed(model.theta, tb)
        else:
            a = rd_addr[cycle]
            h_rd_addr.value = a
            exp_rd = None if edge_writes_theta(model, ct_valid, update, load_en) else int(
                model.theta[a])
            model.tick(codes[cycle], *ev)
        await fe

    rate = cycles / max(time.perf_counter() - t0, 1e-9)
    dut._log.info("compared %d cycles at %.0f cycles/s", cycles, rate)

    # quiet tail: compare the last edge's results, then read theta back
    for p in ports:
        getattr(dut, p).value = 0
    final = await _read_back(dut, model, cycles, parallel, exp_rd, tb)
    _report(model, final, extra)


def _check_sizes(dut, h, parallel: bool) -> None:
    """Sizes read back from the design must match the config."""
    n, tb = h.n_params, h.theta_bits
    assert len(dut.neg) == n and len(dut.active) == n
    assert len(dut.ct) == h.ctilde_bits and len(dut.load_data) == tb
    assert len(dut.sat_g) == h.counter_bits and len(dut.sat_theta) == h.counter_bits
    if parallel:
        assert len(dut.theta) == n * tb
    else:
        assert len(dut.rd_data) == tb


def _report(model: WeightUpdateModel, final, extra: dict) -> None:
    """Write the final state where the caller asked, and check the saturation a
    config meant to saturate did saturate."""
    if extra.get("theta_out"):
        with open(extra["theta_out"], "w") as f:
            json.dump({"theta": final, "sat_g": model.sat_g, "sat_theta": model.sat_theta}, f)
    if extra.get("expect_saturation"):
        assert model.sat_g > 0, "no G saturation in a config meant to saturate"
        assert model.sat_theta > 0, "no theta saturation in a config meant to saturate"


async def _read_back(dut, model, cycle, parallel, exp_rd, tb) -> list[int]:
    """With no commands: finish a sweep, compare everything, return theta from the DUT."""
    fe = FallingEdge(dut.clk)
    while True:
        check(cycle, "ready", int(model.busy == 0), int(dut.ready.value))
        check(cycle, "sat_g", model.sat_g, dut.sat_g.value.to_unsigned())
        check(cycle, "sat_theta", model.sat_theta, dut.sat_theta.value.to_unsigned())
        if parallel:
            actual = dut.theta.value.to_unsigned()
            if actual != pack_signed(model.theta, tb):
                _check_theta(cycle, actual, model.theta, tb)
            return unpack_signed(actual, model.n, tb)
        if exp_rd is not None:
            check(cycle, "rd_data", exp_rd, dut.rd_data.value.to_signed())
        if model.busy == 0:
            break
        exp_rd = None
        model.tick(None)
        cycle += 1
        await fe
    theta = []
    for i in range(model.n + 1):
        if i:
            check(cycle, "rd_data", int(model.theta[i - 1]), dut.rd_data.value.to_signed())
            theta.append(dut.rd_data.value.to_signed())
        if i < model.n:
            dut.rd_addr.value = i
        model.tick(None)
        cycle += 1
        await fe
    return theta
