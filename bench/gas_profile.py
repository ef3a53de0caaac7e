"""Where the gas of one ``submitReadings`` batch goes, per accepted reading.

Replays the ``bench_meters`` shape (distinct meters and owners, WATT mint, no C-REV hook) on an
anvil started with ``--steps-tracing``, traces one steady-state batch with
``debug_traceTransaction`` and sums the gas of every executed opcode into groups: intrinsic
(21,000 / batch), calldata, cold and warm storage reads, storage writes, the registry's event, the
WATT mint call (everything inside it), ecrecover, and the remaining opcodes (the Solidity code
itself: decoding, hashing, checks, memory). Run from the repo root:

    .venv/bin/python -m bench.gas_profile --batch 100
"""

from __future__ import annotations

import argparse
import collections
import sys

from bench.bench_meters import _reading, setup_meters
from gridcoop_sdk import Anvil, connect, dev_accounts
from gridcoop_sdk.meters import submit_readings

CALLS = {"CALL", "STATICCALL", "DELEGATECALL"}


def _groups(logs: list[dict]) -> collections.Counter:
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
            out["ecrecover (STATICCALL 0x01)" if op == "STATICCALL" and j == i + 1 else f"{op} (WATT mint, all inside)"] += cost
        elif op == "SLOAD":
            out["storage reads (SLOAD)"] += cost
        elif op == "SSTORE":
            out["storage writes (SSTORE)"] += cost
        elif op.startswith("LOG"):
            out[f"event ({op})"] += cost
        else:
            out["other opcodes (decode, hash, checks, memory)"] += cost
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=10, help="readings per batch (distinct meters), default 10")
    ap.add_argument("--seq", type=int, default=3,
                    help="sequence of the traced batch (1 is the first reading; a multiple of 8 opens a fresh "
                         "digest-tag slot), default 3")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.seq < 2:
        ap.error("--batch must be ≥ 1 and --seq ≥ 2 (sequence 1 warms the meters up)")

    n = args.batch
    with Anvil(accounts=2, extra_args=["--steps-tracing"]) as node:
        w3 = node.w3
        admin, gateway = dev_accounts(2)
        registry, signers = setup_meters(w3, admin, n, "profile")
        for seq in range(1, args.seq + 1):
            res = submit_readings(w3, gateway, registry, [s.sign(_reading(mid, seq)) for mid, s in signers])
            if len(res.accepted) != n:
                raise SystemExit(f"batch of sequence {seq} was not fully accepted: {res}")
        data = bytes(w3.eth.get_transaction(res.tx_hash)["input"])
        tracer = connect(node.url, timeout=600)  # a batch of 100 is ~400,000 steps
        trace = tracer.provider.make_request(
            "debug_traceTransaction", [res.tx_hash, {"disableStorage": True, "disableStack": True}])
        logs = trace["result"]["structLogs"]

    groups = _groups(logs)
    groups["intrinsic (21,000 per tx)"] = 21_000
    nonzero = sum(1 for b in data if b)
    groups[f"calldata ({len(data) // n} bytes per reading)"] = nonzero * 16 + (len(data) - nonzero) * 4
    total = res.gas_used
    print(f"submitReadings, batch {n}, sequence {args.seq}: {total:,} gas, {total / n:,.0f} per reading\n")
    width = max(len(k) for k in groups)
    for name, gas in groups.most_common():
        print(f"{name:<{width}}  {gas / n:>9,.0f}  {100 * gas / total:5.1f} %")
    print(f"{'(sum of the groups)':<{width}}  {sum(groups.values()) / n:>9,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
