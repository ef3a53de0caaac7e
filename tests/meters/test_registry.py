"""MeterRegistry on anvil: registration, every refusal reason, duplicates, WATT effects, hook, debt."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_utils import keccak

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.artifacts import decode_error
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.eip712 import encode_type
from gridcoop_sdk.meters import accepted_earlier, check_reading, get_meter, register_meter, submit_readings
from gridcoop_sdk.readings import REASONS, ReadingSigner, SignedReading, meter_id, reason_name, sign_reading
from gridcoop_sdk.tx import send

from .conftest import AFTER, T0, make_reading, warp

WH = 10**15


def logs(contract, event: str, receipt):
    from web3.logs import DISCARD

    return getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)


def bal(watt, who) -> int:
    return watt.functions.balanceOf(who.address).call()


def test_typehash_matches_sdk_definition(registry):
    assert registry.functions.READING_TYPEHASH().call() == keccak(text=encode_type("MeterReading"))


def test_sdk_digest_matches_contract_and_eth_account(w3, registry, meter, device, signer):
    r = make_reading(meter, 1)
    assert r.digest(w3.eth.chain_id, registry.address) == registry.functions.readingDigest(r.as_tuple()).call()
    fast = signer.sign(r)
    generic = Account.sign_typed_data(device.key, full_message=r.typed_data(w3.eth.chain_id, registry.address))
    assert fast.signature == bytes(generic.signature)


def test_register_emits_and_getmeter_reads_back(w3, registry, meter, device, owner):
    m = get_meter(registry, meter)
    assert m["signer"] == device.address and m["owner"] == owner.address
    assert (m["kind"], m["colour"], m["certified"], m["rated_power_w"], m["location"]) == (
        "prosumer", "solar", True, 8000, "xn76urx")
    assert m["active"] and m["last_sequence"] == 0
    assert registry.functions.isParticipant(owner.address).call()
    assert not registry.functions.isParticipant(device.address).call()


def test_register_refusals(w3, deployer, wallets, registry, meter, device, owner):
    with pytest.raises(TransactionFailed) as err:
        register_meter(w3, deployer, registry, meter_id=meter, signer=device.address, owner=owner.address,
                       kind="producer", colour="solar", certified=False, rated_power_w=1)
    assert err.value.error_name == "MeterAlreadyRegistered"
    with pytest.raises(TransactionFailed) as err:
        register_meter(w3, wallets[5], registry, meter_id="x", signer=device.address, owner=owner.address,
                       kind="producer", colour="solar", certified=False, rated_power_w=1)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed) as err:
        register_meter(w3, deployer, registry, meter_id="y", signer="0x" + "00" * 20, owner=owner.address,
                       kind="producer", colour="solar", certified=False, rated_power_w=1)
    assert err.value.error_name == "MeterInvalidAccount"
    with pytest.raises(ValueError, match="kind must be one of"):
        register_meter(w3, deployer, registry, meter_id="z", signer=device.address, owner=owner.address,
                       kind="windmill", colour="wind", certified=False, rated_power_w=1)


def test_accepted_reading_mints_export_and_emits_proof(w3, registry, watt, meter, signer, owner, gateway):
    s = signer.sign(make_reading(meter, 1, gen=400, cons=250))
    assert check_reading(w3, registry, s) is None
    res = submit_readings(w3, gateway, registry, [s])
    assert res.accepted == [s.key()] and not res.rejected and not res.duplicates
    assert bal(watt, owner) == 150 * WH
    ev = logs(registry, "ReadingAccepted", w3.eth.get_transaction_receipt(res.tx_hash))[0].args
    assert (ev.owner, ev.generationWh, ev.consumptionWh, ev.exportWh, ev.importWh) == (owner.address, 400, 250, 150, 0)
    assert ev.selfConsumedWh == 250  # DGC-C: generation > demand → generation − export
    assert ev.frequencyMHz == 50_000 and ev.intervalStart == s.reading.interval_start
    assert check_reading(w3, registry, s) == "Duplicate"


def test_older_accepted_reading_is_stale_on_chain_and_a_duplicate_by_its_log(w3, registry, watt, meter, signer,
                                                                             owner, gateway):
    """The registry keeps only the last accepted reading per meter: re-pushing an older one is
    refused on chain as StaleSequence (nothing applied) and the SDK finds its ReadingAccepted log."""
    first, second = (signer.sign(make_reading(meter, i, gen=400 + i, cons=250)) for i in (1, 2))
    submit_readings(w3, gateway, registry, [first, second])
    supply = watt.functions.totalSupply().call()
    assert reason_name(registry.functions.whyRefused(first.reading.as_tuple(), first.signature).call()) \
        == "StaleSequence"
    assert registry.functions.whyRefused(second.reading.as_tuple(), second.signature).call() == REASONS.index(
        "Duplicate")
    assert check_reading(w3, registry, first) == "Duplicate"
    assert accepted_earlier(registry, first)
    res = submit_readings(w3, gateway, registry, [first, second])
    assert sorted(res.duplicates) == sorted([first.key(), second.key()]) and not res.accepted and not res.rejected
    rejected = logs(registry, "ReadingRejected", w3.eth.get_transaction_receipt(res.tx_hash))
    assert [(e.args.sequence, reason_name(e.args.reason)) for e in rejected] == [(1, "StaleSequence")]
    assert watt.functions.totalSupply().call() == supply
    # A different reading for sequence 1 has no such log: it stays refused.
    other = signer.sign(make_reading(meter, 1, gen=900, cons=250))
    assert not accepted_earlier(registry, other)
    assert check_reading(w3, registry, other) == "StaleSequence"
    res = submit_readings(w3, gateway, registry, [other])
    assert res.rejected == [(other.key()[0], 1, "StaleSequence")] and not res.duplicates


def test_import_burns_what_owner_holds_and_records_debt(w3, registry, watt, meter, signer, owner, gateway):
    submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 1, gen=400, cons=300))])  # +100
    assert bal(watt, owner) == 100 * WH
    res = submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 2, gen=100, cons=350))])
    rcpt = w3.eth.get_transaction_receipt(res.tx_hash)
    ev = logs(registry, "ReadingAccepted", rcpt)[0].args
    assert ev.importWh == 250 and ev.selfConsumedWh == 100  # generation < demand → all generation
    assert bal(watt, owner) == 0
    debt = logs(registry, "EnergyDebtRecorded", rcpt)[0].args
    assert (debt.owner, debt.shortfallWh, debt.totalDebtWh) == (owner.address, 150, 150)
    assert registry.functions.energyDebtWh(owner.address).call() == 150
    assert watt.functions.totalSupply().call() == 0
    # Later exports mint normally; the owner can pay the debt down with WATT.
    submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 3, gen=900, cons=100))])
    send(w3, owner, registry.functions.repayEnergyDebt(150))
    assert registry.functions.energyDebtWh(owner.address).call() == 0
    assert bal(watt, owner) == 650 * WH
    with pytest.raises(TransactionFailed) as err:
        send(w3, owner, registry.functions.repayEnergyDebt(1))
    assert err.value.error_name == "MeterRepayExceedsDebt"


def _refused(w3, registry, watt, gateway, s, reason):
    supply = watt.functions.totalSupply().call()
    assert check_reading(w3, registry, s) == reason
    res = submit_readings(w3, gateway, registry, [s])
    assert res.rejected == [(s.key()[0], s.key()[1], reason)] and not res.accepted
    assert watt.functions.totalSupply().call() == supply


def test_every_refusal_reason(w3, deployer, registry, watt, meter, signer, device, gateway):
    good = make_reading(meter, 1)
    # Tampered: a value changed after signing.
    s = signer.sign(good)
    tampered = dataclasses.replace(s, reading=dataclasses.replace(good, export_wh=good.export_wh + 1,
                                                                  consumption_wh=good.consumption_wh - 1))
    _refused(w3, registry, watt, gateway, tampered, "BadSignature")
    # Unregistered key.
    _refused(w3, registry, watt, gateway, sign_reading(good, Account.create().key, w3.eth.chain_id,
                                                      registry.address), "BadSignature")
    # Signed for another chain id / another registry (replay): the chain recovers another signer.
    other_chain = sign_reading(good, device.key, 1, registry.address)
    other_chain = dataclasses.replace(other_chain, chain_id=w3.eth.chain_id)
    _refused(w3, registry, watt, gateway, other_chain, "BadSignature")
    other_reg = sign_reading(good, device.key, w3.eth.chain_id, "0x" + "11" * 20)
    other_reg = dataclasses.replace(other_reg, registry=registry.address)
    _refused(w3, registry, watt, gateway, other_reg, "BadSignature")
    # Unknown meter.
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter_id("nobody"), 1)), "UnknownMeter")
    # Plausibility.
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 1, gen=2001, cons=1)), "OverCapacity")
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 1, gen=100, cons=100, exp=150, imp=150)),
             "ExportExceedsGeneration")
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 1, gen=400, cons=250, exp=140, imp=0)),
             "EnergyImbalance")
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 1, freq=0)), "BadFrequency")
    bad_len = dataclasses.replace(good, interval_end=good.interval_start + 600)
    _refused(w3, registry, watt, gateway, signer.sign(bad_len), "BadInterval")
    misaligned = dataclasses.replace(good, interval_start=good.interval_start + 1, interval_end=good.interval_end + 1)
    _refused(w3, registry, watt, gateway, signer.sign(misaligned), "BadInterval")
    # Ordering: accept seq 5, then an older sequence and an overlapping interval are refused.
    submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 5))])
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 4, start=T0 + 900 * 9)), "StaleSequence")
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 6, start=T0 + 900 * 4)), "StaleInterval")
    # A different reading for an accepted sequence is not a duplicate.
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 5, gen=401, cons=251)), "StaleSequence")
    # Suspended.
    send(w3, deployer, registry.functions.suspendMeter(meter))
    _refused(w3, registry, watt, gateway, signer.sign(make_reading(meter, 6)), "MeterSuspended")
    send(w3, deployer, registry.functions.reactivateMeter(meter))
    # after a reactivation readings start again from its time (the suspended time is not vouched for)
    assert check_reading(w3, registry, signer.sign(make_reading(meter, 6))) == "BeforeRegistration"
    warp(w3, AFTER + 3 * 900)
    assert submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 102))]).accepted


def test_duplicates_in_any_position_are_noops_and_batch_mixes(w3, registry, watt, meter, signer, owner, gateway):
    signed = [signer.sign(make_reading(meter, i, gen=300 + i, cons=200)) for i in range(1, 6)]
    submit_readings(w3, gateway, registry, signed[:3])
    supply = watt.functions.totalSupply().call()
    bad = signer.sign(make_reading(meter, 9, gen=5000, cons=1))
    # Re-push the first (not only the last) and middle readings, mixed with new and invalid ones.
    batch = [signed[0], signed[3], bad, signed[1], signed[4], signed[4]]
    res = submit_readings(w3, gateway, registry, batch)
    assert res.accepted == [signed[3].key(), signed[4].key()]
    assert res.rejected == [(bad.key()[0], 9, "OverCapacity")]
    assert sorted(res.duplicates) == sorted([signed[0].key(), signed[1].key(), signed[4].key()])
    assert watt.functions.totalSupply().call() == supply + (104 + 105) * WH
    # The whole batch again: all no-ops, nothing minted.
    res = submit_readings(w3, gateway, registry, signed)
    assert len(res.duplicates) == 5 and not res.accepted and not res.rejected
    assert watt.functions.totalSupply().call() == supply + 209 * WH


def test_key_rotation(w3, deployer, registry, meter, signer, device, gateway):
    submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 1))])
    new = Account.create()
    rcpt = send(w3, deployer, registry.functions.rotateKey(meter, new.address))
    ev = logs(registry, "KeyRotated", rcpt)[0].args
    assert (ev.oldSigner, ev.newSigner) == (device.address, new.address)
    old_sig = signer.sign(make_reading(meter, 2))
    assert check_reading(w3, registry, old_sig) == "BadSignature"
    # An already accepted reading signed by the old key is still a duplicate (no-op).
    assert check_reading(w3, registry, signer.sign(make_reading(meter, 1))) == "Duplicate"
    new_signer = ReadingSigner(new.key, w3.eth.chain_id, registry.address)
    # the new key vouches only for intervals from the rotation on (the chain stands at AFTER)
    assert check_reading(w3, registry, new_signer.sign(make_reading(meter, 2))) == "BeforeRegistration"
    warp(w3, AFTER + 3 * 900)
    assert submit_readings(w3, gateway, registry, [new_signer.sign(make_reading(meter, 101))]).accepted
    # Now an older reading signed by the old key is refused on chain as BadSignature (it is no
    # longer the last one); the SDK finds its ReadingAccepted log and reports a duplicate.
    old_first = signer.sign(make_reading(meter, 1))
    assert reason_name(registry.functions.whyRefused(old_first.reading.as_tuple(), old_first.signature).call()) \
        == "BadSignature"
    assert check_reading(w3, registry, old_first) == "Duplicate"
    res = submit_readings(w3, gateway, registry, [old_first, signer.sign(make_reading(meter, 3))])
    assert res.duplicates == [old_first.key()] and res.rejected == [(old_first.key()[0], 3, "BadSignature")]


def test_suspend_reactivate_events_and_refusals(w3, deployer, wallets, registry, meter):
    rcpt = send(w3, deployer, registry.functions.suspendMeter(meter))
    assert logs(registry, "MeterSuspended", rcpt)[0].args.meterId == meter
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, registry.functions.suspendMeter(meter))
    assert err.value.error_name == "MeterNotActive"
    send(w3, deployer, registry.functions.reactivateMeter(meter))
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, registry.functions.reactivateMeter(meter))
    assert err.value.error_name == "MeterNotSuspended"
    with pytest.raises(TransactionFailed) as err:
        send(w3, wallets[5], registry.functions.suspendMeter(meter))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"


def test_hook_called_only_for_certified_renewable(w3, deployer, registry, meter, signer, owner, gateway):
    probe = deploy(w3, deployer, "SelfConsumptionProbe", record=False)
    send(w3, deployer, registry.functions.setSelfConsumptionHook(probe.address))
    others = {}
    for name, colour_, certified in (("uncert", "solar", False), ("batt", "battery", True), ("grid", "grid", True)):
        dev = Account.create()
        mid = meter_id(f"test/{name}")
        register_meter(w3, deployer, registry, meter_id=mid, signer=dev.address, owner=owner.address,
                       kind="prosumer", colour=colour_, certified=certified, rated_power_w=8000)
        others[name] = (mid, ReadingSigner(dev.key, w3.eth.chain_id, registry.address))
    # The others were registered at AFTER (the clock the meter fixture left): their readings start later.
    warp(w3, AFTER + 900 * 3)
    batch = [signer.sign(make_reading(meter, 1, gen=400, cons=250))]
    batch += [s.sign(make_reading(mid, 101, gen=400, cons=250)) for mid, s in others.values()]
    batch.append(signer.sign(make_reading(meter, 2, gen=0, cons=250)))  # nothing self-consumed
    res = submit_readings(w3, gateway, registry, batch)
    assert len(res.accepted) == 5
    assert probe.functions.calls().call() == 1 and probe.functions.totalWh().call() == 250
    seen = logs(probe, "SelfConsumptionSeen", w3.eth.get_transaction_receipt(res.tx_hash))[0].args
    assert (seen.meterId, seen.owner, seen.intervalStart, seen.intervalSeconds) == (meter, owner.address, T0 + 900, 900)


def test_reverting_hook_keeps_the_reading(w3, deployer, registry, watt, meter, signer, owner, gateway):
    probe = deploy(w3, deployer, "SelfConsumptionProbe", record=False)
    send(w3, deployer, registry.functions.setSelfConsumptionHook(probe.address))
    for mode, seq in ((1, 1), (2, 2), (3, 3)):  # revert, burn all gas, call submitReadings back
        send(w3, deployer, probe.functions.setMode(mode))
        res = submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, seq))])
        assert res.accepted == [(res.accepted[0][0], seq)]
        failed = logs(registry, 'SelfConsumptionHookFailed',
            w3.eth.get_transaction_receipt(res.tx_hash))
        assert failed and failed[0].args.sequence == seq
        if mode == 3:  # the nested batch is refused by the reentrancy guard, by name
            assert decode_error(failed[0].args.reason)[0] == "ReentrancyGuardReentrantCall"
    assert bal(watt, owner) == 3 * 150 * WH
    send(w3, deployer, registry.functions.setSelfConsumptionHook("0x" + "00" * 20))
    with pytest.raises(TransactionFailed) as err:  # an account without code would revert every batch
        send(w3, deployer, registry.functions.setSelfConsumptionHook(owner.address))
    assert err.value.error_name == "MeterInvalidParameter"
    assert submit_readings(w3, gateway, registry, [signer.sign(make_reading(meter, 4))]).accepted


def test_hook_gas_starvation_reverts_batch(w3, deployer, registry, meter, signer, gateway):
    probe = deploy(w3, deployer, "SelfConsumptionProbe", record=False)
    send(w3, deployer, registry.functions.setSelfConsumptionHook(probe.address))
    s = signer.sign(make_reading(meter, 1))
    fn = registry.functions.submitReadings([s.reading.as_tuple()], [s.signature])
    with pytest.raises(TransactionFailed):
        send(w3, gateway, fn, gas=200_000)  # less than the hook's 250k cap
    assert get_meter(registry, meter)["last_sequence"] == 0


def test_parameters_and_battery_tolerance(w3, deployer, wallets, registry, owner, gateway):
    dev = Account.create()
    mid = meter_id("test/battery")
    register_meter(w3, deployer, registry, meter_id=mid, signer=dev.address, owner=owner.address,
                   kind="battery", colour="battery", certified=False, rated_power_w=4000)
    warp(w3, AFTER)
    s = ReadingSigner(dev.key, w3.eth.chain_id, registry.address)
    # Battery: 1000 in, 960 out (4% loss) is within the default 5%; 10% loss is not.
    ok = s.sign(make_reading(mid, 1, gen=0, cons=960, exp=0, imp=1000))
    lossy = s.sign(make_reading(mid, 2, gen=0, cons=900, exp=0, imp=1000))
    res = submit_readings(w3, gateway, registry, [ok, lossy])
    assert len(res.accepted) == 1 and res.rejected[0][2] == "EnergyImbalance"
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, registry.functions.setIntervalLength(10))
    assert err.value.error_name == "MeterInvalidParameter"
    with pytest.raises(TransactionFailed) as err:
        send(w3, wallets[5], registry.functions.setTolerances(5, 100))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    send(w3, deployer, registry.functions.setTolerances(0, 1500))
    assert submit_readings(w3, gateway, registry, [lossy]).accepted


def test_batch_length_mismatch_reverts(w3, registry, meter, signer, gateway):
    s = signer.sign(make_reading(meter, 1))
    with pytest.raises(TransactionFailed) as err:
        send(w3, gateway, registry.functions.submitReadings([s.reading.as_tuple()], []))
    assert err.value.error_name == "MeterBatchLengthMismatch"


def test_wire_format_roundtrip_and_refusals(w3, registry, meter, signer):
    s = signer.sign(make_reading(meter, 1))
    assert SignedReading.from_json(s.to_json()) == s
    d = s.to_dict()
    del d["signature"]
    with pytest.raises(ValueError, match="lacks field"):
        SignedReading.from_dict(d)
    d = s.to_dict() | {"export_wh": -1}
    with pytest.raises(ValueError, match="export_wh"):
        SignedReading.from_dict(d)
    with pytest.raises(ValueError, match="not valid JSON"):
        SignedReading.from_json("{")
