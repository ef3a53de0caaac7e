"""The gridcoop DAO from Python: deploy, propose, vote, queue, execute, budgets, hand-over.

The DAO is three contracts (``contracts/dao``):

- ``RoleNFT`` — non-transferable offices (leader, treasurer, member, auditor …) whose *type*
  carries the rights: may propose, vote weight, budget authority; optional expiry (a term).
- ``Treasury`` — the multisig: proposals are batches of calls, role holders vote
  for/against/abstain, a passing proposal executes (after an optional delay); role tokens with
  budget authority pay from per-period budgets without a vote.
- ``ContributionShares`` — contributions recorded by proposal become non-transferable shares;
  revenue (ERC-20) is claimable pro rata to the shares that existed when it arrived.

Everything goes through :mod:`gridcoop_sdk.tx` (decoded custom errors) and
:mod:`gridcoop_sdk.contracts` (artifacts + deployment records). ``scripts/dao.py`` (``ape run
dao …``) and the demo call these same functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from .contracts import at, deploy
from .exceptions import GridcoopError, TransactionFailed
from .tx import call as tx_call
from .tx import send

log = logging.getLogger("gridcoop.dao")

ZERO_ADDRESS = "0x" + "00" * 20
DEFAULT_ADMIN_ROLE = b"\x00" * 32

#: ITreasury.ProposalState, by index.
STATES = ["None", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"]
#: ITreasury.Support.
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


class DaoError(GridcoopError, ValueError):
    """A DAO request is malformed or cannot succeed (the message says what and why)."""


@dataclass(frozen=True)
class RoleTypeSpec:
    """Rights of one role type."""

    type_id: int
    name: str
    can_propose: bool
    vote_weight: int
    budget_authority: bool


#: The default role types of a gridcoop DAO (an LLC-type DAO's offices).
DEFAULT_ROLE_TYPES: tuple[RoleTypeSpec, ...] = (
    RoleTypeSpec(1, "leader", True, 1, True),
    RoleTypeSpec(2, "treasurer", True, 1, True),
    RoleTypeSpec(3, "member", True, 1, False),
    RoleTypeSpec(4, "auditor", False, 1, False),
    RoleTypeSpec(5, "observer", False, 0, False),
)


@dataclass(frozen=True)
class VotingParams:
    """Voting rules of the treasury (see ``ITreasury.VotingParams``).

    A proposal passes when, counting only still-active roles, for > against, for ≥ ``threshold``
    (absolute vote weight: the M of M-of-N; 0 = off) and the turnout ≥ ``quorum_bps``/10000 of the
    total active weight (0 = off). It can be executed once passed (after ``execution_delay_s``
    when that is not 0, via ``queue``) and expires ``grace_period_s`` after it became executable.
    """

    voting_period_s: int = 3600
    threshold: int = 2
    quorum_bps: int = 0
    execution_delay_s: int = 0
    grace_period_s: int = 14 * 24 * 3600

    def __post_init__(self) -> None:
        if self.voting_period_s <= 0:
            raise DaoError(f"voting_period_s must be > 0 (got {self.voting_period_s})")
        if self.threshold < 0 or not 0 <= self.quorum_bps <= 10_000:
            raise DaoError(f"threshold must be ≥ 0 and quorum_bps in 0..10000 (got {self.threshold}, {self.quorum_bps})")
        if self.threshold == 0 and self.quorum_bps == 0:
            raise DaoError("set a threshold (M of N) or a quorum_bps: with neither, any single vote would pass")
        if self.execution_delay_s < 0 or self.grace_period_s < 0:
            raise DaoError("execution_delay_s and grace_period_s must be ≥ 0")

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.voting_period_s, self.execution_delay_s, self.grace_period_s, self.threshold, self.quorum_bps)


@dataclass(frozen=True)
class Call:
    """One call of a proposal: ``target.call{value: value}(data)``."""

    target: str
    value: int
    data: bytes

    def as_tuple(self) -> tuple[str, int, bytes]:
        return (Web3.to_checksum_address(self.target), int(self.value), bytes(self.data))


@dataclass
class Dao:
    """A deployed DAO: the three contracts and the founders' role token ids."""

    name: str
    role_nft: Contract
    treasury: Contract
    shares: Contract
    founder_roles: dict[str, list[int]] = field(default_factory=dict)

    def addresses(self) -> dict[str, str]:
        return {"RoleNFT": self.role_nft.address, "Treasury": self.treasury.address,
                "ContributionShares": self.shares.address}


# ---------------------------------------------------------------------------------- deployment


def deploy_dao(
    w3: Web3,
    deployer: LocalAccount,
    *,
    founders: list[tuple[str, str]],
    params: VotingParams = VotingParams(),  # noqa: B008 - frozen dataclass
    revenue_tokens: Iterable[str] = (),
    name: str = "default",
    directory: Path | None = None,
    role_types: Sequence[RoleTypeSpec] = DEFAULT_ROLE_TYPES,
    expiry: dict[str, int] | None = None,
    founding_shares: dict[str, int] | None = None,
) -> Dao:
    """Deploy RoleNFT, Treasury and ContributionShares, mint the founders' roles, hand over.

    ``founders`` is ``[(address, role type name), …]`` (one account may appear more than once).
    ``expiry`` optionally maps a founder address to the Unix time its roles expire.
    ``founding_shares`` maps addresses to contribution shares recorded before the hand-over, so
    revenue (the platform's share of battery fees) is split among them from the first unit on
    instead of waiting, unsplit, for the first contribution a proposal records. After this
    call the deployer holds no role on the DAO contracts: role types, grants, revocations,
    contributions and revenue tokens change only through proposals. Records the contracts as
    ``<name>.RoleNFT``, ``<name>.Treasury`` and ``<name>.ContributionShares``.
    """
    if not founders:
        raise DaoError("a DAO needs at least one founder (address, role type name)")
    by_name = {rt.name: rt for rt in role_types}
    for addr, role in founders:
        if not Web3.is_address(addr):
            raise DaoError(f"founder {addr!r} is not an address")
        if role not in by_name:
            raise DaoError(f"founder {addr}: unknown role type {role!r} (have: {', '.join(by_name)})")

    weight = sum(by_name[role].vote_weight for _, role in founders)
    if params.threshold > weight:
        raise DaoError(f"threshold {params.threshold} exceeds the founders' total vote weight {weight}: "
                       "no proposal could ever pass")

    def _d(contract: str, *args: Any) -> Contract:
        c = deploy(w3, deployer, contract, *args, record_as=f"{name}.{contract}", directory=directory)
        log.info("deployed %s.%s at %s", name, contract, c.address)
        return c

    role_nft = _d("RoleNFT", deployer.address)
    treasury = _d("Treasury", role_nft.address, params.as_tuple())
    shares = _d("ContributionShares", deployer.address,
                [Web3.to_checksum_address(t) for t in revenue_tokens])
    for rt in role_types:
        send(w3, deployer, role_nft.functions.defineRoleType(
            rt.type_id, rt.name, rt.can_propose, rt.vote_weight, rt.budget_authority))
    dao = Dao(name, role_nft, treasury, shares)
    for addr, role in founders:
        addr = Web3.to_checksum_address(addr)
        exp = int((expiry or {}).get(addr, 0))
        receipt = send(w3, deployer, role_nft.functions.grant(addr, by_name[role].type_id, exp))
        (ev,) = role_nft.events.OfficeGranted().process_receipt(receipt, errors=DISCARD)
        dao.founder_roles.setdefault(addr, []).append(int(ev["args"]["tokenId"]))
        log.info("founder %s is %s (role token %s)", addr, role, ev["args"]["tokenId"])
    for addr, n in (founding_shares or {}).items():
        if n > 0:
            send(w3, deployer, shares.functions.recordContribution(
                Web3.to_checksum_address(addr), int(n), "founding member"))
            log.info("founder %s holds %d contribution share(s)", addr, n)
    for line in handover(w3, deployer, {"RoleNFT": role_nft, "ContributionShares": shares}, treasury.address):
        log.info("%s", line)
    return dao


def load_dao(w3: Web3, name: str = "default", directory: Path | None = None) -> Dao:
    """Bind the DAO recorded as ``<name>.*`` in ``deployments/<chainId>.json``."""
    return Dao(
        name,
        at(w3, "RoleNFT", record_name=f"{name}.RoleNFT", directory=directory),
        at(w3, "Treasury", record_name=f"{name}.Treasury", directory=directory),
        at(w3, "ContributionShares", record_name=f"{name}.ContributionShares", directory=directory),
    )


# ---------------------------------------------------------------------------------- hand-over


def role_constants(contract: Contract) -> dict[str, bytes]:
    """``{"DEFAULT_ADMIN_ROLE": b"…", "MINTER_ROLE": b"…", …}`` discovered from the ABI.

    Every view function without inputs that returns ``bytes32`` and is named ``*_ROLE``.
    """
    out: dict[str, bytes] = {}
    for e in contract.abi:
        if (e.get("type") == "function" and e["name"].endswith("_ROLE") and not e.get("inputs")
                and [o["type"] for o in e.get("outputs", [])] == ["bytes32"]):
            out[e["name"]] = bytes(getattr(contract.functions, e["name"])().call())
    return out


def handover(
    w3: Web3,
    deployer: LocalAccount,
    contracts: dict[str, Contract],
    treasury: str,
    *,
    keep: Iterable[str] = (),
) -> list[str]:
    """Give every role the deployer holds on ``contracts`` to ``treasury``, then renounce them.

    For each AccessControl contract (roles discovered from its ABI, no hard-coded list): grant
    DEFAULT_ADMIN_ROLE and every ``*_ROLE`` the deployer holds to the treasury, then renounce
    the deployer's roles (DEFAULT_ADMIN_ROLE last) except the role names in ``keep``. Checks the
    result on chain and returns a readable log of what it did.
    """
    treasury = Web3.to_checksum_address(treasury)
    keep = set(keep)
    lines: list[str] = []
    for label, c in contracts.items():
        names = {e.get("name") for e in c.abi if e.get("type") == "function"}
        if not {"hasRole", "grantRole", "renounceRole"} <= names:
            lines.append(f"{label}: not an AccessControl contract (no roles), nothing to hand over")
            continue
        roles = role_constants(c)
        held = {n: r for n, r in roles.items() if c.functions.hasRole(r, deployer.address).call()}
        if not held:
            lines.append(f"{label}: deployer holds no role, nothing to hand over")
            continue
        # grant the admin role first, so later grants still work if a role's admin is the default one
        order = sorted(held, key=lambda n: n != "DEFAULT_ADMIN_ROLE")
        for n in order:
            if c.functions.hasRole(held[n], treasury).call():
                lines.append(f"{label}: treasury already has {n}")
                continue
            send(w3, deployer, c.functions.grantRole(held[n], treasury))
            lines.append(f"{label}: granted {n} to treasury {treasury}")
        for n in sorted(held, key=lambda n: n == "DEFAULT_ADMIN_ROLE"):
            if n in keep:
                lines.append(f"{label}: deployer keeps {n} (asked to)")
                continue
            send(w3, deployer, c.functions.renounceRole(held[n], deployer.address))
            lines.append(f"{label}: deployer {deployer.address} renounced {n}")
        for n, r in held.items():
            if not c.functions.hasRole(r, treasury).call():
                raise DaoError(f"{label}: hand-over failed, treasury lacks {n}")
            if n not in keep and c.functions.hasRole(r, deployer.address).call():
                raise DaoError(f"{label}: hand-over failed, deployer still holds {n}")
    return lines


def handover_region(
    w3: Web3,
    deployer: LocalAccount,
    region: str,
    treasury: str,
    *,
    keep: Iterable[str] = (),
    directory: Path | None = None,
) -> list[str]:
    """:func:`handover` for every contract recorded as ``<region>.<Contract>`` on this chain.

    Contracts are bound from the deployment records and the compiled artifacts, so components
    added to a region later are handed over without changing this function; contracts without
    AccessControl (TSL) are skipped with a log line.
    """
    from . import deployments
    from .artifacts import artifacts as all_artifacts

    known = all_artifacts()
    contracts: dict[str, Contract] = {}
    for record, info in sorted(deployments.load(w3.eth.chain_id, directory).items()):
        prefix, _, name = record.rpartition(".")
        if prefix != region or name not in known:
            continue
        contracts[record] = at(w3, name, info["address"])
    if not contracts:
        raise DaoError(f"no contracts recorded for region {region!r} on chain {w3.eth.chain_id}")
    return handover(w3, deployer, contracts, treasury, keep=keep)


# ---------------------------------------------------------------------------------- proposals


def utc_text(ts: int) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (proposal deadlines and execution times)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_status(st: dict[str, Any], when: Callable[[int], str] = utc_text) -> list[str]:
    """Lines that show one proposal's :func:`status` to a member (tally, threshold, quorum, voting
    end, execution time, description, calls); ``when`` renders a Unix time. Prints nothing."""
    left = st["vote_end"] - st["now"]
    lines = [f"#{st['id']} {st['state']:<9} for {st['for']} / against {st['against']} / abstain "
             f"{st['abstain']} of {st['total_weight']} (threshold {st['threshold']}, quorum "
             f"{st['quorum_bps'] / 100:g}%)  voting {'ends ' + when(st['vote_end']) if left > 0 else 'closed'}"
             + (f"  executable from {when(st['eta'])}" if st["eta"] else ""),
             f"    {st['description']}  — by {st['proposer']}"]
    lines += [f"    call {c['target']} value {c['value']} data {c['data'][:74]}" for c in st["calls"]]
    return lines


def parse_call_arg(text: str) -> Any:
    """One command-line argument of a proposed call as an ABI value: ``true``/``false``, a 20-byte
    ``0x`` address (checksummed), other ``0x`` hex as bytes, an integer (``_`` separators allowed),
    else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("0x") and len(text) == 42:
        return Web3.to_checksum_address(text)
    if text.startswith("0x"):
        return bytes.fromhex(text[2:])
    try:
        return int(text.replace("_", ""))
    except ValueError:
        return text


def encode_call(contract: Contract, fn_name: str, *args: Any, value: int = 0) -> Call:
    """A :class:`Call` of ``contract.fn_name(*args)`` (ABI-encoded through the contract's ABI)."""
    if not any(e.get("type") == "function" and e.get("name") == fn_name for e in contract.abi):
        raise DaoError(f"contract at {contract.address} has no function {fn_name!r}")
    try:
        data = contract.encode_abi(fn_name, args=list(args))
    except Exception as exc:  # web3 raises several types for bad arguments
        raise DaoError(f"cannot encode {fn_name}({', '.join(map(repr, args))}): {exc}") from exc
    return Call(contract.address, value, bytes.fromhex(data[2:]))


def _treasury(t: Dao | Contract) -> Contract:
    return t.treasury if isinstance(t, Dao) else t


def propose(w3: Web3, member: LocalAccount, dao_or_treasury: Dao | Contract, calls: Sequence[Call],
            description: str) -> int:
    """Create a proposal of ``calls`` and return its id."""
    treasury = _treasury(dao_or_treasury)
    if not calls:
        raise DaoError("a proposal needs at least one call")
    if not description.strip():
        raise DaoError("a proposal needs a description (what it changes and why)")
    receipt = send(w3, member, treasury.functions.propose([c.as_tuple() for c in calls], description))
    (ev,) = treasury.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
    pid = int(ev["args"]["id"])
    log.info("proposal %s created by %s: %s", pid, member.address, description)
    return pid


def _support(support: int | str) -> int:
    if isinstance(support, str):
        if support.lower() not in SUPPORT:
            raise DaoError(f"support must be one of {', '.join(SUPPORT)} (got {support!r})")
        return SUPPORT[support.lower()]
    if support not in (0, 1, 2):
        raise DaoError(f"support must be 0 (against), 1 (for) or 2 (abstain), got {support}")
    return int(support)


def vote(w3: Web3, member: LocalAccount, treasury: Dao | Contract, proposal_id: int,
         support: int | str) -> dict[str, Any]:
    """Vote ``support`` (``for``/``against``/``abstain`` or 1/0/2) on ``proposal_id``; returns the receipt."""
    t = _treasury(treasury)
    s = _support(support)
    return send(w3, member, t.functions.castVote(int(proposal_id), s))


def queue(w3: Web3, caller: LocalAccount, treasury: Dao | Contract, proposal_id: int) -> int:
    """Queue a succeeded proposal; returns the time (eta) from which it can be executed."""
    t = _treasury(treasury)
    receipt = send(w3, caller, t.functions.queue(int(proposal_id)))
    (ev,) = t.events.ProposalQueued().process_receipt(receipt, errors=DISCARD)
    return int(ev["args"]["eta"])


def execute(w3: Web3, caller: LocalAccount, treasury: Dao | Contract, proposal_id: int) -> dict[str, Any]:
    """Execute a passed proposal (queued and past its delay, or succeeded when there is no delay).

    Calls that carry ETH are paid from the treasury's balance (the caller sends none); if it is
    short, the call fails and the whole execution reverts with ``TreasuryCallFailed``.
    """
    return send(w3, caller, _treasury(treasury).functions.execute(int(proposal_id)))


def cancel(w3: Web3, proposer: LocalAccount, treasury: Dao | Contract, proposal_id: int) -> dict[str, Any]:
    """Cancel an active proposal (only its proposer, before it passes)."""
    return send(w3, proposer, _treasury(treasury).functions.cancel(int(proposal_id)))


def status(w3: Web3, treasury: Dao | Contract, proposal_id: int) -> dict[str, Any]:
    """Everything about a proposal: state, tally (live), deadline, eta, calls, voters."""
    t = _treasury(treasury)
    pid = int(proposal_id)
    p = tx_call(t.functions.proposal(pid))
    if p[1] == 0:
        raise DaoError(f"no proposal {pid} (there are {t.functions.proposalCount().call()})")
    f, a, ab = tx_call(t.functions.tally(pid))
    roles = at(w3, "RoleNFT", t.functions.roles().call())
    total = roles.functions.totalVotingWeight().call()
    voters = t.functions.voters(pid).call()
    return {
        "id": pid,
        "state": STATES[tx_call(t.functions.state(pid))],
        "proposer": p[0],
        "vote_end": int(p[1]),
        "eta": int(p[2]),
        "execution_delay_s": int(p[3]),
        "threshold": int(p[5]),
        "quorum_bps": int(p[6]),
        "for": int(f),
        "against": int(a),
        "abstain": int(ab),
        "total_weight": int(total),
        "voters": {v: ["against", "for", "abstain"][t.functions.receipt(pid, v).call()[1]] for v in voters},
        "description": t.functions.proposalDescription(pid).call(),
        "calls": [{"target": c[0], "value": int(c[1]), "data": "0x" + bytes(c[2]).hex()}
                  for c in t.functions.proposalCalls(pid).call()],
        "now": int(w3.eth.get_block("latest")["timestamp"]),
    }


def proposals(w3: Web3, treasury: Dao | Contract) -> list[dict[str, Any]]:
    """Status of every proposal, oldest first."""
    t = _treasury(treasury)
    return [status(w3, t, i) for i in range(1, t.functions.proposalCount().call() + 1)]


def _when(ts: int, now: int) -> str:
    iso = utc_text(ts)
    left = int(ts) - int(now)
    return f"{iso} (in {left} s)" if left > 0 else iso


def _dao_label(d: Dao | Contract) -> str:
    return f"DAO {d.name}" if isinstance(d, Dao) else f"the DAO at {d.address}"


def require_proposal(d: Dao | Contract, proposal_id: int) -> None:
    """Raise :class:`DaoError` naming the DAO when ``proposal_id`` does not exist."""
    t = _treasury(d)
    count = int(t.functions.proposalCount().call())
    if not 1 <= int(proposal_id) <= count:
        have = f"its proposals are 1..{count}" if count else "it has no proposals yet"
        raise DaoError(f"no proposal {proposal_id} in {_dao_label(d)} ({have})")


def check_can_vote(w3: Web3, d: Dao | Contract, proposal_id: int) -> None:
    """Raise :class:`DaoError` saying why a vote on ``proposal_id`` cannot count, before sending it."""
    require_proposal(d, proposal_id)
    st = status(w3, d, proposal_id)
    if st["state"] != "Active":
        ended = (f"voting ended at {_when(st['vote_end'], st['now'])}" if st["now"] >= st["vote_end"]
                 else "it was decided before its voting period ended")
        raise DaoError(f"proposal {proposal_id} in {_dao_label(d)} is {st['state']} and takes no more votes ({ended})")


def check_can_execute(w3: Web3, d: Dao | Contract, proposal_id: int) -> None:
    """Raise :class:`DaoError` saying when (or why not) ``proposal_id`` can execute, before sending."""
    require_proposal(d, proposal_id)
    st = status(w3, d, proposal_id)
    state, now, pid = st["state"], st["now"], proposal_id
    if state == "Active":
        raise DaoError(f"proposal {pid} is still being voted on (for {st['for']}, against {st['against']}, "
                       f"threshold {st['threshold']}); voting ends at {_when(st['vote_end'], now)}: execute it "
                       "after that if it passes")
    if state == "Succeeded" and st["execution_delay_s"]:
        raise DaoError(f"proposal {pid} passed but the DAO has an execution delay of {st['execution_delay_s']} s: "
                       "queue it first (dao queue), then execute it after the delay")
    if state == "Queued" and now < st["eta"]:
        raise DaoError(f"proposal {pid} is queued and can execute from {_when(st['eta'], now)}")
    if state not in ("Succeeded", "Queued"):
        raise DaoError(f"proposal {pid} is {state} and cannot be executed")


# ---------------------------------------------------------------------------------- budgets and roles


def set_budget_call(treasury: Dao | Contract, role_id: int, token: str | None, amount: int, period_s: int) -> Call:
    """The call a proposal makes to give role token ``role_id`` a budget (token None = ETH)."""
    return encode_call(_treasury(treasury), "setBudget", int(role_id),
                       Web3.to_checksum_address(token or ZERO_ADDRESS), int(amount), int(period_s))


def spend(w3: Web3, member: LocalAccount, treasury: Dao | Contract, role_id: int, token: str | None,
          to: str, amount: int, memo: str = "") -> dict[str, Any]:
    """Pay ``amount`` of ``token`` (None = ETH) to ``to`` from role token ``role_id``'s budget."""
    t = _treasury(treasury)
    return send(w3, member, t.functions.spend(int(role_id), Web3.to_checksum_address(token or ZERO_ADDRESS),
                                              Web3.to_checksum_address(to), int(amount), memo))


def budget(w3: Web3, treasury: Dao | Contract, role_id: int, token: str | None) -> dict[str, int]:
    """``{"amount", "spent", "remaining", "period", "period_start"}`` of a role token's budget now."""
    t = _treasury(treasury)
    amount, spent, period, start = t.functions.budget(int(role_id), Web3.to_checksum_address(token or ZERO_ADDRESS)).call()
    return {"amount": amount, "spent": spent, "remaining": amount - spent, "period": period, "period_start": start}


def grant_role_call(role_nft: Contract, to: str, role_type_id: int, expires_at: int = 0) -> Call:
    """The call a proposal makes to grant a role token."""
    return encode_call(role_nft, "grant", Web3.to_checksum_address(to), int(role_type_id), int(expires_at))


def revoke_role_call(role_nft: Contract, token_id: int) -> Call:
    """The call a proposal makes to revoke a role token."""
    return encode_call(role_nft, "revoke", int(token_id))


def roles_of(w3: Web3, role_nft: Contract, account: str) -> list[dict[str, Any]]:
    """Role tokens of ``account``: id, type, rights, expiry, active."""
    out = []
    for tid in role_nft.functions.rolesOf(Web3.to_checksum_address(account)).call():
        type_id, exp = role_nft.functions.roleOf(tid).call()
        rt = role_nft.functions.roleType(type_id).call()
        out.append({"token_id": tid, "type_id": type_id, "type": rt[0], "can_propose": rt[1],
                    "vote_weight": rt[2], "budget_authority": rt[3], "expires_at": exp,
                    "active": role_nft.functions.isActive(tid).call()})
    return out


def explain(exc: TransactionFailed) -> str:
    """A member-facing sentence for the DAO's custom errors (falls back to the raw message)."""
    a = exc.error_args
    hints = {
        "TreasuryNotVoter": lambda: f"{a.get('account')} holds no active role with a vote",
        "TreasuryNotProposer": lambda: f"{a.get('account')} holds no active role that may propose",
        "TreasuryAlreadyVoted": lambda: f"{a.get('voter')} already voted on proposal {a.get('id')}",
        "TreasuryWrongState": lambda: (f"no proposal {a.get('id')} in this DAO" if not a.get("current") else
                                       f"proposal {a.get('id')} is {STATES[a.get('current', 0)]}, "
                                       "which does not allow this"),
        "TreasuryTooEarly": lambda: f"proposal {a.get('id')} can execute from {a.get('eta')} (its delay has not passed)",
        "TreasuryNoLongerPasses": lambda: f"proposal {a.get('id')} no longer passes (a voter's role was revoked or expired)",
        "TreasuryBudgetExceeded": lambda: f"budget of role {a.get('roleId')} has {a.get('remaining')} left this "
                                          f"period, {a.get('requested')} requested",
        "TreasuryNoBudgetAuthority": lambda: f"{a.get('caller')} may not spend from role {a.get('roleId')}'s budget",
        "TreasuryNotProposalOwner": lambda: f"only the proposer may cancel proposal {a.get('id')}",
    }
    if exc.error_name in hints:
        return f"{hints[exc.error_name]()} ({exc.error_name})"
    return str(exc)
