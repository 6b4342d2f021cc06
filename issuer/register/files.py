"""Reading register files (JSON and CSV) into validated records, with line numbers.

JSON form (``*.json``)::

    {"format": "onceonly-register/1",
     "persons": [{"person_id": "MB-0001", "given_name": "Jürgen", "family_name": "Weiß",
                  "birthdate": "1971-03-14",
                  "place_of_birth": {"locality": "Köln", "country": "DE"},
                  "claims": {"urn:onceonly:credential:residence:1": {...}}}],
     "moves": [{"person_id": "MB-0001", "moved_on": "2026-12-01",
                "recorded_at": "2026-11-20T09:30:00+01:00", "new_address": {...}}]}

``moves`` (optional) are registered moves the import records as pending life events.

CSV form (``*.csv``, UTF-8, header row): the columns ``person_id``, ``given_name``,
``family_name``, ``birthdate``, ``place_of_birth.locality``,
``place_of_birth.country``, ``eid_card_number`` and, for claim values,
``<type>.<claim path>`` where ``<type>`` is a shipped credential type's key
(``residence``, ``pid``, ``birth``, ``vehicle``, ``income``) and the path is
dotted, with numbers as array indices (``birth.parents.0.given_name``). Cells
are converted to the type the schema declares (integers, booleans, and
``;``-separated lists of strings); empty cells are absent values.

Every problem is a :class:`~onceonly.errors.MalformedInput` (or its subclass)
that starts with ``<file>:<line>``.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
import json.decoder
import json.scanner
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from issuer.register.model import (
    IsoDate,
    PersonRecord,
    describe_validation_error,
    error_location,
    parse_person,
)
from onceonly.credential_types import all_types
from onceonly.errors import DuplicateJsonKey, InputTooLarge, MalformedInput

FORMAT: Final = "onceonly-register/1"
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
_LIST_SEPARATOR: Final = ";"
_IDENTITY_COLUMNS: Final = (
    "person_id",
    "given_name",
    "family_name",
    "birthdate",
    "place_of_birth.locality",
    "place_of_birth.country",
    "eid_card_number",
)


class RegisteredMove(BaseModel):
    """A move found in a register file, to be recorded as a life event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str
    moved_on: IsoDate
    recorded_at: AwareDatetime
    new_address: dict[str, Any]


@dataclass(frozen=True)
class RegisterFile:
    """The validated contents of one register file."""

    persons: tuple[PersonRecord, ...]
    moves: tuple[RegisteredMove, ...]


def read_register_file(path: Path) -> RegisterFile:
    """Read and validate a register file; the suffix (``.json``/``.csv``) picks the form.

    Raises:
        MalformedInput: unreadable, badly formed or invalid content (with line number).
        InputTooLarge: the file exceeds :data:`MAX_FILE_BYTES`.
    """
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputTooLarge(f"{path.name}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_bytes().decode("utf-8-sig")  # tolerate the BOM spreadsheets write
    except UnicodeDecodeError as exc:
        raise MalformedInput(f"{path.name}: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise MalformedInput(f"{path.name}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_register_json(text, source=path.name)
    if suffix == ".csv":
        return RegisterFile(persons=parse_register_csv(text, source=path.name), moves=())
    raise MalformedInput(f"{path.name}: register files must end in .json or .csv")


# --- JSON ------------------------------------------------------------------------


# Undocumented stdlib internals (absent from typeshed), hence looked up by name.
_PY_MAKE_SCANNER: Final[Any] = getattr(json.scanner, "py_make_scanner")  # noqa: B009
_JSON_OBJECT: Final[Any] = getattr(json.decoder, "JSONObject")  # noqa: B009


class _Located(dict[str, Any]):
    """A decoded JSON object that remembers the line it starts on."""

    line: int = 0


class _LocatingDecoder(json.JSONDecoder):
    """A JSON decoder that records each object's line and rejects duplicate members.

    The pure-Python scanner is used because it calls ``parse_object`` with the
    object's offset, which the C scanner hides.
    """

    def __init__(self, text: str) -> None:
        super().__init__(parse_constant=self._reject_constant)
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.memo: dict[str, str] = {}
        self.parse_object = self._parse_object
        self.scan_once = _PY_MAKE_SCANNER(self)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def _parse_object(
        self, s_and_end: tuple[str, int], strict: bool, scan_once: Any, *_hooks: Any
    ) -> tuple[_Located, int]:
        start = s_and_end[1]
        line = self.line_of(start)
        pairs, end = _JSON_OBJECT(
            s_and_end, strict, scan_once, None, lambda items: items, self.memo
        )
        obj = _Located()
        obj.line = line
        for key, value in pairs:
            if key in obj:
                raise DuplicateJsonKey(f"member {key!r} appears twice", detail={"line": line})
            obj[key] = value
        return obj, end

    @staticmethod
    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")


def _decode_located(text: str, source: str) -> Any:
    decoder = _LocatingDecoder(text)
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise MalformedInput(f"{source}: JSON nested too deeply") from None
    except DuplicateJsonKey as exc:
        raise DuplicateJsonKey(f"{source}:{exc.detail['line']}: {exc.message}") from None
    except ValueError as exc:
        raise MalformedInput(f"{source}: invalid JSON: {exc}") from None


def _line_at(obj: Any, location: tuple[int | str, ...]) -> int:
    """The line of the innermost JSON object on ``location`` (a pydantic error path)."""
    line = obj.line if isinstance(obj, _Located) else 0
    for part in location:
        in_object = isinstance(obj, dict) and isinstance(part, str) and part in obj
        in_array = isinstance(obj, list) and isinstance(part, int) and 0 <= part < len(obj)
        if not (in_object or in_array):
            break
        obj = obj[part]
        if isinstance(obj, _Located):
            line = obj.line
    return line


def parse_register_json(text: str, *, source: str = "register.json") -> RegisterFile:
    """Parse the JSON form (see the module docstring).

    Raises:
        MalformedInput: with ``source:line`` of the offending object.
    """
    document = _decode_located(text, source)
    if not isinstance(document, _Located):
        raise MalformedInput(f"{source}:1: a register file is a JSON object")
    if document.get("format") != FORMAT:
        raise MalformedInput(f"{source}:{document.line}: 'format' must be {FORMAT!r}")
    unknown = sorted(set(document) - {"format", "description", "persons", "moves"})
    if unknown:
        raise MalformedInput(f"{source}:{document.line}: unknown member(s) {', '.join(unknown)}")
    persons = tuple(_json_items(document, "persons", source, _json_person))
    moves = tuple(_json_items(document, "moves", source, _json_move))
    _check_unique_ids(persons, source, lines=[_line_at(p, ()) for p in document["persons"]])
    return RegisterFile(persons=persons, moves=moves)


def _json_items(document: _Located, member: str, source: str, build: Any) -> Iterator[Any]:
    items = document.get(member, [])
    if not isinstance(items, list):
        raise MalformedInput(f"{source}:{document.line}: {member!r} must be an array")
    for item in items:
        if not isinstance(item, _Located):
            raise MalformedInput(f"{source}:{document.line}: {member!r} holds a non-object")
        yield build(item, source)


def _json_person(item: _Located, source: str) -> PersonRecord:
    try:
        return PersonRecord.model_validate(item)
    except ValidationError as exc:
        line = _line_at(item, error_location(exc))
        raise MalformedInput(
            f"{source}:{line}: person {item.get('person_id', '?')}: "
            f"{describe_validation_error(exc)}"
        ) from None


def _json_move(item: _Located, source: str) -> RegisteredMove:
    try:
        return RegisteredMove.model_validate(item)
    except ValidationError as exc:
        raise MalformedInput(
            f"{source}:{item.line}: move: {describe_validation_error(exc)}"
        ) from None


def _check_unique_ids(persons: tuple[PersonRecord, ...], source: str, lines: list[int]) -> None:
    seen: dict[str, int] = {}
    for person, line in zip(persons, lines, strict=True):
        if person.person_id in seen:
            raise MalformedInput(
                f"{source}:{line}: person_id {person.person_id!r} already used on line "
                f"{seen[person.person_id]}"
            )
        seen[person.person_id] = line


# --- CSV -------------------------------------------------------------------------


def parse_register_csv(text: str, *, source: str = "register.csv") -> tuple[PersonRecord, ...]:
    """Parse the CSV form (see the module docstring).

    Raises:
        MalformedInput: with ``source:line`` of the offending row or header.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise MalformedInput(f"{source}:1: empty file (a header row is required)")
        columns = [_column(name, source) for name in header]
        if len(set(header)) != len(header):
            raise MalformedInput(f"{source}:1: a column name appears twice")
        missing = {"person_id", "given_name", "family_name", "birthdate"} - set(header)
        if missing:
            raise MalformedInput(f"{source}:1: missing column(s) {', '.join(sorted(missing))}")
        persons: list[PersonRecord] = []
        lines: list[int] = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are allowed (spreadsheets leave them)
            if len(row) != len(header):
                raise MalformedInput(
                    f"{source}:{line}: {len(row)} cells, the header has {len(header)}"
                )
            data = _row_to_record(columns, row, f"{source}:{line}")
            persons.append(parse_person(data, where=f"{source}:{line}"))
            lines.append(line)
    except csv.Error as exc:
        raise MalformedInput(f"{source}:{reader.line_num}: malformed CSV: {exc}") from None
    result = tuple(persons)
    _check_unique_ids(result, source, lines)
    return result


@dataclass(frozen=True)
class _Column:
    vct: str | None  # None for the identity columns
    path: tuple[str | int, ...]
    schema: Mapping[str, Any]


def _column(name: str, source: str) -> _Column:
    if name in _IDENTITY_COLUMNS:
        return _Column(vct=None, path=tuple(name.split(".")), schema={"type": "string"})
    key, _, dotted = name.partition(".")
    by_key = {t.key: t for t in all_types().values()}
    if key not in by_key or not dotted:
        raise MalformedInput(
            f"{source}:1: unknown column {name!r} (expected an identity column or "
            f"<type>.<claim> with <type> one of {', '.join(sorted(by_key))})"
        )
    path = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
    schema = _schema_at(by_key[key].schema, path)
    if schema is None:
        raise MalformedInput(f"{source}:1: column {name!r}: the {key} schema has no such claim")
    return _Column(vct=by_key[key].vct, path=path, schema=schema)


def _schema_at(schema: Mapping[str, Any], path: tuple[str | int, ...]) -> Mapping[str, Any] | None:
    for part in path:
        if isinstance(part, int):
            if "items" not in schema:
                return None
            schema = schema["items"]
        else:
            properties = schema.get("properties", {})
            if part not in properties:
                return None
            schema = properties[part]
    return schema


def _convert(cell: str, schema: Mapping[str, Any], where: str) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(cell)
        except ValueError:
            raise MalformedInput(f"{where}: {cell!r} is not a whole number") from None
    if kind == "boolean":
        if cell.lower() not in ("true", "false"):
            raise MalformedInput(f"{where}: {cell!r} is not true or false")
        return cell.lower() == "true"
    if kind == "array":
        return [part.strip() for part in cell.split(_LIST_SEPARATOR) if part.strip()]
    return cell


def _row_to_record(columns: list[_Column], row: list[str], where: str) -> dict[str, Any]:
    record: dict[str, Any] = {"claims": {}}
    for column, cell in zip(columns, row, strict=True):
        if cell == "":
            continue
        target = record if column.vct is None else record["claims"].setdefault(column.vct, {})
        name = ".".join(str(p) for p in column.path)
        _set_path(target, column.path, _convert(cell, column.schema, f"{where}: {name}"))
    return record


def _set_path(target: Any, path: tuple[str | int, ...], value: Any) -> None:
    # Containers are created on the way down: a list where the next part is an
    # index, an object otherwise. Gaps in a list stay as empty objects, which the
    # schema check then reports (e.g. a parents.1 column without parents.0).
    for part, following in itertools.pairwise(path):
        container: Any = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(target) <= part:
                target.append({})
            if target[part] == {}:
                target[part] = container
            target = target[part]
        else:
            target = target.setdefault(part, container)
    last = path[-1]
    if isinstance(last, int):
        while len(target) <= last:
            target.append({})
    target[last] = value
