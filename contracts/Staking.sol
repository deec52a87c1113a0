// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title Staking
/// @notice Trainers and aggregators lock FED here. Unstaking goes through one unbonding bucket per account
///         that unlocks `unbondingDelay` seconds after the latest request. `SLASHER_ROLE` (the TaskManager)
///         slashes active stake first, then the unbonding bucket, to the treasury. A slasher also holds an
///         account's stake back while it may still slash it: `extendLock` (called by the TaskManager on every
///         commit) blocks `withdraw` until `unbondingDelay` seconds after the end of the round the stake backs.
contract Staking is IStaking, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to change the unbonding delay and the treasury.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Role allowed to slash and to extend stake locks.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @dev Active stake and withdrawal lock share one slot: a commit's lock writes a slot the stake check
    ///      already read, never a fresh one.
    struct Account {
        uint192 stake;
        uint64 lockedUntil;
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
    /// @param unbondingDelay_ Seconds from an unstake request to withdrawability.
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    constructor(IERC20 token_, address treasury_, uint64 unbondingDelay_, address admin) {
        if (address(token_) == address(0) || treasury_ == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        treasury = treasury_;
        unbondingDelay = unbondingDelay_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        emit TreasuryChanged(address(0), treasury_);
        emit UnbondingDelayChanged(0, unbondingDelay_);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {Staked}. Reverts with `ZeroAmount`, or `SafeCastOverflowedUintDowncast` past 2^192 - 1 staked.
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 newStake = _accounts[msg.sender].stake + amount;
        _accounts[msg.sender].stake = SafeCast.toUint192(newStake);
        totalStaked += amount;
        emit Staked(msg.sender, amount, newStake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStaking
    /// @dev A new request adds to the existing bucket and resets its release time to now + delay.
    ///      Emits {UnstakeRequested}. Reverts with `ZeroAmount` or `InsufficientStake(available, requested)`.
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 active = _accounts[msg.sender].stake;
        if (amount > active) revert InsufficientStake(active, amount);
        _accounts[msg.sender].stake = uint192(active - amount);
        totalStaked -= amount;
        totalUnbonding += amount;
        Unbonding storage u = _unbonding[msg.sender];
        u.amount += amount;
        uint64 releaseTime = uint64(block.timestamp) + unbondingDelay;
        u.releaseTime = releaseTime;
        emit UnstakeRequested(msg.sender, amount, releaseTime);
    }

    /// @inheritdoc IStaking
    /// @dev Emits {Withdrawn}. Reverts with `NothingToWithdraw`, `StillUnbonding(releaseTime)` or
    ///      `StakeLocked(lockedUntil)`.
    function withdraw() external nonReentrant {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert NothingToWithdraw();
        if (block.timestamp < u.releaseTime) revert StillUnbonding(u.releaseTime);
        uint64 lockedUntil = _accounts[msg.sender].lockedUntil;
        if (block.timestamp < lockedUntil) revert StakeLocked(lockedUntil);
        delete _unbonding[msg.sender];
        totalUnbonding -= u.amount;
        emit Withdrawn(msg.sender, u.amount);
        token.safeTransfer(msg.sender, u.amount);
    }

    /// @inheritdoc IStaking
    /// @dev Takes from active stake first, then from the unbonding bucket, capped at what is there.
    ///      Emits {Slashed} when something was taken; slashing nothing is a no-op returning 0.
    function slash(address account, uint256 amount, bytes32 reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        Account storage a = _accounts[account];
        uint256 active = a.stake;
        uint256 fromActive = amount < active ? amount : active;
        uint256 rest = amount - fromActive;
        Unbonding storage u = _unbonding[account];
        uint256 fromUnbonding = rest < u.amount ? rest : u.amount;
        slashed = fromActive + fromUnbonding;
        if (slashed == 0) return 0;

        if (fromActive != 0) {
            a.stake = uint192(active - fromActive);
            totalStaked -= fromActive;
        }
        if (fromUnbonding != 0) {
            uint256 left = u.amount - fromUnbonding;
            if (left == 0) delete _unbonding[account];
            else u.amount = left;
            totalUnbonding -= fromUnbonding;
        }
        emit Slashed(account, slashed, reason, msg.sender);
        token.safeTransfer(treasury, slashed);
    }

    /// @inheritdoc IStaking
    /// @dev The lock only grows: a later `roundEnd` than the current lock's moves it, an earlier one is a no-op.
    ///      Emits {LockExtended} when the lock moved.
    function extendLock(address account, uint64 roundEnd) external onlyRole(SLASHER_ROLE) {
        uint64 until = roundEnd + unbondingDelay;
        Account storage a = _accounts[account];
        if (until <= a.lockedUntil) return;
        a.lockedUntil = until;
        emit LockExtended(account, until);
    }

    /// @inheritdoc IStaking
    function lockedUntil(address account) external view returns (uint64) {
        return _accounts[account].lockedUntil;
    }

    /// @inheritdoc IStaking
    function stakeOf(address account) external view returns (uint256) {
        return _accounts[account].stake;
    }

    /// @inheritdoc IStaking
    function unbondingOf(address account) external view returns (uint256 amount, uint64 releaseTime) {
        Unbonding storage u = _unbonding[account];
        return (u.amount, u.releaseTime);
    }

    /// @notice Set the unbonding delay for later unstake requests and later locks. Only `PARAMETER_ROLE`.
    /// @dev Emits {UnbondingDelayChanged}.
    function setUnbondingDelay(uint64 newDelay) external onlyRole(PARAMETER_ROLE) {
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
}
