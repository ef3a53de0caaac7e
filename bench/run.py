"""Run every benchmark module (``bench/bench_*.py``), print a table, write bench/results.json.

Each module defines ``run(ctx) -> dict[str, float]``; ``ctx`` gives a fresh anvil (``ctx.w3``,
``ctx.node``) and funded dev accounts (``ctx.accounts``). Results are flat ``"name": number``
pairs. Usage::

    python -m bench.run                # all benchmarks
    python -m bench.run -k meter       # only modules whose name contains "meter"
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gridcoop_sdk import Anvil, dev_accounts

HERE = Path(__file__).resolve().parent


@dataclass
class Context:
    node: Anvil
    accounts: list

    @property
    def w3(self):
        return self.node.w3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="filter", default="", help="run only benchmark modules whose name contains this")
    ap.add_argument("--out", default=str(HERE / "results.json"), help="where to write the JSON results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    modules = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    modules = [m for m in modules if args.filter in m]
    results: dict[str, float] = {}
    for name in modules:
        mod = importlib.import_module(f"bench.{name}")
        print(f"==> {name}", flush=True)
        t0 = time.monotonic()
        with Anvil(accounts=20) as node:
            out = mod.run(Context(node=node, accounts=dev_accounts(20)))
        for k, v in out.items():
            results[k] = v
        print(f"    {len(out)} figures in {time.monotonic() - t0:.1f}s", flush=True)

    out_path = Path(args.out)
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    if args.filter:  # keep figures of modules that were not re-run
        previous.update(results)
        results = previous
    out_path.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
    width = max((len(k) for k in results), default=10)
    print(f"\n{'benchmark':<{width}}  value")
    print(f"{'-' * width}  {'-' * 14}")
    for k, v in sorted(results.items()):
        print(f"{k:<{width}}  {v:>14,.2f}" if isinstance(v, float) else f"{k:<{width}}  {v:>14,}")
    print(f"\nwritten to {out_path} ({platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
