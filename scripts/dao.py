"""ape run dao — propose, vote, queue, execute, cancel and inspect DAO proposals; budgets; roles.

Thin over :mod:`gridcoop_sdk.dao` (the demo calls the same functions). Every command connects
through ape's network option; against an already running node (the demo's anvil) use ape-foundry
with its host set::

    APE_FOUNDRY_HOST=http://127.0.0.1:8545 ape run dao status --network ethereum:local:foundry

The member's key: ``--account TEST::1`` (ape's test accounts on the local network, from the
project mnemonic), ``--account <alias>`` for a key imported with ``ape accounts import <alias>``
(unlocked with ``APE_ACCOUNTS_<alias>_PASSPHRASE`` or a prompt), or the hex key in the
environment variable ``GRIDCOOP_MEMBER_KEY`` (which wins when set). Examples::

    ape run dao propose --call default.ParamBox setFee 250 -d "fee 1% -> 2.5%" --account TEST::1
    ape run dao vote 1 --support for --account TEST::2
    ape run dao execute 1 --account TEST::1
    ape run dao status 1
"""

from __future__ import annotations

import json
import os
from typing import Any

import click
from ape.cli import ConnectedProviderCommand, account_option
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridcoop_sdk import dao as sdk
from gridcoop_sdk.contracts import at
from gridcoop_sdk.deployments import address_of
from gridcoop_sdk.exceptions import GridcoopError, TransactionFailed
from gridcoop_sdk.keys import account_from_hex

KEY_ENV = "GRIDCOOP_MEMBER_KEY"


def _signer(account: Any) -> LocalAccount:
    """The member's key as an eth-account signer (the SDK signs and sends through web3)."""
    if os.environ.get(KEY_ENV):
        try:
            return account_from_hex(os.environ[KEY_ENV], KEY_ENV)
        except GridcoopError as exc:
            raise click.UsageError(str(exc)) from exc
    if account is None:
        raise click.UsageError(f"choose the member with --account (e.g. TEST::1) or set {KEY_ENV}")
    key = getattr(account, "private_key", None)
    if key is None and hasattr(account, "unlock"):  # an `ape accounts import`ed keyfile account
        account.unlock()
        key = account._KeyfileAccount__cached_signer.private_key  # noqa: SLF001 - ape keeps it private
    if key is None:
        raise click.UsageError(f"account {account} exposes no key; set {KEY_ENV} instead")
    return Account.from_key(key)


def _dao(provider: Any, name: str) -> tuple[Web3, sdk.Dao]:
    w3 = provider.web3
    try:
        return w3, sdk.load_dao(w3, name)
    except GridcoopError as exc:
        raise click.ClickException(f"{exc} — deploy the region first (gridcoop region deploy, or gridcoop demo)") from exc


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TransactionFailed as exc:
        raise click.ClickException(sdk.explain(exc)) from exc
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc


dao_option = click.option("--dao", "dao_name", default="default", show_default=True,
                          help="Name the DAO was deployed under (records <name>.Treasury etc.).")


def _contract(w3: Web3, ref: str):
    """``region.Contract`` (a deployment record) or ``Contract@0xaddress``."""
    if "@" in ref:
        name, addr = ref.split("@", 1)
        return at(w3, name, addr)
    name = ref.split(".")[-1]
    return at(w3, name, address_of(w3.eth.chain_id, ref))


@click.group()
def cli():
    """Govern the gridcoop DAO: proposals, votes, execution, budgets and roles."""


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.option("-d", "--description", required=True, help="What the proposal changes and why.")
@click.option("--call", "calls", nargs=3, multiple=True, metavar="CONTRACT FUNCTION ARGS",
              help="A parameter change: CONTRACT is a deployment record (kyoto.BatteryStorage) or "
                   "Name@0xaddr; ARGS are comma-separated (250 or 0xabc…,true). Repeatable.")
@click.option("--pay", "pays", nargs=3, multiple=True, metavar="TOKEN TO AMOUNT",
              help="A payment from the treasury: TOKEN is 'eth', a record or an address; AMOUNT in base units. Repeatable.")
@click.option("--grant-role", "grants", nargs=3, multiple=True, metavar="ADDRESS ROLE_TYPE EXPIRES",
              help="Grant a role: ROLE_TYPE a name (leader, treasurer, member, auditor, observer) or id; "
                   "EXPIRES Unix time or 0 for no term. Repeatable.")
@click.option("--revoke-role", "revokes", type=int, multiple=True, metavar="TOKEN_ID", help="Revoke a role token. Repeatable.")
@click.option("--set-budget", "budgets", nargs=4, multiple=True, metavar="ROLE_ID TOKEN AMOUNT PERIOD_S",
              help="Give role token ROLE_ID a budget of AMOUNT TOKEN ('eth' or address) per PERIOD_S seconds (0 = once).")
@click.option("--raw", "raws", nargs=3, multiple=True, metavar="TARGET VALUE DATA",
              help="A raw call: target address, wei value, 0x calldata. Repeatable.")
def propose(ecosystem, network, provider, account, dao_name, description, calls, pays, grants, revokes, budgets, raws):
    """Create a proposal (any mix of parameter changes, payments, role grants/revocations, budgets, raw calls)."""
    w3, d = _dao(provider, dao_name)
    out: list[sdk.Call] = []
    for ref, fn, args in calls:
        parsed = [sdk.parse_call_arg(a) for a in args.split(",")] if args else []
        out.append(_run(sdk.encode_call, _run(_contract, w3, ref), fn, *parsed))
    for token, to, amount in pays:
        if token.lower() == "eth":
            out.append(sdk.Call(Web3.to_checksum_address(to), int(amount), b""))
        else:
            erc20 = at(w3, "TeslaToken", token) if token.startswith("0x") else _run(_contract, w3, token)
            out.append(sdk.encode_call(erc20, "transfer", Web3.to_checksum_address(to), int(amount)))
    names = {rt.name: rt.type_id for rt in sdk.DEFAULT_ROLE_TYPES}
    for addr, role, expires in grants:
        type_id = names.get(role, None) if not role.isdigit() else int(role)
        if type_id is None:
            raise click.BadParameter(f"unknown role type {role!r} (have: {', '.join(names)})", param_hint="--grant-role")
        out.append(sdk.grant_role_call(d.role_nft, addr, type_id, int(expires)))
    for tid in revokes:
        out.append(sdk.revoke_role_call(d.role_nft, tid))
    for role_id, token, amount, period in budgets:
        out.append(sdk.set_budget_call(d.treasury, int(role_id), None if token.lower() == "eth" else token,
                                       int(amount), int(period)))
    for target, value, data in raws:
        out.append(sdk.Call(Web3.to_checksum_address(target), int(value), bytes.fromhex(data.removeprefix("0x"))))
    if not out:
        raise click.UsageError("give at least one of --call, --pay, --grant-role, --revoke-role, --set-budget, --raw")
    pid = _run(sdk.propose, w3, _signer(account), d, out, description)
    st = sdk.status(w3, d, pid)
    click.echo(f"proposal {pid} created ({len(out)} call(s)); voting ends at {st['vote_end']}")


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("proposal_id", type=int)
@click.option("--support", type=click.Choice(["for", "against", "abstain"]), required=True, help="Your vote.")
def vote(ecosystem, network, provider, account, dao_name, proposal_id, support):
    """Vote on an active proposal with the weight of your roles."""
    w3, d = _dao(provider, dao_name)
    member = _signer(account)
    _run(sdk.check_can_vote, w3, d, proposal_id)
    _run(sdk.vote, w3, member, d, proposal_id, support)
    st = sdk.status(w3, d, proposal_id)
    click.echo(f"voted {support} on {proposal_id}: for {st['for']} / against {st['against']} / "
               f"abstain {st['abstain']} of {st['total_weight']} — {st['state']}")


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("proposal_id", type=int)
def queue(ecosystem, network, provider, account, dao_name, proposal_id):
    """Queue a succeeded proposal (needed when the DAO has an execution delay)."""
    w3, d = _dao(provider, dao_name)
    member = _signer(account)
    _run(sdk.require_proposal, d, proposal_id)
    eta = _run(sdk.queue, w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} queued; executable from {eta}")


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("proposal_id", type=int)
def execute(ecosystem, network, provider, account, dao_name, proposal_id):
    """Execute a passed proposal (after its delay)."""
    w3, d = _dao(provider, dao_name)
    member = _signer(account)
    _run(sdk.check_can_execute, w3, d, proposal_id)
    receipt = _run(sdk.execute, w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} executed in block {receipt['blockNumber']} (gas {receipt['gasUsed']})")


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("proposal_id", type=int)
def cancel(ecosystem, network, provider, account, dao_name, proposal_id):
    """Cancel your own proposal before it passes."""
    w3, d = _dao(provider, dao_name)
    member = _signer(account)
    _run(sdk.require_proposal, d, proposal_id)
    _run(sdk.cancel, w3, member, d, proposal_id)
    click.echo(f"proposal {proposal_id} canceled")


@cli.command(cls=ConnectedProviderCommand)
@dao_option
@click.argument("proposal_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(ecosystem, network, provider, dao_name, proposal_id, as_json):
    """Show one proposal (tally, deadline, state, calls) or list all."""
    w3, d = _dao(provider, dao_name)
    if proposal_id:
        _run(sdk.require_proposal, d, proposal_id)
    items = [_run(sdk.status, w3, d, proposal_id)] if proposal_id else sdk.proposals(w3, d)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no proposals yet")
    for st in items:
        click.echo("\n".join(sdk.describe_status(st)))


@cli.group()
def budget():
    """Budgets: show a role's budget or pay from it without a vote."""


@budget.command("show", cls=ConnectedProviderCommand)
@dao_option
@click.argument("role_id", type=int)
@click.option("--token", default="eth", show_default=True, help="Token address, or 'eth'.")
def budget_show(ecosystem, network, provider, dao_name, role_id, token):
    """Show role token ROLE_ID's budget for a token this period."""
    w3, d = _dao(provider, dao_name)
    b = sdk.budget(w3, d, role_id, None if token.lower() == "eth" else token)
    click.echo(f"role {role_id}: {b['remaining']} of {b['amount']} left (spent {b['spent']}) "
               + (f"per {b['period']}s period starting {b['period_start']}" if b["period"] else "(one-off, no reset)"))


@budget.command("spend", cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("role_id", type=int)
@click.option("--token", default="eth", show_default=True, help="Token address, or 'eth'.")
@click.option("--to", "to", required=True, help="Recipient address.")
@click.option("--amount", type=int, required=True, help="Amount in base units (wei for ETH).")
@click.option("--memo", default="", help="What the payment is for (logged in the BudgetSpent event).")
def budget_spend(ecosystem, network, provider, account, dao_name, role_id, token, to, amount, memo):
    """Pay from role token ROLE_ID's budget (you must hold it; its type needs budget authority)."""
    w3, d = _dao(provider, dao_name)
    tok = None if token.lower() == "eth" else token
    _run(sdk.spend, w3, _signer(account), d, role_id, tok, to, amount, memo)
    b = sdk.budget(w3, d, role_id, tok)
    click.echo(f"paid {amount} to {to}; {b['remaining']} left this period")


@cli.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@dao_option
@click.argument("address", required=False)
def roles(ecosystem, network, provider, account, dao_name, address):
    """List the role tokens of ADDRESS (default: your account) and the DAO's voting weight."""
    w3, d = _dao(provider, dao_name)
    who = address or _signer(account).address
    for r in sdk.roles_of(w3, d.role_nft, who):
        click.echo(f"role #{r['token_id']} {r['type']:<10} weight {r['vote_weight']} propose {r['can_propose']} "
                   f"budget {r['budget_authority']} expires {r['expires_at'] or 'never'} "
                   f"{'active' if r['active'] else 'EXPIRED'}")
    click.echo(f"{who}: weight {d.role_nft.functions.votingWeight(who).call()} of "
               f"{d.role_nft.functions.totalVotingWeight().call()}")
