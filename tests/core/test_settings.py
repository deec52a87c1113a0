"""Settings are read in one place: an empty variable means unset, bad numbers are refused with their name."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedchain.config import settings
from fedchain.store import LocalContentStore, open_store


def test_empty_home_is_the_default_and_every_reader_agrees(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FEDCHAIN_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FEDCHAIN_IPFS_API", raising=False)
    monkeypatch.delenv("FEDCHAIN_STORE", raising=False)
    assert settings().home == Path(tmp_path) / ".fedchain"
    store = open_store(None)
    assert isinstance(store, LocalContentStore) and store.root == settings().local_store_dir
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "elsewhere"))
    assert settings().deployments_file == tmp_path / "elsewhere" / "deployments.json"


def test_numbers_are_checked(monkeypatch) -> None:
    monkeypatch.setenv("FEDCHAIN_IPFS_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FEDCHAIN_IPFS_TIMEOUT"):
        settings()
    monkeypatch.setenv("FEDCHAIN_IPFS_TIMEOUT", "")
    assert settings().ipfs_timeout == 60.0
