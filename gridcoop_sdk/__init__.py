"""gridcoop chain SDK: artifacts, deployments, connection, units, EIP-712 and transactions.

The meter bridge, the keeper and the scripts import this package; each concern has one home:

- :mod:`gridcoop_sdk.artifacts` — compiled ABIs/bytecode (from ``ape compile``) and error decoding
- :mod:`gridcoop_sdk.deployments` — ``deployments/<chainId>.json``
- :mod:`gridcoop_sdk.chain` — :func:`connect` (fails fast naming the URL) and :class:`Anvil`
- :mod:`gridcoop_sdk.units` — Wh ⇄ WATT base units, 15-minute intervals
- :mod:`gridcoop_sdk.eip712` — the signing domain and message types
- :mod:`gridcoop_sdk.tx` — sending transactions with decoded reverts
- :mod:`gridcoop_sdk.contracts` — deploy/bind contracts by name
- :mod:`gridcoop_sdk.crev` — C-REV: deploy, lot balances, retire, trace a certificate (CLI: ``gridcoop crev``)
- :mod:`gridcoop_sdk.meters` / :mod:`gridcoop_sdk.readings` — MeterRegistry ops; signed meter readings
- :mod:`gridcoop_sdk.storage` — community batteries: deploy, register, deposit/withdraw, fees, claims
- :mod:`gridcoop_sdk.dao` — the DAO: deploy, propose/vote/execute, budgets, hand-over of admin roles
- :mod:`gridcoop_sdk.orders` — energy-market orders: sign, hash, JSON, deploy/cancel on the market
"""

from .chain import Anvil, connect, dev_accounts
from .exceptions import (
    ArtifactError,
    ChainIdMismatchError,
    ConfigError,
    DeploymentError,
    GridcoopError,
    NodeUnreachableError,
    TransactionFailed,
)
from .units import WATT_PER_WH, interval_id, watt_to_wh, wh_to_watt

__all__ = [
    "Anvil",
    "ArtifactError",
    "ChainIdMismatchError",
    "ConfigError",
    "DeploymentError",
    "GridcoopError",
    "NodeUnreachableError",
    "TransactionFailed",
    "WATT_PER_WH",
    "connect",
    "dev_accounts",
    "interval_id",
    "watt_to_wh",
    "wh_to_watt",
]
