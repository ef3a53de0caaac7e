"""The old console scripts ``keeper`` and ``meter-bridge``: thin aliases that print a one-line
deprecation note and run the same command of the ``gridcoop`` tree (renamed options translated)."""

from __future__ import annotations

import sys

import click

KEEPER = {"serve": ["keeper", "serve"], "settle": ["keeper", "settle"], "status": ["keeper", "status"],
          "order": ["market", "order"], "orders": ["market", "orders"], "cancel": ["market", "cancel"],
          "results": ["market", "results"]}
METER_BRIDGE = {"run": ["bridge", "run"], "status": ["bridge", "status"], "simulate": ["bridge", "simulate"],
                "keygen": ["meters", "keygen"], "register": ["meters", "register"]}
RENAMED = {"--url": "--keeper-url", "--registrar-key-env": "--key-env"}


def translate(old: str, table: dict[str, list[str]], argv: list[str]) -> list[str]:
    """Old argv (after the program name) → argv of the ``gridcoop`` tree."""
    from .keeper import resolve_relay_registry

    head: list[str] = []
    args = list(argv)
    while args and args[0].startswith("-") and args[0] not in ("-h", "--help"):
        head.append(args.pop(0))  # -v
    if not args or args[0] in ("-h", "--help"):
        area = sorted({v[0] for v in table.values()})
        return [*head, area[0] if len(area) == 1 else "--help", *args]
    cmd, rest = args[0], args[1:]
    if cmd not in table:
        raise click.UsageError(f"no command {cmd!r} in `{old}` (it had: {', '.join(table)})")
    out: list[str] = []
    i = 0
    while i < len(rest):
        a = rest[i]
        name, eq, value = a.partition("=")
        if name == "--relay-registry":
            if not eq:
                i += 1
                value = rest[i] if i < len(rest) else ""
            out += resolve_relay_registry(value)
        elif name in RENAMED:
            out.append(RENAMED[name] + (eq + value if eq else ""))
        else:
            out.append(a)
        i += 1
    return [*head, *table[cmd], *out]


def _dispatch(old: str, table: dict[str, list[str]]) -> None:
    from . import main

    try:
        new = translate(old, table, sys.argv[1:])
    except click.UsageError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    verbs = [v for v in table.values() if any(new[i:i + 2] == v for i in range(len(new)))]
    shown = " ".join(verbs[0]) if verbs else "--help"
    click.echo(f"note: `{old}` is deprecated; use `gridcoop {shown} …` (running it now)", err=True)
    if verbs and verbs[0] == ["market", "order"]:
        click.echo("note: --price is now in the payment token's units per kWh (30 = 30 SKC/kWh), not base units",
                   err=True)
    main(args=new, prog_name="gridcoop")


def keeper() -> None:
    """The deprecated ``keeper`` console script."""
    _dispatch("keeper", KEEPER)


def meter_bridge() -> None:
    """The deprecated ``meter-bridge`` console script."""
    _dispatch("meter-bridge", METER_BRIDGE)
