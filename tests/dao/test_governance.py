"""Treasury governance and RoleNFT rights on a real anvil: proposals, votes, delay, revocation."""

from __future__ import annotations

import pytest

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.dao import (
    VotingParams,
    cancel,
    deploy_dao,
    encode_call,
    execute,
    grant_role_call,
    propose,
    queue,
    revoke_role_call,
    roles_of,
    status,
    vote,
)
from gridcoop_sdk.tx import send


def _fee_proposal(w3, dao, proposer, box, bps=250):
    return propose(w3, proposer, dao, [encode_call(box, "setFee", bps)], f"set the fee to {bps} bps")


# ------------------------------------------------------------------------------------ roles


def test_founders_hold_roles_with_their_rights(w3, dao, members, outsider):
    rn = dao.role_nft
    leader = roles_of(w3, rn, members["leader"].address)
    assert [(r["type"], r["can_propose"], r["vote_weight"], r["budget_authority"]) for r in leader] == [
        ("leader", True, 1, True)
    ]
    assert rn.functions.votingWeight(members["auditor"].address).call() == 1
    assert rn.functions.canPropose(members["auditor"].address).call() is False
    assert rn.functions.totalVotingWeight().call() == 4
    assert rn.functions.votingRoleCount().call() == 4
    assert rn.functions.votingWeight(outsider.address).call() == 0


def test_role_tokens_are_not_transferable(w3, dao, members, outsider):
    rn, leader = dao.role_nft, members["leader"]
    (tid,) = rn.functions.rolesOf(leader.address).call()
    for fn in (
        rn.functions.transferFrom(leader.address, outsider.address, tid),
        rn.functions.safeTransferFrom(leader.address, outsider.address, tid),
        rn.functions.approve(outsider.address, tid),
        rn.functions.setApprovalForAll(outsider.address, True),
    ):
        with pytest.raises(TransactionFailed) as err:
            send(w3, leader, fn)
        assert err.value.error_name == "RoleNFTNonTransferable"
    assert rn.functions.ownerOf(tid).call() == leader.address


def test_deployer_cannot_grant_roles_after_deployment(w3, dao, deployer, outsider):
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, dao.role_nft.functions.grant(outsider.address, 1, 0))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["account"] == deployer.address


def test_auditor_and_outsider_cannot_propose(w3, dao, members, outsider, param_box):
    for acct in (members["auditor"], outsider):
        with pytest.raises(TransactionFailed) as err:
            _fee_proposal(w3, dao, acct, param_box)
        assert err.value.error_name == "TreasuryNotProposer"
    assert dao.treasury.functions.proposalCount().call() == 0


def test_role_granted_by_proposal_with_term_expires(w3, dao, members, outsider, param_box, time_travel):
    now = w3.eth.get_block("latest")["timestamp"]
    pid = propose(w3, members["leader"], dao, [grant_role_call(dao.role_nft, outsider.address, 3, now + 7200)],
                  "welcome a new member for a two-hour term")
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid, "for")
    execute(w3, members["leader"], dao, pid)
    assert dao.role_nft.functions.votingWeight(outsider.address).call() == 1
    assert dao.role_nft.functions.totalVotingWeight().call() == 5
    pid2 = _fee_proposal(w3, dao, outsider, param_box)  # the new member may propose
    time_travel(7201)
    (role,) = roles_of(w3, dao.role_nft, outsider.address)
    assert role["active"] is False
    assert dao.role_nft.functions.votingWeight(outsider.address).call() == 0
    assert dao.role_nft.functions.totalVotingWeight().call() == 4
    with pytest.raises(TransactionFailed) as err:
        _fee_proposal(w3, dao, outsider, param_box)
    assert err.value.error_name == "TreasuryNotProposer"
    assert status(w3, dao, pid2)["state"] == "Defeated"


# ------------------------------------------------------------------------------------ lifecycle


def test_proposal_passes_and_changes_the_fee(w3, dao, members, param_box):
    assert param_box.functions.feeBps().call() == 100
    pid = _fee_proposal(w3, dao, members["member"], param_box, 250)
    st = status(w3, dao, pid)
    assert st["state"] == "Active" and st["for"] == 0 and st["description"] == "set the fee to 250 bps"
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "for")
    vote(w3, members["auditor"], dao, pid, "for")  # 3 of 4: decided before the deadline
    assert status(w3, dao, pid)["state"] == "Succeeded"
    receipt = execute(w3, members["auditor"], dao, pid)  # anyone may trigger a passed proposal
    (ev,) = param_box.events.FeeChanged().process_receipt(receipt)
    assert (ev["args"]["oldBps"], ev["args"]["newBps"]) == (100, 250)
    assert param_box.functions.feeBps().call() == 250
    assert status(w3, dao, pid)["state"] == "Executed"
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_name == "TreasuryWrongState"
    assert err.value.error_args["current"] == 7  # Executed


def test_proposal_below_threshold_does_not_execute(w3, dao, members, param_box, time_travel):
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "abstain")
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_name == "TreasuryWrongState" and err.value.error_args["current"] == 1  # Active
    time_travel(3601)
    st = status(w3, dao, pid)
    assert (st["state"], st["for"], st["abstain"]) == ("Defeated", 1, 1)
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_args["current"] == 3  # Defeated
    assert param_box.functions.feeBps().call() == 100


def test_majority_against_defeats_even_above_threshold(w3, dao, members, param_box, time_travel):
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "for")
    vote(w3, members["member"], dao, pid, "against")
    vote(w3, members["auditor"], dao, pid, "against")
    time_travel(3601)
    assert status(w3, dao, pid)["state"] == "Defeated"


def test_non_holder_and_double_votes_are_refused(w3, dao, members, outsider, param_box):
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    with pytest.raises(TransactionFailed) as err:
        vote(w3, outsider, dao, pid, "for")
    assert err.value.error_name == "TreasuryNotVoter"
    assert err.value.error_args == {"account": outsider.address}
    vote(w3, members["member"], dao, pid, "against")
    with pytest.raises(TransactionFailed) as err:
        vote(w3, members["member"], dao, pid, "for")
    assert err.value.error_name == "TreasuryAlreadyVoted"
    st = status(w3, dao, pid)
    assert (st["for"], st["against"]) == (0, 1)


def test_vote_on_unknown_or_closed_proposal_is_refused(w3, dao, members, param_box, time_travel):
    with pytest.raises(TransactionFailed) as err:
        vote(w3, members["leader"], dao, 99, "for")
    assert err.value.error_name == "TreasuryWrongState" and err.value.error_args["current"] == 0
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    time_travel(3601)
    with pytest.raises(TransactionFailed) as err:
        vote(w3, members["leader"], dao, pid, "for")
    assert err.value.error_args["current"] == 3  # Defeated: voting closed


def test_proposer_cancels_before_it_passes(w3, dao, members, param_box):
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    vote(w3, members["treasurer"], dao, pid, "for")
    with pytest.raises(TransactionFailed) as err:
        cancel(w3, members["treasurer"], dao, pid)
    assert err.value.error_name == "TreasuryNotProposalOwner"
    receipt = cancel(w3, members["leader"], dao, pid)
    assert dao.treasury.events.ProposalCanceled().process_receipt(receipt)[0]["args"]["id"] == pid
    assert status(w3, dao, pid)["state"] == "Canceled"
    with pytest.raises(TransactionFailed) as err:
        vote(w3, members["member"], dao, pid, "for")
    assert err.value.error_args["current"] == 2  # Canceled
    # once passed it can no longer be cancelled
    pid2 = _fee_proposal(w3, dao, members["leader"], param_box)
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid2, "for")
    with pytest.raises(TransactionFailed) as err:
        cancel(w3, members["leader"], dao, pid2)
    assert err.value.error_args["current"] == 4  # Succeeded


def test_execution_delay_is_enforced(w3, deployer, members, deployments_dir, time_travel):
    founders = [(a.address, r) for r, a in members.items()]
    dao = deploy_dao(w3, deployer, founders=founders, name="delayed",
                     params=VotingParams(voting_period_s=600, threshold=2, execution_delay_s=86400))
    box = deploy(w3, deployer, "ParamBox", dao.treasury.address, record=False)
    pid = _fee_proposal(w3, dao, members["leader"], box, 300)
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "for")
    time_travel(601)
    with pytest.raises(TransactionFailed) as err:  # must be queued first
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_args["current"] == 4
    eta = queue(w3, members["leader"], dao, pid)
    assert status(w3, dao, pid)["state"] == "Queued"
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_name == "TreasuryTooEarly" and err.value.error_args["eta"] == eta
    time_travel(86400)
    execute(w3, members["leader"], dao, pid)
    assert box.functions.feeBps().call() == 300


def test_role_revoked_mid_vote_stops_counting(w3, dao, members, param_box, time_travel):
    rn = dao.role_nft
    pid = _fee_proposal(w3, dao, members["leader"], param_box)
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "for")
    assert status(w3, dao, pid)["for"] == 2
    # meanwhile the others revoke the treasurer's office
    (treasurer_role,) = rn.functions.rolesOf(members["treasurer"].address).call()
    rid = propose(w3, members["leader"], dao, [revoke_role_call(rn, treasurer_role)], "revoke the treasurer")
    for role in ("leader", "member", "auditor"):
        vote(w3, members[role], dao, rid, "for")
    execute(w3, members["member"], dao, rid)
    assert rn.functions.votingWeight(members["treasurer"].address).call() == 0
    st = status(w3, dao, pid)
    assert st["for"] == 1 and st["total_weight"] == 3
    time_travel(3601)
    assert status(w3, dao, pid)["state"] == "Defeated"
    with pytest.raises(TransactionFailed):
        execute(w3, members["leader"], dao, pid)
    assert param_box.functions.feeBps().call() == 100


def test_role_revoked_after_queue_blocks_execution(w3, deployer, members, deployments_dir, time_travel):
    founders = [(a.address, r) for r, a in members.items()]
    dao = deploy_dao(w3, deployer, founders=founders, name="q",
                     params=VotingParams(voting_period_s=600, threshold=2, execution_delay_s=1000))
    rn = dao.role_nft
    box = deploy(w3, deployer, "ParamBox", dao.treasury.address, record=False)
    pid = _fee_proposal(w3, dao, members["leader"], box)
    vote(w3, members["leader"], dao, pid, "for")
    vote(w3, members["treasurer"], dao, pid, "for")
    (treasurer_role,) = rn.functions.rolesOf(members["treasurer"].address).call()
    rid = propose(w3, members["leader"], dao, [revoke_role_call(rn, treasurer_role)], "revoke the treasurer")
    for role in ("leader", "member", "auditor"):
        vote(w3, members[role], dao, rid, "for")
    time_travel(601)
    queue(w3, members["leader"], dao, pid)
    queue(w3, members["leader"], dao, rid)
    time_travel(1000)
    execute(w3, members["leader"], dao, rid)
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_name == "TreasuryNoLongerPasses"
    assert box.functions.feeBps().call() == 100


def test_execution_that_reenters_the_treasury_is_undone(w3, dao, deployer, members, param_box):
    attacker = deploy(w3, deployer, "Reenterer", record=False)
    # proposal 1 sets the fee and then calls a contract that re-enters execute(1)
    calls = [encode_call(param_box, "setFee", 999), encode_call(attacker, "poke", dao.treasury.address, 1)]
    pid = propose(w3, members["leader"], dao, calls, "fee change with a re-entering call")
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid, "for")
    with pytest.raises(TransactionFailed) as err:
        execute(w3, members["leader"], dao, pid)
    assert err.value.error_name == "TreasuryCallFailed"
    assert err.value.error_args["index"] == 1
    # the inner revert is the re-entrancy guard's
    assert err.value.error_args["returndata"][:4] == bytes.fromhex("3ee5aeb5")  # ReentrancyGuardReentrantCall()
    assert param_box.functions.feeBps().call() == 100
    assert status(w3, dao, pid)["state"] == "Succeeded"


def test_voting_params_change_only_by_proposal(w3, dao, members):
    t = dao.treasury
    new = VotingParams(voting_period_s=7200, threshold=3, quorum_bps=5000)
    with pytest.raises(TransactionFailed) as err:
        send(w3, members["leader"], t.functions.setVotingParams(new.as_tuple()))
    assert err.value.error_name == "TreasuryOnlySelf"
    pid = propose(w3, members["leader"], dao, [encode_call(t, "setVotingParams", new.as_tuple())], "stricter rules")
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid, "for")
    execute(w3, members["leader"], dao, pid)
    assert tuple(t.functions.votingParams().call()) == new.as_tuple()


def test_quorum_rule(w3, deployer, members, deployments_dir, time_travel):
    founders = [(a.address, r) for r, a in members.items()]
    dao = deploy_dao(w3, deployer, founders=founders, name="quorum",
                     params=VotingParams(voting_period_s=600, threshold=0, quorum_bps=7500))
    box = deploy(w3, deployer, "ParamBox", dao.treasury.address, record=False)
    low = _fee_proposal(w3, dao, members["leader"], box, 1)
    vote(w3, members["leader"], dao, low, "for")
    vote(w3, members["member"], dao, low, "abstain")  # turnout 2/4 < 75 %
    enough = _fee_proposal(w3, dao, members["leader"], box, 2)
    vote(w3, members["leader"], dao, enough, "for")
    vote(w3, members["member"], dao, enough, "abstain")
    vote(w3, members["auditor"], dao, enough, "abstain")  # turnout 3/4, 1 for 0 against
    time_travel(601)
    assert status(w3, dao, low)["state"] == "Defeated"
    assert status(w3, dao, enough)["state"] == "Succeeded"


def test_eth_payment_by_proposal_and_grant_refusals(w3, dao, deployer, members, outsider):
    from gridcoop_sdk.dao import Call

    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": deployer.address, "to": dao.treasury.address, "value": 10**18}))
    before = w3.eth.get_balance(outsider.address)
    pid = propose(w3, members["leader"], dao, [Call(outsider.address, 3 * 10**17, b"")], "pay the installer")
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid, "for")
    execute(w3, members["auditor"], dao, pid)
    assert w3.eth.get_balance(outsider.address) - before == 3 * 10**17
    assert w3.eth.get_balance(dao.treasury.address) == 7 * 10**17
    # grants with a past term or an unknown type are refused (checked through a proposal)
    now = w3.eth.get_block("latest")["timestamp"]
    for call, error in ((grant_role_call(dao.role_nft, outsider.address, 3, now - 1), "RoleNFTExpiryInPast"),
                        (grant_role_call(dao.role_nft, outsider.address, 42, 0), "RoleNFTUnknownRoleType")):
        pid = propose(w3, members["leader"], dao, [call], "bad grant")
        for role in ("leader", "treasurer", "member"):
            vote(w3, members[role], dao, pid, "for")
        with pytest.raises(TransactionFailed) as err:
            execute(w3, members["leader"], dao, pid)
        assert err.value.error_name == "TreasuryCallFailed"
        from gridcoop_sdk.artifacts import decode_error

        assert decode_error(err.value.error_args["returndata"])[0] == error


def test_deploy_dao_refuses_unusable_setups(w3, deployer, members, deployments_dir):
    from gridcoop_sdk.dao import DaoError

    with pytest.raises(DaoError, match="no proposal could ever pass"):
        deploy_dao(w3, deployer, founders=[(members["leader"].address, "leader")], params=VotingParams(threshold=2))
    with pytest.raises(DaoError, match="unknown role type 'chair'"):
        deploy_dao(w3, deployer, founders=[(members["leader"].address, "chair")])
    with pytest.raises(DaoError, match="neither|set a threshold"):
        VotingParams(threshold=0, quorum_bps=0)
