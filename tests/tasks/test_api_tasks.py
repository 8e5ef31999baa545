import pytest

from tasks import services
from tasks.models import Task, TaskState
from tests.accounts.factories import UserFactory
from tests.tasks.factories import GOOD_RATIONALE, RepositoryFactory, make_task
from tests.tasks.test_services_tasks import generate_inline

pytestmark = pytest.mark.django_db


def new_task_body(target_campaign, **overrides):
    return {
        "campaign": target_campaign.pk,
        "repository": RepositoryFactory().pk,
        "base_commit": "3F2A9C1D4E5B6A7980C1D2E3F4A5B6C7D8E9F0A1",
        "kind": "refactor",
        "scenario": {
            "title": "Reorganise execution metadata",
            "description": "Clearer, same behaviour.",
            "url": "https://github.com/org/project/pull/1",
        },
        "prompt": "Reorganise how the system stores execution metadata without changing behaviour.",
        **overrides,
    }


def test_create_returns_the_contract_shape(api, live_campaign):
    author = UserFactory(roles=["author"])
    response = api.as_user(author).post(
        "/api/v1/tasks/", new_task_body(live_campaign), format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "draft" and body["round"] == 1
    assert body["turns"] == [{"index": 1, "prompt": new_task_body(live_campaign)["prompt"]}]
    assert body["transitions"] == ["generate"]
    assert body["base_commit"] == "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1"
    assert body["author"] == author.username


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"base_commit": "not-a-sha"}, "base_commit"),
        ({"kind": "poetry"}, "kind"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 50_001}, "prompt"),
        ({"campaign": 999_999}, "campaign"),
        ({"scenario": {"description": "no title"}}, "scenario"),
    ],
)
def test_bad_task_input_is_a_400_naming_the_field(api, live_campaign, override, field):
    client = api.as_user(UserFactory(roles=["author"]))
    response = client.post(
        "/api/v1/tasks/", new_task_body(live_campaign, **override), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Task.objects.exists()


@pytest.mark.parametrize("role", ["reviewer", "arbiter", "auditor", "lead"])
def test_only_authors_create_tasks(api, live_campaign, role):
    response = api.as_user(UserFactory(roles=[role])).post(
        "/api/v1/tasks/", new_task_body(live_campaign), format="json"
    )
    assert response.status_code == 403


def test_another_author_sees_a_404_and_a_reviewer_sees_nothing(api, live_campaign):
    task = make_task(campaign=live_campaign)
    other = api.as_user(UserFactory(roles=["author"]))
    assert other.get(f"/api/v1/tasks/{task.pk}/").status_code == 404
    assert other.post(f"/api/v1/tasks/{task.pk}/generate/").status_code == 404
    assert other.get("/api/v1/tasks/").json()["results"] == []
    reviewer = api.as_user(UserFactory(roles=["reviewer"]))
    assert reviewer.get(f"/api/v1/tasks/{task.pk}/").status_code == 403


def test_patch_only_in_draft_and_a_wrong_state_is_409(api, live_campaign):
    task = make_task(campaign=live_campaign)
    client = api.as_user(task.author)
    response = client.patch(
        f"/api/v1/tasks/{task.pk}/", {"scenario": {"title": "Sharper title"}}, format="json"
    )
    assert response.status_code == 200 and response.json()["scenario"]["title"] == "Sharper title"
    services.task_generate(task=task, actor=task.author)
    response = client.patch(f"/api/v1/tasks/{task.pk}/", {"kind": "feature"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert (
        client.post(
            f"/api/v1/tasks/{task.pk}/turns/", {"prompt": "More please, with tests."}
        ).status_code
        == 409
    )
    submit = client.post(
        f"/api/v1/tasks/{task.pk}/submit/", {"preference": 1, "rationale": GOOD_RATIONALE}
    )
    assert submit.status_code == 409


def test_submit_with_failing_blocking_validators_is_409_listing_them(api, live_campaign):
    task = make_task(campaign=live_campaign, prompt="short")
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    response = api.as_user(task.author).post(
        f"/api/v1/tasks/{task.pk}/submit/", {"preference": 1, "rationale": GOOD_RATIONALE}
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [f["key"] for f in error["details"]["failing"]] == ["prompt_length"]
    detail = api.get(f"/api/v1/tasks/{task.pk}/").json()
    assert {"key": "prompt_length", "passed": False} in [
        {"key": v["key"], "passed": v["passed"]} for v in detail["validators"]
    ]


@pytest.mark.parametrize("preference", [-4, 4, "x"])
def test_submit_refuses_a_preference_off_the_scale(api, live_campaign, preference):
    task = make_task(campaign=live_campaign)
    response = api.as_user(task.author).post(
        f"/api/v1/tasks/{task.pk}/submit/", {"preference": preference, "rationale": GOOD_RATIONALE}
    )
    assert response.status_code == 400 and "preference" in response.json()["error"]["details"]


def test_cancel_is_for_leads(api, live_campaign):
    task = make_task(campaign=live_campaign)
    assert (
        api.as_user(task.author)
        .post(f"/api/v1/tasks/{task.pk}/cancel/", {"reason": "x"})
        .status_code
        == 403
    )
    lead = UserFactory(roles=["lead"])
    response = api.as_user(lead).post(f"/api/v1/tasks/{task.pk}/cancel/", {"reason": "duplicate"})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert api.post(f"/api/v1/tasks/{task.pk}/cancel/", {"reason": "again"}).status_code == 409


def test_leads_see_the_model_behind_each_slot_and_the_reproducibility_record(api, live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    candidates = (
        api.as_user(UserFactory(roles=["auditor"]))
        .get(f"/api/v1/tasks/{task.pk}/candidates/")
        .json()
    )
    assert {c["model_version"] for c in candidates} == {
        mv.slug for mv in live_campaign.model_versions.all()
    }
    record = candidates[0]
    assert record["request"]["messages"][0]["role"] == "user"
    assert record["usage"] and record["provider_request_id"] and len(record["content_hash"]) == 64


def test_an_author_never_sees_model_identities(api, live_campaign, fake_models):
    author = UserFactory(roles=["author"])
    client = api.as_user(author)
    bodies = []

    def keep(response):
        assert response.status_code < 300, response.content
        bodies.append(response.content.decode())
        return response.json()

    created = keep(client.post("/api/v1/tasks/", new_task_body(live_campaign), format="json"))
    task_id = created["id"]
    keep(
        client.post(
            f"/api/v1/tasks/{task_id}/turns/", {"prompt": "Also keep the public API unchanged."}
        )
    )
    keep(client.post(f"/api/v1/tasks/{task_id}/generate/"))
    generate_inline(Task.objects.get(pk=task_id))
    fake_models.fail_next(0)
    for path in (
        "/api/v1/tasks/",
        f"/api/v1/tasks/{task_id}/",
        f"/api/v1/tasks/{task_id}/candidates/",
        f"/api/v1/tasks/{task_id}/history/",
        "/api/v1/campaigns/",
        f"/api/v1/campaigns/{live_campaign.pk}/",
        "/api/v1/me/",
    ):
        keep(client.get(path))
    keep(
        client.post(
            f"/api/v1/tasks/{task_id}/submit/", {"preference": 1, "rationale": GOOD_RATIONALE}
        )
    )
    assert client.get("/api/v1/model-versions/").status_code == 403
    forbidden = {"openai", "anthropic", fake_models.url, "127.0.0.1"}
    for version in live_campaign.model_versions.all():
        forbidden |= {version.slug, version.model, version.base_url}
    everything = "\n".join(bodies)
    leaks = sorted(word for word in forbidden if word.lower() in everything.lower())
    assert leaks == [], leaks
    assert Task.objects.get(pk=task_id).state == TaskState.IN_REVIEW


def test_history_tells_the_tasks_story_in_order(api, live_campaign):
    task = make_task(campaign=live_campaign)
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    actions = [
        e["action"]
        for e in api.as_user(task.author).get(f"/api/v1/tasks/{task.pk}/history/").json()
        if e["object_type"].startswith("tasks.")  # the rubric version it is judged under came first
    ]
    assert actions[:2] == ["task.created", "turn.created"]
    assert actions[-2:] == ["task.generation_started", "task.generation_finished"]
    lead_view = (
        api.as_user(UserFactory(roles=["lead"])).get(f"/api/v1/tasks/{task.pk}/history/").json()
    )
    assert "candidate.generated" in [e["action"] for e in lead_view]


def test_task_list_runs_a_fixed_number_of_queries(api, live_campaign, django_assert_num_queries):
    author = UserFactory(roles=["author"])
    for _ in range(3):
        make_task(campaign=live_campaign, author=author)
    client = api.as_user(author)
    client.get("/api/v1/me/")  # warm the role cache of this user object
    with django_assert_num_queries(7) as three:
        client.get("/api/v1/tasks/")
    for _ in range(7):
        make_task(campaign=live_campaign, author=author)
    with django_assert_num_queries(len(three.captured_queries)):
        response = client.get("/api/v1/tasks/")
    assert len(response.json()["results"]) == 10


def test_candidate_list_runs_a_fixed_number_of_queries(
    api, live_campaign, django_assert_num_queries
):
    task = make_task(campaign=live_campaign)
    services.turn_add(task=task, actor=task.author, prompt="And a follow-up prompt long enough.")
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    client = api.as_user(task.author)
    # token, roles, the task (+ turns, results), the candidates, their validator results; the
    # reviews are no longer read for it (only task responses show the authors' feedback)
    with django_assert_num_queries(7):
        response = client.get(f"/api/v1/tasks/{task.pk}/candidates/")
    assert len(response.json()) == 4
    services.turn_add(task=task, actor=task.author, prompt="A third prompt that is long enough.")
    services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    with django_assert_num_queries(7):
        response = client.get(f"/api/v1/tasks/{task.pk}/candidates/")
    assert len(response.json()) == 6


def test_a_partial_scenario_patch_changes_only_what_it_sends(api, live_campaign):
    task = make_task(campaign=live_campaign)
    response = api.as_user(task.author).patch(
        f"/api/v1/tasks/{task.pk}/", {"scenario": {"title": "Only the title"}}, format="json"
    )
    assert response.json()["scenario"] == {
        "title": "Only the title",
        "description": "Requirements reach a shell.",
        "url": "",
    }
