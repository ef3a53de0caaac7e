"""Exception hierarchy of the gridcoop SDK.

One root (:class:`GridcoopError`); each exception is also the builtin it behaves like, so
callers can catch either (the web3.py pattern).
"""

from __future__ import annotations


class GridcoopError(Exception):
    """Root of every error raised by gridcoop's Python packages."""


class ConfigError(GridcoopError, ValueError):
    """A configuration file or value is malformed; the message names the file, key and reason."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class NodeUnreachableError(GridcoopError, ConnectionError):
    """The Ethereum node at an RPC URL does not answer."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the Ethereum node at {url}: {reason}")


class ChainIdMismatchError(GridcoopError, ValueError):
    """The node serves another chain than the one the caller expects."""

    def __init__(self, url: str, expected: int, actual: int):
        self.expected = expected
        self.actual = actual
        super().__init__(f"the node at {url} serves chain id {actual}, expected {expected}")


class ArtifactError(GridcoopError, LookupError):
    """Compiled artifacts are missing or do not contain a contract."""


class DeploymentError(GridcoopError, LookupError):
    """A contract has no recorded deployment on the connected chain."""


class TransactionFailed(GridcoopError, RuntimeError):
    """A transaction (or its simulation) reverted.

    ``error_name`` and ``error_args`` hold the decoded custom error when the revert data matches
    one of the project's ABIs (for example ``AccessControlUnauthorizedAccount``).
    """

    def __init__(
        self,
        message: str,
        *,
        error_name: str | None = None,
        error_args: dict | None = None,
        tx_hash: str | None = None,
        receipt: dict | None = None,
    ):
        self.error_name = error_name
        self.error_args = error_args or {}
        self.tx_hash = tx_hash
        self.receipt = receipt
        super().__init__(message)
