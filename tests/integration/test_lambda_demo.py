"""`make demo-lambda` (scripts/demo_lambda.py) end to end on MiniStack's Lambda.

It builds its own zip, deploys through the Lambda REST API signed by our SigV4 signer, and cleans up the
function and its mappings. Uses the run's MiniStack when it emulates Lambda, else lets the demo start a
private one (stopped by PID).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo_lambda.py"


def _where() -> list[str]:
    endpoint = os.environ.get("TEST_AWS_ENDPOINT_URL", "")
    if endpoint:
        with urllib.request.urlopen(endpoint + "/_ministack/health", timeout=5) as resp:  # noqa: S310 - local
            if "lambda" in json.load(resp).get("services", {}):
                return ["--endpoint", endpoint]
    return ["--ministack", os.environ.get("MINISTACK", str(ROOT / ".venv-ministack/bin/ministack"))]


def test_demo_lambda_runs_every_kind_of_task(unique_name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), *_where(), "--prefix", unique_name],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr[-3000:]
    assert "21/21 results" in output
    assert re.search(r"add\(3, 100\)\s+103\s", output)
    assert re.search(r"checksum\(<1\.2 MB>\)\s+'[0-9a-f]{12}'", output)
    assert "FIFO group g1: 4 of 4 ran, in order" in output
    assert "FIFO group g2: 4 of 4 ran, in order" in output
    assert "it is in the dead-letter queue after 2 receives" in output
    assert output.rstrip().splitlines()[-1].startswith("Stopped everything the demo started")
