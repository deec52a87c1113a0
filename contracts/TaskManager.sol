// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {TaskManagerBase} from "./TaskManagerBase.sol";
import {
    TaskStatus,
    Phase,
    TrainerStatus,
    AggregatorStatus,
    TaskParams,
    AggregateResult,
    TaskInfo,
    RoundInfo,
    TrainerEntry,
    AggregatorEntry
} from "./TaskTypes.sol";

/// @title TaskManager
/// @notice Owns all fedchain protocol state: tasks, the per-round phase machine, trainer and aggregator
///         commit-reveal, finalization, rewards by Merkle proof and slashing (docs/PROTOCOL.md).
/// @dev Per-trainer storage is constant per round; aggregator transactions do not grow with the number of
///      trainers (scores live in the Merkle root of the accepted result).
contract TaskManager is TaskManagerBase {
    using SafeERC20 for IERC20;

    /// @param token_ The reward token (FED).
    /// @param staking_ The staking contract; grant this contract its `SLASHER_ROLE`.
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    constructor(IERC20 token_, IStaking staking_, address admin) TaskManagerBase(token_, staking_, admin) {}

    // ------------------------------------------------------------------ tasks

    /// @inheritdoc ITaskManager
    function createTask(TaskParams calldata params) external nonReentrant returns (uint256 taskId) {
        _validateParams(params);
        _checkPolicy(params);
        taskId = ++taskCount;
        TaskInfo storage t = _tasks[taskId];
        t.sponsor = msg.sender;
        t.status = TaskStatus.Active;
        t.globalModelCid = params.initialModelCid;
        t.globalModelDigest = params.initialModelDigest;
        t.remainingBudget = params.rewardBudget;
        t.params = params;
        emit TaskCreated(
            taskId, msg.sender, params.architecture, params.initialModelCid, params.rewardBudget, params.numRounds
        );
        _startRound(taskId, t, 1);
        token.safeTransferFrom(msg.sender, address(this), params.rewardBudget);
    }

    // ------------------------------------------------------------------ trainers

    /// @inheritdoc ITaskManager
    function commitUpdate(uint256 taskId, bytes32 commitment) external {
        TaskInfo storage t = _task(taskId);
        uint256 round = t.currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        _requireOpen(r, Phase.TrainerCommit);
        if (commitment == 0) revert ZeroCommitment();
        TrainerEntry storage e = _trainers[taskId][round][msg.sender];
        if (e.status != TrainerStatus.None) revert AlreadyCommitted();
        if (r.committed >= t.params.maxTrainers) revert TrainerLimitReached();
        _requireStake(msg.sender, _trainerMinStake(t.params.minTrainerStake));

        e.status = TrainerStatus.Committed;
        e.commitment = commitment;
        _roundTrainers[taskId][round].push(msg.sender);
        r.committed += 1;
        emit UpdateCommitted(taskId, round, msg.sender, commitment);
        TaskParams storage p = t.params;
        staking.extendLock(
            msg.sender, r.phaseDeadline + p.revealDuration + p.aggregatorCommitDuration + p.aggregatorRevealDuration
        );
    }

    /// @inheritdoc ITaskManager
    function revealUpdate(
        uint256 taskId,
        string calldata cid,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt
    ) external {
        TaskInfo storage t = _task(taskId);
        uint256 round = t.currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        _requireOpen(r, Phase.TrainerReveal);
        TrainerEntry storage e = _trainers[taskId][round][msg.sender];
        if (e.status == TrainerStatus.None) revert NotCommitted();
        if (e.status != TrainerStatus.Committed) revert AlreadyRevealed();
        _requireCid(cid);
        if (numSamples == 0) revert ZeroSamples();
        if (computeTrainerCommitment(msg.sender, taskId, round, updateDigest, numSamples, salt) != e.commitment) {
            revert CommitmentMismatch();
        }

        e.status = TrainerStatus.Revealed;
        e.updateDigest = updateDigest;
        e.numSamples = numSamples;
        e.cid = cid;
        r.revealed += 1;
        emit UpdateRevealed(taskId, round, msg.sender, cid, updateDigest, numSamples);
    }

    /// @inheritdoc ITaskManager
    function claimReward(uint256 taskId, uint256 round, uint32 score, bytes32[] calldata proof)
        external
        nonReentrant
    {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        if (r.phase != Phase.Finalized) revert WrongPhase(Phase.Finalized, r.phase);
        TrainerEntry storage e = _trainers[taskId][round][msg.sender];
        TrainerStatus status = e.status;
        if (status == TrainerStatus.None) revert NotCommitted();
        if (status == TrainerStatus.Claimed) revert AlreadyClaimed();
        if (status != TrainerStatus.Revealed) revert NotRevealed();
        uint256 budget = r.roundBudget;
        if (budget == 0) revert NoRoundBudget();
        if (!MerkleProof.verifyCalldata(proof, r.scoresRoot, computeScoreLeaf(msg.sender, score))) {
            revert InvalidProof();
        }
        uint256 reward = Math.mulDiv(budget, uint256(score) * e.numSamples, r.totalWeight);
        uint256 available = budget - r.paid;
        if (reward > available) revert RoundOverpaid(available, reward);

        r.paid += reward;
        e.status = TrainerStatus.Claimed;
        emit RewardClaimed(taskId, round, msg.sender, reward);
        if (reward != 0) token.safeTransfer(msg.sender, reward);
    }

    // ------------------------------------------------------------------ aggregators

    /// @inheritdoc ITaskManager
    function commitAggregate(uint256 taskId, bytes32 commitment) external onlyRole(AGGREGATOR_ROLE) {
        TaskInfo storage t = _task(taskId);
        uint256 round = t.currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        _requireOpen(r, Phase.AggregatorCommit);
        if (commitment == 0) revert ZeroCommitment();
        AggregatorEntry storage e = _aggregators[taskId][round][msg.sender];
        if (e.status != AggregatorStatus.None) revert AlreadyCommitted();
        if (r.aggCommitted >= t.params.maxAggregators) revert AggregatorLimitReached();
        _requireStake(msg.sender, _aggregatorMinStake(t.params.minAggregatorStake));

        e.status = AggregatorStatus.Committed;
        e.commitment = commitment;
        r.aggCommitted += 1;
        emit AggregateCommitted(taskId, round, msg.sender, commitment);
        staking.extendLock(msg.sender, r.phaseDeadline + t.params.aggregatorRevealDuration);
    }

    /// @inheritdoc ITaskManager
    function revealAggregate(uint256 taskId, AggregateResult calldata result, bytes32 salt)
        external
        onlyRole(AGGREGATOR_ROLE)
    {
        TaskInfo storage t = _task(taskId);
        uint256 round = t.currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        _requireOpen(r, Phase.AggregatorReveal);
        AggregatorEntry storage e = _aggregators[taskId][round][msg.sender];
        if (e.status == AggregatorStatus.None) revert NotCommitted();
        if (e.status != AggregatorStatus.Committed) revert AlreadyRevealed();
        _requireCid(result.resultCid);
        bytes32 key = computeResultKey(result);
        if (computeAggregatorCommitment(msg.sender, taskId, round, key, salt) != e.commitment) {
            revert CommitmentMismatch();
        }

        e.status = AggregatorStatus.Revealed;
        e.resultKey = key;
        r.aggRevealed += 1;
        uint256 votes = ++_votes[taskId][round][key];
        emit AggregateRevealed(taskId, round, msg.sender, key, result.resultCid);
        if (votes == t.params.aggregatorQuorum && r.acceptedKey == 0) {
            r.acceptedKey = key;
            r.resultCid = result.resultCid;
            r.resultDigest = result.resultDigest;
            r.scoresRoot = result.scoresRoot;
            r.totalWeight = result.totalWeight;
            r.accepted = result.accepted;
            r.rejected = result.rejected;
            r.accuracyPpm = result.accuracyPpm;
            r.lossMicro = result.lossMicro;
            emit QuorumReached(taskId, round, key);
        }
    }

    // ------------------------------------------------------------------ phase machine

    /// @inheritdoc ITaskManager
    function advance(uint256 taskId) external {
        TaskInfo storage t = _task(taskId);
        if (t.status != TaskStatus.Active) revert TaskNotActive(taskId);
        uint256 round = t.currentRound;
        RoundInfo storage r = _rounds[taskId][round];
        TaskParams storage p = t.params;
        Phase phase = r.phase;

        bool complete;
        if (phase == Phase.TrainerCommit) complete = r.committed >= p.maxTrainers;
        else if (phase == Phase.TrainerReveal) complete = r.revealed == r.committed;
        else if (phase == Phase.AggregatorCommit) complete = r.aggCommitted >= p.maxAggregators;
        else complete = r.aggRevealed == r.aggCommitted; // AggregatorReveal: an active task's round is never over
        if (!complete && block.timestamp <= r.phaseDeadline) revert PhaseNotOver(r.phaseDeadline);

        if (phase == Phase.TrainerCommit) {
            if (r.committed < p.minTrainers) _failRound(taskId, t, round, r, TOO_FEW_TRAINERS);
            else _enterPhase(taskId, round, r, Phase.TrainerReveal, p.revealDuration);
        } else if (phase == Phase.TrainerReveal) {
            if (r.revealed < p.minTrainers) _failRound(taskId, t, round, r, TOO_FEW_TRAINERS);
            else _enterPhase(taskId, round, r, Phase.AggregatorCommit, p.aggregatorCommitDuration);
        } else if (phase == Phase.AggregatorCommit) {
            if (r.aggCommitted < p.aggregatorQuorum) _failRound(taskId, t, round, r, NO_QUORUM);
            else _enterPhase(taskId, round, r, Phase.AggregatorReveal, p.aggregatorRevealDuration);
        } else {
            if (r.acceptedKey == 0) _failRound(taskId, t, round, r, NO_QUORUM);
            else _finalizeRound(taskId, t, round, r);
        }
    }

    // ------------------------------------------------------------------ slashing and budget

    /// @inheritdoc ITaskManager
    function slashNonRevealingTrainer(uint256 taskId, uint256 round, address trainer) external nonReentrant {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        Phase phase = r.phase;
        // The reveal phase is over once the round left it; a round that failed in TrainerCommit never had one.
        bool open = phase >= Phase.AggregatorCommit && !(phase == Phase.Failed && r.failedPhase == Phase.TrainerCommit);
        if (!open) revert SlashingNotOpen(phase);
        TrainerEntry storage e = _trainers[taskId][round][trainer];
        TrainerStatus status = e.status;
        if (status == TrainerStatus.None) revert NotCommitted();
        if (status == TrainerStatus.Slashed) revert AlreadySlashed();
        if (status != TrainerStatus.Committed) revert NotSlashable();

        e.status = TrainerStatus.Slashed;
        uint256 slashed = _slash(trainer, trainerSlashBps, SLASH_NON_REVEALING_TRAINER);
        emit TrainerSlashed(taskId, round, trainer, slashed);
    }

    /// @inheritdoc ITaskManager
    function slashAggregator(uint256 taskId, uint256 round, address aggregator) external nonReentrant {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        Phase phase = r.phase;
        // Only rounds that went through AggregatorReveal: a round that failed earlier never had one.
        bool open = phase == Phase.Finalized || (phase == Phase.Failed && r.failedPhase == Phase.AggregatorReveal);
        if (!open) revert SlashingNotOpen(phase);
        AggregatorEntry storage e = _aggregators[taskId][round][aggregator];
        AggregatorStatus status = e.status;
        if (status == AggregatorStatus.None) revert NotCommitted();
        if (status == AggregatorStatus.Slashed) revert AlreadySlashed();
        bytes32 reason;
        if (status == AggregatorStatus.Committed) {
            reason = SLASH_NON_REVEALING_AGGREGATOR;
        } else if (r.acceptedKey != 0 && e.resultKey != r.acceptedKey) {
            reason = SLASH_DISSENTING_AGGREGATOR;
        } else {
            revert NotSlashable();
        }

        e.status = AggregatorStatus.Slashed;
        uint256 slashed = _slash(aggregator, aggregatorSlashBps, reason);
        emit AggregatorSlashed(taskId, round, aggregator, slashed);
    }

    /// @inheritdoc ITaskManager
    function reclaimUnallocated(uint256 taskId) external nonReentrant {
        TaskInfo storage t = _task(taskId);
        if (msg.sender != t.sponsor) revert NotSponsor();
        if (t.status != TaskStatus.Completed) revert TaskNotCompleted(taskId);
        uint256 amount = t.remainingBudget;
        if (amount == 0) revert NothingToReclaim();

        t.remainingBudget = 0;
        emit BudgetReclaimed(taskId, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ parameters

    /// @inheritdoc ITaskManager
    function setSlashFractions(uint16 trainerBps, uint16 aggregatorBps) external onlyRole(PARAMETER_ROLE) {
        if (trainerBps > BPS) revert InvalidSlashFraction(trainerBps);
        if (aggregatorBps > BPS) revert InvalidSlashFraction(aggregatorBps);
        trainerSlashBps = trainerBps;
        aggregatorSlashBps = aggregatorBps;
        emit SlashFractionsChanged(trainerBps, aggregatorBps);
    }

    /// @inheritdoc ITaskManager
    function setPhaseDurationBounds(uint64 min, uint64 max) external onlyRole(PARAMETER_ROLE) {
        if (min == 0 || min > max) revert InvalidDurationBounds(min, max);
        minPhaseDuration = min;
        maxPhaseDuration = max;
        emit PhaseDurationBoundsChanged(min, max);
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
        return _trainers[taskId][round][trainer];
    }

    /// @inheritdoc ITaskManager
    function getRoundTrainers(uint256 taskId, uint256 round) external view returns (address[] memory) {
        _task(taskId);
        return _roundTrainers[taskId][round];
    }

    /// @inheritdoc ITaskManager
    function getAggregatorEntry(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (AggregatorEntry memory)
    {
        _task(taskId);
        return _aggregators[taskId][round][aggregator];
    }

    /// @inheritdoc ITaskManager
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultKey) external view returns (uint256) {
        _task(taskId);
        return _votes[taskId][round][resultKey];
    }

}
