"""The command line both vector generators share: write the vector files, or ``--check`` them.

A generator describes its whole output as a mapping from relative path to text
(``keys.json`` plus three files per case); this module writes that mapping or
reports which files on disk differ from it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar


class NamedCase(Protocol):
    """A vector case: its name is its directory."""

    @property
    def name(self) -> str: ...


_Case = TypeVar("_Case", bound=NamedCase)


def vector_tree(
    keys: Mapping[str, Any], cases: Iterable[_Case], render: Callable[[_Case], dict[str, str]]
) -> dict[str, str]:
    """Relative path -> content: ``keys.json``, then each case's files in its own directory.

    Args:
        keys: Name -> JWK of every key the vectors use.
        cases: The cases, in order.
        render: File name -> content for one case.
    """
    files = {"keys.json": json.dumps(keys, indent=2) + "\n"}
    for case in cases:
        for name, text in render(case).items():
            files[f"{case.name}/{name}"] = text
    return files


def write_or_check(
    expected_tree: Callable[[], dict[str, str]],
    *,
    description: str,
    out_dir: Path,
    argv: list[str] | None = None,
) -> int:
    """Write (or with ``--check`` compare) the vector directory; return the exit status.

    Args:
        expected_tree: Builds relative path -> file content for every generated file.
        description: What the generator makes, for ``--help``.
        out_dir: Where the files go unless ``--out`` says otherwise.
        argv: Command-line arguments (``sys.argv[1:]`` when ``None``).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=out_dir)
    args = parser.parse_args(argv)
    tree = expected_tree()
    if args.check:
        stale = [
            path
            for path, text in tree.items()
            if not (args.out / path).is_file() or (args.out / path).read_text("utf-8") != text
        ]
        for path in stale:
            print(f"differs: {path}")
        return 1 if stale else 0
    for path, text in tree.items():
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
    print(f"wrote {len(tree)} files for {(len(tree) - 1) // 3} cases into {args.out}")
    return 0
