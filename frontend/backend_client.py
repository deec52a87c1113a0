"""The dashboard's reader of the backend's read API (history: tasks, rounds, contributions, economics, proposals).

Every call has a timeout and a bounded response; failures become `BackendError` with a message meant for the
screen, so a page can say what is wrong and still render.
"""

from __future__ import annotations

from typing import Any

import httpx

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
PAGE_LIMIT = 500  # the backend's largest page


class BackendError(RuntimeError):
    """The backend could not answer (down, timed out, refused the request, or sent something unreadable)."""


class NotFoundError(BackendError):
    """The backend does not know this id (not created, or not indexed yet)."""


class BackendClient:
    """Async reads from `fedchain backend serve` at `base_url`."""

    def __init__(self, base_url: str, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 2.0))

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` as JSON; raises BackendError / NotFoundError with a readable message."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}{path}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client, \
                    client.stream("GET", url, params=query) as response:
                body = await _read_bounded(response)
        except httpx.TimeoutException as exc:
            raise BackendError(f"the backend at {self.base_url} did not answer in time ({path})") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"the backend at {self.base_url} is not reachable "
                               f"(start it with `fedchain backend serve`): {type(exc).__name__}") from exc
        if response.status_code == 404:
            raise NotFoundError(_detail(body) or f"{path} is not known to the backend")
        if response.status_code >= 400:
            raise BackendError(f"the backend refused {path} ({response.status_code}): {_detail(body)}")
        try:
            return httpx.Response(200, content=body).json()
        except ValueError as exc:
            raise BackendError(f"the backend sent a response that is not JSON for {path}") from exc

    async def health(self) -> dict[str, Any]:
        """/health answers 503 with a body when the chain or database is down: return that body too."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(f"{self.base_url}/health")
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendError(f"the backend at {self.base_url} is not reachable "
                               f"(start it with `fedchain backend serve`): {type(exc).__name__}") from exc

    async def tasks(self) -> list[dict[str, Any]]:
        return (await self.get("/tasks", {"limit": PAGE_LIMIT}))["items"]

    async def task_total(self) -> int:
        return int((await self.get("/tasks", {"limit": 1}))["total"])

    async def rounds(self, task_id: int) -> list[dict[str, Any]]:
        return (await self.get(f"/tasks/{task_id}/rounds", {"limit": PAGE_LIMIT}))["items"]

    async def contributions(self, *, limit: int = 50, offset: int = 0, task_id: int | None = None,
                            round_: int | None = None, trainer: str | None = None,
                            accepted: bool | None = None) -> dict[str, Any]:
        """One page `{items, total, limit, offset}` of contributions with the backend's filters."""
        return await self.get("/contributions", {"limit": limit, "offset": offset, "task_id": task_id,
                                                 "round": round_, "trainer": trainer, "accepted": accepted})

    async def leaderboard(self, task_id: int | None = None) -> dict[str, Any]:
        return await self.get("/leaderboard", {"limit": PAGE_LIMIT, "task_id": task_id})

    async def economics(self) -> dict[str, Any]:
        return await self.get("/economics")

    async def rewards_per_round(self) -> list[dict[str, Any]]:
        return (await self.get("/economics/rounds", {"limit": PAGE_LIMIT}))["items"]

    async def proposals(self) -> list[dict[str, Any]]:
        return (await self.get("/proposals", {"limit": PAGE_LIMIT}))["items"]

    async def proposal(self, proposal_id: str) -> dict[str, Any]:
        return await self.get(f"/proposals/{proposal_id}")


def _param(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


async def _read_bounded(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise BackendError(f"the backend's answer is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(body: bytes) -> str:
    try:
        parsed = httpx.Response(200, content=body).json()
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed, dict):
        extra = parsed.get("extra")
        if isinstance(extra, list) and extra:
            return "; ".join(f"{e.get('key')}: {e.get('message')}" for e in extra if isinstance(e, dict))
        return str(parsed.get("detail", ""))
    return str(parsed)[:200]
