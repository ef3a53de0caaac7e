"""The grid participant and the network fee of an EnergyMarket, and paying energy debt.

The utility around the co-op is a participant of every interval (issue 18): its standing bid at
the **feed-in price** buys any WATT offered at or below it, its standing offer at the **retail
price** sells to any buyer bidding at or above it, without limit, so every interval's price lies
between the two. On chain a trade with the grid has the index ``GRID`` (0xffff) on the grid's
side: WATT the grid buys is burnt (the energy left the co-op) and its account pays; WATT it sells
is minted to the buyer (the energy came from outside) and its account is paid. Energy drawn from
the grid beyond the WATT an owner held (the MeterRegistry's energy debt) is paid with
:func:`pay_energy_debt`, in the grid's token at the retail price, rounded up.

The optional **network fee** (per payment token, base units per kWh) is paid by the buyer of a
trade between two households on top of the price, to a named payee; inside one feeder (location
group, :func:`set_feeders`) the lower intra-feeder rate applies. Trades with the grid pay none.

Every setter needs the market's PARAMETER_ROLE: the deployer before the hand-over, the DAO after
(``gridcoop dao propose --call <region>.EnergyMarket setGridTariff <feed-in>,<retail>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from .exceptions import GridcoopError
from .orders import ZERO_ADDRESS, colour_bytes
from .tx import send

GRID_INDEX = 0xFFFF  # the trade index of the grid participant (EnergyMarket.GRID)
GRID_COLOUR = colour_bytes("grid")  # the colour of energy the grid sells


@dataclass(frozen=True)
class GridTerms:
    """``EnergyMarket.grid()``: the utility's account, the token of its tariff (zero: no grid),
    its feed-in and retail prices (token base units per kWh) and the energy debt ledger."""

    account: str
    token: str
    feed_in_price: int
    retail_price: int
    debt_ledger: str

    @property
    def active(self) -> bool:
        return int(self.token, 16) != 0

    def as_tuple(self) -> tuple:
        return (self.account, self.token, int(self.feed_in_price), int(self.retail_price), self.debt_ledger)


NO_GRID = GridTerms(ZERO_ADDRESS, ZERO_ADDRESS, 0, 0, ZERO_ADDRESS)


@dataclass(frozen=True)
class NetworkFee:
    """A payment token's network fee, base units per kWh (``intra_feeder_per_kwh`` ≤ ``per_kwh``)."""

    per_kwh: int = 0
    intra_feeder_per_kwh: int = 0


def grid_terms(market: Contract) -> GridTerms:
    """The market's grid participant (:data:`NO_GRID` when none is set)."""
    a, t, f, r, led = market.functions.grid().call()
    return GridTerms(to_checksum_address(a), to_checksum_address(t), int(f), int(r), to_checksum_address(led))


def network_fee(market: Contract, token: str) -> NetworkFee:
    per, intra = market.functions.networkFee(to_checksum_address(token)).call()
    return NetworkFee(int(per), int(intra))


def feeder_name(raw: bytes) -> str:
    """A feeder id (bytes32) as text ("" for none)."""
    return raw.rstrip(b"\x00").decode(errors="replace")


def set_grid(w3: Web3, admin: LocalAccount, market: Contract, *, account: str, token: str,
             feed_in_price: int, retail_price: int, debt_ledger: str = ZERO_ADDRESS) -> dict:
    """Make ``account`` the market's grid participant (PARAMETER_ROLE). The market refuses a zero
    account, a token it does not accept, a zero retail price and feed-in above retail."""
    terms = GridTerms(to_checksum_address(account), to_checksum_address(token), int(feed_in_price),
                      int(retail_price), to_checksum_address(debt_ledger))
    return send(w3, admin, market.functions.setGrid(terms.as_tuple()))


def set_grid_tariff(w3: Web3, admin: LocalAccount, market: Contract, feed_in_price: int, retail_price: int) -> dict:
    return send(w3, admin, market.functions.setGridTariff(int(feed_in_price), int(retail_price)))


def set_network_fee(w3: Web3, admin: LocalAccount, market: Contract, token: str, fee: NetworkFee,
                    payee: str | None = None) -> list[dict]:
    """Set ``token``'s network fee (and first its payee, when given)."""
    out = []
    if payee is not None:
        out.append(send(w3, admin, market.functions.setNetworkFeePayee(to_checksum_address(payee))))
    out.append(send(w3, admin, market.functions.setNetworkFee(
        to_checksum_address(token), int(fee.per_kwh), int(fee.intra_feeder_per_kwh))))
    return out


def set_feeders(w3: Web3, admin: LocalAccount, market: Contract, feeders: Mapping[str, str]) -> dict | None:
    """Put accounts in feeders (``{account: feeder name}``; "" for none)."""
    if not feeders:
        return None
    accounts = [to_checksum_address(a) for a in feeders]
    return send(w3, admin, market.functions.setFeeders(accounts, [colour_bytes(n) for n in feeders.values()]))


def feeders_of(market: Contract, accounts: Iterable[str]) -> dict[str, bytes]:
    """``{account: feeder id}`` for the accounts that are in a feeder."""
    out = {}
    for a in set(accounts):
        f = market.functions.feederOf(to_checksum_address(a)).call()
        if int.from_bytes(f, "big"):
            out[a] = f
    return out


def energy_debt_wh(registry: Contract, owner: str) -> int:
    return int(registry.functions.energyDebtWh(to_checksum_address(owner)).call())


def debt_payment(wh: int, retail_price: int) -> int:
    """What paying ``wh`` of energy debt costs: ``ceil(wh × retail / 1000)`` base units."""
    return -(-int(wh) * int(retail_price) // 1000)


def pay_energy_debt(w3: Web3, payer: LocalAccount, market: Contract, owner: str, wh: int) -> dict:
    """Pay ``wh`` of ``owner``'s energy debt at the grid's retail price, from ``payer`` (who must
    hold and allow the market the grid token amount, :func:`debt_payment`). The market refuses
    0 and more than is owed (``MeterRepayExceedsDebt``) and a market with no grid (``MarketNoGrid``)."""
    if wh <= 0:
        raise GridcoopError(f"energy debt payment must be at least 1 Wh, got {wh}")
    return send(w3, payer, market.functions.payEnergyDebt(to_checksum_address(owner), int(wh)))


__all__ = [
    "GRID_COLOUR", "GRID_INDEX", "GridTerms", "NO_GRID", "NetworkFee", "debt_payment", "energy_debt_wh",
    "feeder_name", "feeders_of", "grid_terms", "network_fee", "pay_energy_debt", "set_feeders", "set_grid",
    "set_grid_tariff", "set_network_fee",
]
