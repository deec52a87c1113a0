"""Where the pin follower pins: Kubo RPC nodes and remote IPFS Pinning Service API endpoints (``/pins``)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import httpx

from fedchain.cid import normalize_cid
from fedchain.store.base import ContentError, ContentNotFound, StoreUnavailable
from fedchain.store.kubo import KuboStore

PINNED, QUEUED, FAILED, ABSENT = "pinned", "queued", "failed", "absent"


class PinTarget(ABC):
    """One place that keeps content: pin, ask, unpin.  Unreachable targets raise ``StoreUnavailable``."""

    name: str

    @abstractmethod
    def pin(self, cid: str, label: str) -> str:
        """Ask for ``cid`` to be pinned; return ``PINNED`` or ``QUEUED``.  ``ContentNotFound`` if it cannot be found."""

    @abstractmethod
    def status(self, cid: str) -> str:
        """``PINNED``, ``QUEUED`` (the target is still fetching), ``FAILED`` or ``ABSENT``."""

    @abstractmethod
    def unpin(self, cid: str) -> None:
        """Drop the pin (a no-op when there is none)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class KuboPinTarget(PinTarget):
    """A Kubo RPC node (or js-ipfs with the same API): ``pin/add`` fetches the whole DAG, then returns."""

    def __init__(self, api_url: str, *, fetch_timeout: float = 60.0, retry_seconds: float = 10.0) -> None:
        self.store = KuboStore(api_url, fetch_timeout=fetch_timeout, retry_seconds=retry_seconds)
        self.name = f"kubo:{self.store.api_url}"

    def pin(self, cid: str, label: str) -> str:
        self.store.pin(cid)
        return PINNED

    def status(self, cid: str) -> str:
        return PINNED if self.store.is_pinned(cid) else ABSENT

    def unpin(self, cid: str) -> None:
        self.store.unpin(cid)

    def close(self) -> None:
        self.store.close()


class PinningServiceTarget(PinTarget):
    """A remote pinning service speaking the IPFS Pinning Service API with a bearer token.

    ``POST /pins`` queues a pin; ``GET /pins?cid=...`` reports its status; ``DELETE /pins/{requestid}``
    removes it.  Transient failures are retried with backoff for ``retry_seconds``.
    """

    def __init__(self, endpoint: str, token: str, *, timeout: float = 30.0, retry_seconds: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"pinning service endpoint must be an http(s) URL, got {endpoint!r}")
        if not token:
            raise ValueError("a pinning service needs an access token")
        self.endpoint = endpoint.rstrip("/")
        self.name = f"psa:{self.endpoint}"
        self.retry_seconds = retry_seconds
        self._client = httpx.Client(base_url=self.endpoint, timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {token}"})

    def __repr__(self) -> str:  # never shows the token
        return f"PinningServiceTarget({self.endpoint!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
                if response.status_code not in (429, 502, 503, 504):
                    break
                problem: Exception = RuntimeError(f"HTTP {response.status_code}")
            except httpx.TransportError as exc:
                problem = exc
            if time.monotonic() + delay > deadline:
                raise StoreUnavailable(f"pinning service {self.endpoint} unavailable: {problem}") from problem
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        if response.status_code in (401, 403):
            raise ContentError(f"pinning service {self.endpoint} refused our token (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise ContentError(f"pinning service {self.endpoint}: HTTP {response.status_code} {response.text[:200]}")
        return response

    def _find(self, cid: str) -> dict[str, Any] | None:
        params = {"cid": normalize_cid(cid), "status": "queued,pinning,pinned,failed", "limit": 10}
        results = self._request("GET", "/pins", params=params).json().get("results", [])
        return results[0] if results else None

    def pin(self, cid: str, label: str) -> str:
        existing = self._find(cid)
        if existing and existing.get("status") != FAILED:
            return PINNED if existing.get("status") == PINNED else QUEUED
        body = self._request("POST", "/pins", json={"cid": normalize_cid(cid), "name": label}).json()
        return PINNED if body.get("status") == PINNED else QUEUED

    def status(self, cid: str) -> str:
        found = self._find(cid)
        if found is None:
            return ABSENT
        status = found.get("status")
        return {PINNED: PINNED, FAILED: FAILED}.get(status, QUEUED)

    def unpin(self, cid: str) -> None:
        found = self._find(cid)
        if found is not None:
            self._request("DELETE", f"/pins/{found['requestid']}")

    def close(self) -> None:
        self._client.close()


def open_target(spec: str, token: str | None = None, *, fetch_timeout: float = 60.0) -> PinTarget:
    """``kubo:URL`` (or a bare http URL) for a Kubo RPC node, ``psa:URL`` for a pinning service."""
    if spec.startswith("psa:"):
        return PinningServiceTarget(spec[len("psa:"):], token or "")
    url = spec[len("kubo:"):] if spec.startswith("kubo:") else spec
    return KuboPinTarget(url, fetch_timeout=fetch_timeout)


__all__ = [
    "ABSENT",
    "FAILED",
    "PINNED",
    "QUEUED",
    "ContentNotFound",
    "KuboPinTarget",
    "PinTarget",
    "PinningServiceTarget",
    "open_target",
]
