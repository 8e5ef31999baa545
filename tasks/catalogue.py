"""Bulk import of the repository catalogue from CSV, JSON or JSON Lines files.

`read_rows` turns a file into dictionaries (one per repository, each remembering its line);
`repositories_import` validates them, keeps the last row of each repository (names compared
case-insensitively, like the rest of the catalogue), and upserts the valid ones in batches.

The import is idempotent: a row whose values already match the table is not written at all, so
a repeated import leaves no trace in the audit trail (its trigger records one entry per written
row). A field a row leaves out (an absent key or CSV column, a JSON null, an empty
`default_branch` or `active`) keeps the repository's current value, or the model's default for a
new repository.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction

from core.sql import quoted_table
from tasks.models import Repository

FIELDS = ("full_name", "url", "default_branch", "language", "license", "active")
REQUIRED = ("full_name", "url")

_FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_URL = URLValidator(schemes=["http", "https"])
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _max_length(name: str) -> int:
    length = Repository._meta.get_field(name).max_length
    assert length is not None
    return length


_MAX_LENGTH = {name: _max_length(name) for name in FIELDS if name != "active"}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # Valid rows superseded by a later row for the same repository (the last one wins).
    duplicates: int = 0


class SourceRow(dict[str, Any]):
    """One row of a file: its fields, the line it is on, and why it is unusable if it is."""

    def __init__(self, data: dict[str, Any], line: int, problem: str | None = None) -> None:
        super().__init__(data)
        self.line = line
        self.problem = problem


# --------------------------------------------------------------------------- reading files --


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yields the rows of a .csv, .json (a list of objects) or .jsonl file.

    Raises ValueError, naming the line where known, if the file cannot be parsed; OSError if it
    cannot be opened. Errors surface while iterating, as the file is read lazily.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    raise ValueError(
        f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .json or .jsonl"
    )


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded one at a time so that a decoding error can name its line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}: line {number}: not UTF-8 text ({exc.reason})") from exc


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    reader = csv.reader(_lines(path), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file; expected a header row")
        columns = [name.strip().lower() for name in header]
        _check_header(path, columns)
        for values in reader:
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) > len(columns):
                problem = f"{len(values)} fields, but the header has {len(columns)}"
                yield SourceRow({}, reader.line_num, problem)
                continue
            # A short row leaves its last fields out (they are "not given").
            yield SourceRow(dict(zip(columns, values, strict=False)), reader.line_num)
    except csv.Error as exc:
        raise ValueError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from exc


def _check_header(path: Path, columns: list[str]) -> None:
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise ValueError(
            f"{path}: line 1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"expected {','.join(FIELDS)}"
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: line 1: repeated column(s) {', '.join(repeated)}")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)}")


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    # The standard library has no streaming JSON parser; the text is read whole, but the
    # objects are decoded one at a time so that each row knows its line.
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text ({exc.reason})") from exc
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position == len(text):
        raise ValueError(f"{path}: empty file; expected a JSON list of objects")
    if text[position] != "[":
        raise ValueError(
            f"{path}: line {_line_of(text, position)}: expected a JSON list of objects"
        )
    position = _skip_space(text, position + 1)
    line, counted_to = 1, 0
    item = 0
    if position < len(text) and text[position] == "]":
        position += 1
    else:
        while True:
            item += 1
            try:
                value, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
            line += text.count("\n", counted_to, position)
            counted_to = position
            if isinstance(value, dict):
                yield SourceRow(value, line)
            else:
                yield SourceRow({}, line, f"item {item} is not an object")
            position = _skip_space(text, end)
            if position < len(text) and text[position] == ",":
                position = _skip_space(text, position + 1)
            elif position < len(text) and text[position] == "]":
                position += 1
                break
            else:
                where = _line_of(text, position)
                raise ValueError(f"{path}: line {where}: invalid JSON: expected ',' or ']'")
    if _skip_space(text, position) != len(text):
        raise ValueError(
            f"{path}: line {_line_of(text, position)}: invalid JSON: extra data after the list"
        )


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number}: invalid JSON: {exc.msg}") from exc
        if isinstance(value, dict):
            yield SourceRow(value, number)
        else:
            yield SourceRow({}, number, "not a JSON object")


# ------------------------------------------------------------------------------- validation --

# (full_name, url, default_branch, language, license, active); None means "not given".
Values = tuple[str, str, str | None, str | None, str | None, bool | None]


class _RowError(Exception):
    pass


def _text(row: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = row.get(name)
    if value is None:
        if required:
            raise _RowError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _RowError(f"{name} must be text, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise _RowError(f"{name} is required")
    if len(value) > _MAX_LENGTH[name]:
        raise _RowError(f"{name} is longer than {_MAX_LENGTH[name]} characters")
    return value


def _active(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _RowError(f"active must be true or false, not {value!r}")


def _validate(row: dict[str, Any]) -> Values:
    problem = getattr(row, "problem", None)
    if problem:
        raise _RowError(problem)
    unknown = sorted(str(name) for name in row if name not in FIELDS)
    if unknown:
        raise _RowError(f"unknown field(s) {', '.join(unknown)}")
    full_name = _text(row, "full_name", required=True)
    url = _text(row, "url", required=True)
    assert full_name is not None and url is not None
    if not _FULL_NAME.fullmatch(full_name):
        raise _RowError(f"full_name {full_name!r} is not of the form owner/name")
    try:
        _URL(url)
    except ValidationError:
        raise _RowError(f"url {url!r} is not an http(s) URL") from None
    # An empty branch cannot be stored (the field is not blank), so it means "not given".
    default_branch = _text(row, "default_branch") or None
    return (
        full_name,
        url,
        default_branch,
        _text(row, "language"),
        _text(row, "license"),
        _active(row.get("active")),
    )


# ----------------------------------------------------------------------------------- import --

_UPSERT = """
INSERT INTO {table} AS r
    (full_name, url, default_branch, language, license, active, created_at, updated_at)
SELECT coalesce(e.full_name, i.full_name), i.url,
       coalesce(i.default_branch, e.default_branch, %s),
       coalesce(i.language, e.language, %s),
       coalesce(i.license, e.license, %s),
       coalesce(i.active, e.active, %s),
       statement_timestamp(), statement_timestamp()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[])
     AS i (full_name, url, default_branch, language, license, active)
-- The catalogue treats names case-insensitively: a row for "PSF/Requests" updates an existing
-- "psf/requests" (keeping its spelling) rather than adding a second entry.
LEFT JOIN LATERAL (
    SELECT t.full_name, t.default_branch, t.language, t.license, t.active
    FROM {table} AS t
    WHERE lower(t.full_name) = lower(i.full_name)
    ORDER BY t.full_name = i.full_name DESC, t.id
    LIMIT 1
) AS e ON true
ON CONFLICT (full_name) DO UPDATE SET
    url = excluded.url,
    default_branch = excluded.default_branch,
    language = excluded.language,
    license = excluded.license,
    active = excluded.active,
    updated_at = excluded.updated_at
WHERE (r.url, r.default_branch, r.language, r.license, r.active)
    IS DISTINCT FROM
    (excluded.url, excluded.default_branch, excluded.language, excluded.license, excluded.active)
RETURNING (xmax = 0) AS inserted
"""


def repositories_import(*, rows: Iterable[dict[str, Any]], batch_size: int = 1000) -> ImportReport:
    """Validates the rows and upserts the valid ones; returns what happened to each.

    Rows that fail validation are reported (with their line) and skipped; the others are written
    in one transaction, `batch_size` rows per SQL statement. Rows identical to the table are
    left untouched. Raises ValueError if `rows` does (a file that cannot be parsed): nothing is
    written then. The valid rows are held in memory until they are written, as the last row of
    a repository wins wherever it is in the file.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ImportReport()
    latest: dict[str, Values] = {}
    for position, row in enumerate(rows, start=1):
        line = getattr(row, "line", position)
        try:
            values = _validate(row)
        except _RowError as exc:
            report.rejected.append((line, str(exc)))
            continue
        key = values[0].lower()
        if latest.pop(key, None) is not None:
            report.duplicates += 1
        latest[key] = values

    valid = list(latest.values())
    if valid:
        with transaction.atomic():
            for start in range(0, len(valid), batch_size):
                inserted = _upsert(valid[start : start + batch_size])
                report.created += sum(inserted)
                report.updated += len(inserted) - sum(inserted)
    report.unchanged = len(valid) - report.created - report.updated
    return report


def _upsert(batch: list[Values]) -> list[bool]:
    defaults = [
        Repository._meta.get_field(name).get_default()
        for name in ("default_branch", "language", "license", "active")
    ]
    columns = [list(column) for column in zip(*batch, strict=True)]
    sql = _UPSERT.format(table=quoted_table(Repository))
    with connection.cursor() as cursor:
        cursor.execute(sql.strip(), [*defaults, *columns])
        return [inserted for (inserted,) in cursor.fetchall()]
