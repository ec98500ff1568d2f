"""MkDocs hooks (mkdocs.yml `hooks:`): files and links that point outside docs/.

- The benchmark chart is written by `make bench` to bench/results.png; copying it into docs/ would leave two
  copies to keep in step, so the build adds it as a generated file instead. A missing chart fails the build.
- A page may link to a file of the repository outside docs/ (`../bench/lambda.md`, `../scripts/bench.py`):
  on the site such a link becomes an absolute link to the file in the repository. Only files that exist are
  rewritten; a link to a missing file is left alone, so `mkdocs build --strict` still fails on it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]

# site path -> source, relative to the repository root
EXTERNAL_FILES = {"assets/benchmark-results.png": "bench/results.png"}

# Placeholder until the project is published; mkdocs.yml's repo_url names the same repository.
REPOSITORY_FILES = "https://github.com/taskiq-sqs-http/taskiq-sqs-http/blob/main/"

# ](relative/path) or ](relative/path#anchor), not absolute URLs and not in-page anchors
_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s#]+)(#[^)\s]*)?\)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, relative in EXTERNAL_FILES.items():
        source = ROOT / relative
        if not source.is_file():
            raise PluginError(f"{relative} is missing; `make bench` writes it")
        files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    docs_dir = Path(config.docs_dir).resolve()
    if page.file.abs_src_path is None:
        return markdown
    here = Path(page.file.abs_src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        target = (here / match.group(1)).resolve()
        if target.is_relative_to(docs_dir) or not target.is_relative_to(ROOT) or not target.exists():
            return match.group(0)
        return f"]({REPOSITORY_FILES}{target.relative_to(ROOT).as_posix()}{match.group(2) or ''})"

    return _LINK.sub(rewrite, markdown)


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    for relative in EXTERNAL_FILES.values():
        server.watch(str(ROOT / relative))
    server.watch(str(ROOT / "bench"))
    return server
