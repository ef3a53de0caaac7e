// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEnergyMarket} from "../../../contracts/interfaces/IEnergyMarket.sol";

/// @dev Small arrays for EnergyMarket.settle batches in the forge tests (orders, packed trades).
library MarketBatch {
    function orders(IEnergyMarket.Order memory o0) internal pure returns (IEnergyMarket.Order[] memory os) {
        os = new IEnergyMarket.Order[](1);
        os[0] = o0;
    }

    function orders(IEnergyMarket.Order memory o0, IEnergyMarket.Order memory o1)
        internal
        pure
        returns (IEnergyMarket.Order[] memory os)
    {
        os = new IEnergyMarket.Order[](2);
        os[0] = o0;
        os[1] = o1;
    }

    function trades(uint256 t0) internal pure returns (uint256[] memory ts) {
        ts = new uint256[](1);
        ts[0] = t0;
    }

    function trades(uint256 t0, uint256 t1) internal pure returns (uint256[] memory ts) {
        ts = new uint256[](2);
        ts[0] = t0;
        ts[1] = t1;
    }
}
