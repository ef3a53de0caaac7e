"""Participants' simple trading and storage strategies for the demo day.

Pure functions of what a household knows (its WATT balance, its forecast for the next interval,
the hour of day): no chain or HTTP access here, so the rules are easy to read and to test.

Model (Energo): WATT is energy already fed into the microgrid. PV owners sell the WATT they hold;
consumers buy, ahead of time, the WATT their next interval's import will burn. Prices follow a
daily curve between the utility's feed-in price (sellers' floor) and its retail price (buyers'
ceiling): cheap around noon when the sun floods the grid, dear in the evening peak. The utility
is a participant of every interval (its bid at feed-in, its offer at retail): at the noon surplus
sellers ask the feed-in price, so what neighbours do not buy the grid does; in the evening peak
buyers bid the retail price, so what neighbours cannot sell the grid does. What a household
imports beyond the WATT it holds is its energy debt, paid at the retail price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridcoop_sdk.region_config import GridConfig


def daily_factor(hour: float) -> float:
    """0..1 scarcity of energy over the day: low at noon (solar surplus), high at the evening peak."""
    solar = max(0.0, math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0
    evening = math.exp(-((hour - 19.0) ** 2) / 4.0)
    morning = 0.5 * math.exp(-((hour - 7.5) ** 2) / 2.0)
    return max(0.05, min(1.0, 0.55 + 0.45 * evening + 0.2 * morning - 0.5 * solar))


def limit_prices(hour: float, grid: GridConfig) -> tuple[float, float]:
    """(buyers' limit, sellers' limit) in local currency per kWh for an interval at ``hour``.

    Both stay inside [feed-in, retail]; the buyers' limit is always above the sellers', so a
    market exists whenever there is energy on both sides.
    """
    f = daily_factor(hour)
    span = grid.retail_price - grid.feed_in_price
    sell = grid.feed_in_price + span * max(0.0, 0.7 * f - 0.1)  # feed-in at the noon surplus (f <= 1/7)
    buy = grid.feed_in_price + span * (0.35 + 0.65 * f)  # retail at the evening peak (f = 1)
    return round(min(buy, grid.retail_price), 4), round(max(sell, grid.feed_in_price), 4)


@dataclass(frozen=True)
class Intent:
    """What one household wants to do before the next interval."""

    sell_wh: int = 0
    buy_wh: int = 0
    deposit_wh: int = 0
    withdraw: bool = False


def decide(
    *,
    kind: str,
    hour: float,
    watt_wh: int,
    forecast_generation_wh: int,
    forecast_consumption_wh: int,
    stored_wh: int,
    uses_community_battery: bool,
) -> Intent:
    """One household's intent for the coming interval.

    - Everyone first covers the next interval's expected import with WATT it holds; buyers bid
      for the rest.
    - PV owners sell what they hold beyond that reserve, except around noon (11:00–14:00) when
      battery users put half of their spare WATT into the community battery instead.
    - Battery users take their energy back out for the evening (from 17:00).
    """
    deficit = max(0, forecast_consumption_wh - forecast_generation_wh)
    reserve = deficit
    spare = max(0, watt_wh - reserve)
    if uses_community_battery and stored_wh > 0 and hour >= 17:
        return Intent(withdraw=True, buy_wh=max(0, deficit - watt_wh - stored_wh))
    if kind == "consumer":
        return Intent(buy_wh=max(0, deficit - watt_wh))
    deposit = 0
    if uses_community_battery and 11 <= hour < 14 and spare > 0:
        deposit = spare // 2
    sell = spare - deposit
    buy = max(0, deficit - watt_wh)
    return Intent(sell_wh=sell if sell >= 10 else 0, buy_wh=buy, deposit_wh=deposit if deposit >= 10 else 0)
