"""Evidence end to end: the API, the broker, a real worker generating and then sandboxing."""

import pytest

from audit.models import AuditEvent
from tasks.models import Campaign, Candidate, TaskState, ValidatorResult
from tests.accounts.factories import UserFactory
from tests.harness.processes import wait_for
from tests.harness.suite import on_test_database
from tests.harness.workers import Beat, Worker
from tests.tasks.evidence_repos import CALC, PYTEST, make_repo
from tests.tasks.factories import GOOD_PROMPT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def task_asking_for_evidence(api, campaign, fake_models, tmp_path):
    """A task in a campaign that asks for evidence, from a repository with a source: the slot
    answering as gpt-fake-1 adds a function (tests pass), the other breaks `add`."""
    repo = make_repo(tmp_path / "repos")
    good = repo.diff({"calc.py": CALC + "\n\ndef double(a):\n    return add(a, a)\n"})
    bad = repo.diff({"calc.py": "def add(a, b):\n    return a - b\n"})
    fake_models.answer_with(
        lambda body: f"```diff\n{good if body['model'] == 'gpt-fake-1' else bad}```\n"
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        evidence={"test_command": PYTEST, "linters": ["ruff"], "timeout_seconds": 60}
    )
    lead, author = UserFactory(roles=["lead"]), UserFactory(roles=["author"])
    repository = api.as_user(lead).post(
        "/api/v1/repositories/",
        {"full_name": "org/calc", "url": "https://example.org/org/calc", "source_url": repo.url},
    )
    assert repository.status_code == 201, repository.json()
    client = api.as_user(author)
    created = client.post(
        "/api/v1/tasks/",
        {
            "campaign": campaign.pk,
            "repository": repository.json()["id"],
            "base_commit": repo.commit,
            "kind": "feature",
            "scenario": {"title": "Add double", "description": "A helper over add."},
            "prompt": GOOD_PROMPT,
        },
        format="json",
    )
    return client, created.json()["id"]


def test_a_worker_generates_then_tests_each_candidate_in_the_sandbox(
    api, live_campaign, fake_models, tmp_path
):
    client, task_id = task_asking_for_evidence(api, live_campaign, fake_models, tmp_path)
    worker = Worker(env=on_test_database({"EVIDENCE_DIR": str(tmp_path / "evidence")})).start()
    try:
        assert client.post(f"/api/v1/tasks/{task_id}/generate/").status_code == 202
        wait_for(
            lambda: (
                ValidatorResult.objects.filter(task_id=task_id, key="evidence.tests").count() == 2
            ),
            timeout=120,
            message="evidence for both candidates",
        )
    finally:
        worker.stop()
    task = client.get(f"/api/v1/tasks/{task_id}/").json()
    assert task["state"] == TaskState.DRAFT
    candidates = client.get(f"/api/v1/tasks/{task_id}/candidates/").json()
    outcomes = {}
    for candidate in candidates:
        evidence = {v["key"]: v for v in candidate["validators"] if v["key"].startswith("evidence")}
        assert set(evidence) == {"evidence.apply", "evidence.ruff", "evidence.tests"}
        assert evidence["evidence.apply"]["passed"] is True
        outcomes[candidate["output"].count("a - b")] = evidence["evidence.tests"]
    assert outcomes[0]["passed"] is True and outcomes[0]["details"]["counts"] == {"passed": 1}
    assert outcomes[1]["passed"] is False and outcomes[1]["details"]["counts"] == {"failed": 1}
    recorded = AuditEvent.objects.filter(
        object_type="tasks.validatorresult", action="candidate.evidence"
    )
    assert recorded.count() == 6
    assert {e.origin for e in recorded} == {"job:tasks.collect_evidence"}
    assert not Candidate.objects.filter(turn__task_id=task_id).exclude(evidence_due_at=None)


def test_evidence_no_sandbox_could_run_is_tried_again_by_the_sweep_then_parked(
    api, live_campaign, fake_models, tmp_path
):
    client, task_id = task_asking_for_evidence(api, live_campaign, fake_models, tmp_path)
    env = {
        "EVIDENCE_DIR": str(tmp_path / "evidence"),
        "EVIDENCE_SANDBOX_UIDS": "0",  # a worker that can run no sandbox
        "EVIDENCE_STUCK_AFTER_SECONDS": "1",
        "EVIDENCE_SWEEP_EVERY_SECONDS": "1",
        "EVIDENCE_MAX_ATTEMPTS": "2",
    }
    parked = ValidatorResult.objects.filter(
        task_id=task_id, key="evidence.apply", details__stage="attempts"
    )
    worker = Worker(env=on_test_database(env)).start()
    beat = Beat(tmp_path, on_test_database(env)).start()
    try:
        assert client.post(f"/api/v1/tasks/{task_id}/generate/").status_code == 202
        wait_for(lambda: parked.count() == 2, timeout=120, message="evidence parked")
    finally:
        beat.stop()
        worker.stop()
    assert {r.message for r in parked} == {
        "No evidence after 2 attempts. The last said: This worker cannot run the sandbox: "
        "all 0 sandbox uids are in use"
    }
    candidates = Candidate.objects.filter(turn__task_id=task_id)
    assert set(candidates.values_list("evidence_attempts", "evidence_due_at")) == {(2, None)}
    runs = AuditEvent.objects.filter(
        object_type="tasks.validatorresult", action="candidate.evidence"
    )
    assert {e.origin for e in runs} == {
        "job:tasks.collect_evidence",
        "job:tasks.sweep_overdue_evidence",
    }
