"""C-REV on anvil: issuance via the issuer only, exact amounts, forward-only factor changes, lot-aware
transfers, retirement into non-transferable certificates, and exact traces."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.crev import (
    CertificateNotFound,
    InvalidRetirement,
    balance,
    crev_amount,
    emission_factor_schedule,
    format_crev,
    format_interval,
    format_trace,
    issued_lots,
    load_crev,
    lot_of,
    parse_crev,
    retire,
    set_emission_factor,
    trace,
)
from gridcoop_sdk.tx import send

FACTOR = 450
ZERO = "0x" + "00" * 20


def meter(name: bytes) -> bytes:
    return name.ljust(32, b"\0")


def lot_events(crev, receipt, name):
    return [dict(e["args"]) for e in getattr(crev.token.events, name)().process_receipt(receipt, errors=DISCARD)]


def chain_time(w3) -> int:
    return w3.eth.get_block("latest")["timestamp"]


# ------------------------------------------------------------------------------ units


def test_amount_formula_is_exact_and_units_parse():
    # 1000 Wh at 450 g/kWh = 450 g = 0.00045 t = 4.5e14 base units.
    assert crev_amount(1000, 450) == 1000 * 450 * 10**18 // (1000 * 10**6) == 450 * 10**12
    assert parse_crev("0.5") == parse_crev("0.5t") == parse_crev("500kg") == 5 * 10**17
    assert parse_crev("450g") == 450 * 10**12
    assert format_crev(450 * 10**12) == "0.00045 t-CO2e"
    with pytest.raises(ValueError, match="negative"):
        parse_crev("-1")
    with pytest.raises(ValueError, match="finer than one base unit"):
        parse_crev("0.5units")
    with pytest.raises(ValueError, match="not a C-REV amount"):
        parse_crev("lots")


# ------------------------------------------------------------------------------ issuance


def test_deploy_records_token_and_certificate(w3, crev, deployer, deployments_dir):
    t = crev.token.functions
    assert t.symbol().call() == "C-REV" and t.decimals().call() == 18
    assert t.region().call() == "test"
    assert t.certificate().call() == crev.certificate.address
    assert crev.certificate.functions.minter().call() == crev.token.address
    assert t.hasRole(t.PARAMETER_ROLE().call(), deployer.address).call()
    assert emission_factor_schedule(crev) == [(0, FACTOR)]
    again = load_crev(w3, region="test", directory=deployments_dir)
    assert again.token.address == crev.token.address
    assert again.certificate.address == crev.certificate.address
    assert again.deploy_block == crev.deploy_block > 0
    by_address = load_crev(w3, crev.token.address, directory=deployments_dir)
    assert by_address.deploy_block == crev.deploy_block


def test_only_the_issuer_can_issue(w3, crev, wallets):
    outsider = wallets[1]
    with pytest.raises(TransactionFailed) as err:
        send(w3, outsider, crev.token.functions.onSelfConsumption(meter(b"A"), outsider.address, 900, 900, 1000))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["neededRole"] == crev.token.functions.ISSUER_ROLE().call()
    assert crev.token.functions.totalSupply().call() == 0


def test_certified_meter_earns_exact_amount_and_a_lot(w3, crev, issue, wallets):
    alice = wallets[1].address
    receipt = issue(b"A", alice, 1_970_000, 1234)  # the interval starting at 1,773,000,000 (Unix seconds)
    start = 1_970_000 * 900
    expected = 1234 * FACTOR * 10**18 // (1000 * 10**6)
    assert expected == 555_300_000_000_000  # 555.3 g-CO2e
    assert crev.token.functions.balanceOf(alice).call() == expected
    [ev] = lot_events(crev, receipt, "LotIssued")
    assert ev == {"lotId": 1, "meterId": meter(b"A"), "intervalStart": start, "intervalSeconds": 900,
                  "owner": alice, "amount": expected}
    info = crev.token.functions.lot(1).call()
    assert info == (meter(b"A"), start, 900, alice, 1234, FACTOR, expected)
    assert crev.token.functions.lotOf(meter(b"A"), start).call() == 1 == lot_of(crev, meter(b"A"), start)
    assert lot_of(crev, meter(b"A"), 1_970_000) == 0  # keyed by start time, not by an interval id
    [logged] = issued_lots(w3, crev, from_block=crev.deploy_block)
    assert (logged.lot_id, logged.meter_id, logged.interval_start, logged.interval_seconds, logged.owner,
            logged.amount, logged.interval_id, logged.interval_end) == (
        1, meter(b"A"), start, 900, alice, expected, 1_970_000, start + 900)
    assert logged.block == receipt["blockNumber"]
    b = balance(w3, crev, alice)
    assert b.total == expected and [(h.lot.lot_id, h.amount) for h in b.lots] == [(1, expected)]
    assert (b.lots[0].lot.interval_start, b.lots[0].lot.interval_seconds, b.lots[0].lot.interval_id) == (
        start, 900, 1_970_000)


def test_non_certified_meter_earns_nothing(w3, crev, issuer, issue, deployer, wallets):
    alice = wallets[1].address
    send(w3, deployer, issuer.functions.setCertified(meter(b"A"), False))
    issue(b"A", alice, 10, 5000)
    issue(b"Z", alice, 10, 5000)  # never certified
    assert crev.token.functions.balanceOf(alice).call() == 0
    assert crev.token.functions.lotCount().call() == 0


def test_same_meter_interval_cannot_earn_twice(w3, crev, issue, wallets):
    alice = wallets[1].address
    issue(b"A", alice, 10, 1000)
    with pytest.raises(TransactionFailed) as err:
        issue(b"A", alice, 10, 1000)
    assert err.value.error_name == "CrevLotAlreadyIssued"
    assert err.value.error_args == {"meterId": meter(b"A"), "intervalStart": 9000, "lotId": 1}
    with pytest.raises(TransactionFailed) as err:  # the same start with another length is the same reading
        issue(b"A", alice, 5, 1000, seconds=1800)
    assert err.value.error_name == "CrevLotAlreadyIssued"
    issue(b"B", alice, 10, 1000)  # another meter, same interval: fine
    issue(b"A", alice, 6, 1000, seconds=1800)  # the same meter's next half hour: its own lot
    assert crev.token.functions.lotCount().call() == 3


def test_factor_change_applies_to_later_intervals_only(w3, crev, issue, deployer, wallets):
    alice = wallets[1].address
    receipt = set_emission_factor(w3, deployer, crev, 300)
    [ev] = crev.token.events.EmissionFactorScheduled().process_receipt(receipt, errors=DISCARD)
    effective = ev["args"]["effectiveFrom"]  # Unix seconds
    ts = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert effective == ts + 900  # FACTOR_LEAD_SECONDS: 15 minutes ahead
    k = -(-effective // 900)  # the first quarter hour starting at or after it
    # Readings of intervals that start before it (even when they arrive late) keep 450 g/kWh ...
    issue(b"A", alice, k - 1, 1000)
    issue(b"A", alice, k - 500, 1000)
    # ... readings of intervals that start from it get 300 g/kWh.
    issue(b"A", alice, k, 1000)
    issue(b"A", alice, k + 7, 1000)
    # By start time, whatever the length: the half hour around it started before it.
    half = effective // 1800
    issue(b"B", alice, half, 1000, seconds=1800)  # starts at or before `effective`
    issue(b"B", alice, half + 1, 1000, seconds=1800)  # starts after it
    assert lot_of(crev, meter(b"B"), half * 1800) == 5
    lots = [crev.token.functions.lot(i).call() for i in range(1, 7)]
    assert [x[6] for x in lots[:4]] == [crev_amount(1000, 450)] * 2 + [crev_amount(1000, 300)] * 2
    expected_half = 300 if half * 1800 >= effective else 450
    assert [x[5] for x in lots[4:]] == [expected_half, 300]
    assert [x[5] for x in lots] == [crev.token.functions.emissionFactorAt(x[1]).call() for x in lots]
    assert emission_factor_schedule(crev) == [(0, 450), (effective, 300)]


def test_factor_cannot_be_backdated_or_set_by_outsiders(w3, crev, deployer, wallets):
    now = chain_time(w3)
    for too_soon in (now - 900, now, now + 899):  # the registry may already have issued such intervals
        with pytest.raises(TransactionFailed) as err:
            set_emission_factor(w3, deployer, crev, 100, effective_from=too_soon)
        assert err.value.error_name == "CrevFactorNotForward"
    with pytest.raises(TransactionFailed) as err:
        set_emission_factor(w3, deployer, crev, 100, effective_from_interval=now // 900 + 1)
    assert err.value.error_name == "CrevFactorNotForward"
    with pytest.raises(ValueError, match="not both"):
        set_emission_factor(w3, deployer, crev, 100, effective_from=now + 10**6, effective_from_interval=1)
    with pytest.raises(TransactionFailed) as err:
        set_emission_factor(w3, wallets[1], crev, 100)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed) as err:
        set_emission_factor(w3, deployer, crev, 2001)
    assert err.value.error_name == "CrevFactorTooHigh"
    # a later schedule entry, then re-scheduling the same start replaces it
    at = now + 100 * 900 + 7  # any second, not only quarter hours
    set_emission_factor(w3, deployer, crev, 200, effective_from=at)
    set_emission_factor(w3, deployer, crev, 250, effective_from=at)
    with pytest.raises(TransactionFailed) as err:
        set_emission_factor(w3, deployer, crev, 100, effective_from=at - 1)
    assert err.value.error_name == "CrevFactorNotForward"
    assert err.value.error_args == {"effectiveFrom": at - 1, "earliestAllowed": at}
    set_emission_factor(w3, deployer, crev, 150, effective_from_interval=(now // 900) + 200)
    assert emission_factor_schedule(crev) == [(0, 450), (at, 250), ((now // 900 + 200) * 900, 150)]
    assert crev.token.functions.emissionFactorAt(at - 1).call() == 450
    assert crev.token.functions.emissionFactorAt(at).call() == 250
    assert crev.token.functions.emissionFactorAt((now // 900 + 200) * 900).call() == 150


# ------------------------------------------------------------------------------ transfers


def test_transfer_spends_oldest_lots_first_and_names_them(w3, crev, issue, wallets):
    alice, bob = wallets[1], wallets[2]
    issue(b"A", alice.address, 100, 1000)  # lot 1: 4.5e14
    issue(b"A", alice.address, 101, 2000)  # lot 2: 9e14
    lot1, lot2 = crev_amount(1000, FACTOR), crev_amount(2000, FACTOR)
    receipt = send(w3, alice, crev.token.functions.transfer(bob.address, lot1 + 10**14))
    moves = lot_events(crev, receipt, "LotTransferred")
    assert moves == [
        {"lotId": 1, "from": alice.address, "to": bob.address, "amount": lot1},
        {"lotId": 2, "from": alice.address, "to": bob.address, "amount": 10**14},
    ]
    assert [(h.lot.lot_id, h.amount) for h in balance(w3, crev, bob.address).lots] == [(1, lot1), (2, 10**14)]
    assert [(h.lot.lot_id, h.amount) for h in balance(w3, crev, alice.address).lots] == [(2, lot2 - 10**14)]


def test_transfer_lots_moves_named_lots_and_refuses_more_than_held(w3, crev, issue, wallets):
    alice, bob = wallets[1], wallets[2]
    issue(b"A", alice.address, 100, 1000)
    issue(b"B", alice.address, 100, 2000)
    lot2 = crev_amount(2000, FACTOR)
    send(w3, alice, crev.token.functions.transferLots(bob.address, [2], [lot2]))
    assert crev.token.functions.lotBalanceOf(2, bob.address).call() == lot2
    assert crev.token.functions.lotBalanceOf(1, bob.address).call() == 0
    assert crev.token.functions.balanceOf(bob.address).call() == lot2
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.transferLots(bob.address, [2], [1]))
    assert err.value.error_name == "CrevInsufficientLotBalance"
    assert err.value.error_args == {"lotId": 2, "holder": alice.address, "balance": 0, "needed": 1}
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.transferLots(bob.address, [1, 2], [1]))
    assert err.value.error_name == "CrevLengthMismatch"
    # A later FIFO transfer skips the emptied lot 2 entry and takes lot 1.
    receipt = send(w3, alice, crev.token.functions.transfer(bob.address, 5))
    assert [m["lotId"] for m in lot_events(crev, receipt, "LotTransferred")] == [1]


def test_transfer_from_by_a_spender_moves_lots(w3, crev, issue, wallets):
    """What the energy market does when C-REV is its payment token: transferFrom by the market."""
    alice, market, seller = wallets[1], wallets[3], wallets[4]
    issue(b"A", alice.address, 100, 1000)
    send(w3, alice, crev.token.functions.approve(market.address, 10**14))
    receipt = send(w3, market, crev.token.functions.transferFrom(alice.address, seller.address, 10**14))
    assert lot_events(crev, receipt, "LotTransferred") == [
        {"lotId": 1, "from": alice.address, "to": seller.address, "amount": 10**14}]
    assert crev.token.functions.lotBalanceOf(1, seller.address).call() == 10**14


# ------------------------------------------------------------------------------ retirement


def test_retire_burns_and_mints_a_certificate(w3, crev, issue, wallets):
    alice, charity = wallets[1], wallets[5]
    issue(b"A", alice.address, 100, 10_000)  # 4.5 kg
    supply = crev.token.functions.totalSupply().call()
    amount = 2 * 10**15
    cert = retire(w3, alice, crev, amount, beneficiary=charity.address, beneficiary_name="Kyoto bakery",
                  message="offsetting May 2026", period_start=1_777_593_600, period_end=1_780_272_000)
    assert cert == 1
    assert crev.token.functions.totalSupply().call() == supply - amount
    assert crev.token.functions.totalRetired().call() == amount
    assert crev.token.functions.balanceOf(alice.address).call() == supply - amount
    c = crev.certificate.functions
    assert c.ownerOf(cert).call() == alice.address
    assert c.locked(cert).call() is True
    assert c.supportsInterface(bytes.fromhex("b45a3c0e")).call()
    rec = c.retirement(cert).call()
    assert rec[:6] == (alice.address, charity.address, alice.address, amount, 1_777_593_600, 1_780_272_000)
    assert rec[7:] == ("Kyoto bakery", "offsetting May 2026")
    assert crev.token.functions.certificateLots(cert).call() == [[1], [amount]]


def test_certificate_cannot_be_transferred_or_approved(w3, crev, issue, wallets):
    alice, bob = wallets[1], wallets[2]
    issue(b"A", alice.address, 100, 10_000)
    cert = retire(w3, alice, crev, 10**15, beneficiary_name="me")
    for fn in (
        crev.certificate.functions.transferFrom(alice.address, bob.address, cert),
        crev.certificate.functions.safeTransferFrom(alice.address, bob.address, cert),
        crev.certificate.functions.approve(bob.address, cert),
        crev.certificate.functions.setApprovalForAll(bob.address, True),
    ):
        with pytest.raises(TransactionFailed) as err:
            send(w3, alice, fn)
        assert err.value.error_name == "CertificateNonTransferable"
    assert crev.certificate.functions.ownerOf(cert).call() == alice.address


def test_retire_below_minimum_is_refused(w3, crev, issue, wallets):
    alice = wallets[1]
    issue(b"A", alice.address, 100, 10_000)
    with pytest.raises(InvalidRetirement, match="below the minimum"):
        retire(w3, alice, crev, 10**15 - 1, beneficiary_name="me")
    # the contract refuses it too (not only the SDK)
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.retire(10**15 - 1, alice.address, "", "", 0, 0))
    assert err.value.error_name == "CrevBelowMinimumRetirement"
    assert err.value.error_args == {"amount": 10**15 - 1, "minimum": 10**15}
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.retire(10**15, ZERO, "", "", 0, 0))
    assert err.value.error_name == "CrevNoBeneficiary"
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.retire(10**15, alice.address, "", "", 5, 4))
    assert err.value.error_name == "CrevInvalidPeriod"
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.retire(10**18, alice.address, "", "", 0, 0))
    assert err.value.error_name == "ERC20InsufficientBalance"
    assert crev.token.functions.totalRetired().call() == 0


def test_minimum_is_a_dao_parameter(w3, crev, issue, deployer, wallets):
    alice = wallets[1]
    issue(b"A", alice.address, 100, 10_000)
    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, crev.token.functions.setMinimumRetirement(1))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    send(w3, deployer, crev.token.functions.setMinimumRetirement(10))
    assert retire(w3, alice, crev, 10, beneficiary_name="me") == 1


def test_retire_on_behalf_of_a_holder(w3, crev, issue, wallets):
    alice, broker, city = wallets[1], wallets[6], wallets[7]
    issue(b"A", alice.address, 100, 10_000)
    with pytest.raises(TransactionFailed) as err:
        retire(w3, broker, crev, 10**15, holder=alice.address, beneficiary=city.address)
    assert err.value.error_name == "ERC20InsufficientAllowance"
    send(w3, alice, crev.token.functions.approve(broker.address, 10**15))
    cert = retire(w3, broker, crev, 10**15, holder=alice.address, beneficiary=city.address,
                  beneficiary_name="City of Kyoto", message="on behalf of the city")
    rec = crev.certificate.functions.retirement(cert).call()
    assert rec[0] == alice.address and rec[1] == city.address and rec[2] == broker.address
    assert crev.certificate.functions.ownerOf(cert).call() == alice.address
    assert crev.token.functions.allowance(alice.address, broker.address).call() == 0


# ------------------------------------------------------------------------------ trace


def test_trace_across_three_holders_is_exact(w3, crev, issue, deployer, wallets):
    send(w3, deployer, crev.token.functions.setMinimumRetirement(10**14))
    alice, bob, carol, dave, eve = (w.address for w in wallets[1:6])
    a = {w.address: w for w in wallets}
    issue(b"A", alice, 100, 1000)  # lot 1: 4.5e14
    issue(b"A", alice, 101, 2000)  # lot 2: 9e14
    issue(b"B", dave, 100, 4000)  # lot 3: 1.8e15
    l1, l2 = crev_amount(1000, FACTOR), crev_amount(2000, FACTOR)
    send(w3, a[alice], crev.token.functions.transfer(bob, l1 + l2))  # bob: lots 1, 2
    send(w3, a[dave], crev.token.functions.transfer(bob, 10**15))  # bob: lots 1, 2, 3
    send(w3, a[dave], crev.token.functions.transfer(eve, 10**14))  # unrelated to the certificate
    send(w3, a[bob], crev.token.functions.transfer(carol, l1 + 10**14))  # carol: lot 1, part of lot 2
    send(w3, a[bob], crev.token.functions.transfer(eve, 10**14))  # bob passes more of lot 2 elsewhere
    cert = retire(w3, a[carol], crev, l1 + 10**14, beneficiary_name="Carol's cafe", message="FY2026")

    t = trace(w3, crev, cert)
    assert t.retirement.holder == carol and t.retirement.amount == l1 + 10**14
    assert t.retirement.beneficiary_name == "Carol's cafe"
    assert [(x.info.lot_id, x.info.meter_id, x.info.interval_start, x.info.interval_seconds, x.info.interval_id,
             x.info.owner, x.retired_amount) for x in t.lots] == [
        (1, meter(b"A"), 90_000, 900, 100, alice, l1), (2, meter(b"A"), 90_900, 900, 101, alice, 10**14)]
    assert [(x.lot_id, x.sender, x.recipient, x.amount) for x in t.transfers] == [
        (1, alice, bob, l1), (2, alice, bob, l2), (1, bob, carol, l1), (2, bob, carol, 10**14)]
    assert t.holders == [alice, bob, carol]
    assert all(x.issued_block > 0 for x in t.lots)
    text = format_trace(t)
    assert "lot 1: meter 0x41" in text and "Carol's cafe" in text and f"{bob} -> {carol}" in text
    assert "interval 1970-01-02T01:00:00Z/PT15M issued to" in text
    assert format_interval(90_900, 900) == "1970-01-02T01:15:00Z/PT15M"
    # the retired value is gone from every balance and never moves again
    assert crev.token.functions.balanceOf(carol).call() == 0
    assert crev.token.functions.certificateLots(cert).call() == [[1, 2], [l1, 10**14]]


def test_trace_of_unknown_certificate_is_refused(w3, crev):
    with pytest.raises(CertificateNotFound, match="no retirement certificate #9"):
        trace(w3, crev, 9)


def test_lot_issued_signature_matches_the_contract(crev):
    """The SDK's signature text (what report loaders decode with) is the compiled event's, and the
    old interval-id event is gone (an old decoder finds nothing instead of misreading start times)."""
    from eth_utils import event_abi_to_log_topic, keccak

    from gridcoop_sdk.crev import LOT_ISSUED_SIGNATURE
    from keeper.reports.carbon import event_abi

    [compiled] = [e for e in crev.token.abi if e.get("type") == "event" and e["name"] == "LotIssued"]
    assert event_abi_to_log_topic(event_abi(LOT_ISSUED_SIGNATURE)) == event_abi_to_log_topic(compiled)
    assert [(i["type"], i["name"], i["indexed"]) for i in compiled["inputs"]] == [
        (i["type"], i["name"], i["indexed"]) for i in event_abi(LOT_ISSUED_SIGNATURE)["inputs"]]
    assert event_abi_to_log_topic(compiled) != keccak(text="LotIssued(uint256,bytes32,uint64,address,uint256)")
