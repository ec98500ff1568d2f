"""Build an AWS Lambda deployment zip of an app module with taskiq-sqs-http and its runtime dependencies.

    python scripts/lambda_zip.py APP [--app-dir DIR] [--arch x86_64|arm64|all] [--python-version 3.11]
                                     [--out-dir dist/lambda] [--no-compile]
    make lambda-zip APP=app [ARCH=all]

APP is the module (``app`` for ``app.py``) or package (``myapp/``) holding the broker and the handler; the
Lambda handler setting is then ``APP.handler`` (or whatever name you gave ``lambda_handler(broker)``).

Why this shape:

* Binary wheels only, for the Lambda platform: ``pip install --platform manylinux2014_<arch>
  --only-binary=:all: --python-version X.Y --target``, so a zip built on a Mac or on arm64 runs on Lambda
  and nothing is compiled from source on the build machine.
* The package itself is copied from this checkout (it is pure Python): the zip is exactly the code under
  test, and the dependency set is the package's declared runtime dependencies, nothing from dev extras.
* Bytecode is compiled in (``--no-compile`` to skip): ``/var/task`` is read-only on Lambda, so without
  ``.pyc`` files every cold start compiles every imported module again. Only done when the building
  interpreter has the target's Python version (bytecode is version specific); unchecked-hash pycs, so the
  zip's file times do not matter.
* Debug info stripped from the extension modules (``--no-strip`` to keep it): several manylinux wheels
  (aiohttp, multidict, frozenlist, yarl, propcache) ship it, about 80% of their ``.so`` size, which
  Lambda would download and unpack on every cold start. ``--strip-debug`` keeps every symbol the loader
  needs. Uses ``llvm-strip`` (any architecture) or binutils ``strip`` (the build machine's own).
* ``--sourceless-deps`` (opt-in): the dependencies' bytecode replaces their sources, about 20% off the zip;
  tracebacks through dependency frames then lack the source line's text (the app and this package keep
  theirs).
* Reproducible: entries sorted, fixed timestamps; the same inputs give the same bytes.

``--requirement`` / ``--no-package`` build other zips with the same recipe (the benchmark builds the
hand-written taskiq-aio-sqs handler's zip this way, so the comparison is like for like).
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import importlib.metadata
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "taskiq_sqs_http"
DISTRIBUTION = "taskiq-sqs-http"
ARCHES = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# Lambda's zip limits: 50 MB for a direct upload, 250 MB unzipped (layers included).
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Installed by pip --target but never imported by a function.
_PRUNE_DIRS = {"bin", "__pycache__"}


@dataclass(frozen=True)
class Built:
    path: Path
    arch: str
    zipped: int
    unzipped: int
    files: int

    def describe(self) -> str:
        return (
            f"{self.path} ({self.arch}): {self.zipped / 1e6:.1f} MB zipped, "
            f"{self.unzipped / 1e6:.1f} MB unzipped, {self.files} files"
        )


def runtime_requirements() -> list[str]:
    """The package's declared runtime dependencies (the dev extra excluded), from the installed metadata."""
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{DISTRIBUTION} is not installed in this interpreter; run `make install` first")
    return [r for r in requires if "extra ==" not in r.replace('"', "").replace("'", "")]


def pip_install(requirements: Sequence[str], target: Path, arch: str, python_version: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--platform",
        ARCHES[arch],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--target",
        str(target),
        *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"pip install for {arch} failed (exit {result.returncode})")


def copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def add_app(app: str, app_dir: Path, target: Path) -> None:
    """Copy the app's top-level module or package next to the dependencies."""
    top = app.split(".", 1)[0]
    module = app_dir / f"{top}.py"
    package = app_dir / top
    if package.is_dir():
        copy_tree(package, target / top)
    elif module.is_file():
        shutil.copy2(module, target / module.name)
    else:
        sys.exit(f"APP={app!r}: neither {module} nor {package}/ exists (set --app-dir)")


def prune(target: Path) -> None:
    for name in _PRUNE_DIRS:
        for path in list(target.rglob(name)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def compile_bytecode(target: Path) -> None:
    ok = compileall.compile_dir(
        str(target),
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        # Some packages ship files that are not valid for this version (templates, py2 leftovers): harmless.
        print("note: some files did not compile to bytecode (kept as source)", file=sys.stderr)


def drop_dependency_sources(target: Path, keep: set[str]) -> int:
    """Ship the dependencies' bytecode without their sources (``--sourceless-deps``); returns files dropped.

    Each compiled ``x.py`` of a top-level name not in ``keep`` is replaced by its bytecode as ``x.pyc``
    beside it, which Python imports when no source exists. Tracebacks through those modules then show file
    and line but not the line's text; the app and this package keep their sources.
    """
    tag = sys.implementation.cache_tag
    dropped = 0
    for source in sorted(target.rglob("*.py")):
        top = source.relative_to(target).parts[0].removesuffix(".py")
        if top in keep:
            continue
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if compiled.is_file():
            compiled.replace(source.with_suffix(".pyc"))
            source.unlink()
            dropped += 1
    return dropped


def strip_binaries(target: Path) -> tuple[int, int]:
    """Strip debug info from every shared object; returns (files stripped, bytes saved)."""
    tool = shutil.which("llvm-strip") or shutil.which("strip")
    if tool is None:
        print("note: no llvm-strip or strip found; extension modules keep their debug info", file=sys.stderr)
        return 0, 0
    stripped = saved = 0
    for path in sorted(target.rglob("*.so*")):
        if not path.is_file() or path.is_symlink():
            continue
        before = path.stat().st_size
        result = subprocess.run([tool, "--strip-debug", str(path)], capture_output=True, check=False)
        if result.returncode == 0:
            stripped += 1
            saved += before - path.stat().st_size
    return stripped, saved


def iter_files(root: Path) -> Iterable[Path]:
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(directory) / name


def write_zip(root: Path, out: Path) -> tuple[int, int]:
    """A deterministic zip of ``root``; returns (file count, unzipped bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = unzipped = 0
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in iter_files(root):
            data = path.read_bytes()
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            # rw-r--r-- (rwxr-xr-x for files pip marked executable): Lambda needs them readable by others.
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data, compresslevel=9)
            count += 1
            unzipped += len(data)
    tmp.replace(out)
    return count, unzipped


def build(
    app: str | None,
    *,
    app_dir: Path,
    arch: str,
    python_version: str,
    out: Path,
    requirements: Sequence[str] | None = None,
    include_package: bool = True,
    compile_pyc: bool = True,
    strip: bool = True,
    install_cache: Path | None = None,
    sourceless_deps: bool = False,
) -> Built:
    """Build one zip; the public entry point for scripts and tests.

    ``install_cache``: a folder that keeps each (requirements, arch, Python) installation, so builds that
    differ only in the app or the recipe (the benchmark's variants) run pip once.
    """
    reqs = list(requirements) if requirements is not None else runtime_requirements()
    with tempfile.TemporaryDirectory(prefix="lambda-zip-") as tmp:
        target = Path(tmp) / "package"
        if reqs and install_cache is not None:
            key = hashlib.sha256(json.dumps([sorted(reqs), arch, python_version]).encode()).hexdigest()[:16]
            cached = install_cache / key
            if not cached.is_dir():
                staging = install_cache / f"{key}.tmp"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                pip_install(reqs, staging, arch, python_version)
                staging.rename(cached)
            shutil.copytree(cached, target, symlinks=True)
        else:
            target.mkdir()
            if reqs:
                pip_install(reqs, target, arch, python_version)
        if include_package:
            copy_tree(ROOT / PACKAGE, target / PACKAGE)
        if app is not None:
            add_app(app, app_dir, target)
        prune(target)
        if strip:
            strip_binaries(target)
        if compile_pyc and f"{sys.version_info[0]}.{sys.version_info[1]}" == python_version:
            compile_bytecode(target)
            if sourceless_deps:
                keep: set[str] = {PACKAGE}
                if app is not None:
                    keep.add(app.split(".", 1)[0])
                drop_dependency_sources(target, keep)
        files, unzipped = write_zip(target, out)
    built = Built(out, arch, out.stat().st_size, unzipped, files)
    if built.zipped > MAX_ZIPPED or built.unzipped > MAX_UNZIPPED:
        print(f"warning: {out} exceeds Lambda's limits (50 MB zipped, 250 MB unzipped)", file=sys.stderr)
    return built


def _python_version(value: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", value):
        raise argparse.ArgumentTypeError(f"--python-version must look like 3.11, got {value!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("app", nargs="?", help="module or package with the handler (e.g. app for app.py)")
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="where APP lives (default: cwd)")
    parser.add_argument("--arch", choices=[*ARCHES, "all"], default="x86_64")
    parser.add_argument(
        "--python-version",
        type=_python_version,
        default=f"{sys.version_info[0]}.{sys.version_info[1]}",
        help="Lambda runtime's Python (default: this interpreter's)",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist" / "lambda")
    parser.add_argument("--name", help="zip name without arch and extension (default: APP)")
    parser.add_argument(
        "--requirement",
        "-r",
        action="append",
        help="install these instead of the package's runtime dependencies (repeatable)",
    )
    parser.add_argument("--no-package", action="store_true", help=f"do not copy {PACKAGE} into the zip")
    parser.add_argument("--no-compile", action="store_true", help="leave out precompiled bytecode")
    parser.add_argument("--no-strip", action="store_true", help="keep debug info in extension modules")
    parser.add_argument(
        "--sourceless-deps",
        action="store_true",
        help="dependencies as bytecode without .py sources (smaller; tracebacks lose line text)",
    )
    args = parser.parse_args(argv)
    if args.app is None and args.name is None:
        parser.error("give APP (the module with the handler) or --name for a dependencies-only zip")
    if args.app is not None and not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", args.app
    ):
        parser.error(f"APP must be a Python module name such as app or my_app, got {args.app!r}")
    app: str | None = args.app
    name: str = args.name or (app or "").split(".", 1)[0]
    arches = list(ARCHES) if args.arch == "all" else [args.arch]
    for arch in arches:
        built = build(
            args.app,
            app_dir=args.app_dir.resolve(),
            arch=arch,
            python_version=args.python_version,
            out=args.out_dir / f"{name}-{arch}.zip",
            requirements=args.requirement,
            include_package=not args.no_package,
            compile_pyc=not args.no_compile,
            strip=not args.no_strip,
            sourceless_deps=args.sourceless_deps,
        )
        print(built.describe())
    if args.app is not None:
        print(f"Lambda settings: runtime python{args.python_version}, handler {args.app}.handler")
    return 0


if __name__ == "__main__":
    sys.exit(main())
