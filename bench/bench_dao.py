"""Gas of the DAO's everyday operations (one-call proposal: a fee change on a stand-in contract).

References: an OpenZeppelin Governor castVote is about 100,000 gas; a Safe execTransaction
about 75,000.
"""

from __future__ import annotations

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.dao import (
    VotingParams,
    deploy_dao,
    encode_call,
    handover,
    propose,
    set_budget_call,
    spend,
    vote,
)
from gridcoop_sdk.tx import send


def run(ctx) -> dict[str, float]:
    w3 = ctx.w3
    admin, members, payee = ctx.accounts[0], ctx.accounts[1:6], ctx.accounts[9]
    founders = [(members[0].address, "treasurer")] + [(m.address, "member") for m in members[1:]]
    dao = deploy_dao(w3, admin, founders=founders, params=VotingParams(voting_period_s=3600, threshold=3))
    box = deploy(w3, admin, "ParamBox", admin.address, record=False)
    handover(w3, admin, {"ParamBox": box}, dao.treasury.address)
    coin = deploy(w3, admin, "LocalCurrency", "Coin", "C", 18, admin.address, record=False)
    send(w3, admin, coin.functions.issue(dao.treasury.address, 10**24))

    def passed(calls, description):
        pid = propose(w3, members[1], dao, calls, description)
        receipts = [vote(w3, m, dao, pid, "for") for m in members[:3]]
        return pid, receipts

    # warm-up proposal (first-time storage writes) so the figures are the steady state
    pid, _ = passed([encode_call(box, "setFee", 1)], "warm up")
    send(w3, members[0], dao.treasury.functions.execute(pid))

    t = dao.treasury
    before = t.functions.proposalCount().call()
    propose_receipt = send(w3, members[1], t.functions.propose([encode_call(box, "setFee", 250).as_tuple()],
                                                               "set the fee to 2.5%"))
    pid = before + 1
    vote_gas = [vote(w3, m, dao, pid, "for")["gasUsed"] for m in members[:3]]
    execute_gas = send(w3, members[0], t.functions.execute(pid))["gasUsed"]

    (role_id,) = dao.role_nft.functions.rolesOf(members[0].address).call()
    bid, _ = passed([set_budget_call(dao, role_id, coin.address, 10**21, 86400)], "treasurer budget")
    send(w3, members[0], t.functions.execute(bid))
    spend(w3, members[0], dao, role_id, coin.address, payee.address, 10**18, "warm")
    spend_gas = spend(w3, members[0], dao, role_id, coin.address, payee.address, 10**18, "cleaning")["gasUsed"]

    shares = deploy(w3, admin, "ContributionShares", admin.address, [coin.address], record=False)
    send(w3, admin, shares.functions.recordContribution(members[0].address, 100, "pv"))
    send(w3, admin, shares.functions.recordContribution(members[1].address, 300, "battery"))
    send(w3, admin, coin.functions.issue(shares.address, 10**20))
    send(w3, members[0], shares.functions.claim(coin.address, members[0].address))
    send(w3, admin, coin.functions.issue(shares.address, 10**20))
    claim_gas = send(w3, members[1], shares.functions.claim(coin.address, members[1].address))["gasUsed"]
    record_gas = send(w3, admin, shares.functions.recordContribution(members[2].address, 50, "work"))["gasUsed"]

    return {
        "dao_gas_propose": propose_receipt["gasUsed"],
        "dao_gas_vote": max(vote_gas),
        "dao_gas_execute": execute_gas,
        "dao_gas_budget_spend": spend_gas,
        "dao_gas_revenue_claim": claim_gas,
        "dao_gas_record_contribution": record_gas,
    }
