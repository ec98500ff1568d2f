"""Integration tests run against the MiniStack that `make test` starts (scripts/with_ministack.py).

The endpoint comes from TEST_AWS_ENDPOINT_URL, so two runs on one machine never share an emulator.
Without it, integration tests are skipped with a reason rather than pointed at a default port.
"""

from __future__ import annotations

import os
import uuid

import pytest

ENDPOINT_ENV = "TEST_AWS_ENDPOINT_URL"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
            if not os.environ.get(ENDPOINT_ENV):
                item.add_marker(pytest.mark.skip(reason=f"{ENDPOINT_ENV} is not set (run make test)"))


@pytest.fixture
def endpoint_url() -> str:
    return os.environ[ENDPOINT_ENV]


@pytest.fixture
def unique_name() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """MiniStack does not check signatures, but the client still needs something to sign with."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
