"""Carbon view per member and interval: renewable share, CO2, average emission factor and the
C-REV a member may claim — computed from chain logs, with each tonne of C-REV claimed once.

The rule (issue 19, stated in docs/crev.md "Who may claim a reduction"):

- A member reports a carbon reduction only for C-REV it **holds** or that was **retired for it**.
  A retirement is claimed by its beneficiary address when it names one, else by the holder whose
  C-REV was burnt (the certificate's owner) — never by an operator who only executed
  ``retireFrom``, and never by both holder and beneficiary.
- A producer's certified self-consumption counts as renewable (zero CO2) only in proportion to its
  lot's C-REV the producer still holds or that was retired for it. The rest of that energy's
  attribute went to someone else: it is reported as *passed on* and carries exactly the CO2 the
  C-REV stands for (Wh × the lot's factor), so the holder or retiring buyer claims it and the
  producer does not.
- C-REV bought from others is a reduction when it is retired (in the interval of the retirement),
  lowering ``net_co2_g``; holding it alone changes no interval's figures.
- Renewable self-consumption of a meter with no C-REV lot (not certified) stays renewable: no
  certificate exists that anyone else could claim. A reading with a lot is renewable whatever the
  colour map says (the registry issued the lot because the meter is certified renewable).
- Colours come from the chain (``MeterRegistered`` for meters, the ``Trade`` event's colour when it
  has one) or from a map the caller gives; the grid participant's sales are ``grid``; anything else
  is ``unknown`` — never renewable.

The pure part (:func:`carbon_intervals`) takes records; :func:`load_readings`, :func:`load_trades`,
:func:`load_ledger` read them from logs by event signature (no artifacts needed); :class:`CarbonFeed`
follows a chain and yields each member interval as it settles (``gridcoop crev report --live``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from eth_utils import event_abi_to_log_topic
from web3 import Web3

from .crev import LOT_ISSUED_SIGNATURE
from .units import INTERVAL_SECONDS

UNKNOWN = "unknown"
GRID = "grid"
DEFAULT_RENEWABLE = ("solar", "wind", "hydro", "biomass", "geothermal")
UNITS_PER_GRAM = 10**12
"""C-REV base units per g-CO2e (1 C-REV = 1 t = 10**6 g = 10**18 units)."""
UNITS_PER_WH_G_PER_KWH = 10**9
ZERO_ADDRESS = "0x" + "00" * 20

READING_ACCEPTED = (
    "ReadingAccepted(bytes32 indexed meterId, uint64 indexed sequence, address indexed owner, "
    "uint64 intervalStart, uint64 generationWh, uint64 consumptionWh, uint64 exportWh, uint64 importWh, "
    "uint64 selfConsumedWh, uint32 frequencyMHz)"
)
METER_REGISTERED = (
    "MeterRegistered(bytes32 indexed meterId, address indexed owner, address signer, uint8 kind, "
    "bytes32 colour, bool certified, uint32 ratedPowerW, string location)"
)
TRADE = (
    "Trade(uint64 indexed intervalId, address indexed seller, address indexed buyer, uint256 wh, "
    "uint256 pricePerKwh, address paymentToken, bytes32 tradeId)"
)
TRADE_WITH_COLOUR = (
    "Trade(uint64 indexed intervalId, address indexed seller, address indexed buyer, uint256 wh, "
    "uint256 pricePerKwh, address paymentToken, bytes32 tradeId, bytes32 colour)"
)
GRID_SET = "GridSet(address account, address token, uint256 feedInPrice, uint256 retailPrice, address debtLedger)"
LOT_ISSUED = LOT_ISSUED_SIGNATURE  # lots keyed by interval start (Unix s) and length (issue 19 part 4)
LOT_TRANSFERRED = "LotTransferred(uint256 indexed lotId, address indexed from, address indexed to, uint256 amount)"
LOT_RETIRED = "LotRetired(uint256 indexed certificateId, uint256 indexed lotId, address indexed holder, uint256 amount)"
RETIRED = (
    "Retired(uint256 indexed certificateId, address indexed holder, address indexed beneficiary, uint256 amount, "
    "string beneficiaryName, string message, uint64 periodStart, uint64 periodEnd, address retiredBy)"
)


# ------------------------------------------------------------------------------ interval units
# The one place that knows how each contract writes an interval. Report rows are keyed by the
# 900-second interval id (Unix start // 900) whatever the registry's interval length.


def interval_of_time(unix_seconds: int) -> int:
    """The 900-second interval id containing ``unix_seconds``."""
    return int(unix_seconds) // INTERVAL_SECONDS


def interval_of_reading(interval_start: int) -> int:
    """MeterRegistry ``ReadingAccepted.intervalStart`` (Unix seconds) → interval id."""
    return interval_of_time(interval_start)


def interval_of_lot(interval_start: int) -> int:
    """C-REV ``LotIssued.intervalStart`` (Unix seconds, whatever the interval's length) → interval id."""
    return interval_of_time(interval_start)


def interval_of_factor(effective_from: int) -> int:
    """C-REV ``factorSchedule`` entry (Unix seconds; a factor applies to intervals *starting* at or
    after it) → the first 900-second interval id it applies to."""
    return -(-int(effective_from) // INTERVAL_SECONDS)


def interval_start(interval_id: int) -> int:
    return int(interval_id) * INTERVAL_SECONDS


def colour_text(raw: bytes | str | None) -> str:
    """A ``bytes32`` colour → its text (``b"solar\\0…"`` → ``"solar"``); empty or missing → ``unknown``."""
    if raw is None:
        return UNKNOWN
    if isinstance(raw, str):
        return raw.strip().lower() or UNKNOWN
    text = bytes(raw).rstrip(b"\0").decode("utf-8", "replace").strip().lower()
    return text or UNKNOWN


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Reading:
    owner: str
    interval_id: int
    generation_wh: int
    consumption_wh: int
    export_wh: int
    import_wh: int
    self_consumed_wh: int
    colour: str = UNKNOWN
    meter_id: bytes | None = None


@dataclass(frozen=True)
class Trade:
    interval_id: int
    seller: str
    buyer: str
    wh: int
    seller_colour: str = UNKNOWN


@dataclass(frozen=True)
class Lot:
    lot_id: int
    meter_id: bytes
    interval_id: int
    owner: str
    amount: int


@dataclass(frozen=True)
class Retirement:
    certificate_id: int
    holder: str
    beneficiary: str
    interval_id: int
    amount: int
    lots: tuple[tuple[int, int], ...] = ()

    @property
    def claimant(self) -> str:
        """Who may report the reduction: the beneficiary address if named, else the holder."""
        return self.beneficiary if self.beneficiary and self.beneficiary != ZERO_ADDRESS else self.holder


@dataclass
class CrevLedger:
    """Lots, who holds what of each, and the retirements — replayed from C-REV's events."""

    lots: dict[int, Lot] = field(default_factory=dict)
    held: dict[int, dict[str, int]] = field(default_factory=dict)
    retirements: list[Retirement] = field(default_factory=list)
    retired_for: dict[tuple[int, str], int] = field(default_factory=dict)
    """``{(lot id, claimant): units}`` retired with that claimant."""

    def issue(self, lot: Lot) -> None:
        self.lots[lot.lot_id] = lot
        self.held.setdefault(lot.lot_id, {})
        self.held[lot.lot_id][lot.owner] = self.held[lot.lot_id].get(lot.owner, 0) + lot.amount

    def move(self, lot_id: int, sender: str, recipient: str, amount: int) -> None:
        h = self.held.setdefault(lot_id, {})
        h[sender] = h.get(sender, 0) - amount
        h[recipient] = h.get(recipient, 0) + amount

    def retire(self, r: Retirement) -> None:
        for lot_id, amount in r.lots:
            h = self.held.setdefault(lot_id, {})
            h[r.holder] = h.get(r.holder, 0) - amount
            key = (lot_id, r.claimant)
            self.retired_for[key] = self.retired_for.get(key, 0) + amount
        self.retirements.append(r)

    def claimed(self, lot_id: int, member: str) -> int:
        """Units of ``lot_id`` that ``member`` may claim: held by it plus retired for it."""
        return self.held.get(lot_id, {}).get(member, 0) + self.retired_for.get((lot_id, member), 0)


# ------------------------------------------------------------------------------ the view


@dataclass(frozen=True)
class CarbonInterval:
    """One member's interval. Energy in Wh; CO2 in g; C-REV in base units (1e18 = 1 t-CO2e)."""

    member: str
    interval_id: int
    demand_wh: int = 0
    generation_wh: int = 0
    import_wh: int = 0
    self_consumed_wh: int = 0
    """Metered self-consumption of renewable-coloured meters."""
    claimed_self_wh: float = 0.0
    """Of that, what the member may count as renewable (C-REV kept, or no C-REV lot)."""
    passed_on_wh: float = 0.0
    """Of that, energy whose C-REV went to another holder or was retired for someone else."""
    bought_wh: int = 0
    renewable_bought_wh: int = 0
    unknown_bought_wh: int = 0
    grid_wh: int = 0
    renewable_ratio: float = math.nan
    co2_g: float = 0.0
    avg_emission_factor_g_per_kwh: float = math.nan
    crev_earned: int = 0
    """C-REV issued to the member for this interval's self-consumption."""
    crev_kept: int = 0
    """Of that, held by the member or retired for it (its claim on its own lots)."""
    crev_retired: int = 0
    """C-REV retired in this interval with the member as claimant (beneficiary, else holder)."""
    crev_claimed: int = 0
    """The reduction the member reports in this interval: ``crev_kept`` + retired C-REV of others' lots."""
    net_co2_g: float = 0.0
    """``co2_g`` less the retired C-REV of others' lots claimed in this interval."""

    @property
    def renewable_wh(self) -> float:
        return self.claimed_self_wh + self.renewable_bought_wh


@dataclass(frozen=True)
class Factors:
    """Emission factors (g-CO2/kWh): the grid's (a number, or a function of the interval id, e.g. C-REV's
    schedule), that of non-renewable P2P energy (default: the grid's), and the factor for C-REV earned
    when no ledger is given."""

    grid: float | Callable[[int], float]
    other: float | Callable[[int], float] | None = None
    crev: float = 0.0
    renewable_colours: tuple[str, ...] = DEFAULT_RENEWABLE

    def grid_at(self, interval_id: int) -> float:
        return float(self.grid(interval_id) if callable(self.grid) else self.grid)

    def other_at(self, interval_id: int) -> float:
        if self.other is None:
            return self.grid_at(interval_id)
        return float(self.other(interval_id) if callable(self.other) else self.other)

    def is_renewable(self, colour: str) -> bool:
        return str(colour).lower() in {c.lower() for c in self.renewable_colours}


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def carbon_intervals(readings: Iterable[Reading], trades: Iterable[Trade], factors: Factors,
                     ledger: CrevLedger | None = None, *, members: Iterable[str] | None = None) -> list[CarbonInterval]:
    """One :class:`CarbonInterval` per (member, interval) that has readings, purchases, C-REV lots or
    claimed retirements, sorted by member and interval. ``members`` limits the output.

    Without a ``ledger`` every renewable self-consumption is claimed and C-REV earned is
    self-consumed × ``factors.crev`` (no C-REV data to say otherwise).
    """
    keep = {m for m in members} if members is not None else None
    acc: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    lot_keys: set[tuple[bytes, int]] = set()
    lots_by_owner: dict[tuple[str, int], list[Lot]] = defaultdict(list)
    retired_by_claim: dict[tuple[str, int], list[Retirement]] = defaultdict(list)
    if ledger is not None:
        for lot in ledger.lots.values():
            lot_keys.add((bytes(lot.meter_id), lot.interval_id))
            lots_by_owner[(lot.owner, lot.interval_id)].append(lot)
        for ret in ledger.retirements:
            retired_by_claim[(ret.claimant, ret.interval_id)].append(ret)

    for r in readings:
        a = acc[(r.owner, r.interval_id)]
        a["demand_wh"] += r.consumption_wh
        a["generation_wh"] += r.generation_wh
        a["import_wh"] += r.import_wh
        has_lot = r.meter_id is not None and (bytes(r.meter_id), r.interval_id) in lot_keys
        if has_lot or factors.is_renewable(r.colour):  # a lot: the registry found it certified renewable
            a["self_consumed_wh"] += r.self_consumed_wh
            certified = ledger is not None and (r.meter_id is None or has_lot)
            a["certified_self_wh"] += r.self_consumed_wh if certified else 0
    for t in trades:
        a = acc[(t.buyer, t.interval_id)]
        a["bought_wh"] += t.wh
        colour = str(t.seller_colour).lower()
        if factors.is_renewable(colour):
            a["renewable_bought_wh"] += t.wh
        elif colour == UNKNOWN:
            a["unknown_bought_wh"] += t.wh
    if ledger is not None:
        for (owner, iid) in lots_by_owner:
            acc[(owner, iid)]  # noqa: B018 - a lot without a reading still gets its row
        for key in retired_by_claim:
            acc[key]  # noqa: B018

    out: list[CarbonInterval] = []
    for (member, iid), a in sorted(acc.items()):
        if keep is not None and member not in keep:
            continue
        self_wh = a["self_consumed_wh"]
        earned = kept = 0
        passed_on_wh = Fraction(0)
        passed_on_g = Fraction(0)
        if ledger is None:
            earned = kept = self_wh * int(round(factors.crev)) * UNITS_PER_WH_G_PER_KWH
        else:
            lots = lots_by_owner.get((member, iid), [])
            earned = sum(lot.amount for lot in lots)
            kept = sum(min(lot.amount, max(0, ledger.claimed(lot.lot_id, member))) for lot in lots)
            if earned:
                passed_on_wh = Fraction(a["certified_self_wh"]) * (earned - kept) / earned
            passed_on_g = Fraction(earned - kept, UNITS_PER_GRAM)
        retired = others = 0
        if ledger is not None:
            for r in retired_by_claim.get((member, iid), []):
                retired += r.amount
                others += sum(amt for lid, amt in r.lots
                              if lid not in ledger.lots or ledger.lots[lid].owner != member)
        claimed_self = Fraction(self_wh) - passed_on_wh
        bought = a["bought_wh"]
        grid_wh = max(0, a["import_wh"] - bought)
        non_renewable_bought = bought - a["renewable_bought_wh"]
        co2 = (grid_wh * factors.grid_at(iid) + non_renewable_bought * factors.other_at(iid)) / 1000.0 \
            + float(passed_on_g)
        demand = a["demand_wh"]
        ratio = _ratio(float(claimed_self) + a["renewable_bought_wh"], demand)
        out.append(CarbonInterval(
            member=member, interval_id=iid, demand_wh=demand, generation_wh=a["generation_wh"],
            import_wh=a["import_wh"], self_consumed_wh=self_wh, claimed_self_wh=float(claimed_self),
            passed_on_wh=float(passed_on_wh), bought_wh=bought, renewable_bought_wh=a["renewable_bought_wh"],
            unknown_bought_wh=a["unknown_bought_wh"], grid_wh=grid_wh,
            renewable_ratio=min(1.0, ratio) if not math.isnan(ratio) else ratio,
            co2_g=co2, avg_emission_factor_g_per_kwh=_ratio(co2, demand / 1000.0),
            crev_earned=earned, crev_kept=kept, crev_retired=retired, crev_claimed=kept + others,
            net_co2_g=co2 - float(Fraction(others, UNITS_PER_GRAM)),
        ))
    return out


# ------------------------------------------------------------------------------ chain loaders


def event_abi(signature: str) -> dict[str, Any]:
    """Build an ABI event entry from its signature text, e.g. ``"Trade(uint64 indexed intervalId, …)"``."""
    name, _, rest = signature.strip().partition("(")
    params = [p.strip() for p in rest.rstrip(")").split(",") if p.strip()]
    inputs = []
    for p in params:
        parts = p.split()
        indexed = "indexed" in parts
        parts = [x for x in parts if x != "indexed"]
        if len(parts) != 2:
            raise ValueError(f"cannot parse event parameter {p!r} in {signature!r}")
        inputs.append({"type": parts[0], "name": parts[1], "indexed": indexed})
    return {"type": "event", "name": name, "anonymous": False, "inputs": inputs}


def logs(w3: Web3, address: str | Iterable[str], signatures: str | Sequence[str], from_block: int = 0,
         to_block: int | str = "latest") -> list[dict[str, Any]]:
    """Decoded logs of one or more events (by signature text) of ``address``, in chain order; each is
    the event's arguments plus ``_event``, ``_block``, ``_log_index``."""
    sigs = [signatures] if isinstance(signatures, str) else list(signatures)
    abis = [event_abi(s) for s in sigs]
    by_topic = {"0x" + event_abi_to_log_topic(a).hex(): a for a in abis}
    addrs = [address] if isinstance(address, str) else list(address)
    raw = w3.eth.get_logs({
        "address": [Web3.to_checksum_address(a) for a in addrs],
        "topics": [list(by_topic)],
        "fromBlock": from_block, "toBlock": to_block,
    })
    out = []
    for log in raw:
        t0 = log["topics"][0]
        abi = by_topic["0x" + bytes(t0).hex()]
        ev = getattr(w3.eth.contract(abi=[abi]).events, abi["name"])().process_log(log)
        out.append({**dict(ev["args"]), "_event": abi["name"], "_block": int(ev["blockNumber"]),
                    "_log_index": int(ev["logIndex"]), "_signature": sigs[abis.index(abi)]})
    out.sort(key=lambda e: (e["_block"], e["_log_index"]))
    return out


def meter_colours(w3: Web3, registry: str, *, from_block: int = 0, to_block: int | str = "latest") -> dict[bytes, str]:
    """``{meter id: colour}`` from the registry's ``MeterRegistered`` events (the colour is fixed then)."""
    return {bytes(e["meterId"]): colour_text(e["colour"])
            for e in logs(w3, registry, METER_REGISTERED, from_block, to_block)}


def load_readings(w3: Web3, registry: str, *, colours: dict[bytes, str] | None = None, owner: str | None = None,
                  from_block: int = 0, to_block: int | str = "latest") -> list[Reading]:
    """Readings from ``ReadingAccepted`` logs; a meter's colour from ``colours`` if given there, else
    from its ``MeterRegistered`` event, else ``unknown``. ``owner`` keeps one member's readings."""
    known = meter_colours(w3, registry, to_block=to_block)
    known.update({bytes(k): colour_text(v) for k, v in (colours or {}).items()})
    out = []
    for e in logs(w3, registry, READING_ACCEPTED, from_block, to_block):
        if owner is not None and e["owner"] != owner:
            continue
        mid = bytes(e["meterId"])
        out.append(Reading(
            owner=e["owner"], interval_id=interval_of_reading(e["intervalStart"]),
            generation_wh=int(e["generationWh"]), consumption_wh=int(e["consumptionWh"]),
            export_wh=int(e["exportWh"]), import_wh=int(e["importWh"]), self_consumed_wh=int(e["selfConsumedWh"]),
            colour=known.get(mid, UNKNOWN), meter_id=mid))
    return out


def grid_accounts(w3: Web3, market: str, *, to_block: int | str = "latest") -> set[str]:
    """Every account the market ever named as the grid participant (``GridSet``)."""
    return {e["account"] for e in logs(w3, market, GRID_SET, 0, to_block) if e["account"] != ZERO_ADDRESS}


def load_trades(w3: Web3, market: str, *, colours: dict[str, str] | None = None, from_block: int = 0,
                to_block: int | str = "latest") -> list[Trade]:
    """Trades from ``Trade`` logs. The seller's colour: the event's own colour when it carries one;
    else ``colours[seller]``; the grid participant's sales are ``grid``; otherwise ``unknown``."""
    given = {Web3.to_checksum_address(k): colour_text(v) for k, v in (colours or {}).items()}
    grid = grid_accounts(w3, market, to_block=to_block)
    out = []
    for e in logs(w3, market, (TRADE, TRADE_WITH_COLOUR), from_block, to_block):
        seller = e["seller"]
        if "colour" in e and colour_text(e["colour"]) != UNKNOWN:
            colour = colour_text(e["colour"])
        elif seller in given:
            colour = given[seller]
        elif seller in grid:
            colour = GRID
        else:
            colour = UNKNOWN
        out.append(Trade(int(e["intervalId"]), seller, e["buyer"], int(e["wh"]), colour))
    return out


class _Stamps:
    def __init__(self, w3: Web3) -> None:
        self.w3, self.cache = w3, {}

    def __call__(self, block: int) -> int:
        if block not in self.cache:
            self.cache[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return self.cache[block]


def apply_crev_logs(ledger: CrevLedger, events: Iterable[dict[str, Any]], stamp: Callable[[int], int]) -> None:
    """Replay C-REV events (from :func:`logs` with the four lot signatures) into ``ledger``.
    ``LotRetired`` events come before their ``Retired``; the retirement's interval is its block's."""
    pending: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        kind = e["_event"]
        if kind == "LotIssued":
            ledger.issue(Lot(int(e["lotId"]), bytes(e["meterId"]), interval_of_lot(e["intervalStart"]), e["owner"],
                             int(e["amount"])))
        elif kind == "LotTransferred":
            ledger.move(int(e["lotId"]), e["from"], e["to"], int(e["amount"]))
        elif kind == "LotRetired":
            pending[int(e["certificateId"])].append((int(e["lotId"]), int(e["amount"])))
        elif kind == "Retired":
            cid = int(e["certificateId"])
            ledger.retire(Retirement(cid, e["holder"], e["beneficiary"], interval_of_time(stamp(e["_block"])),
                                     int(e["amount"]), tuple(pending.pop(cid, []))))


def load_ledger(w3: Web3, crev: str, *, from_block: int = 0, to_block: int | str = "latest") -> CrevLedger:
    """The C-REV ledger (lots, holdings per lot, retirements and their claimants) from logs."""
    ledger = CrevLedger()
    apply_crev_logs(ledger, logs(w3, crev, (LOT_ISSUED, LOT_TRANSFERRED, LOT_RETIRED, RETIRED), from_block, to_block),
                    _Stamps(w3))
    return ledger


def crev_factor_schedule(w3: Web3, crev: str) -> Callable[[int], float]:
    """The grid factor per interval from C-REV's DAO-set schedule (``factorSchedule()``)."""
    abi = [{"type": "function", "name": "factorSchedule", "stateMutability": "view", "inputs": [],
            "outputs": [{"type": "tuple[]", "name": "", "components": [
                {"type": "uint64", "name": "effectiveFrom"}, {"type": "uint256", "name": "factorGPerKwh"}]}]}]
    schedule = sorted((interval_of_factor(int(s)), int(f))
                      for s, f in w3.eth.contract(address=Web3.to_checksum_address(crev), abi=abi)
                      .functions.factorSchedule().call())

    def at(interval_id: int) -> float:
        factor = 0
        for start, f in schedule:
            if start <= interval_id:
                factor = f
        return float(factor)

    return at


# ------------------------------------------------------------------------------ following the chain


@dataclass
class CarbonFeed:
    """One member's intervals, kept up to date block by block.

    :meth:`poll` reads the logs of new blocks and returns the member's intervals that *settled*
    since the last call (the chain's latest block is ``settle_after`` seconds past the interval's
    end), plus earlier ones whose figures changed (a late reading, C-REV sold or retired later),
    flagged ``revised``. A reorganisation is not undone (logs are read once).
    """

    w3: Web3
    member: str
    factors: Factors
    registry: str | None = None
    market: str | None = None
    crev: str | None = None
    from_block: int = 0
    settle_after: int = 60
    interval_seconds: int = INTERVAL_SECONDS
    colours: dict[bytes, str] | None = None
    _next_block: int = 0
    _readings: list[Reading] = field(default_factory=list)
    _trades: list[Trade] = field(default_factory=list)
    _ledger: CrevLedger = field(default_factory=CrevLedger)
    _shown: dict[int, CarbonInterval] = field(default_factory=dict)
    _stamp: _Stamps | None = None

    def __post_init__(self) -> None:
        self.member = Web3.to_checksum_address(self.member)
        self._next_block = self.from_block
        self._stamp = _Stamps(self.w3)

    def refresh(self) -> int:
        """Read the logs of the blocks since the last call; returns the latest block read."""
        latest = int(self.w3.eth.block_number)
        if latest >= self._next_block:
            lo, hi = self._next_block, latest
            if self.registry:
                self._readings += load_readings(self.w3, self.registry, colours=self.colours, owner=self.member,
                                                from_block=lo, to_block=hi)
            if self.market:
                self._trades += [t for t in load_trades(self.w3, self.market, from_block=lo, to_block=hi)
                                 if t.buyer == self.member]
            if self.crev:
                apply_crev_logs(self._ledger, logs(self.w3, self.crev, (LOT_ISSUED, LOT_TRANSFERRED, LOT_RETIRED,
                                                                        RETIRED), lo, hi), self._stamp)
            self._next_block = hi + 1
        return latest

    def intervals(self) -> list[CarbonInterval]:
        """Every interval of the member known so far (settled or not)."""
        ledger = self._ledger if self.crev else None
        return carbon_intervals(self._readings, self._trades, self.factors, ledger, members=[self.member])

    def poll(self) -> list[tuple[CarbonInterval, bool]]:
        """``[(interval, revised)]`` newly settled or changed since the last poll, oldest first."""
        latest = self.refresh()
        now = self._stamp(latest)
        out = []
        for row in self.intervals():
            end = interval_start(row.interval_id) + self.interval_seconds
            if now < end + self.settle_after:
                continue
            before = self._shown.get(row.interval_id)
            if before == row or (before is not None and _same(before, row)):
                continue
            out.append((row, before is not None))
            self._shown[row.interval_id] = row
        return out


def _same(a: CarbonInterval, b: CarbonInterval) -> bool:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and math.isnan(x) and isinstance(y, float) and math.isnan(y):
            continue
        if x != y:
            return False
    return True
