"""Gateway configuration (YAML) and device keys.

Example ``gateway.yaml``::

    rpc_url: http://127.0.0.1:8545      # node (direct pusher; also gives chain id)
    chain_id: 31337                     # optional with rpc_url; required for pusher: http without it
    registry: "0x…"                     # MeterRegistry address (default: deployments file)
    outbox: ./gateway-outbox.sqlite
    pusher: direct                      # direct | http | mqtt
    gas_key_env: GATEWAY_GAS_KEY        # direct: env var holding the gas account's hex key
    keeper_url: http://keeper:8080      # http: the keeper relay
    mqtt_url: mqtt://broker:1883        # mqtt: the broker; readings go to gridcoop/<region>/readings/<meter id>
    region: sakura                      # mqtt: the region's topic level (relay workers: gridcoop relay mqtt)
    mqtt_client_id: gw-house-block-7    # mqtt: the persistent session's id (default: gateway-<outbox name>)
    resend_after: 600                   # mqtt: publish again what the chain lacks this long after PUBACK
                                        # (the chain's view: rpc_url, or keeper_url's GET /v1/readings/last)
    poll_interval: 5                    # seconds between polls
    batch_size: 100
    meters:
      - name: house-1
        key_file: keys/house-1.json     # eth-account keystore; passphrase from key_passphrase_env
        grid: {host: 127.0.0.1, port: 5020, unit: 1, map: eastron_sdm630}
        generation: {host: 127.0.0.1, port: 5020, unit: 2, map: sunspec_213}

A malformed file is refused with :class:`~gridcoop_sdk.exceptions.ConfigError` naming the file,
the key path and the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridcoop_sdk.config import load_model
from gridcoop_sdk.exceptions import ConfigError


class ModbusEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)
    map: str
    serial_port: str | None = None
    baudrate: int = 9600


class MeterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    meter_id: str | None = None  # default: keccak256(name)
    key_file: str | None = None
    key_passphrase_env: str = "METER_KEY_PASSPHRASE"
    key_hex_env: str | None = None
    grid: ModbusEndpoint
    generation: ModbusEndpoint | None = None

    @model_validator(mode="after")
    def _one_key(self) -> MeterConfig:
        if bool(self.key_file) == bool(self.key_hex_env):
            raise ValueError("give exactly one of key_file (keystore) or key_hex_env")
        return self


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpc_url: str | None = None
    chain_id: int | None = None
    registry: str | None = None
    outbox: str = "gateway-outbox.sqlite"
    pusher: Literal["direct", "http", "mqtt"] = "direct"
    gas_key_env: str = "GATEWAY_GAS_KEY"
    keeper_url: str | None = None
    mqtt_url: str | None = None
    region: str | None = None
    mqtt_client_id: str | None = None
    resend_after: float = Field(default=600.0, gt=0)
    poll_interval: float = Field(default=5.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=500)
    interval: int = 900
    skew: float = Field(default=60.0, gt=0)
    reconcile_every: float = Field(default=10.0, gt=0)  # s between reorg checks (needs rpc_url)
    meters: list[MeterConfig] = Field(min_length=1)

    @field_validator("registry")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        from web3 import Web3

        if v is not None and not Web3.is_address(v):
            raise ValueError(f"not an address: {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        if self.pusher == "direct" and not self.rpc_url:
            raise ValueError("pusher: direct needs rpc_url")
        if self.pusher == "http" and not self.keeper_url:
            raise ValueError("pusher: http needs keeper_url")
        if self.pusher == "mqtt":
            from gridcoop_sdk.exceptions import GridcoopError
            from gridcoop_sdk.mqtt import check_region, parse_broker_url

            if not self.mqtt_url or not self.region:
                raise ValueError("pusher: mqtt needs mqtt_url (mqtt://host:port) and region (the topic's region)")
            try:
                parse_broker_url(self.mqtt_url)
                check_region(self.region)
            except GridcoopError as exc:
                raise ValueError(str(exc)) from exc
        if not self.rpc_url and (self.chain_id is None or not self.registry):
            raise ValueError("without rpc_url, give chain_id and registry (the signing domain)")
        names = [m.name for m in self.meters]
        if len(set(names)) != len(names):
            raise ValueError("meter names must be unique")
        return self


def load_config(path: str | Path) -> GatewayConfig:
    cfg = load_model(path, GatewayConfig)
    base = Path(path).resolve().parent
    if not Path(cfg.outbox).is_absolute():
        cfg.outbox = str(base / cfg.outbox)
    for m in cfg.meters:
        if m.key_file and not Path(m.key_file).is_absolute():
            m.key_file = str(base / m.key_file)
    return cfg


def load_device_key(m: MeterConfig, *, source: str = "config") -> bytes:
    """The meter's private key: decrypt ``key_file`` with the passphrase from the environment, or
    read a hex key from ``key_hex_env`` (tests)."""
    from eth_account import Account

    if m.key_hex_env:
        text = os.environ.get(m.key_hex_env)
        if not text:
            raise ConfigError(f"environment variable {m.key_hex_env} is not set", source=source,
                              key=f"meters[{m.name}].key_hex_env")
        try:
            key = bytes.fromhex(text.strip().removeprefix("0x"))
        except ValueError as exc:
            raise ConfigError(f"environment variable {m.key_hex_env} is not a hex private key", source=source,
                              key=f"meters[{m.name}].key_hex_env") from exc
        if len(key) != 32:
            raise ConfigError(f"environment variable {m.key_hex_env} holds {len(key)} bytes, a key is 32",
                              source=source, key=f"meters[{m.name}].key_hex_env")
        return key
    assert m.key_file
    passphrase = os.environ.get(m.key_passphrase_env)
    if passphrase is None:
        raise ConfigError(f"set {m.key_passphrase_env} to the passphrase of {m.key_file}", source=source,
                          key=f"meters[{m.name}].key_passphrase_env")
    try:
        keystore = json.loads(Path(m.key_file).read_text())
        return bytes(Account.decrypt(keystore, passphrase))
    except FileNotFoundError as exc:
        raise ConfigError(f"key file {m.key_file} not found", source=source, key=f"meters[{m.name}].key_file") from exc
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ConfigError(f"wrong passphrase for the key file {m.key_file}: the passphrase in "
                              f"${m.key_passphrase_env} does not decrypt it; set the one it was made with "
                              "(gridcoop meters keygen)", source=source, key=f"meters[{m.name}].key_file") from exc
        raise ConfigError(f"cannot decrypt {m.key_file}: {exc}", source=source,
                          key=f"meters[{m.name}].key_file") from exc
