"""Shared fixtures: the real-data folder beside the project root."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (GrabCut, CarParts, WeizmannHorse). CI always has it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (expected beside the project root)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def grabcut_dir(shared_data: Path) -> Path:
    return shared_data / "GrabCut"
