"""gridcoop: the applications' command line above the chain SDK (:mod:`gridcoop_sdk`), the keeper,
the meter bridge and the demo. ``gridcoop --help`` lists the areas; :mod:`gridcoop.cli` holds them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("gridcoop")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"
