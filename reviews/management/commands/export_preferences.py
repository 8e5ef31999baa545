"""Writes a campaign's preference data set to a file, as the export endpoint streams it."""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviews import export
from tasks.models import Campaign

ENCODERS = {"jsonl": export.jsonl_chunks, "parquet": export.parquet_chunks}


class Command(BaseCommand):
    help = "Export a campaign's completed tasks as preference data (JSON Lines or Parquet)."
    # The checks import the whole URL conf (the API, scipy, the provider SDKs): about 70 MB of
    # resident memory that an export never uses.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("campaign", type=int)
        parser.add_argument("output", type=Path)
        parser.add_argument("--format", choices=sorted(ENCODERS), default=None)
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, campaign: int, output: Path, **options: Any) -> None:
        name = options["format"] or output.suffix.lstrip(".") or "jsonl"
        if name not in ENCODERS:
            raise CommandError(f"Unknown format '{name}'; use --format jsonl or parquet.")
        found = Campaign.objects.filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"No campaign {campaign}.")
        outcomes = export.outcomes_for_export(campaign=found)
        total = outcomes.count()
        progress = _Progress(total, enabled=not options["quiet"])

        def counted(rows: Any) -> Any:
            last_task = None
            for row in rows:
                if row["task"] != last_task:
                    last_task = row["task"]
                    progress.step()
                progress.rows += 1
                yield row

        with output.open("wb") as sink:
            for chunk in ENCODERS[name](counted(export.export_rows(outcomes))):
                sink.write(chunk)
        progress.done()
        self.stdout.write(f"{progress.rows} rows from {total} tasks written to {output}")


class _Progress:
    """A one-line progress bar on stderr (tasks done of total)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.enabled, self.tasks, self.rows = total, enabled, 0, 0

    def step(self) -> None:
        self.tasks += 1
        if self.enabled and (self.tasks % 100 == 0 or self.tasks == self.total):
            share = self.tasks / self.total if self.total else 1
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {self.tasks}/{self.total} tasks, {self.rows} rows")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
