"""A command's code version: the transitive closure of the ``tuningtax`` modules its CLI command imports,
with the data folders of the packages in it (validation/suites/: the expectation suites).

Snakemake cannot see the code behind a ``shell:`` string and DVC only sees declared files, so each rule
passes this fingerprint as a param and each DVC stage lists the closure as deps. It is computed from the
import statements (top-level and lazy ones inside functions alike), never from a hand list: a module the
command cannot import (a benchmark, a diagnostic) never makes its results stale, and every module it can
import does.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "tuningtax"
SRC = Path(__file__).resolve().parent  # src/tuningtax
# The modules every command runs through before its own: the entry point and its dispatcher.
ENTRY = ("tuningtax", "tuningtax.__main__", "tuningtax.cli")


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The file of a ``tuningtax`` module (package __init__ or plain module), or None if there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = src.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str, src: Path) -> frozenset[str]:
    """Every ``tuningtax`` module the file's import statements can load, with the packages above each."""
    return _imports_in(path.read_bytes(), module, path.name == "__init__.py", src)


@lru_cache(maxsize=None)  # keyed by content: every command's closure passes through the same shared modules
def _imports_in(source: bytes, module: str, is_package: bool, src: Path) -> frozenset[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from pkg import name` loads pkg.name when name is a submodule
            found.update(f"{base}.{alias.name}" for alias in node.names)
    closure: set[str] = set()
    for name in found:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            prefix = ".".join(parts[:i])
            if module_file(prefix, src) is not None:
                closure.add(prefix)
    return frozenset(closure)


def import_closure(roots: tuple[str, ...], src: Path = SRC) -> list[Path]:
    """The files of every ``tuningtax`` module reachable from ``roots`` through import statements."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        path = module_file(module, src)
        if path is None:
            raise ValueError(f"{module}: no such module under {src}")
        seen.add(module)
        stack.extend(_imported_modules(path, module, src) - seen)
    files = {module_file(m, src) for m in seen}
    return sorted(files | {f for m in seen for f in data_files(module_file(m, src))})


def data_files(module_path: Path) -> list[Path]:
    """A package's data: the files in its subfolders that are not packages (validation/suites/*.json). They
    belong to the code of every command that imports the package."""
    if module_path.name != "__init__.py":
        return []
    return sorted(f for d in module_path.parent.iterdir()
                  if d.is_dir() and d.name != "__pycache__" and not (d / "__init__.py").exists()
                  for f in d.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def command_module(command: str) -> str:
    from tuningtax.cli import COMMANDS

    if command not in COMMANDS:
        raise KeyError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    return COMMANDS[command][0]


def command_files(command: str, src: Path = SRC) -> list[Path]:
    """The source files ``python -m tuningtax COMMAND`` can run."""
    return import_closure((*ENTRY, command_module(command)), src)


@lru_cache(maxsize=None)
def code_version(command: str, src: Path = SRC) -> str:
    """sha256 over the closure's relative paths and bytes (16 hex digits)."""
    digest = hashlib.sha256()
    for path in command_files(command, src):
        digest.update(path.relative_to(src).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("commands", nargs="+", metavar="COMMAND", help="pipeline commands, e.g. generate")
    parser.add_argument("--files", action="store_true", help="list the closure's files instead of its hash")


def run(args: argparse.Namespace) -> int:
    root = SRC.parents[1]
    for command in args.commands:
        if args.files:
            for path in command_files(command):
                print(path.relative_to(root).as_posix())
        else:
            print(f"{command}\t{code_version(command)}")
    return 0
