// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRewardVault
/// @notice Holds every task's budget and pays what the TaskManager's finalized rounds allocate: trainers by Merkle
///         proof of `(trainer, score, weight)`, the committee members whose reveal matched the accepted result an
///         equal part of the committee share, and the protocol fee to the treasury. What nobody claims within the
///         claim window goes back to the sponsor, as does what no round allocated.
interface IRewardVault {
    /// @notice A task's terms were fixed at creation: the committee share and the protocol fee (basis points of
    ///         each round's allocation) and the claim window.
    event TaskOpened(uint256 indexed taskId, uint16 aggregatorRewardBps, uint16 protocolFeeBps, uint64 claimWindow);
    /// @notice A committee member was paid its part of the round's committee share.
    event AggregatorRewardClaimed(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, uint256 amount
    );
    /// @notice The round's protocol fee went to the treasury.
    event FeeCollected(uint256 indexed taskId, uint256 indexed round, address indexed treasury, uint256 amount);
    /// @notice After the claim window, what the round's trainers and committee left unclaimed went to the sponsor.
    event RoundSwept(uint256 indexed taskId, uint256 indexed round, address indexed sponsor, uint256 amount);
    /// @notice After the task completed, what no round allocated went back to the sponsor.
    event BudgetReclaimed(uint256 indexed taskId, address indexed sponsor, uint256 amount);
    /// @notice The committee share, the protocol fee or the claim window for new tasks changed.
    event TermsChanged(uint16 aggregatorRewardBps, uint16 protocolFeeBps, uint64 claimWindow);

    /// @notice Only the TaskManager may do this.
    error NotTaskManager();
    /// @notice The TaskManager is connected once.
    error AlreadyConnected();
    /// @notice A zero address.
    error ZeroAddress();
    /// @notice Terms out of bounds: committee share at most 2000 bps, fee at most 1000 bps, claim window in
    ///         [1 hour, 1825 days].
    error InvalidTerms(uint16 aggregatorRewardBps, uint16 protocolFeeBps, uint64 claimWindow);
    /// @notice The round is not finalized.
    error RoundNotFinalized();
    /// @notice The round allocated nothing.
    error NoRoundBudget();
    /// @notice A score of 0 (a rejected update) earns nothing.
    error NothingToClaim();
    /// @notice The Merkle proof does not match the round's scores.
    error InvalidProof();
    /// @notice The caller already claimed this round.
    error AlreadyClaimed();
    /// @notice The caller did not reveal in this round (its status is given as a number).
    error NotRevealed(uint8 status);
    /// @notice The caller's reveal did not match the accepted result.
    error NotInAcceptedQuorum();
    /// @notice The claim window closed at `closedAt`.
    error ClaimWindowClosed(uint64 closedAt);
    /// @notice The claim window is open until `closesAt`.
    error ClaimWindowOpen(uint64 closesAt);
    /// @notice The round was already swept.
    error AlreadySwept();
    /// @notice The reward exceeds what the round has left for trainers.
    error RoundOverpaid(uint256 available, uint256 reward);
    /// @notice Only the task's sponsor can do this.
    error NotSponsor();
    /// @notice The task still has rounds to run.
    error TaskNotCompleted(uint256 taskId);
    /// @notice Nothing left to reclaim.
    error NothingToReclaim();
    /// @notice Batch arguments of different lengths.
    error LengthMismatch();

    /// @notice Fix the terms of a new task. Only the TaskManager, from `createTask`.
    function openTask(uint256 taskId) external;

    /// @notice Claim the caller's reward for a finalized round with the proof of its leaf
    ///         `(caller, score, weight)`: `trainerBudget * score * weight / totalWeight`. Releases its bond.
    /// @return reward The amount paid.
    function claimReward(uint256 taskId, uint256 round, uint32 score, uint64 weight, bytes32[] calldata proof)
        external
        returns (uint256 reward);

    /// @notice `claimReward` for several rounds of one task in one transaction.
    /// @return total The amount paid.
    function claimRewards(
        uint256 taskId,
        uint256[] calldata rounds,
        uint32[] calldata scores,
        uint64[] calldata weights,
        bytes32[][] calldata proofs
    ) external returns (uint256 total);

    /// @notice Claim the caller's part of the round's committee share (it revealed the accepted result).
    ///         Releases its bond.
    function claimAggregatorReward(uint256 taskId, uint256 round) external returns (uint256 amount);

    /// @notice Send the round's protocol fee to the treasury (anyone; also done by every claim and the sweep).
    function collectFee(uint256 taskId, uint256 round) external returns (uint256 amount);

    /// @notice After the claim window, send what the round's trainers and committee left to the task's sponsor.
    function sweep(uint256 taskId, uint256 round) external returns (uint256 amount);

    /// @notice After the task completed, send what no round allocated back to the sponsor (only the sponsor).
    function reclaimUnallocated(uint256 taskId) external returns (uint256 amount);

    /// @notice How a round's allocation splits: (trainers, committee, protocol fee).
    function splitOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 trainers, uint256 aggregators, uint256 fee);

    /// @notice What was paid of a round: (to trainers, to the committee, fee collected, swept).
    function paidOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 trainers, uint256 aggregators, bool feeCollected, bool swept);
}
