import threading
import time

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from rest_framework.exceptions import ValidationError

from audit.models import AuditEvent
from rubrics.models import Rubric, RubricRevision, RubricVersion
from rubrics.selectors import rubric_latest_version
from rubrics.services import rubric_create, rubric_revise
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

CRITERIA = [
    {"key": "correctness", "title": "Correctness", "guidance": "Right?", "weight": 2.0},
    {"key": "style", "title": "Style", "guidance": "Tidy?"},
]


def make_rubric(actor=None, slug="code"):
    return rubric_create(actor=actor, slug=slug, title="Code", criteria=CRITERIA)


def criterion(key, **fields):
    base = {"key": key, "title": key.title(), "guidance": "", "scale_min": 1, "scale_max": 5}
    return {**base, "weight": 1.0, **fields}


def test_a_revision_makes_the_next_version_and_logs_what_changed():
    lead = UserFactory()
    rubric = make_rubric(lead)
    revision = rubric_revise(
        rubric=rubric,
        actor=lead,
        rationale="Security matters more than style.",
        criteria=[
            criterion("correctness", title="Correctness", guidance="Right?", weight=3.0),
            criterion("security", guidance="Safe?"),
        ],
        policy={"max_score_spread": 2},
    )
    assert revision.source == RubricRevision.Source.MANUAL and revision.arbitration_id is None
    assert (revision.from_version.number, revision.to_version.number) == (1, 2)
    assert revision.changed_by == lead and revision.rationale.startswith("Security")
    assert revision.diff == {
        "criteria": {
            "added": [criterion("security", guidance="Safe?")],
            "removed": [criterion("style", guidance="Tidy?")],
            "changed": [{"key": "correctness", "fields": {"weight": [2.0, 3.0]}}],
        },
        "policy": {"max_score_spread": [1, 2]},
    }
    latest = rubric_latest_version(rubric)
    assert latest == revision.to_version and latest.created_by == lead
    assert latest.criterion_keys() == ["correctness", "security"]
    assert latest.policy == {"max_score_spread": 2, "preference_sign_must_agree": True}


def test_the_audit_trail_carries_the_rationale():
    rubric = make_rubric()
    revision = rubric_revise(
        rubric=rubric, actor=UserFactory(), rationale="Tighter.", policy={"max_score_spread": 0}
    )
    entry = AuditEvent.objects.get(object_type="rubrics.rubricrevision", object_id=str(revision.pk))
    assert entry.reason == "Tighter."


def test_a_policy_change_alone_keeps_the_criteria_and_merges_the_policy():
    rubric = make_rubric()
    revision = rubric_revise(
        rubric=rubric,
        actor=UserFactory(),
        rationale="Preferences may differ in sign.",
        policy={"preference_sign_must_agree": False},
    )
    assert revision.diff == {"policy": {"preference_sign_must_agree": [True, False]}}
    assert revision.to_version.criteria == revision.from_version.criteria
    assert revision.to_version.policy == {
        "max_score_spread": 1,
        "preference_sign_must_agree": False,
    }


def test_reordering_the_criteria_is_a_change():
    rubric = make_rubric()
    before = rubric_latest_version(rubric).criteria
    revision = rubric_revise(
        rubric=rubric, actor=UserFactory(), rationale="Style first.", criteria=before[::-1]
    )
    assert revision.diff == {
        "criteria": {"order": [["correctness", "style"], ["style", "correctness"]]}
    }


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"policy": {}},
        {"policy": {"max_score_spread": 1}},
        {"criteria": CRITERIA},
        {"criteria": CRITERIA, "policy": {"preference_sign_must_agree": True}},
    ],
)
def test_a_revision_that_changes_nothing_is_refused(changes):
    rubric = make_rubric()
    with pytest.raises(ValidationError) as refused:
        rubric_revise(rubric=rubric, actor=UserFactory(), rationale="No-op.", **changes)
    assert "changes nothing" in str(refused.value.detail)
    assert rubric.versions.count() == 1 and not RubricRevision.objects.exists()


@pytest.mark.parametrize("rationale", ["", "   \n"])
def test_a_revision_needs_a_rationale(rationale):
    rubric = make_rubric()
    with pytest.raises(ValidationError) as refused:
        rubric_revise(
            rubric=rubric, actor=UserFactory(), rationale=rationale, policy={"max_score_spread": 3}
        )
    assert "rationale" in refused.value.detail
    assert rubric.versions.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"criteria": []}, "criteria"),
        ({"criteria": [criterion("a"), criterion("a")]}, "criteria"),
        ({"criteria": [criterion("a", scale_min=5, scale_max=1)]}, "criteria"),
        ({"criteria": [criterion("")]}, "criteria"),
        ({"policy": {"max_score_spread": -1}}, "policy"),
        ({"policy": {"preference_sign_must_agree": "yes"}}, "policy"),
        ({"policy": {"surprise": 1}}, "policy"),
        ({"policy": [1]}, "policy"),
        ({"policy": {"max_score_spread": True}}, "policy"),
        ({"criteria": "correctness"}, "criteria"),
        ({"criteria": ["correctness"]}, "criteria"),
        ({"criteria": [criterion("a", title=7)]}, "criteria"),
        ({"criteria": [criterion("a", guidance=None)]}, "criteria"),
        ({"criteria": [criterion("a", scale_min=False)]}, "criteria"),
        ({"criteria": [criterion("a", weight="heavy")]}, "criteria"),
        ({"criteria": [criterion("a", weight=0)]}, "criteria"),
        ({"criteria": [criterion("a", weight=float("nan"))]}, "criteria"),
        ({"criteria": [criterion("a", weight=float("inf"))]}, "criteria"),
    ],
)
def test_invalid_criteria_or_policy_are_refused(changes, field):
    rubric = make_rubric()
    with pytest.raises(ValidationError) as refused:
        rubric_revise(rubric=rubric, actor=UserFactory(), rationale="Try.", **changes)
    assert field in refused.value.detail
    assert rubric.versions.count() == 1


def test_a_revision_from_an_arbitration_names_it():
    rubric = make_rubric()
    revision = rubric_revise(
        rubric=rubric,
        actor=UserFactory(),
        rationale="The arbitration showed the guidance was ambiguous.",
        criteria=[criterion("correctness", guidance="All cases."), CRITERIA[1]],
        arbitration_id=42,
    )
    assert revision.source == RubricRevision.Source.ARBITRATION
    assert revision.arbitration_id == 42
    assert revision.diff["criteria"]["changed"][0]["key"] == "correctness"


def test_old_versions_stay_as_they_were_and_the_database_refuses_to_update_them():
    rubric = make_rubric()
    first = rubric_latest_version(rubric)
    snapshot = (first.criteria, first.policy)
    for spread in (2, 3):
        rubric_revise(
            rubric=rubric,
            actor=UserFactory(),
            rationale="Looser.",
            policy={"max_score_spread": spread},
        )
    first.refresh_from_db()
    assert (first.criteria, first.policy) == snapshot
    assert list(rubric.versions.values_list("number", flat=True)) == [1, 2, 3]
    with pytest.raises(DatabaseError), transaction.atomic():
        RubricVersion.objects.filter(pk=first.pk).update(criteria=[])
    first.policy = {"max_score_spread": 9, "preference_sign_must_agree": True}
    with pytest.raises(DatabaseError), transaction.atomic():
        first.save()
    first.refresh_from_db()
    assert (first.criteria, first.policy) == snapshot


def test_a_taken_slug_is_a_validation_error_even_past_the_input_checks():
    make_rubric()
    with pytest.raises(ValidationError) as refused:
        make_rubric()
    assert "slug" in refused.value.detail
    assert Rubric.objects.count() == 1


def test_the_database_refuses_two_versions_with_one_number():
    rubric = make_rubric()
    with pytest.raises(IntegrityError), transaction.atomic():
        RubricVersion.objects.create(rubric=rubric, number=1, criteria=CRITERIA, policy={})


def _waiting_for_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_revisions_queue_up_on_the_rubric_row():
    rubric = make_rubric()
    lead, arbiter = UserFactory(), UserFactory()
    errors: list[BaseException] = []

    def revise(actor, **changes):
        try:
            rubric_revise(rubric=rubric, actor=actor, rationale="Concurrent.", **changes)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=revise, args=(lead,), kwargs={"policy": {"max_score_spread": 2}}),
        threading.Thread(
            target=revise,
            args=(arbiter,),
            kwargs={"criteria": [CRITERIA[0], criterion("style", title="Readability")]},
        ),
    ]
    # Hold the rubric's row lock until both revisions are waiting on it, so they truly overlap.
    with transaction.atomic():
        Rubric.objects.select_for_update().get(pk=rubric.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_for_locks() < 2:
            assert time.monotonic() < deadline, "the revisions never waited for the lock"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=10)
    assert not errors, errors
    versions = list(rubric.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2, 3]
    revisions = list(RubricRevision.objects.filter(rubric=rubric).order_by("id"))
    assert [(r.from_version.number, r.to_version.number) for r in revisions] == [(1, 2), (2, 3)]
    # Neither change is lost: the later revision was built on the earlier one.
    assert versions[2].policy["max_score_spread"] == 2
    assert versions[2].criteria[1]["title"] == "Readability"
