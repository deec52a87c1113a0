// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {Phase, TrainerStatus, RoundInfo, TrainerEntry} from "./TaskTypes.sol";

/// @title RejectionSlasher
/// @notice Slashes trainers whose revealed update the aggregator committee rejected. Protocol convention
///         (docs/PROTOCOL.md): in a finalized round's score tree a rejected trainer's leaf is `(trainer, 0, 0)` and
///         every accepted trainer scores at least 1, so a Merkle proof of that leaf against the round's
///         `scoresRoot` proves the rejection. Anyone may submit the proof until the round is settled; the trainer
///         loses `slashBps / 10000` of the bond it reserved for the round (the TaskManager releases the rest).
/// @dev Holds the TaskManager's `REJECTION_ROLE`. `PARAMETER_ROLE` (the DAO) sets the fraction.
contract RejectionSlasher is AccessControl {
    /// @notice Role allowed to change the slash fraction.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice `Staking.Slashed.reason` label of these slashes.
    bytes32 public constant REASON = "RejectedTrainer";
    /// @notice Upper bound of `slashBps`.
    uint16 public constant MAX_BPS = 10_000;

    /// @notice The TaskManager whose finalized rounds are read.
    ITaskManager public immutable tasks;
    /// @notice Fraction of the stake slashed per rejected update, in basis points.
    uint16 public slashBps;

    mapping(bytes32 key => bool) private _slashed;

    /// @notice A rejected trainer was slashed.
    event RejectedTrainerSlashed(
        uint256 indexed taskId, uint256 indexed round, address indexed trainer, uint256 amount
    );
    /// @notice The slash fraction changed.
    event RejectionSlashFractionChanged(uint16 oldBps, uint16 newBps);

    /// @notice A zero address was passed to the constructor.
    error ZeroAddress();
    /// @notice `bps` exceeds 10000.
    error InvalidSlashFraction(uint16 bps);
    /// @notice The round is not Finalized (its actual phase is given).
    error RoundNotFinalized(Phase phase);
    /// @notice The trainer did not reveal an update in the round (its status is given).
    error NotRevealed(TrainerStatus status);
    /// @notice The proof does not show a score of 0 for the trainer in the round's `scoresRoot`.
    error NotRejected();
    /// @notice The trainer was already slashed for this round's rejection.
    error AlreadySlashed();

    /// @param tasks_ The TaskManager (this contract needs its `REJECTION_ROLE`).
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE`.
    /// @param slashBps_ Initial fraction of the bond, in basis points.
    constructor(ITaskManager tasks_, address admin, uint16 slashBps_) {
        if (address(tasks_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (slashBps_ > MAX_BPS) revert InvalidSlashFraction(slashBps_);
        tasks = tasks_;
        slashBps = slashBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        emit RejectionSlashFractionChanged(0, slashBps_);
    }

    /// @notice Set the fraction of stake slashed per rejected update. Emits {RejectionSlashFractionChanged}.
    /// @param bps Basis points, at most 10000.
    function setSlashBps(uint16 bps) external onlyRole(PARAMETER_ROLE) {
        if (bps > MAX_BPS) revert InvalidSlashFraction(bps);
        emit RejectionSlashFractionChanged(slashBps, bps);
        slashBps = bps;
    }

    /// @notice Slash `trainer` for the update it revealed in a finalized round that the committee rejected.
    /// @dev Reverts with `RoundNotFinalized`, `NotRevealed`, `NotRejected` or `AlreadySlashed`, and the
    ///      TaskManager's `SettlementClosed` once the round is settled. Emits {RejectedTrainerSlashed}; the
    ///      TaskManager emits `TrainerSlashed` and Staking `Slashed(trainer, amount, "RejectedTrainer", tasks)`.
    /// @param taskId The task.
    /// @param round The finalized round.
    /// @param trainer The trainer whose leaf is `(trainer, 0, 0)`.
    /// @param proof Merkle proof of that leaf against the round's `scoresRoot`.
    /// @return amount The amount slashed of the trainer's bond for the round.
    function slashRejectedTrainer(uint256 taskId, uint256 round, address trainer, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        RoundInfo memory info = tasks.getRound(taskId, round);
        if (info.phase != Phase.Finalized) revert RoundNotFinalized(info.phase);
        TrainerEntry memory entry = tasks.getTrainerEntry(taskId, round, trainer);
        bytes32 key = keccak256(abi.encode(taskId, round, trainer));
        if (_slashed[key]) revert AlreadySlashed();
        if (entry.status != TrainerStatus.Revealed) revert NotRevealed(entry.status);
        if (!MerkleProof.verifyCalldata(proof, info.scoresRoot, rejectedLeaf(trainer))) revert NotRejected();
        _slashed[key] = true;
        amount = tasks.forfeitBond(taskId, round, trainer, slashBps, REASON);
        emit RejectedTrainerSlashed(taskId, round, trainer, amount);
    }

    /// @notice Whether `trainer` was already slashed for its rejected update in (`taskId`, `round`).
    function isSlashed(uint256 taskId, uint256 round, address trainer) external view returns (bool) {
        return _slashed[keccak256(abi.encode(taskId, round, trainer))];
    }

    /// @notice The score-tree leaf of a rejected trainer: `keccak256(bytes.concat(keccak256(abi.encode(trainer,
    ///         uint32(0), uint64(0)))))`, as `TaskManager.computeScoreLeaf(trainer, 0, 0)`.
    function rejectedLeaf(address trainer) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(trainer, uint32(0), uint64(0)))));
    }
}
