"""MkDocs hooks (mkdocs.yml `hooks:`): files, links and includes that reach outside docs/.

- The benchmark chart is written by `make bench` to bench/results.png; copying it into docs/ would leave two
  copies to keep in step, so the build adds it as a generated file instead. A missing chart fails the build.
- A line `--8<-- "bench/results.md"` (a path from the repository root) is replaced by that file, so reports
  that scripts write stay where they are and still appear on the site. The included file's headings move one
  level down (the page keeps its own title) and its relative links are resolved from the file's own folder.
- A link to a file of the repository outside docs/ (`../bench/lambda.md`, or `runs.json` inside an included
  bench/ report) becomes a link to the site's copy when there is one (the chart), else an absolute link to
  the file in the repository. Links to missing files are left alone, so `mkdocs build --strict` fails on them.
"""

from __future__ import annotations

import os
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
_INCLUDE = re.compile(r'^--8<-- "([^"]+)"[ \t]*$', re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, relative in EXTERNAL_FILES.items():
        source = ROOT / relative
        if not source.is_file():
            raise PluginError(f"{relative} is missing; `make bench` writes it")
        files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files


def _rewrite_links(markdown: str, base: Path, page_dir: Path, docs_dir: Path) -> str:
    """Resolve relative links from ``base``; write them relative to the page, or as repository URLs."""
    copies = {(ROOT / source).resolve(): docs_dir / uri for uri, source in EXTERNAL_FILES.items()}

    def rewrite(match: re.Match[str]) -> str:
        target = (base / match.group(1)).resolve()
        anchor = match.group(2) or ""
        if target in copies:
            target = copies[target]
        if target.is_relative_to(docs_dir):
            return f"]({Path(os.path.relpath(target, page_dir)).as_posix()}{anchor})"
        if not target.is_relative_to(ROOT) or not target.exists():
            return match.group(0)  # left for mkdocs to report
        return f"]({REPOSITORY_FILES}{target.relative_to(ROOT).as_posix()}{anchor})"

    return _LINK.sub(rewrite, markdown)


def _demote_headings(markdown: str) -> str:
    lines: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#") and line.lstrip("#").startswith(" "):
            line = "#" + line
        lines.append(line)
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.abs_src_path is None:
        return markdown
    docs_dir = Path(config.docs_dir).resolve()
    page_dir = Path(page.file.abs_src_path).resolve().parent

    def include(match: re.Match[str]) -> str:
        source = (ROOT / match.group(1)).resolve()
        if not source.is_relative_to(ROOT) or not source.is_file():
            raise PluginError(f"{page.file.src_uri}: cannot include {match.group(1)!r} (no such file)")
        text = _rewrite_links(source.read_text(encoding="utf-8"), source.parent, page_dir, docs_dir)
        return _demote_headings(text)

    markdown = _rewrite_links(markdown, page_dir, page_dir, docs_dir)
    return _INCLUDE.sub(include, markdown)


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    for relative in EXTERNAL_FILES.values():
        server.watch(str(ROOT / relative))
    server.watch(str(ROOT / "bench"))
    return server
