"""The soak's invariant checks (operations/invariants.py): each catches its violation, none fires on a
clean world. The world: a task completed by consensus, one resolved by an arbiter, one in review
with one review in, one generated and not submitted."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import services as audit_services
from audit.models import AuditEvent, AuditSeal
from core import context
from core.fsm import apply_transition
from operations import invariants
from reviews import services as review_services
from reviews.models import Assignment, AssignmentState, Review
from tasks import services as task_services
from tasks.models import Candidate, TaskState
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, score_sheet, task_in_review
from tests.tasks.factories import make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db
GRACE = timedelta(minutes=5)


def review_round(task, preferences):
    for preference in preferences:
        reviewer = UserFactory(roles=["reviewer"])
        assignment = review_services.assignment_claim_next(reviewer=reviewer)
        assert assignment.task_id == task.pk
        review_services.review_submit(
            assignment=assignment, actor=reviewer, **review_body(task, preference=preference)
        )
    task.refresh_from_db()
    return task


@pytest.fixture
def world(live_campaign):
    completed = review_round(task_in_review(live_campaign), [-2, -2, -1])
    assert completed.state == TaskState.COMPLETED
    arbitrated = review_round(task_in_review(live_campaign), [-2, 2, -1])
    assert arbitrated.state == TaskState.IN_ARBITRATION
    review_services.arbitration_resolve(
        arbitration=arbitrated.arbitrations.get(),
        actor=UserFactory(roles=["arbiter"]),
        preference=-1,
        scores=score_sheet(arbitrated),
        rationale="A blocks the injection; B misses an option.",
    )
    in_review = review_round(task_in_review(live_campaign), [-2])
    draft = make_task(campaign=live_campaign)
    task_services.task_generate(task=draft, actor=draft.author)
    generate_inline(draft)
    return {"completed": completed, "in_review": in_review, "draft": draft}


def failing(check):
    assert not check.ok
    return check.counts


def without_triggers(sql, params):
    """Raw SQL with every trigger off, as someone with the database's superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_a_clean_world_passes_every_check(world):
    checks = invariants.check_all(grace=GRACE)
    assert [c.name for c in checks if not c.ok] == [], [c.as_dict() for c in checks]
    by_name = {c.name: c for c in checks}
    assert by_name["candidates exactly once"].checked == 8
    assert by_name["closed rounds have exactly their reviews"].notes["closed rounds"] == 2
    assert by_name["every transition has its audit entry"].checked > 30
    assert by_name["audit hash chain verifies"].notes["unsealed"] == 0


def test_a_duplicated_candidate_is_caught(world):
    original = Candidate.objects.filter(turn__task=world["completed"]).first()
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER refuses pending FK checks
        cursor.execute(
            "ALTER TABLE tasks_candidate DROP CONSTRAINT IF EXISTS candidate_turn_slot_unique"
        )
    Candidate.objects.create(turn=original.turn, slot=original.slot)
    assert failing(invariants.check_candidates()) == {"duplicate candidate": 1}


def test_an_answer_stored_twice_is_caught(world):
    candidate = Candidate.objects.filter(turn__task=world["completed"]).first()
    with context.audit_action(
        "candidate.generated", object_type="tasks.candidate", object_id=candidate.pk
    ):
        Candidate.objects.filter(pk=candidate.pk).update(output="a second answer")
    assert failing(invariants.check_candidates()) == {"answer stored twice": 1}


def test_a_missing_answer_past_submit_is_caught(world):
    task = world["in_review"]
    # The services refuse a turn past draft: as if one had been written around them.
    task.turns.create(index=2, prompt="A follow-up nobody generated.")
    assert failing(invariants.check_candidates()) == {"answer missing past submit": 2}


def test_a_round_with_one_review_too_many_is_caught(world):
    task = world["completed"]
    extra = UserFactory(roles=["reviewer"])
    slot = task.review_slots.first()
    now = timezone.now()
    assignment = Assignment.objects.create(
        slot=slot,
        task=task,
        round=1,
        reviewer=extra,
        state=AssignmentState.EXPIRED,  # outside the one-per-slot constraint
        claimed_at=now,
        due_at=now,
    )
    Review.objects.create(
        assignment=assignment,
        task=task,
        round=1,
        reviewer=extra,
        rubric_version=task.campaign.rubric_version,
        scores=score_sheet(task),
        preference=-2,
        rationale="One too many.",
        verdict="approve",
    )
    assert failing(invariants.check_review_rounds()) == {"closed round without its reviews": 1}


def test_a_transition_whose_audit_entry_was_deleted_is_caught(world):
    task = world["completed"]
    entry = AuditEvent.objects.get(
        object_type="tasks.task", object_id=str(task.pk), action="task.submitted"
    )
    without_triggers("DELETE FROM audit_event WHERE id = %s", [entry.pk])
    assert failing(invariants.check_transitions_audited()) == {"transition without its entry": 1}


def test_the_latest_transition_without_its_entry_is_caught(world):
    task = world["completed"]
    entry = AuditEvent.objects.filter(object_type="tasks.task", object_id=str(task.pk)).last()
    assert entry.action == "task.completed"
    without_triggers("DELETE FROM audit_event WHERE id = %s", [entry.pk])
    assert failing(invariants.check_transitions_audited()) == {
        "latest transition without its entry": 1
    }


def test_a_tampered_hash_is_caught(world):
    audit_services.audit_seal_all()
    seal = AuditSeal.objects.order_by("seq")[AuditSeal.objects.count() // 2]
    without_triggers("UPDATE audit_seal SET hash = %s WHERE seq = %s", ["0" * 64, seal.seq])
    assert failing(invariants.check_audit_chain()) == {"chain broken": 1}


def test_work_left_running_by_a_lost_job_is_caught(world):
    task = make_task(campaign=world["draft"].campaign)
    task_services.task_generate(task=task, actor=task.author)
    lost = Candidate.objects.filter(turn__task=task).first()
    at = timezone.now() - 2 * GRACE
    apply_transition(lost, "claim", actor=None, token="lost", at=at)
    assert failing(invariants.check_no_stuck_work(grace=GRACE)) == {"running with no live job": 1}


def test_evidence_left_overdue_is_caught(world):
    candidate = Candidate.objects.filter(turn__task=world["completed"]).first()
    Candidate.objects.filter(pk=candidate.pk).update(evidence_due_at=timezone.now() - 2 * GRACE)
    assert failing(invariants.check_no_stuck_work(grace=GRACE)) == {"evidence overdue": 1}


def test_the_command_reports_every_check_and_fails_on_a_violation(world):
    out = io.StringIO()
    call_command("check_invariants", stdout=out)
    assert {c["name"] for c in json.loads(out.getvalue())} == {
        c.name for c in invariants.check_all(grace=GRACE)
    }
    world["in_review"].turns.create(index=2, prompt="A follow-up nobody generated.")
    with pytest.raises(CommandError, match="candidates"):
        call_command("check_invariants", stdout=io.StringIO())


def test_the_command_takes_a_grace_of_zero(world):
    task = make_task(campaign=world["draft"].campaign)
    task_services.task_generate(task=task, actor=task.author)
    running = Candidate.objects.filter(turn__task=task).first()
    apply_transition(running, "claim", actor=None, token="job", at=timezone.now())
    call_command("check_invariants", stdout=io.StringIO())  # the default grace: not late yet
    with pytest.raises(CommandError, match="no work stuck"):
        call_command("check_invariants", "--grace-seconds", "0", stdout=io.StringIO())
