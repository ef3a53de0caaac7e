"""Gas of the token operations every other component builds on."""

from __future__ import annotations

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.tx import send


def run(ctx) -> dict[str, float]:
    w3, (admin, alice, bob) = ctx.w3, ctx.accounts[:3]
    watt = deploy(ctx.w3, admin, "WattToken", admin.address, record=False)
    tsl = deploy(ctx.w3, admin, "TeslaToken", alice.address, record=False)
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    send(w3, admin, watt.functions.grantRole(watt.functions.BURNER_ROLE().call(), admin.address))
    send(w3, admin, watt.functions.mint(alice.address, 10**18))  # warm the balance slot
    mint = send(w3, admin, watt.functions.mint(alice.address, 10**15))["gasUsed"]
    burn = send(w3, admin, watt.functions.burn(alice.address, 10**15))["gasUsed"]
    send(w3, alice, tsl.functions.transfer(bob.address, 1))
    transfer = send(w3, alice, tsl.functions.transfer(bob.address, 1))["gasUsed"]
    return {"watt_gas_mint": mint, "watt_gas_burn": burn, "tsl_gas_transfer": transfer}
