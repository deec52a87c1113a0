// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IProtocolPolicy} from "./interfaces/IProtocolPolicy.sol";
import {TaskManagerBase} from "./TaskManagerBase.sol";
import {TrainerSlots} from "./TrainerSlots.sol";
import {TaskStatus, Phase, TrainerStatus, TaskParams, AggregateResult, TaskInfo, RoundInfo} from "./TaskTypes.sol";

/// @title TaskManager
/// @notice Owns the fedchain protocol state of every task: the per-round phase machine, trainer commit-reveal with
///         bonds reserved in Staking, finalization with the result the AggregatorCommittee accepted, and the
///         trainers' slashing (docs/PROTOCOL.md). Budgets and rewards are held and paid by the RewardVault.
/// @dev Per-trainer storage is one word per round (TrainerSlots): a commit writes one new slot, a reveal rewrites
///      it, and CIDs live in events. Aggregator transactions do not grow with the number of trainers (scores live in
///      the Merkle root of the accepted result).
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
        vault.openTask(taskId);
        token.safeTransferFrom(msg.sender, address(vault), params.rewardBudget);
    }

    // ------------------------------------------------------------------ trainers

    /// @inheritdoc ITaskManager
    function commitUpdate(uint256 taskId, uint256 round, bytes32 commitment) external {
        TaskInfo storage t = _task(taskId);
        if (round != t.currentRound) revert StaleRound(t.currentRound, round);
        RoundInfo storage r = _rounds[taskId][round];
        _requireOpen(r, Phase.TrainerCommit);
        if (commitment == 0) revert ZeroCommitment();
        mapping(address => uint256) storage words = _trainers[taskId][round];
        if (words[msg.sender] != 0) revert AlreadyCommitted();
        if (r.committed >= t.params.maxTrainers) revert TrainerLimitReached();
        IProtocolPolicy pol = policy;
        if (address(pol) != address(0)) _requireNotPaused(pol);
        uint256 bond = _roundBond[taskId][round];

        words[msg.sender] = TrainerSlots.committed(commitment);
        r.committed += 1;
        emit UpdateCommitted(taskId, round, msg.sender, commitment, bond);
        staking.reserve(msg.sender, bond); // reverts InsufficientStake(free, bond) on a short stake
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
        mapping(address => uint256) storage words = _trainers[taskId][round];
        _requireCommitted(words[msg.sender]);
        _requireCid(cid);
        if (numSamples == 0) revert ZeroSamples();
        uint64 maxSamples = t.params.maxSamples;
        if (maxSamples != 0 && numSamples > maxSamples) revert TooManySamples(maxSamples, numSamples);
        bytes32 computed = computeTrainerCommitment(msg.sender, taskId, round, updateDigest, numSamples, salt);
        if (!TrainerSlots.holds(words[msg.sender], computed)) revert CommitmentMismatch();

        words[msg.sender] = TrainerSlots.revealed(numSamples);
        r.revealed += 1;
        emit UpdateRevealed(taskId, round, msg.sender, cid, updateDigest, numSamples);
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
        if (phase == Phase.TrainerCommit) {
            complete = r.committed >= p.maxTrainers;
        } else if (phase == Phase.TrainerReveal) {
            complete = r.revealed == r.committed;
        } else {
            (bool isDrawn, uint256 size, uint256 aggCommitted, uint256 aggRevealed,) = committee.tally(taskId, round);
            complete = phase == Phase.AggregatorCommit ? isDrawn && aggCommitted >= size : aggRevealed == aggCommitted;
        }
        uint64 deadline = _deadline(r);
        if (!complete && block.timestamp <= deadline) revert PhaseNotOver(deadline);

        if (phase == Phase.TrainerCommit) {
            if (r.committed < p.minTrainers) _failRound(taskId, t, round, r, TOO_FEW_TRAINERS);
            else _enterPhase(taskId, round, r, Phase.TrainerReveal, p.revealDuration);
        } else if (phase == Phase.TrainerReveal) {
            if (r.revealed < p.minTrainers) {
                _failRound(taskId, t, round, r, TOO_FEW_TRAINERS);
            } else {
                r.drawBlock = uint64(block.number); // its hash, unknown until this block exists, seeds the draw
                _enterPhase(taskId, round, r, Phase.AggregatorCommit, p.aggregatorCommitDuration);
            }
        } else if (phase == Phase.AggregatorCommit) {
            (,, uint256 aggCommitted,,) = committee.tally(taskId, round);
            if (aggCommitted < p.aggregatorQuorum) _failRound(taskId, t, round, r, NO_QUORUM);
            else _enterPhase(taskId, round, r, Phase.AggregatorReveal, p.aggregatorRevealDuration);
        } else {
            (bytes32 key, AggregateResult memory result) = committee.acceptedResult(taskId, round);
            if (key == 0) {
                _failRound(taskId, t, round, r, NO_QUORUM);
            } else {
                _accept(r, key, result);
                _finalizeRound(taskId, t, round, r);
            }
        }
    }

    // ------------------------------------------------------------------ bonds and slashing

    /// @inheritdoc ITaskManager
    function slashNonRevealingTrainer(uint256 taskId, uint256 round, address trainer) external nonReentrant {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        Phase phase = r.phase;
        // The reveal phase is over once the round left it; a round that failed in TrainerCommit never had one.
        bool open = phase >= Phase.AggregatorCommit && !(phase == Phase.Failed && r.failedPhase == Phase.TrainerCommit);
        uint256 word = _trainers[taskId][round][trainer];
        TrainerStatus status = TrainerSlots.status(word);
        if (status == TrainerStatus.None) revert NotCommitted();
        if (status == TrainerStatus.Slashed) revert AlreadySlashed();
        if (status != TrainerStatus.Committed) revert NotSlashable();
        if (!open) revert SlashingNotOpen(phase);

        uint256 bond = _roundBond[taskId][round];
        _trainers[taskId][round][trainer] = TrainerSlots.settled(word, TrainerStatus.Slashed);
        uint256 slashed = _settleBond(trainer, bond, trainerSlashBps, SLASH_NON_REVEALING_TRAINER);
        emit TrainerSlashed(taskId, round, trainer, slashed);
    }

    /// @inheritdoc ITaskManager
    function forfeitBond(uint256 taskId, uint256 round, address trainer, uint16 bps, bytes32 reason)
        external
        onlyRole(REJECTION_ROLE)
        nonReentrant
        returns (uint256 amount)
    {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        if (r.phase != Phase.Finalized) revert WrongPhase(Phase.Finalized, r.phase);
        if (block.timestamp > r.settledAt) revert SettlementClosed(r.settledAt);
        if (bps > BPS) revert InvalidSlashFraction(bps);
        uint256 word = _trainers[taskId][round][trainer];
        TrainerStatus status = TrainerSlots.status(word);
        if (status == TrainerStatus.Slashed) revert AlreadySlashed();
        if (status != TrainerStatus.Revealed) revert NotRevealed();

        uint256 bond = TrainerSlots.bondGone(word) ? 0 : _roundBond[taskId][round];
        _trainers[taskId][round][trainer] = TrainerSlots.settled(word, TrainerStatus.Slashed);
        amount = _settleBond(trainer, bond, bps, reason);
        emit TrainerSlashed(taskId, round, trainer, amount);
    }

    /// @inheritdoc ITaskManager
    function releaseBond(uint256 taskId, uint256 round, address trainer) external nonReentrant {
        _task(taskId);
        RoundInfo storage r = _rounds[taskId][round];
        Phase phase = r.phase;
        if (phase != Phase.Finalized && phase != Phase.Failed) revert NotSettled(0);
        if (phase == Phase.Finalized && block.timestamp <= r.settledAt) revert NotSettled(r.settledAt);
        uint256 word = _trainers[taskId][round][trainer];
        TrainerStatus status = TrainerSlots.status(word);
        // A commitment in a round that failed before its reveal phase was never asked to reveal: released too.
        bool neverAsked = status == TrainerStatus.Committed && r.failedPhase == Phase.TrainerCommit;
        uint256 amount = _roundBond[taskId][round];
        if ((status != TrainerStatus.Revealed && !neverAsked) || TrainerSlots.bondGone(word) || amount == 0) {
            revert NoBond();
        }
        _trainers[taskId][round][trainer] = TrainerSlots.settled(word, status);
        emit BondReleased(taskId, round, trainer, amount);
        staking.release(trainer, amount);
    }

    /// @inheritdoc ITaskManager
    function markClaimed(uint256 taskId, uint256 round, address trainer, uint256 amount) external {
        if (msg.sender != address(vault)) revert NotVault();
        uint256 word = _trainers[taskId][round][trainer];
        if (TrainerSlots.status(word) != TrainerStatus.Revealed) revert NotRevealed();
        uint256 bond = TrainerSlots.bondGone(word) ? 0 : _roundBond[taskId][round];
        _trainers[taskId][round][trainer] = TrainerSlots.settled(word, TrainerStatus.Claimed);
        emit RewardClaimed(taskId, round, trainer, amount);
        if (bond != 0) {
            emit BondReleased(taskId, round, trainer, bond);
            staking.release(trainer, bond);
        }
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
        if (min == 0 || min > max || max > MAX_PHASE_DURATION_CAP) revert InvalidDurationBounds(min, max);
        minPhaseDuration = min;
        maxPhaseDuration = max;
        emit PhaseDurationBoundsChanged(min, max);
    }

    /// @inheritdoc ITaskManager
    function setSettlementWindow(uint64 window) external onlyRole(PARAMETER_ROLE) {
        if (window < MIN_SETTLEMENT_WINDOW || window > MAX_SETTLEMENT_WINDOW) revert InvalidSettlementWindow(window);
        emit SettlementWindowChanged(settlementWindow, window);
        settlementWindow = window;
    }

    // ------------------------------------------------------------------ internals

    function _requireCommitted(uint256 word) private pure {
        TrainerStatus status = TrainerSlots.status(word);
        if (status == TrainerStatus.None) revert NotCommitted();
        if (status != TrainerStatus.Committed) revert AlreadyRevealed();
    }

    function _accept(RoundInfo storage r, bytes32 key, AggregateResult memory result) private {
        r.acceptedKey = key;
        r.resultCid = result.resultCid;
        r.resultDigest = result.resultDigest;
        r.scoresRoot = result.scoresRoot;
        r.totalWeight = result.totalWeight;
        r.accepted = result.accepted;
        r.rejected = result.rejected;
        r.accuracyPpm = result.accuracyPpm;
        r.lossMicro = result.lossMicro;
    }
}
