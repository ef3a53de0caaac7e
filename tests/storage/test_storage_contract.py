"""BatteryStorage on anvil: energy in/out, capacity, ownership of energy, fees per started slot,
owing blocks withdrawal, the exact 80/10/10 split, owners' shares, pull payments, rate changes
forward only, welcome grants and roles."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from storage_helpers import GRANT, SLOT, TSL, chain_snapshot, mine_at, next_slot_start, set_next_timestamp
from web3.logs import DISCARD

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk import storage as st_sdk
from gridcoop_sdk.storage import send_with_margin as send

WH = 10**15
RATE = 2 * 10**15 + 1  # the env battery's fee rate (TSL base units per kWh per slot)


def _events(contract, receipt, name):
    return [dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)]


def _no_fee_allowance(env, user):
    send(env.w3, user, env.tsl.functions.approve(env.storage.address, 0))


# ----------------------------------------------------------------------------- energy


def test_deposit_and_withdraw_move_watt_and_burn_the_efficiency_loss(env):
    w3, s, watt, alice = env.w3, env.storage, env.watt, env.users[0]
    supply0 = watt.functions.totalSupply().call()
    receipt = st_sdk.deposit(w3, alice, s, env.battery, 1_000, colour="solar")
    (charged,) = _events(s, receipt, "Charged")
    block_ts = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert charged == {"batteryId": env.battery, "user": alice.address, "wh": 1_000,
                       "slot": block_ts // SLOT, "colour": b"solar".ljust(32, b"\0")}
    assert watt.functions.balanceOf(alice.address).call() == 49_000 * WH
    assert watt.functions.balanceOf(s.address).call() == 1_000 * WH
    assert st_sdk.stored(s, env.battery, alice.address) == 1_000
    assert st_sdk.battery_info(s, env.battery).stored_wh == 1_000

    out = st_sdk.withdraw(w3, alice, s, env.battery, 1_000)
    assert out == 900  # 90 % round-trip efficiency
    assert watt.functions.balanceOf(alice.address).call() == 49_900 * WH
    assert watt.functions.balanceOf(s.address).call() == 0
    assert watt.functions.totalSupply().call() == supply0 - 100 * WH  # the loss is burnt
    assert st_sdk.stored(s, env.battery, alice.address) == 0


def test_discharge_event_records_energy_out_and_loss(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    t0 = next_slot_start(w3, 1)
    send(w3, alice, env.watt.functions.approve(s.address, 10**30))
    send(w3, alice, env.tsl.functions.approve(s.address, 10**30))
    set_next_timestamp(w3, t0)
    send(w3, alice, s.functions.deposit(env.battery, 777, b"\0" * 32))
    set_next_timestamp(w3, t0 + 1)
    receipt = send(w3, alice, s.functions.withdraw(env.battery, 333))
    (ev,) = _events(s, receipt, "Discharged")
    assert ev == {"batteryId": env.battery, "user": alice.address, "whOut": 299, "lossWh": 34,
                  "slot": t0 // SLOT}  # 333 * 0.9 = 299.7 → 299 out, 34 burnt
    (fee,) = _events(s, receipt, "FeePaid")  # the withdrawal paid the slot's fee on the way
    assert fee["amount"] == 777 * RATE // 1000
    assert st_sdk.stored(s, env.battery, alice.address) == 444


def test_deposit_beyond_capacity_is_refused(env):
    w3, s = env.w3, env.storage
    st_sdk.deposit(w3, env.users[0], s, env.battery, 13_000)
    with pytest.raises(TransactionFailed) as err:
        st_sdk.deposit(w3, env.users[1], s, env.battery, 501)
    assert err.value.error_name == "StorageCapacityExceeded"
    assert err.value.error_args == {"batteryId": env.battery, "requestedWh": 501, "freeWh": 500}
    st_sdk.deposit(w3, env.users[1], s, env.battery, 500)  # exactly full is fine
    assert st_sdk.battery_info(s, env.battery).free_wh == 0


def test_nobody_can_withdraw_another_users_energy(env):
    w3, s, alice, mallory = env.w3, env.storage, env.users[0], env.users[1]
    st_sdk.deposit(w3, alice, s, env.battery, 2_000)
    with pytest.raises(TransactionFailed) as err:
        st_sdk.withdraw(w3, mallory, s, env.battery, 1)
    assert err.value.error_name == "StorageInsufficientStored"
    assert err.value.error_args == {"batteryId": env.battery, "user": mallory.address,
                                    "storedWh": 0, "requestedWh": 1}
    with pytest.raises(TransactionFailed) as err:
        st_sdk.withdraw(w3, alice, s, env.battery, 2_001)
    assert err.value.error_name == "StorageInsufficientStored"
    assert st_sdk.stored(s, env.battery, alice.address) == 2_000


def test_bad_input_is_refused_before_sending(env):
    with pytest.raises(st_sdk.StorageInputError, match="wh must be > 0"):
        st_sdk.deposit(env.w3, env.users[0], env.storage, env.battery, 0)
    with pytest.raises(st_sdk.StorageInputError, match="efficiency_bps"):
        st_sdk.register_battery(env.w3, env.deployer, env.storage, meter_id="m", capacity_wh=1,
                                efficiency_bps=10_001, fee_rate=0, owners=[(env.owners[0].address, 1)])
    with pytest.raises(st_sdk.StorageInputError, match="listed twice"):
        st_sdk.register_battery(env.w3, env.deployer, env.storage, meter_id="m", capacity_wh=1,
                                efficiency_bps=1, fee_rate=0,
                                owners=[(env.owners[0].address, 1), (env.owners[0].address.lower(), 2)])


# ----------------------------------------------------------------------------- fees


@pytest.mark.parametrize(("start_offset", "end_slot", "end_offset", "slots"), [
    (10, 0, 899, 1),     # in and out within one slot: one started slot
    (899, 1, 0, 2),      # last second of a slot to the first of the next: two started slots
    (0, 3, 450, 4),      # slot start to the middle of the 4th slot
    (123, 96, 5, 97),    # a day later
])
def test_fees_accrue_per_started_slot(env, start_offset, end_slot, end_offset, slots):
    w3, s, alice = env.w3, env.storage, env.users[0]
    send(w3, alice, env.watt.functions.approve(s.address, 10**30))
    send(w3, alice, env.tsl.functions.approve(s.address, 10**30))
    t0 = next_slot_start(w3, start_offset)
    set_next_timestamp(w3, t0)
    receipt = send(w3, alice, s.functions.deposit(env.battery, 1_234, b"\0" * 32))
    start_slot = w3.eth.get_block(receipt["blockNumber"])["timestamp"] // SLOT
    assert start_slot == t0 // SLOT
    end_ts = (start_slot + end_slot) * SLOT + end_offset
    mine_at(w3, end_ts)
    expected = 1_234 * RATE * slots // 1000
    assert st_sdk.owed(s, env.battery, alice.address) == expected
    set_next_timestamp(w3, end_ts)  # the payment lands in the same second
    receipt = send(w3, alice, s.functions.payFees(env.battery))
    (fee,) = _events(s, receipt, "FeePaid")
    assert fee["amount"] == expected


def test_fee_sub_unit_remainders_carry_forward_not_lost(env):
    """Fees accrue ×1000 (rate per kWh, energy in Wh); what is owed is rounded down and the rest
    carries, so paying every slot costs the same as paying once at the end."""
    w3, s, alice, bob = env.w3, env.storage, env.users[0], env.users[1]
    bid = st_sdk.register_battery(w3, env.deployer, s, meter_id="m2", capacity_wh=10_000, efficiency_bps=10_000,
                                  fee_rate=7, owners=[(env.owners[0].address, 1)])
    t0 = next_slot_start(w3, 5)
    for u in (alice, bob):
        send(w3, u, env.watt.functions.approve(s.address, 10**30))
        send(w3, u, env.tsl.functions.approve(s.address, 10**30))
    set_next_timestamp(w3, t0)
    send(w3, alice, s.functions.deposit(bid, 333, b"\0" * 32))
    set_next_timestamp(w3, t0 + 1)
    send(w3, bob, s.functions.deposit(bid, 333, b"\0" * 32))
    paid_alice = 0
    for k in range(1, 6):  # alice pays in every slot, bob never
        set_next_timestamp(w3, t0 + k * SLOT)
        r = send(w3, alice, s.functions.payFees(bid))
        paid_alice += sum(e["amount"] for e in _events(s, r, "FeePaid"))
    mine_at(w3, t0 + 5 * SLOT + 1)
    assert st_sdk.owed(s, bid, bob.address) == 333 * 7 * 6 // 1000  # 13 (13.986)
    assert paid_alice == 13
    assert st_sdk.owed(s, bid, alice.address) == 0


def test_owing_fees_blocks_withdrawal_until_paid(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    st_sdk.deposit(w3, alice, s, env.battery, 5_000)
    _no_fee_allowance(env, alice)
    due = st_sdk.owed(s, env.battery, alice.address)
    assert due > 0
    with pytest.raises(TransactionFailed) as err:
        st_sdk.withdraw(w3, alice, s, env.battery, 5_000, approve_fees=False)
    assert err.value.error_name == "StorageFeesOwed"
    assert err.value.error_args["user"] == alice.address and err.value.error_args["owed"] >= due
    assert st_sdk.stored(s, env.battery, alice.address) == 5_000
    st_sdk.pay_fees(w3, alice, s, env.battery)
    assert st_sdk.withdraw(w3, alice, s, env.battery, 5_000) == 4_500


def test_prepaid_tsl_pays_fees_without_allowance(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    st_sdk.prepay(w3, alice, s, TSL)
    _no_fee_allowance(env, alice)
    st_sdk.deposit(w3, alice, s, env.battery, 4_000)
    due = st_sdk.owed(s, env.battery, alice.address)
    out = st_sdk.withdraw(w3, alice, s, env.battery, 4_000, approve_fees=False)
    assert out == 3_600
    credit = s.functions.credit(alice.address).call()
    assert TSL - credit >= due and credit < TSL
    bal = env.tsl.functions.balanceOf(alice.address).call()
    st_sdk.withdraw_prepaid(w3, alice, s, credit)
    assert env.tsl.functions.balanceOf(alice.address).call() == bal + credit
    with pytest.raises(TransactionFailed) as err:
        st_sdk.withdraw_prepaid(w3, alice, s, 1)
    assert err.value.error_name == "StorageInsufficientCredit"


def test_fee_rate_change_applies_from_the_next_slot_only(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    t0 = next_slot_start(w3, 10)
    send(w3, alice, env.watt.functions.approve(s.address, 10**30))
    set_next_timestamp(w3, t0)
    send(w3, alice, s.functions.deposit(env.battery, 1_000, b"\0" * 32))
    set_next_timestamp(w3, t0 + 100)
    receipt = send(w3, env.deployer, s.functions.setFeeRate(env.battery, 9 * 10**15))
    (ev,) = _events(s, receipt, "FeeRateChanged")
    assert ev == {"batteryId": env.battery, "rate": 9 * 10**15, "effectiveSlot": t0 // SLOT + 1}
    mine_at(w3, t0 + 200)
    assert st_sdk.owed(s, env.battery, alice.address) == RATE  # the current slot keeps its rate
    assert s.functions.feeRate(env.battery).call() == RATE
    mine_at(w3, t0 + SLOT)
    assert st_sdk.owed(s, env.battery, alice.address) == RATE + 9 * 10**15
    mine_at(w3, t0 + 3 * SLOT)
    assert st_sdk.owed(s, env.battery, alice.address) == RATE + 3 * 9 * 10**15


def test_only_the_fee_manager_changes_rates_and_only_the_registrar_registers(env):
    w3, s, outsider = env.w3, env.storage, env.users[2]
    with pytest.raises(TransactionFailed) as err:
        st_sdk.set_fee_rate(w3, outsider, s, env.battery, 1)
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["neededRole"] == s.functions.FEE_MANAGER_ROLE().call()
    with pytest.raises(TransactionFailed) as err:
        st_sdk.register_battery(w3, outsider, s, meter_id="x", capacity_wh=1, efficiency_bps=1, fee_rate=0,
                                owners=[(outsider.address, 1)])
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["neededRole"] == s.functions.REGISTRAR_ROLE().call()
    assert s.functions.batteryCount().call() == 1


# ----------------------------------------------------------------------------- split and claims


def test_split_owners_shares_and_pull_payments(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    bid = st_sdk.register_battery(
        w3, env.deployer, s, meter_id="m3", capacity_wh=10_000, efficiency_bps=10_000, fee_rate=1_000_003,
        owners=[(env.owners[0].address, 3), (env.owners[1].address, 5), (env.owners[2].address, 7)])
    st_sdk.deposit(w3, alice, s, bid, 1_000)  # 1 kWh: the fee is the rate per slot
    paid = st_sdk.pay_fees(w3, alice, s, bid)
    assert paid % 1_000_003 == 0
    slots = paid // 1_000_003
    fee = 1_000_003 * slots
    marketing = fee // 10
    platform = fee // 10
    owners_part = fee - marketing - platform
    o1, o2 = owners_part * 5 // 15, owners_part * 7 // 15
    o0 = owners_part - o1 - o2  # owners[0] takes the remainder
    assert st_sdk.claimable(s, env.platform.address) == platform
    assert st_sdk.claimable(s, env.marketing.address) == marketing
    got = [st_sdk.claimable(s, o.address) for o in env.owners]
    assert got == [o0, o1, o2] and sum(got) + marketing + platform == fee
    # Pull payments: each payee withdraws its own part; a second claim finds nothing.
    for payee, amount in [(env.owners[0], o0), (env.owners[2], o2), (env.platform, platform), (env.marketing, marketing)]:
        before = env.tsl.functions.balanceOf(payee.address).call()
        assert st_sdk.claim(w3, payee, s) == amount
        assert env.tsl.functions.balanceOf(payee.address).call() == before + amount
        with pytest.raises(TransactionFailed) as err:
            st_sdk.claim(w3, payee, s)
        assert err.value.error_name == "StorageNothingToClaim"
    assert st_sdk.claimable(s, env.owners[1].address) == o1


def test_claim_for_pays_the_payee_never_the_caller(env):
    """Anyone pushes a payee's credit to the payee (for payees that cannot call ``claim``): the TSL
    and the ``Claimed`` event go to the payee, the books stay exact, a second push is refused by name."""
    w3, s, tsl, alice, stranger = env.w3, env.storage, env.tsl, env.users[0], env.users[2]
    st_sdk.deposit(w3, alice, s, env.battery, 1_500)
    fee = st_sdk.pay_fees(w3, alice, s, env.battery)
    payee = env.owners[1]
    due = st_sdk.credited(s, payee.address)
    assert due == st_sdk.claimable(s, payee.address) > 0
    books = {k: getattr(s.functions, k)().call() for k in ("totalClaimed", "totalClaimable")}
    held = tsl.functions.balanceOf(s.address).call()
    stranger_tsl, payee_tsl = (tsl.functions.balanceOf(a.address).call() for a in (stranger, payee))

    receipt = send(w3, stranger, s.functions.claimFor(payee.address))
    assert _events(s, receipt, "Claimed") == [{"payee": payee.address, "amount": due}]
    assert tsl.functions.balanceOf(payee.address).call() == payee_tsl + due
    assert tsl.functions.balanceOf(stranger.address).call() == stranger_tsl
    assert tsl.functions.balanceOf(s.address).call() == held - due
    assert s.functions.totalClaimed().call() == books["totalClaimed"] + due
    assert s.functions.totalClaimable().call() == books["totalClaimable"] - due
    assert st_sdk.credited(s, payee.address) == st_sdk.claimable(s, payee.address) == 0
    for sender, fn in ((stranger, s.functions.claimFor(payee.address)), (payee, s.functions.claim())):
        with pytest.raises(TransactionFailed) as err:  # nothing left, by either path
            send(w3, sender, fn)
        assert err.value.error_name == "StorageNothingToClaim"
        assert err.value.error_args == {"payee": payee.address}
    # the other payees are untouched and still claim for themselves
    assert st_sdk.claim(w3, env.platform, s) == fee // 10
    # a payee may push its own credit too; same result as claim()
    own = st_sdk.credited(s, env.owners[0].address)
    assert st_sdk.claim_for(w3, env.owners[0], s, env.owners[0].address) == own > 0
    with pytest.raises(TransactionFailed) as err:  # the zero address never has a credit
        send(w3, stranger, s.functions.claimFor(st_sdk.ZERO))
    assert err.value.error_args == {"payee": st_sdk.ZERO}
    with pytest.raises(st_sdk.StorageInputError, match="payee"):  # the SDK refuses it before sending
        st_sdk.claim_for(w3, stranger, s, st_sdk.ZERO)


def test_claim_for_the_marketing_payee_leaves_the_marketing_pool(env):
    """``claimFor(marketing)`` pays what is credited to the marketing payee (here it is also the
    platform payee) but never the marketing pool, which keeps funding welcome grants; only the
    marketing payee's own ``claim()`` takes the pool."""
    w3, s, tsl, alice, bob, stranger = env.w3, env.storage, env.tsl, *env.users
    m = env.marketing
    send(w3, env.deployer, s.functions.setPayees(m.address, m.address))
    st_sdk.fund_marketing_pool(w3, env.deployer, s, 2 * GRANT)
    st_sdk.deposit(w3, alice, s, env.battery, 2_000)
    fee = st_sdk.pay_fees(w3, alice, s, env.battery)
    pool = s.functions.marketingPool().call()
    assert pool == 2 * GRANT + fee // 10
    assert st_sdk.credited(s, m.address) == fee // 10  # the platform part
    assert st_sdk.claimable(s, m.address) == fee // 10 + pool
    before = tsl.functions.balanceOf(m.address).call()
    assert st_sdk.claim_for(w3, stranger, s, m.address) == fee // 10
    assert tsl.functions.balanceOf(m.address).call() == before + fee // 10
    assert s.functions.marketingPool().call() == pool
    with pytest.raises(TransactionFailed) as err:  # the pool alone is not pushed
        st_sdk.claim_for(w3, stranger, s, m.address)
    assert err.value.error_name == "StorageNothingToClaim"
    send(w3, env.deployer, env.registry.functions.setParticipant(bob.address, True))
    assert st_sdk.claim_welcome_grant(w3, bob, s) == GRANT
    assert st_sdk.claim(w3, m, s) == pool - GRANT  # the marketing payee's own claim takes the pool
    assert s.functions.marketingPool().call() == 0


def test_old_payee_credit_survives_set_payees_and_is_pushed_to_it(env):
    """``setPayees`` only redirects future fees: what the old platform payee earned stays credited
    to it, and ``claimFor`` delivers it there (not to the new payee, not to the caller)."""
    w3, s, tsl, alice, stranger = env.w3, env.storage, env.tsl, env.users[0], env.users[2]
    old, new = env.platform, env.users[1]
    st_sdk.deposit(w3, alice, s, env.battery, 1_000)
    first = st_sdk.pay_fees(w3, alice, s, env.battery)
    send(w3, env.deployer, s.functions.setPayees(new.address, env.marketing.address))
    mine_at(w3, next_slot_start(w3, offset=5))
    second = st_sdk.pay_fees(w3, alice, s, env.battery)
    assert st_sdk.credited(s, old.address) == first // 10
    assert st_sdk.credited(s, new.address) == second // 10
    before = tsl.functions.balanceOf(old.address).call()
    assert st_sdk.claim_for(w3, stranger, s, old.address) == first // 10
    assert tsl.functions.balanceOf(old.address).call() == before + first // 10
    assert st_sdk.credited(s, new.address) == second // 10


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    fee=st.integers(min_value=1, max_value=10**24) | st.sampled_from([1, 9, 10, 11, 19, 99, 101, 10**18 + 7]),
    shares=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=5),
)
@example(fee=10**24, shares=[1, 10**6, 3, 7, 1])  # the largest fee: more than the 1,000 TSL a user starts with
def test_split_adds_up_to_the_unit_for_awkward_amounts(env, fee, shares):
    """A 1 kWh deposit paid within its slot owes exactly the rate, so the rate is the fee.

    Every example runs inside its own chain snapshot (the examples share one ``env``) and funds
    the payer for exactly this example, so examples are independent of each other and of order.
    """
    with chain_snapshot(env.w3):
        _split_example(env, fee, shares)


def _split_example(env, fee, shares):
    w3, s, alice = env.w3, env.storage, env.users[0]
    candidates = [*env.owners, env.users[2], env.users[1]]
    owners = [(w.address, sh) for w, sh in zip(candidates, shares, strict=False)]
    bid = st_sdk.register_battery(w3, env.deployer, s, meter_id="h", capacity_wh=1_000, efficiency_bps=10_000,
                                  fee_rate=fee, owners=owners)
    # The fee can exceed the 1,000 TSL the env gives each user: fund this example's fee (the
    # deployer holds the rest of the fixed TSL supply).
    send(w3, env.deployer, env.tsl.functions.transfer(alice.address, fee))
    send(w3, alice, env.watt.functions.approve(s.address, 10**30))
    send(w3, alice, env.tsl.functions.approve(s.address, 10**30))
    watt0 = env.watt.functions.balanceOf(alice.address).call()
    tsl0 = env.tsl.functions.balanceOf(alice.address).call()
    # Pick the slot only now, after every set-up transaction, and pin each block's time
    # explicitly: a slow machine then cannot move deposit and payment into different slots.
    t0 = next_slot_start(w3, 1)
    set_next_timestamp(w3, t0)
    deposited = send(w3, alice, s.functions.deposit(bid, 1_000, b"\0" * 32))
    set_next_timestamp(w3, t0 + 1)
    receipt = send(w3, alice, s.functions.payFees(bid))
    assert w3.eth.get_block(deposited["blockNumber"])["timestamp"] // SLOT == t0 // SLOT
    assert w3.eth.get_block(receipt["blockNumber"])["timestamp"] // SLOT == t0 // SLOT
    (paid,) = _events(s, receipt, "FeePaid")
    credited = _events(s, receipt, "OwnerCredited")
    assert paid["amount"] == fee
    assert env.tsl.functions.balanceOf(alice.address).call() == tsl0 - fee
    assert paid["ownersPart"] + paid["marketingPart"] + paid["platformPart"] == fee
    assert paid["marketingPart"] == fee // 10 and paid["platformPart"] == fee // 10
    assert sum(c["amount"] for c in credited) == paid["ownersPart"]
    total = sum(sh for _, sh in owners)
    for addr, sh in owners[1:]:
        expect = paid["ownersPart"] * sh // total
        assert sum(c["amount"] for c in credited if c["owner"] == addr) == expect
    set_next_timestamp(w3, t0 + 2)
    send(w3, alice, s.functions.withdraw(bid, 1_000))
    assert env.watt.functions.balanceOf(alice.address).call() == watt0  # 100 % efficiency: all back


# ----------------------------------------------------------------------------- welcome grants


def test_welcome_grant_once_for_participants_only(env):
    w3, s, alice, bob = env.w3, env.storage, env.users[0], env.users[1]
    st_sdk.fund_marketing_pool(w3, env.deployer, s, 2 * GRANT)
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_welcome_grant(w3, alice, s)
    assert err.value.error_name == "StorageNotParticipant"
    send(w3, env.deployer, env.registry.functions.setParticipant(alice.address, True))
    before = env.tsl.functions.balanceOf(alice.address).call()
    assert st_sdk.claim_welcome_grant(w3, alice, s) == GRANT
    assert env.tsl.functions.balanceOf(alice.address).call() == before + GRANT
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_welcome_grant(w3, alice, s)
    assert err.value.error_name == "StorageGrantAlreadyClaimed"
    assert st_sdk.claimable(s, env.marketing.address) == GRANT  # what is left of the pool
    # The pool empties: the marketing payee claims it, then the next participant is refused.
    assert st_sdk.claim(w3, env.marketing, s) == GRANT
    send(w3, env.deployer, env.registry.functions.setParticipant(bob.address, True))
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_welcome_grant(w3, bob, s)
    assert err.value.error_name == "StorageMarketingPoolEmpty"
    assert err.value.error_args == {"pool": 0, "grant": GRANT}


def test_welcome_grant_switched_off_and_registry_unset(env):
    w3, s, alice = env.w3, env.storage, env.users[0]
    st_sdk.fund_marketing_pool(w3, env.deployer, s, GRANT)
    send(w3, env.deployer, env.registry.functions.setParticipant(alice.address, True))
    send(w3, env.deployer, s.functions.setWelcomeGrant(0))
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_welcome_grant(w3, alice, s)
    assert err.value.error_name == "StorageGrantsDisabled"
    send(w3, env.deployer, s.functions.setWelcomeGrant(GRANT))
    send(w3, env.deployer, s.functions.setParticipantRegistry(st_sdk.ZERO))
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_welcome_grant(w3, alice, s)
    assert err.value.error_name == "StorageNotParticipant"


def test_marketing_part_of_fees_funds_welcome_grants(env):
    w3, s, alice, bob = env.w3, env.storage, env.users[0], env.users[1]
    send(w3, env.deployer, s.functions.setWelcomeGrant(10**14))
    st_sdk.deposit(w3, alice, s, env.battery, 10_000)
    paid = st_sdk.pay_fees(w3, alice, s, env.battery)
    assert s.functions.marketingPool().call() == paid // 10 >= 10**14
    send(w3, env.deployer, env.registry.functions.setParticipant(bob.address, True))
    assert st_sdk.claim_welcome_grant(w3, bob, s) == 10**14
    assert s.functions.marketingPool().call() == paid // 10 - 10**14


# ----------------------------------------------------------------------------- registrar changes


def test_registrar_changes_owners_capacity_efficiency_and_status(env):
    w3, s, reg, alice = env.w3, env.storage, env.deployer, env.users[0]
    new_owners = [env.owners[2].address, env.owners[0].address]
    r = send(w3, reg, s.functions.setOwners(env.battery, new_owners, [1, 1]))
    assert _events(s, r, "OwnersChanged")[0]["owners"] == new_owners
    assert st_sdk.battery_info(s, env.battery).owners == [(new_owners[0], 1), (new_owners[1], 1)]
    with pytest.raises(TransactionFailed) as err:  # a duplicate owner is refused, naming its index
        send(w3, reg, s.functions.setOwners(env.battery, [new_owners[0], new_owners[0]], [1, 1]))
    assert err.value.error_name == "StorageInvalidOwners" and err.value.error_args == {"index": 1}

    st_sdk.deposit(w3, alice, s, env.battery, 2_000)
    with pytest.raises(TransactionFailed) as err:
        send(w3, reg, s.functions.setCapacity(env.battery, 1_999))
    assert err.value.error_name == "StorageInvalidCapacity"
    assert err.value.error_args == {"capacityWh": 1_999, "storedWh": 2_000}
    send(w3, reg, s.functions.setCapacity(env.battery, 2_000))
    assert st_sdk.battery_info(s, env.battery).free_wh == 0

    send(w3, reg, s.functions.setEfficiency(env.battery, 10_000))
    with pytest.raises(TransactionFailed) as err:
        send(w3, reg, s.functions.setEfficiency(env.battery, 0))
    assert err.value.error_name == "StorageInvalidEfficiency"

    send(w3, reg, s.functions.setActive(env.battery, False))
    send(w3, reg, s.functions.setCapacity(env.battery, 5_000))
    with pytest.raises(TransactionFailed) as err:
        st_sdk.deposit(w3, alice, s, env.battery, 1)
    assert err.value.error_name == "StorageBatteryInactive"
    # Withdrawals still work from an inactive battery, now lossless.
    assert st_sdk.withdraw(w3, alice, s, env.battery, 2_000) == 2_000

    with pytest.raises(TransactionFailed) as err:
        send(w3, alice, s.functions.setActive(env.battery, True))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed) as err:
        st_sdk.battery_info(s, 99)
    assert err.value.error_name == "StorageUnknownBattery"


def test_docs_worked_example(env):
    """docs/storage.md: 1.5 kWh from 10:05 to 10:50 at 0.002 TSL/kWh/slot, owners 3:5:7, 90 %."""
    w3, s, dana = env.w3, env.storage, env.users[2]
    bid = st_sdk.register_battery(
        w3, env.deployer, s, meter_id="example", capacity_wh=13_500, efficiency_bps=9_000, fee_rate=2 * 10**15,
        owners=[(env.owners[0].address, 3), (env.owners[1].address, 5), (env.owners[2].address, 7)])
    send(w3, dana, env.watt.functions.approve(s.address, 10**30))
    send(w3, dana, env.tsl.functions.approve(s.address, 10**30))
    ten = next_slot_start(w3, 0, slots_ahead=2)  # "10:00"
    before = [st_sdk.claimable(s, a.address) for a in (*env.owners, env.marketing, env.platform)]
    set_next_timestamp(w3, ten + 5 * 60)
    send(w3, dana, s.functions.deposit(bid, 1_500, b"solar".ljust(32, b"\0")))
    set_next_timestamp(w3, ten + 50 * 60)
    receipt = send(w3, dana, s.functions.withdraw(bid, 1_500))
    (fee,) = _events(s, receipt, "FeePaid")
    (out,) = _events(s, receipt, "Discharged")
    assert fee["amount"] == 12 * 10**15  # 0.012 TSL
    assert (fee["marketingPart"], fee["platformPart"], fee["ownersPart"]) == (12 * 10**14, 12 * 10**14, 96 * 10**14)
    after = [st_sdk.claimable(s, a.address) for a in (*env.owners, env.marketing, env.platform)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [
        192 * 10**13, 32 * 10**14, 448 * 10**13, 12 * 10**14, 12 * 10**14]
    assert (out["whOut"], out["lossWh"]) == (1_350, 150)
