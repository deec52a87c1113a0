// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title FedTimelock
/// @notice The fedchain DAO's executor and treasury: an OpenZeppelin `TimelockController`. It holds every admin,
///         parameter and minter role of the fedchain contracts, receives slashed stake, and only runs what the
///         FedGovernor queued, after `getMinDelay()` seconds.
/// @dev No code of its own; a named contract so the project compiles and deploys it.
contract FedTimelock is TimelockController {
    /// @param minDelay Seconds between queueing and executing an operation.
    /// @param proposers Accounts allowed to schedule and cancel (the governor).
    /// @param executors Accounts allowed to execute (the governor; `address(0)` would open it to everyone).
    /// @param admin Optional bootstrap admin that must renounce after setup; `address(0)` for none.
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
