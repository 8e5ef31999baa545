"""A campaign's token budget stops generation with a clear error instead of overspending."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import generation, services, spend
from tasks.models import Campaign, Candidate, CandidateState, TaskState, usage_tokens
from tests.tasks.factories import make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def _set_budget(campaign, tokens):
    Campaign.objects.filter(pk=campaign.pk).update(token_budget=tokens)


def test_a_call_that_could_pass_the_budget_is_never_sent(live_campaign, fake_models):
    # The openai version may answer up to 4,096 tokens, the anthropic one 2,048: with 3,000
    # tokens only the second call's reservation (max_tokens plus the prompt's bytes) fits.
    _set_budget(live_campaign, 3000)
    live_campaign.model_versions.filter(provider="openai").update(parameters={"max_tokens": 4096})
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)

    task = generate_inline(task)

    candidates = Candidate.objects.filter(turn__task=task).select_related("slot__model_version")
    by_provider = {c.slot.model_version.provider: c for c in candidates}
    refused, answered = by_provider["openai"], by_provider["anthropic"]
    assert refused.state == CandidateState.FAILED and refused.attempts == 0
    assert "token budget would be exceeded" in refused.error
    assert [r["model"] for r in fake_models.requests] == ["claude-fake-1"]  # never sent
    assert answered.state == CandidateState.SUCCEEDED
    assert answered.token_charge == usage_tokens(answered.usage) > 0
    assert task.state == TaskState.GENERATION_FAILED
    assert spend.tokens_spent(live_campaign.pk) == answered.token_charge


def test_running_calls_hold_their_reservation(live_campaign, fake_models):
    _set_budget(live_campaign, 10_000)
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    first, second = generation.next_candidates(task)
    # As if another worker's call were in flight with most of the budget reserved.
    Candidate.objects.filter(pk=first).update(state=CandidateState.RUNNING, token_charge=8_000)

    assert generation.run_candidate(second) == "over_budget"
    assert fake_models.requests == []
    assert "8000 of 10000 tokens are spent or reserved" in Candidate.objects.get(pk=second).error


def test_generation_is_refused_with_409_once_the_budget_is_spent(api, live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    task = generate_inline(task)
    spent = spend.tokens_spent(live_campaign.pk)
    assert spent > 0
    _set_budget(live_campaign, spent)
    services.turn_add(task=task, actor=task.author, prompt="Now add a test for the empty case.")

    response = api.as_user(task.author).post(f"/api/v1/tasks/{task.pk}/generate/")

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert f"{spent} of its {spent}-token budget" in error["message"]
    task.refresh_from_db()
    assert task.state == TaskState.DRAFT
    assert Candidate.objects.filter(turn__task=task).count() == 2  # nothing queued


def _claim_queries(campaign):
    task = make_task(campaign=campaign)
    services.task_generate(task=task, actor=task.author)
    candidate_id = generation.next_candidates(task)[0]
    with CaptureQueriesContext(connection) as captured:
        generation.run_candidate(candidate_id)
    return [q["sql"] for q in captured.captured_queries]


def _locks_campaign(sql):
    return sql.startswith('SELECT "tasks_campaign"') and "FOR UPDATE" in sql


@pytest.mark.parametrize("budget", [None, 1_000_000])
def test_only_a_campaign_with_a_budget_pays_for_the_check(live_campaign, budget):
    _set_budget(live_campaign, budget)
    queries = _claim_queries(live_campaign)
    checked = any(_locks_campaign(q) for q in queries) and any("SUM(" in q for q in queries)
    assert checked == (budget is not None)


def test_leads_see_the_budget_and_what_is_spent(api, make_user, live_campaign):
    _set_budget(live_campaign, 50_000)
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)

    body = api.as_user(make_user("lead")).get(f"/api/v1/campaigns/{live_campaign.pk}/").json()

    assert body["token_budget"] == 50_000
    assert body["tokens_spent"] == spend.tokens_spent(live_campaign.pk) > 0


def test_a_budget_must_be_positive(api, make_user, live_campaign):
    lead = make_user("lead")
    body = {
        "name": "Tight",
        "rubric": live_campaign.rubric_version.rubric.slug,
        "rubric_version": live_campaign.rubric_version.number,
        "model_versions": [mv.slug for mv in live_campaign.model_versions.all()],
        "token_budget": 0,
    }
    response = api.as_user(lead).post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400
    assert "token_budget" in response.json()["error"]["details"]
