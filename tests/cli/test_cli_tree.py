"""The `gridcoop` command tree: every group and command answers --help (exit 0) and its help text
names each of its options; --version; the old console scripts are thin aliases of the tree."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gridcoop import __version__
from gridcoop.cli import main
from gridcoop.cli.legacy import KEEPER, METER_BRIDGE, translate

AREAS = ["region", "meters", "market", "storage", "crev", "dao", "keeper", "bridge", "relay", "demo"]


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            if not sub.hidden:
                yield from _walk(sub, [*path, name])


TREE = list(_walk(main, []))


def test_the_tree_has_the_areas_in_order():
    assert [n for n, c in main.commands.items() if not c.hidden] == AREAS
    verbs = {p[0]: set() for p, _ in TREE if p}
    for p, _ in TREE:
        if len(p) == 2:
            verbs[p[0]].add(p[1])
    assert {"deploy", "list", "show"} <= verbs["region"]
    assert {"register", "keygen", "status"} <= verbs["meters"]
    assert {"order", "orders", "results", "cancel"} <= verbs["market"]
    assert {"status", "deposit", "withdraw", "owed", "pay", "claim", "grant"} <= verbs["storage"]
    assert {"balance", "retire", "trace", "factor"} <= verbs["crev"]
    assert {"propose", "vote", "queue", "execute", "cancel", "status", "roles", "budget"} <= verbs["dao"]
    assert {"serve", "settle", "status"} <= verbs["keeper"]
    assert {"run", "status", "simulate"} <= verbs["bridge"]


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=[" ".join(p) or "gridcoop" for p, _ in TREE])
def test_help_of_every_group_and_command_explains_each_option(path):
    cmd = dict((tuple(p), c) for p, c in TREE)[tuple(path)]
    r = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Usage: "), r.output
    assert (cmd.help or "").strip(), f"{path}: no help text"
    text = " ".join(r.output.split())
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert any(opt in text for opt in param.opts), (path, param.opts)
            if param.name not in ("help", "version"):
                assert (param.help or "").strip(), f"{path} {param.opts}: option without help"
                assert " ".join(param.help.split())[:40] in text, (path, param.opts)
    if isinstance(cmd, click.Group):
        for name in cmd.commands:
            assert name in r.output


def test_same_option_names_everywhere():
    """Commands that talk to the chain all take --rpc-url, --region, --chain-id, --deployments; keys
    come only from environment variables named by --key-env (no option takes a key itself)."""
    chain = {"--rpc-url", "--region", "--chain-id", "--deployments"}
    for path, cmd in TREE:
        opts = {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts}
        if "--rpc-url" in opts and path[:2] not in (["region", "deploy"],) and path != ["demo"]:
            assert chain <= opts, (path, chain - opts)
        assert not any(o in opts for o in ("--key", "--private-key", "--url", "--record", "--dao",
                                           "--relay-registry")), (path, opts)


def test_old_gridcoop_commands_say_where_they_went():
    r = CliRunner().invoke(main, ["deploy", "--config", "sakura", "--keeper", "0x1"])
    assert r.exit_code == 2 and "`gridcoop deploy` is now `gridcoop region deploy`" in r.output
    r = CliRunner().invoke(main, ["battery", "status", "1"])
    assert r.exit_code == 2 and "`gridcoop battery` is now `gridcoop storage`" in r.output
    listed = CliRunner().invoke(main, ["--help"]).output
    assert "\n  deploy " not in listed and "\n  battery " not in listed  # hidden from the tree's help


def test_version_and_module_entry_point():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"gridcoop {__version__}"
    p = subprocess.run([sys.executable, "-m", "gridcoop", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "region" in p.stdout and "Traceback" not in p.stderr


def test_old_console_scripts_are_translated_into_the_tree():
    assert translate("keeper", KEEPER, ["order", "buy", "1kWh", "--price", "30", "--url", "http://k"]) == \
        ["market", "order", "buy", "1kWh", "--price", "30", "--keeper-url", "http://k"]
    assert translate("keeper", KEEPER, ["serve", "--relay-registry", "sakura.MeterRegistry"]) == \
        ["keeper", "serve", "--region", "sakura", "--relay"]
    assert translate("keeper", KEEPER, ["serve", "--relay-registry=0x" + "12" * 20]) == \
        ["keeper", "serve", "--registry", "0x" + "12" * 20]
    assert translate("meter-bridge", METER_BRIDGE, ["-v", "register", "--registrar-key-env", "K"]) == \
        ["-v", "meters", "register", "--key-env", "K"]
    assert translate("meter-bridge", METER_BRIDGE, ["run", "--config", "gw.yaml"]) == \
        ["bridge", "run", "--config", "gw.yaml"]
    with pytest.raises(click.UsageError, match="no command 'fly'"):
        translate("keeper", KEEPER, ["fly"])


def test_old_console_script_prints_a_deprecation_note_and_runs_the_new_command():
    code = "import sys; sys.argv = ['meter-bridge', 'status', '--help']; from gridcoop.cli.legacy import meter_bridge; meter_bridge()"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "`meter-bridge` is deprecated; use `gridcoop bridge status …`" in p.stderr
    assert p.stdout.startswith("Usage: gridcoop bridge status")
