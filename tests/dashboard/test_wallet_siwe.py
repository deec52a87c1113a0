"""Sign-in with Ethereum (EIP-4361): message text, and every check the server makes on a signed message."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from frontend.wallet.siwe import SiweError, SiweMessage, SiweVerifier

DOMAIN = "dash.example:8080"
URI = f"http://{DOMAIN}/"
CHAIN = 31337


class Clock:
    def __init__(self, now: int = 1_800_000_000):
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


@pytest.fixture
def signer():
    return Account.create()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(clock):
    return SiweVerifier(CHAIN, ttl_seconds=300, clock=clock)


def sign(account, text: str) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def test_valid_sign_in_returns_the_signer(verifier, signer):
    message = verifier.issue(DOMAIN, URI, signer.address.lower())
    text = message.text()
    assert text.startswith(f"{DOMAIN} wants you to sign in with your Ethereum account:\n{signer.address}\n\n")
    for line in (f"URI: {URI}", "Version: 1", f"Chain ID: {CHAIN}", f"Nonce: {message.nonce}",
                 "Issued At: 2027-01-15T08:00:00Z", "Expiration Time: 2027-01-15T08:05:00Z"):
        assert f"\n{line}" in text
    assert SiweMessage.parse(text) == message
    assert verifier.verify(text, sign(signer, text), domain=DOMAIN, address=signer.address) == signer.address


def test_nonces_are_fresh(verifier, signer):
    nonces = {verifier.issue(DOMAIN, URI, signer.address).nonce for _ in range(20)}
    assert len(nonces) == 20 and all(len(n) == 32 for n in nonces)


def test_replayed_nonce_is_refused(verifier, signer):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    signature = sign(signer, text)
    verifier.verify(text, signature, domain=DOMAIN)
    with pytest.raises(SiweError, match="already used nonce"):
        verifier.verify(text, signature, domain=DOMAIN)


def test_unknown_nonce_is_refused(verifier, signer):
    other = SiweVerifier(CHAIN)
    text = other.issue(DOMAIN, URI, signer.address).text()
    with pytest.raises(SiweError, match="unknown or already used nonce"):
        verifier.verify(text, sign(signer, text), domain=DOMAIN)


def test_wrong_domain_is_refused(verifier, signer):
    text = verifier.issue("evil.example", "http://evil.example/", signer.address).text()
    with pytest.raises(SiweError, match="not for this dashboard"):
        verifier.verify(text, sign(signer, text), domain=DOMAIN)


def test_expired_message_is_refused(verifier, signer, clock):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    signature = sign(signer, text)
    clock.now += 301
    with pytest.raises(SiweError, match="expired"):
        verifier.verify(text, signature, domain=DOMAIN)


def test_expired_nonces_are_dropped(verifier, signer, clock):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    clock.now += 301
    verifier.issue(DOMAIN, URI, signer.address)  # issuing prunes the expired challenge
    with pytest.raises(SiweError, match="unknown or already used nonce"):
        verifier.verify(text, sign(signer, text), domain=DOMAIN)


def test_wrong_chain_is_refused(verifier, signer):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    forged = text.replace(f"Chain ID: {CHAIN}", "Chain ID: 1")
    with pytest.raises(SiweError, match="chain 1"):
        verifier.verify(forged, sign(signer, forged), domain=DOMAIN)


@pytest.mark.parametrize("field,old,new", [
    ("uri", URI, "http://evil.example/"),
    ("expiration", "Expiration Time: 2027-01-15T08:05:00Z", "Expiration Time: 2099-01-01T00:00:00Z"),
])
def test_message_changed_by_the_signer_is_refused(verifier, signer, field, old, new):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    edited = text.replace(old, new)
    assert edited != text, field
    with pytest.raises(SiweError, match="differs from the one the dashboard issued"):
        verifier.verify(edited, sign(signer, edited), domain=DOMAIN)


def test_tampered_message_does_not_match_its_signature(verifier, signer):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    signature = sign(signer, text)
    tampered = text.replace("This signature costs nothing", "This signature costs everything")
    with pytest.raises(SiweError):
        verifier.verify(tampered, signature, domain=DOMAIN)
    text2 = verifier.issue(DOMAIN, URI, signer.address).text()
    with pytest.raises(SiweError, match="not made by the message's address"):
        verifier.verify(text2, sign(Account.create(), text2), domain=DOMAIN)


def test_signature_of_another_account_than_the_connected_one(verifier, signer):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    with pytest.raises(SiweError, match="another account"):
        verifier.verify(text, sign(signer, text), domain=DOMAIN, address=Account.create().address)


@pytest.mark.parametrize("text", ["", "hello", "x wants you to sign in with your Ethereum account:\n0x12\n\n"])
def test_malformed_message_is_refused(verifier, text):
    with pytest.raises(SiweError, match="EIP-4361"):
        verifier.verify(text, "0x" + "00" * 65, domain=DOMAIN)


def test_malformed_signature_is_refused(verifier, signer):
    text = verifier.issue(DOMAIN, URI, signer.address).text()
    with pytest.raises(SiweError, match="malformed"):
        verifier.verify(text, "0x1234", domain=DOMAIN)
