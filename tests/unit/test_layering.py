"""The layers import downwards only: aws never imports taskiq or the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "taskiq_sqs_http"

# layer -> modules it must never import (absolute names, or relative names resolved below)
FORBIDDEN = {
    "aws": (
        "taskiq",
        "taskiq_sqs_http.broker",
        "taskiq_sqs_http.batching",
        "taskiq_sqs_http.extended",
        "taskiq_sqs_http.result_backend",
        "taskiq_sqs_http.exceptions",
    ),
    "batching": ("taskiq", "taskiq_sqs_http.broker", "taskiq_sqs_http.result_backend"),
    "extended": ("taskiq", "taskiq_sqs_http.broker", "taskiq_sqs_http.result_backend"),
}


def _imports(path: Path) -> set[str]:
    module = "taskiq_sqs_http." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layering_imports_point_down(layer: str) -> None:
    """No module of a lower layer imports taskiq or a higher layer."""
    offenders = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []
