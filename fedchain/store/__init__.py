"""Content stores: where model and dataset files live, addressed by CID."""

from __future__ import annotations

from pathlib import Path

from fedchain.config import settings
from fedchain.store.base import (
    ContentError,
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    DigestMismatch,
    StoreUnavailable,
    TransferTooSlow,
)
from fedchain.store.local import LocalContentStore

SUPPORTED_SPECS = (
    "'local' (or None) for $FEDCHAIN_HOME/store, 'local:<path>' for a store at <path>, "
    "'kubo:<url>' for an IPFS node's RPC API (e.g. kubo:http://127.0.0.1:5001)"
)


def open_kubo_store(api_url: str) -> ContentStore:
    """A ``KuboStore`` with timeouts from ``FEDCHAIN_IPFS_TIMEOUT`` / ``FEDCHAIN_IPFS_RETRY_SECONDS``."""
    from fedchain.store.kubo import KuboStore

    config = settings()
    return KuboStore(api_url, fetch_timeout=config.ipfs_timeout, retry_seconds=config.ipfs_retry_seconds)


def open_store(spec: str | None = None) -> ContentStore:
    """Open the content store a spec names; raise ValueError for specs that are not supported.

    Precedence: an explicit spec (the CLIs' ``--store``, which defaults to ``$FEDCHAIN_STORE``) wins;
    with no spec, ``$FEDCHAIN_IPFS_API`` (a Kubo RPC URL) selects that node; otherwise the embedded
    local store under ``$FEDCHAIN_HOME/store``.
    """
    config = settings()
    if spec is None and config.ipfs_api:
        return open_kubo_store(config.ipfs_api)
    if isinstance(spec, str) and spec.startswith("kubo:") and spec[len("kubo:") :]:
        return open_kubo_store(spec[len("kubo:") :])
    if spec is None or spec == "local":
        return LocalContentStore(config.local_store_dir)
    if isinstance(spec, str) and spec.startswith("local:") and spec[len("local:") :]:
        return LocalContentStore(Path(spec[len("local:") :]).expanduser())
    raise ValueError(f"unsupported content store spec {spec!r}; supported: {SUPPORTED_SPECS}")


__all__ = [
    "ContentError",
    "ContentNotFound",
    "ContentStore",
    "ContentTooLarge",
    "DigestMismatch",
    "TransferTooSlow",
    "LocalContentStore",
    "StoreUnavailable",
    "open_kubo_store",
    "open_store",
]
