"""The command line both vector generators share: write the vector files, or ``--check`` them.

A generator describes its whole output as a mapping from relative path to text
(``keys.json`` plus three files per case); this module writes that mapping or
reports which files on disk differ from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


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
