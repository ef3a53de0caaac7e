"""``gridcoop market`` and ``gridcoop keeper`` against a live keeper API: place, list, cancel,
results, status; --help everywhere."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gridcoop.cli import main
from keeper.api import create_app, serve_in_thread
from keeper.clock import chain_clock
from keeper.service import Keeper


@pytest.mark.parametrize("cmd", [["keeper"], ["keeper", "serve"], ["keeper", "settle"], ["keeper", "status"],
                                 ["market"], ["market", "order"], ["market", "orders"], ["market", "cancel"],
                                 ["market", "results"]])
def test_help_everywhere(cmd):
    r = CliRunner().invoke(main, [*cmd, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output


def test_participant_places_lists_and_cancels_an_order(env, tmp_path):
    k = Keeper(env.w3, env.keeper, env.market, f"sqlite:///{tmp_path}/k.db", clock=chain_clock(env.w3))
    handle = serve_in_thread(create_app(k))
    try:
        buyer = env.buyers[0]
        runner = CliRunner(env={"GRIDCOOP_KEY": "0x" + bytes(buyer.key).hex(),
                                "GRIDCOOP_KEEPER_URL": handle.url,
                                "GRIDCOOP_PAYMENT_TOKEN": env.token.address,
                                "GRIDCOOP_RPC_URL": env.w3.provider.endpoint_uri})
        r = runner.invoke(main, ["market", "order", "buy", "1.5kWh", "--price", "30", "--interval", "+2"])
        assert r.exit_code == 0, r.output
        assert "buy 1500 Wh @ 30 JPYC/kWh" in r.output and ": open" in r.output
        order_hash = r.output.split()[1]
        r = runner.invoke(main, ["market", "orders"])
        assert r.exit_code == 0 and order_hash[:18] in r.output
        r = runner.invoke(main, ["market", "order", "buy", "1.5 apples", "--price", "30"])
        assert r.exit_code != 0 and "not an energy amount" in r.output
        r = runner.invoke(main, ["market", "order", "buy", "1kWh", "--price", "30", "--interval", "1"])
        assert r.exit_code != 0 and "order.interval_id" in r.output
        r = runner.invoke(main, ["market", "cancel", order_hash])
        assert r.exit_code == 0 and "cancelled" in r.output
        r = runner.invoke(main, ["keeper", "status"])
        assert r.exit_code == 0 and env.market.address in r.output
    finally:
        handle.stop()
        k.db.dispose()
