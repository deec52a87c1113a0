// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IStaking} from "./IStaking.sol";
import {
    Phase,
    TaskParams,
    AggregateResult,
    TaskInfo,
    RoundInfo,
    TrainerEntry,
    AggregatorEntry
} from "../TaskTypes.sol";

/// @title ITaskManager
/// @notice Federated-learning tasks: per-round trainer and aggregator commit-reveal, finalization,
///         rewards by Merkle proof and slashing. The binding spec is docs/PROTOCOL.md.
interface ITaskManager {
    // ------------------------------------------------------------------ events

    event TaskCreated(
        uint256 indexed taskId,
        address indexed sponsor,
        string architecture,
        string initialModelCid,
        uint256 rewardBudget,
        uint32 numRounds
    );
    event RoundStarted(uint256 indexed taskId, uint256 indexed round, uint64 commitDeadline);
    /// @notice The round moved to `phase`; `deadline` is its deadline (0 for Finalized and Failed).
    event PhaseAdvanced(uint256 indexed taskId, uint256 indexed round, Phase phase, uint64 deadline);
    event UpdateCommitted(uint256 indexed taskId, uint256 indexed round, address indexed trainer, bytes32 commitment);
    event UpdateRevealed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed trainer,
        string cid,
        bytes32 updateDigest,
        uint64 numSamples
    );
    event AggregateCommitted(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, bytes32 commitment
    );
    event AggregateRevealed(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, bytes32 resultKey, string resultCid
    );
    /// @notice `resultKey` reached the aggregator quorum and is now the round's accepted result.
    event QuorumReached(uint256 indexed taskId, uint256 indexed round, bytes32 resultKey);
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        string resultCid,
        bytes32 resultDigest,
        bytes32 scoresRoot,
        uint256 totalWeight,
        uint256 roundBudget
    );
    event RoundFailed(uint256 indexed taskId, uint256 indexed round, bytes32 reason);
    event TaskCompleted(uint256 indexed taskId);
    event RewardClaimed(uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount);
    event TrainerSlashed(uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount);
    event AggregatorSlashed(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, uint256 amount
    );
    event BudgetReclaimed(uint256 indexed taskId, address indexed sponsor, uint256 amount);
    event SlashFractionsChanged(uint16 trainerBps, uint16 aggregatorBps);
    event PhaseDurationBoundsChanged(uint64 min, uint64 max);

    // ------------------------------------------------------------------ errors

    error ZeroAddress();
    error UnknownTask(uint256 taskId);
    error TaskNotActive(uint256 taskId);
    error TaskNotCompleted(uint256 taskId);
    error InvalidTaskParams(string reason);
    error WrongPhase(Phase expected, Phase actual);
    error PhaseClosed(uint64 deadline);
    error PhaseNotOver(uint64 deadline);
    error InsufficientStake(uint256 available, uint256 required);
    error ZeroCommitment();
    error AlreadyCommitted();
    error NotCommitted();
    error AlreadyRevealed();
    error NotRevealed();
    error CommitmentMismatch();
    error TrainerLimitReached();
    error AggregatorLimitReached();
    error InvalidCid();
    error ZeroSamples();
    error InvalidProof();
    error AlreadyClaimed();
    error NoRoundBudget();
    error RoundOverpaid(uint256 available, uint256 reward);
    error NotSponsor();
    error NothingToReclaim();
    error SlashingNotOpen(Phase actual);
    error NotSlashable();
    error AlreadySlashed();
    error InvalidSlashFraction(uint16 bps);
    error InvalidDurationBounds(uint64 min, uint64 max);

    // ------------------------------------------------------------------ tasks and rounds

    /// @notice Create a task and start its round 1. The caller (sponsor) must have approved
    ///         `params.rewardBudget` tokens to this contract; they are pulled in.
    /// @dev Emits {TaskCreated} and {RoundStarted}. Reverts with `InvalidTaskParams(reason)`.
    /// @param params Task parameters (docs/PROTOCOL.md, "Tasks").
    /// @return taskId The new task id (ids start at 1).
    function createTask(TaskParams calldata params) external returns (uint256 taskId);

    /// @notice Commit to a local update in the current round's TrainerCommit phase.
    /// @dev `commitment = computeTrainerCommitment(msg.sender, taskId, round, updateDigest, numSamples, salt)`.
    ///      Needs active stake >= `minTrainerStake`. Emits {UpdateCommitted}. Locks the trainer's stake until
    ///      `unbondingDelay` after the round's end (commit deadline + reveal + aggregator commit + aggregator reveal
    ///      durations) with `Staking.extendLock`, so it cannot be withdrawn before a slash for this round.
    /// @param taskId The task.
    /// @param commitment The trainer commitment (non-zero).
    function commitUpdate(uint256 taskId, bytes32 commitment) external;

    /// @notice Reveal the committed update in the TrainerReveal phase.
    /// @dev Emits {UpdateRevealed}. Reverts with `CommitmentMismatch` when the values do not hash to the commitment.
    /// @param taskId The task.
    /// @param cid CID of the update file (1..128 bytes).
    /// @param updateDigest sha256 of the update file.
    /// @param numSamples Number of local training samples (> 0); weights the reward.
    /// @param salt The salt used in the commitment.
    function revealUpdate(
        uint256 taskId,
        string calldata cid,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt
    ) external;

    /// @notice Commit to an aggregate result in the AggregatorCommit phase. Only `AGGREGATOR_ROLE`.
    /// @dev `commitment = computeAggregatorCommitment(msg.sender, taskId, round, resultKey, salt)`.
    ///      Needs active stake >= `minAggregatorStake`. Emits {AggregateCommitted}. Locks the aggregator's stake
    ///      until `unbondingDelay` after the round's end (commit deadline + aggregator reveal duration).
    /// @param taskId The task.
    /// @param commitment The aggregator commitment (non-zero).
    function commitAggregate(uint256 taskId, bytes32 commitment) external;

    /// @notice Reveal the committed aggregate result in the AggregatorReveal phase. Only `AGGREGATOR_ROLE`.
    /// @dev Counts a vote for the result key; the reveal that brings a key to `aggregatorQuorum` votes stores
    ///      it as the accepted result. Emits {AggregateRevealed} (and {QuorumReached}).
    /// @param taskId The task.
    /// @param result The aggregate result (resultCid 1..128 bytes).
    /// @param salt The salt used in the commitment.
    function revealAggregate(uint256 taskId, AggregateResult calldata result, bytes32 salt) external;

    /// @notice Move the current round one phase forward, once its deadline has passed or the phase is complete.
    ///         Anyone may call it. Leaving AggregatorReveal finalizes (or fails) the round and starts the next
    ///         round or completes the task in the same transaction.
    /// @dev Emits {PhaseAdvanced}, and {RoundFailed} / {RoundFinalized}, {RoundStarted} / {TaskCompleted}.
    ///      Reverts with `PhaseNotOver(deadline)`.
    /// @param taskId The task.
    function advance(uint256 taskId) external;

    /// @notice Claim the caller's reward for a finalized round:
    ///         `roundBudget * score * numSamples / totalWeight`.
    /// @dev Emits {RewardClaimed}. Reverts with `InvalidProof`, `AlreadyClaimed`, `RoundOverpaid`.
    /// @param taskId The task.
    /// @param round The round.
    /// @param score The caller's attested score (leaf of the round's `scoresRoot`).
    /// @param proof Merkle proof of `computeScoreLeaf(msg.sender, score)` (sorted-pair hashing).
    function claimReward(uint256 taskId, uint256 round, uint32 score, bytes32[] calldata proof) external;

    /// @notice Slash a trainer who committed but did not reveal in a round that went through its reveal phase.
    ///         Anyone may call it. Takes `trainerSlashBps` of the trainer's active + unbonding stake.
    /// @dev Emits {TrainerSlashed}.
    /// @param taskId The task.
    /// @param round The round.
    /// @param trainer The non-revealing trainer.
    function slashNonRevealingTrainer(uint256 taskId, uint256 round, address trainer) external;

    /// @notice Slash an aggregator that committed but did not reveal, or revealed a result other than the
    ///         accepted one, once the round is Finalized or Failed (after its AggregatorReveal phase).
    ///         Anyone may call it. Takes `aggregatorSlashBps` of the aggregator's active + unbonding stake.
    /// @dev Emits {AggregatorSlashed}.
    /// @param taskId The task.
    /// @param round The round.
    /// @param aggregator The aggregator.
    function slashAggregator(uint256 taskId, uint256 round, address aggregator) external;

    /// @notice After the task completed, return the budget that no round allocated to the sponsor.
    /// @dev Emits {BudgetReclaimed}. Reverts with `NotSponsor`, `TaskNotCompleted`, `NothingToReclaim`.
    /// @param taskId The task.
    function reclaimUnallocated(uint256 taskId) external;

    // ------------------------------------------------------------------ parameters

    /// @notice Set the slash fractions in basis points (each <= 10000). Only `PARAMETER_ROLE`.
    /// @dev Emits {SlashFractionsChanged}.
    function setSlashFractions(uint16 trainerBps, uint16 aggregatorBps) external;

    /// @notice Set the bounds new tasks' phase durations must lie in (0 < min <= max). Only `PARAMETER_ROLE`.
    /// @dev Emits {PhaseDurationBoundsChanged}.
    function setPhaseDurationBounds(uint64 min, uint64 max) external;

    /// @notice Fraction of stake slashed from a non-revealing trainer, in basis points.
    function trainerSlashBps() external view returns (uint16);

    /// @notice Fraction of stake slashed from a faulty aggregator, in basis points.
    function aggregatorSlashBps() external view returns (uint16);

    /// @notice Smallest phase duration a new task may use, seconds.
    function minPhaseDuration() external view returns (uint64);

    /// @notice Largest phase duration a new task may use, seconds.
    function maxPhaseDuration() external view returns (uint64);

    /// @notice The reward token.
    function token() external view returns (IERC20);

    /// @notice The staking contract (stake checks and slashing).
    function staking() external view returns (IStaking);

    // ------------------------------------------------------------------ views

    /// @notice Number of tasks created (the highest task id).
    function taskCount() external view returns (uint256);

    /// @notice A task, with its parameters. Reverts with `UnknownTask`.
    function getTask(uint256 taskId) external view returns (TaskInfo memory);

    /// @notice A round of a task (all zero for a round that has not started). Reverts with `UnknownTask`.
    function getRound(uint256 taskId, uint256 round) external view returns (RoundInfo memory);

    /// @notice A trainer's entry in a round.
    function getTrainerEntry(uint256 taskId, uint256 round, address trainer)
        external
        view
        returns (TrainerEntry memory);

    /// @notice The trainers that committed in a round, in commit order.
    function getRoundTrainers(uint256 taskId, uint256 round) external view returns (address[] memory);

    /// @notice An aggregator's entry in a round.
    function getAggregatorEntry(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (AggregatorEntry memory);

    /// @notice How many aggregators revealed `resultKey` in a round.
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultKey) external view returns (uint256);

    // ------------------------------------------------------------------ pure helpers

    /// @notice `keccak256(abi.encode(trainer, taskId, round, updateDigest, numSamples, salt))`.
    function computeTrainerCommitment(
        address trainer,
        uint256 taskId,
        uint256 round,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice `keccak256(abi.encode(keccak256(bytes(resultCid)), resultDigest, scoresRoot, totalWeight,
    ///         accepted, rejected, accuracyPpm, lossMicro))`.
    function computeResultKey(AggregateResult calldata result) external pure returns (bytes32);

    /// @notice `keccak256(abi.encode(aggregator, taskId, round, resultKey, salt))`.
    function computeAggregatorCommitment(
        address aggregator,
        uint256 taskId,
        uint256 round,
        bytes32 resultKey,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice `keccak256(bytes.concat(keccak256(abi.encode(trainer, score))))` (OpenZeppelin double hash).
    function computeScoreLeaf(address trainer, uint32 score) external pure returns (bytes32);
}
