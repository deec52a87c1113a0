// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorStatus, AggregateResult, AggregatorEntry} from "../TaskTypes.sol";

/// @title IAggregatorCommittee
/// @notice The aggregator side of every round: the approved aggregators (`AGGREGATOR_ROLE`), each round's drawn
///         committee, its members' commit-reveal of the round's result with bonds, the quorum that accepts a result,
///         and the slashing of members that did not reveal or revealed another result. The committee of a round is
///         `maxAggregators` approved aggregators with the task's aggregator bond free, drawn from the hash of the
///         block that closed the round's trainer-reveal phase: nobody knows it while trainers commit, and no
///         aggregator can pick its own seat.
interface IAggregatorCommittee {
    /// @notice The committee of (`taskId`, `round`) was drawn from `seed` among `eligible` approved aggregators.
    event CommitteeDrawn(uint256 indexed taskId, uint256 indexed round, address[] members, bytes32 seed,
        uint256 eligible);
    /// @notice A committee member committed to a result, reserving `bond` of its stake.
    event AggregateCommitted(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, bytes32 commitment, uint256 bond
    );
    /// @notice A committee member revealed result `resultKey` (file `resultCid`).
    event AggregateRevealed(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, bytes32 resultKey, string resultCid
    );
    /// @notice `resultKey` reached the task's aggregator quorum and is the round's accepted result.
    event QuorumReached(uint256 indexed taskId, uint256 indexed round, bytes32 resultKey);
    /// @notice `aggregator` was slashed `amount` of its bond (non-reveal or a result other than the accepted one).
    event AggregatorSlashed(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, uint256 amount
    );
    /// @notice `aggregator`'s bond for the round was released.
    event AggregatorBondReleased(
        uint256 indexed taskId, uint256 indexed round, address indexed aggregator, uint256 amount
    );

    /// @notice The round is not in the phase the action needs (`expected`, `actual` as numbers).
    error WrongPhase(uint8 expected, uint8 actual);
    /// @notice The phase closed at `deadline`.
    error PhaseClosed(uint64 deadline);
    /// @notice The block whose hash seeds the draw is not mined yet; draw from the next block on.
    error DrawTooEarly(uint64 drawBlock);
    /// @notice The caller is not in the round's drawn committee.
    error NotInCommittee();
    /// @notice A commitment must not be zero.
    error ZeroCommitment();
    /// @notice The caller already committed in this round.
    error AlreadyCommitted();
    /// @notice The account did not commit in this round.
    error NotCommitted();
    /// @notice The caller already revealed in this round.
    error AlreadyRevealed();
    /// @notice The reveal does not open the commitment.
    error CommitmentMismatch();
    /// @notice A result CID must be 1..128 bytes.
    error InvalidCid();
    /// @notice A commitment needs `required` free stake; the member has `available`.
    error InsufficientStake(uint256 available, uint256 required);
    /// @notice The round cannot be slashed or settled in its phase (`actual` as a number).
    error SlashingNotOpen(uint8 actual);
    /// @notice The member did nothing slashable in this round.
    error NotSlashable();
    /// @notice The member was already slashed in this round.
    error AlreadySlashed();
    /// @notice The round was settled at `settledAt`: a dissenting result can no longer be slashed.
    error SettlementClosed(uint64 settledAt);
    /// @notice The round's bonds stay reserved until `settledAt`.
    error NotSettled(uint64 settledAt);
    /// @notice The member has no bond to release in this round.
    error NoBond();
    /// @notice Only the RewardVault may do this.
    error NotVault();
    /// @notice At most `max` aggregators may be approved (the draw reads them all).
    error TooManyAggregators(uint256 max);
    /// @notice A zero address.
    error ZeroAddress();
    /// @notice The TaskManager and vault are connected once, by the admin.
    error AlreadyConnected();

    /// @notice Draw the committee of the task's current round (idempotent; anyone may call it once the round is in
    ///         its aggregator commit phase and its draw block is mined).
    /// @return size The number of members.
    function draw(uint256 taskId, uint256 round) external returns (uint256 size);

    /// @notice Commit to a result for the task's current round (AggregatorCommit phase), as a member of its drawn
    ///         committee (drawn here if nobody drew it yet), reserving the task's aggregator bond.
    function commitAggregate(uint256 taskId, bytes32 commitment) external;

    /// @notice Reveal the committed result (AggregatorReveal phase). Needs no role: a member that committed can
    ///         always reveal, even if its approval was revoked since.
    function revealAggregate(uint256 taskId, AggregateResult calldata result, bytes32 salt) external;

    /// @notice Slash a member that committed and did not reveal, or (before the round is settled) revealed a
    ///         result other than the accepted one: the TaskManager's `aggregatorSlashBps` of its bond.
    function slashAggregator(uint256 taskId, uint256 round, address aggregator) external;

    /// @notice Release a member's bond once the round can no longer slash it (failed, or settled), and a committed
    ///         member's bond in a round that failed in its commit phase (never asked to reveal). Anyone.
    function releaseBond(uint256 taskId, uint256 round, address aggregator) external;

    /// @notice Record that the vault paid a member its committee reward and release its bond. Only the vault.
    function markClaimed(uint256 taskId, uint256 round, address aggregator) external;

    /// @notice Whether the round's committee was drawn.
    function drawn(uint256 taskId, uint256 round) external view returns (bool);

    /// @notice Whether `account` is a member of the round's committee (false until drawn).
    function isMember(uint256 taskId, uint256 round, address account) external view returns (bool);

    /// @notice The round's committee (empty until drawn).
    function membersOf(uint256 taskId, uint256 round) external view returns (address[] memory);

    /// @notice How many aggregators are approved now.
    function approvedCount() external view returns (uint256);

    /// @notice A member's entry in a round.
    function getAggregatorEntry(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (AggregatorEntry memory);

    /// @notice How many members revealed `resultKey` in a round.
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultKey) external view returns (uint256);

    /// @notice The round's committee so far: drawn, its size, how many committed and revealed, the accepted key.
    function tally(uint256 taskId, uint256 round)
        external
        view
        returns (bool isDrawn, uint256 size, uint256 committed, uint256 revealed, bytes32 acceptedKey);

    /// @notice The accepted result of a round (key 0: none reached the quorum).
    function acceptedResult(uint256 taskId, uint256 round)
        external
        view
        returns (bytes32 key, AggregateResult memory result);

    /// @notice What a member's committee-reward claim needs: the accepted key's votes, whether `aggregator`
    ///         revealed it, and its status.
    function claimView(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (uint256 votes, bool matched, AggregatorStatus status);
}
