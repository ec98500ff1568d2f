"""Every Python block of the documentation site (docs/) runs against MiniStack.

Blocks that are also in the README already run in tests/integration/test_readme.py; the others run here,
the same way: each as a program of its own, with the environment the quick start tells a user to export,
against a MiniStack started for this module, where no queue or bucket exists yet (a block must create what
it needs, as on a new account). As README sections move into the site, their blocks are picked up here.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)
README_BLOCKS = set(_BLOCK.findall((ROOT / "README.md").read_text()))
DOC_BLOCKS = [
    (f"{page.relative_to(ROOT).as_posix()}#{n}", block)
    for page in sorted((ROOT / "docs").rglob("*.md"))
    for n, block in enumerate(_BLOCK.findall(page.read_text()))
    if block not in README_BLOCKS
]
MINISTACK = Path(os.environ.get("README_MINISTACK", str(ROOT / ".venv-ministack" / "bin" / "ministack")))

# scripts/ is not a package; its MiniStack launcher stops the emulator by PID, also on failure.
sys.path.insert(0, str(ROOT / "scripts"))
ministack: Callable[[str], AbstractContextManager[str]] = importlib.import_module("with_ministack").ministack


@pytest.fixture(scope="module")
def empty_endpoint() -> Iterator[str]:
    if not MINISTACK.exists():
        pytest.fail(f"MiniStack not found at {MINISTACK}: run `make ministack` or set README_MINISTACK")
    with ministack(str(MINISTACK)) as url:
        yield url


def test_docs_have_python_blocks() -> None:
    """The guides show code; a page losing all of it would be a regression worth seeing."""
    total = sum(len(_BLOCK.findall(page.read_text())) for page in (ROOT / "docs").rglob("*.md"))
    assert total >= 7


@pytest.mark.parametrize(("where", "block"), DOC_BLOCKS, ids=[where for where, _ in DOC_BLOCKS])
async def test_docs_block_runs(where: str, block: str, empty_endpoint: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": empty_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"{where} failed:\n{block}\n{stderr.decode()[-3000:]}"
