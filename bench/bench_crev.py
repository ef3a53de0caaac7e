"""Gas of C-REV: issuance (first lot of a holder / repeat), transfers and retirements by lots touched."""

from __future__ import annotations

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.tx import send


def run(ctx) -> dict[str, float]:
    w3, (admin, alice, bob, carol) = ctx.w3, ctx.accounts[:4]
    token = deploy(w3, admin, "CarbonReductionValue", admin.address, "0x" + "00" * 20, 450, 1, "bench",
                   record=False)
    issuer = deploy(w3, admin, "StandInMeterIssuer", token.address, record=False)
    send(w3, admin, token.functions.grantRole(token.functions.ISSUER_ROLE().call(), issuer.address))
    meter = b"M".ljust(32, b"\0")
    send(w3, admin, issuer.functions.setCertified(meter, True))
    base = send(w3, admin, issuer.functions.submit(b"X".ljust(32, b"\0"), alice.address, 1, 1000))["gasUsed"]

    def issue(owner, interval):
        return send(w3, admin, issuer.functions.submit(meter, owner, interval, 1000))["gasUsed"] - base

    out: dict[str, float] = {}
    # The stand-in's own cost (uncertified: no hook call) is subtracted, leaving the hook's cost.
    out["crev_gas_issue_first"] = issue(alice.address, 1)
    out["crev_gas_issue_repeat"] = issue(alice.address, 2)
    for i in range(3, 12):
        issue(alice.address, i)  # alice holds 11 lots of 4.5e14 each
    lot = 450 * 10**12
    out["crev_gas_transfer_1lot"] = send(w3, alice, token.functions.transfer(bob.address, lot // 2))["gasUsed"]
    out["crev_gas_transfer_5lots"] = send(w3, alice, token.functions.transfer(bob.address, 4 * lot))["gasUsed"]
    out["crev_gas_transfer_lots_explicit_1"] = send(
        w3, alice, token.functions.transferLots(carol.address, [11], [lot]))["gasUsed"]

    def retire(who, amount):
        return send(w3, who, token.functions.retire(amount, who.address, "bench", "gas", 0, 1))["gasUsed"]

    out["crev_gas_retire_1lot"] = retire(alice, lot // 2)
    out["crev_gas_retire_5lots"] = retire(alice, 4 * lot + lot // 2)
    return {k: float(v) for k, v in out.items()}
