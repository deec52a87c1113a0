// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IStaking} from "./IStaking.sol";
import {IAggregatorCommittee} from "./IAggregatorCommittee.sol";
import {IRewardVault} from "./IRewardVault.sol";
import {Phase, TrainerStatus, TaskParams, AggregateResult, TaskInfo, RoundInfo, TrainerEntry} from "../TaskTypes.sol";

/// @title ITaskManager
/// @notice Federated-learning tasks: the per-round phase machine, trainer commit-reveal with bonds, finalization
///         and the trainers' slashing. The aggregator side (committee draw, result commit-reveal, quorum) is the
///         AggregatorCommittee; budgets and rewards live in the RewardVault. The binding spec is docs/PROTOCOL.md.
interface ITaskManager {
    // ------------------------------------------------------------------ events

    /// @notice A sponsor created a task; its budget moved to the RewardVault.
    event TaskCreated(
        uint256 indexed taskId,
        address indexed sponsor,
        string architecture,
        string initialModelCid,
        uint256 rewardBudget,
        uint32 numRounds
    );
    /// @notice Round `round` of `taskId` opened for trainer commits until `commitDeadline`.
    event RoundStarted(uint256 indexed taskId, uint256 indexed round, uint64 commitDeadline);
    /// @notice The round moved to `phase`; `deadline` is its deadline (0 for Finalized and Failed).
    event PhaseAdvanced(uint256 indexed taskId, uint256 indexed round, Phase phase, uint64 deadline);
    /// @notice `trainer` committed to an update, reserving `bond` of its stake.
    event UpdateCommitted(
        uint256 indexed taskId, uint256 indexed round, address indexed trainer, bytes32 commitment, uint256 bond
    );
    /// @notice `trainer` revealed its update: file `cid` with sha256 `updateDigest`, trained on `numSamples`.
    event UpdateRevealed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed trainer,
        string cid,
        bytes32 updateDigest,
        uint64 numSamples
    );
    /// @notice The round finalized: its result is the new global model and it allocated `roundBudget`.
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        string resultCid,
        bytes32 resultDigest,
        bytes32 scoresRoot,
        uint256 totalWeight,
        uint256 roundBudget
    );
    /// @notice The round failed (`reason`: TooFewTrainers or NoQuorum); its budget stays with the task.
    event RoundFailed(uint256 indexed taskId, uint256 indexed round, bytes32 reason);
    /// @notice The task's last round ended.
    event TaskCompleted(uint256 indexed taskId);
    /// @notice `trainer` was slashed `amount` of its bond (non-reveal, or a rejected update).
    event TrainerSlashed(uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount);
    /// @notice `trainer`'s bond for the round was released (`amount` back to its free stake).
    event BondReleased(uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount);
    /// @notice The RewardVault paid `trainer`'s reward for the round.
    event RewardClaimed(uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount);
    /// @notice The slash fractions (of a bond, in basis points) changed.
    event SlashFractionsChanged(uint16 trainerBps, uint16 aggregatorBps);
    /// @notice The allowed range of phase durations changed.
    event PhaseDurationBoundsChanged(uint64 min, uint64 max);
    /// @notice How long after finalization a round's bonds stay reserved (and rejections can be slashed) changed.
    event SettlementWindowChanged(uint64 oldWindow, uint64 newWindow);
    /// @notice The policy contract changed.
    event PolicyChanged(address oldPolicy, address newPolicy);
    /// @notice The RewardVault and the AggregatorCommittee were connected.
    event Connected(address vault, address committee);

    // ------------------------------------------------------------------ errors

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice No task `taskId`.
    error UnknownTask(uint256 taskId);
    /// @notice The task is completed.
    error TaskNotActive(uint256 taskId);
    /// @notice The task still has rounds to run.
    error TaskNotCompleted(uint256 taskId);
    /// @notice `reason` names the invalid `TaskParams` field.
    error InvalidTaskParams(string reason);
    /// @notice The round is in `actual`, the action needs `expected`.
    error WrongPhase(Phase expected, Phase actual);
    /// @notice The phase closed at `deadline`.
    error PhaseClosed(uint64 deadline);
    /// @notice The phase runs until `deadline` (and is not complete).
    error PhaseNotOver(uint64 deadline);
    /// @notice A commitment needs `required` free stake; the committer has `available`.
    error InsufficientStake(uint256 available, uint256 required);
    /// @notice A commitment must not be zero.
    error ZeroCommitment();
    /// @notice The commitment names round `committedFor`, but the task's current round is `current`.
    error StaleRound(uint256 current, uint256 committedFor);
    /// @notice The caller already committed in this round.
    error AlreadyCommitted();
    /// @notice The account did not commit in this round.
    error NotCommitted();
    /// @notice The caller already revealed in this round.
    error AlreadyRevealed();
    /// @notice The account did not reveal in this round.
    error NotRevealed();
    /// @notice The reveal does not open the commitment.
    error CommitmentMismatch();
    /// @notice The round already has `maxTrainers` commitments.
    error TrainerLimitReached();
    /// @notice A CID must be 1..128 bytes.
    error InvalidCid();
    /// @notice An update must report at least one sample.
    error ZeroSamples();
    /// @notice The task allows at most `maxSamples` samples per update.
    error TooManySamples(uint64 maxSamples, uint64 numSamples);
    /// @notice The round cannot be slashed in its `actual` phase.
    error SlashingNotOpen(Phase actual);
    /// @notice The account did nothing slashable in this round.
    error NotSlashable();
    /// @notice The account was already slashed in this round.
    error AlreadySlashed();
    /// @notice The round's bonds stay reserved until `settledAt` (rejections may still be slashed).
    error NotSettled(uint64 settledAt);
    /// @notice The round was settled at `settledAt`: rejections can no longer be slashed.
    error SettlementClosed(uint64 settledAt);
    /// @notice The account has no bond to release in this round.
    error NoBond();
    /// @notice Only the RewardVault may do this.
    error NotVault();
    /// @notice A slash fraction above 10000 basis points.
    error InvalidSlashFraction(uint16 bps);
    /// @notice Phase duration bounds with `min == 0`, `min > max` or `max` above 365 days.
    error InvalidDurationBounds(uint64 min, uint64 max);
    /// @notice A settlement window outside [1 minute, 30 days].
    error InvalidSettlementWindow(uint64 window);
    /// @notice The vault and committee are connected once.
    error AlreadyConnected();
    /// @notice New tasks and trainer commits are paused by the policy's guardian until `until`.
    error NewRoundsPaused(uint64 until);

    // ------------------------------------------------------------------ tasks and rounds

    /// @notice Create a task from `params`; the sponsor (caller) must have approved `rewardBudget` to this
    ///         contract, which moves it to the RewardVault. Starts round 1.
    /// @return taskId The new task's id.
    function createTask(TaskParams calldata params) external returns (uint256 taskId);

    /// @notice Commit to an update in round `round` of the task, which must be its current round (TrainerCommit
    ///         phase), reserving the task's trainer bond of the caller's free stake. Naming the round keeps a
    ///         commitment made for a round that has since failed from landing (and forfeiting its bond) in the next.
    function commitUpdate(uint256 taskId, uint256 round, bytes32 commitment) external;

    /// @notice Reveal the committed update (TrainerReveal phase).
    function revealUpdate(
        uint256 taskId,
        string calldata cid,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt
    ) external;

    /// @notice Move the task's current round to its next phase once the phase is over (its deadline, moved by
    ///         any pause, has passed) or complete. Anyone may call it.
    function advance(uint256 taskId) external;

    /// @notice Slash a trainer that committed but did not reveal: `trainerSlashBps` of its bond (all of it by
    ///         default), the rest released. Anyone may call it once the reveal phase is over.
    function slashNonRevealingTrainer(uint256 taskId, uint256 round, address trainer) external;

    /// @notice Slash `bps` of a revealed trainer's bond for a rejected update, before the round is settled. Only
    ///         `REJECTION_ROLE` (the RejectionSlasher, which checks the proof).
    function forfeitBond(uint256 taskId, uint256 round, address trainer, uint16 bps, bytes32 reason)
        external
        returns (uint256 amount);

    /// @notice Release a revealed trainer's bond for a round that can no longer slash it: a failed round, or a
    ///         finalized round after `settledAt`; also a committed trainer's bond in a round that failed in its
    ///         commit phase (it was never asked to reveal). Anyone may call it.
    function releaseBond(uint256 taskId, uint256 round, address trainer) external;

    /// @notice Record that the vault paid a trainer (status Claimed) and release its bond. Only the RewardVault.
    function markClaimed(uint256 taskId, uint256 round, address trainer, uint256 amount) external;

    // ------------------------------------------------------------------ parameters

    /// @notice Set the fractions of a bond slashed for trainers and aggregators (basis points, at most 10000).
    ///         Only `PARAMETER_ROLE`.
    function setSlashFractions(uint16 trainerBps, uint16 aggregatorBps) external;

    /// @notice Set the allowed range of phase durations for new tasks (`0 < min <= max <= 365 days`).
    ///         Only `PARAMETER_ROLE`.
    function setPhaseDurationBounds(uint64 min, uint64 max) external;

    /// @notice Set how long after finalization a round's bonds stay reserved, in [1 minute, 30 days].
    ///         Only `PARAMETER_ROLE`.
    function setSettlementWindow(uint64 window) external;

    /// @notice Fraction of a non-revealing trainer's bond that is slashed, in basis points.
    function trainerSlashBps() external view returns (uint16);

    /// @notice Fraction of a failing committee member's bond that is slashed, in basis points.
    function aggregatorSlashBps() external view returns (uint16);

    /// @notice Shortest phase duration a new task may choose.
    function minPhaseDuration() external view returns (uint64);

    /// @notice Longest phase duration a new task may choose.
    function maxPhaseDuration() external view returns (uint64);

    /// @notice Seconds after finalization during which a round's bonds stay reserved.
    function settlementWindow() external view returns (uint64);

    /// @notice The reward token.
    function token() external view returns (IERC20);

    /// @notice The staking contract that holds the bonds.
    function staking() external view returns (IStaking);

    /// @notice The aggregator committee of every round.
    function committee() external view returns (IAggregatorCommittee);

    /// @notice The vault that holds the budgets and pays rewards.
    function vault() external view returns (IRewardVault);

    // ------------------------------------------------------------------ views

    /// @notice Number of tasks created.
    function taskCount() external view returns (uint256);

    /// @notice A task, its parameters and progress.
    function getTask(uint256 taskId) external view returns (TaskInfo memory);

    /// @notice A round of a task.
    function getRound(uint256 taskId, uint256 round) external view returns (RoundInfo memory);

    /// @notice A trainer's entry in a round.
    function getTrainerEntry(uint256 taskId, uint256 round, address trainer)
        external
        view
        returns (TrainerEntry memory);

    /// @notice The deadline in force for the task's current phase: its base deadline plus the time paused since
    ///         the phase began.
    function currentDeadline(uint256 taskId) external view returns (uint64);

    /// @notice The bond a trainer commitment reserves in the task's current round: the larger of the task's
    ///         minimum and the policy floor when the round started (fixed for the round).
    function trainerBond(uint256 taskId) external view returns (uint256);

    /// @notice The trainer bond of round `round` (0 before it starts).
    function roundTrainerBond(uint256 taskId, uint256 round) external view returns (uint256);

    /// @notice The bond an aggregator commitment reserves in `taskId` now.
    function aggregatorBond(uint256 taskId) external view returns (uint256);

    /// @notice What a claim needs, in one call: the round's phase, finalization time, score root, total weight
    ///         and allocation, and the trainer's status.
    function claimView(uint256 taskId, uint256 round, address trainer)
        external
        view
        returns (Phase phase, uint64 finalizedAt, bytes32 scoresRoot, uint256 totalWeight, uint256 roundBudget,
            TrainerStatus status);

    /// @notice The task's current round, its phase and the deadline in force.
    function phaseView(uint256 taskId) external view returns (uint256 round, Phase phase, uint64 deadline);

    /// @notice What the committee needs of a round: its phase (and the phase it failed in), draw block, settlement
    ///         time, the task's committee size and quorum, and the aggregator bond.
    function committeeTerms(uint256 taskId, uint256 round)
        external
        view
        returns (Phase phase, Phase failedPhase, uint64 drawBlock, uint64 settledAt, uint32 size, uint32 quorum,
            uint256 bond);

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

    /// @notice The key a result is voted on by (a hash of every `AggregateResult` field).
    function computeResultKey(AggregateResult calldata result) external pure returns (bytes32);

    /// @notice `keccak256(abi.encode(aggregator, taskId, round, resultKey, salt))`.
    function computeAggregatorCommitment(
        address aggregator,
        uint256 taskId,
        uint256 round,
        bytes32 resultKey,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice The score-tree leaf `keccak256(bytes.concat(keccak256(abi.encode(trainer, score, weight))))`.
    function computeScoreLeaf(address trainer, uint32 score, uint64 weight) external pure returns (bytes32);
}
