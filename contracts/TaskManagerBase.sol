// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IProtocolPolicy} from "./interfaces/IProtocolPolicy.sol";
import {
    TaskStatus,
    Phase,
    TaskParams,
    AggregateResult,
    TaskInfo,
    RoundInfo,
    TrainerEntry,
    AggregatorEntry
} from "./TaskTypes.sol";

/// @title TaskManagerBase
/// @notice Storage, parameters, pure commitment helpers and the internal phase machine of the TaskManager.
/// @dev Split from TaskManager to keep each file readable; TaskManager adds the external entry points.
abstract contract TaskManagerBase is ITaskManager, AccessControl, ReentrancyGuard {
    /// @notice Role allowed to change protocol parameters.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Role allowed to commit and reveal aggregate results.
    bytes32 public constant AGGREGATOR_ROLE = keccak256("AGGREGATOR_ROLE");

    uint16 internal constant BPS = 10_000;
    uint256 internal constant MAX_CID_LENGTH = 128;
    bytes32 internal constant TOO_FEW_TRAINERS = "TooFewTrainers";
    bytes32 internal constant NO_QUORUM = "NoQuorum";
    bytes32 internal constant SLASH_NON_REVEALING_TRAINER = "NonRevealingTrainer";
    bytes32 internal constant SLASH_NON_REVEALING_AGGREGATOR = "NonRevealingAggregator";
    bytes32 internal constant SLASH_DISSENTING_AGGREGATOR = "DissentingAggregator";

    /// @inheritdoc ITaskManager
    IERC20 public immutable token;
    /// @inheritdoc ITaskManager
    IStaking public immutable staking;

    /// @inheritdoc ITaskManager
    uint16 public trainerSlashBps = 500;
    /// @inheritdoc ITaskManager
    uint16 public aggregatorSlashBps = 2000;
    /// @inheritdoc ITaskManager
    uint64 public minPhaseDuration = 1;
    /// @inheritdoc ITaskManager
    uint64 public maxPhaseDuration = 30 days;
    /// @inheritdoc ITaskManager
    uint256 public taskCount;

    mapping(uint256 taskId => TaskInfo) internal _tasks;
    mapping(uint256 taskId => mapping(uint256 round => RoundInfo)) internal _rounds;
    mapping(uint256 taskId => mapping(uint256 round => address[])) internal _roundTrainers;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => TrainerEntry))) internal _trainers;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => AggregatorEntry))) internal _aggregators;
    mapping(uint256 taskId => mapping(uint256 round => mapping(bytes32 key => uint256))) internal _votes;

    /// @notice Protocol-wide rules set by the DAO (stake floors, quorum bounds, strategy allowlist, guardian
    ///         pause); `address(0)` = none (a deployment without governance).
    IProtocolPolicy public policy;

    /// @notice The policy contract changed.
    event PolicyChanged(address oldPolicy, address newPolicy);
    /// @notice New tasks and trainer commits are paused by the policy's guardian until `until`.
    error NewRoundsPaused(uint64 until);

    /// @param token_ The reward token (FED).
    /// @param staking_ The staking contract; grant this contract its `SLASHER_ROLE`.
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    constructor(IERC20 token_, IStaking staking_, address admin) {
        if (address(token_) == address(0) || address(staking_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        staking = staking_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        emit SlashFractionsChanged(trainerSlashBps, aggregatorSlashBps);
        emit PhaseDurationBoundsChanged(minPhaseDuration, maxPhaseDuration);
    }

    // ------------------------------------------------------------------ pure helpers

    /// @inheritdoc ITaskManager
    function computeTrainerCommitment(
        address trainer,
        uint256 taskId,
        uint256 round,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(trainer, taskId, round, updateDigest, numSamples, salt));
    }

    /// @inheritdoc ITaskManager
    function computeResultKey(AggregateResult calldata result) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(bytes(result.resultCid)),
                result.resultDigest,
                result.scoresRoot,
                result.totalWeight,
                result.accepted,
                result.rejected,
                result.accuracyPpm,
                result.lossMicro
            )
        );
    }

    /// @inheritdoc ITaskManager
    function computeAggregatorCommitment(
        address aggregator,
        uint256 taskId,
        uint256 round,
        bytes32 resultKey,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(aggregator, taskId, round, resultKey, salt));
    }

    /// @inheritdoc ITaskManager
    function computeScoreLeaf(address trainer, uint32 score) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(trainer, score))));
    }

    /// @notice Set the protocol policy consulted by `createTask` and the commits (`address(0)` removes it).
    ///         Only `PARAMETER_ROLE`.
    /// @dev Emits {PolicyChanged}.
    function setPolicy(IProtocolPolicy newPolicy) external onlyRole(PARAMETER_ROLE) {
        emit PolicyChanged(address(policy), address(newPolicy));
        policy = newPolicy;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Reverts with `InvalidTaskParams(field)` when the policy rejects a new task, `NewRoundsPaused` while
    ///      paused.
    function _checkPolicy(TaskParams calldata p) internal view {
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return;
        (uint64 until,) = pol.trainerGate();
        if (block.timestamp < until) revert NewRoundsPaused(until);
        string memory violation = pol.taskViolation(p);
        if (bytes(violation).length != 0) revert InvalidTaskParams(violation);
    }

    /// @dev The stake a trainer needs to commit: the larger of the task's minimum and the policy floor;
    ///      reverts with `NewRoundsPaused` while paused.
    function _trainerMinStake(uint256 taskMin) internal view returns (uint256) {
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return taskMin;
        (uint64 until, uint256 floor) = pol.trainerGate();
        if (block.timestamp < until) revert NewRoundsPaused(until);
        return floor > taskMin ? floor : taskMin;
    }

    /// @dev The stake an aggregator needs to commit: the larger of the task's minimum and the policy floor.
    function _aggregatorMinStake(uint256 taskMin) internal view returns (uint256) {
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return taskMin;
        uint256 floor = pol.minAggregatorStake();
        return floor > taskMin ? floor : taskMin;
    }

    function _task(uint256 taskId) internal view returns (TaskInfo storage) {
        if (taskId == 0 || taskId > taskCount) revert UnknownTask(taskId);
        return _tasks[taskId];
    }

    function _requireOpen(RoundInfo storage r, Phase expected) internal view {
        if (r.phase != expected) revert WrongPhase(expected, r.phase);
        if (block.timestamp > r.phaseDeadline) revert PhaseClosed(r.phaseDeadline);
    }

    function _requireStake(address account, uint256 minStake) internal view {
        uint256 available = staking.stakeOf(account);
        if (available < minStake) revert InsufficientStake(available, minStake);
    }

    function _requireCid(string calldata cid) internal pure {
        uint256 len = bytes(cid).length;
        if (len == 0 || len > MAX_CID_LENGTH) revert InvalidCid();
    }

    function _validCid(string calldata cid) internal pure returns (bool) {
        uint256 len = bytes(cid).length;
        return len != 0 && len <= MAX_CID_LENGTH;
    }

    function _validDuration(uint64 duration) internal view returns (bool) {
        return duration >= minPhaseDuration && duration <= maxPhaseDuration;
    }

    function _validateParams(TaskParams calldata p) internal view {
        if (bytes(p.architecture).length == 0) revert InvalidTaskParams("architecture");
        if (!_validCid(p.initialModelCid)) revert InvalidTaskParams("initialModelCid");
        if (p.initialModelDigest == 0) revert InvalidTaskParams("initialModelDigest");
        if (!_validCid(p.validationCid)) revert InvalidTaskParams("validationCid");
        if (p.validationDigest == 0) revert InvalidTaskParams("validationDigest");
        if (p.rewardBudget == 0) revert InvalidTaskParams("rewardBudget");
        if (p.numRounds == 0) revert InvalidTaskParams("numRounds");
        if (p.minTrainers == 0) revert InvalidTaskParams("minTrainers");
        if (p.maxTrainers < p.minTrainers) revert InvalidTaskParams("maxTrainers");
        if (p.aggregatorQuorum == 0) revert InvalidTaskParams("aggregatorQuorum");
        // A strict majority of the committee: at most one result can ever reach the quorum.
        if (p.maxAggregators < p.aggregatorQuorum || uint256(p.maxAggregators) >= 2 * uint256(p.aggregatorQuorum)) {
            revert InvalidTaskParams("maxAggregators");
        }
        if (!_validDuration(p.commitDuration)) revert InvalidTaskParams("commitDuration");
        if (!_validDuration(p.revealDuration)) revert InvalidTaskParams("revealDuration");
        if (!_validDuration(p.aggregatorCommitDuration)) revert InvalidTaskParams("aggregatorCommitDuration");
        if (!_validDuration(p.aggregatorRevealDuration)) revert InvalidTaskParams("aggregatorRevealDuration");
        if (bytes(p.strategy).length == 0) revert InvalidTaskParams("strategy");
        if (p.dpDeltaE18 >= 1e18) revert InvalidTaskParams("dpDeltaE18");
    }

    function _startRound(uint256 taskId, TaskInfo storage t, uint256 round) internal {
        t.currentRound = uint32(round);
        RoundInfo storage r = _rounds[taskId][round];
        uint64 deadline = uint64(block.timestamp) + t.params.commitDuration;
        r.phase = Phase.TrainerCommit;
        r.phaseDeadline = deadline;
        emit RoundStarted(taskId, round, deadline);
    }

    function _enterPhase(uint256 taskId, uint256 round, RoundInfo storage r, Phase phase, uint64 duration) internal {
        uint64 deadline = uint64(block.timestamp) + duration;
        r.phase = phase;
        r.phaseDeadline = deadline;
        emit PhaseAdvanced(taskId, round, phase, deadline);
    }

    function _failRound(uint256 taskId, TaskInfo storage t, uint256 round, RoundInfo storage r, bytes32 reason)
        internal
    {
        r.failedPhase = r.phase;
        r.phase = Phase.Failed;
        r.phaseDeadline = 0;
        r.failureReason = reason;
        emit PhaseAdvanced(taskId, round, Phase.Failed, 0);
        emit RoundFailed(taskId, round, reason);
        _nextRound(taskId, t, round);
    }

    function _finalizeRound(uint256 taskId, TaskInfo storage t, uint256 round, RoundInfo storage r) internal {
        t.globalModelCid = r.resultCid;
        t.globalModelDigest = r.resultDigest;
        uint256 budget;
        if (r.totalWeight > 0) {
            budget = t.remainingBudget / (t.params.numRounds - round + 1);
            t.remainingBudget -= budget;
            r.roundBudget = budget;
        }
        r.phase = Phase.Finalized;
        r.phaseDeadline = 0;
        emit PhaseAdvanced(taskId, round, Phase.Finalized, 0);
        emit RoundFinalized(taskId, round, r.resultCid, r.resultDigest, r.scoresRoot, r.totalWeight, budget);
        _nextRound(taskId, t, round);
    }

    function _nextRound(uint256 taskId, TaskInfo storage t, uint256 round) internal {
        if (round >= t.params.numRounds) {
            t.status = TaskStatus.Completed;
            emit TaskCompleted(taskId);
        } else {
            _startRound(taskId, t, round + 1);
        }
    }

    function _slash(address account, uint16 bps, bytes32 reason) internal returns (uint256) {
        (uint256 unbonding,) = staking.unbondingOf(account);
        uint256 amount = (staking.stakeOf(account) + unbonding) * bps / BPS;
        if (amount == 0) return 0;
        return staking.slash(account, amount, reason);
    }
}
