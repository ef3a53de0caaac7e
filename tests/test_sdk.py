"""The chain SDK: connection errors, units, deployments records, artifacts, error decoding."""

from __future__ import annotations

import json
import time

import pytest

from gridcoop_sdk import ChainIdMismatchError, NodeUnreachableError, connect, units
from gridcoop_sdk import deployments as deps
from gridcoop_sdk.artifacts import ArtifactError, artifact, decode_error
from gridcoop_sdk.chain import free_port
from gridcoop_sdk.region import deploy_tokens


def test_connect_to_a_down_node_fails_fast_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(NodeUnreachableError) as err:
        connect(url)
    assert time.monotonic() - t0 < 5
    assert url in str(err.value)
    assert isinstance(err.value, ConnectionError)


def test_connect_refuses_a_wrong_chain_id(anvil):
    with pytest.raises(ChainIdMismatchError) as err:
        connect(anvil.url, expected_chain_id=1)
    assert "31337" in str(err.value) and "expected 1" in str(err.value)


def test_units_are_exact():
    assert units.wh_to_watt(1) == 10**15
    assert units.wh_to_watt(1000) == 10**18  # 1 kWh = 1 WATT
    assert units.watt_to_wh(10**15 * 7 + 999) == 7  # never rounds energy up
    assert units.parse_energy("1.5kWh") == 1500
    assert units.parse_energy("250Wh") == 250
    assert units.parse_energy("2 MWh") == 2_000_000
    assert units.interval_id(900 * 5 + 899) == 5
    assert units.interval_start(5) == 4500
    with pytest.raises(ValueError, match="whole number"):
        units.parse_energy("1.0005kWh")
    with pytest.raises(ValueError, match="negative"):
        units.parse_energy("-1kWh")
    with pytest.raises(TypeError):
        units.wh_to_watt(1.5)


def test_region_deployment_is_recorded_per_chain(w3, deployer, deployments_dir):
    region = deploy_tokens(w3, deployer, name="kyoto")
    data = json.loads((deployments_dir / f"{w3.eth.chain_id}.json").read_text())
    assert set(data) == {"kyoto.WattToken", "kyoto.TeslaToken", "platform.TeslaToken"}
    assert data["kyoto.TeslaToken"] == data["platform.TeslaToken"]  # the region references the chain's TSL
    again = deploy_tokens(w3, deployer, name="osaka-2")
    assert again["TeslaToken"].address == region["TeslaToken"].address  # deployed once per chain
    rec = data["kyoto.WattToken"]
    assert rec["address"] == region["WattToken"].address
    receipt = w3.eth.get_transaction_receipt(rec["tx"])
    assert receipt["contractAddress"] == rec["address"] and receipt["blockNumber"] == rec["block"]
    assert deps.address_of(w3.eth.chain_id, "kyoto.TeslaToken") == region["TeslaToken"].address
    with pytest.raises(LookupError, match="osaka.WattToken"):
        deps.address_of(w3.eth.chain_id, "osaka.WattToken")


def test_artifacts_name_missing_contracts():
    assert len(artifact("WattToken").bytecode) > 1000
    with pytest.raises(ArtifactError, match="NoSuchContract"):
        artifact("NoSuchContract")


def test_decode_error_knows_project_and_standard_errors():
    from eth_abi import encode
    from eth_utils import keccak

    data = keccak(text="ERC2612ExpiredSignature(uint256)")[:4] + encode(["uint256"], [42])
    assert decode_error(data) == ("ERC2612ExpiredSignature", {"deadline": 42})
    assert decode_error("0x08c379a0" + encode(["string"], ["boom"]).hex()) == ("Error", {"message": "boom"})
    assert decode_error(b"\x12\x34\x56\x78") is None


def test_solc_facade_serves_py_solc_x_with_full_output():
    """py-solc-x drives the solc-js facade like a native solc; the big JSON is not cut at 64 KiB."""
    import solcx

    from gridcoop_sdk.paths import project_root

    root = project_root()
    binary = root / "tools" / "solc" / "solc"
    from solcx.wrapper import get_solc_version

    assert str(get_solc_version(binary)) == "0.8.28"
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"contracts/tokens/WattToken.sol": {"urls": [str(root / "contracts/tokens/WattToken.sol")]}},
            "settings": {
                "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
                "optimizer": {"enabled": True, "runs": 200},
                "evmVersion": "cancun",
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
            },
        },
        solc_binary=binary,
        base_path=str(root),
        allow_paths=[str(root)],
    )
    compiled = out["contracts"]["contracts/tokens/WattToken.sol"]["WattToken"]
    assert len(compiled["evm"]["bytecode"]["object"]) > 10_000
    assert any(e.get("name") == "mint" for e in compiled["abi"])
