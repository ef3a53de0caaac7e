"""Issue 16, item 4: the platform's 10 % of battery fees must reach the ContributionShares holders.

A region deployed from its config (``deploy_region``, ``configs/regions/sakura.yaml``) makes the
DAO's ContributionShares the platform payee of BatteryStorage. ContributionShares cannot call
anything, so a pull payment that only the payee itself can collect (``claim()``) locks the
platform share in BatteryStorage for good. These tests run on such a region: ``deploy_region``
records one founding share per founder, a DAO proposal records more, a user pays a battery fee,
and the platform share must end up with the members, exact to the base unit.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from storage_helpers import SLOT, TSL, mine_at, next_slot_start

from gridcoop_sdk import dao as dao_sdk
from gridcoop_sdk import storage as st_sdk
from gridcoop_sdk.exceptions import TransactionFailed
from gridcoop_sdk.region import deploy_region, to_units
from gridcoop_sdk.region_config import load_region
from gridcoop_sdk.tx import send

SCALE = 10**36  # ContributionShares.SCALE
#: The founders' (hh01, hh02, hh03) shares after the proposal: 1 founding share each from the
#: config plus 2/4/6 recorded by proposal (awkward on purpose: the platform share is not a multiple
#: of 15, so the pro-rata split leaves dust).
CONTRIBUTIONS = (3, 5, 7)
FOUNDING = 1
#: Fee rate set by the same proposal: not a multiple of 10, so fee/10 is rounded down.
AWKWARD_RATE = 2 * 10**16 + 7


@pytest.fixture(scope="module")
def region(w3, wallets, tmp_path_factory):
    """Sakura from its config, 3 households (the founders and battery owners hh01..hh03 are
    wallets 3..5), one battery user (wallet 2) given WATT and TSL by the deployer before the
    hand-over (the deployer mints with a minter role it grants itself and renounces at once)."""
    deployer, user = wallets[0], wallets[2]
    cfg = load_region("sakura").scaled(3)
    owners = {h.name: wallets[3 + i].address for i, h in enumerate(cfg.households)}

    def fund_user(region) -> None:
        watt, tsl = region["WattToken"], region["TeslaToken"]
        minter = watt.functions.MINTER_ROLE().call()
        send(w3, deployer, watt.functions.grantRole(minter, deployer.address))
        send(w3, deployer, watt.functions.mint(user.address, 20_000 * 10**15))
        send(w3, deployer, watt.functions.renounceRole(minter, deployer.address))
        send(w3, deployer, tsl.functions.transfer(user.address, 1_000 * TSL))

    return deploy_region(w3, deployer, cfg, keeper=wallets[1].address, owners=owners,
                         directory=tmp_path_factory.mktemp("deployments"), before_handover=fund_user)


@pytest.fixture
def founders(wallets):
    return [wallets[3], wallets[4], wallets[5]]


def _pass(w3, region, founders, calls, description) -> None:
    """Propose ``calls``, two of three founders vote for (the config's 2-of-N), execute."""
    pid = dao_sdk.propose(w3, founders[0], region.dao, calls, description)
    for f in founders[:2]:
        dao_sdk.vote(w3, f, region.dao, pid, "for")
    assert dao_sdk.status(w3, region.dao, pid)["state"] == "Succeeded"
    dao_sdk.execute(w3, founders[0], region.dao, pid)


def _record_contributions(w3, region, founders) -> int:
    """The DAO records shares so the founders hold 3/5/7 and sets an awkward fee rate (next slot on)."""
    bid = region.battery_ids["community-1"]
    shares = region["ContributionShares"]
    assert [shares.functions.sharesOf(f.address).call() for f in founders] == [FOUNDING] * len(founders)
    _pass(w3, region, founders, [
        *(dao_sdk.encode_call(shares, "recordContribution", f.address, n - FOUNDING, "first year's work")
          for f, n in zip(founders, CONTRIBUTIONS, strict=True)),
        dao_sdk.encode_call(region["BatteryStorage"], "setFeeRate", bid, AWKWARD_RATE),
    ], "record the founders' contributions; fee rate 0.02 TSL + 7 base units")
    assert [shares.functions.sharesOf(f.address).call() for f in founders] == list(CONTRIBUTIONS)
    return bid


def _pay_a_fee(w3, region, user, wh: int = 1_501, slots: int = 3) -> int:
    """``user`` keeps ``wh`` in the community battery over ``slots`` (≥ 2) started slots, pays and takes
    the energy back in the last slot; returns the one fee paid (checked against the fee formula)."""
    storage = region["BatteryStorage"]
    bid = region.battery_ids["community-1"]
    start = next_slot_start(w3, offset=10)  # a fresh slot: a rate set by proposal is in force
    mine_at(w3, start)
    st_sdk.deposit(w3, user, storage, bid, wh)  # minted here, not metered: no colour claim
    mine_at(w3, start + (slots - 1) * SLOT)
    fee = st_sdk.pay_fees(w3, user, storage, bid)
    assert fee == wh * AWKWARD_RATE * slots // 1000
    st_sdk.withdraw(w3, user, storage, bid, wh)  # same slot: nothing more owed
    assert st_sdk.owed(storage, bid, user.address) == 0
    return fee


def _members_claim(w3, region, founders) -> list[int]:
    shares, tsl = region["ContributionShares"], region["TeslaToken"]
    got = []
    for f in founders:
        before = tsl.functions.balanceOf(f.address).call()
        send(w3, f, shares.functions.claim(tsl.address, f.address))
        got.append(tsl.functions.balanceOf(f.address).call() - before)
    return got


def _expected_claims(platform: int) -> list[int]:
    """ContributionShares' documented rule for one arrival: acc = a·SCALE // Σshares, claim = ⌊s·acc / SCALE⌋."""
    acc = platform * SCALE // sum(CONTRIBUTIONS)
    return [s * acc // SCALE for s in CONTRIBUTIONS]


def test_contribution_shares_cannot_collect_its_platform_share_itself(w3, wallets, region, founders, snapshot):
    """The lock, as it is without a push payout: the share is credited to ContributionShares in
    BatteryStorage; ContributionShares sees no revenue and has no function that could call out;
    the treasury's own ``claim()`` (by proposal) pays the treasury, not the shareholders; and
    ``setPayees`` only redirects future fees."""
    storage, shares, tsl = region["BatteryStorage"], region["ContributionShares"], region["TeslaToken"]
    _record_contributions(w3, region, founders)
    fee = _pay_a_fee(w3, region, wallets[2])
    platform = fee // 10
    assert storage.functions.platformTreasury().call() == shares.address  # deploy_region's wiring
    assert st_sdk.claimable(storage, shares.address) == platform
    assert shares.functions.sync(tsl.address).call() == 0  # nothing arrived
    assert all(shares.functions.claimable(f.address, tsl.address).call() == 0 for f in founders)
    # ContributionShares' whole external surface: nothing forwards a call to another contract.
    callable_fns = {e["name"] for e in shares.abi if e.get("type") == "function"
                    and e.get("stateMutability") not in ("view", "pure")}
    assert callable_fns == {"addRevenueToken", "claim", "grantRole", "recordContribution", "renounceRole",
                            "revokeRole", "sync"}
    # The DAO's only lever on BatteryStorage is a proposal; claim() pays its caller, the treasury.
    treasury = region.dao.treasury
    before = tsl.functions.balanceOf(treasury.address).call()
    _pass(w3, region, founders, [
        dao_sdk.encode_call(storage, "claim"),
        dao_sdk.encode_call(storage, "setPayees", treasury.address, treasury.address),
    ], "claim what BatteryStorage owes the treasury; make the treasury the platform payee")
    pool = tsl.functions.balanceOf(treasury.address).call() - before
    assert pool == to_units(region.config.storage.marketing_pool_tsl, 18) + fee // 10  # the marketing pool only
    assert st_sdk.claimable(storage, shares.address) == platform  # still credited to the old payee
    assert tsl.functions.balanceOf(shares.address).call() == 0


def test_platform_share_reaches_contribution_share_holders(w3, wallets, region, founders, snapshot):
    """End to end: fee → platform share credited to ContributionShares → anyone pushes it there with
    ``claimFor`` → each member claims its pro-rata part; the books close to the base unit."""
    storage, shares, tsl = region["BatteryStorage"], region["ContributionShares"], region["TeslaToken"]
    _record_contributions(w3, region, founders)
    fees_before, claimed_before = storage.functions.totalFeesPaid().call(), storage.functions.totalClaimed().call()
    fee = _pay_a_fee(w3, region, wallets[2])
    assert fee % 10 != 0  # the rounding of the split is exercised
    platform = fee // 10
    assert storage.functions.totalFeesPaid().call() - fees_before == fee
    assert st_sdk.claimable(storage, shares.address) == platform

    # Anyone (here an account with no role, no share, no battery) triggers the payout; the TSL
    # goes to the payee, never to the caller.
    operator = wallets[9]
    op_tsl = tsl.functions.balanceOf(operator.address).call()
    held = tsl.functions.balanceOf(storage.address).call()
    paid = st_sdk.claim_for(w3, operator, storage, shares.address)
    assert paid == platform
    assert tsl.functions.balanceOf(operator.address).call() == op_tsl
    assert tsl.functions.balanceOf(shares.address).call() == platform
    assert tsl.functions.balanceOf(storage.address).call() == held - platform
    assert st_sdk.claimable(storage, shares.address) == 0
    assert storage.functions.totalClaimed().call() - claimed_before == platform
    with pytest.raises(TransactionFailed) as err:  # a second push finds nothing
        st_sdk.claim_for(w3, operator, storage, shares.address)
    assert err.value.error_name == "StorageNothingToClaim"
    assert err.value.error_args["payee"] == shares.address

    expected = _expected_claims(platform)
    assert [shares.functions.claimable(f.address, tsl.address).call() for f in founders] == expected
    got = _members_claim(w3, region, founders)
    assert got == expected
    dust = tsl.functions.balanceOf(shares.address).call()
    assert sum(got) + dust == platform
    assert 0 <= dust < len(founders)  # each member keeps a fraction < 1 unit credited
    assert shares.functions.totalRevenue(tsl.address).call() == platform
    for g, s in zip(got, CONTRIBUTIONS, strict=True):
        real = Fraction(platform * s, sum(CONTRIBUTIONS))
        assert real - 1 < g <= real  # never above the real-valued share, at most one unit short


def test_fees_credited_before_set_payees_are_pushed_to_the_old_payee(w3, wallets, region, founders, snapshot):
    """Recovery: the DAO moves the platform payee to the treasury; the credit the old payee
    (ContributionShares) had earned stays its own and ``claimFor`` still delivers it; the new
    payee's share is pushed to the treasury the same way, and the marketing pool is not touched."""
    storage, shares, tsl = region["BatteryStorage"], region["ContributionShares"], region["TeslaToken"]
    treasury = region.dao.treasury
    _record_contributions(w3, region, founders)
    old_fee = _pay_a_fee(w3, region, wallets[2])
    _pass(w3, region, founders, [dao_sdk.encode_call(storage, "setPayees", treasury.address, treasury.address)],
          "platform share to the treasury from now on")
    new_fee = _pay_a_fee(w3, region, wallets[2], wh=2_003, slots=2)
    assert st_sdk.claimable(storage, shares.address) == old_fee // 10
    assert storage.functions.credited(treasury.address).call() == new_fee // 10
    pool = storage.functions.marketingPool().call()

    operator = wallets[9]
    assert st_sdk.claim_for(w3, operator, storage, shares.address) == old_fee // 10
    got = _members_claim(w3, region, founders)
    assert got == _expected_claims(old_fee // 10)
    assert sum(got) + tsl.functions.balanceOf(shares.address).call() == old_fee // 10

    before = tsl.functions.balanceOf(treasury.address).call()
    assert st_sdk.claim_for(w3, operator, storage, treasury.address) == new_fee // 10
    assert tsl.functions.balanceOf(treasury.address).call() - before == new_fee // 10
    assert storage.functions.marketingPool().call() == pool  # only the marketing payee's own claim() takes it


def test_nobody_can_push_the_marketing_pool_out(w3, wallets, region, snapshot):
    """The marketing pool funds welcome grants. ``claimFor`` pays credited fee parts only: if it
    also paid the pool to the marketing payee, anyone could empty the pool at will and stop the
    grants until the DAO voted to refill it."""
    storage = region["BatteryStorage"]
    treasury = region.dao.treasury.address
    pool = storage.functions.marketingPool().call()
    assert storage.functions.marketing().call() == treasury and pool > 0
    with pytest.raises(TransactionFailed) as err:
        st_sdk.claim_for(w3, wallets[9], storage, treasury)
    assert err.value.error_name == "StorageNothingToClaim"
    assert storage.functions.marketingPool().call() == pool
    assert st_sdk.claimable(storage, treasury) == pool  # the marketing payee's own claim() still would take it
