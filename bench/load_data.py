"""Bulk data for the load benchmark: copies of template tasks made through the service layer.

A template is built once through the services (a task in review with two ~300-line answers and
its open review slots; a completed one with three reviews). `clone` copies a template's rows
N times in set-based SQL: every copied row keeps the template's values except the foreign keys,
which point at the copies of their parents, and the columns given as SQL overrides. The audit
triggers stay on, so every copied row gets its audit entry exactly as any other write does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from core.sql import quoted_table

CRITERIA_SCORES = {"A": 4, "B": 3}


def diff_of(lines: int, seed: str) -> str:
    """A unified diff of about `lines` lines, like a mid-sized pull request."""
    body = [f"--- a/src/{seed}/module.py", f"+++ b/src/{seed}/module.py"]
    for hunk in range(lines // 12):
        body.append(f"@@ -{hunk * 10 + 1},8 +{hunk * 10 + 1},9 @@ def handler_{hunk}(request):")
        body += [
            f"     value = request.params.get('key_{hunk}')",
            "-    return run(value)",
            f"+    if not ALLOWED_{hunk}.match(value):",
            f"+        raise ValueError('option {hunk} is not allowed: %s' % value)",
            "+    return run(shlex.quote(value))",
            "     # the rest of the handler is unchanged",
            f"     log.debug('handled %s', '{seed}-{hunk}')",
            "     return None",
            "",
        ]
    return "\n".join(body[:lines])


def answer_of(lines: int, seed: str) -> tuple[str, str]:
    diff = diff_of(lines, seed)
    output = (
        "The options reached a shell unquoted; each one is now checked against the allowed "
        f"list and quoted before the call.\n\n```diff\n{diff}\n```\n"
    )
    return output, diff


@dataclass
class Templates:
    campaign: Any
    live_task: Any
    done_task: Any
    history_reviewers: list[Any]


def make_templates(*, campaign: Any, author: Any, repository: Any, reviewers: Sequence[Any]):
    """A task in review (open slots) and a completed one, both through the services."""
    from core.fsm import transition_locked
    from reviews import services as review_services
    from tasks import services as task_services
    from tasks.generation import settle_task
    from tasks.models import Candidate, CandidateState

    tasks = []
    for n in range(2):
        task = task_services.task_create(
            actor=author,
            campaign=campaign,
            repository=repository,
            base_commit="3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
            kind="security_fix",
            scenario={
                "title": "Block command injection in the pip install of model dependencies",
                "description": "Requirements files reach a shell; whitelisted pip options must "
                "keep working.",
                "url": "https://github.com/mlflow/mlflow/pull/1",
            },
            prompt="Fix the command injection in the pip install of model dependencies, "
            "allowing every legitimate whitelisted pip option.",
        )
        with transaction.atomic():
            task_services.task_generate(task=task, actor=author)
            for candidate in Candidate.objects.select_for_update().filter(turn__task=task):
                output, diff = answer_of(300, f"{candidate.slot.label.lower()}{n}")
                # The answers are made here, not by a provider: store them as a job would.
                transition_locked(candidate, "claim", actor=None, token="bench", at=timezone.now())
                transition_locked(
                    candidate,
                    "succeed",
                    actor=None,
                    output=output,
                    diff=diff,
                    content_hash=hashlib.sha256(output.encode()).hexdigest(),
                    usage={},
                )
                assert candidate.state == CandidateState.SUCCEEDED
            settle_task(task.pk)
        tasks.append(
            review_services.task_submit(
                task=task, actor=author, preference=-1, rationale="Slot A quotes every option."
            )
        )
    done, live = tasks  # the first submitted is first in the queue: it takes the reviews
    for reviewer in reviewers[:3]:
        assignment = review_services.assignment_claim_next(reviewer=reviewer)
        assert assignment is not None and assignment.task_id == done.pk
        review_services.review_submit(
            assignment=assignment, actor=reviewer, **review_payload(done, comment_lines=3)
        )
    return Templates(campaign, live, done, list(reviewers))


def review_payload(task: Any, *, comment_lines: int = 3) -> dict[str, Any]:
    from rubrics.models import RubricVersion

    version = RubricVersion.objects.get(pk=task.campaign.rubric_version_id)
    return {
        "scores": [
            {"slot": slot, "criterion": c["key"], "score": score, "comment": "Checked."}
            for slot, score in CRITERIA_SCORES.items()
            for c in version.criteria
        ],
        "preference": -2,
        "rationale": " ".join(["A quotes every option and keeps the whitelist."] * comment_lines),
        "verdict": "approve",
        "comments": "Both compile; A adds the missing test.",
        "time_spent_seconds": 1500,
    }


# ------------------------------------------------------------------- cloning --


def clone(
    model: type[Model],
    *,
    template_ids: Sequence[int],
    copies: int,
    parents: dict[str, str] | None = None,
    overrides: dict[str, str] | None = None,
    map_name: str,
    audit_in_bulk: bool = False,
) -> None:
    """Copies the template rows `copies` times; `map_name` (a temp table g, old_id, new_id)
    records which copy is which, for the children. `parents` maps a foreign-key column to the
    parent's map table; `overrides` maps a column to an SQL expression over `tmpl` (the template
    row) and `m.g` (the copy's number, 1..copies).

    `audit_in_bulk`: the triggers are off for the copy (session_replication_role = replica, so
    foreign keys are not checked either) and the audit entries are written afterwards in one
    statement, one per row with the row as its change: the same rows, several times faster."""
    parents = parents or {}
    overrides = overrides or {}
    table = quoted_table(model)
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    joins, values = [], []
    for column in columns:
        if column in overrides:
            values.append(overrides[column])
        elif column in parents:
            alias = f"p_{column}"
            joins.append(
                f"JOIN {parents[column]} {alias} ON {alias}.g = m.g "
                f"AND {alias}.old_id = tmpl.{connection.ops.quote_name(column)}"
            )
            values.append(f"{alias}.new_id")
        else:
            values.append(f"tmpl.{connection.ops.quote_name(column)}")
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {map_name}")
        cursor.execute(
            f"CREATE TEMP TABLE {map_name} AS SELECT g, t.id AS old_id, "
            f"nextval(pg_get_serial_sequence('{model._meta.db_table}', 'id')) AS new_id "
            f"FROM generate_series(1, %s) g CROSS JOIN "
            f"(SELECT id FROM {table} WHERE id = ANY(%s)) t",
            [copies, list(template_ids)],
        )
        cursor.execute(f"CREATE INDEX ON {map_name} (g, old_id)")
        cursor.execute(f"ANALYZE {map_name}")
        if audit_in_bulk:
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                f"INSERT INTO {table} (id, {quoted}) "
                f"SELECT m.new_id, {', '.join(values)} FROM {map_name} m "
                f"JOIN {table} tmpl ON tmpl.id = m.old_id {' '.join(joins)} ORDER BY m.new_id"
            )
        finally:
            if audit_in_bulk:
                cursor.execute("SET session_replication_role = DEFAULT")
        if audit_in_bulk:
            cursor.execute(
                "INSERT INTO audit_event (origin, actor, action, object_type, object_id, changes) "
                f"SELECT 'command:bench_load', 'bench', %s, %s, m.new_id::text, to_jsonb(t) "
                f"FROM {map_name} m JOIN {table} t ON t.id = m.new_id ORDER BY m.new_id",
                [f"{model._meta.model_name}.created", model._meta.label_lower],
            )


def clone_live_tasks(templates: Templates, copies: int) -> None:
    """`copies` tasks in review, each with its two answers and three open review slots."""
    from reviews.models import ReviewSlot
    from tasks.models import Candidate, Task, TaskSlot, Turn

    task = templates.live_task
    title = "tmpl.scenario_title || ' (' || m.g || ')'"
    clone(
        Task,
        template_ids=[task.pk],
        copies=copies,
        overrides={"scenario_title": title},
        map_name="map_task",
    )
    _clone_children(task, copies, Turn, TaskSlot, Candidate)
    slots = list(ReviewSlot.objects.filter(task=task).values_list("pk", flat=True))
    # Opened in copy order, so the queue hands them out oldest first as it would in production.
    opened = "tmpl.opened_at + m.g * interval '1 millisecond'"
    clone(
        ReviewSlot,
        template_ids=slots,
        copies=copies,
        parents={"task_id": "map_task"},
        overrides={"opened_at": opened},
        map_name="map_reviewslot",
    )


def _clone_children(task: Any, copies: int, turn_model, slot_model, candidate_model, **extra):
    bulk = extra.get("audit_in_bulk", False)
    turns = list(turn_model.objects.filter(task=task).values_list("pk", flat=True))
    slots = list(slot_model.objects.filter(task=task).values_list("pk", flat=True))
    candidates = list(candidate_model.objects.filter(turn__task=task).values_list("pk", flat=True))
    clone(
        turn_model,
        template_ids=turns,
        copies=copies,
        parents={"task_id": "map_task"},
        map_name="map_turn",
        audit_in_bulk=bulk,
    )
    clone(
        slot_model,
        template_ids=slots,
        copies=copies,
        parents={"task_id": "map_task"},
        map_name="map_slot",
        audit_in_bulk=bulk,
    )
    clone(
        candidate_model,
        template_ids=candidates,
        copies=copies,
        parents={"turn_id": "map_turn", "slot_id": "map_slot"},
        overrides=extra.get("candidate_overrides"),
        map_name="map_candidate",
        audit_in_bulk=bulk,
    )


def clone_completed_tasks(
    templates: Templates, copies: int, *, offset: int, audit_in_bulk: bool = False
) -> None:
    """`copies` completed tasks, each with three reviews by distinct reviewers of the pool and
    its outcome (not their work log: payouts are not measured here).

    The answers of these copies are short (their size does not matter to the endpoints measured,
    and a million 300-line answers would only fill the disk)."""
    from reviews.models import Assignment, Outcome, Review, ReviewSlot
    from tasks.models import Candidate, Task, TaskSlot, Turn

    task = templates.done_task
    title = f"tmpl.scenario_title || ' (history ' || (m.g + {offset}) || ')'"
    clone(
        Task,
        template_ids=[task.pk],
        copies=copies,
        overrides={"scenario_title": title},
        map_name="map_task",
        audit_in_bulk=audit_in_bulk,
    )
    short = {"output": "'See the diff.'", "diff": "'--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b'"}
    _clone_children(
        task,
        copies,
        Turn,
        TaskSlot,
        Candidate,
        candidate_overrides=short,
        audit_in_bulk=audit_in_bulk,
    )
    slots = list(ReviewSlot.objects.filter(task=task).values_list("pk", flat=True))
    clone(
        ReviewSlot,
        template_ids=slots,
        copies=copies,
        parents={"task_id": "map_task"},
        map_name="map_reviewslot",
        audit_in_bulk=audit_in_bulk,
    )
    assignments = list(Assignment.objects.filter(task=task).order_by("pk"))
    pool = [r.pk for r in templates.history_reviewers]
    # Reviewer k of copy g is pool[(3 * (g + offset) + k) mod P]: three distinct people per task.
    position = " ".join(f"WHEN {a.pk} THEN {k}" for k, a in enumerate(assignments))
    pick = (
        f"(ARRAY{pool}::bigint[])[1 + ((3 * (m.g + {offset}) + (CASE {{col}} {position} END)) "
        f"% {len(pool)})]"
    )
    clone(
        Assignment,
        template_ids=[a.pk for a in assignments],
        copies=copies,
        parents={"slot_id": "map_reviewslot", "task_id": "map_task"},
        overrides={"reviewer_id": pick.format(col="tmpl.id")},
        map_name="map_assignment",
        audit_in_bulk=audit_in_bulk,
    )
    clone(
        Review,
        template_ids=list(Review.objects.filter(task=task).values_list("pk", flat=True)),
        copies=copies,
        parents={"assignment_id": "map_assignment", "task_id": "map_task"},
        overrides={"reviewer_id": pick.format(col="tmpl.assignment_id")},
        map_name="map_review",
        audit_in_bulk=audit_in_bulk,
    )
    clone(
        Outcome,
        template_ids=list(Outcome.objects.filter(task=task).values_list("pk", flat=True)),
        copies=copies,
        parents={"task_id": "map_task"},
        map_name="map_outcome",
        audit_in_bulk=audit_in_bulk,
    )
