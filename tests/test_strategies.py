"""The demo's household strategies: prices stay in the grid band and intents are consistent."""

from __future__ import annotations

import pytest

from coop_demo.strategies import decide, limit_prices
from gridcoop_sdk.region_config import load_region

GRID = load_region("sakura").grid


@pytest.mark.parametrize("hour", [h / 4 for h in range(96)])
def test_limits_inside_grid_band_and_crossing(hour):
    buy, sell = limit_prices(hour, GRID)
    assert GRID.feed_in_price <= sell < buy <= GRID.retail_price


def test_noon_sellers_ask_feed_in_and_evening_buyers_bid_retail():
    """The grid participant takes the noon surplus at feed-in and covers the evening peak at retail."""
    assert limit_prices(12.0, GRID)[1] == GRID.feed_in_price
    assert limit_prices(19.0, GRID)[0] == GRID.retail_price


def test_noon_is_cheaper_than_evening():
    assert limit_prices(12.5, GRID)[0] < limit_prices(19.0, GRID)[0]


def test_consumer_buys_only_what_its_watt_does_not_cover():
    i = decide(kind="consumer", hour=20, watt_wh=100, forecast_generation_wh=0,
               forecast_consumption_wh=350, stored_wh=0, uses_community_battery=False)
    assert (i.buy_wh, i.sell_wh, i.deposit_wh) == (250, 0, 0)


def test_pv_owner_sells_spare_and_keeps_reserve():
    i = decide(kind="pv", hour=10, watt_wh=1000, forecast_generation_wh=100,
               forecast_consumption_wh=300, stored_wh=0, uses_community_battery=False)
    assert i.sell_wh == 800 and i.buy_wh == 0


def test_battery_user_stores_half_at_noon_and_withdraws_in_the_evening():
    noon = decide(kind="pv_battery", hour=12, watt_wh=2000, forecast_generation_wh=900,
                  forecast_consumption_wh=200, stored_wh=0, uses_community_battery=True)
    assert noon.deposit_wh == 1000 and noon.sell_wh == 1000
    evening = decide(kind="pv_battery", hour=18, watt_wh=0, forecast_generation_wh=0,
                     forecast_consumption_wh=400, stored_wh=1000, uses_community_battery=True)
    assert evening.withdraw and evening.sell_wh == 0
