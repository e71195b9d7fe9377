"""Shared fixtures: the real test patch in ../shared/data, project paths."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
EOLEARN_PATCH = SHARED_DATA / "eolearn-testpatch"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def eolearn_patch() -> Path:
    """The real Sentinel-2 test patch; tests that need it skip when it is missing."""
    if not (EOLEARN_PATCH / "dem.tif").exists():
        pytest.skip(f"real test data not found at {EOLEARN_PATCH} (../shared/data beside the project)")
    return EOLEARN_PATCH
