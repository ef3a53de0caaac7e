"""EnergyMarket on a real anvil: good batches exact to the unit, and every refusal by its named error."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from gridcoop_sdk import TransactionFailed, wh_to_watt
from gridcoop_sdk.artifacts import decode_error
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.eip712 import encode_type
from gridcoop_sdk.orders import (
    SignedOrder,
    cancel_order,
    money_for,
    order_hash,
    pack_trade,
    payment_for,
    sign_order,
)
from gridcoop_sdk.tx import send

from .conftest import MAX, MONEY


def settle(env, iid, signed, trades, sender=None):
    fn = env.market.functions.settle(
        iid, [s.order.as_tuple() for s in signed], [s.signature for s in signed], trades)
    return send(env.w3, sender or env.keeper, fn)


def refused(env, iid, signed, trades, sender=None) -> TransactionFailed:
    with pytest.raises(TransactionFailed) as err:
        settle(env, iid, signed, trades, sender)
    return err.value


def bal(token, who) -> int:
    return token.functions.balanceOf(who.address if hasattr(who, "address") else who).call()


def test_order_type_hash_matches_solidity(env):
    from eth_utils import keccak
    assert env.market.functions.ORDER_TYPEHASH().call() == keccak(text=encode_type("Order"))


def test_order_hash_matches_contract(env):
    o = env.order(env.sellers[0], "sell", 1500, 30, colour="solar")
    assert env.market.functions.orderHash(o.as_tuple()).call() == order_hash(o, env.chain_id, env.market.address)


def test_good_batch_moves_exact_balances_and_emits_trades(env):
    s0, s1 = env.sellers[:2]
    b0, b1 = env.buyers[:2]
    iid = env.current_interval()
    orders = [
        env.sign(env.order(s0, "sell", 1000, 20), s0),
        env.sign(env.order(s1, "sell", 700, 25), s1, compact=True),
        env.sign(env.order(b0, "buy", 1200, 40), b0),
        env.sign(env.order(b1, "buy", 333, 30), b1),
    ]
    price = 27
    trades = [pack_trade(0, 2, 1000, price), pack_trade(1, 2, 200, price), pack_trade(1, 3, 333, price)]
    before = {a.address: (bal(env.watt, a), bal(env.token, a)) for a in (s0, s1, b0, b1)}
    receipt = settle(env, iid, orders, trades)
    assert bal(env.watt, s0) == before[s0.address][0] - wh_to_watt(1000)
    assert bal(env.watt, s1) == before[s1.address][0] - wh_to_watt(533)
    assert bal(env.watt, b0) == before[b0.address][0] + wh_to_watt(1200)
    assert bal(env.watt, b1) == before[b1.address][0] + wh_to_watt(333)
    # money rounded once per order: sellers floor(Σ wh × price / 1000), buyers the ceiling
    assert bal(env.token, s0) == before[s0.address][1] + money_for(1000, price)  # 27
    assert bal(env.token, s1) == before[s1.address][1] + money_for(533, price)  # 14.391 -> 14
    assert bal(env.token, b0) == before[b0.address][1] - payment_for(1200, price)  # 32.4 -> 33
    assert bal(env.token, b1) == before[b1.address][1] - payment_for(333, price)  # 8.991 -> 9
    assert (money_for(533, price), payment_for(1200, price), payment_for(333, price)) == (14, 33, 9)
    # buyers paid 42, sellers received 41: the unit of rounding dust stays in the market, recorded
    assert bal(env.watt, env.market.address) == 0 and bal(env.token, env.market.address) == 1
    assert env.market.functions.roundingDust(env.token.address).call() == 1
    events = env.market.events.Trade().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.seller, e.args.buyer, e.args.wh, e.args.pricePerKwh) for e in events] == [
        (s0.address, b0.address, 1000, price), (s1.address, b0.address, 200, price),
        (s1.address, b1.address, 333, price)]
    assert len({e.args.tradeId for e in events}) == 3
    settled = env.market.events.IntervalSettled().process_receipt(receipt, errors=DISCARD)[0].args
    assert (settled.trades, settled.energyWh, settled.volume) == (3, 1533, 33 + 9)  # what the buyers paid
    assert env.market.functions.settledIntervals(iid).call() is True


def _one_pair(env, iid=None, **kw):
    s, b = env.sellers[0], env.buyers[0]
    so = env.sign(env.order(s, "sell", 1000, 20, iid=iid, **kw.get("sell", {})), s)
    bo = env.sign(env.order(b, "buy", 1000, 30, iid=iid, **kw.get("buy", {})), b)
    return [so, bo]


def test_second_settle_of_interval_is_refused(env):
    iid = env.current_interval()
    orders = _one_pair(env)
    settle(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketIntervalAlreadySettled" and err.error_args["intervalId"] == iid


def test_non_keeper_is_refused(env):
    iid = env.current_interval()
    err = refused(env, iid, _one_pair(env), [pack_trade(0, 1, 500, 25)], sender=env.sellers[0])
    assert err.error_name == "AccessControlUnauthorizedAccount"


def test_before_gate_closure_is_refused(env):
    iid = env.current_interval() + 2
    err = refused(env, iid, _one_pair(env, iid=iid), [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketIntervalNotClosed"
    assert err.error_args["closesAt"] == iid * 900


def test_wrong_interval_is_refused(env):
    iid = env.current_interval()
    orders = _one_pair(env, iid=iid - 1)
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketWrongInterval" and err.error_args["orderIndex"] == 0


def test_forged_signature_is_refused(env):
    iid = env.current_interval()
    s, b = env.sellers[0], env.buyers[0]
    so = sign_order(env.order(s, "sell", 1000, 20), s.key, env.chain_id, env.market.address)
    forged = type(so)(so.order, Account.create().unsafe_sign_hash(so.hash).signature, so.chain_id, so.market)
    bo = env.sign(env.order(b, "buy", 1000, 30), b)
    err = refused(env, iid, [forged, bo], [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketInvalidSignature" and err.error_args["orderIndex"] == 0


@pytest.mark.parametrize("where", ["chain", "market"])
def test_signature_for_other_domain_is_refused(env, where):
    iid = env.current_interval()
    s, b = env.sellers[0], env.buyers[0]
    o = env.order(s, "sell", 1000, 20)
    chain = env.chain_id + 1 if where == "chain" else env.chain_id
    market = env.market.address if where == "chain" else env.token.address
    other = sign_order(o, s.key, chain, market)
    so = type(other)(o, other.signature, env.chain_id, env.market.address)
    bo = env.sign(env.order(b, "buy", 1000, 30), b)
    err = refused(env, iid, [bo, so], [pack_trade(1, 0, 500, 25)])
    assert err.error_name == "MarketInvalidSignature" and err.error_args["orderIndex"] == 1


def test_high_s_and_bad_v_are_refused(env):
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    iid = env.current_interval()
    so, bo = _one_pair(env)
    r, s, v = so.signature[:32], int.from_bytes(so.signature[32:64], "big"), so.signature[64]
    high = r + (n - s).to_bytes(32, "big") + bytes([55 - v])  # the malleable twin
    err = refused(env, iid, [type(so)(so.order, high, so.chain_id, so.market), bo], [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketInvalidSignature"
    bad_v = so.signature[:64] + bytes([29])
    err = refused(env, iid, [type(so)(so.order, bad_v, so.chain_id, so.market), bo], [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketInvalidSignature"


def test_expired_order_is_refused(env):
    iid = env.current_interval()
    orders = _one_pair(env, sell={"expiry": env.now() - 1})
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketOrderExpired" and err.error_args["orderIndex"] == 0


def test_cancelled_order_is_refused_and_cancel_only_by_maker(env):
    iid = env.current_interval()
    so, bo = _one_pair(env)
    with pytest.raises(TransactionFailed) as err:
        cancel_order(env.w3, env.sellers[1], env.market, so)
    assert err.value.error_name == "MarketNotMaker"
    receipt = cancel_order(env.w3, env.buyers[0], env.market, bo)
    ev = env.market.events.OrderCancelled().process_receipt(receipt, errors=DISCARD)[0].args
    assert ev.orderHash == bo.hash and ev.maker == env.buyers[0].address
    assert env.market.functions.cancelled(bo.hash).call() is True
    err2 = refused(env, iid, [so, bo], [pack_trade(0, 1, 500, 25)])
    assert err2.error_name == "MarketOrderIsCancelled" and err2.error_args["orderIndex"] == 1


def _filter_bits(h: bytes) -> set[int]:
    """The three cancel-filter bits of an order id (its last three bytes), as EnergyMarket computes them."""
    return {h[31], h[30], h[29]}


def test_cancel_filter_false_positive_still_settles_live_orders(env):
    """Cancelled orders whose filter bits cover a live order's bits: the live order takes the exact
    look-up path and settles; the cancelled one in the same interval is still refused."""
    iid = env.current_interval()
    so, bo = _one_pair(env)
    wanted = _filter_bits(so.hash) | _filter_bits(bo.hash)
    seller = env.sellers[1]
    cancelled = []
    salt = 10**6
    while wanted:  # for each wanted bit, find and cancel an unrelated order that sets it
        o = env.order(seller, "sell", 10, 20, salt=salt)
        salt += 1
        hit = _filter_bits(order_hash(o, env.chain_id, env.market.address)) & wanted
        if hit:
            signed = env.sign(o, seller)
            cancel_order(env.w3, seller, env.market, signed)
            cancelled.append(signed)
            wanted -= hit
    assert so.hash not in {c.hash for c in cancelled} and bo.hash not in {c.hash for c in cancelled}
    err = refused(env, iid, [so, bo, cancelled[0]], [pack_trade(0, 1, 500, 25), pack_trade(2, 1, 5, 25)])
    assert err.error_name == "MarketOrderIsCancelled" and err.error_args["orderIndex"] == 2
    before = bal(env.watt, bo.order.maker)
    settle(env, iid, [so, bo], [pack_trade(0, 1, 500, 25)])
    assert bal(env.watt, bo.order.maker) == before + wh_to_watt(500)


@pytest.mark.parametrize("word,value", [
    (0, 1 << 160),            # maker: address with high bits
    (5, 1 << 200),            # paymentToken: address with high bits
    (6, 2),                   # partiallyFillable: bool other than 0/1
    (7, (1 << 64) + 5),       # expiry: uint64 with high bits (would read as "never expires")
    (9, 1 << 170),            # counterparty
])
def test_dirty_order_field_is_refused_as_malformed(env, word, value):
    """A field with bits the ABI type cannot hold is refused by name (the market reads the raw words)."""
    iid = env.current_interval()
    so, bo = _one_pair(env)
    fn = env.market.functions.settle(iid, [so.order.as_tuple(), bo.order.as_tuple()], [so.signature, bo.signature],
                                     [pack_trade(0, 1, 500, 25)])
    data = bytearray(bytes.fromhex(fn._encode_transaction_data()[2:]))
    # settle(uint64, Order[], bytes[], uint256[]): head of 4 words, then Order[] = length + 11-word orders
    orders_at = 4 + int.from_bytes(data[4 + 32:4 + 64], "big")
    at = orders_at + 32 + 32 * word  # first order (the seller's)
    data[at:at + 32] = (int.from_bytes(data[at:at + 32], "big") | value).to_bytes(32, "big")
    with pytest.raises(ContractCustomError) as err:
        env.w3.eth.call({"from": env.keeper.address, "to": env.market.address, "data": bytes(data)})
    name, args = decode_error(err.value.data)
    assert (name, args) == ("MarketMalformedOrder", {"orderIndex": 0})


def test_overfill_is_refused_also_through_a_duplicate(env):
    iid = env.current_interval()
    so, bo = _one_pair(env)
    err = refused(env, iid, [so, bo], [pack_trade(0, 1, 600, 25), pack_trade(0, 1, 600, 25)])
    assert err.error_name == "MarketOverfill"
    assert err.error_args == {"orderIndex": 0, "fillWh": 1200, "remainingWh": 1000}
    b2 = env.sign(env.order(env.buyers[1], "buy", 1000, 30), env.buyers[1])
    err = refused(env, iid, [so, bo, so, b2], [pack_trade(0, 1, 600, 25), pack_trade(2, 3, 600, 25)])
    assert err.error_name == "MarketOverfill" and err.error_args["orderIndex"] == 2


def test_fill_or_kill_partial_is_refused(env):
    iid = env.current_interval()
    orders = _one_pair(env, buy={"partially_fillable": False})
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketFillOrKill"
    settle(env, iid, orders, [pack_trade(0, 1, 1000, 25)])


@pytest.mark.parametrize("price,index", [(19, 0), (31, 1)])
def test_price_outside_limit_is_refused(env, price, index):
    iid = env.current_interval()
    err = refused(env, iid, _one_pair(env), [pack_trade(0, 1, 500, price)])
    assert err.error_name == "MarketLimitViolated"
    assert err.error_args["orderIndex"] == index and err.error_args["price"] == price


def test_imbalanced_batch_side_mismatch_and_self_trade_are_refused(env):
    iid = env.current_interval()
    so, bo = _one_pair(env)
    assert refused(env, iid, [so, bo], [pack_trade(1, 0, 500, 25)]).error_name == "MarketSideMismatch"
    assert refused(env, iid, [so, bo], [pack_trade(0, 5, 500, 25)]).error_name == "MarketOrderIndexOutOfRange"
    s = env.sellers[0]
    self_buy = env.sign(env.order(s, "buy", 100, 30), s)
    assert refused(env, iid, [so, self_buy], [pack_trade(0, 1, 50, 25)]).error_name == "MarketSelfTrade"


def test_counterparty_and_colour_are_honoured(env):
    iid = env.current_interval()
    s0, s1, b0 = env.sellers[0], env.sellers[1], env.buyers[0]
    wind = env.sign(env.order(s0, "sell", 1000, 20, colour="wind"), s0)
    solar = env.sign(env.order(s1, "sell", 1000, 20, colour="solar"), s1)
    wants_solar = env.sign(env.order(b0, "buy", 500, 30, colour="solar"), b0)
    assert refused(env, iid, [wind, wants_solar], [pack_trade(0, 1, 500, 25)]).error_name == "MarketColourMismatch"
    only_s0 = env.sign(env.order(env.buyers[1], "buy", 500, 30, counterparty=s0.address), env.buyers[1])
    err = refused(env, iid, [solar, only_s0], [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketCounterpartyMismatch" and err.error_args["orderIndex"] == 1
    settle(env, iid, [wind, solar, wants_solar, only_s0], [pack_trade(1, 2, 500, 25), pack_trade(0, 3, 500, 25)])


def test_token_not_allowed_is_refused(env):
    iid = env.current_interval()
    other = deploy(env.w3, env.admin, "MarketTestToken", "X", "X", record=False)
    orders = _one_pair(env, sell={"payment_token": other.address}, buy={"payment_token": other.address})
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketPaymentTokenNotAllowed" and err.error_args["token"] == other.address



def test_zero_address_payment_token_is_refused_by_name(env):
    """address(0) is never an allowed token; the first order's token is checked even when it is 0
    (it used to slip past the "same token as the previous order" short-cut and fail later, unnamed)."""
    iid = env.current_interval()
    zero = "0x" + "00" * 20
    orders = _one_pair(env, sell={"payment_token": zero}, buy={"payment_token": zero})
    err = refused(env, iid, orders, [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketPaymentTokenNotAllowed" and int(err.error_args["token"], 16) == 0

def test_batch_too_big_is_refused(env):
    send(env.w3, env.admin, env.market.functions.setMaxBatchSize(1))
    iid = env.current_interval()
    err = refused(env, iid, _one_pair(env), [pack_trade(0, 1, 500, 25)])
    assert err.error_name == "MarketBatchTooLarge" and err.error_args == {"size": 2, "max": 1}


def test_parameters_only_by_parameter_role(env):
    with pytest.raises(TransactionFailed) as err:
        send(env.w3, env.keeper, env.market.functions.setPaymentToken(env.watt.address, True))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"


def test_erc1271_wallet_can_sell(env):
    owner = env.sellers[2]
    wallet = deploy(env.w3, env.admin, "MarketTestWallet", owner.address, record=False)
    send(env.w3, env.admin, env.watt.functions.mint(wallet.address, wh_to_watt(1000)))
    approve = env.watt.encode_abi("approve", args=[env.market.address, MAX])
    send(env.w3, owner, wallet.functions.execute(env.watt.address, approve))
    iid = env.current_interval()
    o = env.order(owner, "sell", 1000, 20)
    o = type(o)(**{**o.__dict__, "maker": wallet.address})
    digest = order_hash(o, env.chain_id, env.market.address)
    sig = owner.unsafe_sign_hash(digest).signature
    so = type(env.sign(env.order(env.buyers[0], "buy", 1, 1), env.buyers[0]))(o, sig, env.chain_id, env.market.address)
    bo = env.sign(env.order(env.buyers[0], "buy", 1000, 30), env.buyers[0])
    settle(env, iid, [so, bo], [pack_trade(0, 1, 1000, 25)])
    assert bal(env.token, wallet.address) == 25
    # a signature by someone else is refused for the wallet
    env2_iid = iid - 1
    o2 = type(o)(**{**o.__dict__, "interval_id": env2_iid})
    bad = env.buyers[1].unsafe_sign_hash(order_hash(o2, env.chain_id, env.market.address)).signature
    so2 = type(so)(o2, bad, env.chain_id, env.market.address)
    bo2 = env.sign(env.order(env.buyers[0], "buy", 1000, 30, iid=env2_iid), env.buyers[0])
    assert refused(env, env2_iid, [so2, bo2], [pack_trade(0, 1, 10, 25)]).error_name == "MarketInvalidSignature"


def test_hostile_token_returning_false_is_refused(env):
    send(env.w3, env.admin, env.token.functions.setMode(1))
    iid = env.current_interval()
    assert refused(env, iid, _one_pair(env), [pack_trade(0, 1, 500, 25)]).error_name == "SafeERC20FailedOperation"


def test_fee_on_transfer_token_is_refused_as_imbalanced(env):
    send(env.w3, env.admin, env.token.functions.setMode(2))
    iid = env.current_interval()
    s, b = env.sellers[0], env.buyers[0]
    orders = [env.sign(env.order(s, "sell", 1000, 2000), s), env.sign(env.order(b, "buy", 1000, 3000), b)]
    err = refused(env, iid, orders, [pack_trade(0, 1, 1000, 2500)])
    assert err.error_name == "MarketImbalancedBatch" and err.error_args["token"] == env.token.address
    assert err.error_args["expected"] == 2500 and err.error_args["actual"] == 2475


def test_reentrant_token_is_refused(env):
    iid = env.current_interval()
    orders = _one_pair(env)
    trades = [pack_trade(0, 1, 500, 25)]
    data = env.market.encode_abi("settle", args=[iid, [o.order.as_tuple() for o in orders],
                                                 [o.signature for o in orders], trades])
    send(env.w3, env.admin, env.token.functions.setReentry(env.market.address, data))
    send(env.w3, env.admin, env.token.functions.setMode(3))
    err = refused(env, iid, orders, trades)
    assert err.error_name == "ReentrancyGuardReentrantCall"
    assert env.market.functions.settledIntervals(iid).call() is False
    assert bal(env.token, env.buyers[0]) == MONEY


@pytest.mark.parametrize("callback", ["settle", "cancel"])
def test_erc1271_wallet_that_reenters_is_refused_and_changes_nothing(env, callback):
    """A hostile contract wallet whose isValidSignature calls back into the market (settle or
    cancelOrder): the market asks through a static call, so the re-entry fails, the wallet's order
    is refused by name and no balance moves."""
    wallet = deploy(env.w3, env.admin, "MarketReentrantWallet", env.market.address, record=False)
    send(env.w3, env.admin, env.watt.functions.mint(wallet.address, wh_to_watt(1000)))
    approve = env.watt.encode_abi("approve", args=[env.market.address, MAX])
    send(env.w3, env.admin, wallet.functions.execute(env.watt.address, approve))
    iid = env.current_interval()
    o = env.order(env.sellers[0], "sell", 1000, 20)
    o = type(o)(**{**o.__dict__, "maker": wallet.address})
    so = SignedOrder(o, b"\x01" * 65, env.chain_id, env.market.address)
    bo = env.sign(env.order(env.buyers[0], "buy", 1000, 30), env.buyers[0])
    if callback == "settle":
        data = env.market.encode_abi("settle", args=[iid, [so.order.as_tuple(), bo.order.as_tuple()],
                                                     [so.signature, bo.signature], [pack_trade(0, 1, 1000, 25)]])
    else:
        data = env.market.encode_abi("cancelOrder", args=[bo.order.as_tuple()])
    send(env.w3, env.admin, wallet.functions.setCallback(data))
    before = (bal(env.watt, wallet.address), bal(env.token, env.buyers[0]))
    err = refused(env, iid, [so, bo], [pack_trade(0, 1, 1000, 25)])
    assert err.error_name == "MarketInvalidSignature" and err.error_args["orderIndex"] == 0
    assert (bal(env.watt, wallet.address), bal(env.token, env.buyers[0])) == before
    assert not env.market.functions.settledIntervals(iid).call()
    assert not env.market.functions.cancelled(bo.hash).call()
