// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IProtocolPolicy} from "./interfaces/IProtocolPolicy.sol";
import {IAggregatorCommittee} from "./interfaces/IAggregatorCommittee.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {TrainerSlots} from "./TrainerSlots.sol";
import {
    TaskStatus, Phase, TrainerStatus, TaskParams, AggregateResult, TaskInfo, RoundInfo, TrainerEntry
} from "./TaskTypes.sol";

/// @title TaskManagerBase
/// @notice Storage, parameters, views, pure commitment helpers and the internal phase machine of the TaskManager.
/// @dev Split from TaskManager to keep each file readable; TaskManager adds the external entry points.
abstract contract TaskManagerBase is ITaskManager, AccessControl, ReentrancyGuard {
    /// @notice Role allowed to change protocol parameters.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Role allowed to slash a revealed trainer's bond for a rejected update (the RejectionSlasher).
    bytes32 public constant REJECTION_ROLE = keccak256("REJECTION_ROLE");

    uint16 internal constant BPS = 10_000;
    uint256 internal constant MAX_CID_LENGTH = 128;
    uint64 internal constant MAX_PHASE_DURATION_CAP = 365 days;
    uint64 internal constant MIN_SETTLEMENT_WINDOW = 1 minutes;
    uint64 internal constant MAX_SETTLEMENT_WINDOW = 30 days;
    uint32 internal constant MAX_TRAINERS_CAP = 1024;
    /// @dev Largest `maxModelBytes` any task may declare (1 TiB); a ProtocolPolicy bounds it further.
    uint64 internal constant MODEL_BYTES_CAP = 1 << 40;
    bytes32 internal constant TOO_FEW_TRAINERS = "TooFewTrainers";
    bytes32 internal constant NO_QUORUM = "NoQuorum";
    bytes32 internal constant SLASH_NON_REVEALING_TRAINER = "NonRevealingTrainer";

    /// @inheritdoc ITaskManager
    IERC20 public immutable token;
    /// @inheritdoc ITaskManager
    IStaking public immutable staking;

    /// @inheritdoc ITaskManager
    uint16 public trainerSlashBps = BPS;
    /// @inheritdoc ITaskManager
    uint16 public aggregatorSlashBps = 5000;
    /// @inheritdoc ITaskManager
    uint64 public minPhaseDuration = 1;
    /// @inheritdoc ITaskManager
    uint64 public maxPhaseDuration = 30 days;
    /// @inheritdoc ITaskManager
    uint64 public settlementWindow = 1 days;
    /// @inheritdoc ITaskManager
    uint256 public taskCount;

    /// @notice Holds every task budget and pays rewards.
    IRewardVault public vault;
    /// @notice Draws each round's aggregator committee.
    IAggregatorCommittee public committee;
    /// @notice Protocol-wide rules set by the DAO (stake floors, quorum bounds, strategy allowlist, guardian
    ///         pause); `address(0)` = none (a deployment without governance).
    IProtocolPolicy public policy;

    mapping(uint256 taskId => TaskInfo) internal _tasks;
    mapping(uint256 taskId => mapping(uint256 round => RoundInfo)) internal _rounds;
    /// @dev One word per trainer and round (TrainerSlots); who committed is in the `UpdateCommitted` events.
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => uint256))) internal _trainers;
    /// @dev Each round's trainer bond, fixed when the round starts.
    mapping(uint256 taskId => mapping(uint256 round => uint256)) internal _roundBond;

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
        emit SettlementWindowChanged(0, settlementWindow);
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
    function computeScoreLeaf(address trainer, uint32 score, uint64 weight) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(trainer, score, weight))));
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskManager
    function getTask(uint256 taskId) external view returns (TaskInfo memory) {
        return _task(taskId);
    }

    /// @inheritdoc ITaskManager
    function getRound(uint256 taskId, uint256 round) external view returns (RoundInfo memory) {
        _task(taskId);
        return _rounds[taskId][round];
    }

    /// @inheritdoc ITaskManager
    function getTrainerEntry(uint256 taskId, uint256 round, address trainer)
        external
        view
        returns (TrainerEntry memory)
    {
        _task(taskId);
        uint256 word = _trainers[taskId][round][trainer];
        TrainerStatus status = TrainerSlots.status(word);
        bool held = status != TrainerStatus.None && !TrainerSlots.bondGone(word);
        return TrainerEntry(
            status, TrainerSlots.commitment(word), TrainerSlots.numSamples(word), held ? _roundBond[taskId][round] : 0
        );
    }

    /// @inheritdoc ITaskManager
    function currentDeadline(uint256 taskId) external view returns (uint64) {
        TaskInfo storage t = _task(taskId);
        return _deadline(_rounds[taskId][t.currentRound]);
    }

    /// @inheritdoc ITaskManager
    function trainerBond(uint256 taskId) external view returns (uint256) {
        return _roundBond[taskId][_task(taskId).currentRound];
    }

    /// @inheritdoc ITaskManager
    function roundTrainerBond(uint256 taskId, uint256 round) external view returns (uint256) {
        _task(taskId);
        return _roundBond[taskId][round];
    }

    /// @dev The trainer bond a round starting now fixes: the task's minimum or the policy floor.
    function _newRoundTrainerBond(uint256 taskId) internal view returns (uint256) {
        uint256 taskMin = _tasks[taskId].params.minTrainerStake;
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return taskMin;
        uint256 floor = pol.minTrainerStake();
        return floor > taskMin ? floor : taskMin;
    }

    /// @inheritdoc ITaskManager
    function aggregatorBond(uint256 taskId) public view returns (uint256) {
        uint256 taskMin = _task(taskId).params.minAggregatorStake;
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return taskMin;
        uint256 floor = pol.minAggregatorStake();
        return floor > taskMin ? floor : taskMin;
    }

    /// @inheritdoc ITaskManager
    function claimView(uint256 taskId, uint256 round, address trainer)
        external
        view
        returns (Phase phase, uint64 finalizedAt, bytes32 scoresRoot, uint256 totalWeight, uint256 roundBudget,
            TrainerStatus status)
    {
        RoundInfo storage r = _rounds[taskId][round];
        phase = r.phase;
        finalizedAt = r.finalizedAt;
        scoresRoot = r.scoresRoot;
        totalWeight = r.totalWeight;
        roundBudget = r.roundBudget;
        status = TrainerSlots.status(_trainers[taskId][round][trainer]);
    }

    /// @inheritdoc ITaskManager
    function phaseView(uint256 taskId) external view returns (uint256 round, Phase phase, uint64 deadline) {
        round = _task(taskId).currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        return (round, r.phase, _deadline(r));
    }

    /// @inheritdoc ITaskManager
    function committeeTerms(uint256 taskId, uint256 round)
        external
        view
        returns (Phase phase, Phase failedPhase, uint64 drawBlock, uint64 settledAt, uint32 size, uint32 quorum,
            uint256 bond)
    {
        TaskParams storage p = _task(taskId).params;
        RoundInfo storage r = _rounds[taskId][round];
        phase = r.phase;
        failedPhase = r.failedPhase;
        drawBlock = r.drawBlock;
        settledAt = r.settledAt;
        size = p.maxAggregators;
        quorum = p.aggregatorQuorum;
        bond = aggregatorBond(taskId);
    }

    // ------------------------------------------------------------------ parameters

    /// @notice Set the protocol policy consulted by `createTask` and the commits (`address(0)` removes it).
    ///         Only `PARAMETER_ROLE`.
    /// @dev Emits {PolicyChanged}.
    function setPolicy(IProtocolPolicy newPolicy) external onlyRole(PARAMETER_ROLE) {
        emit PolicyChanged(address(policy), address(newPolicy));
        policy = newPolicy;
    }

    /// @notice Connect the RewardVault and the AggregatorCommittee, once. Only `DEFAULT_ADMIN_ROLE`.
    /// @dev Emits {Connected}. Reverts with `AlreadyConnected` or `ZeroAddress`.
    function connect(IRewardVault vault_, IAggregatorCommittee committee_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(vault) != address(0)) revert AlreadyConnected();
        if (address(vault_) == address(0) || address(committee_) == address(0)) revert ZeroAddress();
        vault = vault_;
        committee = committee_;
        emit Connected(address(vault_), address(committee_));
    }

    // ------------------------------------------------------------------ internals

    /// @dev Reverts with `InvalidTaskParams(field)` when the policy rejects a new task, `NewRoundsPaused` while
    ///      paused.
    function _checkPolicy(TaskParams calldata p) internal view {
        IProtocolPolicy pol = policy;
        if (address(pol) == address(0)) return;
        _requireNotPaused(pol);
        string memory violation = pol.taskViolation(p);
        if (bytes(violation).length != 0) revert InvalidTaskParams(violation);
    }

    function _requireNotPaused(IProtocolPolicy pol) internal view {
        uint64 until = pol.pausedUntil(); // shares a slot with what `_pausedTotal` reads: warm in a commit
        if (block.timestamp < until) revert NewRoundsPaused(until);
    }

    /// @dev Seconds paused in all so far (0 without a policy).
    function _pausedTotal() internal view returns (uint64) {
        IProtocolPolicy pol = policy;
        return address(pol) == address(0) ? 0 : pol.pausedTotal();
    }

    /// @dev The deadline in force: the base deadline moved by the time paused since the phase began.
    function _deadline(RoundInfo storage r) internal view returns (uint64) {
        uint64 paused = _pausedTotal();
        return r.phaseDeadline + (paused > r.pausedAtEntry ? paused - r.pausedAtEntry : 0);
    }

    /// @dev A created task (its status shares a slot with its current round: one read for both).
    function _task(uint256 taskId) internal view returns (TaskInfo storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert UnknownTask(taskId);
    }

    function _requireOpen(RoundInfo storage r, Phase expected) internal view {
        if (r.phase != expected) revert WrongPhase(expected, r.phase);
        uint64 deadline = _deadline(r);
        if (block.timestamp > deadline) revert PhaseClosed(deadline);
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
        if (p.maxTrainers < p.minTrainers || p.maxTrainers > MAX_TRAINERS_CAP) revert InvalidTaskParams("maxTrainers");
        uint256 q = p.aggregatorQuorum;
        if (q == 0) revert InvalidTaskParams("aggregatorQuorum");
        // A strict majority of the committee (at most one result can reach the quorum), and for a quorum of two
        // or more a committee larger than the quorum: no single member can veto the round for free.
        uint256 size = p.maxAggregators;
        if (size < q || size >= 2 * q || (q >= 2 && size == q)) revert InvalidTaskParams("maxAggregators");
        if (!_validDuration(p.commitDuration)) revert InvalidTaskParams("commitDuration");
        if (!_validDuration(p.revealDuration)) revert InvalidTaskParams("revealDuration");
        if (!_validDuration(p.aggregatorCommitDuration)) revert InvalidTaskParams("aggregatorCommitDuration");
        if (!_validDuration(p.aggregatorRevealDuration)) revert InvalidTaskParams("aggregatorRevealDuration");
        if (p.minTrainerStake == 0) revert InvalidTaskParams("minTrainerStake");
        if (p.minAggregatorStake == 0) revert InvalidTaskParams("minAggregatorStake");
        if (bytes(p.strategy).length == 0) revert InvalidTaskParams("strategy");
        if (p.dpDeltaE18 >= 1e18) revert InvalidTaskParams("dpDeltaE18");
        if (p.maxModelBytes == 0 || p.maxModelBytes > MODEL_BYTES_CAP) revert InvalidTaskParams("maxModelBytes");
    }

    function _startRound(uint256 taskId, TaskInfo storage t, uint256 round) internal {
        t.currentRound = uint32(round);
        RoundInfo storage r = _rounds[taskId][round];
        uint64 deadline = uint64(block.timestamp) + t.params.commitDuration;
        r.phase = Phase.TrainerCommit;
        r.phaseDeadline = deadline;
        r.pausedAtEntry = _pausedTotal();
        _roundBond[taskId][round] = _newRoundTrainerBond(taskId);
        emit RoundStarted(taskId, round, deadline);
    }

    function _enterPhase(uint256 taskId, uint256 round, RoundInfo storage r, Phase phase, uint64 duration) internal {
        uint64 deadline = uint64(block.timestamp) + duration;
        r.phase = phase;
        r.phaseDeadline = deadline;
        r.pausedAtEntry = _pausedTotal();
        emit PhaseAdvanced(taskId, round, phase, deadline);
    }

    function _failRound(uint256 taskId, TaskInfo storage t, uint256 round, RoundInfo storage r, bytes32 reason)
        internal
    {
        r.failedPhase = r.phase;
        r.phase = Phase.Failed;
        r.phaseDeadline = 0;
        r.failureReason = reason;
        r.finalizedAt = uint64(block.timestamp);
        r.settledAt = uint64(block.timestamp);
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
        r.finalizedAt = uint64(block.timestamp);
        r.settledAt = uint64(block.timestamp) + settlementWindow;
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

    /// @dev Slash `bps` of a bond and release the rest; returns the amount slashed.
    function _settleBond(address account, uint256 bond, uint16 bps, bytes32 reason) internal returns (uint256) {
        uint256 amount = bond * bps / BPS;
        if (amount != 0) staking.slashReserved(account, amount, reason);
        if (bond > amount) staking.release(account, bond - amount);
        return amount;
    }
}
