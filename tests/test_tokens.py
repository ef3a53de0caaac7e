"""WATT and TSL: roles, burns, ERC-2612 permits and TSL's fixed supply."""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from web3 import Web3

from gridcoop_sdk import TransactionFailed, wh_to_watt
from gridcoop_sdk.artifacts import abi
from gridcoop_sdk.tx import send

TSL_SUPPLY = 10**9 * 10**18


def _role(contract, name: str) -> bytes:
    return getattr(contract.functions, name)().call()


def test_watt_metadata(watt):
    assert watt.functions.decimals().call() == 18
    assert watt.functions.symbol().call() == "WATT"
    assert watt.functions.totalSupply().call() == 0


def test_watt_mint_by_non_minter_is_refused_with_named_error(w3, watt, wallets):
    outsider = wallets[1]
    with pytest.raises(TransactionFailed) as err:
        send(w3, outsider, watt.functions.mint(outsider.address, 1))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["account"] == outsider.address
    assert err.value.error_args["neededRole"] == _role(watt, "MINTER_ROLE")
    assert watt.functions.totalSupply().call() == 0


def test_watt_minter_mints_and_burner_burns(w3, watt, deployer, wallets):
    minter, burner, user = wallets[1], wallets[2], wallets[3]
    send(w3, deployer, watt.functions.grantRole(_role(watt, "MINTER_ROLE"), minter.address))
    send(w3, deployer, watt.functions.grantRole(_role(watt, "BURNER_ROLE"), burner.address))
    send(w3, minter, watt.functions.mint(user.address, wh_to_watt(1500)))
    assert watt.functions.balanceOf(user.address).call() == 1500 * 10**15
    send(w3, burner, watt.functions.burn(user.address, wh_to_watt(500)))
    assert watt.functions.balanceOf(user.address).call() == 1000 * 10**15
    assert watt.functions.totalSupply().call() == 1000 * 10**15
    # A minter is not a burner.
    with pytest.raises(TransactionFailed) as err:
        send(w3, minter, watt.functions.burn(user.address, 1))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"


def test_watt_burn_beyond_balance_is_refused(w3, watt, deployer, wallets):
    user = wallets[3]
    for role in ("MINTER_ROLE", "BURNER_ROLE"):
        send(w3, deployer, watt.functions.grantRole(_role(watt, role), deployer.address))
    send(w3, deployer, watt.functions.mint(user.address, 100))
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, watt.functions.burn(user.address, 101))
    assert err.value.error_name == "ERC20InsufficientBalance"
    assert err.value.error_args == {"sender": user.address, "balance": 100, "needed": 101}
    assert watt.functions.balanceOf(user.address).call() == 100


def test_watt_zero_mint_is_refused(w3, watt, deployer, wallets):
    send(w3, deployer, watt.functions.grantRole(_role(watt, "MINTER_ROLE"), deployer.address))
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, watt.functions.mint(wallets[1].address, 0))
    assert err.value.error_name == "WattZeroAmount"


def test_watt_mint_batch_mints_each_and_refuses_bad_batches_whole(w3, watt, deployer, wallets):
    a, b, outsider = wallets[1], wallets[2], wallets[3]
    with pytest.raises(TransactionFailed) as err:
        send(w3, outsider, watt.functions.mintBatch([a.address], [1]))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    send(w3, deployer, watt.functions.grantRole(_role(watt, "MINTER_ROLE"), deployer.address))
    rcpt = send(w3, deployer, watt.functions.mintBatch([a.address, b.address, a.address],
                                                       [wh_to_watt(5), wh_to_watt(7), wh_to_watt(1)]))
    transfers = watt.events.Transfer().process_receipt(rcpt)
    assert [(e.args["from"], e.args.to, e.args.value) for e in transfers] == [
        ("0x" + "00" * 20, a.address, wh_to_watt(5)), ("0x" + "00" * 20, b.address, wh_to_watt(7)),
        ("0x" + "00" * 20, a.address, wh_to_watt(1))]
    assert watt.functions.balanceOf(a.address).call() == wh_to_watt(6)
    assert watt.functions.totalSupply().call() == wh_to_watt(13)
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, watt.functions.mintBatch([a.address, b.address], [1]))
    assert err.value.error_name == "WattBatchLengthMismatch"
    assert err.value.error_args == {"recipients": 2, "amounts": 1}
    with pytest.raises(TransactionFailed) as err:  # one zero amount refuses the whole batch
        send(w3, deployer, watt.functions.mintBatch([a.address, b.address], [1, 0]))
    assert err.value.error_name == "WattZeroAmount"
    assert watt.functions.totalSupply().call() == wh_to_watt(13)


def _permit_sig(token, owner, spender: str, value: int, deadline: int, chain_id: int, name: str):
    nonce = token.functions.nonces(owner.address).call()
    signed = Account.sign_typed_data(
        owner.key,
        domain_data={"name": name, "version": "1", "chainId": chain_id, "verifyingContract": token.address},
        message_types={
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        message_data={"owner": owner.address, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
    )
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


@pytest.mark.parametrize("token_name", ["watt", "tsl"])
def test_permit_sets_allowance(request, w3, wallets, token_name):
    token = request.getfixturevalue(token_name)
    name = token.functions.name().call()
    owner, spender = wallets[4], wallets[5]
    deadline = w3.eth.get_block("latest")["timestamp"] + 3600
    v, r, s = _permit_sig(token, owner, spender.address, 777, deadline, w3.eth.chain_id, name)
    send(w3, spender, token.functions.permit(owner.address, spender.address, 777, deadline, v, r, s))
    assert token.functions.allowance(owner.address, spender.address).call() == 777
    # The same signature cannot be used twice (nonce consumed).
    with pytest.raises(TransactionFailed) as err:
        send(w3, spender, token.functions.permit(owner.address, spender.address, 777, deadline, v, r, s))
    assert err.value.error_name == "ERC2612InvalidSigner"


@pytest.mark.parametrize("token_name", ["watt", "tsl"])
def test_permit_signed_for_another_chain_is_refused(request, w3, wallets, token_name):
    token = request.getfixturevalue(token_name)
    owner, spender = wallets[4], wallets[5]
    deadline = w3.eth.get_block("latest")["timestamp"] + 3600
    v, r, s = _permit_sig(token, owner, spender.address, 777, deadline, 1, token.functions.name().call())
    with pytest.raises(TransactionFailed) as err:
        send(w3, spender, token.functions.permit(owner.address, spender.address, 777, deadline, v, r, s))
    assert err.value.error_name == "ERC2612InvalidSigner"
    assert token.functions.allowance(owner.address, spender.address).call() == 0


@pytest.mark.parametrize("token_name", ["watt", "tsl"])
def test_permit_with_expired_deadline_is_refused(request, w3, wallets, token_name):
    token = request.getfixturevalue(token_name)
    owner, spender = wallets[4], wallets[5]
    deadline = w3.eth.get_block("latest")["timestamp"] - 1
    v, r, s = _permit_sig(token, owner, spender.address, 5, deadline, w3.eth.chain_id, token.functions.name().call())
    with pytest.raises(TransactionFailed) as err:
        send(w3, spender, token.functions.permit(owner.address, spender.address, 5, deadline, v, r, s))
    assert err.value.error_name == "ERC2612ExpiredSignature"
    assert err.value.error_args == {"deadline": deadline}


def test_tsl_fixed_supply_goes_to_treasury(tsl, wallets):
    assert tsl.functions.totalSupply().call() == TSL_SUPPLY
    assert tsl.functions.TOTAL_SUPPLY().call() == TSL_SUPPLY
    assert tsl.functions.balanceOf(wallets[9].address).call() == TSL_SUPPLY
    assert tsl.functions.symbol().call() == "TSL"


def test_tsl_supply_is_constant_after_random_transfers(w3, tsl, wallets):
    rng = random.Random(20261122)
    holders = wallets[5:10]
    for _ in range(40):
        src = rng.choice(holders)
        bal = tsl.functions.balanceOf(src.address).call()
        if bal == 0:
            continue
        dst = rng.choice(holders)
        amount = rng.randint(1, bal)
        if rng.random() < 0.3:
            send(w3, src, tsl.functions.approve(wallets[1].address, amount))
            send(w3, wallets[1], tsl.functions.transferFrom(src.address, dst.address, amount))
        else:
            send(w3, src, tsl.functions.transfer(dst.address, amount))
        assert tsl.functions.totalSupply().call() == TSL_SUPPLY
    assert sum(tsl.functions.balanceOf(h.address).call() for h in holders) == TSL_SUPPLY


def test_tsl_has_no_function_that_can_raise_supply():
    """Every state-changing TSL function is a standard ERC-20/ERC-2612 one: none mints."""
    mutating = sorted(
        e["name"] for e in abi("TeslaToken")
        if e["type"] == "function" and e["stateMutability"] not in ("view", "pure")
    )
    assert mutating == ["approve", "permit", "transfer", "transferFrom"]
    all_names = {e.get("name", "") for e in abi("TeslaToken")}
    assert not {n for n in all_names if "mint" in n.lower() or "upgrade" in n.lower()}
    # and no constructor-only backdoor such as a fallback/receive
    assert not [e for e in abi("TeslaToken") if e["type"] in ("fallback", "receive")]


def test_tsl_treasury_must_not_be_zero(w3, deployer, deployments_dir):
    from gridcoop_sdk.contracts import deploy
    with pytest.raises(TransactionFailed) as err:
        deploy(w3, deployer, "TeslaToken", "0x" + "00" * 20)
    assert err.value.error_name == "TeslaInvalidTreasury"
    assert Web3.is_address(deployer.address)
