"""Buying electricity with carbon credits: C-REV, issued for real by the MeterRegistry's hook from a
certified meter's signed reading, is the payment token of an EnergyMarket settlement."""

from __future__ import annotations

from gridcoop_sdk import wh_to_watt
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.crev import deploy_crev
from gridcoop_sdk.meters import deploy_meters, register_meter, submit_readings
from gridcoop_sdk.orders import Order, deploy_market, pack_trade, sign_order
from gridcoop_sdk.readings import Reading, meter_id, sign_reading
from gridcoop_sdk.tx import send

from .test_market_contract import settle

MAX = 2**256 - 1


def test_crev_from_a_certified_reading_pays_for_energy(w3, wallets, deployments_dir):
    admin, keeper, seller, buyer, device = wallets[0], wallets[1], wallets[2], wallets[3], wallets[4]
    watt = deploy(w3, admin, "WattToken", admin.address, directory=deployments_dir)
    registry = deploy_meters(w3, admin, watt, directory=deployments_dir)
    crev = deploy_crev(w3, admin, issuer=registry.address, factor_g_per_kwh=450, minimum_retirement=0,
                       region="t", directory=deployments_dir)
    send(w3, admin, registry.functions.setSelfConsumptionHook(crev.token.address))
    send(w3, admin, registry.functions.setHookGasLimit(600_000))
    register_meter(w3, admin, registry, meter_id="roof-1", signer=device.address, owner=buyer.address,
                   kind="prosumer", colour="solar", certified=True, rated_power_w=10_000)
    # the buyer's certified PV meter self-consumes 2,000 Wh in one interval: 2,000 × 450 × 1e9 C-REV units
    # the first whole interval after the meter's registration, read once it is over
    now = w3.eth.get_block("latest")["timestamp"]
    start = (now // 900 + 1) * 900
    w3.provider.make_request("evm_setNextBlockTimestamp", [start + 900 + 1])
    w3.provider.make_request("evm_mine", [])
    r = Reading(meter_id=meter_id("roof-1"), sequence=1, interval_start=start, interval_end=start + 900,
                generation_wh=2_000, consumption_wh=2_000, export_wh=0, import_wh=0, frequency_mhz=50_000)
    res = submit_readings(w3, admin, registry, [sign_reading(r, device.key, w3.eth.chain_id, registry.address)])
    assert len(res.accepted) == 1
    earned = crev.token.functions.balanceOf(buyer.address).call()
    assert earned == 2_000 * 450 * 10**9

    market = deploy_market(w3, admin, watt, keeper=keeper.address, payment_tokens=(crev.token,),
                           directory=deployments_dir)
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    send(w3, admin, watt.functions.mint(seller.address, wh_to_watt(5_000)))
    send(w3, seller, watt.functions.approve(market.address, MAX))
    send(w3, buyer, crev.token.functions.approve(market.address, MAX))

    iid = w3.eth.get_block("latest")["timestamp"] // 900
    price = 10**14  # C-REV base units per kWh (0.0001 t-CO2e per kWh)
    exp = iid * 900 + 86400
    orders = [
        sign_order(Order(maker=seller.address, side="sell", interval_id=iid, amount_wh=1_500, limit_price=price,
                         payment_token=crev.token.address, expiry=exp), seller.key, w3.eth.chain_id, market.address),
        sign_order(Order(maker=buyer.address, side="buy", interval_id=iid, amount_wh=1_500, limit_price=price,
                         payment_token=crev.token.address, expiry=exp), buyer.key, w3.eth.chain_id, market.address),
    ]

    class _Env:  # the shape settle() expects
        pass

    env = _Env()
    env.w3, env.market, env.keeper = w3, market, keeper
    receipt = settle(env, iid, orders, [pack_trade(0, 1, 1_500, price)])
    assert receipt["status"] == 1
    paid = 1_500 * price // 1000
    assert crev.token.functions.balanceOf(buyer.address).call() == earned - paid
    assert crev.token.functions.balanceOf(seller.address).call() == paid
    assert watt.functions.balanceOf(buyer.address).call() == wh_to_watt(1_500)
    # the lot trail follows the payment: the seller now holds part of the buyer's lot
    lot_ids, amounts = crev.token.functions.lotsOf(seller.address).call()
    assert len(lot_ids) == 1 and amounts == [paid]
