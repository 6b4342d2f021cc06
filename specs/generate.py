"""Regenerate the protocol's derived files from the code.

    python specs/generate.py          # write schemas/events/*.json and the spec's error table
    python specs/generate.py --check  # exit 1 if anything is out of date

Run from the repository root (paths are relative to this file's parent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from onceonly.protocol.schema_export import render_schemas, replace_error_table

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schemas" / "events"
SPEC = ROOT / "specs" / "protocol.md"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated files; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args(argv)

    wanted = {SCHEMA_DIR / name: text for name, text in render_schemas().items()}
    spec_text = SPEC.read_text(encoding="utf-8")
    wanted[SPEC] = replace_error_table(spec_text)
    stale_schemas = {path for path in SCHEMA_DIR.glob("*.json") if path not in wanted}

    outdated = [
        path
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for path in [*outdated, *sorted(stale_schemas)]:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if outdated or stale_schemas else 0
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for path in outdated:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for path in stale_schemas:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
