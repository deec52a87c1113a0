// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title Staking
/// @notice Trainers and aggregators lock FED here. Every commitment reserves a bond from the committer's free stake
///         (`SLASHER_ROLE`, the TaskManager): reserved stake cannot be unstaked, backs one commitment only, and is
///         what slashes take. Unstaking goes through one unbonding bucket per account that unlocks
///         `unbondingDelay` seconds after the latest request.
contract Staking is IStaking, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to change the unbonding delay and the treasury.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Role allowed to reserve, release and slash bonds.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Bounds of `unbondingDelay`.
    uint64 public constant MIN_UNBONDING_DELAY = 1 hours;
    uint64 public constant MAX_UNBONDING_DELAY = 365 days;

    /// @dev Active stake and its reserved part share one slot: a commit's bond writes the slot its check read.
    struct Account {
        uint128 stake;
        uint128 reserved;
    }

    struct Unbonding {
        uint256 amount;
        uint64 releaseTime;
    }

    /// @inheritdoc IStaking
    IERC20 public immutable token;
    /// @inheritdoc IStaking
    address public treasury;
    /// @inheritdoc IStaking
    uint64 public unbondingDelay;
    /// @inheritdoc IStaking
    uint256 public totalStaked;
    /// @inheritdoc IStaking
    uint256 public totalUnbonding;

    mapping(address account => Account) private _accounts;
    mapping(address account => Unbonding) private _unbonding;

    /// @param token_ The staked token.
    /// @param treasury_ Receiver of slashed stake.
    /// @param unbondingDelay_ Seconds from an unstake request to withdrawability, in [1 hour, 365 days].
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    constructor(IERC20 token_, address treasury_, uint64 unbondingDelay_, address admin) {
        if (address(token_) == address(0) || treasury_ == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        _checkDelay(unbondingDelay_);
        token = token_;
        treasury = treasury_;
        unbondingDelay = unbondingDelay_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        emit TreasuryChanged(address(0), treasury_);
        emit UnbondingDelayChanged(0, unbondingDelay_);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {Staked}. Reverts with `ZeroAmount`, or `SafeCastOverflowedUintDowncast` past 2^128 - 1 staked.
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 newStake = uint256(a.stake) + amount;
        a.stake = SafeCast.toUint128(newStake);
        totalStaked += amount;
        emit Staked(msg.sender, amount, newStake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStaking
    /// @dev A new request adds to the existing bucket and resets its release time to now + delay.
    ///      Emits {UnstakeRequested}. Reverts with `ZeroAmount` or `InsufficientStake(free, requested)`.
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 free = uint256(a.stake) - a.reserved;
        if (amount > free) revert InsufficientStake(free, amount);
        a.stake -= uint128(amount);
        totalStaked -= amount;
        totalUnbonding += amount;
        Unbonding storage u = _unbonding[msg.sender];
        u.amount += amount;
        uint64 releaseTime = uint64(block.timestamp) + unbondingDelay;
        u.releaseTime = releaseTime;
        emit UnstakeRequested(msg.sender, amount, releaseTime);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {Withdrawn}. Reverts with `NothingToWithdraw` or `StillUnbonding(releaseTime)`.
    function withdraw() external nonReentrant {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert NothingToWithdraw();
        if (block.timestamp < u.releaseTime) revert StillUnbonding(u.releaseTime);
        delete _unbonding[msg.sender];
        totalUnbonding -= u.amount;
        emit Withdrawn(msg.sender, u.amount);
        token.safeTransfer(msg.sender, u.amount);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {BondReserved}. Reverts with `InsufficientStake(free, amount)`.
    function reserve(address account, uint256 amount) external onlyRole(SLASHER_ROLE) {
        Account storage a = _accounts[account];
        uint256 reserved = a.reserved;
        uint256 free = uint256(a.stake) - reserved;
        if (amount > free) revert InsufficientStake(free, amount);
        a.reserved = uint128(reserved + amount);
        emit BondReserved(account, amount, reserved + amount, msg.sender);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {BondReleased}. Reverts with `BondTooLarge`.
    function release(address account, uint256 amount) external onlyRole(SLASHER_ROLE) {
        Account storage a = _accounts[account];
        uint256 reserved = a.reserved;
        if (amount > reserved) revert BondTooLarge(reserved, amount);
        a.reserved = uint128(reserved - amount);
        emit BondReleased(account, amount, reserved - amount, msg.sender);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {Slashed} (nothing for a zero amount). Reverts with `BondTooLarge`.
    function slashReserved(address account, uint256 amount, bytes32 reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
    {
        if (amount == 0) return;
        Account storage a = _accounts[account];
        uint256 reserved = a.reserved;
        if (amount > reserved) revert BondTooLarge(reserved, amount);
        a.reserved = uint128(reserved - amount);
        a.stake -= uint128(amount);
        totalStaked -= amount;
        emit Slashed(account, amount, reason, msg.sender);
        token.safeTransfer(treasury, amount);
    }

    /// @inheritdoc IStaking
    function stakeOf(address account) external view returns (uint256) {
        return _accounts[account].stake;
    }

    /// @inheritdoc IStaking
    function reservedOf(address account) external view returns (uint256) {
        return _accounts[account].reserved;
    }

    /// @inheritdoc IStaking
    function freeStakeOf(address account) external view returns (uint256) {
        Account storage a = _accounts[account];
        return uint256(a.stake) - a.reserved;
    }

    /// @inheritdoc IStaking
    function unbondingOf(address account) external view returns (uint256 amount, uint64 releaseTime) {
        Unbonding storage u = _unbonding[account];
        return (u.amount, u.releaseTime);
    }

    /// @notice Set the unbonding delay for later unstake requests, in [1 hour, 365 days]. Only `PARAMETER_ROLE`.
    /// @dev Emits {UnbondingDelayChanged}. Reverts with `InvalidUnbondingDelay`.
    function setUnbondingDelay(uint64 newDelay) external onlyRole(PARAMETER_ROLE) {
        _checkDelay(newDelay);
        emit UnbondingDelayChanged(unbondingDelay, newDelay);
        unbondingDelay = newDelay;
    }

    /// @notice Set the receiver of slashed stake. Only `PARAMETER_ROLE`.
    /// @dev Emits {TreasuryChanged}. Reverts with `ZeroAddress`.
    function setTreasury(address newTreasury) external onlyRole(PARAMETER_ROLE) {
        if (newTreasury == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, newTreasury);
        treasury = newTreasury;
    }

    function _checkDelay(uint64 delay) private pure {
        if (delay < MIN_UNBONDING_DELAY || delay > MAX_UNBONDING_DELAY) {
            revert InvalidUnbondingDelay(delay, MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY);
        }
    }
}
