"""Invariants of the whole database: what must hold however the service was used, or failed.

Run after a soak (bench/bench_soak.py) or after an incident. Each check reads every row it is
about and returns a `Check`: how many things it looked at, how many violate the invariant, a few
samples, and notes (facts worth reporting that break nothing).

- candidates: every (turn, model slot) has at most one candidate; every task past submit has a
  stored answer for every turn and slot; every stored answer was stored exactly once (one
  `candidate.generated` entry in the trail).
- review rounds: a round that has closed has exactly the campaign's number of reviews, never
  more; no round ever has more; no reviewer reviews a task twice.
- transitions: the audit trail holds every state change of every state machine: per object, the
  `state` changes it records start at the initial state, chain without a gap (each starts where
  the previous ended), follow declared transitions only, and end at the state the row holds now.
- audit chain: the hash chain verifies end to end after sealing what is pending.
- stuck work: nothing waits without a path forward (a candidate whose job is overdue in a
  generating task, an assignment past its lease, a round that should have closed, a task in
  arbitration without an open arbitration).
"""

# ruff: noqa: S608  (the SQL below interpolates table names only, never input)
from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django_fsm import FSMField

from audit import services as audit_services
from core.fsm import action_of
from core.sql import quoted_table
from reviews.models import Arbitration, Assignment, Review, ReviewSlot
from tasks.models import Campaign, Candidate, Task, TaskSlot, TaskState, Turn

SAMPLES = 5
# States a task reaches only through submit: its candidates were all stored by then.
PAST_SUBMIT = [
    TaskState.IN_REVIEW,
    TaskState.CHANGES_REQUESTED,
    TaskState.IN_ARBITRATION,
    TaskState.COMPLETED,
    TaskState.REJECTED,
]
# The round the task is in has closed when the task is in one of these states.
ROUND_CLOSED = [
    TaskState.CHANGES_REQUESTED,
    TaskState.IN_ARBITRATION,
    TaskState.COMPLETED,
    TaskState.REJECTED,
]


@dataclass
class Check:
    name: str
    checked: int = 0
    violations: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def violate(self, kind: str, sample: str, n: int = 1) -> None:
        self.violations += n
        self.counts[kind] = self.counts.get(kind, 0) + n
        if len(self.samples) < SAMPLES:
            self.samples.append(f"{kind}: {sample}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.violations,
            "counts": self.counts,
            "samples": self.samples,
            "notes": self.notes,
        }


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


# ------------------------------------------------------------------- candidates --


def check_candidates() -> Check:
    """No candidate twice for one (turn, slot), none missing past submit, each stored once."""
    check = Check("candidates exactly once")
    candidate, turn, slot, task = (quoted_table(m) for m in (Candidate, Turn, TaskSlot, Task))
    check.checked = Candidate.objects.count()
    for turn_id, slot_id, n in _rows(
        f"SELECT turn_id, slot_id, count(*) FROM {candidate} GROUP BY 1, 2 HAVING count(*) > 1"
    ):
        check.violate("duplicate candidate", f"turn {turn_id} slot {slot_id}: {n}", n - 1)
    for task_id, missing in _rows(
        f"""SELECT t.id, count(*) FROM {task} t
            JOIN {turn} u ON u.task_id = t.id
            JOIN {slot} s ON s.task_id = t.id
            WHERE t.state = ANY(%s) AND NOT EXISTS (
                SELECT 1 FROM {candidate} c
                WHERE c.turn_id = u.id AND c.slot_id = s.id AND c.state = 'succeeded')
            GROUP BY t.id""",
        [list(PAST_SUBMIT)],
    ):
        check.violate("answer missing past submit", f"task {task_id}: {missing}", missing)
    for candidate_id, state, stored in _rows(
        f"""SELECT c.id, c.state, count(e.id) FROM {candidate} c
            LEFT JOIN audit_event e ON e.object_type = %s
                AND e.object_id = c.id::text AND e.action = %s
            GROUP BY c.id, c.state
            HAVING count(e.id) <> CASE WHEN c.state = 'succeeded' THEN 1 ELSE 0 END""",
        [Candidate._meta.label_lower, action_of(Candidate, "succeed")],
    ):
        kind = "answer stored twice" if stored > 1 else "answer stored without its entry"
        if state != "succeeded":
            kind = "entry of an answer that is not stored"
        check.violate(kind, f"candidate {candidate_id} ({state}): {stored} entries")
    check.notes["tasks past submit"] = Task.objects.filter(state__in=PAST_SUBMIT).count()
    return check


# ------------------------------------------------------------------- review rounds --


def check_review_rounds() -> Check:
    """Closed rounds have exactly their reviews; no round more; no reviewer twice on a task."""
    check = Check("closed rounds have exactly their reviews")
    slot, review, task, campaign = (quoted_table(m) for m in (ReviewSlot, Review, Task, Campaign))
    rounds = _rows(
        f"""SELECT r.task_id, r.round, t.round, t.state, c.reviewers_per_task,
                (SELECT count(*) FROM {review} v WHERE v.task_id = r.task_id AND v.round = r.round)
            FROM (SELECT DISTINCT task_id, round FROM {slot}) r
            JOIN {task} t ON t.id = r.task_id
            JOIN {campaign} c ON c.id = t.campaign_id"""
    )
    closed = 0
    for task_id, number, task_round, state, required, reviews in rounds:
        check.checked += 1
        where = f"task {task_id} round {number}: {reviews} reviews of {required}"
        if number < task_round or state in ROUND_CLOSED:
            closed += 1
            if reviews != required:
                check.violate("closed round without its reviews", where)
        elif reviews > required:
            check.violate("open round with too many reviews", where)
    for task_id, reviewer_id, n in _rows(
        f"SELECT task_id, reviewer_id, count(*) FROM {review} GROUP BY 1, 2 HAVING count(*) > 1"
    ):
        check.violate("reviewer twice on a task", f"task {task_id} reviewer {reviewer_id}: {n}")
    check.notes["closed rounds"] = closed
    check.notes["reviews"] = Review.objects.count()
    return check


# ------------------------------------------------------------------- transitions --


def state_machines() -> list[type[Model]]:
    """Every model whose `state` is a django-fsm field."""
    found = []
    for model in apps.get_models():
        with contextlib.suppress(FieldDoesNotExist):
            if isinstance(model._meta.get_field("state"), FSMField):
                found.append(model)
    return found


def declared_transitions(model: type[Model]) -> set[tuple[str, str]]:
    """(source, target) pairs the model declares; "*" and "+" sources are expanded."""
    state = model._meta.get_field("state")
    assert isinstance(state, FSMField)
    values = [value for value, _ in state.choices or []]
    pairs = set()
    for t in state.get_all_transitions(model):
        sources = values if t.source in ("*", "+") else [t.source]
        pairs.update((s, t.target) for s in sources if not (t.source == "+" and s == t.target))
    return pairs


def check_transitions_audited() -> Check:
    """Per object, the trail's state changes chain from the initial state to the current one."""
    check = Check("every transition has its audit entry")
    orphans = 0
    for model in state_machines():
        kind = model._meta.label_lower
        declared = declared_transitions(model)
        initial = model._meta.get_field("state").default
        current = dict(model._default_manager.values_list("pk", "state"))
        seen: dict[str, str | None] = {}
        for object_id, event_id, before, after in _rows(
            """SELECT object_id, id, changes -> 'state' ->> 0, changes -> 'state' ->> 1
               FROM audit_event WHERE object_type = %s AND changes ? 'state'
               ORDER BY object_id, id""",
            [kind],
        ):
            where = f"{kind} {object_id} at entry {event_id}: {before} -> {after}"
            if object_id not in seen:
                if before is not None:
                    check.violate("first entry is not the creation", where)
                elif after != initial:
                    check.violate("created past its initial state", where)
            elif before != seen[object_id]:
                check.violate(
                    "transition without its entry", f"{where}, last was {seen[object_id]}"
                )
            if before is not None and after is not None:
                check.checked += 1
                if (before, after) not in declared:
                    check.violate("undeclared transition", where)
            seen[object_id] = after
        for pk, state in current.items():
            last = seen.pop(str(pk), "no entry")
            if last != state:
                check.violate(
                    "latest transition without its entry", f"{kind} {pk}: {last} / {state}"
                )
        # Rows gone without a delete entry: only a TRUNCATE does that (the test suite's flush).
        orphans += sum(1 for last in seen.values() if last is not None)
    check.notes["entries of rows that no longer exist"] = orphans
    return check


# ------------------------------------------------------------------- audit chain --


def check_audit_chain(*, seal: bool = True) -> Check:
    """Seals what is pending (as the beat job would), then verifies the hash chain end to end."""
    check = Check("audit hash chain verifies")
    report = audit_services.audit_seal_and_verify() if seal else audit_services.audit_verify()
    check.checked = report["checked"]
    if not report["ok"]:
        broken = report["first_broken"]
        check.violate(
            "chain broken", f"seal {broken['seq']} event {broken['event_id']}: {broken['message']}"
        )
    check.notes["unsealed"] = report["unsealed"]
    return check


# ------------------------------------------------------------------- stuck work --


def check_no_stuck_work(*, grace: timedelta, now: datetime | None = None) -> Check:
    """Nothing waits without a path forward. `grace`: how late a job or the periodic jobs (the
    sweep, the expiry) may be before their work counts as stuck."""
    check = Check("no work stuck")
    before = (now or timezone.now()) - grace
    generating = Task.objects.filter(state=TaskState.GENERATING)
    candidates = Candidate.objects.filter(turn__task__in=generating)
    check.checked += generating.count() + candidates.count()
    for candidate in candidates.filter(state="running", claimed_at__lt=before):
        check.violate(
            "running with no live job", f"candidate {candidate.pk} since {candidate.claimed_at}"
        )
    for candidate in candidates.filter(state="pending").select_related("turn"):
        due = candidate.dispatched_at is None or candidate.dispatched_at < before
        waits = Candidate.objects.filter(
            slot_id=candidate.slot_id, turn__index__lt=candidate.turn.index
        ).exclude(state="succeeded")
        if due and candidate.updated_at < before and not waits.exists():
            check.violate("pending and never sent", f"candidate {candidate.pk}")
    for task in generating.exclude(turns__candidates__state__in=["pending", "running"]):
        check.violate("generating with nothing to generate", f"task {task.pk}")
    evidence_due = Candidate.objects.exclude(evidence_due_at=None)
    check.checked += evidence_due.count()
    for candidate in evidence_due.filter(evidence_due_at__lt=before):
        check.violate(
            "evidence overdue", f"candidate {candidate.pk} due {candidate.evidence_due_at}"
        )
    leases = Assignment.objects.filter(state="active")
    check.checked += leases.count()
    for assignment in leases.filter(due_at__lt=before):
        check.violate(
            "claim kept past its lease", f"assignment {assignment.pk} due {assignment.due_at}"
        )
    _check_rounds_in_progress(check)
    arbitrating = Task.objects.filter(state=TaskState.IN_ARBITRATION)
    check.checked += arbitrating.count()
    for task in arbitrating:
        if not Arbitration.objects.filter(
            task=task, round=task.round, state__in=["open", "claimed"]
        ).exists():
            check.violate("in arbitration without an open arbitration", f"task {task.pk}")
    check.notes["tasks generating"] = generating.count()
    check.notes["arbitrations claimed, not decided"] = Arbitration.objects.filter(
        state="claimed"
    ).count()
    return check


def _check_rounds_in_progress(check: Check) -> None:
    slots_by_task: dict[int, list[str]] = defaultdict(list)
    in_review = Task.objects.filter(state=TaskState.IN_REVIEW).select_related("campaign")
    required = {task.pk: (task.round, task.campaign.reviewers_per_task) for task in in_review}
    check.checked += len(required)
    for task_id, number, state in ReviewSlot.objects.filter(task__in=in_review).values_list(
        "task_id", "round", "state"
    ):
        if number == required[task_id][0]:
            slots_by_task[task_id].append(state)
    for task_id, (number, reviewers) in required.items():
        states = slots_by_task.get(task_id, [])
        where = f"task {task_id} round {number}: slots {sorted(states)}"
        if len(states) != reviewers:
            check.violate("round without its slots", where)
        elif all(state == "filled" for state in states):
            check.violate("round filled but not closed", where)


def check_all(*, grace: timedelta) -> list[Check]:
    return [
        check_candidates(),
        check_review_rounds(),
        check_transitions_audited(),
        check_audit_chain(),
        check_no_stuck_work(grace=grace),
    ]
