// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyDebtLedger
/// @notice Where energy drawn from the public grid beyond what an owner held in WATT is recorded
///         (the MeterRegistry), and how a settler (the EnergyMarket, which takes the payment at the
///         grid's retail price) clears it.
interface IEnergyDebtLedger {
    /// @notice Energy debt of `owner` in Wh.
    function energyDebtWh(address owner) external view returns (uint256);

    /// @notice Clear `amountWh` of `owner`'s energy debt once it has been paid for (settler only);
    ///         returns the debt left. Refuses 0 and more than is owed.
    function settleEnergyDebt(address owner, uint256 amountWh) external returns (uint256 remainingWh);
}
