"""Assemble a :class:`~meter_bridge.gateway.Gateway` from a :class:`~meter_bridge.config.GatewayConfig`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from eth_account import Account
from web3 import Web3

from gridcoop_sdk.chain import connect
from gridcoop_sdk.contracts import at
from gridcoop_sdk.exceptions import ConfigError
from gridcoop_sdk.readings import ReadingSigner, meter_id

from .config import GatewayConfig, ModbusEndpoint, load_device_key
from .gateway import Gateway, Site
from .intervals import IntervalBuilder
from .outbox import Outbox
from .pushers import DirectPusher, HttpPusher, MqttPusher
from .reader import ModbusMeterReader
from .registermap import load_map


def _reader(ep: ModbusEndpoint) -> ModbusMeterReader:
    return ModbusMeterReader(load_map(ep.map), host=ep.host, port=ep.port, unit=ep.unit,
                             serial_port=ep.serial_port, baudrate=ep.baudrate)


def build_gateway(cfg: GatewayConfig, *, clock: Callable[[], float] = time.time, source: str = "config",
                  w3: Web3 | None = None) -> Gateway:
    if w3 is None and cfg.rpc_url:
        w3 = connect(cfg.rpc_url, expected_chain_id=cfg.chain_id)
    chain_id = cfg.chain_id if cfg.chain_id is not None else w3.eth.chain_id  # type: ignore[union-attr]
    registry_addr = cfg.registry
    registry = None
    if w3 is not None:
        registry = at(w3, "MeterRegistry", registry_addr)
        registry_addr = registry.address
    assert registry_addr
    sites = []
    for m in cfg.meters:
        key = load_device_key(m, source=source)
        sites.append(Site(
            name=m.name,
            signer=ReadingSigner(key, chain_id, registry_addr),
            grid=_reader(m.grid),
            generation=_reader(m.generation) if m.generation else None,
            builder=IntervalBuilder(m.name, meter_id(m.meter_id or m.name), interval=cfg.interval, skew=cfg.skew),
        ))
    if cfg.pusher == "direct":
        gas_key = os.environ.get(cfg.gas_key_env)
        if not gas_key:
            raise ConfigError(f"set {cfg.gas_key_env} to the gateway gas account's hex key", source=source,
                              key="gas_key_env")
        pusher = DirectPusher(w3, Account.from_key(gas_key), registry)  # type: ignore[arg-type]
    elif cfg.pusher == "mqtt":
        assert cfg.mqtt_url and cfg.region
        from pathlib import Path

        pusher = MqttPusher(cfg.mqtt_url, cfg.region,
                            client_id=cfg.mqtt_client_id or f"gateway-{Path(cfg.outbox).stem}")
    else:
        assert cfg.keeper_url
        pusher = HttpPusher(cfg.keeper_url)
    chain_view = pusher.last_sequence if isinstance(pusher, HttpPusher) else None
    if cfg.pusher == "mqtt" and cfg.keeper_url:  # no node of its own: ask the keeper relay, as pusher: http does
        chain_view = HttpPusher(cfg.keeper_url).last_sequence
    if registry is not None:
        def chain_view(mid: bytes, _reg=registry) -> int:
            return int(_reg.functions.getMeter(mid).call()[8])  # lastSequence
    return Gateway(sites, Outbox(cfg.outbox, clock=clock), pusher, clock=clock, batch_size=cfg.batch_size,
                   chain_view=chain_view, reconcile_every=cfg.reconcile_every, resend_after=cfg.resend_after)
