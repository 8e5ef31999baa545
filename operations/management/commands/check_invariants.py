import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import context
from operations import invariants


class Command(BaseCommand):
    help = (
        "Check the whole database's invariants (candidates exactly once, closed rounds with "
        "exactly their reviews, every transition in the trail, the hash chain, no work stuck); "
        "exit 1 when one fails. For after an incident or a restore."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=None,
            help="how late work may be before it counts as stuck "
            "(default: twice GENERATION_STUCK_AFTER_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        grace = options["grace_seconds"]
        if grace is None:  # 0 is a grace the operator may ask for
            grace = 2 * settings.GENERATION_STUCK_AFTER_SECONDS
        with context.operation(origin="command:check_invariants", actor_label="system"):
            checks = invariants.check_all(grace=timedelta(seconds=grace))
        self.stdout.write(json.dumps([check.as_dict() for check in checks], indent=2, default=str))
        failed = [check.name for check in checks if not check.ok]
        if failed:
            raise CommandError(f"invariants violated: {', '.join(failed)}", returncode=1)
