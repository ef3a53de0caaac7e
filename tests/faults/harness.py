"""Shared harness for the hostile-input, fault-injection and load tests.

Everything is real: an anvil node on a loopback port, the keeper (``gridcoop keeper serve`` with the
reading relay) and the meter bridge (``gridcoop bridge run`` with ``pusher: http``) as *subprocesses*
(so SIGKILL is a real SIGKILL), the Modbus meter simulator on a real TCP port, and HTTP on
loopback. Time: the chain's clock (what the market's gate closure uses) is moved with
``evm_setNextBlockTimestamp``; the meters' and the bridge's clock is a file the test rewrites.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridcoop_sdk import wh_to_watt
from gridcoop_sdk.chain import free_port
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.orders import Order, SignedOrder, sign_order
from gridcoop_sdk.readings import meter_id
from gridcoop_sdk.tx import send
from meter_bridge.outbox import Outbox
from meter_bridge.simulator import Household

MAX = 2**256 - 1
ZERO = "0x" + "00" * 20


def set_file_clock(path: Path, t: float) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(t))
    os.replace(tmp, path)


def read_file_clock(path: Path) -> float:
    return float(path.read_text())


def wait_for(pred, timeout: float = 60.0, what: str = "condition", poll: float = 0.1):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as exc:  # the thing polled may be restarting
            last_exc = exc
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def chain_now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def advance_chain(w3: Web3, ts: int) -> None:
    """Mine a block at ``ts`` (or just a block if the chain is already past it)."""
    if ts > chain_now(w3):
        w3.provider.make_request("evm_setNextBlockTimestamp", [ts])
    w3.provider.make_request("evm_mine", [])


@dataclass
class Stack:
    """Contracts of one market + meter registry on one node, and the people using them."""

    w3: Web3
    url: str
    admin: LocalAccount
    keeper: LocalAccount
    relayer: LocalAccount
    sellers: list[LocalAccount]
    buyers: list[LocalAccount]
    watt: object
    token: object
    market: object
    registry: object
    devices: dict[str, LocalAccount] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    #: The first interval start after the meters were registered (the registry refuses earlier ones).
    reading_base: int = 0

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def order(self, who: LocalAccount, side: str, wh: int, price: int, iid: int, **kw) -> SignedOrder:
        o = Order(maker=who.address, side=side, interval_id=iid, amount_wh=wh, limit_price=price,
                  payment_token=self.token.address, expiry=iid * 900 + 30 * 86400, **kw)
        return sign_order(o, who.key, self.chain_id, self.market.address)

    def book(self, iid: int, rng: random.Random | None = None, n: int = 3) -> list[SignedOrder]:
        """``n`` sells and ``n`` buys that cross (some fill, some do not)."""
        rng = rng or random.Random(iid)
        out = []
        for i in range(n):
            s = self.sellers[i % len(self.sellers)]
            b = self.buyers[i % len(self.buyers)]
            out.append(self.order(s, "sell", rng.randint(100, 900), rng.randint(18, 30), iid))
            out.append(self.order(b, "buy", rng.randint(100, 900), rng.randint(22, 40), iid))
        return out

    def settled_events(self, iid: int, from_block: int = 0) -> list:
        return self.market.events.IntervalSettled().get_logs(from_block=from_block,
                                                             argument_filters={"intervalId": iid})

    def reading_keys(self, from_block: int = 0) -> list[tuple[str, int]]:
        evs = self.registry.events.ReadingAccepted().get_logs(from_block=from_block)
        return [("0x" + e.args.meterId.hex(), e.args.sequence) for e in evs]


def deploy_stack(w3: Web3, url: str, wallets: list[LocalAccount], *, households: list[str],
                 directory: Path | None = None) -> Stack:
    from gridcoop_sdk.orders import deploy_market

    admin, keeper, relayer = wallets[0], wallets[1], wallets[8]
    sellers, buyers = wallets[2:5], wallets[5:8]
    watt = deploy(w3, admin, "WattToken", admin.address, directory=directory)
    token = deploy(w3, admin, "MarketTestToken", "Yen", "JPYC", directory=directory)
    market = deploy_market(w3, admin, watt, keeper=keeper.address, payment_tokens=(token,), directory=directory)
    registry = deploy_meters(w3, admin, watt, directory=directory)
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    for s in sellers:
        send(w3, admin, watt.functions.mint(s.address, wh_to_watt(1_000_000)))
        send(w3, s, watt.functions.approve(market.address, MAX))
    for b in buyers:
        send(w3, admin, token.functions.mint(b.address, 10**27))
        send(w3, b, token.functions.approve(market.address, MAX))
    st = Stack(w3, url, admin, keeper, relayer, sellers, buyers, watt, token, market, registry)
    for i, name in enumerate(households):
        dev = Account.from_key(Web3.keccak(text=f"gridcoop-fault-device/{name}"))
        owner = wallets[9 - (i % 2)]
        register_meter(w3, admin, registry, meter_id=meter_id(name), signer=dev.address, owner=owner.address,
                       kind="prosumer", colour="solar", certified=False, rated_power_w=20_000)
        st.devices[name] = dev
        st.owners[name] = owner.address
    st.reading_base = (chain_now(w3) // 900 + 1) * 900
    return st


def households(names: list[str]) -> list[Household]:
    return [Household(n, grid_unit=2 * i + 1, pv_unit=2 * i + 2, pv_peak_w=6000, load_kwh_day=10)
            for i, n in enumerate(names)]


# ---------------------------------------------------------------------------- processes
class Service:
    """A service subprocess (own session, so a SIGKILL takes only it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.starts = 0

    def start(self) -> Service:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (no cleanup, no flush: what a power cut or the OOM killer does)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def service_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("METER_BRIDGE_FAULT", None)
    env.update(extra)
    return env


def keeper_service(stack: Stack, workdir: Path, *, port: int | None = None, poll: float = 0.2) -> tuple[Service, str]:
    port = port or free_port()
    argv = [sys.executable, "-m", "gridcoop", "keeper", "serve", "--rpc-url", stack.url, "--market", stack.market.address,
            "--db", f"sqlite:///{workdir}/keeper.db", "--port", str(port), "--poll", str(poll),
            "--registry", stack.registry.address]
    env = service_env(GRIDCOOP_KEEPER_KEY=stack.keeper.key.hex(), GRIDCOOP_RELAY_KEY=stack.relayer.key.hex())
    return Service("keeper", argv, env, workdir / "keeper.log"), f"http://127.0.0.1:{port}"


def bridge_service(stack: Stack, workdir: Path, keeper_url: str, modbus_port: int, clock_path: Path,
                   names: list[str], *, poll: float = 0.1, rpc_url: str | None = None,
                   batch_size: int = 100) -> Service:
    cfg = {"reconcile_every": 1.0,
        "chain_id": stack.chain_id, "registry": stack.registry.address, "outbox": str(workdir / "outbox.sqlite"),
        "pusher": "http", "keeper_url": keeper_url, "poll_interval": poll, "batch_size": batch_size,
        "meters": [{"name": n, "key_hex_env": f"FAULT_DEV_{i}",
                    "grid": {"port": modbus_port, "unit": 2 * i + 1, "map": "eastron_sdm630"},
                    "generation": {"port": modbus_port, "unit": 2 * i + 2, "map": "sunspec_213"}}
                   for i, n in enumerate(names)],
    }
    if rpc_url:
        cfg["rpc_url"] = rpc_url
    (workdir / "gateway.yaml").write_text(yaml.safe_dump(cfg))
    env = service_env(**{f"FAULT_DEV_{i}": stack.devices[n].key.hex() for i, n in enumerate(names)})
    argv = [sys.executable, "-m", "gridcoop", "bridge", "run", "--config", str(workdir / "gateway.yaml"),
            "--clock-file", str(clock_path)]
    return Service("bridge", argv, env, workdir / "bridge.log")


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def outbox_status(path: Path) -> dict:
    if not path.exists():
        return {"pending": 0, "accepted": 0, "rejected": 0}
    ob = Outbox(path)
    try:
        return ob.status()
    finally:
        ob.close()


class Run:
    """Keeper + bridge subprocesses, the Modbus simulator and both clocks for one fault scenario."""

    def __init__(self, stack: Stack, workdir: Path, names: list[str], *, keeper_port: int | None = None,
                 gateway_rpc: bool = True):
        from meter_bridge.clock import FileClock
        from meter_bridge.simulator import MeterSimulator

        self.stack, self.workdir, self.names = stack, workdir, names
        self.clock_path = workdir / "meter-clock"
        # The meters' day starts at 09:00 after the meters were registered; the chain's clock
        # follows the meters' (the registry accepts only intervals that are over on chain).
        self.meter_t = (stack.reading_base // 86400 + 1) * 86400 + 9 * 3600 + 1
        set_file_clock(self.clock_path, self.meter_t)
        self._chain_follows_meters()
        self.modbus_port = free_port()
        self.sim = MeterSimulator(households(names), clock=FileClock(str(self.clock_path)),
                                  port=self.modbus_port).start()
        self.keeper, self.keeper_url = keeper_service(stack, workdir, port=keeper_port)
        self.bridge = bridge_service(stack, workdir, self.keeper_url, self.modbus_port, self.clock_path, names,
                                     rpc_url=stack.url if gateway_rpc else None)
        self.outbox = workdir / "outbox.sqlite"
        self.accepted_orders: dict[int, set[str]] = {}

    # -- processes
    def start(self) -> Run:
        self.keeper.start()
        self.bridge.start()
        self.wait_keeper()
        self.wait_anchored()
        return self

    def wait_keeper(self, timeout: float = 60) -> None:
        wait_for(lambda: healthy(self.keeper_url), timeout, f"keeper health ({self.keeper.log_text()[-800:]})")

    def anchors(self) -> dict[str, int | None]:
        if not self.outbox.exists():
            return {}
        ob = Outbox(self.outbox)
        try:
            return {n: (ob.anchor(n) or {}).get("start") for n in self.names}
        finally:
            ob.close()

    def wait_anchored(self, timeout: float = 60) -> None:
        """Until the bridge has sampled every meter at the current meter-clock boundary."""
        b = int(self.meter_t // 900) * 900
        wait_for(lambda: all(v == b for v in self.anchors().values()) and len(self.anchors()) == len(self.names),
                 timeout, f"bridge anchored at {b} ({self.bridge.log_text()[-800:]})")

    def close(self) -> None:
        self.bridge.stop()
        self.keeper.stop()
        self.sim.stop()

    # -- clocks
    def next_meter_interval(self) -> None:
        self.meter_t = (int(self.meter_t // 900) + 1) * 900 + 1
        self._chain_follows_meters()
        set_file_clock(self.clock_path, self.meter_t)

    def _chain_follows_meters(self) -> None:
        """Mine a block at the meters' time if the chain is behind it (as a real chain keeps up
        with the wall clock); mines nothing otherwise, so a test's mempool stays as it is."""
        if chain_now(self.stack.w3) < self.meter_t:
            advance_chain(self.stack.w3, int(self.meter_t))

    def nudge_meter_clock(self, seconds: float = 5) -> None:
        """Move the meter clock a little inside the interval (lets the bridge's push back-off expire)."""
        b = int(self.meter_t // 900) * 900
        self.meter_t = min(self.meter_t + seconds, b + 55)
        set_file_clock(self.clock_path, self.meter_t)

    # -- orders
    def submit(self, signed: SignedOrder, timeout: float = 60) -> str:
        """Submit until the keeper has it (201, or 409 'already submitted' after a lost answer)."""
        h = "0x" + signed.hash.hex()
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = httpx.post(self.keeper_url + "/v1/orders", json=signed.to_dict(), timeout=10)
                if r.status_code == 201 or (r.status_code == 409 and "already submitted" in r.text):
                    self.accepted_orders.setdefault(signed.order.interval_id, set()).add(h)
                    return h
                raise AssertionError(f"order refused: {r.status_code} {r.text}")
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                if not self.keeper.alive():
                    self.keeper.start()
                time.sleep(0.2)

    def interval(self, iid: int) -> dict:
        return httpx.get(f"{self.keeper_url}/v1/intervals/{iid}", timeout=10).json()

    def wait_settled(self, iids, timeout: float = 90) -> None:
        def done():
            for i in iids:
                if self.interval(i)["state"] not in ("settled", "empty"):
                    self.nudge_meter_clock(0)
                    return False
            return True

        wait_for(done, timeout, f"intervals {list(iids)} settled ({self.keeper.log_text()[-1500:]})", poll=0.3)

    def wait_drained(self, timeout: float = 90) -> None:
        def done():
            st = outbox_status(self.outbox)
            if st["pending"]:
                self.nudge_meter_clock(5)
            return st["pending"] == 0
        wait_for(done, timeout, f"outbox drained ({self.bridge.log_text()[-1500:]})", poll=0.3)

    # -- checks
    def check_exactly_once(self, from_block: int = 0) -> dict:
        """Every interval with orders settled once on chain; every signed reading on chain once."""
        st = self.stack
        for iid, hashes in self.accepted_orders.items():
            evs = st.settled_events(iid, from_block)
            assert len(evs) == 1, f"interval {iid}: {len(evs)} IntervalSettled events"
            assert st.market.functions.settledIntervals(iid).call()
            rows = httpx.get(f"{self.keeper_url}/v1/orders", params={"interval": iid}, timeout=10).json()["orders"]
            known = {o["hash"]: o for o in rows}
            assert hashes <= set(known), f"interval {iid}: accepted orders lost: {hashes - set(known)}"
            assert all(o["status"] in ("filled", "partially_filled", "unfilled") for o in rows), rows
            trades = st.market.events.Trade().get_logs(from_block=from_block, argument_filters={"intervalId": iid})
            info = self.interval(iid)
            assert sum(t.args.wh for t in trades) == info["volume_wh"] == evs[0].args.energyWh
            assert sum(o["filled_wh"] for o in rows if o["side"] == "sell") == info["volume_wh"]
            assert sum(o["filled_wh"] for o in rows if o["side"] == "buy") == info["volume_wh"]
        ob = Outbox(self.outbox)
        try:
            rows = ob.rows()
        finally:
            ob.close()
        assert all(r["status"] in ("accepted", "duplicate") for r in rows), [r for r in rows if r["status"] not in
                                                                          ("accepted", "duplicate")]
        signed = {(r["meter_id"], r["sequence"]) for r in rows}
        on_chain = st.reading_keys(from_block)
        assert len(on_chain) == len(set(on_chain)), "a reading was accepted twice"
        assert set(on_chain) == signed, (sorted(set(on_chain) ^ signed))[:5]
        by_meter: dict[str, list[int]] = {}
        for m, q in signed:
            by_meter.setdefault(m, []).append(q)
        for m, seqs in by_meter.items():
            seqs.sort()
            assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"meter {m}: gap in intervals {seqs}"
        return {"intervals": len(self.accepted_orders), "readings": len(signed),
                "orders": sum(len(v) for v in self.accepted_orders.values())}
