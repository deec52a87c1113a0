// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {IAggregatorCommittee} from "./interfaces/IAggregatorCommittee.sol";
import {Phase, TrainerStatus, AggregatorStatus, TaskInfo, TaskStatus} from "./TaskTypes.sol";

/// @title RewardVault
/// @notice Holds every task's budget; pays trainers, the committee and the protocol fee from what the
///         TaskManager's finalized rounds allocate; returns to the sponsor what is left unclaimed after the claim
///         window and what no round allocated. Tokens in = budgets; tokens out = rewards + fees + sweeps + reclaims.
/// @dev Each task's terms (committee share, fee, claim window) are fixed when it is created, so a later DAO change
///      never alters a running task's rewards.
contract RewardVault is IRewardVault, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to set the terms of new tasks.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    uint16 internal constant BPS = 10_000;
    /// @notice Bounds of the terms.
    uint16 public constant MAX_AGGREGATOR_REWARD_BPS = 2000;
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1000;
    uint64 public constant MIN_CLAIM_WINDOW = 1 hours;
    uint64 public constant MAX_CLAIM_WINDOW = 1825 days;

    struct Terms {
        uint16 aggregatorRewardBps;
        uint16 protocolFeeBps;
        uint64 claimWindow;
        bool reclaimed;
    }

    struct Book {
        uint128 trainersPaid;
        uint128 aggregatorsPaid;
        bool feeCollected;
        bool swept;
    }

    /// @notice The reward token.
    IERC20 public immutable token;
    /// @notice The staking contract (its treasury receives protocol fees).
    IStaking public immutable staking;
    /// @notice The TaskManager whose rounds allocate the budgets.
    ITaskManager public tasks;
    /// @notice Committee share of each round's allocation, for new tasks (basis points).
    uint16 public aggregatorRewardBps = 300;
    /// @notice Protocol fee of each round's allocation, for new tasks (basis points).
    uint16 public protocolFeeBps;
    /// @notice How long after finalization a round's rewards can be claimed, for new tasks.
    uint64 public claimWindow = 180 days;

    mapping(uint256 taskId => Terms) public termsOf;
    mapping(uint256 taskId => mapping(uint256 round => Book)) internal _books;

    /// @param token_ The reward token.
    /// @param staking_ The staking contract (the fee goes to its treasury).
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    constructor(IERC20 token_, IStaking staking_, address admin) {
        if (address(token_) == address(0) || address(staking_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        staking = staking_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        emit TermsChanged(aggregatorRewardBps, protocolFeeBps, claimWindow);
    }

    /// @notice Connect the TaskManager, once. Only `DEFAULT_ADMIN_ROLE`.
    function connect(ITaskManager tasks_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(tasks) != address(0)) revert AlreadyConnected();
        if (address(tasks_) == address(0)) revert ZeroAddress();
        tasks = tasks_;
    }

    /// @notice Set the terms of tasks created from now on. Only `PARAMETER_ROLE`.
    /// @dev Emits {TermsChanged}. Reverts with `InvalidTerms`.
    function setTerms(uint16 aggregatorBps, uint16 feeBps, uint64 window) external onlyRole(PARAMETER_ROLE) {
        if (aggregatorBps > MAX_AGGREGATOR_REWARD_BPS || feeBps > MAX_PROTOCOL_FEE_BPS || window < MIN_CLAIM_WINDOW
            || window > MAX_CLAIM_WINDOW) revert InvalidTerms(aggregatorBps, feeBps, window);
        aggregatorRewardBps = aggregatorBps;
        protocolFeeBps = feeBps;
        claimWindow = window;
        emit TermsChanged(aggregatorBps, feeBps, window);
    }

    /// @inheritdoc IRewardVault
    function openTask(uint256 taskId) external {
        if (msg.sender != address(tasks)) revert NotTaskManager();
        termsOf[taskId] = Terms(aggregatorRewardBps, protocolFeeBps, claimWindow, false);
        emit TaskOpened(taskId, aggregatorRewardBps, protocolFeeBps, claimWindow);
    }

    // ------------------------------------------------------------------ trainers

    /// @inheritdoc IRewardVault
    function claimReward(uint256 taskId, uint256 round, uint32 score, uint64 weight, bytes32[] calldata proof)
        external
        nonReentrant
        returns (uint256 reward)
    {
        reward = _claim(taskId, round, score, weight, proof);
        _collectFee(taskId, round);
        if (reward != 0) token.safeTransfer(msg.sender, reward);
    }

    /// @inheritdoc IRewardVault
    function claimRewards(
        uint256 taskId,
        uint256[] calldata rounds,
        uint32[] calldata scores,
        uint64[] calldata weights,
        bytes32[][] calldata proofs
    ) external nonReentrant returns (uint256 total) {
        uint256 n = rounds.length;
        if (scores.length != n || weights.length != n || proofs.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            total += _claim(taskId, rounds[i], scores[i], weights[i], proofs[i]);
            _collectFee(taskId, rounds[i]);
        }
        if (total != 0) token.safeTransfer(msg.sender, total);
    }

    function _claim(uint256 taskId, uint256 round, uint32 score, uint64 weight, bytes32[] calldata proof)
        private
        returns (uint256 reward)
    {
        (bytes32 root, uint256 totalWeight, uint256 trainers) = _claimable(taskId, round);
        if (score == 0) revert NothingToClaim();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, score, weight))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof();
        reward = Math.mulDiv(trainers, uint256(score) * weight, totalWeight);
        Book storage book = _books[taskId][round];
        uint256 available = trainers - book.trainersPaid;
        if (reward > available) revert RoundOverpaid(available, reward);
        book.trainersPaid += uint128(reward);
        tasks.markClaimed(taskId, round, msg.sender, reward);
    }

    /// @dev The round's score root, total weight and trainers' share, if the caller may claim it now.
    function _claimable(uint256 taskId, uint256 round)
        private
        view
        returns (bytes32 root, uint256 totalWeight, uint256 trainers)
    {
        Phase phase;
        uint64 finalizedAt;
        uint256 budget;
        TrainerStatus status;
        (phase, finalizedAt, root, totalWeight, budget, status) = tasks.claimView(taskId, round, msg.sender);
        if (phase != Phase.Finalized) revert RoundNotFinalized();
        if (status == TrainerStatus.Claimed) revert AlreadyClaimed();
        if (status != TrainerStatus.Revealed) revert NotRevealed(uint8(status));
        if (budget == 0) revert NoRoundBudget();
        Terms storage terms = termsOf[taskId];
        uint64 closes = finalizedAt + terms.claimWindow;
        if (block.timestamp > closes) revert ClaimWindowClosed(closes);
        (trainers,,) = _split(budget, terms);
    }

    // ------------------------------------------------------------------ committee

    /// @inheritdoc IRewardVault
    function claimAggregatorReward(uint256 taskId, uint256 round) external nonReentrant returns (uint256 amount) {
        (Phase phase, uint64 finalizedAt,,, uint256 budget,) = tasks.claimView(taskId, round, address(0));
        if (phase != Phase.Finalized) revert RoundNotFinalized();
        IAggregatorCommittee committee = tasks.committee();
        (uint256 votes, bool matched, AggregatorStatus status) = committee.claimView(taskId, round, msg.sender);
        if (status == AggregatorStatus.Claimed) revert AlreadyClaimed();
        if (status != AggregatorStatus.Revealed) revert NotRevealed(uint8(status));
        if (!matched) revert NotInAcceptedQuorum();
        Terms storage terms = termsOf[taskId];
        uint64 closes = finalizedAt + terms.claimWindow;
        if (block.timestamp > closes) revert ClaimWindowClosed(closes);
        (, uint256 share,) = _split(budget, terms);
        amount = share / votes;
        _books[taskId][round].aggregatorsPaid += uint128(amount);
        committee.markClaimed(taskId, round, msg.sender);
        emit AggregatorRewardClaimed(taskId, round, msg.sender, amount);
        _collectFee(taskId, round);
        if (amount != 0) token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ fee, sweep, reclaim

    /// @inheritdoc IRewardVault
    function collectFee(uint256 taskId, uint256 round) external nonReentrant returns (uint256 amount) {
        (Phase phase,,,,,) = tasks.claimView(taskId, round, address(0));
        if (phase != Phase.Finalized) revert RoundNotFinalized();
        return _collectFee(taskId, round);
    }

    /// @dev Pays the round's fee to the treasury once (the round must be finalized: callers check).
    function _collectFee(uint256 taskId, uint256 round) private returns (uint256 fee) {
        Book storage book = _books[taskId][round];
        if (book.feeCollected) return 0;
        book.feeCollected = true;
        (,,,, uint256 budget,) = tasks.claimView(taskId, round, address(0));
        (,, fee) = _split(budget, termsOf[taskId]);
        if (fee != 0) {
            address treasury = staking.treasury();
            emit FeeCollected(taskId, round, treasury, fee);
            token.safeTransfer(treasury, fee);
        }
    }

    /// @inheritdoc IRewardVault
    function sweep(uint256 taskId, uint256 round) external nonReentrant returns (uint256 amount) {
        (Phase phase, uint64 finalizedAt,,, uint256 budget,) = tasks.claimView(taskId, round, address(0));
        if (phase != Phase.Finalized) revert RoundNotFinalized();
        Terms storage terms = termsOf[taskId];
        uint64 closes = finalizedAt + terms.claimWindow;
        if (block.timestamp <= closes) revert ClaimWindowOpen(closes);
        Book storage book = _books[taskId][round];
        if (book.swept) revert AlreadySwept();
        _collectFee(taskId, round);
        (,, uint256 fee) = _split(budget, terms);
        amount = budget - fee - book.trainersPaid - book.aggregatorsPaid;
        book.swept = true;
        address sponsor = tasks.getTask(taskId).sponsor;
        emit RoundSwept(taskId, round, sponsor, amount);
        if (amount != 0) token.safeTransfer(sponsor, amount);
    }

    /// @inheritdoc IRewardVault
    function reclaimUnallocated(uint256 taskId) external nonReentrant returns (uint256 amount) {
        TaskInfo memory t = tasks.getTask(taskId);
        if (msg.sender != t.sponsor) revert NotSponsor();
        if (t.status != TaskStatus.Completed) revert TaskNotCompleted(taskId);
        Terms storage terms = termsOf[taskId];
        amount = t.remainingBudget;
        if (terms.reclaimed || amount == 0) revert NothingToReclaim();
        terms.reclaimed = true;
        emit BudgetReclaimed(taskId, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IRewardVault
    function splitOf(uint256 taskId, uint256 round) external view returns (uint256, uint256, uint256) {
        (,,,, uint256 budget,) = tasks.claimView(taskId, round, address(0));
        return _split(budget, termsOf[taskId]);
    }

    /// @inheritdoc IRewardVault
    function paidOf(uint256 taskId, uint256 round) external view returns (uint256, uint256, bool, bool) {
        Book storage book = _books[taskId][round];
        return (book.trainersPaid, book.aggregatorsPaid, book.feeCollected, book.swept);
    }

    /// @dev (trainers, committee, fee) of a round's allocation; trainers get what is left after the others.
    function _split(uint256 budget, Terms storage terms) private view returns (uint256, uint256, uint256) {
        uint256 share = budget * terms.aggregatorRewardBps / BPS;
        uint256 fee = budget * terms.protocolFeeBps / BPS;
        return (budget - share - fee, share, fee);
    }
}
