// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControlEnumerable} from "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IAggregatorCommittee} from "./interfaces/IAggregatorCommittee.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {Phase, AggregatorStatus, AggregateResult, AggregatorEntry} from "./TaskTypes.sol";

/// @title AggregatorCommittee
/// @notice The aggregator side of every round (see IAggregatorCommittee): approvals (`AGGREGATOR_ROLE`, granted by
///         the DAO or the deployer), the draw of each round's committee, its members' commit-reveal of the round's
///         result with bonds, the quorum, and the slashing of members. The draw: when a round's trainer-reveal
///         phase closes, the TaskManager records that block; once it is mined, anyone may draw. Members are the first
///         `maxAggregators` of a permutation of the approved aggregators that have the task's aggregator bond free,
///         seeded by that block's hash (the previous block's if more than 256 blocks passed).
contract AggregatorCommittee is IAggregatorCommittee, AccessControlEnumerable, ReentrancyGuard {
    /// @notice Role of an approved aggregator.
    bytes32 public constant AGGREGATOR_ROLE = keccak256("AGGREGATOR_ROLE");
    /// @notice Most approved aggregators at once (the draw reads them all).
    uint256 public constant MAX_APPROVED = 128;
    uint16 internal constant BPS = 10_000;
    uint256 internal constant MAX_CID_LENGTH = 128;
    bytes32 internal constant SLASH_NON_REVEALING = "NonRevealingAggregator";
    bytes32 internal constant SLASH_DISSENTING = "DissentingAggregator";

    struct Round {
        bool drawn;
        uint32 committed;
        uint32 revealed;
        bytes32 acceptedKey;
        AggregateResult accepted;
        address[] members;
    }

    /// @notice The TaskManager whose rounds are aggregated.
    ITaskManager public tasks;
    /// @notice The RewardVault that pays committee rewards.
    address public vault;
    /// @notice The staking contract that holds the bonds (this contract needs its `SLASHER_ROLE`).
    IStaking public immutable staking;

    mapping(uint256 taskId => mapping(uint256 round => Round)) internal _rounds;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => bool))) internal _isMember;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => AggregatorEntry))) internal _entries;
    mapping(uint256 taskId => mapping(uint256 round => mapping(bytes32 key => uint256))) internal _votes;

    /// @param staking_ The staking contract.
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (which administers `AGGREGATOR_ROLE`).
    constructor(IStaking staking_, address admin) {
        if (address(staking_) == address(0) || admin == address(0)) revert ZeroAddress();
        staking = staking_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Connect the TaskManager and the RewardVault, once. Only `DEFAULT_ADMIN_ROLE`.
    function connect(ITaskManager tasks_, address vault_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(tasks) != address(0)) revert AlreadyConnected();
        if (address(tasks_) == address(0) || vault_ == address(0)) revert ZeroAddress();
        tasks = tasks_;
        vault = vault_;
    }

    // ------------------------------------------------------------------ the draw

    /// @inheritdoc IAggregatorCommittee
    function draw(uint256 taskId, uint256 round) public returns (uint256 size) {
        Round storage r = _rounds[taskId][round];
        if (r.drawn) return r.members.length;
        (Phase phase,, uint64 drawBlock,, uint32 wanted,, uint256 bond) = tasks.committeeTerms(taskId, round);
        if (phase != Phase.AggregatorCommit) revert WrongPhase(uint8(Phase.AggregatorCommit), uint8(phase));
        if (block.number <= drawBlock) revert DrawTooEarly(drawBlock);
        bytes32 anchor = blockhash(drawBlock);
        if (anchor == 0) anchor = blockhash(block.number - 1); // more than 256 blocks ago: the hash is gone
        bytes32 seed = keccak256(abi.encode(anchor, address(tasks), taskId, round));
        (address[] memory eligible, uint256 m) = _eligible(bond);
        size = wanted < m ? wanted : m;
        _seat(taskId, round, eligible, m, size, seed);
        r.drawn = true;
        emit CommitteeDrawn(taskId, round, r.members, seed, m);
    }

    /// @dev A partial Fisher-Yates shuffle of the first `m` eligible: its first `size` take the seats.
    function _seat(uint256 taskId, uint256 round, address[] memory eligible, uint256 m, uint256 size, bytes32 seed)
        private
    {
        address[] storage members = _rounds[taskId][round].members;
        for (uint256 i = 0; i < size; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, i))) % (m - i);
            (eligible[i], eligible[j]) = (eligible[j], eligible[i]);
            members.push(eligible[i]);
            _isMember[taskId][round][eligible[i]] = true;
        }
    }

    /// @dev The approved aggregators with at least `bond` free stake (the first `m` entries).
    function _eligible(uint256 bond) private view returns (address[] memory eligible, uint256 m) {
        uint256 n = getRoleMemberCount(AGGREGATOR_ROLE);
        eligible = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            address a = getRoleMember(AGGREGATOR_ROLE, i);
            if (staking.freeStakeOf(a) >= bond) eligible[m++] = a;
        }
    }

    // ------------------------------------------------------------------ commit and reveal

    /// @inheritdoc IAggregatorCommittee
    function commitAggregate(uint256 taskId, bytes32 commitment) external nonReentrant {
        uint256 round = _requireOpen(taskId, Phase.AggregatorCommit);
        if (commitment == 0) revert ZeroCommitment();
        AggregatorEntry storage e = _entries[taskId][round][msg.sender];
        if (e.status != AggregatorStatus.None) revert AlreadyCommitted();
        draw(taskId, round);
        if (!_isMember[taskId][round][msg.sender]) revert NotInCommittee();
        (,,,,,, uint256 bond) = tasks.committeeTerms(taskId, round);

        e.status = AggregatorStatus.Committed;
        e.commitment = commitment;
        e.bond = bond;
        _rounds[taskId][round].committed += 1;
        emit AggregateCommitted(taskId, round, msg.sender, commitment, bond);
        uint256 free = staking.freeStakeOf(msg.sender);
        if (free < bond) revert InsufficientStake(free, bond);
        staking.reserve(msg.sender, bond);
    }

    /// @inheritdoc IAggregatorCommittee
    function revealAggregate(uint256 taskId, AggregateResult calldata result, bytes32 salt) external {
        uint256 round = _requireOpen(taskId, Phase.AggregatorReveal);
        AggregatorEntry storage e = _entries[taskId][round][msg.sender];
        if (e.status == AggregatorStatus.None) revert NotCommitted();
        if (e.status != AggregatorStatus.Committed) revert AlreadyRevealed();
        uint256 len = bytes(result.resultCid).length;
        if (len == 0 || len > MAX_CID_LENGTH) revert InvalidCid();
        bytes32 key = tasks.computeResultKey(result);
        if (tasks.computeAggregatorCommitment(msg.sender, taskId, round, key, salt) != e.commitment) {
            revert CommitmentMismatch();
        }
        (,,,,, uint32 quorum,) = tasks.committeeTerms(taskId, round);

        e.status = AggregatorStatus.Revealed;
        e.resultKey = key;
        Round storage r = _rounds[taskId][round];
        r.revealed += 1;
        uint256 votes = ++_votes[taskId][round][key];
        emit AggregateRevealed(taskId, round, msg.sender, key, result.resultCid);
        if (votes == quorum && r.acceptedKey == 0) {
            r.acceptedKey = key;
            r.accepted = result;
            emit QuorumReached(taskId, round, key);
        }
    }

    function _requireOpen(uint256 taskId, Phase expected) private view returns (uint256 round) {
        Phase phase;
        uint64 deadline;
        (round, phase, deadline) = tasks.phaseView(taskId);
        if (phase != expected) revert WrongPhase(uint8(expected), uint8(phase));
        if (block.timestamp > deadline) revert PhaseClosed(deadline);
    }

    // ------------------------------------------------------------------ bonds

    /// @inheritdoc IAggregatorCommittee
    function slashAggregator(uint256 taskId, uint256 round, address aggregator) external nonReentrant {
        (Phase phase, Phase failedPhase,, uint64 settledAt,,,) = tasks.committeeTerms(taskId, round);
        AggregatorEntry storage e = _entries[taskId][round][aggregator];
        AggregatorStatus status = e.status;
        if (status == AggregatorStatus.None) revert NotCommitted();
        if (status == AggregatorStatus.Slashed) revert AlreadySlashed();
        // Only rounds that went through AggregatorReveal: a round that failed earlier never had one.
        bool open = phase == Phase.Finalized || (phase == Phase.Failed && failedPhase == Phase.AggregatorReveal);
        if (!open) revert SlashingNotOpen(uint8(phase));
        bytes32 accepted = _rounds[taskId][round].acceptedKey;
        bytes32 reason;
        if (status == AggregatorStatus.Committed) {
            reason = SLASH_NON_REVEALING;
        } else if (status == AggregatorStatus.Revealed && accepted != 0 && e.resultKey != accepted) {
            if (block.timestamp > settledAt) revert SettlementClosed(settledAt);
            reason = SLASH_DISSENTING;
        } else {
            revert NotSlashable();
        }

        uint256 bond = e.bond;
        e.status = AggregatorStatus.Slashed;
        e.bond = 0;
        uint256 amount = bond * tasks.aggregatorSlashBps() / BPS;
        emit AggregatorSlashed(taskId, round, aggregator, amount);
        if (amount != 0) staking.slashReserved(aggregator, amount, reason);
        if (bond > amount) staking.release(aggregator, bond - amount);
    }

    /// @inheritdoc IAggregatorCommittee
    function releaseBond(uint256 taskId, uint256 round, address aggregator) external nonReentrant {
        (Phase phase, Phase failedPhase,, uint64 settledAt,,,) = tasks.committeeTerms(taskId, round);
        if (phase != Phase.Finalized && phase != Phase.Failed) revert NotSettled(0);
        if (phase == Phase.Finalized && block.timestamp <= settledAt) revert NotSettled(settledAt);
        AggregatorEntry storage e = _entries[taskId][round][aggregator];
        uint256 amount = e.bond;
        // A commitment in a round that failed in its commit phase was never asked to reveal: released too.
        bool neverAsked = e.status == AggregatorStatus.Committed && failedPhase == Phase.AggregatorCommit;
        if ((e.status != AggregatorStatus.Revealed && !neverAsked) || amount == 0) revert NoBond();
        e.bond = 0;
        emit AggregatorBondReleased(taskId, round, aggregator, amount);
        staking.release(aggregator, amount);
    }

    /// @inheritdoc IAggregatorCommittee
    function markClaimed(uint256 taskId, uint256 round, address aggregator) external {
        if (msg.sender != vault) revert NotVault();
        AggregatorEntry storage e = _entries[taskId][round][aggregator];
        if (e.status != AggregatorStatus.Revealed) revert NotSlashable();
        uint256 bond = e.bond;
        e.status = AggregatorStatus.Claimed;
        e.bond = 0;
        if (bond != 0) {
            emit AggregatorBondReleased(taskId, round, aggregator, bond);
            staking.release(aggregator, bond);
        }
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAggregatorCommittee
    function drawn(uint256 taskId, uint256 round) external view returns (bool) {
        return _rounds[taskId][round].drawn;
    }

    /// @inheritdoc IAggregatorCommittee
    function isMember(uint256 taskId, uint256 round, address account) external view returns (bool) {
        return _isMember[taskId][round][account];
    }

    /// @inheritdoc IAggregatorCommittee
    function membersOf(uint256 taskId, uint256 round) external view returns (address[] memory) {
        return _rounds[taskId][round].members;
    }

    /// @inheritdoc IAggregatorCommittee
    function approvedCount() external view returns (uint256) {
        return getRoleMemberCount(AGGREGATOR_ROLE);
    }

    /// @inheritdoc IAggregatorCommittee
    function getAggregatorEntry(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (AggregatorEntry memory)
    {
        return _entries[taskId][round][aggregator];
    }

    /// @inheritdoc IAggregatorCommittee
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultKey) external view returns (uint256) {
        return _votes[taskId][round][resultKey];
    }

    /// @inheritdoc IAggregatorCommittee
    function tally(uint256 taskId, uint256 round) external view returns (bool, uint256, uint256, uint256, bytes32) {
        Round storage r = _rounds[taskId][round];
        return (r.drawn, r.members.length, r.committed, r.revealed, r.acceptedKey);
    }

    /// @inheritdoc IAggregatorCommittee
    function acceptedResult(uint256 taskId, uint256 round) external view returns (bytes32, AggregateResult memory) {
        Round storage r = _rounds[taskId][round];
        return (r.acceptedKey, r.accepted);
    }

    /// @inheritdoc IAggregatorCommittee
    function claimView(uint256 taskId, uint256 round, address aggregator)
        external
        view
        returns (uint256 votes, bool matched, AggregatorStatus status)
    {
        bytes32 key = _rounds[taskId][round].acceptedKey;
        AggregatorEntry storage e = _entries[taskId][round][aggregator];
        return (_votes[taskId][round][key], key != 0 && e.resultKey == key, e.status);
    }

    /// @dev At most `MAX_APPROVED` approved aggregators.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted && role == AGGREGATOR_ROLE && getRoleMemberCount(AGGREGATOR_ROLE) > MAX_APPROVED) {
            revert TooManyAggregators(MAX_APPROVED);
        }
    }
}
