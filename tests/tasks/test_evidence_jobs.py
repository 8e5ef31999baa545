"""Evidence per candidate with the database: queued after generation, stored as validator
results, shown in the task API and recorded in the audit trail; settings through the API."""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from audit.models import AuditEvent
from tasks import jobs, services
from tasks.evidence_services import evidence_collect, sweep_overdue_evidence
from tasks.models import Campaign, Candidate, CandidateState, ValidatorResult
from tests.tasks.evidence_repos import CALC, PYTEST, make_repo, workplace_for
from tests.tasks.factories import RepositoryFactory, make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db

EVIDENCE = {"test_command": PYTEST, "linters": ["ruff"], "timeout_seconds": 60}


def answer(diff: str) -> str:
    return f"Here is the change.\n\n```diff\n{diff}```\n"


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repos")


@pytest.fixture
def workplace(tmp_path):
    return workplace_for(tmp_path / "evidence")


@pytest.fixture
def no_sandbox(workplace):
    """A worker whose every sandbox uid is taken: it can check no change."""
    return replace(workplace, sandbox=replace(workplace.sandbox, uid_count=0))


@pytest.fixture
def generated(live_campaign, fake_models, repo, monkeypatch, django_capture_on_commit_callbacks):
    """A task whose slot answering as gpt-fake-1 adds a function (tests pass), the other breaks
    `add`; returns (task, candidates by model, the evidence jobs queued)."""
    Campaign.objects.filter(pk=live_campaign.pk).update(evidence=EVIDENCE)
    good = repo.diff({"calc.py": CALC + "\n\ndef double(a):\n    return add(a, a)\n"})
    bad = repo.diff({"calc.py": "def add(a, b):\n    return a - b\n"})
    fake_models.answer_with(lambda body: answer(good if body["model"] == "gpt-fake-1" else bad))
    source = RepositoryFactory(source_url=repo.url)
    task = make_task(campaign=live_campaign, repository=source, base_commit=repo.commit)
    queued = []
    monkeypatch.setattr(jobs.generate_candidate_job, "apply_async", lambda **kw: None)
    monkeypatch.setattr(
        jobs.collect_evidence_job, "apply_async", lambda **kw: queued.append(kw["kwargs"])
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.task_generate(task=task, actor=task.author)
        generate_inline(task)
    candidates = {
        c.slot.model_version.model: c
        for c in Candidate.objects.filter(turn__task=task).select_related("slot__model_version")
    }
    return task, candidates, queued


def evidence_of(candidate):
    return {
        r.key: r
        for r in ValidatorResult.objects.filter(candidate=candidate, key__startswith="evidence.")
    }


def test_each_generated_candidate_queues_one_evidence_job_after_commit(generated):
    _, candidates, queued = generated
    assert sorted(q["candidate_id"] for q in queued) == sorted(c.pk for c in candidates.values())


def test_a_campaign_without_evidence_queues_no_job_and_the_job_does_nothing(
    live_campaign, fake_models, monkeypatch, django_capture_on_commit_callbacks, workplace
):
    task = make_task(campaign=live_campaign)
    queued = []
    monkeypatch.setattr(jobs.generate_candidate_job, "apply_async", lambda **kw: None)
    monkeypatch.setattr(
        jobs.collect_evidence_job, "apply_async", lambda **kw: queued.append(kw["kwargs"])
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.task_generate(task=task, actor=task.author)
        generate_inline(task)
    assert queued == []
    candidate = Candidate.objects.filter(turn__task=task).first()
    assert evidence_collect(candidate_id=candidate.pk, workplace=workplace) == "skipped"
    assert evidence_of(candidate) == {}


def test_the_job_stores_the_evidence_once_the_api_shows_it_and_the_trail_records_it(
    api, generated, workplace
):
    task, candidates, _ = generated
    passing, breaking = candidates["gpt-fake-1"], candidates["claude-fake-1"]
    assert evidence_collect(candidate_id=passing.pk, workplace=workplace) == "stored"
    assert evidence_collect(candidate_id=breaking.pk, workplace=workplace) == "stored"

    found = evidence_of(passing)
    assert set(found) == {"evidence.apply", "evidence.ruff", "evidence.tests"}
    assert all(r.severity == "advisory" for r in found.values())
    assert found["evidence.apply"].passed and found["evidence.tests"].passed
    assert found["evidence.tests"].details["counts"] == {"passed": 1}
    assert found["evidence.tests"].details["content_hash"] == passing.content_hash
    broken = evidence_of(breaking)["evidence.tests"]
    assert not broken.passed and broken.message == "Tests fail (1 failed)."

    stored = {r.pk: r.updated_at for r in ValidatorResult.objects.filter(key__startswith="ev")}
    # A redelivered job finds the results of this answer and base commit and runs nothing.
    assert evidence_collect(candidate_id=passing.pk, workplace=workplace) == "skipped"
    assert {
        r.pk: r.updated_at for r in ValidatorResult.objects.filter(key__startswith="ev")
    } == stored

    entries = AuditEvent.objects.filter(
        object_type="tasks.validatorresult", action="candidate.evidence"
    )
    assert sorted(int(e.object_id) for e in entries) == sorted(stored)
    assert {e.reason for e in entries} == {"evidence run"}

    listed = api.as_user(task.author).get(f"/api/v1/tasks/{task.pk}/candidates/").json()
    by_slot = {
        c["slot"]: {v["key"]: v for v in c["validators"] if v["key"].startswith("evidence.")}
        for c in listed
    }
    assert by_slot[passing.slot.label]["evidence.tests"]["passed"] is True
    shown = by_slot[breaking.slot.label]
    assert shown["evidence.tests"]["passed"] is False
    assert shown["evidence.tests"]["details"]["bears_on"] == "correctness"
    assert shown["evidence.ruff"]["details"]["bears_on"] == "maintainability"


def test_a_repository_without_a_source_gets_a_finding_that_says_so(generated, workplace):
    task, candidates, _ = generated
    type(task.repository).objects.filter(pk=task.repository_id).update(source_url="")
    candidate = candidates["gpt-fake-1"]
    assert evidence_collect(candidate_id=candidate.pk, workplace=workplace) == "stored"
    (only,) = evidence_of(candidate).values()
    assert only.key == "evidence.apply" and not only.passed
    assert only.details["stage"] == "source"
    assert "has no source" in only.message


def test_evidence_settings_and_sources_are_checked_by_the_api(api, make_user, live_campaign):
    lead = make_user("lead")
    client = api.as_user(lead)
    base = {
        "name": "With evidence",
        "rubric": "code-change",
        "rubric_version": 1,
        "model_versions": list(live_campaign.model_versions.values_list("slug", flat=True)),
    }
    refused = client.post(
        "/api/v1/campaigns/", {**base, "evidence": {"test_command": "pytest; rm -rf /"}}
    )
    assert refused.status_code == 400
    assert "evidence" in refused.json()["error"]["details"]
    created = client.post("/api/v1/campaigns/", {**base, "evidence": EVIDENCE})
    assert created.status_code == 201, created.json()
    assert created.json()["evidence"] == EVIDENCE
    assert Campaign.objects.get(pk=created.json()["id"]).evidence == EVIDENCE

    repo = {"full_name": "org/with-source", "url": "https://example.org/org/with-source"}
    for bad in ["--upload-pack=touch x", "https://user:secret@example.org/r.git", "relative/p"]:
        response = client.post("/api/v1/repositories/", {**repo, "source_url": bad})
        assert response.status_code == 400
        assert "source_url" in response.json()["error"]["details"]
    response = client.post("/api/v1/repositories/", {**repo, "source_url": "/srv/repos/r"})
    assert response.status_code == 201, response.json()
    assert response.json()["source_url"] == "/srv/repos/r"


def test_a_worker_without_a_sandbox_says_so_and_the_next_run_tries_again(
    generated, workplace, no_sandbox
):
    _, candidates, _ = generated
    candidate = candidates["gpt-fake-1"]
    assert evidence_collect(candidate_id=candidate.pk, workplace=no_sandbox) == "stored"
    (only,) = evidence_of(candidate).values()
    assert not only.passed and only.details["stage"] == "sandbox"
    assert only.message == "This worker cannot run the sandbox: all 0 sandbox uids are in use"
    assert evidence_collect(candidate_id=candidate.pk, workplace=workplace) == "stored"
    found = evidence_of(candidate)
    assert found["evidence.apply"].passed and found["evidence.tests"].passed


def test_a_rerun_campaign_asks_for_the_same_evidence(live_campaign, make_user):
    Campaign.objects.filter(pk=live_campaign.pk).update(evidence=EVIDENCE)
    live_campaign.refresh_from_db()
    rerun = services.campaign_rerun(
        actor=make_user("lead"),
        campaign=live_campaign,
        name="Rerun",
        model_versions=list(live_campaign.model_versions.all()),
    )
    assert rerun.evidence == EVIDENCE


def test_a_broker_that_is_down_when_the_answer_is_stored_fails_nothing(
    live_campaign, fake_models, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    Campaign.objects.filter(pk=live_campaign.pk).update(evidence=EVIDENCE)
    task = make_task(campaign=live_campaign)

    def broker_down(**kwargs):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(jobs.generate_candidate_job, "apply_async", lambda **kw: None)
    monkeypatch.setattr(jobs.collect_evidence_job, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.task_generate(task=task, actor=task.author)
        generate_inline(task)

    candidates = Candidate.objects.filter(turn__task=task)
    assert set(candidates.values_list("state", flat=True)) == {CandidateState.SUCCEEDED}
    assert "evidence not queued" in caplog.text
    # Due at once: the sweep sends the jobs as soon as the broker takes them.
    assert not candidates.filter(evidence_due_at=None).exists()
    assert not candidates.filter(evidence_due_at__gt=timezone.now()).exists()
    queued = []
    monkeypatch.setattr(
        jobs.collect_evidence_job, "apply_async", lambda **kw: queued.append(kw["kwargs"])
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_overdue_evidence() == 2
    assert sorted(q["candidate_id"] for q in queued) == sorted(c.pk for c in candidates)


# ------------------------------------------------------------------ the sweep --


def overdue(*candidates):
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(
        evidence_due_at=timezone.now() - timedelta(seconds=1)
    )


def sweep(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return sweep_overdue_evidence()


def test_evidence_is_due_from_its_dispatch_until_its_results_are_stored(
    generated, workplace, no_sandbox
):
    _, candidates, _ = generated
    passing, breaking = candidates["gpt-fake-1"], candidates["claude-fake-1"]
    for candidate in (passing, breaking):
        candidate.refresh_from_db()
        assert candidate.evidence_due_at > timezone.now() + timedelta(seconds=800)
        assert candidate.evidence_attempts == 0

    assert evidence_collect(candidate_id=passing.pk, workplace=workplace) == "stored"
    assert evidence_collect(candidate_id=breaking.pk, workplace=no_sandbox) == "stored"
    passing.refresh_from_db()
    breaking.refresh_from_db()
    assert (passing.evidence_due_at, passing.evidence_attempts) == (None, 1)
    # No sandbox says nothing about the change: still due, for the sweep to try again.
    assert breaking.evidence_due_at is not None and breaking.evidence_attempts == 1


def test_the_sweep_sends_overdue_evidence_again_and_parks_it_after_the_last_attempt(
    generated, workplace, no_sandbox, settings, django_capture_on_commit_callbacks
):
    settings.EVIDENCE_MAX_ATTEMPTS = 2
    _, candidates, queued = generated
    candidate = candidates["gpt-fake-1"]
    queued.clear()
    assert sweep(django_capture_on_commit_callbacks) == 0  # nothing is overdue yet

    overdue(candidate)  # the first job was lost with its worker
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert queued == [{"candidate_id": candidate.pk}]
    assert evidence_collect(candidate_id=candidate.pk, workplace=no_sandbox) == "stored"
    overdue(candidate)
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert evidence_collect(candidate_id=candidate.pk, workplace=no_sandbox) == "stored"
    overdue(candidate)
    queued.clear()

    assert sweep(django_capture_on_commit_callbacks) == 0
    assert queued == []
    candidate.refresh_from_db()
    assert (candidate.evidence_due_at, candidate.evidence_attempts) == (None, 2)
    (only,) = evidence_of(candidate).values()
    assert not only.passed and only.details["stage"] == "attempts"
    assert only.message == (
        "No evidence after 2 attempts. The last said: This worker cannot run the sandbox: "
        "all 0 sandbox uids are in use"
    )
    # A redelivered message of the lost first job runs nothing either.
    assert evidence_collect(candidate_id=candidate.pk, workplace=workplace) == "skipped"
    assert sweep(django_capture_on_commit_callbacks) == 0


def test_a_job_delivered_past_the_last_attempt_parks_the_evidence_without_running(
    generated, workplace, settings
):
    settings.EVIDENCE_MAX_ATTEMPTS = 1
    _, candidates, _ = generated
    candidate = candidates["gpt-fake-1"]
    Candidate.objects.filter(pk=candidate.pk).update(evidence_attempts=1)
    assert evidence_collect(candidate_id=candidate.pk, workplace=workplace) == "parked"
    (only,) = evidence_of(candidate).values()
    assert only.message == "No evidence after 1 attempts." and only.details["stage"] == "attempts"


def test_the_sweep_lets_go_of_evidence_a_campaign_no_longer_asks_for(
    generated, django_capture_on_commit_callbacks
):
    task, candidates, queued = generated
    Campaign.objects.filter(pk=task.campaign_id).update(evidence={})
    overdue(*candidates.values())
    queued.clear()
    assert sweep(django_capture_on_commit_callbacks) == 0
    assert queued == []
    assert not Candidate.objects.filter(turn__task=task).exclude(evidence_due_at=None).exists()
