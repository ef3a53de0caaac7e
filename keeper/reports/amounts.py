"""Token amounts in reports: exact Python ints end to end, Decimal only for display.

Token base units (TSL, WATT, C-REV, 18-decimal local currencies) pass 2**63 at about 9.22 whole
tokens, so a pandas ``int64`` column wraps silently and a ``float64`` one rounds: a report built
on either lies. Every report therefore keeps base units as Python ints in ``object`` columns named
``…_base_units``, sums them with :func:`total` / :func:`sum_by` (never ``Series.sum``, ``cumsum`` or
``groupby().sum()``, which drop to int64 whenever the values happen to fit), and converts to
display units with :func:`to_display` (an exact :class:`~decimal.Decimal`) only at the edge.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pandas as pd


def exact(value: Any) -> int:
    """One token amount as a Python int. Ints (Python or numpy), integral Decimals and digit strings
    pass; a float, NaN, None or bool is refused: it has already lost units or is not an amount."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not a token amount in base units: {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise TypeError(f"token amounts must be integer base units, got {type(value).__name__} {value!r} "
                    "(a float or int64 column cannot hold them exactly)")


def total(values: Iterable[Any]) -> int:
    """Exact sum of token amounts (Python ints; never wraps, never rounds)."""
    return sum((exact(v) for v in values), 0)


def column(values: Iterable[Any]) -> list[int]:
    """Amounts as a list of Python ints, ready for an ``object`` column (``pd.Series(…, dtype=object)``)."""
    return [exact(v) for v in values]


def units_series(values: Iterable[Any], index: Any = None) -> pd.Series:
    """An ``object`` Series of Python ints (pandas keeps them exact and never converts to int64)."""
    return pd.Series(column(values), index=index, dtype=object)


def sum_by(df: pd.DataFrame, keys: Sequence[str], value: str, name: str | None = None) -> pd.DataFrame:
    """Exact per-group totals of ``value``: one row per distinct ``keys`` (first-seen order) with the
    sum as a Python int in column ``name`` (default ``value``)."""
    name = name or value
    acc: dict[tuple, int] = {}
    if len(df):
        for key, v in zip(df[list(keys)].itertuples(index=False, name=None), df[value], strict=True):
            acc[key] = acc.get(key, 0) + exact(v)
    out = pd.DataFrame(list(acc), columns=list(keys))
    out[name] = pd.Series(list(acc.values()), index=out.index, dtype=object)
    return out


def to_display(units: Any, decimals: int) -> Decimal:
    """Base units → whole tokens as an exact Decimal (``51704…`` with 18 decimals → ``51.704…``)."""
    return Decimal(exact(units)).scaleb(-decimals)


def fmt(value: Decimal) -> str:
    """A display amount as fixed-point text without trailing zeros (``Decimal`` would print
    ``0E-18`` or ``1E-18``): exact, and readable in a CSV or a table."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def for_csv(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every Decimal cell written as :func:`fmt` text; ints stay ints (exact in a CSV)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:  # a new object Series: Series.map would infer float64 again
            out[c] = pd.Series([fmt(v) if isinstance(v, Decimal) else v for v in out[c]], index=out.index,
                               dtype=object)
    return out


def display_series(values: Iterable[Any], decimals: int, index: Any = None) -> pd.Series:
    """An ``object`` Series of exact Decimals in display units."""
    return pd.Series([to_display(v, decimals) for v in values], index=index, dtype=object)


def ratio(part: Any, whole: Any) -> Fraction | None:
    """``part / whole`` as an exact Fraction (None when ``whole`` is 0): shares and percentages of
    token amounts are computed from the exact ints, and only then made a float for a plot."""
    w = exact(whole)
    return None if w == 0 else Fraction(exact(part), w)
