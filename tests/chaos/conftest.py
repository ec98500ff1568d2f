"""The chaos suite: fast scenarios run in ``make test``; slow ones (marker ``chaos``) only with CHAOS=1.

Every scenario starts its own MiniStack (``scripts/with_ministack.ministack``: a free port on 127.0.0.1,
private TMPDIR, stopped by PID) so it can restart it and never disturbs another test's queues.
``fake_keys`` comes from tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .support import MINISTACK, ministack

CHAOS_ENV = "CHAOS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: slow fault-injection / soak scenario; runs only with CHAOS=1 (make chaos)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos" not in str(item.path).replace(os.sep, "/"):
            continue
        if not MINISTACK.exists():
            item.add_marker(pytest.mark.skip(reason=f"MiniStack is not installed at {MINISTACK}"))
        elif item.get_closest_marker("chaos") and os.environ.get(CHAOS_ENV) != "1":
            item.add_marker(pytest.mark.skip(reason=f"slow chaos scenario: set {CHAOS_ENV}=1 (make chaos)"))


@pytest.fixture
def emulator() -> Iterator[str]:
    """A private MiniStack for this test only."""
    with ministack(str(MINISTACK)) as url:
        yield url
