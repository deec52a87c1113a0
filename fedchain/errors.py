"""Errors meant for the person at the terminal or the browser."""

from __future__ import annotations


class FedchainError(RuntimeError):
    """An error with a message meant for the person at the terminal: one line that says what to do."""


class UnknownTask(FedchainError):
    """The chain has no task with this id."""


class NotDeployed(FedchainError):
    """No deployment is recorded for the network, or the recorded one is not on the connected chain."""
