// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {TaskInfo} from "./TaskTypes.sol";

/// @notice What pinning nodes keep of a task's content (docs/PROTOCOL.md, "Retention").
///         Counts are in finalized rounds; `KEEP_ALL` (2^32 - 1) keeps everything.
struct Retention {
    /// Global models of the last `modelRounds` finalized rounds (the initial model counts as round 0), >= 1.
    uint32 modelRounds;
    /// Trainer updates of the last `updateRounds` finalized rounds; 0 drops them once their round finalizes.
    uint32 updateRounds;
    /// Also keep (under `updateRounds`) the updates the round's result rejected.
    bool keepRejected;
    /// Keep the validation set after the task completed (it is always kept while the task is open).
    bool keepValidation;
}

/// @title TaskRetention
/// @notice The retention policy of each task's content: how many global models and trainer updates pinning
///         nodes keep, whether rejected updates and the validation set survive. A task's sponsor (as recorded by
///         TaskManager) sets its task's policy; tasks without one follow the protocol-wide default, which
///         `PARAMETER_ROLE` (the DAO's timelock in a governed deployment) sets. Pin followers read the policy in
///         force and unpin what it lets go; they may keep more, never less.
/// @dev One job, kept out of TaskManager (bytecode size). Holds no tokens and calls only `TaskManager.getTask`.
contract TaskRetention is AccessControl {
    /// @notice Role allowed to change the default policy.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice A count meaning "every round".
    uint32 public constant KEEP_ALL = type(uint32).max;
    /// @notice Largest finite round count (larger counts must be `KEEP_ALL`).
    uint32 public constant MAX_ROUNDS = 100_000;

    /// @notice The TaskManager whose sponsors set policies.
    ITaskManager public immutable tasks;

    Retention private _default;
    mapping(uint256 taskId => Retention) private _policies;
    mapping(uint256 taskId => bool) private _custom;

    /// @notice The default policy changed.
    event DefaultRetentionChanged(uint32 modelRounds, uint32 updateRounds, bool keepRejected, bool keepValidation);
    /// @notice A task's sponsor set its task's policy.
    event TaskRetentionSet(
        uint256 indexed taskId,
        address indexed sponsor,
        uint32 modelRounds,
        uint32 updateRounds,
        bool keepRejected,
        bool keepValidation
    );
    /// @notice A task's sponsor cleared its task's policy: the task follows the default again.
    event TaskRetentionCleared(uint256 indexed taskId, address indexed sponsor);

    /// @notice A zero address was passed to the constructor.
    error ZeroAddress();
    /// @notice No such task (TaskManager's error, passed through).
    error UnknownTask(uint256 taskId);
    /// @notice The caller is not the task's sponsor.
    error NotSponsor(uint256 taskId, address caller);
    /// @notice `modelRounds` is 0 or above `MAX_ROUNDS`, or `updateRounds` is above `MAX_ROUNDS` (neither
    ///         being `KEEP_ALL`).
    error InvalidRetention(uint32 modelRounds, uint32 updateRounds);
    /// @notice The task has no policy of its own to clear.
    error NoTaskRetention(uint256 taskId);

    /// @param tasks_ The TaskManager (its `getTask` names each task's sponsor).
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    /// @param default_ The initial default policy.
    constructor(ITaskManager tasks_, address admin, Retention memory default_) {
        if (address(tasks_) == address(0) || admin == address(0)) revert ZeroAddress();
        tasks = tasks_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        _setDefault(default_);
    }

    /// @notice Set the policy of tasks that have none of their own. Emits {DefaultRetentionChanged}.
    /// @dev Reverts with `InvalidRetention` for out-of-bounds counts.
    /// @param policy The new default.
    function setDefaultRetention(Retention calldata policy) external onlyRole(PARAMETER_ROLE) {
        _setDefault(policy);
    }

    /// @notice Set the policy of your task (also after it completed). Emits {TaskRetentionSet}.
    /// @dev Reverts with `UnknownTask` (from TaskManager), `NotSponsor` or `InvalidRetention`.
    /// @param taskId The task.
    /// @param policy Its policy.
    function setTaskRetention(uint256 taskId, Retention calldata policy) external {
        _requireSponsor(taskId);
        _check(policy);
        _policies[taskId] = policy;
        _custom[taskId] = true;
        emit TaskRetentionSet(
            taskId, msg.sender, policy.modelRounds, policy.updateRounds, policy.keepRejected, policy.keepValidation
        );
    }

    /// @notice Drop your task's own policy, so that it follows the default again. Emits {TaskRetentionCleared}.
    /// @dev Reverts with `UnknownTask`, `NotSponsor` or `NoTaskRetention`.
    /// @param taskId The task.
    function clearTaskRetention(uint256 taskId) external {
        _requireSponsor(taskId);
        if (!_custom[taskId]) revert NoTaskRetention(taskId);
        delete _policies[taskId];
        _custom[taskId] = false;
        emit TaskRetentionCleared(taskId, msg.sender);
    }

    /// @notice The policy in force for a task: its own, or the default.
    /// @param taskId The task (not checked against TaskManager: unknown tasks get the default).
    /// @return policy The policy.
    /// @return custom Whether it is the task's own policy rather than the default.
    function retentionOf(uint256 taskId) external view returns (Retention memory policy, bool custom) {
        custom = _custom[taskId];
        policy = custom ? _policies[taskId] : _default;
    }

    /// @notice The default policy.
    function defaultRetention() external view returns (Retention memory) {
        return _default;
    }

    function _setDefault(Retention memory policy) private {
        _check(policy);
        _default = policy;
        emit DefaultRetentionChanged(policy.modelRounds, policy.updateRounds, policy.keepRejected, policy.keepValidation);
    }

    function _requireSponsor(uint256 taskId) private view {
        TaskInfo memory info = tasks.getTask(taskId);
        if (info.sponsor != msg.sender) revert NotSponsor(taskId, msg.sender);
    }

    function _check(Retention memory policy) private pure {
        bool modelsOk = policy.modelRounds == KEEP_ALL || (policy.modelRounds >= 1 && policy.modelRounds <= MAX_ROUNDS);
        bool updatesOk = policy.updateRounds == KEEP_ALL || policy.updateRounds <= MAX_ROUNDS;
        if (!modelsOk || !updatesOk) revert InvalidRetention(policy.modelRounds, policy.updateRounds);
    }
}
