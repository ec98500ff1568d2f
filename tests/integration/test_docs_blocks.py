"""Every Python block of the documentation site (docs/) runs against MiniStack.

Blocks that are also in the README already run in tests/integration/test_readme.py (against an empty
emulator); the others run here, each as a program of its own with the environment the quick start tells a
user to export. As README sections move into the site, their blocks are picked up here.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
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


def test_docs_have_python_blocks() -> None:
    """The guides show code; a page losing all of it would be a regression worth seeing."""
    total = sum(len(_BLOCK.findall(page.read_text())) for page in (ROOT / "docs").rglob("*.md"))
    assert total >= 7


@pytest.mark.parametrize(("where", "block"), DOC_BLOCKS, ids=[where for where, _ in DOC_BLOCKS])
async def test_docs_block_runs(where: str, block: str, endpoint_url: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
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
