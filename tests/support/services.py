"""Services the suite runs for real (Postgres, Chromium, js-ipfs): skipped where the machine lacks them, but a
failure when ``CI`` is set, so a green CI run has run every test."""

from __future__ import annotations

import os
import shutil
from glob import glob
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(available: bool, service: str, how: str) -> None:
    """Skip the test when ``service`` is missing; under ``CI`` fail it instead."""
    if available:
        return
    message = f"{service} is not available here; {how}"
    if in_ci():
        pytest.fail(f"CI is set: {message}", pytrace=False)
    pytest.skip(message)


def postgres_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_postgres() -> Path:
    bindir = postgres_bin()
    require(bindir is not None, "a Postgres server binary (/usr/lib/postgresql/*/bin/initdb)",
            "`make postgres` installs it")
    assert bindir is not None
    return bindir


def chromium_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def require_chromium() -> None:
    require(chromium_available(), "chromium with chromedriver", "`make chromium` installs them")


def js_ipfs_available() -> bool:
    return (REPO / "node_modules" / "ipfs-core").is_dir() and shutil.which("node") is not None


def require_js_ipfs() -> None:
    require(js_ipfs_available(), "js-ipfs (node_modules/ipfs-core) with node", "`make node` installs it")
