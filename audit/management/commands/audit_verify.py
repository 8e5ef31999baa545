import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import services
from core import context


class Command(BaseCommand):
    help = "Seal pending audit events, then check the hash chain end to end (exit 1 when broken)."

    def handle(self, *args: Any, **options: Any) -> None:
        with context.operation(origin="command:audit_verify", actor_label="system"):
            report = services.audit_seal_and_verify()
        self.stdout.write(json.dumps(report, indent=2))
        if not report["ok"]:
            raise CommandError(
                f"audit chain broken at seal {report['first_broken']['seq']} "
                f"(event {report['first_broken']['event_id']}): {report['first_broken']['reason']}",
                returncode=1,
            )
