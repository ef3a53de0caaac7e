"""Meter readings: the EIP-712 ``MeterReading`` message, fast signing, and the relay wire format.

The type comes from the single definition in :mod:`gridcoop_sdk.eip712` (``TYPES["MeterReading"]``);
``MeterRegistry.READING_TYPEHASH`` must hash to the same string (a test checks it).
:meth:`Reading.typed_data` and :meth:`Reading.digest` go through eth-account's typed-data
encoding like every other signed message of the SDK.

:class:`ReadingSigner` is the one hand-written EIP-712 path of the project, kept for speed: a
gateway signs every meter's reading at each interval close, and the bench target is
``bridge_sign_per_s`` ≥ 10,000 on one core. Measured on this 2-core machine (2026-12-04, idle,
``bench/bench_meters.py``): eth-account's ``Account.sign_typed_data`` signs 3,100–3,300
readings/s (``bridge_sign_eth_account_per_s``), and neither half alone reaches the target
(``encode_typed_data`` about 6,600/s, ``unsafe_sign_hash`` of a ready digest about 3,200/s); the
fast signer signs 38,000–41,000/s (``bridge_sign_per_s``; 1,300–1,600 against 13,000–21,000 with
test suites running beside it). It encodes the struct by hand (every field is one static ABI
word: one ``struct.pack``), hashes with a C keccak, takes the domain separator from eth-account
once per registry and signs with coincurve (RFC 6979, low-s, the same bytes as eth-account).
``tests/test_eip712.py`` checks, for random readings, keys and domains, that its struct hash,
digest and signature equal eth-account's exactly.

Wire format (``SignedReading.to_json()``, one JSON object per reading)::

    {"meter_id": "0x<64 hex>", "sequence": 7, "interval_start": 1700000100,
     "interval_end": 1700001000, "generation_wh": 410, "consumption_wh": 220,
     "export_wh": 190, "import_wh": 0, "frequency_mhz": 50012,
     "signature": "0x<130 hex>", "chain_id": 31337, "registry": "0x<40 hex>"}
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

from eth_utils import to_checksum_address
from sha3 import keccak_256  # safe-pysha3: a C keccak, ~2x eth-hash's pycryptodome path for short inputs

from . import eip712
from .eip712 import domain_separator, type_hash
from .exceptions import GridcoopError

UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1
_SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: ``MeterRegistry.Reason`` codes by index (``ReadingRejected.reason``, ``whyRefused``).
REASONS: tuple[str, ...] = (
    "None",
    "UnknownMeter",
    "BadSignature",
    "MeterSuspended",
    "StaleSequence",
    "StaleInterval",
    "BadInterval",
    "OverCapacity",
    "ExportExceedsGeneration",
    "EnergyImbalance",
    "BadFrequency",
    "Duplicate",
    "SequenceTooLarge",
    "FutureInterval",
    "BeforeRegistration",
    "KindMismatch",
)


def _keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()


#: The eight integer fields of a reading as ABI words (each a uint64/uint32, left-padded to 32 bytes).
_INT_WORDS = struct.Struct(">" + "24xQ" * 8)


def reason_name(code: int) -> str:
    """Name of a ``Reason`` code (``"Unknown(<code>)"`` for codes this SDK does not know)."""
    return REASONS[code] if 0 <= code < len(REASONS) else f"Unknown({code})"


class ReadingError(GridcoopError, ValueError):
    """A reading or its wire form is malformed; the message says which field and why."""


def meter_id(text: str | bytes) -> bytes:
    """The bytes32 id of a meter: ``0x`` + 64 hex digits as is, else keccak256 of the UTF-8 text."""
    if isinstance(text, bytes):
        if len(text) != 32:
            raise ReadingError(f"a meter id is 32 bytes, got {len(text)}")
        return text
    s = str(text).strip()
    if not s:
        raise ReadingError("a meter id must not be empty")
    if s.startswith("0x") and len(s) == 66:
        try:
            return bytes.fromhex(s[2:])
        except ValueError as exc:
            raise ReadingError(f"meter id {s!r} is not hex") from exc
    return _keccak(s.encode())


def colour(text: str) -> bytes:
    """Colour attribute as bytes32: the UTF-8 text right-padded with zeros (e.g. ``"solar"``)."""
    raw = str(text).strip().lower().encode()
    if not raw or len(raw) > 32:
        raise ReadingError(f"colour must be 1..32 bytes of text, got {text!r}")
    return raw.ljust(32, b"\0")


def colour_text(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode(errors="replace")


_FIELD_MAP = (
    ("meter_id", "meterId"),
    ("sequence", "sequence"),
    ("interval_start", "intervalStart"),
    ("interval_end", "intervalEnd"),
    ("generation_wh", "generationWh"),
    ("consumption_wh", "consumptionWh"),
    ("export_wh", "exportWh"),
    ("import_wh", "importWh"),
    ("frequency_mhz", "frequencyMHz"),
)


@dataclass(frozen=True)
class Reading:
    """One 15-minute interval reading of a meter (integer Wh; frequency in mHz)."""

    meter_id: bytes
    sequence: int
    interval_start: int
    interval_end: int
    generation_wh: int
    consumption_wh: int
    export_wh: int
    import_wh: int
    frequency_mhz: int

    def __post_init__(self) -> None:
        if not isinstance(self.meter_id, bytes) or len(self.meter_id) != 32:
            raise ReadingError("meter_id must be 32 bytes (use gridcoop_sdk.readings.meter_id())")
        for f in fields(self)[1:]:
            v = getattr(self, f.name)
            limit = UINT32_MAX if f.name == "frequency_mhz" else UINT64_MAX
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
                raise ReadingError(f"{f.name} must be an integer in 0..{limit}, got {v!r}")

    def as_tuple(self) -> tuple:
        """The ``MeterRegistry.Reading`` struct as a tuple (for contract calls)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def struct_hash(self) -> bytes:
        """keccak256(abi.encode(READING_TYPEHASH, fields…)), by hand for :class:`ReadingSigner`:
        every field is one static word (equal to eth-account's ``hash_struct``; a test checks it)."""
        return _keccak(_reading_typehash() + self.meter_id + _INT_WORDS.pack(
            self.sequence, self.interval_start, self.interval_end, self.generation_wh,
            self.consumption_wh, self.export_wh, self.import_wh, self.frequency_mhz))

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (Solidity field names)."""
        return {sol: getattr(self, py) for py, sol in _FIELD_MAP}

    def digest(self, chain_id: int, registry_address: str) -> bytes:
        """The EIP-712 digest that the meter signs (equals ``MeterRegistry.readingDigest``),
        encoded and hashed by eth-account."""
        return eip712.digest("MeterReading", self.message(), chain_id, registry_address)

    def typed_data(self, chain_id: int, registry_address: str) -> dict[str, Any]:
        """Full EIP-712 typed data (for wallets and eth-account's generic path)."""
        return eip712.typed_data("MeterReading", self.message(), chain_id, registry_address)


@lru_cache(maxsize=1)
def _reading_typehash() -> bytes:
    return type_hash("MeterReading")


@lru_cache(maxsize=64)
def _domain_sep(chain_id: int, registry: str) -> bytes:
    return domain_separator(chain_id, registry)


@dataclass(frozen=True)
class SignedReading:
    """A reading with the meter's 65-byte signature and the domain it was signed for."""

    reading: Reading
    signature: bytes
    chain_id: int
    registry: str

    def digest(self) -> bytes:
        return self.reading.digest(self.chain_id, self.registry)

    def fast_digest(self) -> bytes:
        """The same EIP-712 digest as :meth:`digest`, by hand like :class:`ReadingSigner` (about
        50× faster than eth-account's typed-data encoding; a relay worker checks thousands per second)."""
        return _keccak(b"\x19\x01" + _domain_sep(self.chain_id, to_checksum_address(self.registry))
                       + self.reading.struct_hash())

    def recover_signer(self) -> str | None:
        """The address that signed this reading, recovered like ``MeterRegistry`` does (None for a
        malformed signature, a high-s twin or v other than 27/28), with coincurve."""
        from coincurve import PublicKey

        sig = self.signature
        if len(sig) != 65 or sig[64] not in (27, 28):
            return None
        s = int.from_bytes(sig[32:64], "big")
        if s == 0 or s > _SECP_N // 2:
            return None
        try:
            pub = PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), self.fast_digest(),
                                                       hasher=None)
        except Exception:  # coincurve: not a valid signature for any key
            return None
        return to_checksum_address(_keccak(pub.format(compressed=False)[1:])[-20:])

    def key(self) -> tuple[str, int]:
        """(meter id hex, sequence) — identifies the reading in outboxes and results."""
        return ("0x" + self.reading.meter_id.hex(), self.reading.sequence)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self.reading)
        d["meter_id"] = "0x" + self.reading.meter_id.hex()
        d["signature"] = "0x" + self.signature.hex()
        d["chain_id"] = self.chain_id
        d["registry"] = to_checksum_address(self.registry)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignedReading:
        if not isinstance(d, dict):
            raise ReadingError(f"a signed reading is a JSON object, got {type(d).__name__}")
        missing = [k for k, _ in _FIELD_MAP if k not in d] + [
            k for k in ("signature", "chain_id", "registry") if k not in d
        ]
        if missing:
            raise ReadingError(f"signed reading lacks field(s): {', '.join(missing)}")
        try:
            reading = Reading(meter_id=meter_id(str(d["meter_id"])), **{k: d[k] for k, _ in _FIELD_MAP[1:]})
            sig_text = str(d["signature"])
            sig = bytes.fromhex(sig_text[2:] if sig_text.startswith("0x") else sig_text)
            registry = to_checksum_address(str(d["registry"]))
        except ReadingError:
            raise
        except ValueError as exc:
            raise ReadingError(f"malformed signed reading: {exc}") from exc
        if len(sig) != 65:
            raise ReadingError(f"signature must be 65 bytes, got {len(sig)}")
        if not isinstance(d["chain_id"], int):
            raise ReadingError("chain_id must be an integer")
        return cls(reading=reading, signature=sig, chain_id=d["chain_id"], registry=registry)

    @classmethod
    def from_json(cls, text: str | bytes) -> SignedReading:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReadingError(f"signed reading is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


class ReadingSigner:
    """Signs readings with one device key, fast: about 12× eth-account's ``sign_typed_data``
    (see the module docstring for the figures and why); the bytes equal eth-account's.

    Keeps the parsed coincurve key and the domain separator; per reading it hashes the struct by
    hand (:meth:`Reading.struct_hash`) and signs the digest (:meth:`digest`) with coincurve.
    """

    def __init__(self, private_key: bytes | str, chain_id: int, registry_address: str):
        from coincurve import PrivateKey
        from eth_account import Account

        key = _key_bytes(private_key)
        self._key = PrivateKey(key)
        self.address = Account.from_key(key).address
        self.chain_id = int(chain_id)
        self.registry = to_checksum_address(registry_address)
        self._prefix = b"\x19\x01" + _domain_sep(self.chain_id, self.registry)

    def digest(self, reading: Reading) -> bytes:
        """The EIP-712 digest, by hand: keccak256(0x1901 ‖ domain separator ‖ struct hash)."""
        return _keccak(self._prefix + reading.struct_hash())

    def sign(self, reading: Reading) -> SignedReading:
        digest = _keccak(self._prefix + reading.struct_hash())
        raw = self._key.sign_recoverable(digest, hasher=None)  # r‖s‖recid, low-s
        sig = raw[:64] + bytes([raw[64] + 27])
        return SignedReading(reading=reading, signature=sig, chain_id=self.chain_id, registry=self.registry)


def _key_bytes(private_key: bytes | str) -> bytes:
    if isinstance(private_key, bytes):
        key = private_key
    else:
        s = str(private_key).strip()
        try:
            key = bytes.fromhex(s[2:] if s.startswith("0x") else s)
        except ValueError as exc:
            raise ReadingError("private key must be 32 bytes of hex") from exc
    if len(key) != 32:
        raise ReadingError(f"private key must be 32 bytes, got {len(key)}")
    return key


def sign_reading(reading: Reading, private_key: bytes | str, chain_id: int, registry_address: str) -> SignedReading:
    """Sign ``reading`` for the registry at ``registry_address`` on ``chain_id``.

    For many readings with one key, keep a :class:`ReadingSigner` (it parses the key once).
    """
    return ReadingSigner(private_key, chain_id, registry_address).sign(reading)
