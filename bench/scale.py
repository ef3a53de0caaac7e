"""Scale benchmark (``make bench-scale``): 10,000 simulated meters -> Mosquitto -> 2 MQTT relay
workers -> anvil, with a relay worker SIGKILLed and restarted and the broker restarted mid-run.

Everything is real: anvil, Debian's Mosquitto (started here on a free loopback port, persistence in
a temporary folder), two ``gridcoop relay mqtt`` processes (each its own gas account, shared
subscription, batches of up to ``--batch-size``). The meters are simulated at the signing and
publishing level only (no Modbus server per meter at this scale): each meter has its own device key
registered in the MeterRegistry and signs its readings with :class:`~gridcoop_sdk.readings.ReadingSigner`;
gateways of ``--meters-per-gateway`` meters publish them with the bridge's
:class:`~meter_bridge.pushers.MqttPusher` (QoS 1, persistent session; what the broker did not
acknowledge is published again, as the gateway's outbox does).

1. **Interval**: the chain's clock passes the end of an interval; every meter signs and publishes its
   reading at once. ``scale_interval_s`` = from the interval's end until all its readings are on
   chain (ReadingAccepted logs). One relay worker is SIGKILLed when about a third is on chain and
   restarted under the same client id (its unacknowledged messages come back to it).
2. **Sustained stream**: the next ``--stream-intervals`` intervals of every meter are published at
   ``--stream-rate`` readings/s; ``scale_readings_per_s`` = readings of the stream / seconds from its
   first publish until its last reading is on chain. The broker is restarted (clean stop, start on
   the same port and data) when about half of it is on chain.

The relay workers record every reading's outcome in the keeper's store before acknowledging it
(``--db``): an SQLite file by default, a PostgreSQL server started here with ``--store postgresql``
(figures ``scale_*_pg``); ``scale_store_rows`` = readings the store shows on chain, each once, and
``scale_store_missing`` = expected − that (0: nothing acknowledged went unrecorded, even across the
SIGKILL).

Then the chain is checked: ``scale_lost`` = expected (meter, sequence) pairs without a
ReadingAccepted log, ``scale_duplicated`` = logs beyond one per pair. Results are merged into
bench/results.json (``scale_*``), and the time split (signing, publishing, relay checks, submission)
is printed for docs/scaling.md.

    python -m bench.scale                       # 10,000 meters, as `make bench-scale`
    python -m bench.scale --meters 2000 --stream-intervals 1   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from eth_account import Account
from web3 import Web3

from gridcoop_sdk import Anvil, dev_accounts
from gridcoop_sdk.chain import stop_process
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters
from gridcoop_sdk.mqtt import Mosquitto
from gridcoop_sdk.readings import Reading, ReadingSigner, SignedReading, meter_id
from meter_bridge.pushers import MqttPusher, PushError

HERE = Path(__file__).resolve().parent
log = logging.getLogger("bench.scale")
REGION = "scale"


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class ChainCounter:
    """ReadingAccepted logs of the registry, fetched incrementally with raw eth_getLogs."""

    def __init__(self, w3: Web3, registry, from_block: int):
        self.w3, self.address = w3, registry.address
        self.topic = registry.events.ReadingAccepted().topic
        self.next_block = from_block
        self.seen: Counter = Counter()      # (meter id hex, sequence) -> logs
        self.by_seq: Counter = Counter()    # sequence -> logs
        self.first_at: dict[int, float] = {}
        self.last_at: dict[int, float] = {}

    def poll(self) -> None:
        latest = self.w3.eth.block_number
        if latest < self.next_block:
            return
        res = self.w3.provider.make_request("eth_getLogs", [{"address": self.address, "topics": [self.topic],
                                                             "fromBlock": hex(self.next_block),
                                                             "toBlock": hex(latest)}])
        now = time.monotonic()
        for lg in res["result"]:
            seq = int(lg["topics"][2], 16)
            self.seen[(lg["topics"][1], seq)] += 1
            self.by_seq[seq] += 1
            self.first_at.setdefault(seq, now)
            self.last_at[seq] = now
        self.next_block = latest + 1

    def count(self, seqs) -> int:
        return sum(self.by_seq[s] for s in seqs)


def _register(w3: Web3, admin, registry, signers: list[Account], owner: str) -> None:
    """Register the meters fast: automine off, unsigned dev-account transactions (anvil signs),
    blocks filled to about 25 M gas, a fixed gas limit (measured on the first one)."""
    first = registry.functions.registerMeter(meter_id("scale/0"), signers[0].address, owner, 2,
                                             b"solar".ljust(32, b"\0"), False, 20_000, "")
    gas = int(first.estimate_gas({"from": admin.address}) * 1.3)
    chunk = max(1, int(25e6 // gas))
    nonce = w3.eth.get_transaction_count(admin.address)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        for start in range(0, len(signers), chunk):
            for i in range(start, min(len(signers), start + chunk)):
                data = registry.encode_abi("registerMeter", [meter_id(f"scale/{i}"), signers[i].address, owner, 2,
                                                             b"solar".ljust(32, b"\0"), False, 20_000, ""])
                r = w3.provider.make_request("eth_sendTransaction", [{"from": admin.address, "to": registry.address,
                                                                      "data": data, "gas": hex(gas),
                                                                      "nonce": hex(nonce)}])
                if "error" in r:
                    raise RuntimeError(f"registerMeter {i}: {r['error']}")
                nonce += 1
            w3.provider.make_request("evm_mine", [])
        while w3.eth.get_transaction_count(admin.address) < nonce:
            w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    n = sum(1 for i in (0, len(signers) - 1) if registry.functions.isRegistered(meter_id(f"scale/{i}")).call())
    if n != 2:
        raise RuntimeError("meter registration did not complete")


def _warp(w3: Web3, ts: int) -> None:
    now = w3.eth.get_block("latest")["timestamp"]
    if ts > now:
        w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
        w3.provider.make_request("evm_mine", [])


class Worker:
    """A ``gridcoop relay mqtt`` process with a fixed client id (its persistent broker session); the
    tests in tests/relay use it too."""

    def __init__(self, rpc_url: str, broker_url: str, registry_address: str, region: str, client_id: str, key: str,
                 workdir: Path, extra: list[str] | tuple[str, ...] = ()):
        self.client_id = client_id
        self.args = [sys.executable, "-m", "gridcoop", "relay", "mqtt", "--rpc-url", rpc_url,
                     "--registry", registry_address, "--topic-region", region, "--broker", broker_url,
                     "--client-id", client_id, "--refusals", str(workdir / f"{client_id}-refusals.jsonl"),
                     "--stats-file", str(workdir / f"{client_id}-stats.json"), *extra]
        self.env = {**os.environ, "GRIDCOOP_RELAY_KEY": key}
        self.log = workdir / f"{client_id}.log"
        self.stats_path = workdir / f"{client_id}-stats.json"
        self.proc: subprocess.Popen | None = None
        self.lives: list[dict] = []   # stats of the killed incarnations (read from the file before the kill)

    def start(self) -> Worker:
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=open(self.log, "ab"),  # noqa: SIM115
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def wait_subscribed(self, count: int = 1, timeout: float = 60) -> Worker:
        """Until the worker's log shows its ``count``-th SUBACK (the shared subscription exists)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text(errors="replace").count("subscription acknowledged") >= count:
                return self
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"{self.client_id} exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.client_id} did not subscribe within {timeout}s")

    def stats(self) -> dict:
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def kill(self) -> None:
        """SIGKILL (its counters so far are kept in ``lives``)."""
        self.lives.append(self.stats())
        stop_process(self.proc, sig=signal.SIGKILL)

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)


class Gateways:
    """``n`` simulated meters in gateways of ``per`` meters, each gateway one MqttPusher."""

    def __init__(self, broker: Mosquitto, signers: list[ReadingSigner], ids: list[bytes], per: int, start: int):
        self.signers, self.ids, self.start = signers, ids, start
        self.groups = [list(range(i, min(len(ids), i + per))) for i in range(0, len(ids), per)]
        self.pushers = [MqttPusher(broker.url, REGION, client_id=f"scale-gw-{g}", timeout=30)
                        for g in range(len(self.groups))]
        self.sign_s = 0.0
        self.publish_s = 0.0
        self.republished = 0

    def sign(self, i: int, seq: int) -> SignedReading:
        s = self.start + (seq - 1) * 900
        return self.signers[i].sign(Reading(meter_id=self.ids[i], sequence=seq, interval_start=s, interval_end=s + 900,
                                            generation_wh=300 + i % 200, consumption_wh=250, export_wh=50 + i % 200,
                                            import_wh=0, frequency_mhz=50_000))

    def publish(self, g: int, batch: list[SignedReading]) -> None:
        """Publish until the broker acknowledged every reading (as the gateway's outbox retries)."""
        todo = batch
        first = True
        while todo:
            t = time.perf_counter()
            try:
                sent = set(self.pushers[g].push(todo).sent)
            except PushError as exc:
                log.info("gateway %d: %s; retrying", g, exc)
                sent = set()
                time.sleep(0.5)
            self.publish_s += time.perf_counter() - t
            if not first or len(sent) < len(todo):
                self.republished += len(todo) - len(sent)
            first = False
            todo = [s for s in todo if s.key() not in sent]

    def interval(self, seq: int, chunk: int = 500) -> None:
        """Every meter signs and publishes reading ``seq`` at once (gateways one after another)."""
        for g, members in enumerate(self.groups):
            for k in range(0, len(members), chunk):
                t = time.perf_counter()
                batch = [self.sign(i, seq) for i in members[k:k + chunk]]
                self.sign_s += time.perf_counter() - t
                self.publish(g, batch)

    def stream(self, seqs: list[int], rate: float, tick: float = 0.1) -> None:
        """Readings ``seqs`` of every meter, ``rate`` per second, in ticks, gateway by gateway."""
        items = [(g, i, s) for s in seqs for g, members in enumerate(self.groups) for i in members]
        per_tick = max(1, int(rate * tick))
        t0 = time.monotonic()
        for k in range(0, len(items), per_tick):
            due = t0 + (k / rate)
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            by_g: dict[int, list[SignedReading]] = {}
            t = time.perf_counter()
            for g, i, s in items[k:k + per_tick]:
                by_g.setdefault(g, []).append(self.sign(i, s))
            self.sign_s += time.perf_counter() - t
            for g, batch in by_g.items():
                self.publish(g, batch)

    def close(self) -> None:
        for p in self.pushers:
            p.close()


def run_scale(*, meters: int, per_gateway: int, stream_intervals: int, stream_rate: float, batch_size: int,
              window: float, workdir: Path, kill_at: float = 0.33, restart_at: float = 0.5,
              db_url: str | None = None) -> dict[str, float]:
    accounts = dev_accounts(20)
    admin, relay_a, relay_b = accounts[0], accounts[8], accounts[9]
    figures: dict[str, float] = {}
    with Anvil(accounts=20) as node, \
            Mosquitto(data_dir=workdir / "mosquitto") as broker:
        w3 = node.w3
        watt = deploy(w3, admin, "WattToken", admin.address, record=False)
        registry = deploy_meters(w3, admin, watt, directory=workdir)
        t = time.monotonic()
        devices = [Account.from_key(Web3.keccak(text=f"scale-device/{i}")) for i in range(meters)]
        ids = [meter_id(f"scale/{i}") for i in range(meters)]
        _register(w3, admin, registry, devices, accounts[3].address)
        signers = [ReadingSigner(d.key, w3.eth.chain_id, registry.address) for d in devices]
        _say(f"{meters} meters registered in {time.monotonic() - t:.1f}s")
        now = w3.eth.get_block("latest")["timestamp"]
        start = (now // 900 + 1) * 900          # the first whole interval after registration
        block0 = w3.eth.block_number + 1
        counter = ChainCounter(w3, registry, block0)

        opts = ["--batch-size", str(batch_size), "--window", str(window)]
        if db_url:  # the workers record every reading's outcome in the keeper's store before acking it
            opts += ["--db", db_url]
        workers = [Worker(node.url, broker.url, registry.address, REGION, cid, key.hex(), workdir, opts)
                   for cid, key in (("relay-a", relay_a.key), ("relay-b", relay_b.key))]
        for wk in workers:
            wk.start()
        for wk in workers:
            wk.wait_subscribed()
        gws = Gateways(broker, signers, ids, per_gateway, start)
        events: list[str] = []
        try:
            # ---------------------------------------------------------------- 1. one interval
            _warp(w3, start + 900)                 # interval 1 is over on the chain's clock
            t_end = time.monotonic()
            pub = threading.Thread(target=gws.interval, args=(1,), daemon=True)
            pub.start()
            killed = False
            while counter.count([1]) < meters:
                time.sleep(0.2)
                counter.poll()
                if not killed and counter.count([1]) >= kill_at * meters:
                    workers[0].kill()
                    events.append(f"relay-a SIGKILLed at {counter.count([1])} of {meters} readings on chain "
                                  f"({time.monotonic() - t_end:.1f}s)")
                    _say(events[-1])
                    workers[0].start()
                    killed = True
                if time.monotonic() - t_end > 1800:
                    raise RuntimeError(f"interval: only {counter.count([1])} of {meters} on chain after 30 min")
            interval_s = counter.last_at[1] - t_end
            pub.join()
            _say(f"interval: {meters} readings on chain {interval_s:.1f}s after the interval's end "
                 f"(signing {gws.sign_s:.1f}s, publishing {gws.publish_s:.1f}s of it)")
            sign_1, publish_1 = gws.sign_s, gws.publish_s

            # ---------------------------------------------------------------- 2. sustained stream
            seqs = list(range(2, 2 + stream_intervals))
            _warp(w3, start + 900 * (1 + stream_intervals))
            total = meters * len(seqs)
            t0 = time.monotonic()
            pub = threading.Thread(target=gws.stream, args=(seqs, stream_rate), daemon=True)
            pub.start()
            restarted = False
            while counter.count(seqs) < total:
                time.sleep(0.2)
                counter.poll()
                if not restarted and counter.count(seqs) >= restart_at * total:
                    broker.restart(down_s=1.0)
                    events.append(f"broker restarted at {counter.count(seqs)} of {total} stream readings on chain "
                                  f"({time.monotonic() - t0:.1f}s into the stream)")
                    _say(events[-1])
                    restarted = True
                if time.monotonic() - t0 > 3600:
                    raise RuntimeError(f"stream: only {counter.count(seqs)} of {total} on chain after 1 h")
            stream_s = max(counter.last_at[s] for s in seqs) - t0
            pub.join()
            rate = total / stream_s
            _say(f"stream: {total} readings on chain in {stream_s:.1f}s = {rate:.0f} readings/s "
                 f"(published at up to {stream_rate:.0f}/s)")

            # ---------------------------------------------------------------- the chain's account
            time.sleep(3.0)   # anything still in flight (a re-submission) would show up now
            counter.poll()
            expected = {("0x" + mid.hex(), s) for mid in ids for s in [1, *seqs]}
            seen = {(m.lower(), s) for (m, s) in counter.seen}
            lost = len(expected - seen)
            duplicated = sum(n - 1 for n in counter.seen.values() if n > 1) + len(seen - expected)
        finally:
            gws.close()
            for wk in workers:
                wk.stop()
        stats = [wk.lives + [wk.stats()] for wk in workers]
        flat = [s for lives in stats for s in lives if s]
        refused = Counter()
        for s in flat:
            refused.update(s.get("refused", {}))
        gas = sum(s.get("gas", 0) for s in flat)
        batches = sum(s.get("batches", 0) for s in flat)
        check_s = sum(s.get("check_s", 0.0) for s in flat)
        submit_s = sum(s.get("submit_s", 0.0) for s in flat)
        accepted_total = len(seen & expected)
        figures = {
            "scale_meters": meters,
            "scale_interval_s": round(interval_s, 1),
            "scale_readings_per_s": round(rate, 1),
            "scale_lost": lost,
            "scale_duplicated": duplicated,
            "scale_refused": sum(refused.values()),
            "scale_gas_per_reading": round(gas / max(1, accepted_total)),
            "scale_batches": batches,
        }
        _say("events: " + "; ".join(events))
        _say(f"time split: signing {gws.sign_s:.1f}s ({sign_1:.1f}s in the interval), publishing "
             f"{gws.publish_s:.1f}s ({publish_1:.1f}s in the interval, {gws.republished} re-published), relay checks "
             f"{check_s:.1f}s, submitReadings {submit_s:.1f}s over {batches} batches "
             f"({submit_s / max(1, batches):.2f}s each, {gas / max(1, batches) / 1e6:.1f} M gas each) in 2 workers")
        _say(f"refused: {dict(refused) or 'none'}; per worker: "
             + "; ".join(f"{wk.client_id}: {[{k: s.get(k) for k in ('accepted', 'already_on_chain', 'batches')} for s in lives]}"
                         for wk, lives in zip(workers, stats, strict=True)))
    return figures


def _store_rows(db_url: str) -> int:
    """Readings the workers recorded in the keeper's store as on chain (accepted by them, or found
    already on chain after a worker was killed between the receipt and its record), each once."""
    from sqlalchemy import func, select

    from keeper.db import Database
    from keeper.db import RelayedReadingRow as R

    db = Database(db_url)
    try:
        with db.session() as s:
            pairs = (select(R.meter_id, R.sequence).where(R.result.in_(("accepted", "already_on_chain")))
                     .distinct().subquery())
            return int(s.scalar(select(func.count()).select_from(pairs)))
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--meters-per-gateway", type=int, default=1000)
    ap.add_argument("--stream-intervals", type=int, default=2, help="intervals of every meter in the sustained stream")
    ap.add_argument("--stream-rate", type=float, default=1000.0, help="readings/s the gateways publish in the stream")
    ap.add_argument("--batch-size", type=int, default=500, help="the relay workers' --batch-size")
    ap.add_argument("--window", type=float, default=0.5, help="the relay workers' --window")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--no-write", action="store_true", help="print the figures only")
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                    help="the keeper's store the relay workers record each reading's outcome in: an SQLite file, "
                         "or a PostgreSQL server started here (figures then end in _pg)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="gridcoop-scale-") as d:
        pg = None
        if args.store == "postgresql":
            from gridcoop_sdk.postgres import PostgresServer

            pg = PostgresServer().start()
            db_url = pg.create_database("scale")
        else:
            db_url = f"sqlite:///{d}/keeper.db"
        try:
            figures = run_scale(meters=args.meters, per_gateway=args.meters_per_gateway,
                                stream_intervals=args.stream_intervals, stream_rate=args.stream_rate,
                                batch_size=args.batch_size, window=args.window, workdir=Path(d), db_url=db_url)
            figures["scale_store_rows"] = _store_rows(db_url)
            figures["scale_store_missing"] = args.meters * (1 + args.stream_intervals) - figures["scale_store_rows"]
        finally:
            if pg is not None:
                pg.stop()
    if args.store == "postgresql":
        figures = {f"{k}_pg": v for k, v in figures.items()}
    for k, v in figures.items():
        print(f"{k:<24} {v:>12,}")
    if not args.no_write:
        out = Path(args.out)
        results = json.loads(out.read_text()) if out.exists() else {}
        results.update(figures)
        out.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
        print(f"merged into {out}")
    suffix = "_pg" if args.store == "postgresql" else ""
    ok = figures[f"scale_lost{suffix}"] == 0 and figures[f"scale_duplicated{suffix}"] == 0 \
        and figures[f"scale_store_missing{suffix}"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
