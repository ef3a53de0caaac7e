"""Market fixtures: WATT, an honest/hostile payment token, and a fresh EnergyMarket per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridcoop_sdk import wh_to_watt
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.orders import Order, deploy_market, sign_order
from gridcoop_sdk.tx import send

MAX = 2**256 - 1
MONEY = 10**24


@dataclass
class MarketEnv:
    w3: object
    admin: object
    keeper: object
    sellers: list
    buyers: list
    watt: object
    token: object
    market: object

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def current_interval(self) -> int:
        return self.now() // 900

    def order(self, who, side: str, wh: int, price: int, iid: int | None = None, **kw) -> Order:
        kw.setdefault("expiry", self.now() + 10 * 86400)
        return Order(maker=who.address, side=side, interval_id=self.current_interval() if iid is None else iid,
                     amount_wh=wh, limit_price=price, payment_token=kw.pop("payment_token", self.token.address),
                     **kw)

    def sign(self, order: Order, who, **kw):
        return sign_order(order, who.key, self.chain_id, self.market.address, **kw)


def make_env(w3, wallets, deployments_dir, *, gate_closure_delay: int = 0, max_batch_size: int = 1024) -> MarketEnv:
    admin, keeper = wallets[0], wallets[1]
    sellers, buyers = wallets[2:5], wallets[5:8]
    watt = deploy(w3, admin, "WattToken", admin.address, directory=deployments_dir)
    token = deploy(w3, admin, "MarketTestToken", "Yen", "JPYC", directory=deployments_dir)
    market = deploy_market(w3, admin, watt, keeper=keeper.address, payment_tokens=(token,),
                           gate_closure_delay=gate_closure_delay, max_batch_size=max_batch_size,
                           directory=deployments_dir)
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    for s in sellers:
        send(w3, admin, watt.functions.mint(s.address, wh_to_watt(100_000)))
        send(w3, s, watt.functions.approve(market.address, MAX))
    for b in buyers:
        send(w3, admin, token.functions.mint(b.address, MONEY))
        send(w3, b, token.functions.approve(market.address, MAX))
    return MarketEnv(w3, admin, keeper, sellers, buyers, watt, token, market)


@pytest.fixture
def env(w3, wallets, deployments_dir) -> MarketEnv:
    return make_env(w3, wallets, deployments_dir)
