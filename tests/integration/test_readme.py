"""Every Python block of the README runs against MiniStack, so the documentation cannot rot."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from taskiq_sqs_http.aws import S3Client

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
BUCKETS = ("taskiq-results", "taskiq-payloads")


@pytest.fixture
async def buckets(endpoint_url: str, fake_keys: None) -> AsyncIterator[None]:
    async with S3Client(endpoint_url=endpoint_url) as s3:
        for bucket in BUCKETS:
            try:
                await s3.head_bucket(bucket)
            except Exception:
                await s3.create_bucket(bucket)
    yield


def test_readme_has_python_blocks() -> None:
    """The README shows the main features in runnable form."""
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
async def test_readme_block_runs(index: int, endpoint_url: str, buckets: None, tmp_path: Path) -> None:
    """Each block is a complete program: it runs to completion against the emulator."""
    script = tmp_path / f"block_{index}.py"
    script.write_text(BLOCKS[index])
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
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{stderr.decode()[-3000:]}"
    if '"1 + 2 ="' in BLOCKS[index]:
        assert "1 + 2 = 3" in stdout.decode()  # the quick start really ran its task


def test_readme_json_blocks_parse() -> None:
    """The IAM policies shown are valid JSON (and name only actions that exist in our request paths)."""
    import json

    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        policy = json.loads(block)
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert all(a.startswith(("sqs:", "s3:")) for a in actions)
