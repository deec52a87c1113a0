"""Fixtures every test directory shares."""

from __future__ import annotations

import pytest

from tests.support.services import require_chromium as _require_chromium


@pytest.fixture
def fedchain_home(tmp_path, monkeypatch):
    """A fresh ``$FEDCHAIN_HOME`` for one test (deployments, local store, journals)."""
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def require_chromium() -> None:
    """Chromium with chromedriver for the browser tests: skipped without them, a failure under ``CI``."""
    _require_chromium()
