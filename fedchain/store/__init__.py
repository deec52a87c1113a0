"""Content stores: where model and dataset files live, addressed by CID."""

from __future__ import annotations

import os
from pathlib import Path

from fedchain.store.base import (
    ContentError,
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    DigestMismatch,
    StoreUnavailable,
)
from fedchain.store.local import LocalContentStore

SUPPORTED_SPECS = "'local' (or None) for $FEDCHAIN_HOME/store, 'local:<path>' for a store at <path>"


def fedchain_home() -> Path:
    """``$FEDCHAIN_HOME``, defaulting to ``~/.fedchain``."""
    return Path(os.environ.get("FEDCHAIN_HOME") or "~/.fedchain").expanduser()


def open_store(spec: str | None = None) -> ContentStore:
    """Open the content store a spec names; raise ValueError for specs that are not supported."""
    if spec is None or spec == "local":
        return LocalContentStore(fedchain_home() / "store")
    if isinstance(spec, str) and spec.startswith("local:") and spec[len("local:") :]:
        return LocalContentStore(Path(spec[len("local:") :]).expanduser())
    raise ValueError(f"unsupported content store spec {spec!r}; supported: {SUPPORTED_SPECS}")


__all__ = [
    "ContentError",
    "ContentNotFound",
    "ContentStore",
    "ContentTooLarge",
    "DigestMismatch",
    "LocalContentStore",
    "StoreUnavailable",
    "fedchain_home",
    "open_store",
]
