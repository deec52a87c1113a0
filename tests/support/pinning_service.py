"""A small but real IPFS Pinning Service API server (``/pins``, bearer token) backed by a js-ipfs node.

No third-party pinning service can be reached from the tests, so this one stands in: it speaks the
standard API (POST /pins, GET /pins?cid=&status=, GET /pins/{requestid}, DELETE /pins/{requestid}) and
pins on its node in a background thread, moving each request from ``queued`` to ``pinned`` or ``failed``.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from fedchain.cid import normalize_cid
from fedchain.store.base import ContentError
from fedchain.store.kubo import KuboStore


class PinningService:
    def __init__(self, api_url: str, token: str, *, fetch_timeout: float = 10.0) -> None:
        self.token = token
        self.store = KuboStore(api_url, fetch_timeout=fetch_timeout, retry_seconds=5)
        self.pins: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PinningService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.store.close()

    def _pin_in_background(self, requestid: str, cid: str) -> None:
        try:
            self.store.pin(cid)
            status = "pinned"
        except (ContentError, ValueError):
            status = "failed"
        with self.lock:
            if requestid in self.pins:
                self.pins[requestid]["status"] = status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {service.token}":
                    return True
                self._send(401, {"error": {"reason": "UNAUTHORIZED", "details": "bad access token"}})
                return False

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self._authorized():
                    return
                url = urlparse(self.path)
                query = parse_qs(url.query)
                with service.lock:
                    if url.path.startswith("/pins/"):
                        found = service.pins.get(url.path[len("/pins/"):])
                        return self._send(200, found) if found else self._send(404, {"error": {"reason": "NOT_FOUND"}})
                    wanted_cids = {normalize_cid(c) for c in ",".join(query.get("cid", [])).split(",") if c}
                    statuses = set(",".join(query.get("status", ["pinned"])).split(","))
                    results = [p for p in service.pins.values() if p["status"] in statuses
                               and (not wanted_cids or p["pin"]["cid"] in wanted_cids)]
                self._send(200, {"count": len(results), "results": results})

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                try:
                    cid = normalize_cid(body.get("cid", ""))
                except ValueError:
                    return self._send(400, {"error": {"reason": "BAD_REQUEST", "details": "not a CID"}})
                requestid = uuid.uuid4().hex
                status = {"requestid": requestid, "status": "queued",
                          "created": datetime.now(UTC).isoformat(),
                          "pin": {"cid": cid, "name": body.get("name", "")}, "delegates": [], "info": {}}
                with service.lock:
                    service.pins[requestid] = status
                threading.Thread(target=service._pin_in_background, args=(requestid, cid), daemon=True).start()
                self._send(202, status)

            def do_DELETE(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                requestid = urlparse(self.path).path[len("/pins/"):]
                with service.lock:
                    found = service.pins.pop(requestid, None)
                if found is None:
                    return self._send(404, {"error": {"reason": "NOT_FOUND"}})
                if not any(p["pin"]["cid"] == found["pin"]["cid"] for p in service.pins.values()):
                    service.store.unpin(found["pin"]["cid"])
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
