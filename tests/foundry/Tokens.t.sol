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
