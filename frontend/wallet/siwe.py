"""Sign-in with Ethereum (EIP-4361): server-issued nonces, message text, and verification of the signed message.

The server issues a challenge (nonce, domain, URI, chain id, issued-at, expiration) for one address; the browser
wallet signs the exact message text with `personal_sign`; `SiweVerifier.verify` parses the text back, checks every
field against the challenge it issued, recovers the signer with eth_account, and burns the nonce (a replayed
message is refused).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address

STATEMENT = "Sign in to the fedchain dashboard. This signature costs nothing and sends no transaction."
DEFAULT_TTL_SECONDS = 300
MAX_PENDING = 10_000


class SiweError(ValueError):
    """A sign-in message or signature that is not accepted, with the reason in words."""


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message that fedchain uses."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: int  # unix seconds
    expiration: int  # unix seconds
    statement: str = STATEMENT
    version: str = "1"

    def text(self) -> str:
        """The exact text the wallet shows and signs (EIP-4361 layout)."""
        return (f"{self.domain} wants you to sign in with your Ethereum account:\n{self.address}\n\n"
                f"{self.statement}\n\nURI: {self.uri}\nVersion: {self.version}\nChain ID: {self.chain_id}\n"
                f"Nonce: {self.nonce}\nIssued At: {_iso(self.issued_at)}\nExpiration Time: {_iso(self.expiration)}")

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise SiweError("the signed text is not a sign-in message in EIP-4361 format")
        g = match.groupdict()
        if not is_address(g["address"]) or g["address"] != to_checksum_address(g["address"]):
            raise SiweError("the message's address is not a checksummed Ethereum address")
        return cls(domain=g["domain"], address=g["address"], uri=g["uri"], chain_id=int(g["chain_id"]),
                   nonce=g["nonce"], issued_at=_parse_iso(g["issued_at"]), expiration=_parse_iso(g["expiration"]),
                   statement=g["statement"], version=g["version"])


_PATTERN = re.compile(
    r"(?P<domain>[^\s/]+) wants you to sign in with your Ethereum account:\n(?P<address>0x[0-9a-fA-F]{40})\n\n"
    r"(?P<statement>[^\n]*)\n\nURI: (?P<uri>\S+)\nVersion: (?P<version>1)\nChain ID: (?P<chain_id>[0-9]{1,18})\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,64})\nIssued At: (?P<issued_at>\S+)\nExpiration Time: (?P<expiration>\S+)")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> int:
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise SiweError(f"bad timestamp {text!r} in the sign-in message") from None


class SiweVerifier:
    """Issues challenges and verifies signed sign-in messages for one dashboard (domain, chain).

    Thread-safe; holds only pending nonces (bounded, expired ones dropped) — never who is signed in, which is
    per browser tab.
    """

    def __init__(self, chain_id: int, ttl_seconds: int = DEFAULT_TTL_SECONDS, clock=time.time):  # noqa: ANN001
        self.chain_id = chain_id
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._pending: dict[str, SiweMessage] = {}
        self._lock = threading.Lock()

    def issue(self, domain: str, uri: str, address: str) -> SiweMessage:
        """A fresh challenge for `address` signing in at `domain` (the host the browser shows) and `uri`."""
        if not is_address(address):
            raise SiweError(f"{address!r} is not an Ethereum address")
        now = int(self.clock())
        message = SiweMessage(domain=domain, address=to_checksum_address(address), uri=uri, chain_id=self.chain_id,
                              nonce=secrets.token_hex(16), issued_at=now, expiration=now + self.ttl_seconds)
        with self._lock:
            self._drop_expired(now)
            if len(self._pending) >= MAX_PENDING:
                raise SiweError("too many pending sign-in requests; try again in a few minutes")
            self._pending[message.nonce] = message
        return message

    def verify(self, text: str, signature: str, *, domain: str, address: str | None = None) -> str:
        """The checksummed signer of a signed challenge, or SiweError saying which check failed.

        The nonce is burnt by any verification attempt, so a message is accepted at most once.
        """
        message = SiweMessage.parse(text)
        with self._lock:
            issued = self._pending.pop(message.nonce, None)
        if issued is None:
            raise SiweError("unknown or already used nonce: sign-in messages are accepted once")
        if message.domain != domain or issued.domain != domain:
            raise SiweError(f"the message is for {message.domain}, not for this dashboard ({domain})")
        if message.chain_id != self.chain_id:
            raise SiweError(f"the message is for chain {message.chain_id}, the dashboard's chain is {self.chain_id}")
        if message != issued:
            raise SiweError("the signed message differs from the one the dashboard issued")
        now = int(self.clock())
        if now >= message.expiration:
            raise SiweError("the sign-in message has expired; sign in again")
        if message.issued_at > now + 60:
            raise SiweError("the sign-in message is issued in the future")
        try:
            signer = Account.recover_message(encode_defunct(text=text), signature=signature)
        except Exception as exc:  # noqa: BLE001 - malformed signatures are the caller's input
            raise SiweError(f"the signature is malformed ({type(exc).__name__})") from None
        if signer != message.address:
            raise SiweError("the signature was not made by the message's address")
        if address is not None and to_checksum_address(address) != signer:
            raise SiweError("the signature is from another account than the connected one")
        return signer

    def _drop_expired(self, now: int) -> None:
        for nonce in [n for n, m in self._pending.items() if m.expiration <= now]:
            del self._pending[nonce]
