import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from operations.demo import DEMO_TASKS, demo_answer
from tasks.models import Candidate, Task, TaskState
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def test_the_demo_tasks_generate_from_the_shipped_recordings():
    call_command("seed_demo")
    tasks = list(Task.objects.order_by("pk"))
    assert [t.scenario_title for t in tasks] == [spec["scenario"]["title"] for spec in DEMO_TASKS]
    for task, spec in zip(tasks, DEMO_TASKS, strict=True):
        assert generate_inline(task).state == TaskState.DRAFT
        outputs = {
            c.slot.model_version.slug.split("-")[0]: c.output
            for c in Candidate.objects.filter(turn__task=task).select_related("slot__model_version")
        }
        assert outputs == {key: demo_answer(spec, key) for key in ("alpha", "beta")}


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    counts = (Task.objects.count(), AuditEvent.objects.count())
    call_command("seed_demo")
    assert (Task.objects.count(), AuditEvent.objects.count()) == counts


def test_every_demo_answer_holds_a_diff_that_parses():
    from tasks.diffs import extract_diff, parse_diff

    for spec in DEMO_TASKS:
        for key in ("alpha", "beta"):
            assert parse_diff(extract_diff(demo_answer(spec, key)))
