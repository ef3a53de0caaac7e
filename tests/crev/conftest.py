"""C-REV fixtures: a fresh C-REV (+ certificate) and a stand-in meter issuer per test."""

from __future__ import annotations

import pytest

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.crev import deploy_crev
from gridcoop_sdk.tx import send

FACTOR = 450  # g-CO2/kWh
MINIMUM = 10**15  # 1 kg-CO2e


@pytest.fixture
def crev(w3, deployer, deployments_dir):
    return deploy_crev(w3, deployer, issuer=None, factor_g_per_kwh=FACTOR, minimum_retirement=MINIMUM,
                       region="test", directory=deployments_dir)


@pytest.fixture
def issuer(w3, deployer, crev):
    """Stand-in for the MeterRegistry, holding ISSUER_ROLE; meters b"A".. b"D" are certified."""
    stand_in = deploy(w3, deployer, "StandInMeterIssuer", crev.token.address, record=False)
    send(w3, deployer, crev.token.functions.grantRole(crev.token.functions.ISSUER_ROLE().call(), stand_in.address))
    for m in (b"A", b"B", b"C", b"D"):
        send(w3, deployer, stand_in.functions.setCertified(meter(m), True))
    return stand_in


def meter(name: bytes) -> bytes:
    return name.ljust(32, b"\0")


@pytest.fixture
def issue(w3, deployer, issuer):
    """issue(meter_name, owner, k, wh, seconds=900) -> receipt: the reading of the k-th interval of
    ``seconds`` (start = k x seconds, Unix time), as the registry passes it to C-REV."""

    def _issue(name: bytes, owner: str, k: int, wh: int, seconds: int = 900):
        return send(w3, deployer, issuer.functions.submit(meter(name), owner, k * seconds, seconds, wh))

    return _issue
