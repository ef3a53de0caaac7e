"""Where the gas of one ``submitReadings`` batch (or, with ``--market``, one ``settle``) goes.

Replays the ``bench_meters`` shape (distinct meters and owners, WATT mint, no C-REV hook) on an
anvil started with ``--steps-tracing``, traces one steady-state batch with
``debug_traceTransaction`` and sums the gas of every executed opcode into groups: intrinsic
(21,000 / batch), calldata, cold and warm storage reads, storage writes, the registry's event, the
WATT mintBatch call (everything inside it), ecrecover, and the remaining opcodes (the Solidity code
itself: decoding, hashing, checks, memory). Run from the repo root:

    .venv/bin/python -m bench.gas_profile --batch 100
    .venv/bin/python -m bench.gas_profile --market --batch 100   # per trade of an EnergyMarket settlement

With ``--market`` the ``bench_market`` book of about ``--batch`` trades (fresh makers, unlimited
approvals) is settled and traced; calls are the token transfers (everything inside the token),
STATICCALL 0x01 is ecrecover, and figures are per trade.
"""

from __future__ import annotations

import argparse
import collections
import sys

from bench.bench_meters import _reading, setup_meters
from gridcoop_sdk import Anvil, connect, dev_accounts
from gridcoop_sdk.meters import submit_readings

CALLS = {"CALL", "STATICCALL", "DELEGATECALL"}


def _groups(logs: list[dict], label: str = "(WATT mintBatch, all inside)") -> collections.Counter:
    """Gas per group for the top-level frame; a call's gas is what it really used (incl. children)."""
    out: collections.Counter = collections.Counter()
    for i, step in enumerate(logs):
        if step["depth"] != 1:
            continue
        op, cost = step["op"], step["gasCost"]
        if op in CALLS:  # gasCost of a call includes the gas forwarded; measure what came back instead
            j = i + 1
            while j < len(logs) and logs[j]["depth"] != 1:
                j += 1
            cost = step["gas"] - logs[j]["gas"] if j < len(logs) else cost
            out["ecrecover (STATICCALL 0x01)" if op == "STATICCALL" and j == i + 1 else f"{op} {label}"] += cost
        elif op == "SLOAD":
            out["storage reads (SLOAD)"] += cost
        elif op == "SSTORE":
            out["storage writes (SSTORE)"] += cost
        elif op.startswith("LOG"):
            out[f"event ({op})"] += cost
        elif op in ("TLOAD", "TSTORE"):
            out["transient storage (TLOAD, TSTORE)"] += cost
        else:
            out["other opcodes (decode, hash, checks, memory)"] += cost
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=10, help="readings per batch (distinct meters), or about this many trades with --market; default 10")
    ap.add_argument("--seq", type=int, default=3,
                    help="sequence of the traced batch (1 is the first reading), default 3")
    ap.add_argument("--market", action="store_true",
                    help="profile an EnergyMarket settlement of about --batch trades instead of a reading batch")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.seq < 2:
        ap.error("--batch must be ≥ 1 and --seq ≥ 2 (sequence 1 warms the meters up)")
    if args.market:
        return _market(args.batch)

    n = args.batch
    with Anvil(accounts=2, extra_args=["--steps-tracing"]) as node:
        w3 = node.w3
        admin, gateway = dev_accounts(2)
        registry, signers, base = setup_meters(w3, admin, n, "profile")
        for seq in range(1, args.seq + 1):
            res = submit_readings(w3, gateway, registry, [s.sign(_reading(mid, seq, base)) for mid, s in signers])
            if len(res.accepted) != n:
                raise SystemExit(f"batch of sequence {seq} was not fully accepted: {res}")
        logs, data = _trace(node, w3, res.tx_hash)
    _print(f"submitReadings, batch {n}, sequence {args.seq}", "reading", _groups(logs), data, res.gas_used, n)
    return 0


def _trace(node, w3, tx_hash) -> tuple[list[dict], bytes]:
    data = bytes(w3.eth.get_transaction(tx_hash)["input"])
    tracer = connect(node.url, timeout=600)  # a batch of 100 is ~400,000 steps
    trace = tracer.provider.make_request(
        "debug_traceTransaction", [tx_hash, {"disableStorage": True, "disableStack": True}])
    return trace["result"]["structLogs"], data


def _print(title: str, unit: str, groups: collections.Counter, data: bytes, total: int, n: int) -> None:
    groups["intrinsic (21,000 per tx)"] = 21_000
    nonzero = sum(1 for b in data if b)
    groups[f"calldata ({len(data) // n} bytes per {unit})"] = nonzero * 16 + (len(data) - nonzero) * 4
    print(f"{title}: {total:,} gas, {total / n:,.0f} per {unit}\n")
    width = max(len(k) for k in groups)
    for name, gas in groups.most_common():
        print(f"{name:<{width}}  {gas / n:>9,.0f}  {100 * gas / total:5.1f} %")
    print(f"{'(sum of the groups)':<{width}}  {sum(groups.values()) / n:>9,.0f}")


def _market(trades_wanted: int) -> int:
    import random

    from bench import bench_market

    with Anvil(accounts=2, extra_args=["--steps-tracing"]) as node:
        w3 = node.w3
        admin, keeper = dev_accounts(2)
        _watt, token, market, makers = bench_market._setup(w3, admin, keeper, trades_wanted + 2)
        iid = w3.eth.get_block("latest")["timestamp"] // 900 - 11
        rows = bench_market.book_for(trades_wanted, random.Random(7))
        gas, trades = bench_market.settle_gas(w3, keeper, token, market, makers, rows, iid)
        tx_hash = w3.eth.get_block("latest")["transactions"][-1]  # automine: the settlement is the last tx
        logs, data = _trace(node, w3, tx_hash)
    _print(f"settle, {len(rows)} orders, {trades} trades", "trade",
           _groups(logs, "(token transfers, all inside)"), data, gas, trades)
    return 0


if __name__ == "__main__":
    sys.exit(main())
