// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TaskParams} from "../TaskTypes.sol";

/// @title IProtocolPolicy
/// @notice Protocol-wide rules the DAO sets and the TaskManager consults: stake floors, aggregator quorum
///         bounds, the allowlist of aggregation strategies, and the guardian's bounded pause of new rounds.
interface IProtocolPolicy {
    /// @notice A stake floor changed.
    event StakeFloorsChanged(uint256 minTrainerStake, uint256 minAggregatorStake);
    /// @notice The bounds on `TaskParams.aggregatorQuorum` changed.
    event AggregatorQuorumBoundsChanged(uint32 min, uint32 max);
    /// @notice A strategy id was added to or removed from the allowlist.
    event StrategyAllowed(string strategy, bool allowed);
    /// @notice The largest model file a new task may declare (`TaskParams.maxModelBytes`) changed.
    event MaxModelBytesChanged(uint64 oldBytes, uint64 newBytes);
    /// @notice The longest pause the guardian may impose changed.
    event MaxPauseDurationChanged(uint64 oldDuration, uint64 newDuration);
    /// @notice New tasks and trainer commits are paused until `until`.
    event Paused(address indexed guardian, uint64 until);
    /// @notice The DAO lifted the pause early.
    event Unpaused(address indexed by);

    /// @notice Bounds with `min == 0` or `min > max`.
    error InvalidQuorumBounds(uint32 min, uint32 max);
    /// @notice A pause of zero seconds or longer than `maxPauseDuration`.
    error InvalidPauseDuration(uint64 duration, uint64 maxDuration);
    /// @notice `maxPauseDuration` above the hard cap.
    error PauseCapExceeded(uint64 duration, uint64 cap);
    /// @notice The guardian may pause again only at `allowedAt` (end of the last pause + `maxPauseDuration`).
    error PauseCooldown(uint64 allowedAt);
    /// @notice An empty strategy id.
    error EmptyStrategy();
    /// @notice Stake floors must be above zero (a free seat costs an attacker nothing).
    error InvalidStakeFloors(uint256 trainerFloor, uint256 aggregatorFloor);
    /// @notice A model-size maximum of zero or above the hard cap.
    error InvalidMaxModelBytes(uint64 maxModelBytes, uint64 cap);

    /// @notice Reason a new task violates the policy (a `TaskParams` field name), or "" when it is allowed.
    function taskViolation(TaskParams calldata params) external view returns (string memory);

    /// @notice End of the current (or last) guardian pause: new commits are refused while
    ///         `block.timestamp < pausedUntil()`.
    function pausedUntil() external view returns (uint64);

    /// @notice Stake floor for aggregator commits.
    function minAggregatorStake() external view returns (uint256);

    /// @notice Stake floor for trainer commits (the larger of this and the task's `minTrainerStake` applies).
    function minTrainerStake() external view returns (uint256);

    /// @notice Whether new tasks and trainer commits are paused right now.
    function paused() external view returns (bool);

    /// @notice Seconds the protocol has been paused in all, up to now (grows while paused). A phase that began
    ///         when this was `p0` has its deadline moved by `pausedTotal() - p0`.
    function pausedTotal() external view returns (uint64);
}
