"""Gas of C-REV: issuance (first lot of a holder / repeat), transfers and retirements by lots touched,
and a certified meter's reading through the MeterRegistry with the C-REV hook (end to end)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from eth_account import Account

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from gridcoop_sdk.tx import send


def run(ctx) -> dict[str, float]:
    w3, (admin, alice, bob, carol, dave, eve) = ctx.w3, ctx.accounts[:6]
    token = deploy(w3, admin, "CarbonReductionValue", admin.address, "0x" + "00" * 20, 450, 1, "bench",
                   record=False)
    issuer = deploy(w3, admin, "StandInMeterIssuer", token.address, record=False)
    send(w3, admin, token.functions.grantRole(token.functions.ISSUER_ROLE().call(), issuer.address))
    meter = b"M".ljust(32, b"\0")
    send(w3, admin, issuer.functions.setCertified(meter, True))
    base = send(w3, admin, issuer.functions.submit(b"X".ljust(32, b"\0"), alice.address, 900, 900, 1000))["gasUsed"]

    def issue(owner, interval):
        return send(w3, admin, issuer.functions.submit(meter, owner, interval * 900, 900, 1000))["gasUsed"] - base

    out: dict[str, float] = {}
    # The stand-in's own cost (uncertified: no hook call) is subtracted, leaving the hook's cost.
    out["crev_gas_issue_first"] = issue(alice.address, 1)
    out["crev_gas_issue_repeat"] = issue(alice.address, 2)
    for i in range(3, 12):
        issue(alice.address, i)  # alice holds 11 lots of 4.5e14 each
    lot = 450 * 10**12
    out["crev_gas_transfer_1lot"] = send(w3, alice, token.functions.transfer(bob.address, lot // 2))["gasUsed"]
    out["crev_gas_transfer_5lots"] = send(w3, alice, token.functions.transfer(bob.address, 4 * lot))["gasUsed"]
    out["crev_gas_transfer_lots_explicit_1"] = send(
        w3, alice, token.functions.transferLots(carol.address, [11], [lot]))["gasUsed"]

    def retire(who, amount):
        return send(w3, who, token.functions.retire(amount, who.address, "bench", "gas", 0, 1))["gasUsed"]

    out["crev_gas_retire_1lot"] = retire(alice, lot // 2)
    out["crev_gas_retire_5lots"] = retire(alice, 4 * lot + lot // 2)
    out.update(_through_registry(ctx, admin, dave, eve))
    return {k: float(v) for k, v in out.items()}


def _through_registry(ctx, admin, owner, gateway) -> dict[str, int]:
    """Gas of a one-reading batch of a certified solar meter (the hook issues a lot), and what the
    hook adds over the same reading of an uncertified meter (WATT neither minted nor burnt: gen = cons)."""
    w3 = ctx.w3
    watt = deploy(w3, admin, "WattToken", admin.address, record=False)
    registry = deploy_meters(w3, admin, watt, directory=Path(tempfile.mkdtemp(prefix="bench-crev-")))
    crev = deploy(w3, admin, "CarbonReductionValue", admin.address, registry.address, 450, 1, "bench-registry",
                  record=False)
    send(w3, admin, registry.functions.setSelfConsumptionHook(crev.address))
    send(w3, admin, registry.functions.setHookGasLimit(600_000))
    signers = {}
    for name, certified in (("certified", True), ("plain", False)):
        dev = Account.create()
        register_meter(w3, admin, registry, meter_id=meter_id(f"bench/{name}"), signer=dev.address,
                       owner=owner.address, kind="prosumer", colour="solar", certified=certified,
                       rated_power_w=8000)
        signers[name] = ReadingSigner(dev.key, w3.eth.chain_id, registry.address)
    start = (w3.eth.get_block("latest")["timestamp"] // 900 + 1) * 900
    w3.provider.make_request("evm_setNextBlockTimestamp", [start + 3 * 900])
    w3.provider.make_request("evm_mine", [])

    def submit(name: str, k: int) -> int:
        s = start + 900 * k
        r = Reading(meter_id=meter_id(f"bench/{name}"), sequence=k + 1, interval_start=s, interval_end=s + 900,
                    generation_wh=1000, consumption_wh=1000, export_wh=0, import_wh=0, frequency_mhz=50_000)
        signed = signers[name].sign(r)
        fn = registry.functions.submitReadings([signed.reading.as_tuple()], [signed.signature])
        return send(w3, gateway, fn)["gasUsed"]

    plain = [submit("plain", 0), submit("plain", 1)]
    certified = [submit("certified", 0), submit("certified", 1)]
    return {
        "crev_gas_registry_reading_first": certified[0],
        "crev_gas_registry_reading_repeat": certified[1],
        "crev_gas_registry_hook_repeat": certified[1] - plain[1],
    }
