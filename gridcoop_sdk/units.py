"""Units and time conventions shared by every gridcoop component.

- Energy on the wire, in readings and in orders: integer Wh.
- WATT has 18 decimals and 1 WATT = 1 kWh, so 1 Wh = 10**15 WATT base units.
- Intervals are 15 minutes (900 s) aligned to Unix time; interval id = start // 900.
- Prices: payment-token base units per kWh.
"""

from __future__ import annotations

from decimal import Decimal

WATT_DECIMALS = 18
WATT_PER_WH = 10**15
"""WATT base units per Wh (1 WATT = 1 kWh = 10**18 base units)."""

INTERVAL_SECONDS = 900


def wh_to_watt(wh: int) -> int:
    """Integer Wh → WATT base units (exact)."""
    if not isinstance(wh, int):
        raise TypeError(f"energy must be an integer number of Wh, got {type(wh).__name__}")
    return wh * WATT_PER_WH


def watt_to_wh(base_units: int) -> int:
    """WATT base units → whole Wh, rounded down (a fraction of a Wh is never invented)."""
    return base_units // WATT_PER_WH


def watt_to_kwh(base_units: int) -> Decimal:
    """WATT base units → kWh as an exact Decimal (for display)."""
    return Decimal(base_units) / Decimal(10**WATT_DECIMALS)


def parse_energy(text: str) -> int:
    """Parse ``"1.5kWh"``, ``"1500Wh"``, ``"2 MWh"`` or a bare number of Wh into integer Wh.

    Refuses fractions of a Wh and negative values with a ``ValueError`` that says why.
    """
    s = str(text).strip().replace(" ", "")
    scale = Decimal(1)
    lower = s.lower()
    for suffix, factor in (("mwh", 10**6), ("kwh", 10**3), ("wh", 1)):
        if lower.endswith(suffix):
            s = s[: -len(suffix)]
            scale = Decimal(factor)
            break
    try:
        value = Decimal(s) * scale
    except Exception as exc:  # decimal.InvalidOperation
        raise ValueError(f"not an energy amount: {text!r} (use e.g. 1.5kWh or 1500Wh)") from exc
    if value < 0:
        raise ValueError(f"energy must not be negative: {text!r}")
    if value != value.to_integral_value():
        raise ValueError(f"energy must be a whole number of Wh: {text!r}")
    return int(value)


def interval_id(timestamp: int) -> int:
    """Interval id of the 15-minute interval that contains ``timestamp``."""
    return int(timestamp) // INTERVAL_SECONDS


def interval_start(iid: int) -> int:
    """Unix start time of interval ``iid``."""
    return int(iid) * INTERVAL_SECONDS


def interval_end(iid: int) -> int:
    """Unix end time (exclusive) of interval ``iid``."""
    return (int(iid) + 1) * INTERVAL_SECONDS
