"""``gridcoop storage …`` against anvil: a user deposits, sees what is owed, withdraws, owners claim,
anyone pays a payee its credit with ``claim --for``."""

from __future__ import annotations

from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop_sdk import storage as st_sdk


def _run(env, *args, key=None):
    runner = CliRunner()
    envvars = {"GRIDCOOP_RPC_URL": env.w3.provider.endpoint_uri}
    if key is not None:
        envvars["GRIDCOOP_KEY"] = "0x" + bytes(key).hex()
    return runner.invoke(main, ["storage", *args, "--storage", env.storage.address], env=envvars)


def test_cli_deposit_owed_withdraw_claim(env):
    alice, owner0 = env.users[0], env.owners[0]
    r = _run(env, "deposit", str(env.battery), "1.5kWh", "--colour", "solar", key=alice.key)
    assert r.exit_code == 0, r.output
    assert "deposited 1,500 Wh" in r.output
    assert st_sdk.stored(env.storage, env.battery, alice.address) == 1_500

    r = _run(env, "owed", str(env.battery), alice.address)
    assert r.exit_code == 0, r.output
    assert "keeps 1,500 Wh" in r.output and "owes" in r.output

    r = _run(env, "status", str(env.battery), "--user", alice.address)
    assert r.exit_code == 0, r.output
    assert "bat-meter-1" in r.output and "stored 1,500 Wh" in r.output and "share 3/15" in r.output

    r = _run(env, "withdraw", str(env.battery), "1000Wh", key=alice.key)
    assert r.exit_code == 0, r.output
    assert "received 900 Wh, 100 Wh lost" in r.output

    r = _run(env, "claim", key=owner0.key)
    assert r.exit_code == 0, r.output
    assert "claimed" in r.output
    r = _run(env, "claim", key=owner0.key)
    assert r.exit_code != 0 and "nothing to claim" in r.output


def test_cli_refuses_without_key_and_explains_errors(env):
    alice = env.users[1]
    r = _run(env, "deposit", str(env.battery), "100Wh")
    assert r.exit_code != 0 and "GRIDCOOP_KEY" in r.output
    r = _run(env, "deposit", str(env.battery), "1.5Wh", key=alice.key)
    assert r.exit_code != 0 and "whole number of Wh" in r.output
    r = _run(env, "withdraw", str(env.battery), "10Wh", key=alice.key)
    assert r.exit_code != 0 and "StorageInsufficientStored" in r.output
    r = _run(env, "grant", key=alice.key)
    assert r.exit_code != 0 and "StorageNotParticipant" in r.output


def test_cli_claim_for_pays_the_payee_not_the_sender(env):
    alice, stranger, platform = env.users[0], env.users[2], env.platform
    st_sdk.deposit(env.w3, alice, env.storage, env.battery, 1_500)
    fee = st_sdk.pay_fees(env.w3, alice, env.storage, env.battery)
    due = st_sdk.credited(env.storage, platform.address)
    assert due == fee // 10 > 0
    tsl = env.tsl.functions
    before = [tsl.balanceOf(a.address).call() for a in (platform, stranger)]
    r = _run(env, "claim", "--for", platform.address.lower(), key=stranger.key)
    assert r.exit_code == 0, r.output
    assert f"({due} base units) to {platform.address}" in r.output
    assert [tsl.balanceOf(a.address).call() for a in (platform, stranger)] == [before[0] + due, before[1]]
    r = _run(env, "claim", "--for", platform.address, key=stranger.key)
    assert r.exit_code != 0 and f"nothing credited to {platform.address}" in r.output
    r = _run(env, "claim", "--for", "0x1234", key=stranger.key)
    assert r.exit_code != 0 and "not an address" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["storage", "claim", "--help"])
    assert r.exit_code == 0 and "--for ADDRESS" in r.output and "ContributionShares" in r.output
