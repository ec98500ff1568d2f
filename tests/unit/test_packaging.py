"""What we publish tells the truth: licence, classifiers, runtime requirements only, no images in the sdist.

Builds the wheel and sdist with hatchling (a test dependency) into a temporary directory, about two seconds,
and reads what a user of PyPI would see. Also keeps requirements-min.txt (what `make test-min` installs) in
step with the lower bounds declared in pyproject.toml.
"""

from __future__ import annotations

import email
import email.message
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check is the same on every version
Requirement = pytest.importorskip("packaging.requirements").Requirement
Version = pytest.importorskip("packaging.version").Version
pytest.importorskip("hatchling")

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"taskiq", "httpx", "pydantic", "orjson", "aiohttp"}
DEV_TOOLS = {"pytest", "pytest-asyncio", "pytest-cov", "respx", "ruff", "pyright", "botocore", "requests"}
DEV_TOOLS |= {"aws-requests-auth", "matplotlib", "rich", "mkdocs", "mkdocs-material", "mkdocstrings"}
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def _name(requirement: str) -> str:
    return str(Requirement(requirement).name).lower().replace("_", "-")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def metadata(dists: tuple[Path, Path]) -> email.message.Message:
    with zipfile.ZipFile(dists[0]) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(wheel.read(name))


def test_published_requirements_are_the_runtime_dependencies_only(metadata: email.message.Message) -> None:
    requires = metadata.get_all("Requires-Dist") or []
    assert {_name(r) for r in requires} == RUNTIME, requires
    assert not DEV_TOOLS & {_name(r) for r in requires}
    assert not metadata.get_all("Provides-Extra"), "dev tools belong in [dependency-groups], not extras"


def test_licence_and_classifiers(metadata: email.message.Message) -> None:
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = set(metadata.get_all("Classifier") or [])
    assert {f"Programming Language :: Python :: {v}" for v in PYTHONS} <= classifiers
    assert {"Framework :: AsyncIO", "Typing :: Typed"} <= classifiers
    assert metadata["Requires-Python"] == ">=3.10"
    urls = metadata.get_all("Project-URL") or []
    assert any(u.startswith("Documentation, https://") for u in urls), urls
    assert any(u.startswith("Source, https://") for u in urls), urls


def test_wheel_ships_licence_and_py_typed(dists: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(dists[0]) as wheel:
        names = wheel.namelist()
    assert "taskiq_sqs_http/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not [n for n in names if not n.startswith(("taskiq_sqs_http/", "taskiq_sqs_http-"))]


def test_sdist_has_licence_and_no_images(dists: tuple[Path, Path]) -> None:
    with tarfile.open(dists[1]) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    assert "LICENSE" in names
    assert "taskiq_sqs_http/py.typed" in names
    assert "requirements-min.txt" in names
    images = [n for n in names if n.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".svg"))]
    assert not images
    assert not [n for n in names if n.startswith(("bench/", ".venv", "site/"))]


def test_requirements_min_pins_the_declared_lower_bounds() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors: dict[str, str] = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{line!r} needs exactly one tested lower bound (>=)"
        floors[_name(line)] = lower[0]
    pins: dict[str, str] = {}
    for raw in (ROOT / "requirements-min.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[_name(line)] = spec.version
    assert set(pins) == set(floors) == RUNTIME
    for name, floor in floors.items():
        # Version("0.25") == Version("0.25.0"): a bound may be written shorter than its pin.
        assert Version(pins[name]) == Version(floor), (
            f"{name}: requirements-min.txt pins {pins[name]}, pyproject's lower bound is {floor}"
        )


SITE = "https://taskiq-sqs-http.github.io/taskiq-sqs-http/"


def test_readme_links_and_images_work_off_the_repository() -> None:
    """PyPI shows the README without the repository's files and without heading anchors."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "mailto:"))]
    assert not relative, f"README links that break off the repository: {relative}"
    for target in targets:
        if target.startswith(SITE):
            page = target.removeprefix(SITE).split("#", 1)[0].strip("/")
            candidates = [ROOT / "docs" / f"{page}.md", ROOT / "docs" / page / "index.md"] if page else []
            assert not page or any(c.is_file() for c in candidates), f"no docs page for {target}"
