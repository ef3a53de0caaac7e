"""Gas of community-battery operations: deposit, withdraw (with its fee payment and loss burn),
fee payment with the 80/10/10 split over three owners, and an owner's claim."""

from __future__ import annotations

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.storage import deploy_storage, register_battery
from gridcoop_sdk.tx import send


def _mine_next_slot(w3) -> None:
    now = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_setNextBlockTimestamp", [(now // 900 + 1) * 900 + 1])


def run(ctx) -> dict[str, float]:
    w3 = ctx.w3
    admin, alice, o1, o2, o3, platform, marketing = ctx.accounts[:7]
    watt = deploy(w3, admin, "WattToken", admin.address, record=False)
    tsl = deploy(w3, admin, "TeslaToken", admin.address, record=False)
    storage = deploy_storage(w3, admin, watt, tsl, platform_treasury=platform.address,
                             marketing=marketing.address, record=False)
    bid = register_battery(w3, admin, storage, meter_id="bench", capacity_wh=1_000_000, efficiency_bps=9_000,
                           fee_rate=10**15 + 3, owners=[(o1.address, 3), (o2.address, 5), (o3.address, 7)])
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    send(w3, admin, watt.functions.mint(alice.address, 10**24))
    send(w3, admin, tsl.functions.transfer(alice.address, 10**24))
    send(w3, alice, watt.functions.approve(storage.address, 2**255))
    send(w3, alice, tsl.functions.approve(storage.address, 2**255))

    # Warm the payees' balances once so the figures are for a running system.
    send(w3, alice, storage.functions.deposit(bid, 1_000, b"solar".ljust(32, b"\0")))
    send(w3, alice, storage.functions.payFees(bid))

    _mine_next_slot(w3)
    deposit = send(w3, alice, storage.functions.deposit(bid, 1_000, b"solar".ljust(32, b"\0")), gas=1_000_000)
    _mine_next_slot(w3)
    pay = send(w3, alice, storage.functions.payFees(bid), gas=1_000_000)
    _mine_next_slot(w3)
    withdraw = send(w3, alice, storage.functions.withdraw(bid, 500), gas=1_000_000)
    claim = send(w3, o2, storage.functions.claim(), gas=1_000_000)
    return {
        "storage_gas_deposit": deposit["gasUsed"],
        "storage_gas_pay_fees": pay["gasUsed"],
        "storage_gas_withdraw": withdraw["gasUsed"],
        "storage_gas_claim": claim["gasUsed"],
    }
