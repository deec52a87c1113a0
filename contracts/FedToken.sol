// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title FedToken
/// @notice The fedchain ERC20 token ("FED"): permit (ERC-2612) and vote delegation (ERC-5805) on a
///         timestamp clock. Only `MINTER_ROLE` creates tokens; nothing burns them.
contract FedToken is ERC20, ERC20Permit, ERC20Votes, AccessControl {
    /// @notice Role allowed to call {mint}.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice A constructor argument was the zero address.
    error ZeroAddress();

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (grants and revokes roles).
    /// @param minter Receives `MINTER_ROLE`.
    constructor(address admin, address minter) ERC20("Fedchain Token", "FED") ERC20Permit("Fedchain Token") {
        if (admin == address(0) || minter == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Create `amount` new tokens for `to`. Emits `Transfer(0, to, amount)`.
    /// @param to Receiver of the new tokens.
    /// @param amount Amount in wei-units (18 decimals).
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Current timepoint of the vote checkpoints: the block timestamp (ERC-6372).
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice Machine-readable description of the clock (ERC-6372).
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
