"""Fail unless this interpreter has exactly the versions pinned in requirements-min.txt.

`make test-min` runs it before the suite, so a pip resolution that quietly upgraded a runtime dependency
cannot pass for a test of the floors. Prints the versions it found.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[name.split("[", 1)[0].strip()] = version.strip()
    return found


def main(argv: list[str]) -> int:
    wanted = pins(Path(argv[1] if len(argv) > 1 else "requirements-min.txt"))
    wrong: list[str] = []
    for name, version in wanted.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "missing"
        print(f"{name}=={installed}" + ("" if installed == version else f"  (expected {version})"))
        if installed != version:
            wrong.append(name)
    if wrong:
        print(f"not at the declared floor: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
