import pytest

from rubrics.models import Rubric, RubricRevision
from rubrics.services import rubric_create, rubric_revise

pytestmark = pytest.mark.django_db

CRITERIA = [
    {
        "key": "correctness",
        "title": "Correctness",
        "guidance": "Does it work?",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 2.0,
    },
    {
        "key": "style",
        "title": "Style",
        "guidance": "Is it tidy?",
        "scale_min": 1,
        "scale_max": 5,
        "weight": 1.0,
    },
]
NEW = {
    "slug": "code-review",
    "title": "Code review",
    "criteria": CRITERIA,
    "policy": {"max_score_spread": 2, "preference_sign_must_agree": False},
}
READERS = ["author", "reviewer", "arbiter", "auditor", "lead"]
NOT_LEADS = ["author", "reviewer", "arbiter", "auditor"]


@pytest.fixture
def rubric(make_user):
    return rubric_create(
        actor=make_user("lead", username="ada"),
        slug="code",
        title="Code",
        criteria=CRITERIA,
        policy={"max_score_spread": 1},
    )


def revise(rubric, actor, n=1):
    for spread in range(2, 2 + n):
        rubric_revise(
            rubric=rubric,
            actor=actor,
            rationale=f"Spread {spread}.",
            policy={"max_score_spread": spread},
        )


def test_a_lead_creates_a_rubric_at_version_1(api, make_user):
    response = api.as_user(make_user("lead", username="grace")).post("/api/v1/rubrics/", NEW)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "slug": "code-review",
        "title": "Code review",
        "current_version": 1,
        "criteria": CRITERIA,
        "policy": NEW["policy"],
        "versions": [1],
        "created_by": "grace",
        "created_at": body["created_at"],
    }
    assert Rubric.objects.get(slug="code-review").versions.get().number == 1


def test_criteria_fields_have_defaults_and_the_policy_is_optional(api, make_user):
    minimal = {"slug": "minimal", "title": "Minimal", "criteria": [{"key": "ok", "title": "OK"}]}
    response = api.as_user(make_user("lead")).post("/api/v1/rubrics/", minimal)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["criteria"] == [
        {"key": "ok", "title": "OK", "guidance": "", "scale_min": 1, "scale_max": 5, "weight": 1.0}
    ]
    assert body["policy"] == {"max_score_spread": 1, "preference_sign_must_agree": True}


@pytest.mark.parametrize("role", NOT_LEADS)
def test_only_a_lead_may_create_a_rubric(api, make_user, role):
    response = api.as_user(make_user(role)).post("/api/v1/rubrics/", NEW)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Rubric.objects.exists()


def test_anonymous_callers_are_refused(api, rubric):
    assert api.get("/api/v1/rubrics/").status_code == 401
    assert api.get("/api/v1/rubrics/code/").status_code == 401
    assert api.get("/api/v1/rubrics/code/revisions/").status_code == 401


def bad_criterion(**fields):
    return {**NEW, "criteria": [{**CRITERIA[0], **fields}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW, "slug": "not a slug"}, "slug"),
        ({**NEW, "title": "x" * 201}, "title"),
        ({**NEW, "criteria": []}, "criteria"),
        ({k: v for k, v in NEW.items() if k != "criteria"}, "criteria"),
        (bad_criterion(key="Not a key!"), "criteria"),
        (bad_criterion(key="k" * 51), "criteria"),
        (bad_criterion(title="t" * 201), "criteria"),
        (bad_criterion(guidance="g" * 5001), "criteria"),
        (bad_criterion(scale_min="low"), "criteria"),
        (bad_criterion(scale_min=5, scale_max=5), "criteria"),
        (bad_criterion(weight=0), "criteria"),
        (bad_criterion(weight=-1.5), "criteria"),
        ({**NEW, "criteria": [CRITERIA[0], CRITERIA[0]]}, "criteria"),
        ({**NEW, "policy": {"max_score_spread": -1}}, "policy"),
        ({**NEW, "policy": {"preference_sign_must_agree": "maybe"}}, "policy"),
    ],
)
def test_bad_rubric_input_is_a_400_naming_the_field(api, make_user, body, field):
    response = api.as_user(make_user("lead")).post("/api/v1/rubrics/", body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]
    assert not Rubric.objects.exists()


def test_a_duplicate_slug_is_a_400(api, make_user, rubric):
    response = api.as_user(make_user("lead")).post("/api/v1/rubrics/", {**NEW, "slug": "code"})
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]


@pytest.mark.parametrize("role", READERS)
def test_everyone_reads_rubrics_versions_and_revisions(api, make_user, rubric, role):
    revise(rubric, rubric.created_by)
    client = api.as_user(make_user(role))
    for url in (
        "/api/v1/rubrics/",
        "/api/v1/rubrics/code/",
        "/api/v1/rubrics/code/versions/1/",
        "/api/v1/rubrics/code/revisions/",
    ):
        assert client.get(url).status_code == 200, url


def test_the_list_shows_each_rubrics_current_version_in_constant_queries(
    api, make_user, rubric, django_assert_num_queries
):
    revise(rubric, rubric.created_by, n=2)
    for i in range(5):
        rubric_create(actor=None, slug=f"extra-{i}", title=f"Extra {i}", criteria=CRITERIA)
    client = api.as_user(make_user("reviewer"))
    with django_assert_num_queries(4):  # token+user, roles (rate), count, page
        response = client.get("/api/v1/rubrics/")
    body = response.json()
    assert body["count"] == 6 and body["next"] is None
    first = body["results"][0]
    assert set(first) == {"slug", "title", "current_version", "created_at"}
    assert (first["slug"], first["current_version"]) == ("code", 3)
    assert {r["current_version"] for r in body["results"][1:]} == {1}


def test_a_rubric_shows_its_current_version_and_every_version_number(
    api, make_user, rubric, django_assert_num_queries
):
    revise(rubric, rubric.created_by, n=2)
    client = api.as_user(make_user("author"))
    with django_assert_num_queries(3):  # token+user, roles (rate), the rubric + current version
        response = client.get("/api/v1/rubrics/code/")
    assert response.status_code == 200
    body = response.json()
    assert body["current_version"] == 3 and body["versions"] == [1, 2, 3]
    assert body["criteria"] == CRITERIA
    assert body["policy"] == {"max_score_spread": 3, "preference_sign_must_agree": True}
    assert body["created_by"] == "ada"


def test_a_version_is_served_as_it_was(api, make_user, rubric, django_assert_num_queries):
    revise(rubric, rubric.created_by)
    client = api.as_user(make_user("auditor"))
    with django_assert_num_queries(3):  # token+user, roles (rate), the version
        response = client.get("/api/v1/rubrics/code/versions/1/")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "version": 1,
        "criteria": CRITERIA,
        "policy": {"max_score_spread": 1, "preference_sign_must_agree": True},
        "created_by": "ada",
        "created_at": body["created_at"],
    }
    assert client.get("/api/v1/rubrics/code/versions/2/").json()["policy"]["max_score_spread"] == 2


def test_a_version_without_an_author_shows_null(api, make_user):
    rubric_create(actor=None, slug="system", title="System", criteria=CRITERIA)
    response = api.as_user(make_user("reviewer")).get("/api/v1/rubrics/system/versions/1/")
    assert response.json()["created_by"] is None


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/rubrics/nope/",
        "/api/v1/rubrics/nope/versions/1/",
        "/api/v1/rubrics/code/versions/9/",
        "/api/v1/rubrics/nope/revisions/",
    ],
)
def test_unknown_rubrics_and_versions_are_404(api, make_user, rubric, url):
    response = api.as_user(make_user("reviewer")).get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_lead_revises_a_rubric(api, make_user, rubric):
    lead = make_user("lead", username="linus")
    response = api.as_user(lead).post(
        "/api/v1/rubrics/code/revisions/",
        {
            "criteria": [{**CRITERIA[0], "weight": 3}, {"key": "security", "title": "Security"}],
            "policy": {"preference_sign_must_agree": False},
            "rationale": "Security replaces style.",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "id": RubricRevision.objects.get().pk,
        "from_version": 1,
        "to_version": 2,
        "changed_by": "linus",
        "rationale": "Security replaces style.",
        "diff": {
            "criteria": {
                "added": [
                    {
                        "key": "security",
                        "title": "Security",
                        "guidance": "",
                        "scale_min": 1,
                        "scale_max": 5,
                        "weight": 1.0,
                    }
                ],
                "removed": [CRITERIA[1]],
                "changed": [{"key": "correctness", "fields": {"weight": [2.0, 3.0]}}],
            },
            "policy": {"preference_sign_must_agree": [True, False]},
        },
        "source": {"kind": "manual"},
        "created_at": body["created_at"],
    }
    detail = api.get("/api/v1/rubrics/code/").json()
    assert detail["current_version"] == 2 and detail["versions"] == [1, 2]
    assert detail["policy"] == {"max_score_spread": 1, "preference_sign_must_agree": False}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy": {"max_score_spread": 2}}, "rationale"),
        ({"policy": {"max_score_spread": 2}, "rationale": "   "}, "rationale"),
        ({"policy": {"max_score_spread": 2}, "rationale": "r" * 20_001}, "rationale"),
        ({"criteria": [], "rationale": "Empty."}, "criteria"),
        ({"criteria": [{"key": "x", "title": "X", "weight": 0}], "rationale": "W."}, "criteria"),
        ({"policy": {"max_score_spread": -2}, "rationale": "Negative."}, "policy"),
        ({"rationale": "Nothing."}, "non_field_errors"),
        ({"policy": {"max_score_spread": 1}, "rationale": "Same."}, "non_field_errors"),
        ({"criteria": CRITERIA, "rationale": "Same."}, "non_field_errors"),
    ],
)
def test_bad_or_empty_revisions_are_a_400(api, make_user, rubric, body, field):
    response = api.as_user(make_user("lead")).post("/api/v1/rubrics/code/revisions/", body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]
    assert rubric.versions.count() == 1 and not RubricRevision.objects.exists()


@pytest.mark.parametrize("role", NOT_LEADS)
def test_only_a_lead_may_revise_a_rubric(api, make_user, rubric, role):
    response = api.as_user(make_user(role)).post(
        "/api/v1/rubrics/code/revisions/",
        {"policy": {"max_score_spread": 3}, "rationale": "Looser."},
    )
    assert response.status_code == 403
    assert rubric.versions.count() == 1


def test_revising_an_unknown_rubric_is_404(api, make_user):
    response = api.as_user(make_user("lead")).post(
        "/api/v1/rubrics/nope/revisions/", {"policy": {"max_score_spread": 3}, "rationale": "?"}
    )
    assert response.status_code == 404


def test_the_revision_log_is_oldest_first_paginated_in_constant_queries(
    api, make_user, rubric, django_assert_num_queries
):
    revise(rubric, rubric.created_by, n=4)
    rubric_revise(
        rubric=rubric,
        actor=make_user("arbiter", username="judge"),
        rationale="From arbitration.",
        policy={"preference_sign_must_agree": False},
        arbitration_id=7,
    )
    client = api.as_user(make_user("reviewer"))
    with django_assert_num_queries(5):  # token+user, roles (rate), the rubric, count, page
        response = client.get("/api/v1/rubrics/code/revisions/")
    body = response.json()
    assert body["count"] == 5
    assert [(r["from_version"], r["to_version"]) for r in body["results"]] == [
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 6),
    ]
    assert body["results"][0]["changed_by"] == "ada"
    assert body["results"][0]["diff"] == {"policy": {"max_score_spread": [1, 2]}}
    assert body["results"][0]["source"] == {"kind": "manual"}
    assert body["results"][-1]["source"] == {"kind": "arbitration", "arbitration": 7}
    assert body["results"][-1]["changed_by"] == "judge"
    page = client.get("/api/v1/rubrics/code/revisions/", {"page_size": 2}).json()
    assert [r["to_version"] for r in page["results"]] == [2, 3] and page["next"]


def test_the_schema_documents_the_rubric_endpoints(api):
    document = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/v1/rubrics/",
        "/api/v1/rubrics/{slug}/",
        "/api/v1/rubrics/{slug}/versions/{number}/",
        "/api/v1/rubrics/{slug}/revisions/",
    ):
        assert path in document["paths"], path
