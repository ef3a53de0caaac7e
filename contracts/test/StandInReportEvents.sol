// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title StandInReportEvents (tests only)
/// @notice Emits the MeterRegistry `ReadingAccepted` and EnergyMarket `Trade` events with their exact
///         signatures, so the carbon report's chain loaders can be tested before those contracts land.
contract StandInReportEvents {
    /// @notice Same signature as MeterRegistry's event.
    event ReadingAccepted(
        bytes32 indexed meterId,
        uint64 indexed sequence,
        address indexed owner,
        uint64 intervalStart,
        uint64 generationWh,
        uint64 consumptionWh,
        uint64 exportWh,
        uint64 importWh,
        uint64 selfConsumedWh,
        uint32 frequencyMHz
    );
    /// @notice Same signature as EnergyMarket's event.
    event Trade(
        uint64 indexed intervalId,
        address indexed seller,
        address indexed buyer,
        uint256 wh,
        uint256 pricePerKwh,
        address paymentToken,
        bytes32 tradeId,
        bytes32 colour
    );

    /// @notice Emits one `ReadingAccepted`.
    function reading(
        bytes32 meterId,
        uint64 sequence,
        address owner,
        uint64 intervalStart,
        uint64[5] calldata whs // generation, consumption, export, import, self-consumed
    ) external {
        emit ReadingAccepted(meterId, sequence, owner, intervalStart, whs[0], whs[1], whs[2], whs[3], whs[4], 50_000);
    }

    /// @notice Emits one `Trade`.
    function trade(uint64 intervalId, address seller, address buyer, uint256 wh) external {
        emit Trade(
            intervalId, seller, buyer, wh, 30e18, address(0), keccak256(abi.encode(intervalId, seller, buyer, wh)), 0
        );
    }
}
