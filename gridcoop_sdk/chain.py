"""Connecting to a node, and starting a local anvil chain.

- :func:`connect` opens an RPC URL and fails fast (a few seconds) with a message naming the URL
  when the node is down, and checks the chain id when the caller expects one.
- :class:`Anvil` starts the anvil binary from npm (``@foundry-rs/anvil-linux-amd64``) on a free
  loopback port and stops it again (context manager; also on Ctrl-C).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from .exceptions import ChainIdMismatchError, GridcoopError, NodeUnreachableError
from .paths import find_tool

log = logging.getLogger("gridcoop.chain")

DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: Past-block states an anvil started here keeps on disk beyond its in-memory window (older ones are
#: dropped: state queries at blocks that old fail; logs, receipts and snapshots are not affected).
MAX_PERSISTED_STATES = 256
"""anvil's and hardhat's well-known development mnemonic (never use it on a real network)."""


def connect(url: str, *, expected_chain_id: int | None = None, timeout: float = 5.0) -> Web3:
    """Connect to ``url`` and check it answers (and serves ``expected_chain_id`` if given)."""
    # A node's chain id never changes, but web3's validation middleware asks for it before every
    # call and transaction (about 40 % of all requests); cache that one answer, nothing else.
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout},
                           cache_allowed_requests=True, cacheable_requests={"eth_chainId"}))
    try:
        chain_id = w3.eth.chain_id
    except OSError as exc:  # web3's HTTP errors (requests' RequestException) are OSErrors
        raise NodeUnreachableError(url, _short_reason(exc)) from exc
    except Exception as exc:  # a non-JSON-RPC server, for example
        raise NodeUnreachableError(url, f"not a JSON-RPC node ({exc})") from exc
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainIdMismatchError(url, expected_chain_id, chain_id)
    return w3


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused (is the node running?)"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def dev_accounts(n: int = 10, mnemonic: str = DEV_MNEMONIC) -> list[LocalAccount]:
    """The first ``n`` accounts of the development mnemonic (funded by anvil)."""
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)]


def stop_process(proc: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Send ``sig`` to a child process still running and wait for it; SIGKILL it after ``timeout`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Anvil:
    """A local anvil node on a free loopback port.

    >>> with Anvil() as node:
    ...     w3 = node.w3
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = 31337,
        accounts: int = 10,
        block_time: float | None = None,
        log_path: str | os.PathLike | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.chain_id = chain_id
        self.accounts = accounts
        self.block_time = block_time
        self.extra_args = extra_args or []
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self._cache_dir: str | None = None
        self._w3: Web3 | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.url, expected_chain_id=self.chain_id)
        return self._w3

    def start(self) -> Anvil:
        binary = find_tool("anvil")
        if not binary:
            raise GridcoopError(
                "anvil not found: run `make setup` (it installs @foundry-rs/anvil-linux-amd64 "
                "into node_modules) or set GRIDCOOP_ANVIL"
            )
        cmd = [
            binary,
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--mnemonic", DEV_MNEMONIC,
        ]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        # anvil keeps the states of past blocks beyond its in-memory window on disk (by default in
        # ~/.foundry/anvil/tmp, never removed when it is killed: a long test session left 13 GB per
        # node there). Give each node its own folder, removed in stop(), and a bounded history.
        self._cache_dir = tempfile.mkdtemp(prefix="gridcoop-anvil-")
        cmd += ["--cache-path", self._cache_dir, "--max-persisted-states", str(MAX_PERSISTED_STATES)]
        cmd += self.extra_args
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")
        else:
            self._log_file = tempfile.TemporaryFile()
        log.info("starting anvil on %s", self.url)
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal goes to us; we stop anvil ourselves
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise GridcoopError(f"anvil exited at start with code {self.proc.returncode}: {self._tail()}")
            try:
                self._w3 = connect(self.url, expected_chain_id=self.chain_id, timeout=1.0)
                break
            except NodeUnreachableError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise GridcoopError(
                        f"anvil did not answer on {self.url} within {self.startup_timeout}s"
                    ) from exc
                time.sleep(0.05)
        return self

    def _tail(self) -> str:
        if self._log_file is None:
            return ""
        try:
            self._log_file.flush()
            self._log_file.seek(0)
            return self._log_file.read()[-2000:].decode(errors="replace")
        except Exception:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            log.info("stopping anvil on %s", self.url)
        stop_process(self.proc)
        self.proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        if self._cache_dir:
            shutil.rmtree(self._cache_dir, ignore_errors=True)
            self._cache_dir = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
