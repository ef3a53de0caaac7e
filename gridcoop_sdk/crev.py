"""C-REV (carbon-reduction value): deploy, read lot balances, retire, and trace a certificate.

1 C-REV = 1 t-CO2e avoided, 18 decimals. The token keeps every holder's balance per *lot* (one lot
per certified meter and interval), so a retirement certificate names exactly which lots it burnt,
and the ``LotTransferred`` events give every move of those lots in between.

Intervals are named by their **start time** (Unix seconds) and length, as the meter registry passes
them to C-REV, whatever interval length the DAO set (60 … 86,400 s): a lot's key is
``(meter id, interval start)`` (:func:`lot_of`), and the emission-factor schedule is keyed by the
start time from which a factor applies. ``LotInfo.interval_id`` / ``IssuedLot.interval_id`` give
the 15-minute interval id (start // 900) that reports use::

    crev = deploy_crev(w3, deployer, issuer=registry, factor_g_per_kwh=450, minimum_retirement=10**15)
    cert = retire(w3, alice, crev, 10**16, beneficiary_name="Kyoto bakery", message="May 2026")
    print(format_trace(trace(w3, crev, cert)))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from . import deployments
from .contracts import at, deploy
from .exceptions import GridcoopError
from .tx import call, send
from .units import INTERVAL_SECONDS

log = logging.getLogger("gridcoop.crev")

CREV_DECIMALS = 18
UNITS_PER_TONNE = 10**CREV_DECIMALS
UNITS_PER_WH_G_PER_KWH = 10**9
"""Base units per (Wh × g-CO2/kWh): 1e18 / (1000 Wh/kWh × 1e6 g/t); exact, so no rounding."""
ZERO_ADDRESS = "0x" + "00" * 20


class CrevError(GridcoopError):
    """Root of the C-REV SDK's errors."""


class CertificateNotFound(CrevError, LookupError):
    """No retirement certificate with that id exists."""


class InvalidRetirement(CrevError, ValueError):
    """A retirement request is malformed (checked before any transaction is sent)."""


# ------------------------------------------------------------------------------ units


def crev_amount(self_consumed_wh: int, factor_g_per_kwh: int) -> int:
    """C-REV base units for ``self_consumed_wh`` at ``factor_g_per_kwh`` (same formula as the contract:
    ``wh * factor * 1e18 / (1000 * 1e6)``, which is exact)."""
    if self_consumed_wh < 0 or factor_g_per_kwh < 0:
        raise ValueError("energy and factor must not be negative")
    return int(self_consumed_wh) * int(factor_g_per_kwh) * UNITS_PER_WH_G_PER_KWH


def parse_crev(text: str) -> int:
    """Parse ``"0.5"`` / ``"0.5t"`` (t-CO2e), ``"450kg"``, ``"12g"`` or ``"123units"`` into base units.

    Refuses negative amounts and fractions of a base unit with a ``ValueError`` saying why.
    """
    s = str(text).strip().replace(" ", "").lower()
    scale = Decimal(UNITS_PER_TONNE)
    for suffix, factor in (("units", Decimal(1)), ("kg", Decimal(10**15)), ("g", Decimal(10**12)),
                           ("t", Decimal(UNITS_PER_TONNE))):
        if s.endswith(suffix):
            s, scale = s[: -len(suffix)], factor
            break
    try:
        value = Decimal(s) * scale
    except InvalidOperation as exc:
        raise ValueError(f"not a C-REV amount: {text!r} (use e.g. 0.5, 0.5t, 450kg, 12g)") from exc
    if value < 0:
        raise ValueError(f"C-REV amount must not be negative: {text!r}")
    if value != value.to_integral_value():
        raise ValueError(f"C-REV amount is finer than one base unit (1e-18 t): {text!r}")
    return int(value)


def format_crev(units: int) -> str:
    """Base units → ``"0.045 t-CO2e"`` (exact, trailing zeros dropped)."""
    d = (Decimal(int(units)) / Decimal(UNITS_PER_TONNE)).normalize()
    text = format(d, "f")
    return f"{text} t-CO2e"


# ------------------------------------------------------------------------------ deploy / bind


@dataclass
class Crev:
    """A deployed C-REV token and its retirement-certificate NFT."""

    token: Contract
    certificate: Contract
    deploy_block: int

    @property
    def address(self) -> str:
        return self.token.address


def _record_name(region: str, contract: str) -> str:
    return f"{region}.{contract}"


def deploy_crev(
    w3: Web3,
    deployer: LocalAccount,
    *,
    issuer: str | None,
    factor_g_per_kwh: int,
    minimum_retirement: int,
    region: str = "default",
    admin: str | None = None,
    directory: Path | None = None,
) -> Crev:
    """Deploy C-REV (which deploys its certificate NFT) and record both as ``<region>.<Contract>``.

    ``issuer`` gets ``ISSUER_ROLE`` (the meter registry; ``None`` to grant it later), ``admin`` (default:
    the deployer) gets ``DEFAULT_ADMIN_ROLE`` and ``PARAMETER_ROLE``.
    """
    if factor_g_per_kwh < 0 or minimum_retirement < 0:
        raise ValueError("factor_g_per_kwh and minimum_retirement must not be negative")
    token = deploy(
        w3, deployer, "CarbonReductionValue", admin or deployer.address, issuer or ZERO_ADDRESS,
        int(factor_g_per_kwh), int(minimum_retirement), region,
        record_as=_record_name(region, "CarbonReductionValue"), directory=directory,
    )
    rec = deployments.load(w3.eth.chain_id, directory)[_record_name(region, "CarbonReductionValue")]
    cert_address = token.functions.certificate().call()
    deployments.record(w3.eth.chain_id, _record_name(region, "RetirementCertificate"), cert_address,
                       rec["block"], rec["tx"], directory)
    log.info("deployed C-REV for region %r at %s (certificate NFT %s)", region, token.address, cert_address)
    return Crev(token=token, certificate=at(w3, "RetirementCertificate", cert_address), deploy_block=rec["block"])


def load_crev(w3: Web3, address: str | None = None, *, region: str = "default",
              directory: Path | None = None) -> Crev:
    """Bind C-REV at ``address`` or at its recorded deployment ``<region>.CarbonReductionValue``."""
    deploy_block = 0
    data = deployments.load(w3.eth.chain_id, directory)
    if address is None:
        name = _record_name(region, "CarbonReductionValue")
        address = deployments.address_of(w3.eth.chain_id, name, directory)
        deploy_block = int(data[name].get("block", 0))
    else:  # a recorded deployment at this address tells where to start scanning logs
        for rec in data.values():
            if str(rec.get("address", "")).lower() == address.lower():
                deploy_block = int(rec.get("block", 0))
                break
    token = at(w3, "CarbonReductionValue", address)
    cert = at(w3, "RetirementCertificate", call(token.functions.certificate()))
    return Crev(token=token, certificate=cert, deploy_block=deploy_block)


# ------------------------------------------------------------------------------ reads


class _ReadingInterval:
    """The interval of the reading a lot was issued for: ``interval_start`` and ``interval_seconds``."""

    interval_start: int
    interval_seconds: int

    @property
    def interval_end(self) -> int:
        return self.interval_start + self.interval_seconds

    @property
    def interval_id(self) -> int:
        """The 15-minute interval id of the reading's start (``start // 900``), as reports use it."""
        return self.interval_start // INTERVAL_SECONDS


@dataclass(frozen=True)
class LotInfo(_ReadingInterval):
    """A lot's issuance record: the reading of ``meter_id`` for the interval
    [``interval_start``, ``interval_start + interval_seconds``) (Unix seconds)."""

    lot_id: int
    meter_id: bytes
    interval_start: int
    interval_seconds: int
    owner: str
    self_consumed_wh: int
    factor_g_per_kwh: int
    amount: int


@dataclass(frozen=True)
class LotHolding:
    lot: LotInfo
    amount: int


@dataclass(frozen=True)
class Balance:
    """A holder's C-REV: the total and its split by lot (in the FIFO order transfers spend them)."""

    holder: str
    total: int
    lots: list[LotHolding]


def lot_info(crev: Crev, lot_id: int) -> LotInfo:
    r = call(crev.token.functions.lot(int(lot_id)))
    return LotInfo(int(lot_id), bytes(r[0]), int(r[1]), int(r[2]), r[3], int(r[4]), int(r[5]), int(r[6]))


def lot_of(crev: Crev, meter_id: bytes, interval_start: int) -> int:
    """The lot issued for ``meter_id``'s reading of the interval starting at ``interval_start``
    (Unix seconds, whatever the interval's length), 0 if none."""
    return int(call(crev.token.functions.lotOf(bytes(meter_id), int(interval_start))))


def balance(w3: Web3, crev: Crev, holder: str) -> Balance:  # noqa: ARG001 - w3 kept for a uniform API
    """``holder``'s C-REV balance and its lots. Checks Σ lots == balanceOf (the token's invariant)."""
    holder = Web3.to_checksum_address(holder)
    total = call(crev.token.functions.balanceOf(holder))
    ids, amounts = call(crev.token.functions.lotsOf(holder))
    lots = [LotHolding(lot_info(crev, i), int(a)) for i, a in zip(ids, amounts, strict=True)]
    if sum(h.amount for h in lots) != total:
        raise CrevError(f"lot balances of {holder} do not add up to its balance {total}")
    return Balance(holder, int(total), lots)


def emission_factor_schedule(crev: Crev) -> list[tuple[int, int]]:
    """``[(effective_from, g-CO2/kWh), …]`` oldest first; a factor applies to readings of intervals
    that start at or after ``effective_from`` (Unix seconds; 0 for the initial factor)."""
    return [(int(e[0]), int(e[1])) for e in call(crev.token.functions.factorSchedule())]


# ------------------------------------------------------------------------------ LotIssued logs

LOT_ISSUED_SIGNATURE = (
    "LotIssued(uint256 indexed lotId, bytes32 indexed meterId, uint64 indexed intervalStart, "
    "uint32 intervalSeconds, address owner, uint256 amount)"
)
"""C-REV's issuance event. Until issue 19 it was ``LotIssued(…, uint64 indexed intervalId, address owner,
uint256 amount)`` with ``intervalId = start / 900``; the signature changed with the meaning, so an old
decoder finds no logs rather than misreading start times as ids."""

_LOT_ISSUED_ABI: dict[str, Any] = {
    "type": "event", "name": "LotIssued", "anonymous": False,
    "inputs": [
        {"type": "uint256", "name": "lotId", "indexed": True},
        {"type": "bytes32", "name": "meterId", "indexed": True},
        {"type": "uint64", "name": "intervalStart", "indexed": True},
        {"type": "uint32", "name": "intervalSeconds", "indexed": False},
        {"type": "address", "name": "owner", "indexed": False},
        {"type": "uint256", "name": "amount", "indexed": False},
    ],
}


@dataclass(frozen=True)
class IssuedLot(_ReadingInterval):
    """One ``LotIssued`` log: lot ``lot_id`` of ``amount`` base units issued to ``owner`` for the
    reading of ``meter_id`` over [``interval_start``, ``interval_start + interval_seconds``)."""

    lot_id: int
    meter_id: bytes
    interval_start: int
    interval_seconds: int
    owner: str
    amount: int
    block: int
    tx: str
    log_index: int


def issued_lots(w3: Web3, crev: str | Crev, *, from_block: int = 0, to_block: int | str = "latest",
                lot_id: int | None = None) -> list[IssuedLot]:
    """Every ``LotIssued`` log of C-REV at ``crev`` (an address or a :class:`Crev`), oldest first,
    decoded from the event's signature (no compiled artifacts needed). ``lot_id`` limits it to one lot."""
    address = crev.token.address if isinstance(crev, Crev) else crev
    topics: list[Any] = ["0x" + event_abi_to_log_topic(_LOT_ISSUED_ABI).hex()]
    if lot_id is not None:
        topics.append("0x" + int(lot_id).to_bytes(32, "big").hex())
    raw = w3.eth.get_logs({"address": Web3.to_checksum_address(address), "topics": topics,
                           "fromBlock": from_block, "toBlock": to_block})
    event = w3.eth.contract(abi=[_LOT_ISSUED_ABI]).events.LotIssued()
    out = []
    for log_entry in raw:
        ev = event.process_log(log_entry)
        a = ev["args"]
        out.append(IssuedLot(
            lot_id=int(a["lotId"]), meter_id=bytes(a["meterId"]), interval_start=int(a["intervalStart"]),
            interval_seconds=int(a["intervalSeconds"]), owner=a["owner"], amount=int(a["amount"]),
            block=int(ev["blockNumber"]), tx=_tx_hex(ev["transactionHash"]), log_index=int(ev["logIndex"]),
        ))
    out.sort(key=lambda e: (e.block, e.log_index))
    return out


# ------------------------------------------------------------------------------ writes


def retire(
    w3: Web3,
    account: LocalAccount,
    crev: Crev,
    amount: int,
    *,
    beneficiary: str | None = None,
    beneficiary_name: str = "",
    message: str = "",
    period_start: int = 0,
    period_end: int | None = None,
    holder: str | None = None,
) -> int:
    """Retire ``amount`` base units and return the certificate id.

    Without ``holder`` the sender's own C-REV is retired; with ``holder`` the sender retires the
    holder's C-REV through its ERC-20 allowance (``retireFrom``), and the certificate goes to the
    holder. The message and beneficiary name are public on chain forever.
    """
    if amount <= 0:
        raise InvalidRetirement(f"amount must be positive, got {amount}")
    if not beneficiary and not beneficiary_name:
        raise InvalidRetirement("name a beneficiary: an address, a name, or both")
    period_end = period_start if period_end is None else period_end
    if period_end < period_start:
        raise InvalidRetirement(f"consumption period ends ({period_end}) before it starts ({period_start})")
    minimum = call(crev.token.functions.minimumRetirement())
    if amount < minimum:
        raise InvalidRetirement(
            f"amount {format_crev(amount)} is below the minimum retirement {format_crev(minimum)}"
        )
    ben = Web3.to_checksum_address(beneficiary) if beneficiary else ZERO_ADDRESS
    if holder is None:
        fn = crev.token.functions.retire(int(amount), ben, beneficiary_name, message, int(period_start),
                                         int(period_end))
    else:
        fn = crev.token.functions.retireFrom(Web3.to_checksum_address(holder), int(amount), ben,
                                             beneficiary_name, message, int(period_start), int(period_end))
    receipt = send(w3, account, fn)
    events = crev.token.events.Retired().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise CrevError(f"retirement mined in block {receipt['blockNumber']} but no Retired event found")
    cert_id = int(events[0]["args"]["certificateId"])
    log.info("retired %s for %s as certificate #%d", format_crev(amount),
             beneficiary_name or ben, cert_id)
    return cert_id


def set_emission_factor(w3: Web3, account: LocalAccount, crev: Crev, factor_g_per_kwh: int, *,
                        effective_from: int | None = None,
                        effective_from_interval: int | None = None) -> dict[str, Any]:
    """Schedule a new factor (PARAMETER_ROLE) for readings of intervals that start at or after
    ``effective_from`` (Unix seconds, at least ``FACTOR_LEAD_SECONDS`` = 900 s from now), or after
    the 15-minute interval id ``effective_from_interval`` starts (``id * 900``); without either, for
    intervals starting 900 s from now on."""
    if effective_from is not None and effective_from_interval is not None:
        raise ValueError("give effective_from (Unix seconds) or effective_from_interval (id), not both")
    if effective_from_interval is not None:
        effective_from = int(effective_from_interval) * INTERVAL_SECONDS
    if effective_from is None:
        fn = crev.token.functions.setEmissionFactor(int(factor_g_per_kwh))
    else:
        fn = crev.token.functions.scheduleEmissionFactor(int(factor_g_per_kwh), int(effective_from))
    return send(w3, account, fn)


# ------------------------------------------------------------------------------ trace


@dataclass(frozen=True)
class TraceLot:
    """One lot a certificate retired: its issuance and how much of it the certificate burnt."""

    info: LotInfo
    retired_amount: int
    issued_block: int
    issued_tx: str


@dataclass(frozen=True)
class TraceTransfer:
    lot_id: int
    sender: str
    recipient: str
    amount: int
    block: int
    tx: str
    log_index: int


@dataclass(frozen=True)
class TraceRetirement:
    certificate_id: int
    holder: str
    beneficiary: str
    beneficiary_name: str
    message: str
    amount: int
    period_start: int
    period_end: int
    retired_by: str
    retired_at: int
    block: int
    tx: str


@dataclass
class Trace:
    """Where a certificate's value came from: lots (meter, interval), the transfers of those lots
    that led to the retiring holder, and the retirement itself."""

    retirement: TraceRetirement
    lots: list[TraceLot]
    transfers: list[TraceTransfer] = field(default_factory=list)

    @property
    def holders(self) -> list[str]:
        """Every account the retired lots passed through, in order of first appearance."""
        seen: list[str] = []
        for t in self.lots:
            if t.info.owner not in seen:
                seen.append(t.info.owner)
        for tr in self.transfers:
            for a in (tr.sender, tr.recipient):
                if a not in seen:
                    seen.append(a)
        return seen


def _tx_hex(h: Any) -> str:
    return "0x" + bytes(h).hex()


def trace(w3: Web3, crev: Crev, certificate_id: int) -> Trace:
    """Reconstruct the trail of certificate ``certificate_id`` from the chain.

    Lots and the amount taken from each come from the token's own record (``certificateLots``), so
    they are exact. Transfers are the ``LotTransferred`` events of those lots, before the retirement,
    that brought the lot (directly or through intermediaries) to the retiring holder; within one lot
    units are interchangeable, so the trail is exact to the lot.
    """
    token = crev.token
    cid = int(certificate_id)
    ids, amounts = call(token.functions.certificateLots(cid))
    if not ids:
        raise CertificateNotFound(f"no retirement certificate #{cid} on C-REV {token.address}")
    from_block = crev.deploy_block
    ret_logs = token.events.Retired().get_logs(argument_filters={"certificateId": cid}, from_block=from_block)
    if not ret_logs:
        raise CertificateNotFound(f"certificate #{cid} has lots but no Retired event after block {from_block}")
    ev = ret_logs[0]
    a = ev["args"]
    retirement = TraceRetirement(
        certificate_id=cid, holder=a["holder"], beneficiary=a["beneficiary"],
        beneficiary_name=a["beneficiaryName"], message=a["message"], amount=int(a["amount"]),
        period_start=int(a["periodStart"]), period_end=int(a["periodEnd"]), retired_by=a["retiredBy"],
        retired_at=int(w3.eth.get_block(ev["blockNumber"])["timestamp"]),
        block=int(ev["blockNumber"]), tx=_tx_hex(ev["transactionHash"]),
    )
    ret_pos = (ev["blockNumber"], ev["logIndex"])

    lots: list[TraceLot] = []
    transfers: list[TraceTransfer] = []
    for lot_id, amount in zip(ids, amounts, strict=True):
        info = lot_info(crev, lot_id)
        issued = issued_lots(w3, crev, from_block=from_block, to_block=ev["blockNumber"], lot_id=int(lot_id))
        ib, itx = (issued[0].block, issued[0].tx) if issued else (0, "")
        lots.append(TraceLot(info, int(amount), ib, itx))
        moves = [
            m for m in token.events.LotTransferred().get_logs(
                argument_filters={"lotId": int(lot_id)}, from_block=from_block, to_block=ev["blockNumber"])
            if (m["blockNumber"], m["logIndex"]) < ret_pos
        ]
        moves.sort(key=lambda m: (m["blockNumber"], m["logIndex"]))
        # Walk backwards from the retiring holder: keep the moves into an account that (later)
        # passed this lot on towards the holder.
        wanted = {retirement.holder}
        keep = []
        for m in reversed(moves):
            if m["args"]["to"] in wanted and m["args"]["from"] != m["args"]["to"]:
                keep.append(m)
                wanted.add(m["args"]["from"])
        for m in reversed(keep):
            transfers.append(TraceTransfer(int(lot_id), m["args"]["from"], m["args"]["to"],
                                           int(m["args"]["amount"]), int(m["blockNumber"]),
                                           _tx_hex(m["transactionHash"]), int(m["logIndex"])))
    transfers.sort(key=lambda t: (t.block, t.log_index))
    if sum(t.retired_amount for t in lots) != retirement.amount:
        raise CrevError(f"certificate #{cid}: lots sum to {sum(t.retired_amount for t in lots)}, "
                        f"retirement says {retirement.amount}")
    return Trace(retirement=retirement, lots=lots, transfers=transfers)


def _iso(ts: int) -> str:
    try:
        return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # past year 9999: uint64 seconds can hold it
        return f"unix {int(ts)}"


def _duration(seconds: int) -> str:
    """ISO 8601 duration: 900 → ``PT15M``, 1800 → ``PT30M``, 86400 → ``PT24H``, 1000 → ``PT16M40S``."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    text = "".join(f"{v}{u}" for v, u in ((h, "H"), (m, "M"), (s, "S")) if v)
    return "PT" + (text or "0S")


def format_interval(start: int, seconds: int) -> str:
    """An interval as ISO 8601 start/duration: ``2027-01-15T08:00:00Z/PT30M``."""
    return f"{_iso(start)}/{_duration(seconds)}"


def format_trace(t: Trace) -> str:
    """Human-readable trail: lots, transfers, retirement."""
    r = t.retirement
    out = [f"certificate #{r.certificate_id}: {format_crev(r.amount)} retired by {r.holder}"]
    out.append(f"  beneficiary: {r.beneficiary_name or '-'} {r.beneficiary if r.beneficiary != ZERO_ADDRESS else ''}"
               .rstrip())
    out.append(f"  message: {r.message!r}")
    out.append(f"  consumption period: {_iso(r.period_start)} .. {_iso(r.period_end)}; retired at "
               f"{_iso(r.retired_at)} (block {r.block}, tx {r.tx})")
    out.append(f"lots ({len(t.lots)}):")
    for lot in t.lots:
        i = lot.info
        meter = "0x" + i.meter_id.hex()
        out.append(f"  lot {i.lot_id}: meter {meter} interval {format_interval(i.interval_start, i.interval_seconds)}"
                   f" issued to {i.owner}: "
                   f"{i.self_consumed_wh} Wh x {i.factor_g_per_kwh} g/kWh = {format_crev(i.amount)} "
                   f"(block {lot.issued_block}); retired here {format_crev(lot.retired_amount)}")
    out.append(f"transfers ({len(t.transfers)}):")
    for tr in t.transfers:
        out.append(f"  block {tr.block}: lot {tr.lot_id} {tr.sender} -> {tr.recipient} {format_crev(tr.amount)}"
                   f" (tx {tr.tx})")
    return "\n".join(out)
