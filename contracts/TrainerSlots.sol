// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TrainerStatus} from "./TaskTypes.sol";

/// @title TrainerSlots
/// @notice One storage word per trainer and round: the round's whole trainer state in a single slot, so a commit
///         writes one new slot and a reveal rewrites it.
/// @dev Layout: bits 0-7 the `TrainerStatus`; bit 8 set once the bond was released or slashed; while `Committed`,
///      bits 16-255 hold the commitment's top 240 bits (a 240-bit hash: collisions cost 2^120); after the reveal,
///      bits 16-79 hold the sample count (never 0 for a revealed update). The bond amount is the round's, fixed
///      when the round starts; the update's CID and digest live in the `UpdateRevealed` event only.
library TrainerSlots {
    uint256 private constant STATUS_BITS = 0xFF;
    uint256 private constant BOND_GONE = 1 << 8;
    uint256 private constant LOW_BITS = 0xFFFF;

    /// @dev The word of a fresh commitment.
    function committed(bytes32 commitment) internal pure returns (uint256) {
        return (uint256(commitment) & ~LOW_BITS) | uint8(TrainerStatus.Committed);
    }

    /// @dev The word of a revealed update trained on `numSamples`.
    function revealed(uint64 numSamples) internal pure returns (uint256) {
        return (uint256(numSamples) << 16) | uint8(TrainerStatus.Revealed);
    }

    /// @dev Whether a committed word holds `commitment` (its top 240 bits).
    function holds(uint256 word, bytes32 commitment) internal pure returns (bool) {
        return (word & ~LOW_BITS) == (uint256(commitment) & ~LOW_BITS);
    }

    function status(uint256 word) internal pure returns (TrainerStatus) {
        return TrainerStatus(uint8(word & STATUS_BITS));
    }

    /// @dev `word` with status `s` and its bond marked gone (claimed, released or slashed); the sample count of a
    ///      revealed word is kept, a commitment is dropped.
    function settled(uint256 word, TrainerStatus s) internal pure returns (uint256) {
        uint256 kept = status(word) == TrainerStatus.Committed ? 0 : word & ~LOW_BITS;
        return kept | BOND_GONE | uint8(s);
    }

    function bondGone(uint256 word) internal pure returns (bool) {
        return word & BOND_GONE != 0;
    }

    /// @dev The commitment's top 240 bits while `Committed`, else 0.
    function commitment(uint256 word) internal pure returns (bytes32) {
        return status(word) == TrainerStatus.Committed ? bytes32(word & ~LOW_BITS) : bytes32(0);
    }

    /// @dev The sample count of a revealed update (0 if the trainer never revealed).
    function numSamples(uint256 word) internal pure returns (uint64) {
        return status(word) == TrainerStatus.Committed ? 0 : uint64(word >> 16);
    }
}
