"""After the soak's load: the drain (until nothing is generating or past its lease) and what the
database holds; the invariants themselves are operations/invariants.py's."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from bench.common import log

# Late beyond this, work counts as stuck: the sweep's deadline and period, the expiry's period.
STUCK_GRACE = timedelta(seconds=120)


def drain(timeout: float) -> dict[str, Any]:
    """Waits until no task is generating and no claim is past its lease (the beat's sweep and
    expiry at work); runs the sweep here once if generation still hangs halfway."""
    from django.utils import timezone

    from core import context
    from reviews.models import Assignment
    from tasks import generation
    from tasks.models import Task, TaskState

    started = time.monotonic()
    swept = None
    while True:
        generating = Task.objects.filter(state=TaskState.GENERATING).count()
        overdue = Assignment.objects.filter(state="active", due_at__lt=timezone.now()).count()
        waited = time.monotonic() - started
        if (not generating and not overdue) or waited > timeout:
            break
        if generating and swept is None and waited > timeout / 2:
            with context.operation(origin="command:bench_soak", actor_label="system"):
                swept = generation.sweep_stuck_candidates()
            log(f"drain: swept directly, {swept} re-queued")
        time.sleep(2)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "still_generating": generating,
        "claims_past_lease": overdue,
        "swept_directly": swept,
    }


RECOVERY_ACTIONS = [
    "candidate.released",
    "candidate.failed",
    "candidate.reset",
    "assignment.expired",
    "assignment.released",
]


def database_counts() -> dict[str, Any]:
    from django.db.models import Count

    from audit.models import AuditEvent
    from reviews.models import Arbitration, Review
    from tasks.models import Candidate, Task

    def by_state(model) -> dict[str, int]:
        rows = model.objects.values_list("state").annotate(n=Count("id")).order_by("state")
        return dict(rows)

    # What the faults and failures cost, as the trail tells it: a release without a reason is a
    # provider error retried; "no answer before the deadline" is a job lost and swept.
    recoveries = (
        AuditEvent.objects.filter(action__in=RECOVERY_ACTIONS)
        .values_list("action", "reason")
        .annotate(n=Count("id"))
        .order_by("action", "reason")
    )
    return {
        "recoveries": {
            f"{action} ({reason})" if reason else action: n for action, reason, n in recoveries
        },
        "tasks": by_state(Task),
        "candidates": by_state(Candidate),
        "reviews": Review.objects.count(),
        "arbitrations": by_state(Arbitration),
        "audit_events": AuditEvent.objects.count(),
    }
