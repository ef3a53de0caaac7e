"""``gridcoop dao …``: a region's DAO — proposals, votes, execution, budgets and roles — through
:mod:`gridcoop_sdk.dao` (the same functions the ``ape run dao`` scripts and the demo call)."""

from __future__ import annotations

import json
from typing import Any

import click

from gridcoop_sdk import dao as sdk
from gridcoop_sdk.contracts import at
from gridcoop_sdk.exceptions import TransactionFailed

from .common import Chain, account_from_env, chain_options, checked_address, group, key_env_option

KEY_ENV = "GRIDCOOP_MEMBER_KEY"
member_key = key_env_option(KEY_ENV, "the DAO member")


def _dao(chain: Chain) -> sdk.Dao:
    region = chain.require_region()
    chain.address("Treasury")  # a clear error when the region or its DAO is not recorded
    return sdk.load_dao(chain.w3, region, chain.deployments_dir)


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TransactionFailed as exc:
        raise click.ClickException(sdk.explain(exc)) from exc


_iso = sdk.utc_text


def _contract(chain: Chain, ref: str):
    """``region.Contract`` (a deployment record), ``Contract`` (in --region) or ``Contract@0xaddress``."""
    if "@" in ref:
        name, addr = ref.split("@", 1)
        return at(chain.w3, name, checked_address(addr, "--call"))
    region, _, name = ref.rpartition(".")
    c = Chain(chain.rpc_url, region or chain.region, chain.chain_id, chain.deployments_dir, chain.w3)
    return c.contract(name)


def _role_id(text: str) -> int:
    names = {rt.name: rt.type_id for rt in sdk.DEFAULT_ROLE_TYPES}
    if text.isdigit():
        return int(text)
    if text not in names:
        raise click.BadParameter(f"unknown role type {text!r} (have: {', '.join(names)})", param_hint="--grant-role")
    return names[text]


@group("dao")
def dao() -> None:
    """A region's DAO: propose, vote, queue, execute, cancel, status; budgets and roles.

    Members sign with the key in $GRIDCOOP_MEMBER_KEY (see --key-env). The DAO is the one the
    region recorded (<region>.Treasury, .RoleNFT, .ContributionShares).
    """


@dao.command()
@member_key
@chain_options
@click.option("-d", "--description", required=True, help="What the proposal changes and why.")
@click.option("--call", "calls", nargs=3, multiple=True, metavar="CONTRACT FUNCTION ARGS",
              help="A parameter change: CONTRACT is a contract of the region (BatteryStorage), a record "
                   "(sakura.BatteryStorage) or Name@0xaddr; ARGS are comma-separated (250 or 0xabc…,true). "
                   "Repeatable.")
@click.option("--pay", "pays", nargs=3, multiple=True, metavar="TOKEN TO AMOUNT",
              help="A payment from the treasury: TOKEN is 'eth', a contract of the region or an address; "
                   "AMOUNT in base units. Repeatable.")
@click.option("--grant-role", "grants", nargs=3, multiple=True, metavar="ADDRESS ROLE_TYPE EXPIRES",
              help="Grant a role: ROLE_TYPE a name (leader, treasurer, member, auditor, observer) or id; "
                   "EXPIRES Unix time or 0 for no term. Repeatable.")
@click.option("--revoke-role", "revokes", type=int, multiple=True, metavar="TOKEN_ID",
              help="Revoke a role token. Repeatable.")
@click.option("--set-budget", "budgets", nargs=4, multiple=True, metavar="ROLE_ID TOKEN AMOUNT PERIOD_S",
              help="Give role token ROLE_ID a budget of AMOUNT TOKEN ('eth' or address) per PERIOD_S seconds "
                   "(0 = once).")
@click.option("--raw", "raws", nargs=3, multiple=True, metavar="TARGET VALUE DATA",
              help="A raw call: target address, wei value, 0x calldata. Repeatable.")
def propose(key_env, chain: Chain, description, calls, pays, grants, revokes, budgets, raws):
    """Create a proposal (any mix of parameter changes, payments, role grants/revocations, budgets, raw calls)."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    out: list[sdk.Call] = []
    for ref, fn, args in calls:
        parsed = [sdk.parse_call_arg(a) for a in args.split(",")] if args else []
        out.append(sdk.encode_call(_contract(chain, ref), fn, *parsed))
    for token, to, amount in pays:
        to = checked_address(to, "--pay")
        if token.lower() == "eth":
            out.append(sdk.Call(to, int(amount), b""))
        else:
            erc20 = at(chain.w3, "TeslaToken", token) if token.startswith("0x") else _contract(chain, token)
            out.append(sdk.encode_call(erc20, "transfer", to, int(amount)))
    for addr, role, expires in grants:
        out.append(sdk.grant_role_call(d.role_nft, checked_address(addr, "--grant-role"), _role_id(role),
                                       int(expires)))
    for tid in revokes:
        out.append(sdk.revoke_role_call(d.role_nft, tid))
    for role_id, token, amount, period in budgets:
        out.append(sdk.set_budget_call(d.treasury, int(role_id), None if token.lower() == "eth" else token,
                                       int(amount), int(period)))
    for target, value, data in raws:
        out.append(sdk.Call(checked_address(target, "--raw"), int(value), bytes.fromhex(data.removeprefix("0x"))))
    if not out:
        raise click.UsageError("give at least one of --call, --pay, --grant-role, --revoke-role, --set-budget, --raw")
    pid = _run(sdk.propose, chain.w3, member, d, out, description)
    st = sdk.status(chain.w3, d, pid)
    click.echo(f"proposal {pid} created in DAO {d.name} ({len(out)} call(s)); voting ends at {_iso(st['vote_end'])}")


@dao.command()
@click.argument("proposal_id", type=int)
@click.option("--support", type=click.Choice(["for", "against", "abstain"]), required=True, help="Your vote.")
@member_key
@chain_options
def vote(proposal_id, support, key_env, chain: Chain):
    """Vote on active proposal PROPOSAL_ID with the weight of your roles."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    sdk.check_can_vote(chain.w3, d, proposal_id)
    _run(sdk.vote, chain.w3, member, d, proposal_id, support)
    st = sdk.status(chain.w3, d, proposal_id)
    click.echo(f"voted {support} on {proposal_id}: for {st['for']} / against {st['against']} / "
               f"abstain {st['abstain']} of {st['total_weight']} — {st['state']}")


@dao.command()
@click.argument("proposal_id", type=int)
@member_key
@chain_options
def queue(proposal_id, key_env, chain: Chain):
    """Queue succeeded proposal PROPOSAL_ID (needed when the DAO has an execution delay)."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    sdk.require_proposal(d, proposal_id)
    eta = _run(sdk.queue, chain.w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} queued; executable from {_iso(eta)}")


@dao.command()
@click.argument("proposal_id", type=int)
@member_key
@chain_options
def execute(proposal_id, key_env, chain: Chain):
    """Execute passed proposal PROPOSAL_ID (after its delay); says when it can if it cannot yet."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    sdk.check_can_execute(chain.w3, d, proposal_id)
    receipt = _run(sdk.execute, chain.w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} executed in block {receipt['blockNumber']} (gas {receipt['gasUsed']})")


@dao.command()
@click.argument("proposal_id", type=int)
@member_key
@chain_options
def cancel(proposal_id, key_env, chain: Chain):
    """Cancel your own proposal PROPOSAL_ID before it passes."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    sdk.require_proposal(d, proposal_id)
    _run(sdk.cancel, chain.w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} canceled")


@dao.command()
@click.argument("proposal_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@chain_options
def status(proposal_id, as_json, chain: Chain):
    """Show proposal PROPOSAL_ID (tally, deadline, state, calls), or list all proposals."""
    d = _dao(chain)
    if proposal_id is not None:
        sdk.require_proposal(d, proposal_id)
    items = [sdk.status(chain.w3, d, proposal_id)] if proposal_id is not None else sdk.proposals(chain.w3, d)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo(f"no proposals yet in DAO {d.name}")
    for st in items:
        click.echo("\n".join(sdk.describe_status(st)))


@dao.command()
@click.argument("address", required=False)
@member_key
@chain_options
def roles(address, key_env, chain: Chain):
    """List the role tokens of ADDRESS (default: the member's account) and its voting weight."""
    d = _dao(chain)
    who = checked_address(address, "ADDRESS") if address else account_from_env(key_env, "the DAO member").address
    for r in sdk.roles_of(chain.w3, d.role_nft, who):
        click.echo(f"role #{r['token_id']} {r['type']:<10} weight {r['vote_weight']} propose {r['can_propose']} "
                   f"budget {r['budget_authority']} expires {r['expires_at'] or 'never'} "
                   f"{'active' if r['active'] else 'EXPIRED'}")
    click.echo(f"{who}: weight {d.role_nft.functions.votingWeight(who).call()} of "
               f"{d.role_nft.functions.totalVotingWeight().call()}")


@dao.group()
def budget():
    """Budgets: show a role's budget, or pay from it without a vote."""


@budget.command("show")
@click.argument("role_id", type=int)
@click.option("--token", default="eth", show_default=True, help="Token address, or 'eth'.")
@chain_options
def budget_show(role_id, token, chain: Chain):
    """Show role token ROLE_ID's budget for a token this period."""
    d = _dao(chain)
    b = sdk.budget(chain.w3, d, role_id, None if token.lower() == "eth" else checked_address(token, "--token"))
    click.echo(f"role {role_id}: {b['remaining']} of {b['amount']} left (spent {b['spent']}) "
               + (f"per {b['period']}s period starting {b['period_start']}" if b["period"] else "(one-off, no reset)"))


@budget.command("spend")
@click.argument("role_id", type=int)
@click.option("--token", default="eth", show_default=True, help="Token address, or 'eth'.")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Recipient address.")
@click.option("--amount", type=click.IntRange(min=1), required=True, help="Amount in base units (wei for ETH).")
@click.option("--memo", default="", help="What the payment is for (logged in the BudgetSpent event).")
@member_key
@chain_options
def budget_spend(role_id, token, to, amount, memo, key_env, chain: Chain):
    """Pay from role token ROLE_ID's budget (you must hold it; its type needs budget authority)."""
    member = account_from_env(key_env, "the DAO member")
    d = _dao(chain)
    tok = None if token.lower() == "eth" else checked_address(token, "--token")
    _run(sdk.spend, chain.w3, member, d, role_id, tok, checked_address(to, "--to"), amount, memo)
    b = sdk.budget(chain.w3, d, role_id, tok)
    click.echo(f"paid {amount} to {to}; {b['remaining']} left this period")


