"""Write a small SVG coverage badge from coverage.xml (no dependencies, so `make test` can always run it)."""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" width="104" height="20" role="img"
 aria-label="coverage: {pct}">
<rect width="61" height="20" fill="#555"/><rect x="61" width="43" height="20" fill="{color}"/>
<g fill="#fff" text-anchor="middle" font-family="Verdana,sans-serif" font-size="11">
<text x="30.5" y="14">coverage</text><text x="82.5" y="14">{pct}</text></g></svg>
"""


def main() -> int:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "coverage.xml")
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/coverage.svg")
    rate = float(ElementTree.parse(source).getroot().get("line-rate", "0"))  # noqa: S314 - our own file
    pct = f"{rate * 100:.0f}%"
    color = "#4c1" if rate >= 0.9 else "#dfb317" if rate >= 0.75 else "#e05d44"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE.format(pct=pct, color=color))
    print(f"coverage {pct} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
