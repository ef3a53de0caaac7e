"""Gas per accepted meter reading (batch 1/10/100, WATT mint included) and readings signed per second
(the bridge's fast signer, and eth-account's generic typed-data signing for comparison).

Steady state: every meter already has accepted readings and its owner already holds WATT; the gas
figure is averaged over sequences 2..9 of each meter.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from eth_account import Account

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters, register_meter, submit_readings
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id

T0 = 1_800_000_000 // 900 * 900


def _reading(mid: bytes, seq: int, base: int = T0) -> Reading:
    start = base + 900 * seq
    return Reading(meter_id=mid, sequence=seq, interval_start=start, interval_end=start + 900, generation_wh=812,
                   consumption_wh=377, export_wh=435, import_wh=0, frequency_mhz=50_013)


def setup_meters(w3, admin, n: int, label: str) -> tuple:
    """WATT + a MeterRegistry and ``n`` certified solar prosumer meters, each with a fresh device key
    and a fresh owner; returns ``(registry, [(meter id, ReadingSigner), …], base)``: readings
    ``_reading(mid, seq, base)`` for sequences below 1000 are over and began after registration."""
    watt = deploy(w3, admin, "WattToken", admin.address, record=False)
    registry = deploy_meters(w3, admin, watt, directory=Path(tempfile.mkdtemp(prefix=f"{label}-")))
    signers = []
    for i in range(n):
        dev, owner = Account.create(), Account.create()
        mid = meter_id(f"{label}/{n}/{i}")
        register_meter(w3, admin, registry, meter_id=mid, signer=dev.address, owner=owner.address, kind="prosumer",
                       colour="solar", certified=True, rated_power_w=10_000)
        signers.append((mid, ReadingSigner(dev.key, w3.eth.chain_id, registry.address)))
    # The registry accepts only intervals that are over and began after registration: the readings
    # start at the first interval after it, and the chain's clock moves past the last one signed.
    base = (w3.eth.get_block("latest")["timestamp"] // 900 + 1) * 900
    w3.provider.make_request("evm_setNextBlockTimestamp", [base + 900 * 1000])
    w3.provider.make_request("evm_mine", [])
    return registry, signers, base


def _gas_per_reading(ctx, n: int) -> float:
    w3, admin, gateway = ctx.w3, ctx.accounts[0], ctx.accounts[1]
    registry, signers, base = setup_meters(w3, admin, n, "bench")
    submit_readings(w3, gateway, registry, [s.sign(_reading(mid, 1, base)) for mid, s in signers])  # warm up
    total = count = 0
    for seq in range(2, 10):
        res = submit_readings(w3, gateway, registry, [s.sign(_reading(mid, seq, base)) for mid, s in signers])
        assert len(res.accepted) == n, res
        total += res.gas_used
        count += n
    return round(total / count)


def _sign_rate() -> float:
    dev = Account.create()
    signer = ReadingSigner(dev.key, 31337, "0x" + "12" * 20)
    mid = meter_id("bench/sign")
    readings = [_reading(mid, i) for i in range(1, 20_001)]
    t0 = time.perf_counter()
    for r in readings:
        signer.sign(r)
    return round(len(readings) / (time.perf_counter() - t0))


def _eth_account_sign_rate() -> float:
    """The same readings signed with ``Account.sign_typed_data``: why the bridge keeps its own signer."""
    dev = Account.create()
    registry = "0x" + "12" * 20
    mid = meter_id("bench/sign")
    readings = [_reading(mid, i) for i in range(1, 2_001)]
    t0 = time.perf_counter()
    for r in readings:
        Account.sign_typed_data(dev.key, full_message=r.typed_data(31337, registry))
    return round(len(readings) / (time.perf_counter() - t0))


def run(ctx) -> dict[str, float]:
    return {
        "meter_gas_per_reading_b1": _gas_per_reading(ctx, 1),
        "meter_gas_per_reading_b10": _gas_per_reading(ctx, 10),
        "meter_gas_per_reading_b100": _gas_per_reading(ctx, 100),
        "bridge_sign_per_s": _sign_rate(),
        "bridge_sign_eth_account_per_s": _eth_account_sign_rate(),
    }
