"""Hypothesis: across random sequences of deposits, withdrawals, fee payments, prepayments, claims,
claims pushed to a payee by someone else (claimFor), grants and clock jumps, the TSL books balance to the base unit:
fees paid in + pool funding == Σ claimable + Σ claimed + Σ granted, and the contract holds exactly
prepaid credit + Σ claimable; the WATT it holds == Σ stored Wh × 10^15."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import SLOT
from web3.logs import DISCARD

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.storage import send_with_margin as send

op = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(1, 6_000)),
    st.tuples(st.just("withdraw"), st.integers(0, 2), st.integers(1, 6_000)),
    st.tuples(st.just("pay"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("prepay"), st.integers(0, 2), st.integers(1, 10**16)),
    st.tuples(st.just("warp"), st.just(0), st.integers(1, 4 * SLOT)),
    st.tuples(st.just("claim"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("claimfor"), st.integers(0, 4), st.integers(0, 2)),  # payee, sender (a user)
    st.tuples(st.just("grant"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("rate"), st.just(0), st.integers(0, 10**16 + 7)),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=5, max_size=18))
def test_random_sequences_keep_the_books_exact(env, ops):
    w3, s, tsl, watt = env.w3, env.storage, env.tsl, env.watt
    payees = [*env.owners, env.platform, env.marketing]
    for u in env.users:
        send(w3, env.deployer, env.registry.functions.setParticipant(u.address, True))
        send(w3, u, watt.functions.approve(s.address, 10**30))
        send(w3, u, tsl.functions.approve(s.address, 10**30))
    start = {
        "fees": s.functions.totalFeesPaid().call(), "funded": s.functions.totalPoolFunding().call(),
        "claimed": s.functions.totalClaimed().call(), "granted": s.functions.totalGranted().call(),
    }
    paid = claimed = granted = 0
    send(w3, env.deployer, tsl.functions.approve(s.address, 10**30))
    send(w3, env.deployer, s.functions.fundMarketingPool(10**19))
    assert s.functions.totalPoolFunding().call() - start["funded"] == 10**19
    for kind, who, amount in ops:
        user = env.users[who % 3]
        try:
            if kind == "deposit":
                send(w3, user, s.functions.deposit(env.battery, amount, b"\0" * 32))
            elif kind == "withdraw":
                r = send(w3, user, s.functions.withdraw(env.battery, amount))
                paid += sum(e["args"]["amount"] for e in s.events.FeePaid().process_receipt(r, errors=DISCARD))
            elif kind == "pay":
                r = send(w3, user, s.functions.payFees(env.battery))
                paid += sum(e["args"]["amount"] for e in s.events.FeePaid().process_receipt(r, errors=DISCARD))
            elif kind == "prepay":
                send(w3, user, s.functions.prepay(amount))
            elif kind == "warp":
                w3.provider.make_request("evm_increaseTime", [amount])
                w3.provider.make_request("evm_mine", [])
            elif kind == "claim":
                payee = payees[who]
                before = tsl.functions.balanceOf(payee.address).call()
                send(w3, payee, s.functions.claim())
                claimed += tsl.functions.balanceOf(payee.address).call() - before
            elif kind == "claimfor":
                payee, sender = payees[who], env.users[amount]
                before = [tsl.functions.balanceOf(a.address).call() for a in (payee, sender)]
                send(w3, sender, s.functions.claimFor(payee.address))
                claimed += tsl.functions.balanceOf(payee.address).call() - before[0]
                assert tsl.functions.balanceOf(sender.address).call() == before[1]  # never to the sender
            elif kind == "grant":
                before = tsl.functions.balanceOf(user.address).call()
                send(w3, user, s.functions.claimWelcomeGrant())
                granted += tsl.functions.balanceOf(user.address).call() - before
            elif kind == "rate":
                send(w3, env.deployer, s.functions.setFeeRate(env.battery, amount))
        except TransactionFailed as exc:  # refusals are part of the game; they must be named ones
            assert exc.error_name in {"StorageCapacityExceeded", "StorageInsufficientStored",
                                      "StorageNothingToClaim", "StorageGrantAlreadyClaimed",
                                      "StorageMarketingPoolEmpty"}, str(exc)

        claimable = sum(s.functions.claimable(p.address).call() for p in payees)
        assert s.functions.totalFeesPaid().call() - start["fees"] == paid
        assert s.functions.totalClaimed().call() - start["claimed"] == claimed
        assert s.functions.totalGranted().call() - start["granted"] == granted
        # Since deployment (the env has one battery, so these payees are all the payees there are):
        held = tsl.functions.balanceOf(s.address).call()
        assert held == s.functions.totalCredit().call() + claimable
        assert s.functions.totalFeesPaid().call() + s.functions.totalPoolFunding().call() == (
            claimable + s.functions.totalClaimed().call() + s.functions.totalGranted().call())
        info = s.functions.batteries(env.battery).call()
        assert info[2] <= info[1]  # stored <= capacity
        assert watt.functions.balanceOf(s.address).call() == info[2] * 10**15
