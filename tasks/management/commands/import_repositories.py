from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.context import audit_reason
from tasks.catalogue import read_rows, repositories_import

SHOWN_REJECTIONS = 20


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Import repositories into the catalogue from a .csv, .json or .jsonl file "
        "(idempotent: rows that match the catalogue are left untouched)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a .csv, .json or .jsonl file")
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=1000,
            help="rows per SQL statement (default 1000)",
        )

    def handle(self, *args: object, path: Path, batch_size: int, **options: object) -> None:
        try:
            with audit_reason(f"repository import from {path.name}"):
                report = repositories_import(rows=read_rows(path), batch_size=batch_size)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot import: {exc}") from exc
        self.stdout.write(
            f"created {report.created}, updated {report.updated}, "
            f"unchanged {report.unchanged}, rejected {len(report.rejected)}"
        )
        if report.duplicates:
            self.stdout.write(
                f"{report.duplicates} row(s) superseded by a later row for the same repository"
            )
        for line, reason in report.rejected[:SHOWN_REJECTIONS]:
            self.stdout.write(f"  line {line}: {reason}")
        if len(report.rejected) > SHOWN_REJECTIONS:
            self.stdout.write(f"  ... and {len(report.rejected) - SHOWN_REJECTIONS} more")
