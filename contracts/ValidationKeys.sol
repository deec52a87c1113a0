// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {Phase, RoundInfo, TaskInfo} from "./TaskTypes.sol";

/// @title ValidationKeys
/// @notice The keys of sealed validation sets (docs/PROTOCOL.md, "Sealed validation sets"). A task whose
///         validation set is sealed names, by CID and digest at creation, a file of encrypted sections and the
///         hashes of their keys; its sponsor publishes round r's key here once the round's trainers can no
///         longer commit or reveal, so no update can be fitted to the data it is scored on.
/// @dev One job, kept out of TaskManager (bytecode size). Holds no tokens and calls only TaskManager's views. The
///      key is checked against the sealed file's key hash off chain by every aggregator; the first key published
///      for a round stands.
contract ValidationKeys {
    /// @notice The TaskManager whose sponsors publish keys.
    ITaskManager public immutable tasks;

    mapping(uint256 taskId => mapping(uint256 round => bytes32)) private _keys;

    /// @notice The sponsor of `taskId` published the key that opens round `round`'s validation section.
    event ValidationKeyRevealed(uint256 indexed taskId, uint256 indexed round, bytes32 key);

    /// @notice The constructor's TaskManager address is zero.
    error ZeroAddress();
    /// @notice Only the task's sponsor publishes its keys.
    error NotSponsor(uint256 taskId, address caller);
    /// @notice A zero key is "not published".
    error ZeroKey();
    /// @notice The round has not started, or its trainers can still commit or reveal (`phase`).
    error TrainersStillOpen(uint256 taskId, uint256 round, Phase phase);
    /// @notice The round's key is already published.
    error KeyAlreadyRevealed(uint256 taskId, uint256 round);

    constructor(ITaskManager tasks_) {
        if (address(tasks_) == address(0)) revert ZeroAddress();
        tasks = tasks_;
    }

    /// @notice Publish the key of round `round` of task `taskId` (its sponsor only), once the round is past its
    ///         trainer phases: aggregator commit or reveal, finalized, or failed in an aggregator phase.
    /// @param taskId The task (TaskManager's `UnknownTask` for none).
    /// @param round The round whose validation section the key opens.
    /// @param key The section's 32-byte key.
    function revealKey(uint256 taskId, uint256 round, bytes32 key) external {
        TaskInfo memory info = tasks.getTask(taskId);
        if (info.sponsor != msg.sender) revert NotSponsor(taskId, msg.sender);
        if (key == bytes32(0)) revert ZeroKey();
        if (_keys[taskId][round] != bytes32(0)) revert KeyAlreadyRevealed(taskId, round);
        RoundInfo memory r = tasks.getRound(taskId, round);
        Phase phase = r.phase == Phase.Failed ? r.failedPhase : r.phase;
        if (phase != Phase.AggregatorCommit && phase != Phase.AggregatorReveal && phase != Phase.Finalized) {
            revert TrainersStillOpen(taskId, round, r.phase);
        }
        _keys[taskId][round] = key;
        emit ValidationKeyRevealed(taskId, round, key);
    }

    /// @notice The key published for round `round` of task `taskId` (zero: none yet).
    /// @param taskId The task.
    /// @param round The round.
    /// @return The key, or zero.
    function keyOf(uint256 taskId, uint256 round) external view returns (bytes32) {
        return _keys[taskId][round];
    }
}
