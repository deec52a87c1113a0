// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStaking
/// @notice Stake locking with an unbonding delay and slashing to a treasury.
interface IStaking {
    /// @notice `account` locked `amount` more tokens; its active stake is now `newStake`.
    event Staked(address indexed account, uint256 amount, uint256 newStake);
    /// @notice `account` moved `amount` from active stake to its unbonding bucket, which unlocks at `releaseTime`.
    event UnstakeRequested(address indexed account, uint256 amount, uint64 releaseTime);
    /// @notice `account` withdrew its whole unbonding bucket (`amount`).
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `slasher` took `amount` of `account`'s stake (active first, then unbonding) to the treasury.
    event Slashed(address indexed account, uint256 amount, bytes32 indexed reason, address indexed slasher);
    /// @notice `account`'s stake cannot be withdrawn before `until` (a round it backs ends `unbondingDelay` earlier).
    event LockExtended(address indexed account, uint64 until);
    /// @notice The unbonding delay changed (affects later unstake requests only).
    event UnbondingDelayChanged(uint64 oldDelay, uint64 newDelay);
    /// @notice The treasury that receives slashed stake changed.
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);

    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice `requested` exceeds the `available` active stake.
    error InsufficientStake(uint256 available, uint256 requested);
    /// @notice The caller has no unbonding tokens.
    error NothingToWithdraw();
    /// @notice The unbonding bucket unlocks at `releaseTime`.
    error StillUnbonding(uint64 releaseTime);
    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice The caller's stake backs a round that can still slash it; withdrawable from `lockedUntil`.
    error StakeLocked(uint64 lockedUntil);

    /// @notice Lock `amount` tokens (approve them to this contract first).
    function stake(uint256 amount) external;

    /// @notice Move `amount` of active stake into the caller's unbonding bucket.
    function requestUnstake(uint256 amount) external;

    /// @notice Withdraw the caller's whole unbonding bucket once its release time has come and its lock expired.
    function withdraw() external;

    /// @notice Keep `account`'s stake (active and unbonding) withdrawable no earlier than `roundEnd +
    ///         unbondingDelay`, so that a round ending at `roundEnd` can still slash it. Only `SLASHER_ROLE`.
    /// @param account The trainer or aggregator that committed in the round.
    /// @param roundEnd When the round's last phase ends if every phase is advanced at its deadline.
    function extendLock(address account, uint64 roundEnd) external;

    /// @notice Earliest time `account` may withdraw because of locks (0: never locked).
    function lockedUntil(address account) external view returns (uint64);

    /// @notice Slash up to `amount` of `account`'s stake to the treasury. Only `SLASHER_ROLE`.
    /// @return slashed The amount actually taken.
    function slash(address account, uint256 amount, bytes32 reason) external returns (uint256 slashed);

    /// @notice Active (not unbonding) stake of `account`.
    function stakeOf(address account) external view returns (uint256);

    /// @notice Unbonding bucket of `account`.
    function unbondingOf(address account) external view returns (uint256 amount, uint64 releaseTime);

    /// @notice Sum of all active stakes.
    function totalStaked() external view returns (uint256);

    /// @notice Sum of all unbonding buckets.
    function totalUnbonding() external view returns (uint256);

    /// @notice The staked token.
    function token() external view returns (IERC20);

    /// @notice Receiver of slashed stake.
    function treasury() external view returns (address);

    /// @notice Seconds between an unstake request and the withdrawal it unlocks.
    function unbondingDelay() external view returns (uint64);
}
