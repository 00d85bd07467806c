"""Fixtures of the RefCut tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from refcut_helpers import write_parts


@pytest.fixture(scope="session")
def parts_root(tmp_path_factory) -> Path:
    """A synthetic part dataset of 8 images in the CarParts layout (see ``write_parts``)."""
    return write_parts(tmp_path_factory.mktemp("parts"))
