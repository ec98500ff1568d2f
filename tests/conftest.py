"""What every suite shares: no real AWS environment, no real ~/.aws, ever; fake keys on request.

Suite-specific fixtures live in their own conftest: the integration one (clients, queues and brokers on
the run's MiniStack) and the chaos one (``emulator``: a private MiniStack per test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# Variables a developer's shell may hold that would change what the client layer resolves.
_AWS_PREFIXES = ("AWS_", "BOTO_", "ECS_CONTAINER_METADATA")


@pytest.fixture(autouse=True)
def _isolate_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Strip AWS_* variables and point HOME at an empty folder, so ~/.aws is never read."""
    import os

    for name in list(os.environ):
        if name.startswith(_AWS_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home: Path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    # Instance metadata must never be probed from a test machine.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield


@pytest.fixture
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static keys in the environment: MiniStack does not check signatures, but the client still signs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
