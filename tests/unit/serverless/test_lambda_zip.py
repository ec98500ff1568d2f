"""scripts/lambda_zip.py without the network: what goes into a zip, and how the zip is written.

The pip step (binary wheels for the Lambda platform) is exercised by the MiniStack Lambda tests, which
deploy a zip this script built.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
lambda_zip = importlib.import_module("lambda_zip")


def test_runtime_requirements_are_the_declared_ones_without_dev_extras() -> None:
    requirements: list[str] = lambda_zip.runtime_requirements()
    names = {re.split(r"[<>=\[;! ]", r, maxsplit=1)[0] for r in requirements}
    assert {"taskiq", "httpx", "pydantic", "orjson"} <= names
    assert not names & {"botocore", "boto3", "aiobotocore", "pytest", "respx", "ruff", "pyright"}


def test_zip_is_deterministic_and_readable(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "b").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "b" / "c.py").write_text("y = 2\n")
    (root / "b" / "tool").write_text("#!/bin/sh\n")
    (root / "b" / "tool").chmod(0o755)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert lambda_zip.write_zip(root, first) == (3, 22)
    lambda_zip.write_zip(root, second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["a.py", "b/c.py", "b/tool"]
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    # Lambda runs the code as another user: everything readable by others.
    assert modes == {"a.py": 0o644, "b/c.py": 0o644, "b/tool": 0o755}


def test_app_module_or_package_is_copied(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    (apps / "pkgapp").mkdir(parents=True)
    (apps / "pkgapp" / "__init__.py").write_text("handler = None\n")
    (apps / "modapp.py").write_text("handler = None\n")
    target = tmp_path / "target"
    target.mkdir()
    lambda_zip.add_app("pkgapp.handlers", apps, target)
    lambda_zip.add_app("modapp", apps, target)
    assert (target / "pkgapp" / "__init__.py").exists()
    assert (target / "modapp.py").exists()
    with pytest.raises(SystemExit, match="neither"):
        lambda_zip.add_app("missing", apps, target)


def test_prune_drops_scripts_and_stale_bytecode(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "httpx").write_text("")
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-312.pyc").write_bytes(b"")
    (tmp_path / "pkg" / "m.py").write_text("")
    lambda_zip.prune(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["pkg", "pkg/m.py"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["not-a-module"], "APP must be a Python module name"),
        ([], "give APP"),
        (["app", "--python-version", "3"], "--python-version must look like 3.11"),
        (["app", "--arch", "sparc"], "invalid choice"),
    ],
)
def test_bad_arguments_are_rejected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        lambda_zip.main(argv)
    assert message in capsys.readouterr().err


def test_sourceless_dependencies_import_from_bytecode(tmp_path: Path) -> None:
    (tmp_path / "dep").mkdir()
    (tmp_path / "dep" / "__init__.py").write_text("from .inner import VALUE\n")
    (tmp_path / "dep" / "inner.py").write_text("VALUE = 42\n")
    (tmp_path / "taskiq_sqs_http").mkdir()
    (tmp_path / "taskiq_sqs_http" / "__init__.py").write_text("")
    (tmp_path / "app.py").write_text("import dep\n")
    lambda_zip.compile_bytecode(tmp_path)
    assert lambda_zip.drop_dependency_sources(tmp_path, {"taskiq_sqs_http", "app"}) == 2

    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert "dep/__init__.pyc" in files and "dep/inner.pyc" in files
    assert not any(f.startswith("dep/") and f.endswith(".py") for f in files)
    assert "app.py" in files and "taskiq_sqs_http/__init__.py" in files
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import app, dep; print(dep.VALUE, dep.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-B", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == "42"
    assert done.stdout.split()[1].endswith("dep/__init__.pyc")
