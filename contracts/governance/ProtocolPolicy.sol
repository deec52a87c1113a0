// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IProtocolPolicy} from "../interfaces/IProtocolPolicy.sol";
import {TaskParams} from "../TaskTypes.sol";

/// @title ProtocolPolicy
/// @notice Protocol-wide parameters owned by the DAO (the timelock holds `PARAMETER_ROLE` and
///         `DEFAULT_ADMIN_ROLE`): global stake floors (always above zero) applied at every commit, bounds on the
///         aggregator quorum of new tasks (by default at least 2: committees of 3 or more), the largest model
///         file a new task may declare (4 GiB by default), the allowlist of aggregation strategies, and a guardian that can only pause new tasks and trainer commits for a bounded
///         time. A pause never fails a round: the TaskManager extends every running phase by the time paused
///         (`pausedTotal`). The DAO revokes the guardian with `revokeRole`.
contract ProtocolPolicy is IProtocolPolicy, AccessControl {
    /// @notice Role allowed to change parameters and lift a pause (the timelock).
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Role allowed to {pause} (an optional guardian).
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice Hard cap on `maxPauseDuration`; the DAO cannot raise it.
    uint64 public constant PAUSE_CAP = 30 days;
    /// @notice Hard cap on `maxModelBytes` (1 TiB); the DAO cannot raise it.
    uint64 public constant MODEL_BYTES_CAP = 1 << 40;

    /// @inheritdoc IProtocolPolicy
    uint256 public minTrainerStake;
    /// @inheritdoc IProtocolPolicy
    uint256 public minAggregatorStake;
    /// @notice Smallest `aggregatorQuorum` a new task may choose (2: no single aggregator decides a round).
    uint32 public minAggregatorQuorum = 2;
    /// @notice Largest `aggregatorQuorum` a new task may choose.
    uint32 public maxAggregatorQuorum = 64;
    /// @notice Largest `TaskParams.maxModelBytes` a new task may declare: every model file of the task (initial
    ///         model, updates, results) is at most its task's bound, which nodes derive from the architecture.
    uint64 public maxModelBytes = 4 << 30;
    /// @notice Earliest time the guardian may pause again.
    uint64 public nextPauseAllowedAt;
    // The pause clock shares one slot: every trainer commit and reveal reads it (`pausedTotal`, `pausedUntil`).
    /// @notice End of the current (or last) pause; paused while `block.timestamp < pausedUntil`.
    uint64 public pausedUntil;
    /// @notice Start of the current (or last) pause.
    uint64 public pauseStart;
    /// @notice Seconds paused in all pauses before the current (or last) one.
    uint64 public pausedBefore;
    /// @notice Longest single pause the guardian may impose, and the cooldown after each pause.
    uint64 public maxPauseDuration;
    /// @notice Whether `keccak256(bytes(strategy))` is on the allowlist.
    mapping(bytes32 strategyHash => bool) public strategyAllowedHash;

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE` (the deployer during setup, then the
    ///        timelock).
    /// @param strategies Initial strategy allowlist.
    /// @param maxPauseDuration_ Initial `maxPauseDuration` (at most `PAUSE_CAP`).
    /// @param trainerFloor Initial trainer stake floor (above zero).
    /// @param aggregatorFloor Initial aggregator stake floor (above zero).
    constructor(
        address admin,
        string[] memory strategies,
        uint64 maxPauseDuration_,
        uint256 trainerFloor,
        uint256 aggregatorFloor
    ) {
        if (maxPauseDuration_ > PAUSE_CAP) revert PauseCapExceeded(maxPauseDuration_, PAUSE_CAP);
        if (trainerFloor == 0 || aggregatorFloor == 0) revert InvalidStakeFloors(trainerFloor, aggregatorFloor);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        for (uint256 i = 0; i < strategies.length; ++i) {
            _setStrategy(strategies[i], true);
        }
        maxPauseDuration = maxPauseDuration_;
        minTrainerStake = trainerFloor;
        minAggregatorStake = aggregatorFloor;
        emit MaxPauseDurationChanged(0, maxPauseDuration_);
        emit StakeFloorsChanged(trainerFloor, aggregatorFloor);
        emit AggregatorQuorumBoundsChanged(minAggregatorQuorum, maxAggregatorQuorum);
        emit MaxModelBytesChanged(0, maxModelBytes);
    }

    // ------------------------------------------------------------------ views for the TaskManager

    /// @inheritdoc IProtocolPolicy
    function taskViolation(TaskParams calldata p) external view returns (string memory) {
        if (p.aggregatorQuorum < minAggregatorQuorum || p.aggregatorQuorum > maxAggregatorQuorum) {
            return "aggregatorQuorum";
        }
        if (!strategyAllowedHash[keccak256(bytes(p.strategy))]) return "strategy";
        if (p.maxModelBytes == 0 || p.maxModelBytes > maxModelBytes) return "maxModelBytes";
        return "";
    }

    /// @inheritdoc IProtocolPolicy
    function paused() public view returns (bool) {
        return block.timestamp < pausedUntil;
    }

    /// @inheritdoc IProtocolPolicy
    function pausedTotal() external view returns (uint64) {
        uint64 end = pausedUntil;
        if (block.timestamp < end) end = uint64(block.timestamp);
        return pausedBefore + (end > pauseStart ? end - pauseStart : 0);
    }

    /// @notice Whether `strategy` is on the allowlist.
    function isStrategyAllowed(string calldata strategy) external view returns (bool) {
        return strategyAllowedHash[keccak256(bytes(strategy))];
    }

    // ------------------------------------------------------------------ DAO parameters

    /// @notice Set the global stake floors (the larger of the floor and a task's own minimum applies at each
    ///         commit, so a change takes effect in the next commit). Only `PARAMETER_ROLE`.
    /// @dev Emits {StakeFloorsChanged}. Reverts with `InvalidStakeFloors` for a zero floor.
    function setStakeFloors(uint256 trainerFloor, uint256 aggregatorFloor) external onlyRole(PARAMETER_ROLE) {
        if (trainerFloor == 0 || aggregatorFloor == 0) revert InvalidStakeFloors(trainerFloor, aggregatorFloor);
        minTrainerStake = trainerFloor;
        minAggregatorStake = aggregatorFloor;
        emit StakeFloorsChanged(trainerFloor, aggregatorFloor);
    }

    /// @notice Set the bounds on the aggregator quorum of new tasks. Only `PARAMETER_ROLE`.
    /// @dev Emits {AggregatorQuorumBoundsChanged}. Reverts with `InvalidQuorumBounds` unless `0 < min <= max`.
    function setAggregatorQuorumBounds(uint32 min, uint32 max) external onlyRole(PARAMETER_ROLE) {
        if (min == 0 || min > max) revert InvalidQuorumBounds(min, max);
        minAggregatorQuorum = min;
        maxAggregatorQuorum = max;
        emit AggregatorQuorumBoundsChanged(min, max);
    }

    /// @notice Set the largest model file a new task may declare; running tasks keep their own bound. Only
    ///         `PARAMETER_ROLE`.
    /// @dev Emits {MaxModelBytesChanged}. Reverts with `InvalidMaxModelBytes` for zero or above `MODEL_BYTES_CAP`.
    function setMaxModelBytes(uint64 maxBytes) external onlyRole(PARAMETER_ROLE) {
        if (maxBytes == 0 || maxBytes > MODEL_BYTES_CAP) revert InvalidMaxModelBytes(maxBytes, MODEL_BYTES_CAP);
        emit MaxModelBytesChanged(maxModelBytes, maxBytes);
        maxModelBytes = maxBytes;
    }

    /// @notice Add (`allowed = true`) or remove a strategy id for new tasks. Only `PARAMETER_ROLE`.
    /// @dev Emits {StrategyAllowed}. Reverts with `EmptyStrategy`.
    function setStrategyAllowed(string calldata strategy, bool allowed) external onlyRole(PARAMETER_ROLE) {
        _setStrategy(strategy, allowed);
    }

    /// @notice Set the longest pause the guardian may impose (at most `PAUSE_CAP`). Only `PARAMETER_ROLE`.
    /// @dev Emits {MaxPauseDurationChanged}. Reverts with `PauseCapExceeded`.
    function setMaxPauseDuration(uint64 duration) external onlyRole(PARAMETER_ROLE) {
        if (duration > PAUSE_CAP) revert PauseCapExceeded(duration, PAUSE_CAP);
        emit MaxPauseDurationChanged(maxPauseDuration, duration);
        maxPauseDuration = duration;
    }

    /// @notice Lift the current pause now. Only `PARAMETER_ROLE` (the DAO; the guardian cannot unpause).
    /// @dev Emits {Unpaused}.
    function unpause() external onlyRole(PARAMETER_ROLE) {
        if (block.timestamp < pausedUntil) pausedUntil = uint64(block.timestamp);
        emit Unpaused(msg.sender);
    }

    // ------------------------------------------------------------------ guardian

    /// @notice Pause new tasks and trainer commits for `duration` seconds; the deadlines of running phases move
    ///         by the time paused, so a pause never fails a round (reveals, claims, slashing and withdrawals
    ///         continue). Only `GUARDIAN_ROLE`; not while paused; at most `maxPauseDuration`, and again only
    ///         `maxPauseDuration` after the previous pause ended.
    /// @dev Emits {Paused}. Reverts with `InvalidPauseDuration` or `PauseCooldown`.
    function pause(uint64 duration) external onlyRole(GUARDIAN_ROLE) {
        uint64 maxDuration = maxPauseDuration;
        if (duration == 0 || duration > maxDuration) revert InvalidPauseDuration(duration, maxDuration);
        uint64 allowedAt = nextPauseAllowedAt;
        uint64 lastEnd = pausedUntil;
        if (block.timestamp < allowedAt || block.timestamp < lastEnd) {
            revert PauseCooldown(allowedAt > lastEnd ? allowedAt : lastEnd);
        }
        uint64 until = uint64(block.timestamp) + duration;
        pausedBefore += lastEnd - pauseStart;
        pauseStart = uint64(block.timestamp);
        pausedUntil = until;
        nextPauseAllowedAt = until + maxDuration;
        emit Paused(msg.sender, until);
    }

    function _setStrategy(string memory strategy, bool allowed) internal {
        if (bytes(strategy).length == 0) revert EmptyStrategy();
        strategyAllowedHash[keccak256(bytes(strategy))] = allowed;
        emit StrategyAllowed(strategy, allowed);
    }
}
