"""A hostile IPFS node that trickles one byte at a time (issue 15) cannot hold a reader: every transfer has a
deadline derived from its size. The node is a tiny HTTP server speaking the Kubo ``cat`` endpoint: js-ipfs cannot
be made to send slowly, so this is the one hostile behaviour faked here."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fedchain.cid import cid_for_bytes
from fedchain.store import TransferTooSlow
from fedchain.store.kubo import KuboStore

CONTENT = b"x" * 200


class Trickle(BaseHTTPRequestHandler):
    delay = 0.2  # seconds per byte

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            for i in range(len(CONTENT)):
                self.wfile.write(CONTENT[i : i + 1])
                self.wfile.flush()
                time.sleep(self.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_node():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_trickling_node_is_cut_off_at_the_transfer_deadline(slow_node):
    store = KuboStore(slow_node, fetch_timeout=1.0, request_timeout=5.0, retry_seconds=0.1,
                      min_transfer_rate=200.0)
    assert store.transfer_seconds(200) == pytest.approx(2.0)
    started = time.monotonic()
    with pytest.raises(TransferTooSlow, match="slower than 200 bytes/s"):
        store.get(cid_for_bytes(CONTENT), max_bytes=200)  # 200 bytes at 5 B/s would take 40 s
    assert time.monotonic() - started < 6  # the deadline (2 s) plus at most one read
    store.close()


def test_the_deadline_grows_with_the_size():
    store = KuboStore("http://127.0.0.1:9", fetch_timeout=10.0)
    assert store.transfer_seconds(64 << 20) == pytest.approx(10.0 + 256)  # 64 MiB at 256 KiB/s
    with pytest.raises(ValueError):
        KuboStore("http://127.0.0.1:9", min_transfer_rate=0)
