"""EIP-712 without a node: the fast reading signer against eth-account, orders through eth-account,
and no other hand-written typed-data encoding in the project."""

from __future__ import annotations

import ast
from pathlib import Path

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoop_sdk import eip712
from gridcoop_sdk.orders import Order, SignedOrder, order_hash, recover_signer, sign_order
from gridcoop_sdk.readings import Reading, ReadingSigner, sign_reading

ROOT = Path(__file__).resolve().parents[1]
EIP712_PREFIX = bytes((0x19, 0x01))  # not written as a literal: this file would find itself
SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

u64 = st.integers(0, 2**64 - 1)
keys = st.integers(1, SECP_N - 1).map(lambda k: k.to_bytes(32, "big"))
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
chain_ids = st.one_of(st.sampled_from([1, 31337, 11155111]), st.integers(1, 2**64 - 1))
readings = st.builds(
    Reading,
    meter_id=st.binary(min_size=32, max_size=32),
    sequence=u64, interval_start=u64, interval_end=u64, generation_wh=u64, consumption_wh=u64,
    export_wh=u64, import_wh=u64, frequency_mhz=st.integers(0, 2**32 - 1),
)


def _reading_full_message(r: Reading, chain_id: int, registry: str) -> dict:
    """The typed data written out here, from the one type definition, not by the SDK's helpers."""
    return {
        "types": {"EIP712Domain": eip712.EIP712_DOMAIN_FIELDS, "MeterReading": eip712.TYPES["MeterReading"]},
        "primaryType": "MeterReading",
        "domain": {"name": "gridcoop", "version": "1", "chainId": chain_id, "verifyingContract": registry},
        "message": {
            "meterId": r.meter_id, "sequence": r.sequence, "intervalStart": r.interval_start,
            "intervalEnd": r.interval_end, "generationWh": r.generation_wh, "consumptionWh": r.consumption_wh,
            "exportWh": r.export_wh, "importWh": r.import_wh, "frequencyMHz": r.frequency_mhz,
        },
    }


@settings(max_examples=300, deadline=None)
@given(reading=readings, key=keys, chain_id=chain_ids, registry=addresses)
def test_fast_reading_signer_equals_eth_account(reading, key, chain_id, registry):
    signable = encode_typed_data(full_message=_reading_full_message(reading, chain_id, registry))
    reference = Account.sign_message(signable, key)
    signer = ReadingSigner(key, chain_id, registry)

    assert reading.struct_hash() == bytes(signable.body)
    assert signer.digest(reading) == bytes(reference.message_hash)
    signed = signer.sign(reading)
    assert signed.signature == bytes(reference.signature)
    assert signed.signature == bytes(Account.unsafe_sign_hash(reference.message_hash, key).signature)
    # the SDK's off-hot-path digest (eth-account) and the one-shot helper agree too
    assert reading.digest(chain_id, registry) == bytes(reference.message_hash)
    assert sign_reading(reading, "0x" + key.hex(), chain_id, registry) == signed
    assert Account._recover_hash(reference.message_hash, signature=signed.signature) == signer.address


def test_hash_signable_is_eth_accounts_eip191_hash():
    r = Reading(meter_id=b"\x01" * 32, sequence=7, interval_start=900, interval_end=1800, generation_wh=5,
                consumption_wh=3, export_wh=2, import_wh=0, frequency_mhz=50_000)
    signable = eip712.signable("MeterReading", r.message(), 31337, "0x" + "12" * 20)
    assert eip712.hash_signable(signable) == bytes(_hash_eip191_message(signable))
    assert eip712.domain_separator(31337, "0x" + "12" * 20) == bytes(signable.header)


orders = st.builds(
    lambda key, side, iid, wh, price, token, expiry, pf, salt, counterparty, colour: (key, Order(
        maker=Account.from_key(key).address, side=side, interval_id=iid, amount_wh=wh, limit_price=price,
        payment_token=token, expiry=expiry, partially_fillable=pf, salt=salt, counterparty=counterparty,
        colour=colour)),
    keys, st.sampled_from(["sell", "buy"]), u64, st.integers(1, 2**96 - 1), st.integers(0, 2**128 - 1),
    addresses, u64, st.booleans(), st.integers(0, 2**256 - 1),
    st.just("0x0000000000000000000000000000000000000000"),
    st.sampled_from(["", "solar", "wind", "0x" + "ab" * 32]),
)


@settings(max_examples=60, deadline=None)
@given(key_order=orders, chain_id=chain_ids, market=addresses, compact=st.booleans())
def test_orders_are_signed_with_eth_accounts_typed_data(key_order, chain_id, market, compact):
    key, order = key_order
    reference = Account.sign_typed_data(key, full_message=order.typed_data(chain_id, market))
    assert order_hash(order, chain_id, market) == bytes(reference.message_hash)
    signed = sign_order(order, key, chain_id, market, compact=compact)
    assert signed.hash == bytes(reference.message_hash)
    if compact:
        assert len(signed.signature) == 64
    else:
        assert signed.signature == bytes(reference.signature)
    assert recover_signer(signed.hash, signed.signature) == order.maker
    assert SignedOrder.from_json(signed.to_json()) == signed


def _project_python_files():
    for top in ("gridcoop_sdk", "keeper", "meter_bridge", "coop_demo", "scripts", "bench", "tests", "tools"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_typed_data_is_encoded_by_hand_only_in_the_fast_reading_signer():
    """``\\x19\\x01`` (the EIP-712 prefix) written out in code means hand-made encoding; the one
    place allowed is ``ReadingSigner`` (checked against eth-account above)."""
    found = []
    for path in _project_python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, bytes) and EIP712_PREFIX in node.value:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert [f for f in found if not f.startswith("gridcoop_sdk/readings.py:")] == []
    assert found, "the fast reading signer no longer builds the prefix: update this test"
