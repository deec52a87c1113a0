// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStaking
/// @notice Stake with an unbonding delay, and bonds: stake a slasher (the TaskManager) reserves for one commitment,
///         that cannot be unstaked while reserved and that a slash takes from.
interface IStaking {
    /// @notice `account` locked `amount` more tokens; its active stake is now `newStake`.
    event Staked(address indexed account, uint256 amount, uint256 newStake);
    /// @notice `account` moved `amount` from active stake to its unbonding bucket, which unlocks at `releaseTime`.
    event UnstakeRequested(address indexed account, uint256 amount, uint64 releaseTime);
    /// @notice `account` withdrew its whole unbonding bucket (`amount`).
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `amount` of `account`'s stake is reserved as a bond; `reserved` is its total reserved stake now.
    event BondReserved(address indexed account, uint256 amount, uint256 reserved, address indexed slasher);
    /// @notice `amount` of `account`'s bonds was released; `reserved` is its total reserved stake now.
    event BondReleased(address indexed account, uint256 amount, uint256 reserved, address indexed slasher);
    /// @notice `slasher` took `amount` of `account`'s reserved stake to the treasury.
    event Slashed(address indexed account, uint256 amount, bytes32 indexed reason, address indexed slasher);
    /// @notice The unbonding delay changed (affects later unstake requests only).
    event UnbondingDelayChanged(uint64 oldDelay, uint64 newDelay);
    /// @notice The treasury that receives slashed stake changed.
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);

    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice `requested` exceeds the `available` free (active, unreserved) stake.
    error InsufficientStake(uint256 available, uint256 requested);
    /// @notice The caller has no unbonding tokens.
    error NothingToWithdraw();
    /// @notice The unbonding bucket unlocks at `releaseTime`.
    error StillUnbonding(uint64 releaseTime);
    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An unbonding delay outside [`min`, `max`].
    error InvalidUnbondingDelay(uint64 delay, uint64 min, uint64 max);
    /// @notice A release or slash of more than the `reserved` stake.
    error BondTooLarge(uint256 reserved, uint256 amount);

    /// @notice Lock `amount` tokens (approve them to this contract first).
    function stake(uint256 amount) external;

    /// @notice Move `amount` of free stake into the caller's unbonding bucket (reserved stake cannot leave).
    function requestUnstake(uint256 amount) external;

    /// @notice Withdraw the caller's whole unbonding bucket once its release time has come.
    function withdraw() external;

    /// @notice Reserve `amount` of `account`'s free stake as a bond. Only `SLASHER_ROLE`.
    function reserve(address account, uint256 amount) external;

    /// @notice Release `amount` of `account`'s reserved stake. Only `SLASHER_ROLE`.
    function release(address account, uint256 amount) external;

    /// @notice Take `amount` of `account`'s reserved stake to the treasury. Only `SLASHER_ROLE`.
    function slashReserved(address account, uint256 amount, bytes32 reason) external;

    /// @notice Active (not unbonding) stake of `account`, reserved or not.
    function stakeOf(address account) external view returns (uint256);

    /// @notice Stake of `account` reserved as bonds.
    function reservedOf(address account) external view returns (uint256);

    /// @notice Active stake of `account` that is not reserved: what a new bond or an unstake can use.
    function freeStakeOf(address account) external view returns (uint256);

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
