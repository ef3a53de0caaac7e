"""ContributionShares: pro-rata revenue, exact to the unit under the documented rounding rule."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.tx import send

SCALE = 10**36


class Model:
    """The contract's rounding rule in plain integers, plus the real-valued entitlement."""

    def __init__(self) -> None:
        self.shares: dict[str, int] = {}
        self.total = 0
        self.acc = self.carry = self.accounted = self.balance = self.revenue = 0
        self.acct: dict[str, list[int]] = {}
        self.claimed: dict[str, int] = {}
        self.real: dict[str, Fraction] = {}

    def sync(self) -> None:
        if self.total == 0:
            return
        arrived = self.balance - self.accounted
        if arrived == 0:
            return
        n = arrived * SCALE + self.carry
        self.acc += n // self.total
        self.carry = n % self.total
        self.accounted += arrived
        self.revenue += arrived
        for m, s in self.shares.items():
            self.real[m] = self.real.get(m, Fraction(0)) + Fraction(arrived * s, self.total)

    def settle(self, m: str) -> None:
        a = self.acct.setdefault(m, [0, 0])
        a[1] += self.shares.get(m, 0) * (self.acc - a[0])
        a[0] = self.acc

    def contribute(self, m: str, s: int) -> None:
        self.sync()
        self.settle(m)
        self.shares[m] = self.shares.get(m, 0) + s
        self.total += s

    def claim(self, m: str) -> int:
        self.sync()
        self.settle(m)
        amount = self.acct[m][1] // SCALE
        self.acct[m][1] -= amount * SCALE
        self.accounted -= amount
        self.balance -= amount
        self.claimed[m] = self.claimed.get(m, 0) + amount
        return amount

    def claimable(self, m: str) -> int:
        acc = self.acc
        if self.total:
            acc += ((self.balance - self.accounted) * SCALE + self.carry) // self.total
        snap, credit = self.acct.get(m, [0, 0])
        return (credit + self.shares.get(m, 0) * (acc - snap)) // SCALE


@pytest.fixture
def shares_and_coin(w3, deployer):
    coin = deploy(w3, deployer, "LocalCurrency", "Kyoto Coin", "KYO", 18, deployer.address, record=False)
    shares = deploy(w3, deployer, "ContributionShares", deployer.address, [coin.address], record=False)
    return shares, coin


def test_late_joiner_gets_nothing_of_earlier_revenue(w3, deployer, wallets, shares_and_coin):
    shares, coin = shares_and_coin
    a, b = wallets[1], wallets[2]
    send(w3, deployer, shares.functions.recordContribution(a.address, 100, "rooftop PV, 5 kW"))
    send(w3, deployer, coin.functions.issue(shares.address, 1000))  # revenue arrives by plain transfer
    receipt = send(w3, deployer, shares.functions.recordContribution(b.address, 100, "battery, 10 kWh"))
    (arrived,) = shares.events.RevenueArrived().process_receipt(receipt)
    assert (arrived["args"]["amount"], arrived["args"]["totalShares"]) == (1000, 100)
    assert shares.functions.claimable(b.address, coin.address).call() == 0
    assert shares.functions.claimable(a.address, coin.address).call() == 1000
    send(w3, deployer, coin.functions.issue(shares.address, 500))
    assert shares.functions.claimable(a.address, coin.address).call() == 1250
    assert shares.functions.claimable(b.address, coin.address).call() == 250
    receipt = send(w3, b, shares.functions.claim(coin.address, b.address))
    (ev,) = shares.events.RevenueClaimed().process_receipt(receipt)
    assert ev["args"]["amount"] == 250 and coin.functions.balanceOf(b.address).call() == 250
    assert shares.functions.claimable(b.address, coin.address).call() == 0
    assert shares.functions.sharesOf(a.address).call() == shares.functions.totalShares().call() - 100


def test_shares_are_recorded_only_by_the_recorder_and_tokens_must_be_registered(w3, deployer, wallets, shares_and_coin):
    shares, coin = shares_and_coin
    with pytest.raises(TransactionFailed) as err:
        send(w3, wallets[1], shares.functions.recordContribution(wallets[1].address, 10**9, "self-dealing"))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, shares.functions.recordContribution(wallets[1].address, 0, "nothing"))
    assert err.value.error_name == "SharesInvalidArgument"
    with pytest.raises(TransactionFailed) as err:
        send(w3, wallets[1], shares.functions.claim(wallets[3].address, wallets[1].address))
    assert err.value.error_name == "SharesUnknownRevenueToken"
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, shares.functions.addRevenueToken(coin.address))
    assert err.value.error_name == "SharesRevenueTokenRefused"
    # no transfer function exists: shares are not transferable
    assert not {"transfer", "transferFrom", "approve"} & {e.get("name") for e in shares.abi}


def test_revenue_before_any_shares_goes_to_the_first_shareholders(w3, deployer, wallets, shares_and_coin):
    shares, coin = shares_and_coin
    send(w3, deployer, coin.functions.issue(shares.address, 77))
    send(w3, deployer, shares.functions.recordContribution(wallets[1].address, 3, "first"))
    send(w3, deployer, shares.functions.recordContribution(wallets[2].address, 4, "second"))
    # 77e36 / 3 shares is not whole: the sole holder's credit is 77 minus 2e-36 (the 2e-36 are
    # carried to the next arrival), so 76 are claimable and the 0.999… stays credited
    assert shares.functions.claimable(wallets[1].address, coin.address).call() == 76
    assert shares.functions.claimable(wallets[2].address, coin.address).call() == 0
    send(w3, deployer, coin.functions.issue(shares.address, 7))  # wallets[1] gets 3/7, wallets[2] 4/7
    # credit 80 - 2e-36 -> 79: each member is at most one unit short, never over-paid
    assert shares.functions.claimable(wallets[1].address, coin.address).call() == 79
    assert shares.functions.claimable(wallets[2].address, coin.address).call() == 4


ops = st.lists(
    st.one_of(
        st.tuples(st.just("contribute"), st.integers(1, 4), st.one_of(st.integers(1, 10**6), st.integers(1, 10**24))),
        st.tuples(st.just("revenue"), st.integers(0, 0), st.integers(1, 10**21)),
        st.tuples(st.just("claim"), st.integers(1, 4), st.integers(0, 0)),
        st.tuples(st.just("sync"), st.integers(0, 0), st.integers(0, 0)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_revenue_distribution_matches_the_rounding_rule_exactly(w3, deployer, wallets, steps):
    coin = deploy(w3, deployer, "LocalCurrency", "Kyoto Coin", "KYO", 18, deployer.address, record=False)
    shares = deploy(w3, deployer, "ContributionShares", deployer.address, [coin.address], record=False)
    model = Model()
    members = {i: wallets[i].address for i in range(1, 5)}
    for op, who, amount in steps:
        if op == "contribute":
            send(w3, deployer, shares.functions.recordContribution(members[who], amount, "contribution"))
            model.contribute(members[who], amount)
        elif op == "revenue":
            send(w3, deployer, coin.functions.issue(shares.address, amount))
            model.balance += amount
        elif op == "sync":
            send(w3, deployer, shares.functions.sync(coin.address))
            model.sync()
        else:
            before = coin.functions.balanceOf(members[who]).call()
            send(w3, wallets[who], shares.functions.claim(coin.address, members[who]))
            assert coin.functions.balanceOf(members[who]).call() - before == model.claim(members[who])
        for m in members.values():
            assert shares.functions.claimable(m, coin.address).call() == model.claimable(m)
    assert shares.functions.carry(coin.address).call() == model.carry
    assert shares.functions.accPerShare(coin.address).call() == model.acc
    # settle everyone in the model, then check conservation and the real-valued entitlement
    model.sync()
    for m in members.values():
        model.settle(m)
    credits = sum(model.acct[m][1] for m in members.values())
    claimed = sum(model.claimed.values())
    assert claimed * SCALE + credits == model.revenue * SCALE - model.carry  # nothing created or lost
    assert coin.functions.balanceOf(shares.address).call() == model.balance
    for m in members.values():
        got = model.claimed.get(m, 0) + model.claimable(m)
        real = model.real.get(m, Fraction(0))
        # floor(credit): at most one unit short of the real-valued share, never more than it
        assert real - 1 <= got <= real + Fraction(1, 10**6), (m, got, float(real))


def test_contributions_are_recorded_by_proposal_and_revenue_claimed(w3, deployer, wallets, deployments_dir):
    from gridcoop_sdk.dao import VotingParams, deploy_dao, encode_call, execute, propose, vote

    coin = deploy(w3, deployer, "LocalCurrency", "Kyoto Coin", "KYO", 18, deployer.address, record=False)
    leader, member, builder = wallets[1], wallets[2], wallets[3]
    dao = deploy_dao(w3, deployer, founders=[(leader.address, "leader"), (member.address, "member")],
                     params=VotingParams(threshold=2), revenue_tokens=[coin.address], name="rev")
    pid = propose(w3, leader, dao, [
        encode_call(dao.shares, "recordContribution", leader.address, 600, "10 kWh battery"),
        encode_call(dao.shares, "recordContribution", builder.address, 400, "installation work"),
    ], "record the first contributions")
    vote(w3, leader, dao, pid, "for")
    vote(w3, member, dao, pid, "for")
    execute(w3, member, dao, pid)
    send(w3, deployer, coin.functions.issue(dao.shares.address, 10_000))  # e.g. the platform's fee share
    send(w3, builder, dao.shares.functions.claim(coin.address, builder.address))
    assert coin.functions.balanceOf(builder.address).call() == 4_000
    assert dao.shares.functions.claimable(leader.address, coin.address).call() == 6_000
    with pytest.raises(TransactionFailed) as err:  # the deployer handed the recorder role over
        send(w3, deployer, dao.shares.functions.recordContribution(deployer.address, 1, "me"))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
