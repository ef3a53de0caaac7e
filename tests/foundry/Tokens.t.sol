// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {TeslaToken} from "../../contracts/tokens/TeslaToken.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract TokensFuzzTest is TestBase {
    TeslaToken internal tsl;
    WattToken internal watt;
    address internal constant TREASURY = address(0x7EA5);

    function setUp() public {
        tsl = new TeslaToken(TREASURY);
        watt = new WattToken(address(this));
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        watt.grantRole(watt.BURNER_ROLE(), address(this));
    }

    function testFuzz_tslSupplyConstantUnderTransfers(address to, uint256 amount, uint256 back) public {
        vm.assume(to != address(0) && to != TREASURY);
        amount = bound(amount, 0, tsl.TOTAL_SUPPLY());
        vm.prank(TREASURY);
        tsl.transfer(to, amount);
        back = bound(back, 0, amount);
        vm.prank(to);
        tsl.transfer(TREASURY, back);
        assertEq(tsl.totalSupply(), 1_000_000_000 ether, "TSL supply");
        assertEq(tsl.balanceOf(TREASURY) + tsl.balanceOf(to), 1_000_000_000 ether, "TSL holders");
    }

    function testFuzz_wattSupplyIsMintedMinusBurnt(uint96 minted, uint96 burnt) public {
        vm.assume(minted > 0);
        burnt = uint96(bound(burnt, 1, minted));
        watt.mint(address(0xBEEF), minted);
        watt.burn(address(0xBEEF), burnt);
        assertEq(watt.totalSupply(), uint256(minted) - burnt, "WATT supply");
    }

    function testFuzz_wattMintByOutsiderReverts(address outsider) public {
        vm.assume(outsider != address(this));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, outsider, watt.MINTER_ROLE()
            )
        );
        vm.prank(outsider);
        watt.mint(outsider, 1);
    }
}

/// @notice Drives random transfers, approvals, transferFroms, mints and burns among a few actors.
contract TokensHandler is TestBase {
    TeslaToken public immutable tsl;
    WattToken public immutable watt;
    address[4] internal actors = [address(0xA11CE), address(0xB0B), address(0xC4A5), address(0xD0D0)];
    uint256 public ghostMinted;
    uint256 public ghostBurnt;

    constructor(TeslaToken tsl_, WattToken watt_) {
        tsl = tsl_;
        watt = watt_;
    }

    function actor(uint256 i) public view returns (address) {
        return actors[i % actors.length];
    }

    function tslTransfer(uint256 from, uint256 to, uint256 amount) external {
        address f = actor(from);
        amount = bound(amount, 0, tsl.balanceOf(f));
        vm.prank(f);
        tsl.transfer(actor(to), amount);
    }

    function tslApproveAndPull(uint256 owner, uint256 spender, uint256 amount) external {
        address o = actor(owner);
        address s = actor(spender);
        amount = bound(amount, 0, tsl.balanceOf(o));
        vm.prank(o);
        tsl.approve(s, amount);
        vm.prank(s);
        tsl.transferFrom(o, s, amount);
    }

    function wattMint(uint256 to, uint256 amount) external {
        amount = bound(amount, 1, 1e30);
        watt.mint(actor(to), amount);
        ghostMinted += amount;
    }

    function wattBurn(uint256 from, uint256 amount) external {
        address f = actor(from);
        amount = bound(amount, 0, watt.balanceOf(f));
        watt.burn(f, amount);
        ghostBurnt += amount;
    }

    function wattTransfer(uint256 from, uint256 to, uint256 amount) external {
        address f = actor(from);
        amount = bound(amount, 0, watt.balanceOf(f));
        vm.prank(f);
        watt.transfer(actor(to), amount);
    }
}

/// @notice Invariants over random sequences: TSL's supply never changes and stays with its
///         holders; WATT's supply is always minted − burnt.
contract TokensInvariantTest is TestBase {
    TeslaToken internal tsl;
    WattToken internal watt;
    TokensHandler internal handler;

    function setUp() public {
        watt = new WattToken(address(this));
        tsl = new TeslaToken(address(0xA11CE)); // the whole supply starts with the first actor
        handler = new TokensHandler(tsl, watt);
        watt.grantRole(watt.MINTER_ROLE(), address(handler));
        watt.grantRole(watt.BURNER_ROLE(), address(handler));
        targetContract(address(handler));
    }

    function invariant_tslSupplyIsConstant() public view {
        assertEq(tsl.totalSupply(), 1_000_000_000 ether, "TSL supply");
        uint256 held;
        for (uint256 i; i < 4; ++i) {
            held += tsl.balanceOf(handler.actor(i));
        }
        assertEq(held, 1_000_000_000 ether, "TSL held by the actors");
    }

    function invariant_wattSupplyIsMintedMinusBurnt() public view {
        assertEq(watt.totalSupply(), handler.ghostMinted() - handler.ghostBurnt(), "WATT supply");
    }
}
